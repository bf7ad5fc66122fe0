//! Runs scenarios against an environment, one after another, and turns each outcome into a
//! [`ScenarioResult`] with a diagnosis on failure.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use harness::{EnvChanges, HarnessError};
use serde::Serialize;

use crate::ctx::Ctx;
use crate::scenario::{Diagnosis, Isolation, Outcome, Scenario, ScenarioResult, Verdict};
use crate::StepError;

/// The class of an `error` diagnosis: never one of the backend's fault classes.
pub const HARNESS_ERROR_CLASS: &str = "harness-error";

/// Every result of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The profile's name.
    pub profile: String,
    /// What ran where (the runtime choice).
    pub environment: String,
    /// Results in run order.
    pub results: Vec<ScenarioResult>,
    /// Wall time of the scenarios (bring-up excluded).
    pub duration_ms: u64,
}

impl Report {
    /// True when every scenario passed or warned: no `fail`, no `error`, and at least one
    /// scenario applied.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.exit_code() == 0
    }

    /// The CLI's exit code: 0 when every applicable scenario passed or warned, 1 when one
    /// failed (the backend is wrong), 2 when the harness could not judge one or nothing
    /// applied.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        let applicable = self.results.iter().filter(|r| r.verdict != Verdict::NotApplicable).count();
        if applicable == 0 || self.results.iter().any(|r| r.verdict == Verdict::Error) {
            2
        } else if self.results.iter().any(|r| r.verdict == Verdict::Fail) {
            1
        } else {
            0
        }
    }

    /// Results with `verdict`.
    pub fn with_verdict(&self, verdict: Verdict) -> impl Iterator<Item = &ScenarioResult> {
        self.results.iter().filter(move |r| r.verdict == verdict)
    }

    /// Whether a fault of `class` was caught: some scenario *failed* with a diagnosis of that
    /// class. A harness `error` never counts, whatever its diagnosis says, nor a warning.
    #[must_use]
    pub fn catches(&self, class: &str) -> bool {
        self.with_verdict(Verdict::Fail).any(|r| r.diagnosis.as_ref().is_some_and(|d| d.class == class))
    }

    /// The result of scenario `id`.
    #[must_use]
    pub fn result(&self, id: &str) -> Option<&ScenarioResult> {
        self.results.iter().find(|r| r.id == id)
    }
}

/// Runs `scenarios` in order on `ctx`, calling `progress` after each.
pub async fn run(ctx: &mut Ctx, scenarios: &[Scenario], mut progress: impl FnMut(&ScenarioResult)) -> Report {
    // Open the pool's first connection now, not inside the first scenario's timing.
    if let Ok(db) = ctx.env.db() {
        let _ = sqlx::query("SELECT 1").execute(db).await;
    }
    let started = Instant::now();
    let mut results = Vec::with_capacity(scenarios.len());
    for scenario in scenarios {
        let result = run_one(ctx, scenario).await;
        progress(&result);
        results.push(result);
    }
    Report {
        profile: ctx.env.profile().name.get().clone(),
        environment: ctx.env.choice().reason.trim_start_matches("clerk-harness: ").to_string(),
        results,
        duration_ms: millis(started.elapsed()),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Runs one scenario: a clean backend first if the previous one left state behind, faults
/// and clock reset afterwards.
pub async fn run_one(ctx: &mut Ctx, scenario: &Scenario) -> ScenarioResult {
    let started = Instant::now();
    let mut prepare_error = None;
    if scenario.isolation == Isolation::Shared && (ctx.dirty || ctx.env.backend().is_none()) {
        if let Err(e) = ctx.fresh_backend(EnvChanges::new()).await {
            prepare_error = Some(format!("could not start a clean backend: {e}"));
        }
        ctx.dirty = false;
    }
    let _ = ctx.take_backend_time();
    let mark = ctx.env.log_mark();
    let outcome = match prepare_error {
        Some(e) => Err(e),
        None => match AssertUnwindSafe((scenario.body)(ctx)).catch_unwind().await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(StepError::Harness(HarnessError::NotApplicable(why)))) => Ok(Outcome::NotApplicable(why)),
            Ok(Err(step)) => Err(format!("the harness could not run this scenario: {step}")),
            Err(panic) => Err(format!(
                "the scenario panicked: {}",
                panic.downcast_ref::<String>().map(String::as_str).or_else(|| panic.downcast_ref::<&str>().copied()).unwrap_or("?")
            )),
        },
    };
    ctx.env.mock().faults().clear();
    ctx.env.mock().clock().reset();
    if scenario.isolation == Isolation::FreshBackend {
        ctx.dirty = true;
    }
    let backend_ms = millis(ctx.take_backend_time());
    let log: Vec<String> = {
        let lines = ctx.env.log_lines_since(mark);
        let skip = lines.len().saturating_sub(30);
        lines.into_iter().skip(skip).collect()
    };
    let (verdict, note, diagnosis) = match outcome {
        Ok(Outcome::Pass(note)) => (Verdict::Pass, note, None),
        Ok(Outcome::NotApplicable(why)) => (Verdict::NotApplicable, why, None),
        Ok(Outcome::Warn(finding)) => {
            let summary = finding.problem.clone();
            (Verdict::Warn, String::new(), Some(diagnose(scenario, summary, finding.sent, finding.got, log)))
        }
        Ok(Outcome::Fail(finding)) => {
            let summary = finding.problem.clone();
            (Verdict::Fail, String::new(), Some(diagnose(scenario, summary, finding.sent, finding.got, log)))
        }
        Ok(Outcome::Error(message)) | Err(message) => {
            let mut d = diagnose(scenario, message, scenario.sends.into(), None, log);
            d.class = HARNESS_ERROR_CLASS.into();
            d.clerk_reason = None;
            d.fix =
                "not a finding about the backend: the harness or the environment could not judge this scenario (see the problem and the backend log)".into();
            (Verdict::Error, String::new(), Some(d))
        }
    };
    tracing::debug!(id = scenario.id, ?verdict, "scenario done");
    ScenarioResult {
        id: scenario.id.into(),
        title: scenario.title.into(),
        group: scenario.group,
        verdict,
        duration_ms: millis(started.elapsed()),
        backend_ms,
        note,
        diagnosis,
    }
}

fn diagnose(scenario: &Scenario, summary: String, sent: String, got: Option<crate::scenario::Exchange>, backend_log: Vec<String>) -> Diagnosis {
    Diagnosis {
        summary,
        sent,
        expected: scenario.expects.into(),
        got,
        backend_log,
        class: scenario.class.into(),
        clerk_reason: scenario.reason.map(str::to_string),
        fix: scenario.fix.into(),
    }
}
