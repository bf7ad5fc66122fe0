//! Which provider runs each piece: `HARNESS_RUNTIME=auto|docker|local`, overridable per piece
//! with `HARNESS_POSTGRES=docker|local|url` and `HARNESS_BACKEND=docker|local|url`.
//!
//! | variable | meaning |
//! |---|---|
//! | `HARNESS_RUNTIME` | `auto` (default): Docker for each piece whose image is present, else local |
//! | `HARNESS_POSTGRES` | `docker`, `local` (initdb/postgres binaries) or `url` (`HARNESS_DATABASE_URL`) |
//! | `HARNESS_BACKEND` | `docker` (profile image), `local` (profile command) or `url` (`HARNESS_BACKEND_URL`) |
//! | `HARNESS_POSTGRES_IMAGE` | Postgres image (default: `postgres:15`, else `clerk-harness/postgres:15` if present) |
//! | `HARNESS_BACKEND_IMAGE` | overrides the profile's `[container] image` |
//! | `HARNESS_PG_BIN_DIR` | directory with `initdb` and `postgres` |
//! | `HARNESS_DATABASE_URL` | an existing server (superuser URL) for `HARNESS_POSTGRES=url` |
//! | `HARNESS_BACKEND_URL` | an already running backend for `HARNESS_BACKEND=url` |
//! | `HARNESS_BACKEND_DIR` | the process backend's working directory (`--backend-dir`) |
//! | `HARNESS_PG_DATA_PARENT` | where local clusters live (default: `$TMPDIR` if set, else `/dev/shm`, else `/tmp`) |
//! | `HARNESS_LOG_DIR` | keep backend logs there (default: a temp dir removed with the env) |
//! | `HARNESS_NAME_ROUTING` | `on` (default) or `off`: route Clerk's host names to the mock's TLS front (see [`crate::routing`]) |
//! | `HARNESS_FAKETIME` | `on` (default) or `off`: run a local backend process under libfaketime so scenarios can move its clock (see [`crate::clock`]) |
//! | `HARNESS_REQUEST_TIMEOUT_SECS` | one request to the backend (default 10) |
//! | `HARNESS_SCENARIO_TIMEOUT_SECS` | one scenario, restarts included (default 30) |

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::backend::Launcher;
use crate::error::{HarnessError, Result};
use crate::profile::Profile;

/// Default of [`HarnessConfig::request_timeout`]: no answer within it is reported as a hang.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Default of [`HarnessConfig::scenario_timeout`].
pub const DEFAULT_SCENARIO_TIMEOUT: Duration = Duration::from_secs(30);

/// Images tried for Postgres when none is configured, in order.
pub const DEFAULT_POSTGRES_IMAGES: [&str; 2] = ["postgres:15", "clerk-harness/postgres:15"];

/// The overall runtime preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Runtime {
    /// Docker where the daemon answers and the image is present, else local.
    #[default]
    Auto,
    /// Containers for everything (an error if Docker is unreachable).
    Docker,
    /// Local binaries and processes, no Docker.
    Local,
}

/// Where Postgres comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PostgresMode {
    /// A testcontainers container.
    Docker,
    /// `initdb` + `postgres` in a temp dir.
    Local,
    /// An existing server (`HARNESS_DATABASE_URL`).
    Url,
    /// No database at all (in-process test backends): scenarios that read the backend's
    /// tables are not applicable, and say so.
    None,
}

/// Where the backend comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendMode {
    /// The profile's image in a container.
    Docker,
    /// The profile's command as a local process.
    Local,
    /// An already running backend (`HARNESS_BACKEND_URL`): no restarts.
    Url,
    /// Served inside this process by [`HarnessConfig::launcher`] (a test double such as a
    /// stub backend): restarts start a new instance with the new environment.
    InProcess,
}

