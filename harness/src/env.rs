//! [`TestEnv`]: everything one test needs — the mock, the interception proxy, Postgres, the
//! backend under test, an sqlx pool on the backend's database, the SPA-like client, the logs.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use mock_clerk::intercept::Interceptor;
use mock_clerk::{MockClerk, NewUser, Session, User};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;
use url::Url;

use crate::backend::{Backend, EnvChanges};
use crate::clock::{BackendClock, Control};
use crate::config::{BackendMode, Choice, HarnessConfig, PostgresMode};
use crate::error::{HarnessError, Result};
use crate::logs::{LogBuffer, LogMark};
use crate::postgres::{BinSpec, Database, PgServer, ServerSpec};
use crate::profile::Profile;
use crate::routing::{NameRouting, Unreached};
use crate::spa::Spa;

mod beside;
pub use beside::{SideBackend, TrialStart};

/// A running environment. Dropping it stops the backend, drops its database, stops the proxy
/// and the mock, and — with the last environment of the process — the Postgres server.
///
/// ```no_run
/// # async fn demo() -> anyhow::Result<()> {
/// use harness::{GetToken, Profile, TestEnv};
/// let env = TestEnv::start(Profile::reference()?).await?;
/// let me = env.sign_in(mock_clerk::NewUser::with_email("ada@example.com").names("Ada", "Lovelace"))?;
/// let endpoint = &env.profile().endpoints[0];
/// let response = env.spa().call(endpoint, &me.session.id, &GetToken::ProfileDefault).await?;
/// assert_eq!(response.status(), 200);
/// let row = env.synced_user(&me.user.id).await?.expect("synced");
/// assert_eq!(row.email.as_deref(), Some("ada@example.com"));
/// # Ok(()) }
/// ```
pub struct TestEnv {
    // Field order is drop order: the backend goes first, the mock last.
    pub(crate) backend: Option<Backend>,
    pub(crate) clock: crate::clock::BackendClock,
    // After the backend: its timestamp file outlives it.
    pub(crate) _clock_dir: Option<crate::reaper::OwnedDir>,
    pub(crate) routing: NameRouting,
    pub(crate) backend_url: Url,
    pub(crate) pool: Option<PgPool>,
    pub(crate) database: Option<Database>,
    pub(crate) template: String,
    pub(crate) logs: LogBuffer,
    pub(crate) barrier: crate::barrier::LogBarrier,
    pub(crate) interceptor: Interceptor,
    pub(crate) mock: MockClerk,
    pub(crate) profile: Profile,
    pub(crate) config: HarnessConfig,
    pub(crate) choice: Choice,
    pub(crate) env_changes: EnvChanges,
    pub(crate) http: reqwest::Client,
    pub(crate) times: BringUpTimes,
    pub(crate) progress: Progress,
    pub(crate) _log_dir: Option<crate::reaper::OwnedDir>,
    /// Side backends being stopped in the background ([`TestEnv::retire`]).
    pub(crate) retiring: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    // After the interceptor, so the CA dir is removed before it is unregistered.
    pub(crate) _ca_dir: crate::reaper::Registration,
}

/// Receives a short line for each phase of a bring-up or restart ("starting Postgres (local)
/// and the mock Clerk", "restarting the backend"…): for progress output and for saying what
/// was running when a run is interrupted.
pub type Progress = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// How long each phase of [`TestEnvBuilder::start`] took.
#[derive(Debug, Clone, Copy, Default)]
pub struct BringUpTimes {
    /// Choosing the runtime (Docker probes).
    pub choose: Duration,
    /// Building the backend's image from its Dockerfile (near zero when reused).
    pub image_build: Duration,
    /// Postgres server (or reuse of the process's), with the mock and proxy started — and a
    /// container's clock probed — meanwhile.
    pub postgres_and_mock: Duration,
    /// Routing by name and the backend's clock (a container's libfaketime probe runs during
    /// `postgres_and_mock`).
    pub clock: Duration,
    /// The template database: the profile's setup steps (the backend's own code) on first use.
    pub template: Duration,
    /// The fresh database cloned from the template.
    pub database: Duration,
    /// The backend's start until its health path answers (mostly the backend's own start).
    pub backend: Duration,
    /// Everything.
    pub total: Duration,
}

