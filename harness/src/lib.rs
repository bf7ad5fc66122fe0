//! # harness
//!
//! Brings up an environment for testing a team's REAL backend against an offline Clerk:
//! Postgres, the [`mock_clerk`] instance, the TLS-intercepting proxy that makes the mock
//! reachable as `https://api.clerk.com` and `https://<fapi host>`, and the backend itself —
//! configured only by a [backend profile](Profile), a TOML file that says how to start the
//! backend, which variables wire it to Clerk, which endpoints need a token and where the
//! synced user is.
//!
//! A profile is plain data, read and checked before anything starts; a mistake in it names
//! its line and what is allowed:
//!
//! ```
//! use harness::{Profile, TokenKind, Transport};
//!
//! let text = r#"
//! name = "api"
//! health_path = "/health"
//! required_env = ["CLERK_SECRET_KEY"]
//!
//! [process]
//! command = ["python", "-m", "uvicorn", "app:app", "--port", "{port}"]
//!
//! [env]
//! CLERK_SECRET_KEY = "{secret_key}"
//! DATABASE_URL = "{database_url}"
//!
//! [token]
//! kind = "session"
//! authorized_parties = ["http://localhost:3000"]
//!
//! [cors]
//! allowed_origins = ["http://localhost:3000"]
//!
//! [[endpoints]]
//! method = "GET"
//! path = "/api/me"
//! syncs_user = true
//!
//! [user]
//! sql = "SELECT clerk_user_id, email, first_name, last_name FROM users WHERE clerk_user_id = $1"
//! "#;
//! let profile = Profile::parse(text, "api.toml", ".")?;
//! assert_eq!(profile.name.get(), "api");
//! assert_eq!(profile.spa_origin(), "http://localhost:3000");
//! assert_eq!(*profile.token.kind.get(), TokenKind::Session);
//! assert_eq!(*profile.token.transport.get(), Transport::Bearer);
//! let me = profile.sync_endpoints().next().expect("an endpoint that syncs the user");
//! assert_eq!(me.path.get(), "/api/me");
//!
//! let typo = text.replace("health_path", "health_pth");
//! let err = Profile::parse(&typo, "api.toml", ".").expect_err("unknown field");
//! assert!(err.to_string().starts_with("api.toml:3:1: unknown field `health_pth`"), "{err}");
//! # Ok::<(), harness::HarnessError>(())
//! ```
//!
//! With a profile, [`TestEnv`] brings everything up; the [`Spa`] calls the backend the way
//! the frontend does, and the environment reads what the backend did (its log, its database,
//! its calls to Clerk). Run this with Postgres binaries or Docker at hand:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use harness::{GetToken, Profile, TestEnv};
//! use mock_clerk::NewUser;
//!
//! let env = TestEnv::start(Profile::reference()?).await?;
//! let me = env.sign_in(NewUser::with_email("ada@example.com").names("Ada", "Lovelace"))?;
//! let token = env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
//! let response = env.spa().get("/api/v1/auth/me").bearer_auth(token).send().await?;
//! assert_eq!(response.status(), 200);
//! assert!(env.synced_user(&me.user.id).await?.is_some());
//! # Ok(()) }
//! ```
//!
//! ## The API
//!
//! - [`TestEnv`] — a running environment: [`TestEnv::start`] or [`TestEnv::builder`]
//!   ([`TestEnvBuilder`]: config, environment changes, progress lines); users
//!   ([`TestEnv::sign_in`] → [`SignedIn`], [`TestEnv::synced_user`] → [`SyncedUser`]), the
//!   backend ([`Backend`] and its kinds, restarts with [`EnvChanges`], [`SideBackend`]s and
//!   [`TrialStart`]s beside it), its [`Database`], and what the bring-up took
//!   ([`BringUpTimes`]). Dropping it tears everything down.
//! - [`HarnessConfig`] — what runs where: [`Runtime`] (`HARNESS_RUNTIME=auto|docker|local`),
//!   [`PostgresMode`], [`BackendMode`] and the [`Choice`] made, from `HARNESS_*` variables
//!   ([`HarnessConfig::from_env`]) or set in code. A backend served in this process is a
//!   [`Launcher`] ([`InProcessServer`], [`LaunchFuture`]).
//! - [`Profile`] — the backend profile and its parts ([`ProcessSpec`], [`ContainerSpec`],
//!   [`TokenSpec`] with [`TokenKind`] and [`Transport`], [`CorsSpec`], [`Endpoint`] with
//!   [`Method`] and [`OrgGate`], [`UserSpec`] with [`UserField`], [`RequiredVar`] with its
//!   [`Guard`]); every value is [`Located`], so errors point at its line.
//! - [`Spa`] / [`GetToken`] / [`CookieJar`] — the SPA-like client ([`TestEnv::spa`]).
//! - [`BackendClock`] — the backend's clock, moved with the mock's instead of sleeping
//!   (libfaketime for processes and containers, the launcher's clock in process).
//! - [`LogBuffer`] / [`LogMark`] / [`Stream`] — the backend's captured log and the windows
//!   scenarios read it in ([`TestEnv::settle_log`]).
//! - [`NameRouting`] / [`Unreached`] — how Clerk's host names reach the mock, and what to do
//!   when a backend's call did not; [`HOST_GATEWAY_NAME`] for containers.
//! - [`HarnessError`] / [`Result`] — every error says what to do next.
//!
//! Each piece has interchangeable providers: Postgres from testcontainers, from the machine's
//! binaries or from a URL; the backend as a container, a local process, a URL or served in
//! this process. One Postgres server serves the whole test binary; every backend gets its own
//! database, cloned from a template on which the profile's setup ran once.
//!
//! Everything started is owned by a guard: processes (whole process groups), containers and
//! temp dirs are gone when the [`TestEnv`] is dropped, also when a test panics; and
//! registered with a watchdog process (the `clerk-harness` binary) that removes them if this
//! process is killed.