/// Configuration of an environment; [`HarnessConfig::from_env`] reads the `HARNESS_*` variables,
/// and every field can be set in code (tests do, to stay independent of each other).
#[derive(Debug, Clone, Default)]
pub struct HarnessConfig {
    /// `HARNESS_RUNTIME`.
    pub runtime: Runtime,
    /// `HARNESS_POSTGRES` (overrides `runtime` for Postgres).
    pub postgres: Option<PostgresMode>,
    /// `HARNESS_BACKEND` (overrides `runtime` for the backend).
    pub backend: Option<BackendMode>,
    /// `HARNESS_DATABASE_URL` (falls back to `DATABASE_URL` when `postgres` is `url`).
    pub database_url: Option<String>,
    /// `HARNESS_BACKEND_URL`.
    pub backend_url: Option<Url>,
    /// `HARNESS_POSTGRES_IMAGE`.
    pub postgres_image: Option<String>,
    /// `HARNESS_BACKEND_IMAGE`.
    pub backend_image: Option<String>,
    /// `HARNESS_PG_BIN_DIR`.
    pub pg_bin_dir: Option<PathBuf>,
    /// The `PATH` searched for `initdb` (default: this process's `PATH`).
    pub search_path: Option<OsString>,
    /// Where versioned Postgres installs live (default `/usr/lib/postgresql`).
    pub pg_install_root: Option<PathBuf>,
    /// `HARNESS_BACKEND_DIR`.
    pub backend_dir: Option<PathBuf>,
    /// `HARNESS_LOG_DIR`.
    pub log_dir: Option<PathBuf>,
    /// `HARNESS_NAME_ROUTING=off`: do not route Clerk's host names to the mock's TLS front
    /// (clients that ignore `HTTPS_PROXY` then cannot reach the mock).
    pub no_name_routing: bool,
    /// `HARNESS_FAKETIME=off`: do not run a local backend process under libfaketime (its
    /// clock then cannot be moved).
    pub no_fake_time: bool,
    /// `HARNESS_REQUEST_TIMEOUT_SECS`: how long one request to the backend may take before
    /// the harness reports it as hung (default 10 s).
    pub request_timeout: Option<Duration>,
    /// `HARNESS_SCENARIO_TIMEOUT_SECS`: how long one scenario may take, not counting the
    /// backend starts it waits for (each bounded by the profile's `ready_timeout_secs`),
    /// before it ends in an `error` naming what hung (default 30 s).
    pub scenario_timeout: Option<Duration>,
    /// Starts the backend for [`BackendMode::InProcess`].
    pub launcher: Option<Arc<dyn Launcher>>,
    /// Extra variables for the backend (`clerk-harness run --env NAME=VALUE`), applied over the
    /// profile's `[env]`, in setup steps too; values may use `{placeholders}`. Build entries
    /// with [`parse_env_arg`].
    pub backend_env: Vec<(String, String)>,
}

