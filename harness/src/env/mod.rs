//! [`TestEnv`]: everything one test needs — the mock, the interception proxy, Postgres, the
//! backend under test, an sqlx pool on the backend's database, the SPA-like client, the logs.
//!
//! By responsibility: the bring-up ([`TestEnvBuilder`], `bringup.rs`), its probes of the
//! profile's endpoints (`probes.rs`), what the backend did — its log, its log windows, its
//! calls to Clerk (`observe.rs`) —, restarts (`restart.rs`) and backends started beside the
//! shared one (`beside.rs`). This file holds the environment and its accessors.

use std::time::Duration;

use mock_clerk::intercept::Interceptor;
use mock_clerk::{MockClerk, NewUser, Session, User};
use sqlx::postgres::PgPool;
use sqlx::Row;
use url::Url;

use crate::backend::{Backend, EnvChanges};
use crate::clock::BackendClock;
use crate::config::{Choice, HarnessConfig};
use crate::error::{HarnessError, Result};
use crate::logs::LogBuffer;
use crate::postgres::Database;
use crate::profile::Profile;
use crate::routing::NameRouting;
use crate::spa::Spa;

mod beside;
mod bringup;
mod observe;
mod probes;
mod restart;

pub use beside::{SideBackend, TrialStart};
pub use bringup::TestEnvBuilder;

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

fn no_database() -> HarnessError {
    HarnessError::NotApplicable("this environment has no database (HARNESS_POSTGRES=none): the backend's tables cannot be read".into())
}

impl TestEnv {
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
    /// ([`PostgresMode::None`](crate::PostgresMode::None)).
    pub fn db(&self) -> Result<&PgPool> {
        self.pool.as_ref().ok_or_else(no_database)
    }

    /// The backend's database (`None` without Postgres: [`PostgresMode::None`](crate::PostgresMode::None)).
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
