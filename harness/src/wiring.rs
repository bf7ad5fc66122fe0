//! Wiring an unmodified backend to the mock: the placeholder values for a process or a
//! container, the environment built from the proxy's block + the profile's `[env]` + changes,
//! the template database (setup run once) and the start of the backend itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mock_clerk::intercept::Interceptor;
use std::net::{IpAddr, SocketAddr};

use mock_clerk::{MockClerk, TemplateSpec};

use crate::backend::container::ContainerWiring;
use crate::backend::{self, Backend, ContainerBackend, EnvChanges, Health, ProcessBackend};
use crate::config::{BackendMode, Choice, HarnessConfig, PostgresMode};
use crate::docker::HOST_GATEWAY_NAME;
use crate::error::{HarnessError, Result};
use crate::logs::LogBuffer;
use crate::postgres::{Database, PgServer};
use crate::profile::{expand, Located, Profile, TokenKind, Wiring};
use crate::routing::NameRouting;

/// Everything needed to wire and start a backend.
pub(crate) struct Parts<'a> {
    pub profile: &'a Profile,
    pub config: &'a HarnessConfig,
    pub choice: &'a Choice,
    pub mock: &'a MockClerk,
    pub interceptor: &'a Interceptor,
    pub routing: &'a NameRouting,
    pub clock: &'a crate::clock::BackendClock,
    pub progress: &'a (dyn Fn(&str) + Send + Sync),
}

