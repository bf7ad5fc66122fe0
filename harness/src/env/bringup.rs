//! The bring-up: [`TestEnvBuilder::start`] chooses the runtime, starts Postgres, the mock and
//! the proxy side by side, routes Clerk's names, prepares the backend's clock, the template
//! and the fresh database, starts the backend and probes it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use mock_clerk::intercept::Interceptor;
use mock_clerk::MockClerk;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{BringUpTimes, Progress, TestEnv};
use crate::backend::EnvChanges;
use crate::clock::{BackendClock, Control};
use crate::config::{BackendMode, Choice, HarnessConfig, PostgresMode};
use crate::error::{HarnessError, Result};
use crate::logs::LogBuffer;
use crate::postgres::{BinSpec, Database, PgServer, ServerSpec};
use crate::profile::Profile;
use crate::routing::NameRouting;

impl TestEnv {
    /// Starts an environment for `profile` configured by the `HARNESS_*` variables.
    ///
    /// # Errors
    /// See [`TestEnvBuilder::start`].
    pub async fn start(profile: Profile) -> Result<Self> {
        Self::builder(profile).start().await
    }

    /// Configures an environment.
    pub fn builder(profile: Profile) -> TestEnvBuilder {
        TestEnvBuilder { profile, config: None, env: EnvChanges::new(), progress: None }
    }
}

/// Configures a [`TestEnv`] before starting it.
#[must_use = "call .start().await"]
pub struct TestEnvBuilder {
    profile: Profile,
    config: Option<HarnessConfig>,
    env: EnvChanges,
    progress: Option<Progress>,
}

impl std::fmt::Debug for TestEnvBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnvBuilder")
            .field("profile", &self.profile.name.get())
            .field("config", &self.config)
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

impl TestEnvBuilder {
    /// Uses `config` instead of reading `HARNESS_*` variables.
    pub fn config(mut self, config: HarnessConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Changes the backend's environment from the first start on.
    pub fn env(mut self, changes: EnvChanges) -> Self {
        self.env = changes;
        self
    }

    /// Calls `progress` at each phase of the bring-up and of later restarts.
    pub fn progress(mut self, progress: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.progress = Some(std::sync::Arc::new(progress));
        self
    }

    /// Brings everything up.
    ///
    /// # Errors
    /// Any piece failing; see [`HarnessError`].
    pub async fn start(self) -> Result<TestEnv> {
        let started = Instant::now();
        let started_at = SystemTime::now();
        let mut times = BringUpTimes::default();
        let mut lap = Instant::now();
        let mut phase = |slot: &mut Duration| {
            *slot = lap.elapsed();
            lap = Instant::now();
        };
        let config = match self.config {
            Some(c) => c,
            None => HarnessConfig::from_env()?,
        };
        let mut profile = self.profile;
        if let Some(dir) = &config.backend_dir {
            profile = profile.with_backend_dir(dir);
        }
        let progress: Progress = self.progress.unwrap_or_else(|| std::sync::Arc::new(|_: &str| {}));
        // The watchdog (library users: when a clerk-harness binary is found) guards against a
        // SIGKILL of this process from here on.
        let _ = tokio::task::spawn_blocking(crate::reaper::ensure_watchdog).await;
        let choice = crate::runtime::choose(&config, &profile).await?;
        if choice.postgres == PostgresMode::Docker || choice.backend == BackendMode::Docker {
            crate::reaper::register(crate::reaper::Resource::Docker);
        }
        phase(&mut times.choose);
        if let (BackendMode::Docker, None, Some(context)) = (choice.backend, &config.backend_image, profile.build_context()) {
            let spec = profile.container.as_ref().ok_or_else(|| HarnessError::Missing { what: "no [container]".into(), fix: String::new() })?;
            let dockerfile = spec.dockerfile.as_deref().unwrap_or("Dockerfile");
            crate::build::ensure_image(&crate::docker::connect().await?, spec.image.get(), &context, dockerfile).await?;
        }
        phase(&mut times.image_build);
        let gateway = if choice.backend == BackendMode::Docker { Some(crate::docker::bridge_gateway(&crate::docker::connect().await?).await?) } else { None };
        let host_ip = gateway.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));

