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
    /// Set when the run stopped early (the same environment-level error again and again).
    pub stopped: Option<Stopped>,
    /// What the run measured of the backend (leeways, JWKS cache, caches, session, Backend
    /// API failures) and its stack.
    pub fingerprint: crate::fingerprint::Fingerprint,
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
        if applicable == 0 || self.stopped.is_some() || self.results.iter().any(|r| r.verdict == Verdict::Error) {
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

    /// Whether a risk of `class` was reported: some scenario *warned* with a diagnosis of
    /// that class (e.g. a skipped `iss` check, which Clerk's own SDKs skip too). An `error`
    /// never counts.
    #[must_use]
    pub fn warns(&self, class: &str) -> bool {
        self.with_verdict(Verdict::Warn).any(|r| r.diagnosis.as_ref().is_some_and(|d| d.class == class))
    }

    /// The result of scenario `id`.
    #[must_use]
    pub fn result(&self, id: &str) -> Option<&ScenarioResult> {
        self.results.iter().find(|r| r.id == id)
    }

    /// The measured root causes of the warnings and failures, each once, with the scenarios it
    /// explains (in run order); causes that explain the most come first.
    #[must_use]
    pub fn root_causes(&self) -> Vec<RootCause> {
        let mut causes: Vec<RootCause> = vec![];
        for r in self.results.iter().filter(|r| matches!(r.verdict, Verdict::Fail | Verdict::Warn)) {
            let Some(cause) = r.diagnosis.as_ref().and_then(|d| d.cause.clone()) else { continue };
            match causes.iter_mut().find(|c| c.cause.id == cause.id) {
                Some(c) => {
                    c.scenarios.push(r.id.clone());
                    // One figure measured once stays once; per-scenario evidence adds up.
                    if !c.cause.measurement.contains(&cause.measurement) {
                        c.cause.measurement = format!("{}; {}", c.cause.measurement, cause.measurement);
                    }
                }
                None => causes.push(RootCause { cause, scenarios: vec![r.id.clone()] }),
            }
        }
        causes.sort_by_key(|c| std::cmp::Reverse(c.scenarios.len()));
        causes
    }
}

/// One measured root cause and the findings it explains.
#[derive(Clone, Debug, Serialize)]
pub struct RootCause {
    /// The cause, its measurement and its fix.
    #[serde(flatten)]
    pub cause: crate::fingerprint::Cause,
    /// The scenarios whose warning or failure it explains.
    pub scenarios: Vec<String>,
}

/// How many scenarios in a row may end in the same environment-level error before the run
/// stops (the rest would only time out the same way).
pub const STOP_AFTER_SAME_ENVIRONMENT_ERRORS: usize = 3;

/// Why a run stopped before its last scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Stopped {
    /// The one diagnosis for the whole run.
    pub problem: String,
    /// What to do.
    pub fix: String,
    /// The scenarios that ended in that error, in order.
    pub after: Vec<String>,
    /// The scenarios not run.
    pub not_run: Vec<String>,
}