impl Parts<'_> {
    fn in_container(&self) -> bool {
        self.choice.backend == BackendMode::Docker
    }

    /// Placeholder values for one start.
    ///
    /// # Errors
    /// `database_url` is not a Postgres URL (only possible with an external server's URL).
    pub fn wiring(&self, database_url: &str, port: u16) -> Result<Wiring> {
        let instance = self.mock.instance();
        let join = |v: &[String]| v.join(",");
        let (ca_file, proxy_url) = if self.in_container() {
            let ca = self.profile.container.as_ref().map(|c| c.ca_path.clone()).unwrap_or_default();
            (ca, format!("http://{HOST_GATEWAY_NAME}:{}", self.interceptor.local_addr().port()))
        } else {
            (self.interceptor.ca_file().display().to_string(), self.interceptor.proxy_url())
        };
        let origins: Vec<String> = self.profile.cors.allowed_origins.iter().map(|o| o.get().clone()).collect();
        let mut wiring = Wiring::from([
            ("secret_key", instance.secret_key().expose().to_owned()),
            ("publishable_key", instance.publishable_key().to_owned()),
            ("fapi_host", instance.fapi_host().to_owned()),
            ("jwks_url", self.mock.jwks_url()),
            ("api_url", self.mock.api_url()),
            ("port", port.to_string()),
            ("webhook_secret", instance.webhook_secret().to_owned()),
            ("ca_file", ca_file),
            ("proxy_url", proxy_url),
            ("cors_origins", join(&origins)),
            ("audience", join(&self.profile.token.audience)),
            ("authorized_parties", join(&self.profile.token.authorized_parties)),
            ("pem_public_key", instance.pem_public_key()),
        ]);
        // An external backend (BackendMode::Url) has no database URL of the harness's.
        if !database_url.is_empty() {
            wiring.extend(crate::postgres::database_placeholders(database_url)?);
        }
        Ok(wiring)
    }

    /// The backend's environment: [`NO_COLOUR_ENV`], the proxy block (if the profile
    /// intercepts), then the profile's `inherit_env` from the harness's environment, then
    /// `[env]`, then `--env` (`config.backend_env`), then `changes`.
    pub fn env(&self, wiring: &Wiring, changes: &EnvChanges) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = NO_COLOUR_ENV.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        if self.profile.intercept {
            let block = if self.in_container() {
                self.interceptor.env_block_for_container(HOST_GATEWAY_NAME, &wiring["ca_file"])
            } else {
                self.interceptor.env_block()
            };
            env.extend(block);
        }
        for name in &self.profile.inherit_env {
            if let Ok(value) = std::env::var(name.get()) {
                env.insert(name.get().clone(), value);
            }
        }
        for (name, value) in &self.profile.env {
            env.insert(name.clone(), expand(value, wiring));
        }
        for (name, value) in &self.config.backend_env {
            env.insert(name.clone(), expand(value, wiring));
        }
        changes.apply(&mut env, wiring);
        env
    }

    fn args(args: &[Located<String>], wiring: &Wiring) -> Vec<String> {
        args.iter().map(|a| expand(a, wiring)).collect()
    }

    fn container_wiring<'b>(&'b self, env: &'b BTreeMap<String, String>, wiring: &'b Wiring) -> ContainerWiring<'b> {
        let image = self.config.backend_image(self.profile).unwrap_or_default();
        let ca = self.profile.intercept.then(|| (self.interceptor.ca_file(), wiring["ca_file"].as_str()));
        ContainerWiring { image, env, ca, network: self.routing.container_network(), clock_dir: self.clock.container_mount() }
    }

    /// The template database for this profile and runtime, its setup run once per server.
    pub async fn ensure_template(&self, server: &PgServer) -> Result<String> {
        if matches!(self.choice.backend, BackendMode::Url | BackendMode::InProcess) {
            return Ok(String::new());
        }
        let key = format!("{}-{}", self.profile.name, if self.in_container() { "container" } else { "process" });
        server
            .template(&key, |host_url, container_url| async move {
                (self.progress)("running the profile's setup steps");
                let db_url = if self.in_container() { container_url } else { host_url };
                let wiring = self.wiring(&db_url, crate::process::free_port()?)?;
                let env = self.env(&wiring, &EnvChanges::new());
                if self.in_container() {
                    let spec = self.profile.container.as_ref().ok_or_else(no_container)?;
                    let steps: Vec<Vec<String>> = spec.setup.iter().map(|s| Self::args(s, &wiring)).collect();
                    backend::run_container_setup(&self.profile.name, &self.container_wiring(&env, &wiring), &steps).await
                } else {
                    let spec = self.profile.process.as_ref().ok_or_else(no_process)?;
                    let steps: Vec<Vec<String>> = spec.setup.iter().map(|s| Self::args(s, &wiring)).collect();
                    backend::run_process_setup(&self.profile.name, spec, &steps, &self.profile.process_cwd()?, &env, self.routing.hosts_file()).await
                }
            })
            .await
    }

    /// A fresh database from the template; for an external backend, the URL's own database.
    pub async fn database(&self, server: &Arc<PgServer>, template: &str) -> Result<Database> {
        if self.choice.backend == BackendMode::Url {
            if self.choice.postgres != PostgresMode::Url {
                tracing::warn!("external backend with a harness-started Postgres: the backend does not use it, so user rows cannot be checked");
            }
            return Ok(server.existing());
        }
        // An in-process backend has no setup steps, so no template: it creates its own schema.
        server.create_database(Some(template).filter(|t| !t.is_empty())).await
    }

    /// Starts the backend on `database` with `changes` and waits until it is healthy.
    pub async fn start_backend(&self, database: Option<&Database>, changes: &EnvChanges, logs: LogBuffer) -> Result<Backend> {
        let health = Health { path: self.profile.health_path.get(), timeout: Duration::from_secs(self.profile.ready_timeout_secs) };
        let host_url = || database.map(Database::url).unwrap_or_default();
        let container_url = || database.map(Database::container_url).unwrap_or_default();
        match self.choice.backend {
            BackendMode::InProcess => {
                let launcher = self.config.launcher.as_deref().ok_or_else(|| HarnessError::Missing {
                    what: "an in-process backend without a launcher".into(),
                    fix: "build the configuration with HarnessConfig::in_process(launcher)".into(),
                })?;
                let wiring = self.wiring(&host_url(), 0)?;
                let env = self.env(&wiring, changes);
                Ok(Backend::InProcess(crate::backend::InProcessBackend::start(launcher, env, health, logs).await?))
            }
            BackendMode::Url => {
                let url = self.config.backend_url.as_ref().ok_or_else(|| HarnessError::Missing {
                    what: "HARNESS_BACKEND=url without HARNESS_BACKEND_URL".into(),
                    fix: "set HARNESS_BACKEND_URL".into(),
                })?;
                backend::check_external(url, health.path, health.timeout).await
            }
            BackendMode::Docker => {
                let spec = self.profile.container.as_ref().ok_or_else(no_container)?;
                let wiring = self.wiring(&container_url(), spec.port)?;
                let mut env = self.env(&wiring, changes);
                self.put_under_clock(&mut env);
                let command = Self::args(&spec.command, &wiring);
                let cw = self.container_wiring(&env, &wiring);
                Ok(Backend::Container(Box::new(ContainerBackend::start(&cw, &command, spec.port, health, logs).await?)))
            }
            BackendMode::Local => {
                let spec = self.profile.process.as_ref().ok_or_else(no_process)?;
                let cwd = self.profile.process_cwd()?;
                if cwd.join(".env").is_file() {
                    tracing::warn!(dir = %cwd.display(), "the backend's folder has a .env file: variables the harness removes may come back from it");
                }
                let port = crate::process::free_port()?;
                let wiring = self.wiring(&host_url(), port)?;
                let mut env = self.env(&wiring, changes);
                self.put_under_clock(&mut env);
                let args = Self::args(&spec.command, &wiring);
                Ok(Backend::Process(Box::new(ProcessBackend::start(spec, &args, &cwd, &env, port, health, logs, self.routing.hosts_file()).await?)))
            }
        }
    }
}