impl BringUpTimes {
    /// The harness's own share: everything but the profile's setup and the backend's start.
    #[must_use]
    pub fn harness_share(&self) -> Duration {
        self.total.saturating_sub(self.template + self.backend)
    }
}

/// A signed-in Clerk user of the mock.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The user.
    pub user: User,
    /// Their active session.
    pub session: Session,
}

/// The backend's row for a Clerk user, as the profile's user SQL returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedUser {
    /// `clerk_user_id`.
    pub clerk_user_id: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `first_name`.
    pub first_name: Option<String>,
    /// `last_name`.
    pub last_name: Option<String>,
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

/// The backend's clock for the chosen runtime (see [`crate::clock`]), and the directory of
/// its timestamp file when libfaketime is used.
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

/// What a bring-up probe of one endpoint found.
enum EndpointProbe {
    Fine,
    Mismatch(HarnessError),
}

fn no_database() -> HarnessError {
    HarnessError::NotApplicable("this environment has no database (HARNESS_POSTGRES=none): the backend's tables cannot be read".into())
}

async fn connect_pool(database: &Database) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(5)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&database.url())
        .await
        .map_err(HarnessError::db(format!("connecting to the backend's database {}", database.name())))
}

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

    /// The backend's clock: move it ([`BackendClock::advance`], [`BackendClock::set_offset`])
    /// instead of sleeping; [`BackendClock::unavailable_reason`] says when it cannot be moved.
    #[must_use]
    pub fn backend_clock(&self) -> &BackendClock {
        &self.clock
    }

    /// The mock Clerk instance the backend is wired to.
    #[must_use]
    pub fn mock(&self) -> &MockClerk {
        &self.mock
    }

    /// The TLS-intercepting proxy (blocked hosts, handshake failures).
    #[must_use]
    pub fn interceptor(&self) -> &Interceptor {
        &self.interceptor
    }

    /// A pool on the backend's database.
    ///
    /// # Errors
    /// [`HarnessError::NotApplicable`] when the environment has no database
    /// ([`PostgresMode::None`]).
    pub fn db(&self) -> Result<&PgPool> {
        self.pool.as_ref().ok_or_else(no_database)
    }

    /// The backend's database (`None` without Postgres: [`PostgresMode::None`]).
    #[must_use]
    pub fn database(&self) -> Option<&Database> {
        self.database.as_ref()
    }

    /// Whether the backend has a database the harness can read.
    #[must_use]
    pub fn has_database(&self) -> bool {
        self.pool.is_some()
    }

    /// The configuration the environment was started with.
    #[must_use]
    pub fn config(&self) -> &HarnessConfig {
        &self.config
    }

    /// The backend's base URL.
    #[must_use]
    pub fn backend_url(&self) -> &Url {
        &self.backend_url
    }

    /// The running backend (`None` after a failed restart).
    #[must_use]
    pub fn backend(&self) -> Option<&Backend> {
        self.backend.as_ref()
    }

    /// The profile.
    #[must_use]
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// What runs where, and why.
    #[must_use]
    pub fn choice(&self) -> &Choice {
        &self.choice
    }

    /// The SPA-like client.
    #[must_use]
    pub fn spa(&self) -> Spa<'_> {
        Spa::new(&self.mock, &self.profile, &self.backend_url, &self.http)
    }

    /// How long the bring-up took, phase by phase.
    #[must_use]
    pub fn bring_up_times(&self) -> BringUpTimes {
        self.times
    }

    /// The plain HTTP client (no proxy, no Origin).
    #[must_use]
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Creates a Clerk user with an active session.
    ///
    /// # Errors
    /// The email is taken in the mock.
    pub fn sign_in(&self, user: NewUser) -> Result<SignedIn> {
        let user = self.mock.create_user(user)?;
        let session = self.mock.create_session(&user.id)?;
        Ok(SignedIn { user, session })
    }

    /// The backend's row for `clerk_user_id`, found with the profile's user SQL.
    ///
    /// # Errors
    /// The SQL failed (wrong table or columns in the profile).
    pub async fn synced_user(&self, clerk_user_id: &str) -> Result<Option<SyncedUser>> {
        let row = sqlx::query(self.profile.user.sql.get())
            .bind(clerk_user_id)
            .fetch_optional(self.db()?)
            .await
            .map_err(HarnessError::db(format!("running the user SQL of profile {}", self.profile.name)))?;
        Ok(row.map(|row| SyncedUser {
            clerk_user_id: row.try_get("clerk_user_id").ok(),
            email: row.try_get("email").ok(),
            first_name: row.try_get("first_name").ok(),
            last_name: row.try_get("last_name").ok(),
        }))
    }

    /// Every captured log line of the backend (all its starts).
    #[must_use]
    pub fn logs(&self) -> Vec<String> {
        self.logs.lines()
    }

    /// The current end of the log, for [`TestEnv::log_lines_since`].
    #[must_use]
    pub fn log_mark(&self) -> LogMark {
        self.logs.mark()
    }

    /// Log lines written after `mark`.
    #[must_use]
    pub fn log_lines_since(&self, mark: LogMark) -> Vec<String> {
        self.logs.since(mark)
    }

    /// Log lines written after `start` and before `end`: a scenario's window, `end` from
    /// [`TestEnv::settle_log`] once its last request was answered.
    #[must_use]
    pub fn log_lines_between(&self, start: LogMark, end: LogMark) -> Vec<String> {
        self.logs.between(start, end)
    }

    /// How Clerk's host names reach the mock for this backend (or why they do not).
    #[must_use]
    pub fn name_routing(&self) -> &NameRouting {
        &self.routing
    }

    /// Requests the mock answered for Clerk's hosts since `mark`, through the proxy or the
    /// TLS front: "did the backend's outbound call reach the mock?".
    #[must_use]
    pub fn clerk_calls_since(&self, mark: LogMark) -> Vec<mock_clerk::intercept::RoutedRequest> {
        self.interceptor.routed_requests().into_iter().filter(|r| r.at >= mark.at() && self.routing.hosts().contains(&r.host)).collect()
    }

    /// Whether the backend's log since `mark` shows an outbound connection that failed
    /// (name resolution, refused, unreachable, timed out) to a host the mock never saw a
    /// request for in that window: the host, the log line, and (via [`Unreached::fix`]) what
    /// to do. `None` when the log shows no such failure, or the mock did see the call.
    ///
    /// A backend still waiting on the connection (retries with back-off) has logged nothing
    /// yet: combine with [`TestEnv::clerk_calls_since`] after a timed-out request.
    #[must_use]
    pub fn outbound_diagnosis(&self, since: LogMark) -> Option<Unreached> {
        let lines = self.logs.since(since);
        crate::routing::diagnose(&lines, &self.interceptor.routed_requests(), since.at(), self.routing.hosts(), &self.routing)
    }

    /// For a request to the backend that timed out: [`TestEnv::outbound_diagnosis`] if the log
    /// already shows a failed connection, else — when Clerk's host names are not routed and the
    /// mock saw no Clerk call since `since` — an inferred [`Unreached`] (a client that ignores
    /// the proxy and is still retrying). `None` otherwise.
    #[must_use]
    pub fn timeout_diagnosis(&self, since: LogMark) -> Option<Unreached> {
        self.outbound_diagnosis(since).or_else(|| crate::routing::diagnose_silence(&self.interceptor.routed_requests(), since.at(), &self.routing))
    }

    /// Whether the backend logs the harness's barriers: `Some(true)` once one was logged,
    /// `Some(false)` once one was answered without a line (log windows then close on a quiet
    /// log), `None` before either (or with no captured log).
    #[must_use]
    pub fn log_barriers(&self) -> Option<bool> {
        self.barrier.logged()
    }

    /// Waits until the backend's log holds the lines of every request answered so far, and
    /// returns where they end: the end of a scenario's log window
    /// ([`TestEnv::log_lines_between`]). See [`crate::barrier`]'s module doc: a marked
    /// request to the health path whose log line must arrive, else a quiet log. Costs a
    /// loopback request and a few milliseconds on a backend that logs its requests, about
    /// [`QUIET`](crate::barrier::QUIET) on one that does not, nothing on a backend given by URL.
    pub async fn settle_log(&self) -> LogMark {
        match &self.backend {
            // No captured log, or no backend running (a failed restart: its pipes are drained).
            None | Some(Backend::External(_)) => self.logs.mark(),
            Some(_) => self.barrier.settle(&self.logs, &self.backend_url, self.profile.health_path.get()).await,
        }
    }

    /// The log buffer (also mirrored to a file: [`LogBuffer::file`]).
    #[must_use]
    pub fn log_buffer(&self) -> &LogBuffer {
        &self.logs
    }

    /// Stops the backend and starts a new one, with a fresh database from the template and
    /// the environment changed by `changes` (on top of the builder's changes).
    ///
    /// # Errors
    /// [`HarnessError::NotApplicable`] for an external backend; otherwise the start errors
    /// (e.g. [`HarnessError::BackendExited`] when a required variable is missing). The
    /// environment then has no backend until the next successful restart.
    pub async fn restart_backend_with(&mut self, changes: EnvChanges) -> Result<()> {
        if self.choice.backend == BackendMode::Url {
            return Err(HarnessError::NotApplicable(
                "the backend was given as a URL (HARNESS_BACKEND_URL): the harness cannot restart it with another environment".into(),
            ));
        }
        (self.progress)("restarting the backend");
        let t0 = Instant::now();
        // A local process is stopped while its successor starts (on another port, with another
        // database): its graceful exit (≈ 0.2 s for uvicorn) overlaps the new start instead of
        // preceding it, and is awaited before this returns, so none of its lines can land in
        // the next scenario's log window. Other kinds stop first, as before.
        let old = self.backend.take();
        let old_pool = self.pool.take();
        let overlap = matches!(old, Some(Backend::Process(_)));
        let stop_old = async move {
            if let Some(pool) = old_pool {
                pool.close().await;
            }
            if let Some(old) = old {
                old.stop().await;
            }
            t0.elapsed()
        };
        let parts = self.parts();
        let mut merged = self.env_changes.clone();
        merged.merge(&changes);
        let (old_database, template, logs) = (self.database.as_ref(), &self.template, self.logs.clone());
        let start_new = async {
            let database = match old_database {
                Some(database) => {
                    let database = parts.database(database.server(), template).await?;
                    let pool = connect_pool(&database).await?;
                    Some((database, pool))
                }
                None => None,
            };
            let databased = t0.elapsed();
            let backend = parts.start_backend(database.as_ref().map(|(d, _)| d), &merged, logs).await;
            Ok::<_, HarnessError>((database, backend, databased))
        };
        let (started, stopped) = if overlap {
            tokio::join!(start_new, stop_old)
        } else {
            let stopped = stop_old.await;
            (start_new.await, stopped)
        };
        let (database, backend, databased) = started?;
        if let Some((database, pool)) = database {
            self.pool = Some(pool);
            self.database = Some(database);
        }
        let backend = match backend {
            // Something the two share (a fixed port of its own, a lock or pid file) may have
            // refused the new one while the old one ran: once more, alone, before failing.
            Err(e) if overlap => {
                tracing::info!(error = %e, "the overlapped start failed: starting once more after the old backend's exit");
                let parts = self.parts();
                parts.start_backend(self.database.as_ref(), &merged, self.logs.clone()).await?
            }
            other => other?,
        };
        tracing::info!(overlapped = overlap, stop = ?stopped, database = ?databased, start = ?(t0.elapsed() - databased), "backend restarted");
        self.backend_url = backend.url().clone();
        self.backend = Some(backend);
        Ok(())
    }
}

