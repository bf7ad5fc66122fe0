//! Nothing left behind, even when the harness itself is killed.
//!
//! Everything the harness creates that could outlive it — process groups (the backend,
//! Postgres, setup steps, `initdb`), temp dirs (Postgres data, logs, the per-run CA with its
//! private key) and containers/networks — is [registered](register) here while it exists.
//! Three mechanisms consume the registry:
//!
//! - **Drop guards** tear each piece down in the normal case and on panics.
//! - **The watchdog** ([`start_watchdog`]): the `clerk-harness` binary in a hidden reaper
//!   mode, in a session of its own, holding a pipe from this process. Every registration is
//!   forwarded to it as a JSON line. When the pipe closes without a final `done` (the harness
//!   was SIGKILLed, or a test binary exited with resources still registered), it kills the
//!   process groups (SIGTERM or the group's own first signal, then SIGKILL), removes this run's
//!   containers and networks by label and deletes the temp dirs. Like testcontainers' Ryuk,
//!   but without a container registry.
//! - **`clerk-harness clean`** ([`clean`]): for crashes the watchdog could not handle (both
//!   killed, a reboot of the Docker daemon…). Every temp dir carries a [marker](crate::identity::MARKER_FILE)
//!   with its owner's pid, every child process the [`PID_ENV`](crate::identity::PID_ENV) variable, every container and
//!   network the [owner label](crate::identity::OWNER_LABEL): whatever belongs to a process that
//!   is gone is removed; a live run's resources are never touched.

mod leftovers;
mod registry;
mod teardown;
mod watchdog;

pub use leftovers::clean;
pub use registry::{register, GroupGuard, OwnedDir, Registration, Resource};
pub use teardown::ReapReport;
pub use watchdog::{ensure_watchdog, finish_watchdog, serve_reaper, start_watchdog, REAPER_ARG};
