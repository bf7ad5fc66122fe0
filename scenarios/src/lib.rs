//! # scenarios
//!
//! The catalogue of ways Clerk auth goes wrong between a SPA and its backend — tokens,
//! environment, CORS, user sync, webhooks, 401 loops — each as data with the correct
//! behaviour and a diagnosis, and the runner shared by the `cargo test` suites and the
//! `clerk-harness` CLI.
//!
//! A run takes a [`Ctx`] (a running [`harness::TestEnv`] plus what the run measures of the
//! backend) and a list of [`Scenario`]s, and gives a [`Report`]: one [`ScenarioResult`] per
//! scenario with its [`Verdict`], a [`Diagnosis`] for every warning and failure, and the
//! backend's [`Fingerprint`]. Bring a backend up with its profile and run the catalogue:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use harness::{Profile, TestEnv};
//! let env = TestEnv::start(Profile::reference()?).await?;
//! let mut ctx = scenarios::Ctx::new(env);
//! let report = scenarios::run(&mut ctx, &scenarios::catalogue(), |r| eprintln!("{} {:?}", r.id, r.verdict)).await;
//! assert!(report.passed(), "{}", scenarios::render(&report, scenarios::Format::Table));
//! # Ok(()) }
//! ```
//!
//! The catalogue is plain data: choose scenarios by id, and render any report — here one
//! made by hand — as a table, JSON, JUnit XML or an HTML page:
//!
//! ```
//! use scenarios::{catalogue, matching, render, Fingerprint, Format, Group, Report, ScenarioResult, Verdict};
//!
//! let all = catalogue();
//! assert!(all.iter().any(|s| s.id == "tokens.expired"));
//! let tokens = matching(Some("tokens.expired,tokens.alg_none"));
//! assert!(tokens.iter().all(|s| s.group == Group::Tokens));
//! assert_eq!(matching(None).len(), all.len());
//!
//! let expired = &tokens[0];
//! let result = ScenarioResult {
//!     id: expired.id.into(),
//!     title: expired.title.into(),
//!     group: expired.group,
//!     verdict: Verdict::Pass,
//!     duration_ms: 12,
//!     backend_ms: 3,
//!     note: "rejected: 401".into(),
//!     diagnosis: None,
//!     exchanges: vec![],
//!     events: vec![],
//! };
//! let report = Report {
//!     profile: "example".into(),
//!     environment: "hand-made".into(),
//!     results: vec![result],
//!     duration_ms: 12,
//!     stopped: None,
//!     fingerprint: Fingerprint::default(),
//! };
//! assert!(report.passed());
//! assert!(render(&report, Format::Table).contains("tokens.expired"));
//! assert!(render(&report, Format::Junit).contains("<testsuite"));
//! ```
//!
//! ## The API
//!
//! - Choosing: [`catalogue`], [`matching`]; a [`Scenario`] is data (its [`Group`],
//!   [`Isolation`], what it sends and expects, the fix) plus a [`Body`].
//! - Running: [`run`] (or [`run_one`]) with a [`Ctx`] gives a [`Report`] ([`ScenarioResult`], [`Verdict`],
//!   [`Diagnosis`], [`RootCause`], [`Stopped`]); a body returns an [`Outcome`] ([`Finding`],
//!   [`Exchange`], [`Redirect`], [`Recognised`]) or a [`StepError`].
//! - What a run measured of the backend: [`Fingerprint`] ([`Leeway`], [`Claim`], [`Fact`],
//!   [`Cause`]) and its [`Stack`] ([`Language`], [`Library`]); the requests of a scenario
//!   as a timeline ([`Hop`], [`Event`], [`Party`], [`DecodedToken`]).
//! - Reports: [`render`] in a [`Format`] (table, JSON, JUnit XML, HTML), [`progress_line`].
//! - A real 401 loop from a browser's HAR: [`read_har`] gives a [`Recording`], which a
//!   [`ReplayFile`] keeps beside the profile ([`write_replay`], [`load_replays`]);
//!   [`run_replays`] runs replay files, [`replay_scenarios`] makes them catalogue scenarios.

// Every public type is nameable from the crate root (or the hidden `internal` module the CLI,
// the tests and the benches use): the modules are private, the API is the re-exports below.
#![warn(unnameable_types)]
#![warn(missing_docs)]

mod catalogue;
mod checks;
mod ctx;
mod error;
mod fingerprint;
mod loops;
mod outbound;
mod pages;
mod reference;
mod replay;
mod report;
mod runner;
mod scenario;
mod stack;
mod timeline;

pub use catalogue::{catalogue, matching};
pub use ctx::Ctx;
pub use error::StepError;
pub use fingerprint::{Cause, Claim, Fact, Fingerprint, Leeway};
pub use pages::Recognised;
pub use reference::catalogue_markdown;
pub use replay::{load_replays, read_har, run_files as run_replays, scenarios as replay_scenarios, write_replay, Recording, ReplayError, ReplayFile};
pub use report::{progress_line, render, Format};
pub use runner::{run, run_one, Report, RootCause, Stopped};
pub use scenario::{Body, BoxFut, Diagnosis, Exchange, Finding, Group, Isolation, Outcome, Redirect, Scenario, ScenarioResult, Verdict};
pub use stack::{Language, Library, Stack};
pub use timeline::{DecodedToken, Event, Hop, Party};

/// What the `clerk-harness` binary, the tests and the benches use beyond the API: no
/// stability promise.
#[doc(hidden)]
pub mod internal {
    pub use crate::checks::tokens::{judge_cold_cache, ColdPhase};
    pub use crate::loops::{LoopVerdict, SpaPolicy};
    pub use crate::replay::run::recorded_loop;
    pub use crate::replay::{analyse, describe, har, name_from};
    pub use crate::runner::HARNESS_ERROR_CLASS;
}