/// Runs `scenarios` in order on `ctx`, calling `progress` after each. After
/// `STOP_AFTER_SAME_ENVIRONMENT_ERRORS` (3) scenarios in a row end in the same
/// environment-level error (the backend cannot reach the mock Clerk), the rest are not run
/// and [`Report::stopped`] says why.
pub async fn run(ctx: &mut Ctx, scenarios: &[Scenario], mut progress: impl FnMut(&ScenarioResult)) -> Report {
    // Open the pool's first connection now, not inside the first scenario's timing.
    if let Ok(db) = ctx.env.db() {
        let _ = sqlx::query("SELECT 1").execute(db).await;
    }
    let started = Instant::now();
    // Run-level checks judge what the others collected: they run last, whatever the order given.
    let (last, first): (Vec<&Scenario>, Vec<&Scenario>) = scenarios.iter().partition(|s| s.isolation == Isolation::AfterAll);
    let ordered: Vec<Scenario> = first.into_iter().chain(last).copied().collect();
    let scenarios = ordered.as_slice();
    ctx.collected.clear();
    fingerprint(ctx, scenarios).await;
    let mut results = Vec::with_capacity(scenarios.len());
    let mut streak: Vec<(String, crate::outbound::Unreachable)> = Vec::new();
    let mut stopped = None;
    for (index, scenario) in scenarios.iter().enumerate() {
        ctx.upcoming = scenarios[index..].iter().map(|s| s.id).collect();
        let (result, unreachable, reached) = run_judged(ctx, scenario).await;
        progress(&result);
        match (result.verdict, unreachable) {
            (_, Some(u)) => {
                if streak.last().is_some_and(|(_, last)| last.key() != u.key()) {
                    streak.clear();
                }
                streak.push((result.id.clone(), u));
            }
            // Another error, or a scenario whose backend calls reached the mock: the errors
            // are no longer "in a row".
            (Verdict::Error, None) => streak.clear(),
            (_, None) if reached => streak.clear(),
            // A verdict reached without calling Clerk (a malformed token refused before any
            // key is needed, n/a) says nothing about whether Clerk is reachable.
            (_, None) => {}
        }
        results.push(result);
        if streak.len() >= STOP_AFTER_SAME_ENVIRONMENT_ERRORS {
            let (_, u) = &streak[streak.len() - 1];
            let stop = Stopped {
                problem: format!("{} — in {} scenarios in a row: the run stopped", u.summary(), streak.len()),
                fix: u.fix.clone(),
                after: streak.iter().map(|(id, _)| id.clone()).collect(),
                not_run: scenarios[index + 1..].iter().map(|s| s.id.to_string()).collect(),
            };
            let scrubber = crate::timeline::Scrubber::for_env(&ctx.env);
            let stop = Stopped { problem: scrubber.scrub(&stop.problem), fix: scrubber.scrub(&stop.fix), ..stop };
            tracing::warn!(problem = %stop.problem, "stopping the run");
            stopped = Some(stop);
            break;
        }
    }
    Report {
        profile: ctx.env.profile().name.get().clone(),
        environment: ctx.env.choice().reason.trim_start_matches("clerk-harness: ").to_string(),
        results,
        duration_ms: millis(started.elapsed()),
        stopped,
        fingerprint: ctx.fingerprint.clone(),
    }
}

/// Measures the fingerprint's up-front figures (the stack always; the leeways when a token or
/// loop scenario will run) into `ctx.fingerprint`. A search that cannot finish leaves the
/// leeways "not measured", with the reason.
async fn fingerprint(ctx: &mut Ctx, scenarios: &[Scenario]) {
    use crate::fingerprint::{Claim, Fingerprint, Leeway};
    use crate::scenario::Group;
    // Told once per run: it reads the backend's files.
    let stack = crate::stack::Stack::detect(ctx.env.profile());
    if !scenarios.iter().any(|s| matches!(s.group, Group::Tokens | Group::Loops)) {
        ctx.fingerprint = Fingerprint { stack, ..Fingerprint::default() };
        return;
    }
    let timeout = ctx.env.config().scenario_timeout();
    let measured = tokio::time::timeout(timeout, crate::fingerprint::measure(ctx, stack.clone())).await;
    ctx.fingerprint = match measured {
        Ok(Ok(fp)) => fp,
        failed => {
            let why = match failed {
                Ok(Err(e)) => format!("the leeway search could not run: {e}"),
                _ => format!("the leeway search did not finish within {}", seconds(timeout)),
            };
            let mut fp = Fingerprint { stack, ..Fingerprint::default() };
            for claim in [Claim::Exp, Claim::Nbf, Claim::Iat] {
                fp.set(claim, Leeway::Unmeasured { why: why.clone() });
            }
            fp
        }
    };
    // The probes' late log lines (access logs written after the answer) must not land in the
    // first scenario's window.
    let _ = ctx.env.settle_log().await;
    tracing::debug!(fingerprint = ?ctx.fingerprint, "fingerprint measured");
}