        let spec = match choice.postgres {
            PostgresMode::Docker => Some(ServerSpec::Docker { image: choice.postgres_image.clone().unwrap_or_default() }),
            PostgresMode::Local => Some(ServerSpec::Local {
                bins: BinSpec(config.pg_bin_dir.clone(), config.search_path.clone(), config.pg_install_root.clone()),
                listen_extra: gateway,
            }),
            PostgresMode::Url => Some(ServerSpec::External { url: config.database_url.clone().unwrap_or_default() }),
            PostgresMode::None => None,
        };
        let server = async {
            match &spec {
                Some(spec) => PgServer::shared(spec).await.map(Some),
                None => Ok(None),
            }
        };
        // Postgres takes the longest: the mock and the proxy start meanwhile.
        let kind = match choice.postgres {
            PostgresMode::Docker => "in Docker",
            PostgresMode::Local => "local",
            PostgresMode::Url => "given by URL",
            PostgresMode::None => "none",
        };
        progress(&format!("starting Postgres ({kind}) and the mock Clerk"));
        let ((mock, interceptor, ca_registration), server, container) =
            tokio::try_join!(crate::wiring::start_mock(&profile, host_ip, gateway), server, container_clock(&config, &profile, &choice))?;
        phase(&mut times.postgres_and_mock);

        let (log_dir, keep) = match &config.log_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let tmp = crate::reaper::OwnedDir::new("clerk-harness-logs-", &std::env::temp_dir())?;
                (tmp.path().to_path_buf(), Some(tmp))
            }
        };
        std::fs::create_dir_all(&log_dir).map_err(HarnessError::io(format!("creating {}", log_dir.display())))?;
        let log_file = log_dir.join(format!("{}-{}-{}.log", profile.name, std::process::id(), crate::identity::random_token(6)));
        let logs = LogBuffer::new(Some(&log_file)).map_err(HarnessError::io(format!("creating {}", log_file.display())))?;

        let http = crate::spa::backend_client(config.request_timeout())?;
        let routing = name_routing(&config, &profile, &choice, &mock, &interceptor).await?;
        let (clock, clock_dir) = backend_clock(&config, &profile, &choice, &mock, container)?;
        phase(&mut times.clock);
        let parts = crate::wiring::Parts {
            profile: &profile,
            config: &config,
            choice: &choice,
            mock: &mock,
            interceptor: &interceptor,
            routing: &routing,
            clock: &clock,
            progress: &*progress,
        };
        let template = match &server {
            Some(server) => parts.ensure_template(server).await?,
            None => String::new(),
        };
        phase(&mut times.template);
        let database = match &server {
            Some(server) => Some(parts.database(server, &template).await?),
            None => None,
        };
        phase(&mut times.database);
        progress(&format!("starting the backend ({})", if choice.backend == BackendMode::Docker { "container" } else { "process" }));
        let backend = parts.start_backend(database.as_ref(), &self.env, logs.clone()).await?;
        phase(&mut times.backend);
        let pool = match &database {
            Some(database) => Some(connect_pool(database).await?),
            None => None,
        };
        times.total = started.elapsed();
        tracing::info!(
            backend = %backend.url(),
            postgres = server.as_ref().map_or("none", |s| s.kind()),
            database = database.as_ref().map_or("none", Database::name),
            "environment ready"
        );
        let env = TestEnv {
            backend_url: backend.url().clone(),
            backend: Some(backend),
            clock,
            _clock_dir: clock_dir,
            routing,
            pool,
            database,
            template,
            logs,
            barrier: crate::barrier::LogBarrier::new()?,
            interceptor,
            mock,
            profile,
            config,
            choice,
            env_changes: self.env,
            http,
            times,
            progress,
            _log_dir: keep,
            retiring: std::sync::Mutex::default(),
            _ca_dir: ca_registration,
        };
        env.probe_endpoints().await?;
        env.check_tls_trust(started_at)?;
        // The probes' lines (and the start's last ones) before the first window opens.
        env.settle_log().await;
        Ok(env)
    }
}

/// Routing by name for the chosen runtime (see [`crate::routing`]).
async fn name_routing(config: &HarnessConfig, profile: &Profile, choice: &Choice, mock: &MockClerk, interceptor: &Interceptor) -> Result<NameRouting> {
    let hosts = vec!["api.clerk.com".to_owned(), mock.instance().fapi_host().to_owned()];
    let enabled = !config.no_name_routing && profile.intercept;
    Ok(match choice.backend {
        BackendMode::Docker => crate::routing::for_docker(&crate::docker::connect().await?, interceptor, hosts, enabled).await?,
        BackendMode::Local => crate::routing::for_local(interceptor, hosts, enabled).await,
        BackendMode::Url => NameRouting::off(hosts, "the backend was given as a URL: the harness does not control its resolver"),
        BackendMode::InProcess => NameRouting::off(hosts, "the backend runs in the harness's process and is wired to the mock's direct URLs"),
    })
}

/// A container backend's clock folder, prepared and probed ([`container_clock`]).
struct ContainerClock {
    dir: crate::reaper::OwnedDir,
    library: std::path::PathBuf,
    file: std::path::PathBuf,
}