/// Asks the backend for plain log lines (`NO_COLOR`: `tracing-subscriber`, `rich`, most
/// loggers; `CLICOLOR=0`: those that follow the older convention), unless the profile sets
/// them. The log capture removes escape sequences anyway ([`crate::logs`]); a logger that
/// writes none also pads no columns for them.
pub(crate) const NO_COLOUR_ENV: [(&str, &str); 2] = [("NO_COLOR", "1"), ("CLICOLOR", "0")];

impl Parts<'_> {
    /// The variables that put the backend under the harness's clock (libfaketime), if it is.
    fn put_under_clock(&self, env: &mut BTreeMap<String, String>) {
        let faketime = self.clock.process_env(env.get("LD_PRELOAD").map(String::as_str));
        env.extend(faketime);
        if let Some(args) = self.clock.gunicorn_args(env.get("GUNICORN_CMD_ARGS").map(String::as_str)) {
            env.insert("GUNICORN_CMD_ARGS".into(), args);
        }
    }
}

fn no_container() -> HarnessError {
    HarnessError::Missing { what: "the profile has no [container] section".into(), fix: "add one or use HARNESS_BACKEND=local".into() }
}

fn no_process() -> HarnessError {
    HarnessError::Missing { what: "the profile has no [process] section".into(), fix: "add one or use HARNESS_BACKEND=docker".into() }
}

/// The mock (with the profile's JWT template) and the proxy routing Clerk's hosts to it.
/// The CA's temp dir is registered (and marked) as soon as it exists, also while Postgres is
/// still starting next to this.
pub(crate) async fn start_mock(profile: &Profile, host_ip: IpAddr, gateway: Option<IpAddr>) -> Result<(MockClerk, Interceptor, crate::reaper::Registration)> {
    let mock = MockClerk::builder().bind_ip(host_ip).start().await?;
    if let (TokenKind::Template, Some(name)) = (profile.token.kind.get(), &profile.token.template) {
        let mut claims = serde_json::to_value(profile.token.claims.clone().unwrap_or_default()).unwrap_or_default();
        if let (Some(map), false) = (claims.as_object_mut(), profile.token.audience.is_empty()) {
            map.entry("aud").or_insert_with(|| serde_json::json!(profile.token.audience));
        }
        mock.add_template(TemplateSpec::new(name, claims))?;
    }
    let mut proxy = Interceptor::builder()
        .route("api.clerk.com", mock.bapi_router())
        .route(mock.instance().fapi_host(), mock.fapi_router())
        .no_proxy(HOST_GATEWAY_NAME)
        .bind(SocketAddr::new(host_ip, 0));
    if let Some(ip) = gateway {
        proxy = proxy.no_proxy(ip.to_string());
    }
    let interceptor = proxy.start().await?;
    let ca_dir = interceptor.ca_file().parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let registration = crate::reaper::Registration::new(crate::reaper::Resource::dir(&ca_dir));
    crate::identity::write_marker(&ca_dir).map_err(HarnessError::io(format!("writing the owner marker in {}", ca_dir.display())))?;
    Ok((mock, interceptor, registration))
}