/// Parses one `--env NAME=VALUE`: `NAME` like a shell variable, `VALUE` anything (possibly
/// empty) whose `{placeholders}` are known (`{{`/`}}` for literal braces).
///
/// ```
/// assert_eq!(harness::parse_env_arg("PYTHONPATH=/opt/stubs").expect("valid"), ("PYTHONPATH".into(), "/opt/stubs".into()));
/// assert!(harness::parse_env_arg("PYTHONPATH").is_err());
/// ```
///
/// # Errors
/// [`HarnessError::InvalidEnvArg`] saying what is wrong.
pub fn parse_env_arg(arg: &str) -> Result<(String, String)> {
    let bad = |reason: String| HarnessError::InvalidEnvArg { arg: arg.to_owned(), reason };
    let Some((name, value)) = arg.split_once('=') else {
        return Err(bad("no `=`".into()));
    };
    if !crate::profile::is_env_name(name) {
        return Err(bad(format!("{name:?} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)")));
    }
    crate::profile::check_template(value).map_err(|(_, message)| bad(message))?;
    Ok((name.to_owned(), value.to_owned()))
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl HarnessConfig {
    /// Reads the `HARNESS_*` variables.
    ///
    /// # Errors
    /// [`HarnessError::Config`] for a value outside the allowed set.
    pub fn from_env() -> Result<Self> {
        let runtime = match var("HARNESS_RUNTIME").as_deref() {
            None | Some("auto") => Runtime::Auto,
            Some("docker") => Runtime::Docker,
            Some("local") => Runtime::Local,
            Some(other) => return Err(HarnessError::Config { var: "HARNESS_RUNTIME", value: other.into(), allowed: "auto, docker, local" }),
        };
        let postgres = match var("HARNESS_POSTGRES").as_deref() {
            None => None,
            Some("docker") => Some(PostgresMode::Docker),
            Some("local") => Some(PostgresMode::Local),
            Some("url") => Some(PostgresMode::Url),
            Some(other) => return Err(HarnessError::Config { var: "HARNESS_POSTGRES", value: other.into(), allowed: "docker, local, url" }),
        };
        let backend = match var("HARNESS_BACKEND").as_deref() {
            None => None,
            Some("docker") => Some(BackendMode::Docker),
            Some("local") => Some(BackendMode::Local),
            Some("url") => Some(BackendMode::Url),
            Some(other) => return Err(HarnessError::Config { var: "HARNESS_BACKEND", value: other.into(), allowed: "docker, local, url" }),
        };
        let backend_url = match var("HARNESS_BACKEND_URL") {
            Some(raw) => Some(Url::parse(&raw).map_err(|_| HarnessError::Config {
                var: "HARNESS_BACKEND_URL",
                value: raw,
                allowed: "an absolute http(s) URL such as http://127.0.0.1:8000",
            })?),
            None => None,
        };
        let no_name_routing = match var("HARNESS_NAME_ROUTING").as_deref() {
            None | Some("on") => false,
            Some("off") => true,
            Some(other) => return Err(HarnessError::Config { var: "HARNESS_NAME_ROUTING", value: other.into(), allowed: "on, off" }),
        };
        let no_fake_time = match var("HARNESS_FAKETIME").as_deref() {
            None | Some("on") => false,
            Some("off") => true,
            Some(other) => return Err(HarnessError::Config { var: "HARNESS_FAKETIME", value: other.into(), allowed: "on, off" }),
        };
        let secs = |name: &'static str| -> Result<Option<Duration>> {
            match var(name) {
                None => Ok(None),
                Some(raw) => match raw.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Some(Duration::from_secs(n))),
                    _ => Err(HarnessError::Config { var: name, value: raw, allowed: "a whole number of seconds greater than 0" }),
                },
            }
        };
        let database_url = var("HARNESS_DATABASE_URL").or_else(|| (postgres == Some(PostgresMode::Url)).then(|| var("DATABASE_URL")).flatten());
        Ok(Self {
            runtime,
            postgres,
            backend,
            database_url,
            backend_url,
            postgres_image: var("HARNESS_POSTGRES_IMAGE"),
            backend_image: var("HARNESS_BACKEND_IMAGE"),
            pg_bin_dir: var("HARNESS_PG_BIN_DIR").map(PathBuf::from),
            search_path: None,
            pg_install_root: None,
            backend_dir: var("HARNESS_BACKEND_DIR").map(PathBuf::from),
            log_dir: var("HARNESS_LOG_DIR").map(PathBuf::from),
            no_name_routing,
            no_fake_time,
            request_timeout: secs("HARNESS_REQUEST_TIMEOUT_SECS")?,
            scenario_timeout: secs("HARNESS_SCENARIO_TIMEOUT_SECS")?,
            launcher: None,
            backend_env: Vec::new(),
        })
    }

    /// Everything local: no Docker is touched.
    #[must_use]
    pub fn local() -> Self {
        Self { runtime: Runtime::Local, ..Self::default() }
    }

    /// Everything in containers.
    #[must_use]
    pub fn docker() -> Self {
        Self { runtime: Runtime::Docker, ..Self::default() }
    }

    /// A backend served in this process by `launcher`, and no database: no Docker, no
    /// Postgres, no child process. For testing the harness's own verdicts in milliseconds.
    #[must_use]
    pub fn in_process(launcher: Arc<dyn Launcher>) -> Self {
        Self { runtime: Runtime::Local, postgres: Some(PostgresMode::None), backend: Some(BackendMode::InProcess), launcher: Some(launcher), ..Self::default() }
    }

    /// The per-request timeout in effect.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT)
    }

    /// The per-scenario timeout in effect.
    #[must_use]
    pub fn scenario_timeout(&self) -> Duration {
        self.scenario_timeout.unwrap_or(DEFAULT_SCENARIO_TIMEOUT)
    }

    /// The backend image: the override, else the profile's.
    #[must_use]
    pub fn backend_image<'a>(&'a self, profile: &'a Profile) -> Option<&'a str> {
        self.backend_image.as_deref().or_else(|| profile.container.as_ref().map(|c| c.image.as_str()))
    }
}

/// What was chosen for one environment, and why (the line `auto` prints).
#[derive(Debug, Clone)]
pub struct Choice {
    /// Postgres provider.
    pub postgres: PostgresMode,
    /// The Postgres image, when `postgres` is Docker.
    pub postgres_image: Option<String>,
    /// Backend provider.
    pub backend: BackendMode,
    /// One line: what and why.
    pub reason: String,
}

impl Choice {
    /// Whether anything runs in Docker (then the mock and proxy listen on the bridge gateway).
    #[must_use]
    pub fn uses_docker(&self) -> bool {
        self.postgres == PostgresMode::Docker || self.backend == BackendMode::Docker
    }
}