/// For a container backend: the folder with libfaketime and the timestamp file, the image
/// probed ([`crate::backend::probe_faketime`], ≈ 0.5 s: run while Postgres starts), or why the
/// container keeps the real clock. `None` for the other kinds of backend.
async fn container_clock(config: &HarnessConfig, profile: &Profile, choice: &Choice) -> Result<Option<std::result::Result<ContainerClock, String>>> {
    if choice.backend != BackendMode::Docker {
        return Ok(None);
    }
    if config.no_fake_time {
        return Ok(Some(Err("HARNESS_FAKETIME=off".into())));
    }
    let Some(library) = crate::clock::find_libfaketime() else {
        return Ok(Some(Err(
            "libfaketime is not installed on this machine (Debian: apt-get install libfaketime): the harness mounts it into the container".into()
        )));
    };
    if !crate::docker::docker_host().starts_with("unix://") {
        return Ok(Some(Err(format!(
            "the Docker daemon is not on this machine ({}): the folder with libfaketime and the timestamp file cannot be bind-mounted",
            crate::docker::docker_host()
        ))));
    }
    let image = config.backend_image(profile).unwrap_or_default().to_string();
    let dir = crate::reaper::OwnedDir::new("clerk-harness-clock-", &std::env::temp_dir())?;
    let file = crate::clock::prepare_container_dir(dir.path(), &library)?;
    let command = profile.container.as_ref().and_then(|c| c.command.first()).map(|c| c.get().clone());
    Ok(Some(match crate::backend::probe_faketime(&image, dir.path(), command.as_deref()).await {
        Ok(()) => Ok(ContainerClock { dir, library, file }),
        Err(reason) => Err(reason),
    }))
}

/// The backend's clock for the chosen runtime (see [`crate::clock`]), and the directory of
/// its timestamp file when libfaketime is used.
fn backend_clock(
    config: &HarnessConfig,
    profile: &Profile,
    choice: &Choice,
    mock: &MockClerk,
    container: Option<std::result::Result<ContainerClock, String>>,
) -> Result<(BackendClock, Option<crate::reaper::OwnedDir>)> {
    let clerk = mock.clock().clone();
    let unavailable = |reason: &str| Ok((BackendClock::unavailable(clerk.clone(), reason), None));
    match choice.backend {
        BackendMode::InProcess => match config.launcher.as_ref().and_then(|l| l.clock()) {
            Some(clock) => Ok((BackendClock::new(clerk.clone(), Control::InProcess(clock))?, None)),
            None => unavailable("the in-process backend reads the system clock (its launcher exposes no clock)"),
        },
        BackendMode::Url => unavailable("the backend was given as a URL: the harness does not start it, so it cannot run it under libfaketime"),
        BackendMode::Docker => match container {
            Some(Ok(ContainerClock { dir, library, file })) => {
                let mounted = Some(dir.path().to_path_buf());
                Ok((BackendClock::new(clerk, Control::FakeTime { library, file, mounted })?, Some(dir)))
            }
            Some(Err(reason)) => unavailable(&reason),
            None => unavailable("the container's clock was not prepared"),
        },
        BackendMode::Local => {
            if config.no_fake_time {
                return unavailable("HARNESS_FAKETIME=off");
            }
            if !cfg!(target_os = "linux") {
                return unavailable(
                    "libfaketime is wired in on Linux only (on macOS, System Integrity Protection strips DYLD_INSERT_LIBRARIES from system binaries)",
                );
            }
            let Some(library) = crate::clock::find_libfaketime() else {
                return unavailable("libfaketime is not installed (Debian: apt-get install libfaketime)");
            };
            let program = match (&profile.process, profile.process_cwd()) {
                (Some(spec), Ok(cwd)) => spec.command.first().and_then(|p| {
                    let path_var = std::env::var("PATH").unwrap_or_default();
                    crate::backend::resolve_program(p.get(), &cwd, &path_var)
                }),
                _ => None,
            };
            if let Some(reason) = program.as_deref().and_then(crate::clock::faketime_blocker) {
                return unavailable(&reason);
            }
            let dir = crate::reaper::OwnedDir::new("clerk-harness-clock-", &std::env::temp_dir())?;
            let file = dir.path().join("faketime");
            Ok((BackendClock::new(clerk, Control::FakeTime { library, file, mounted: None })?, Some(dir)))
        }
    }
}

/// A pool on the backend's database, for the harness's reads ([`TestEnv::db`]).
pub(super) async fn connect_pool(database: &Database) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(5)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&database.url())
        .await
        .map_err(HarnessError::db(format!("connecting to the backend's database {}", database.name())))
}