impl TestEnv {
    /// The pieces a backend start is wired from.
    fn parts(&self) -> crate::wiring::Parts<'_> {
        crate::wiring::Parts {
            profile: &self.profile,
            config: &self.config,
            choice: &self.choice,
            mock: &self.mock,
            interceptor: &self.interceptor,
            routing: &self.routing,
            clock: &self.clock,
            progress: &*self.progress,
        }
    }
}

impl TestEnv {
    /// After the bring-up probes: the backend's TLS client refused the per-run CA on a Clerk
    /// host and never got a request through — one error naming the fix, not a timeout or an
    /// `error` per scenario.
    fn check_tls_trust(&self, since: SystemTime) -> Result<()> {
        let mut hosts = vec!["api.clerk.com".to_owned(), self.mock.instance().fapi_host().to_owned()];
        hosts.extend(self.routing.hosts().iter().cloned());
        let untrusted = crate::routing::untrusted_tls(&self.interceptor.handshake_failures(), &self.interceptor.routed_requests(), since, &hosts);
        if untrusted.is_empty() {
            return Ok(());
        }
        let evidence = untrusted
            .iter()
            .map(|(host, alert, after)| format!("the TLS handshake for {host} failed ({alert}, {after:.1} s into the bring-up)"))
            .collect::<Vec<_>>()
            .join("; ");
        Err(HarnessError::ClerkTlsUntrusted { evidence, fix: crate::routing::UNTRUSTED_CA_FIX.into() })
    }

