//! The in-process test rig: the stub backend (crate `stub-backend`) started by the harness
//! without Python, Docker or Postgres, and helpers to run scenarios on it. Use it from a test
//! file with `mod stub;`.
#![allow(dead_code)]

use std::time::Duration;

use harness::{HarnessConfig, TestEnv};
use scenarios::{Ctx, Report, Scenario, ScenarioResult, Verdict};
#[allow(unused_imports)]
pub use stub_backend::{Behaviour, Refetch, Stub};

/// An environment on a stub behaving as `behaviour`.
pub async fn env(behaviour: Behaviour) -> TestEnv {
    env_with(behaviour, |c| c).await
}

/// An environment on a stub behaving as `behaviour`, with the configuration changed by `tune`.
pub async fn env_with(behaviour: Behaviour, tune: impl FnOnce(HarnessConfig) -> HarnessConfig) -> TestEnv {
    let config = tune(Stub::new(behaviour).config());
    TestEnv::builder(stub_backend::profile()).config(config).start().await.unwrap_or_else(|e| panic!("stub environment: {e}"))
}

/// The catalogue scenarios whose ids are listed, in that order.
pub fn scenarios(ids: &[&str]) -> Vec<Scenario> {
    ids.iter().map(|id| scenarios::catalogue().into_iter().find(|s| s.id == *id).unwrap_or_else(|| panic!("no scenario {id} in the catalogue"))).collect()
}

/// Runs `list` on a fresh stub environment behaving as `behaviour`.
pub async fn run(behaviour: Behaviour, list: &[Scenario]) -> Report {
    run_with(behaviour, |c| c, list).await
}

/// Runs `list` on a fresh stub environment, with the configuration changed by `tune`.
pub async fn run_with(behaviour: Behaviour, tune: impl FnOnce(HarnessConfig) -> HarnessConfig, list: &[Scenario]) -> Report {
    let mut ctx = Ctx::new(env_with(behaviour, tune).await);
    scenarios::run(&mut ctx, list, |_| {}).await
}

/// Runs the one catalogue scenario `id` on a stub behaving as `behaviour`.
pub async fn one(behaviour: Behaviour, id: &str) -> ScenarioResult {
    let report = run(behaviour, &scenarios(&[id])).await;
    report.results.into_iter().next().unwrap_or_else(|| panic!("{id} produced no result"))
}

/// Runs the one catalogue scenario `id` on a stub behaving as `behaviour`, with the
/// [`Ctx`] changed by `tune` first (e.g. a shorter key-rotation patience).
pub async fn one_tuned(behaviour: Behaviour, id: &str, tune: impl FnOnce(&mut Ctx)) -> ScenarioResult {
    let mut ctx = Ctx::new(env(behaviour).await);
    tune(&mut ctx);
    let report = scenarios::run(&mut ctx, &scenarios(&[id]), |_| {}).await;
    report.results.into_iter().next().unwrap_or_else(|| panic!("{id} produced no result"))
}

/// Asserts `result` has `verdict`, printing its diagnosis otherwise.
#[track_caller]
pub fn assert_verdict(result: &ScenarioResult, verdict: Verdict) {
    assert_eq!(result.verdict, verdict, "{}: note {:?}, diagnosis {:#?}", result.id, result.note, result.diagnosis);
}

/// A short request timeout, for tests of hangs.
pub fn quick_timeouts(request: Duration, scenario: Duration) -> impl FnOnce(HarnessConfig) -> HarnessConfig {
    move |c| HarnessConfig { request_timeout: Some(request), scenario_timeout: Some(scenario), ..c }
}