// Every public type is nameable from the crate root (or, for the binary, tests and benches,
// from the hidden `internal` module): the modules are private, the API is the curated set of
// re-exports below.
#![warn(unnameable_types)]
#![warn(missing_docs)]

mod backend;
mod barrier;
mod build;
mod clock;
mod config;
mod docker;
mod env;
mod error;
mod identity;
mod logs;
mod postgres;
mod process;
mod profile;
mod reaper;
mod routing;
mod runtime;
mod spa;
mod text;
mod wiring;

pub use backend::{Backend, ContainerBackend, EnvChanges, InProcessBackend, InProcessServer, LaunchFuture, Launcher, ProcessBackend};
pub use clock::BackendClock;
pub use config::{parse_env_arg, BackendMode, Choice, HarnessConfig, PostgresMode, Runtime};
pub use docker::HOST_GATEWAY_NAME;
pub use env::{BringUpTimes, Progress, SideBackend, SignedIn, SyncedUser, TestEnv, TestEnvBuilder, TrialStart};
pub use error::{HarnessError, Result};
pub use logs::{LogBuffer, LogMark, Stream};
pub use postgres::{Database, DatabaseOffline};
pub use profile::{
    ContainerSpec, CorsSpec, Endpoint, Guard, Located, Method, OrgGate, ProcessSpec, Profile, ProfileSource, RequiredVar, TokenKind, TokenSpec, Transport,
    UserField, UserSpec,
};
pub use routing::{NameRouting, Unreached};
pub use spa::{CookieJar, GetToken, Spa};

/// What the `clerk-harness` binary, the `scenarios` crate, the tests and the benches use of
/// the harness's insides. Not part of the API: it changes without notice.
#[doc(hidden)]
pub mod internal {
    pub use crate::backend::probe_faketime;
    pub use crate::build::{ensure_image, Built};
    pub use crate::clock::{faketime_shm_files, find_libfaketime, prepare_container_dir};
    pub use crate::docker::{connect, containers_of, image_present, labelled, require_docker_tests};
    pub use crate::identity::{random_token, run_id, MARKER_FILE, OWNER_LABEL};
    pub use crate::postgres::{database_placeholders, find_binaries, BinSearch, BinSpec, DockerPostgres, LocalPostgres, PgServer, ServerSpec};
    pub use crate::profile::PLACEHOLDERS;
    pub use crate::reaper::{clean, finish_watchdog, serve_reaper, start_watchdog, ReapReport, REAPER_ARG};
    pub use crate::routing::UNTRUSTED_CA_FIX;
    pub use crate::runtime::choose;
    pub use crate::text::excerpt_around;
}