/// `10 s`, `0.3 s`.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Why the harness could not judge: the message, and whether something hung.
struct Trouble {
    message: String,
    hung: bool,
}

/// Words for a step error; a request that timed out names what hung.
fn describe_step(step: &StepError, request_timeout: Duration) -> Trouble {
    let http = match step {
        StepError::Http(e) | StepError::Harness(HarnessError::Http(e)) => Some(e),
        _ => None,
    };
    match http {
        Some(e) if e.is_timeout() => Trouble {
            message: format!(
                "the backend did not answer {} within {} (the per-request timeout, HARNESS_REQUEST_TIMEOUT_SECS): it hung",
                e.url().map_or_else(|| "a request".to_string(), |u| u.path().to_string()),
                seconds(request_timeout)
            ),
            hung: true,
        },
        _ => Trouble { message: format!("the harness could not run this scenario: {step}"), hung: false },
    }
}

/// Runs one scenario: a clean backend first if the previous one left state behind, faults
/// and clock reset afterwards. The scenario may take [`harness::HarnessConfig::scenario_timeout`]
/// (its requests [`harness::HarnessConfig::request_timeout`] each); past it, it ends in
/// `error` naming what it was waiting for.
pub async fn run_one(ctx: &mut Ctx, scenario: &Scenario) -> ScenarioResult {
    run_judged(ctx, scenario).await.0
}

