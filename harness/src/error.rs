//! The harness's one error type. Every variant a user can cause says what to do next.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while bringing up or driving an environment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// A backend profile could not be parsed or has a bad value.
    #[error("{file}:{line}:{column}: {message}")]
    Profile {
        /// The profile file (or the name it was loaded under).
        file: String,
        /// 1-based line of the offending key or value.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, with the allowed values where there is a fixed set.
        message: String,
    },

    /// A profile file could not be read.
    #[error("cannot read backend profile {path}: {source}")]
    ProfileRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A harness environment variable has a value outside its allowed set.
    #[error("{var}={value:?} is not valid: allowed values are {allowed}")]
    Config {
        /// The variable, e.g. `HARNESS_RUNTIME`.
        var: &'static str,
        /// What it was set to.
        value: String,
        /// The allowed values, comma separated.
        allowed: &'static str,
    },

    /// A `--env NAME=VALUE` argument is malformed.
    #[error("--env {arg:?}: {reason}; write --env NAME=VALUE (VALUE may use {{placeholders}}, `{{{{` for a literal brace)")]
    InvalidEnvArg {
        /// The argument as given.
        arg: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The chosen runtime needs something the configuration does not give.
    #[error("{what}: {fix}")]
    Missing {
        /// What is missing.
        what: String,
        /// How to provide it.
        fix: String,
    },

    /// Docker was asked for (or needed) but the daemon does not answer.
    #[error(
        "Docker is not reachable at {docker_host}: {reason}. Start the daemon (`dockerd &` as root, \
         or `systemctl start docker`), check DOCKER_HOST and the socket's permissions, or run \
         without Docker: HARNESS_RUNTIME=local"
    )]
    DockerUnavailable {
        /// Where the harness looked (DOCKER_HOST or the default socket).
        docker_host: String,
        /// What the client said.
        reason: String,
    },

    /// A Docker image the runtime needs is not in the local image store.
    #[error("Docker image {image} is not present locally ({role}). {fix}")]
    ImageMissing {
        /// `name:tag`.
        image: String,
        /// What the image is for.
        role: &'static str,
        /// How to get it.
        fix: String,
    },

    /// Building the backend's image from its Dockerfile failed.
    #[error("building the backend image {image} from {} failed. {hint}\n--- last lines of the build ---\n{output}", context.display())]
    ImageBuild {
        /// `name:tag` being built (empty while fetching its wheels).
        image: String,
        /// The build context (or the requirements file).
        context: std::path::PathBuf,
        /// The last lines of the build's output.
        output: String,
        /// What to do.
        hint: String,
    },

    /// A container operation failed.
    #[error("{what}: {source}")]
    Container {
        /// What the harness was doing.
        what: String,
        /// The testcontainers error.
        #[source]
        source: testcontainers::TestcontainersError,
    },

    /// `initdb`/`postgres` were not found for the local Postgres runtime.
    #[error(
        "PostgreSQL server binaries (initdb, postgres) not found; looked in: {searched}. Install \
         PostgreSQL (Debian: apt-get install postgresql), point HARNESS_PG_BIN_DIR at its bin \
         directory, or use Docker: HARNESS_POSTGRES=docker"
    )]
    PostgresBinariesNotFound {
        /// Every place looked at, in order.
        searched: String,
    },

    /// The local Postgres server did not come up.
    #[error("local Postgres did not start: {reason}\n--- last lines of its log ---\n{log_tail}")]
    PostgresStart {
        /// What happened.
        reason: String,
        /// The end of the server's log.
        log_tail: String,
    },

    /// A SQL statement the harness runs failed.
    #[error("{what}: {source}")]
    Database {
        /// What the harness was doing.
        what: String,
        /// The sqlx error.
        #[source]
        source: sqlx::Error,
    },

    /// A profile setup command (schema creation) failed.
    #[error("setup command `{command}` of profile {profile} failed ({status})\n--- its output ---\n{output}")]
    SetupFailed {
        /// The profile.
        profile: String,
        /// The command line.
        command: String,
        /// Exit status as text.
        status: String,
        /// The end of its output.
        output: String,
    },

    /// The backend's program does not exist.
    #[error("cannot start the backend: `{program}` not found (working directory {cwd}). {hint}")]
    BackendProgramNotFound {
        /// The program as written in the profile.
        program: String,
        /// The working directory.
        cwd: PathBuf,
        /// The profile's install hint, or a generic one.
        hint: String,
    },

    /// The backend exited before it became healthy.
    #[error("the backend exited before it was ready ({status}): `{command}`\n--- last lines of its log ---\n{log_tail}")]
    BackendExited {
        /// The command or image.
        command: String,
        /// Exit code or signal, as text.
        status: String,
        /// The end of its log.
        log_tail: String,
    },

    /// The backend did not answer its health path in time.
    #[error(
        "the backend did not answer {url} with 2xx within {waited:?} (last: {last}); raise \
         ready_timeout_secs in the profile if it is just slow\n--- last lines of its log ---\n{log_tail}"
    )]
    BackendNotReady {
        /// The health URL.
        url: String,
        /// How long the harness waited.
        waited: Duration,
        /// The last answer or connection error.
        last: String,
        /// The end of its log.
        log_tail: String,
    },

    /// The health path answered an error status: the backend is misconfigured, not slow.
    #[error("the backend's health path {url} answered {status} at once: {body}\n{hint}\n--- the backend's log since this start ---\n{log_tail}")]
    HealthRefused {
        /// The health URL.
        url: String,
        /// The status it answered.
        status: u16,
        /// The relevant part of the body.
        body: String,
        /// What to change.
        hint: Box<str>,
        /// The backend's log since this start, without the probes' own access-log lines.
        log_tail: String,
    },

    /// A profile endpoint answered a valid token with 404/405 or sent it to a login page:
    /// the profile does not describe this backend's routes (found once, at bring-up).
    #[error(
        "{location}: the profile's endpoint {method} {path} answered {answer}: the profile does not \
         match the backend's routes, so no scenario could judge it. {fix}"
    )]
    EndpointMismatch {
        /// `file:line` of the endpoint's `path` in the profile.
        location: String,
        /// The method.
        method: Box<str>,
        /// The path.
        path: String,
        /// What came back, e.g. `404 Not Found` or `302 to /accounts/login/`.
        answer: String,
        /// What to change.
        fix: Box<str>,
    },

    /// The backend's TLS client refused the per-run CA on its way to a Clerk host (a handshake
    /// alert such as `unknown_ca`, or a hang-up mid-handshake) and never got a request
    /// through: every call it makes to Clerk fails, so no scenario could judge it (found once,
    /// at bring-up).
    #[error(
        "the backend's TLS client does not trust the mock's per-run CA: {evidence}. Every call it makes to Clerk fails, \
         so no scenario could judge it. {fix}"
    )]
    ClerkTlsUntrusted {
        /// The hosts, what the client said (alert) and when.
        evidence: String,
        /// What to change.
        fix: Box<str>,
    },

    /// An operation does not apply to this environment (e.g. restarting an external backend).
    #[error("not applicable: {0}")]
    NotApplicable(String),

    /// The mock failed.
    #[error("mock Clerk: {0}")]
    Mock(#[from] mock_clerk::Error),

    /// The TLS-intercepting proxy failed to start.
    #[error("interception proxy: {0}")]
    Intercept(#[from] mock_clerk::intercept::InterceptError),

    /// An HTTP request of the harness failed.
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),

    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl HarnessError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    pub(crate) fn db(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Self {
        let what = what.into();
        move |source| Self::Database { what, source }
    }

    pub(crate) fn container(what: impl Into<String>) -> impl FnOnce(testcontainers::TestcontainersError) -> Self {
        let what = what.into();
        move |source| Self::Container { what, source }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
