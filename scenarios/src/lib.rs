//! # scenarios
//!
//! The catalogue of ways Clerk auth goes wrong between a SPA and its backend — tokens,
//! environment, CORS, user sync, webhooks, 401 loops — each as data with the correct
//! behaviour and a diagnosis, and the runner shared by the `cargo test` suites and the
//! `clerk-harness` CLI.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use harness::{Profile, TestEnv};
//! let env = TestEnv::start(Profile::reference()?).await?;
//! let mut ctx = scenarios::Ctx::new(env);
//! let report = scenarios::run(&mut ctx, &scenarios::catalogue(), |r| eprintln!("{} {:?}", r.id, r.verdict)).await;
//! assert!(report.passed(), "{}", scenarios::report::render(&report, scenarios::report::Format::Table));
//! # Ok(()) }
//! ```

pub mod catalogue;
pub mod checks;
pub mod ctx;
mod error;
pub mod fingerprint;
pub mod loops;
pub mod outbound;
pub mod pages;
mod reference;
pub mod replay;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod stack;
pub mod timeline;

pub use catalogue::{catalogue, matching};
pub use ctx::Ctx;
pub use error::StepError;
pub use fingerprint::{Cause, Fingerprint};
pub use loops::{LoopVerdict, SpaPolicy};
pub use reference::catalogue_markdown;
pub use runner::{run, Report};
pub use scenario::{Diagnosis, Exchange, Finding, Group, Isolation, Outcome, Redirect, Scenario, ScenarioResult, Verdict};