/// [`run_one`], whether its `error` or `fail` came from the backend not reaching the mock
/// Clerk (then the verdict is `error` with that diagnosis), and whether the mock received a
/// request during it.
async fn run_judged(ctx: &mut Ctx, scenario: &Scenario) -> (ScenarioResult, Option<crate::outbound::Unreachable>, bool) {
    let started = Instant::now();
    // Run alone (run_one): no scenario after this one.
    if ctx.upcoming.first() != Some(&scenario.id) {
        ctx.upcoming = vec![scenario.id];
    }
    let mut prepare_error = None;
    if scenario.isolation == Isolation::Shared && (ctx.dirty || ctx.env.backend().is_none()) {
        if let Err(e) = ctx.fresh_backend(EnvChanges::new()).await {
            prepare_error = Some(Trouble { message: format!("could not start a clean backend: {e}"), hung: false });
        }
        ctx.dirty = false;
    }
    let _ = ctx.take_backend_time();
    let scenario_timeout = time_budget(scenario, ctx, ctx.env.config().scenario_timeout());
    let starts = ctx.start_time();
    starts.reset();
    let _ = ctx.take_left_running();
    let request_timeout = ctx.env.config().request_timeout();
    let window = crate::outbound::Window::open(ctx);
    let _ = ctx.take_waiting();
    let _ = ctx.take_journal();
    ctx.scenario = Some(scenario.id);
    let outcome = match prepare_error {
        Some(e) => Err(e),
        None => match within_budget(scenario_timeout, &starts, AssertUnwindSafe((scenario.body)(ctx)).catch_unwind()).await {
            Err(()) => {
                // A request may still be running in the backend: the next scenario gets a clean one.
                ctx.dirty = true;
                let what = match ctx.take_waiting() {
                    Some((what, since)) => format!("it had been waiting {:.1} s for {what}", since.elapsed().as_secs_f64()),
                    None => "it was not waiting for the backend (a step of the harness itself hung)".into(),
                };
                Err(Trouble {
                    message: format!("the scenario did not finish within {} (HARNESS_SCENARIO_TIMEOUT_SECS): {what}", seconds(scenario_timeout)),
                    hung: true,
                })
            }
            Ok(Ok(Ok(outcome))) => Ok(outcome),
            Ok(Ok(Err(StepError::Harness(HarnessError::NotApplicable(why))))) => Ok(Outcome::NotApplicable(why)),
            Ok(Ok(Err(step))) => Err(describe_step(&step, request_timeout)),
            Ok(Err(panic)) => Err(Trouble {
                message: format!(
                    "the scenario panicked: {}",
                    panic.downcast_ref::<String>().map(String::as_str).or_else(|| panic.downcast_ref::<&str>().copied()).unwrap_or("?")
                ),
                hung: false,
            }),
        },
    };
    ctx.env.mock().faults().clear();
    ctx.aim_at(None);
    // Undo a skew the scenario left (Clerk's clock back in step with the backend's); time
    // that passed (BackendClock::advance) stays passed, for Clerk and the backend alike.
    ctx.env.mock().clock().unfreeze();
    ctx.env.backend_clock().set_offset(0);
    // A request left unanswered may still be running in the backend, and its log lines
    // (a Clerk call timing out 10 s later) would land in the next scenario's window: the next
    // scenario gets a clean backend, started before its window opens.
    if scenario.isolation == Isolation::FreshBackend || ctx.take_left_running() {
        ctx.dirty = true;
    }
    let backend_ms = millis(ctx.take_backend_time());
    // Lines the backend writes after answering (access logs) belong to this scenario too.
    let log_end = ctx.env.settle_log().await;
    let log = log_excerpt(ctx.env.log_lines_between(window.log, log_end));
    let unreachable = match &outcome {
        Ok(Outcome::Fail(_)) => crate::outbound::check(ctx, &window, false),
        Err(trouble) => crate::outbound::check(ctx, &window, trouble.hung),
        _ => None,
    };
    let error = |ctx_message: String, log: Vec<String>, fix: Option<String>| {
        let mut d = diagnose(scenario, ctx_message, scenario.sends.into(), None, log);
        d.class = HARNESS_ERROR_CLASS.into();
        d.clerk_reason = None;
        d.fix = fix.unwrap_or_else(|| {
            "not a finding about the backend: the harness or the environment could not judge this scenario (see the problem and the backend log)".into()
        });
        (Verdict::Error, String::new(), Some(d))
    };
    // A backend that hangs while the mock answers it with an injected fault is the finding:
    // its Clerk client retries (or waits) in the request path, and one Clerk outage holds
    // every worker. Reported with what the mock received meanwhile.
    let outcome = match (outcome, &unreachable) {
        (Err(trouble), None) if trouble.hung => match crate::outbound::faulted_since(ctx, &window) {
            faulted if faulted.is_empty() => Err(trouble),
            faulted => {
                ctx.dirty = true;
                Ok(hang_finding(ctx, scenario, &trouble.message, &faulted))
            }
        },
        (outcome, _) => outcome,
    };
    let (verdict, note, diagnosis) = match (outcome, &unreachable) {
        (Ok(Outcome::Fail(_)), Some(u)) => error(u.summary(), log, Some(u.fix.clone())),
        (Err(trouble), Some(u)) => error(format!("{} ({})", u.summary(), trouble.message), log, Some(u.fix.clone())),
        (Ok(Outcome::Pass(note)), _) => (Verdict::Pass, note, None),
        (Ok(Outcome::NotApplicable(why)), _) => (Verdict::NotApplicable, why, None),
        (Ok(Outcome::Warn(finding)), _) => (Verdict::Warn, String::new(), Some(diagnose_finding(scenario, finding, log))),
        (Ok(Outcome::Fail(finding)), None) => (Verdict::Fail, String::new(), Some(diagnose_finding(scenario, finding, log))),
        (Ok(Outcome::Error(message)), _) => error(message, log, None),
        (Err(trouble), None) => error(trouble.message, log, None),
    };
    // The catalogue's fix, where it depends on the stack, in the backend's stack's terms
    // (a finding that brought its own fix or cause keeps it).
    let mut diagnosis = diagnosis;
    if let (Some(d), Some(knob)) = (diagnosis.as_mut(), crate::stack::scenario_knob(scenario.id)) {
        if d.fix == scenario.fix && d.class != HARNESS_ERROR_CLASS {
            d.fix = crate::stack::fix(knob, &ctx.fingerprint.stack);
        }
    }
    if let Some(d) = diagnosis.as_mut() {
        let knob = match d.cause.as_ref().map(|c| c.id.as_str()) {
            Some(crate::ctx::FORBIDDEN_CAUSE) => Some(crate::stack::Knob::Status401),
            Some(crate::ctx::CRASH_CAUSE) => Some(crate::stack::Knob::CatchErrors),
            _ => None,
        };
        if let (Some(knob), Some(cause)) = (knob, d.cause.as_mut()) {
            cause.fix = crate::stack::fix(knob, &ctx.fingerprint.stack);
            d.fix = cause.fix.clone();
        }
    }
    tracing::debug!(id = scenario.id, ?verdict, "scenario done");
    let journal = ctx.take_journal();
    crate::checks::errors::collect(ctx, scenario.id, &journal);
    let (exchanges, events) = crate::timeline::collect(ctx, window.started, window.log..log_end, journal);
    let mut result = ScenarioResult {
        id: scenario.id.into(),
        title: scenario.title.into(),
        group: scenario.group,
        verdict,
        duration_ms: millis(started.elapsed()),
        backend_ms,
        note,
        diagnosis,
        exchanges,
        events,
    };
    crate::timeline::Scrubber::for_env(&ctx.env).scrub_result(&mut result);
    let reached = crate::outbound::reached(ctx, &window);
    (result, unreachable, reached)
}