    /// Calls each profile endpoint without a token and — unless it syncs the user — with a
    /// valid token of a new user (endpoints concurrently). A route the backend does not have
    /// — 404 (the same answer as for a path that surely does not exist) or 405 — or a redirect
    /// to a login page is a profile mistake, reported here once instead of as a failure of
    /// every scenario. Timeouts and other answers are left to the scenarios.
    async fn probe_endpoints(&self) -> Result<()> {
        let client = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).timeout(self.config.request_timeout()).build()?;
        let probes = self.profile.endpoints.iter().map(|endpoint| self.probe_endpoint(&client, endpoint));
        for probe in futures::future::join_all(probes).await {
            if let EndpointProbe::Mismatch(e) = probe? {
                return Err(e);
            }
        }
        Ok(())
    }

    async fn probe_endpoint(&self, client: &reqwest::Client, endpoint: &crate::profile::Endpoint) -> Result<EndpointProbe> {
        // Without a token first: a route that does not exist answers 404/405 before any auth.
        if let EndpointProbe::Mismatch(e) = self.probe_once(client, endpoint, None).await? {
            return Ok(EndpointProbe::Mismatch(e));
        }
        // Then with a valid token (behind an auth layer that answers 401 to every path, only
        // this reaches the router) — not for an endpoint that syncs the user: that call would
        // leave a user row in the fresh database before the first test.
        if endpoint.syncs_user {
            return Ok(EndpointProbe::Fine);
        }
        let tag = crate::identity::random_token(8).to_ascii_lowercase();
        let me = self.sign_in(NewUser::with_email(&format!("bringup-probe-{tag}@harness.test")).names("Probe", "Bringup"))?;
        let token = self.spa().get_token(&me.session.id, &crate::spa::GetToken::ProfileDefault)?;
        self.probe_once(client, endpoint, Some((&me.session.id, &token))).await
    }

    async fn probe_once(&self, client: &reqwest::Client, endpoint: &crate::profile::Endpoint, token: Option<(&str, &str)>) -> Result<EndpointProbe> {
        let tag = crate::identity::random_token(8).to_ascii_lowercase();
        let method = endpoint.method.as_reqwest();
        let base = self.backend_url.as_str().trim_end_matches('/');
        let send = |path: String| {
            let mut request = client.request(method.clone(), format!("{base}{path}"));
            if let Some((session_id, token)) = token {
                request = self.spa().authenticate(request, Some(session_id), token);
            }
            if let Ok(origin) = reqwest::header::HeaderValue::from_str(self.profile.spa_origin()) {
                request = request.header(reqwest::header::ORIGIN, origin);
            }
            request.send()
        };
        let path = endpoint.path.get();
        let response = match send(path.clone()).await {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(endpoint = %path, error = %e, "bring-up probe of the endpoint got no answer: left to the scenarios");
                return Ok(EndpointProbe::Fine);
            }
        };
        let status = response.status();
        let location = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let body = response.text().await.unwrap_or_default();
        let mismatch = |answer: String, fix: String| {
            let to = if token.is_some() { "to a valid token" } else { "without a token" };
            EndpointProbe::Mismatch(HarnessError::EndpointMismatch {
                location: self.profile.location(&endpoint.path),
                method: method.as_str().into(),
                path: path.clone(),
                answer: format!("{answer} {to}"),
                fix: fix.into(),
            })
        };
        let login = ["login", "signin", "sign-in", "sign_in"];
        if status.is_redirection() && login.iter().any(|l| location.to_ascii_lowercase().contains(l)) {
            return Ok(mismatch(
                format!("{} with a redirect to {location}", status.as_u16()),
                "The route sends API calls to a login page (session or cookie auth, or a page route): point the profile's [[endpoints]] at the API route that takes `Authorization: Bearer`".into(),
            ));
        }
        if status == reqwest::StatusCode::METHOD_NOT_ALLOWED {
            return Ok(mismatch(
                "405 Method Not Allowed".into(),
                format!("The route {path} exists but not for {method}: fix the endpoint's `method` in the profile"),
            ));
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            // The backend's own "not found" (e.g. no such user) differs from its router's.
            let nowhere = format!("/clerk-harness-no-such-route-{tag}");
            let unrouted = match send(nowhere.clone()).await {
                Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => Some(r.text().await.unwrap_or_default()),
                _ => None,
            };
            if unrouted.is_some_and(|other| other.replace(&nowhere, "") == body.replace(path.as_str(), "")) {
                return Ok(mismatch(
                    format!("404 like a path that does not exist ({})", crate::text::excerpt_around(&crate::text::visible_text(&body), &[], 120)),
                    "Check the endpoint's path against the backend's routes (a prefix such as /api/v1, a trailing slash, or another app entry point than the one the profile starts)".into(),
                ));
            }
        }
        Ok(EndpointProbe::Fine)
    }

    async fn stop_backend(&mut self) {
        if let Some(backend) = self.backend.take() {
            backend.stop().await;
        }
    }

    /// Tears everything down, awaiting the backend's stop (SIGTERM, SIGKILL after a grace
    /// period that is reported if needed) instead of blocking in `Drop`. Dropping the
    /// environment does the same, blocking.
    pub async fn shutdown(mut self) {
        (self.progress)("tearing down");
        self.stop_backend().await;
        self.retired().await;
        if let Some(pool) = self.pool.take() {
            pool.close().await;
        }
        drop(self);
    }
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("profile", &self.profile.name.get())
            .field("backend", &self.backend)
            .field("database", &self.database.as_ref().map(Database::name))
            .field("choice", &self.choice.reason)
            .finish_non_exhaustive()
    }
}
