//! # harness
//!
//! Brings up an environment for testing a team's REAL backend against an offline Clerk:
//! Postgres, the [`mock_clerk`] instance, the TLS-intercepting proxy that makes the mock
//! reachable as `https://api.clerk.com` and `https://<fapi host>`, and the backend itself —
//! configured only by a [backend profile](Profile).
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
//! Each piece has interchangeable providers, chosen by `HARNESS_RUNTIME=auto|docker|local`
//! and per-piece overrides (see [`config`]): Postgres from testcontainers, from the machine's
//! binaries or from a URL; the backend as a container, a local process or a URL. One Postgres
//! server serves the whole test binary; every backend process gets its own database, cloned
//! from a template on which the profile's setup ran once.
//!
//! Everything started is owned by a guard: processes (whole process groups), containers and
//! temp dirs are gone when the [`TestEnv`] is dropped, also when a test panics; and
//! [registered](reaper) with a watchdog process that removes them if this process is killed.

pub mod backend;
pub mod barrier;
pub mod build;
pub mod clock;
pub mod config;
pub mod docker;
pub mod env;
pub mod error;
pub mod identity;
pub mod logs;
pub mod postgres;
pub mod process;
pub mod profile;
pub mod reaper;
pub mod routing;
pub mod runtime;
pub mod spa;
pub mod text;
mod wiring;

pub use backend::{Backend, EnvChanges};
pub use clock::BackendClock;
pub use config::{parse_env_arg, BackendMode, Choice, HarnessConfig, PostgresMode, Runtime};
pub use docker::HOST_GATEWAY_NAME;
pub use env::{BringUpTimes, Progress, SideBackend, SignedIn, SyncedUser, TestEnv, TestEnvBuilder, TrialStart};
pub use error::{HarnessError, Result};
pub use logs::{LogBuffer, LogMark};
pub use profile::{Guard, Profile, RequiredVar, TokenKind, Transport, UserField};
pub use routing::{NameRouting, Unreached};
pub use spa::{CookieJar, GetToken, Spa};