/// The most of a scenario's log lines a diagnosis quotes: its first [`LOG_HEAD`] (how it
/// started) and its last [`LOG_TAIL`] (how it ended), with the number left out between.
pub const LOG_HEAD: usize = 10;
/// See [`LOG_HEAD`].
pub const LOG_TAIL: usize = 30;

fn log_excerpt(lines: Vec<String>) -> Vec<String> {
    if lines.len() <= LOG_HEAD + LOG_TAIL + 1 {
        return lines;
    }
    let left_out = lines.len() - LOG_HEAD - LOG_TAIL;
    let mut out: Vec<String> = lines[..LOG_HEAD].to_vec();
    out.push(format!("… {left_out} lines left out …"));
    out.extend_from_slice(&lines[lines.len() - LOG_TAIL..]);
    out
}

/// The failure of a backend that hung while the mock answered its Clerk calls with injected
/// faults: class `hang`, the retries the mock received, the fix for the backend's stack.
fn hang_finding(ctx: &mut Ctx, scenario: &Scenario, hung: &str, faulted: &[(String, usize, f64)]) -> Outcome {
    let received: Vec<String> = faulted
        .iter()
        .map(|(route, n, span)| if *n > 1 { format!("{n} requests of {route} in {span:.1} s ({} retries)", n - 1) } else { format!("1 request of {route}") })
        .collect();
    let retries: usize = faulted.iter().map(|(_, n, _)| n.saturating_sub(1)).sum();
    let figure = format!("hangs while the Backend API fails: {}", received.join(", "));
    ctx.fingerprint.backend_api =
        Some(crate::fingerprint::Fact { figure: figure.clone(), measurement: format!("while faults were injected: {hung}"), by: scenario.id.to_string() });
    let cause = crate::fingerprint::Cause {
        id: "hang-on-clerk-failure".into(),
        title: "the backend waits on failing Clerk calls in the request path instead of answering".into(),
        measurement: format!("{figure}; {hung}"),
        fix: crate::stack::fix(crate::stack::Knob::BoundedRetries, &ctx.fingerprint.stack),
    };
    let problem = format!(
        "the backend hung while Clerk answered with errors — the mock received {}{}: one Clerk outage holds every worker, and the SPA sees timeouts",
        received.join(", "),
        if retries > 0 { " (its Clerk client kept retrying)" } else { "" }
    );
    Outcome::fail(scenario.sends, None, problem.clone()).classed("hang", cause.fix.clone()).caused_by(cause, problem)
}

/// A warning's or failure's diagnosis: the finding's own class and fix if it has them, and
/// when the answer is a framework's error page (Django's CSRF failure, `ALLOWED_HOSTS`, a
/// 404 page…) that page, quoted, as the cause and its fix instead of the scenario's.
pub fn diagnose_finding(scenario: &Scenario, finding: crate::scenario::Finding, backend_log: Vec<String>) -> Diagnosis {
    let recognised = finding.got.as_ref().and_then(crate::scenario::Exchange::recognised);
    // A finding's own lines are already chosen (e.g. each trial start's head and tail).
    let backend_log = finding.log.unwrap_or(backend_log);
    let mut d = diagnose(scenario, finding.problem, finding.sent, finding.got, backend_log);
    if let Some(class) = finding.class {
        d.class = class.into();
        d.clerk_reason = None;
    }
    if let Some(fix) = finding.fix {
        d.fix = fix;
    }
    d.cause = finding.cause;
    if let Some(page) = recognised {
        d.summary = format!("{} — the answer is {}: \"{}\"", d.summary, page.what, page.quote);
        // A crash's traceback says where, not which fault: the scenario's class stays.
        if page.class != crate::pages::CRASH_CLASS {
            d.class = page.class.into();
            d.clerk_reason = None;
            d.fix = page.fix.into();
            // The page is the cause (a CSRF check, ALLOWED_HOSTS…), not the status it came with.
            d.cause = None;
        }
    }
    d
}

/// The time `scenario` may take: the configured budget, plus — for `tokens.key_rotation`,
/// which must wait out a JWKS refetch cooldown (PyJWT's `PyJWKClient`: 30 s) to tell "after
/// a cooldown" from "never" — its [`Ctx::rotation_patience`].
/// Runs a scenario's body for `budget`, not counting the time it waits for backend starts
/// (each is bounded by the profile's `ready_timeout_secs`): `Err` when the budget ran out.
async fn within_budget<F: std::future::Future>(budget: Duration, starts: &crate::ctx::StartTime, body: F) -> Result<F::Output, ()> {
    let t0 = tokio::time::Instant::now();
    tokio::pin!(body);
    loop {
        let mut deadline = t0 + budget + starts.so_far();
        if starts.ongoing() {
            // The deadline moves with a start under way: look again a little later.
            deadline = deadline.max(tokio::time::Instant::now() + Duration::from_millis(250));
        }
        tokio::select! {
            out = &mut body => return Ok(out),
            () = tokio::time::sleep_until(deadline) => {
                if !starts.ongoing() && t0 + budget + starts.so_far() <= tokio::time::Instant::now() {
                    return Err(());
                }
            }
        }
    }
}

fn time_budget(scenario: &Scenario, ctx: &Ctx, configured: Duration) -> Duration {
    if scenario.id == "tokens.key_rotation" {
        configured + ctx.rotation_patience
    } else {
        configured
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
        cause: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::StartTime;

    #[tokio::test]
    async fn backend_starts_do_not_count_against_the_scenario_budget() {
        let budget = Duration::from_millis(200);
        // A start three times the budget long, then a little work: within budget.
        let starts = StartTime::default();
        let body = async {
            let start = starts.begin_for_test();
            tokio::time::sleep(Duration::from_millis(600)).await;
            drop(start);
            tokio::time::sleep(Duration::from_millis(50)).await;
            "done"
        };
        assert_eq!(within_budget(budget, &starts, body).await, Ok("done"));
        assert!(starts.so_far() >= Duration::from_millis(600));
        // The same time spent on anything else runs out.
        let starts = StartTime::default();
        assert_eq!(within_budget(budget, &starts, tokio::time::sleep(Duration::from_millis(600))).await, Err(()));
        // A start does not buy more than its own time: work past the budget after it runs out.
        let starts = StartTime::default();
        let body = async {
            drop(starts.begin_for_test());
            tokio::time::sleep(Duration::from_millis(600)).await;
        };
        assert_eq!(within_budget(budget, &starts, body).await, Err(()));
    }
}
