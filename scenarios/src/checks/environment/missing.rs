//! `env.missing_required`: every required variable judged on its own, by what it guards.

use std::time::{Duration, Instant};

use harness::{EnvChanges, GetToken, Guard, HarnessError};
use mock_clerk::webhooks::{Forgery, WebhookEvent};
use mock_clerk::{MockClerk, NewUser};

use crate::ctx::Ctx;
use crate::scenario::{Exchange, Finding, Outcome};
use crate::StepError;

/// The class of a start-up configuration finding.
const CLASS: &str = "startup-config";

/// The most lines of one start's log a finding quotes: its first (how it started: what it
/// said about its configuration) and its last (how it ended, and the probe).
const START_LOG_HEAD: usize = 6;
/// See [`START_LOG_HEAD`].
const START_LOG_TAIL: usize = 10;

/// `lines` with at most `head` first and `tail` last lines, saying how many were left out.
fn head_tail(lines: &[String], head: usize, tail: usize) -> Vec<String> {
    if lines.len() <= head + tail + 1 {
        return lines.to_vec();
    }
    let mut out = lines[..head].to_vec();
    out.push(format!("… {} lines of this start left out …", lines.len() - head - tail));
    out.extend_from_slice(&lines[lines.len() - tail..]);
    out
}

pub(crate) async fn missing_required_variable(ctx: &mut Ctx) -> Result<Outcome, StepError> {
    let profile = ctx.env.profile();
    let vars: Vec<(String, Guard)> = profile.required_env.iter().map(|v| (v.name.clone(), profile.guard_of(v))).collect();
    if vars.is_empty() {
        return Ok(Outcome::not_applicable("the profile lists no required_env"));
    }
    if ctx.env.backend().is_some_and(|b| b.kind() == "url") {
        return Ok(Outcome::not_applicable("the backend is an external URL: the harness cannot restart it"));
    }
    // Every start without one variable at once (each beside the others, with its own log).
    // A start that does not simply exit naming its variable is started again, alone, as
    // the environment's backend before it is judged: a conflict between starts at once (a
    // fixed port or lock file of its own, two slow imports sharing the cores) must never be
    // taken for the backend's fault, and a backend that does start is then probed by what
    // the variable guards. Every variable is judged and reported, each with its own log.
    let trials = ctx.trial_starts(vars.iter().map(|(var, _)| EnvChanges::new().unset(var.clone())).collect()).await?;
    let mut judged = Vec::with_capacity(vars.len());
    for ((var, guard), trial) in vars.iter().zip(trials) {
        let trial_log = trial.log;
        let started = start_of(trial.result, trial.elapsed)?;
        if let MissingStart::Stopped(note) = judge_missing_start(var, &started, &trial_log.join("\n")) {
            judged.push(VarVerdict::stopped(var, *guard, note));
            continue;
        }
        let t0 = Instant::now();
        let mark = ctx.env.log_mark();
        let result = ctx.fresh_backend(EnvChanges::new().unset(var.clone())).await;
        let started = start_of(result, t0.elapsed())?;
        // Only this start's output: the other starts named their own variables.
        let log = ctx.env.log_lines_since(mark);
        let verdict = match judge_missing_start(var, &started, &log.join("\n")) {
            MissingStart::Stopped(note) => VarVerdict::stopped(var, *guard, note),
            MissingStart::Wrong(wrong) => VarVerdict { var: var.clone(), guard: *guard, outcome: wrong.outcome, class: CLASS, fix: wrong.fix, log },
            MissingStart::Started => {
                // The restart returned once its predecessor had exited: from here on the log
                // is this backend's alone. Its start is shown from the trial's own log.
                let probe_mark = ctx.env.log_mark();
                let (outcome, class, fix) = probe_started(ctx, var, *guard).await?;
                let mut log = trial_log;
                log.push(format!("── started again alone, then probed ({guard}) ──"));
                log.extend(ctx.env.log_lines_since(probe_mark));
                VarVerdict { var: var.clone(), guard: *guard, outcome, class, fix, log }
            }
        };
        judged.push(verdict);
    }
    Ok(combine(judged))
}

/// The verdict on one required variable.
#[derive(Debug)]
pub(crate) struct VarVerdict {
    /// The variable.
    pub(crate) var: String,
    /// What it guards.
    pub(crate) guard: Guard,
    /// Pass (its note), warn or fail (its finding), or error.
    pub(crate) outcome: Outcome,
    /// The fault class of a warn or fail.
    pub(crate) class: &'static str,
    /// The fix of a warn or fail, for the backend observed.
    pub(crate) fix: String,
    /// This start's own log lines.
    pub(crate) log: Vec<String>,
}

impl VarVerdict {
    fn stopped(var: &str, guard: Guard, note: String) -> Self {
        Self { var: var.into(), guard, outcome: Outcome::pass(note), class: CLASS, fix: String::new(), log: vec![] }
    }
}

/// One outcome for every variable: the worst verdict (fail, then warn, then error), whose
/// problem lists each variable's finding and whose log is each finding's own start's lines.
pub(crate) fn combine(judged: Vec<VarVerdict>) -> Outcome {
    let rank = |o: &Outcome| match o {
        Outcome::Fail(_) => 4,
        Outcome::Warn(_) => 3,
        Outcome::Error(_) => 2,
        Outcome::Pass(_) | Outcome::NotApplicable(_) => 1,
    };
    let worst = judged.iter().map(|v| rank(&v.outcome)).max().unwrap_or(1);
    let passes: Vec<String> = judged.iter().filter_map(|v| if let Outcome::Pass(note) = &v.outcome { Some(note.clone()) } else { None }).collect();
    if worst == 1 {
        return Outcome::pass(passes.join("; "));
    }
    let findings: Vec<&VarVerdict> = judged.iter().filter(|v| rank(&v.outcome) > 1).collect();
    let mut problems = vec![];
    let mut log = vec![];
    let mut fixes: Vec<String> = vec![];
    let mut got: Option<Exchange> = None;
    for v in &findings {
        let (problem, this_got) = match &v.outcome {
            Outcome::Fail(f) | Outcome::Warn(f) => (f.problem.clone(), f.got.clone()),
            Outcome::Error(why) => (format!("could not be judged: {why}"), None),
            _ => continue,
        };
        let severity = match v.outcome {
            Outcome::Fail(_) => "fail",
            Outcome::Warn(_) => "warn",
            _ => "error",
        };
        problems.push(format!("[{severity}] {} (guards {}): {problem}", v.var, v.guard));
        if got.is_none() && rank(&v.outcome) == worst {
            got = this_got;
        }
        if !v.fix.is_empty() {
            let fix = format!("{}: {}", v.var, v.fix);
            if !fixes.contains(&fix) {
                fixes.push(fix);
            }
        }
        log.push(format!("── the start without {} ──", v.var));
        log.extend(head_tail(&v.log, START_LOG_HEAD, START_LOG_TAIL));
    }
    if !passes.is_empty() {
        problems.push(format!("correct: {}", passes.join("; ")));
    }
    let sent = format!("a start without each of {}", judged.iter().map(|v| v.var.as_str()).collect::<Vec<_>>().join(", "));
    // The class of the worst finding first in the profile's order.
    let class = findings.iter().find(|v| rank(&v.outcome) == worst).map_or(CLASS, |v| v.class);
    let finding = Finding { sent, got, problem: problems.join("; "), class: None, fix: None, cause: None, log: None };
    let outcome = match worst {
        4 => Outcome::Fail(finding),
        3 => Outcome::Warn(finding),
        _ => return Outcome::error(problems.join("; ")),
    };
    outcome.classed(class, fixes.join(" — ")).with_log(log)
}

/// How a start went, from its result; other errors are the harness's.
pub(crate) fn start_of(result: Result<(), HarnessError>, elapsed: Duration) -> Result<Start, HarnessError> {
    Ok(match result {
        Err(HarnessError::BackendExited { status, .. }) => Start::Exited { status, after: elapsed },
        Err(HarnessError::BackendNotReady { waited, last, .. }) => Start::NotReady { waited, last },
        // Running, but its health path refuses at once (a 500 on every request): it did not
        // exit, which is the finding — not a harness error.
        Err(HarnessError::HealthRefused { status, body, .. }) => {
            Start::NotReady { waited: elapsed, last: format!("HTTP {status} {}", body.chars().take(200).collect::<String>()) }
        }
        Err(other) => return Err(other),
        Ok(()) => Start::Ready,
    })
}

/// How a start without a required variable went.
#[derive(Clone, Debug)]
pub(crate) enum Start {
    /// The process exited (`status` as the harness words it, e.g. `exit status: 2`).
    Exited {
        /// Exit status, as text.
        status: String,
        /// Time to the exit.
        after: Duration,
    },
    /// Still running but never healthy within the ready timeout.
    NotReady {
        /// The ready timeout.
        waited: Duration,
        /// The last health answer or connection error.
        last: String,
    },
    /// It started and answered its health path.
    Ready,
}

/// A wrong start: the failure and the fix for what was observed.
#[derive(Debug)]
pub(crate) struct WrongStart {
    /// The failure.
    pub(crate) outcome: Outcome,
    /// What to do about exactly this.
    pub(crate) fix: String,
}

/// The verdict on one start without a required variable.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // built once per required variable
pub(crate) enum MissingStart {
    /// A non-zero exit naming the variable or its setting: the note.
    Stopped(String),
    /// Anything else but a start: the failure.
    Wrong(WrongStart),
    /// It started (the caller probes what the variable guards).
    Started,
}

/// The words of `log` that name `var` or the setting that holds it: the name itself, or its
/// last two or more parts in any case with `_`, ` `, `-` or nothing between them
/// (`CLERK_SECRET_KEY` → `CLERK_AUTH['SECRET_KEY']`, "secret key").
pub(crate) fn names_variable(var: &str, log: &str) -> Option<String> {
    if log.contains(var) {
        return Some(var.to_string());
    }
    let lower = log.to_lowercase();
    let parts: Vec<String> = var.split('_').filter(|p| !p.is_empty()).map(str::to_lowercase).collect();
    (0..parts.len().saturating_sub(1))
        .find_map(|start| ["_", " ", "-", ""].iter().map(|sep| parts[start..].join(sep)).find(|needle| needle.len() >= 6 && lower.contains(needle.as_str())))
}

/// A start without `var`: [`MissingStart::Stopped`] for a non-zero exit whose output (`log`,
/// this start's lines only) names the variable or its setting. A health timeout is no clean
/// exit: the backend kept running, misconfigured, for the whole ready timeout.
pub(crate) fn judge_missing_start(var: &str, start: &Start, log: &str) -> MissingStart {
    let sent = format!("start without {var}");
    let named = names_variable(var, log);
    let wrong = |problem: String, fix: &str| MissingStart::Wrong(WrongStart { outcome: Outcome::fail(sent.clone(), None, problem), fix: fix.into() });
    match start {
        Start::Exited { status, .. } if exited_cleanly(status) => wrong(
            format!("the backend exited with {status} (success) without {var}: a missing required variable must be a non-zero exit"),
            "exit with a non-zero status when a required variable is missing, so the deployment stops there",
        ),
        Start::Exited { after, .. } => match named {
            Some(name) if name.eq_ignore_ascii_case(var) => MissingStart::Stopped(format!("{var}: exits in {} ms naming it", after.as_millis())),
            Some(name) => MissingStart::Stopped(format!("{var}: exits in {} ms naming the setting that holds it ({name})", after.as_millis())),
            None => wrong(
                format!("the backend stopped ({}) without {var} but its output never names the variable or a setting that holds it", status_of(start)),
                "name the missing variable (or its setting) in the message the backend exits with",
            ),
        },
        Start::NotReady { waited, last } => wrong(
            format!(
                "the backend did not exit without {var}: it kept running, not healthy after {:.1} s (last health answer: {last}){}",
                waited.as_secs_f64(),
                if named.is_some() {
                    "; its output names the variable, but only an exit stops a deployment at once"
                } else {
                    ", and its output never names the variable"
                }
            ),
            "exit (non-zero, naming the variable) when it is missing, instead of running unhealthy",
        ),
        Start::Ready => MissingStart::Started,
    }
}

fn status_of(start: &Start) -> &str {
    match start {
        Start::Exited { status, .. } => status,
        _ => "",
    }
}

/// Whether an exit status (as the harness words it) is a success.
fn exited_cleanly(status: &str) -> bool {
    let s = status.trim();
    s == "0" || s.ends_with("exit status: 0") || s.ends_with("exit code 0") || s.ends_with("exit code: 0")
}

/// The backend started without `var`: probe what it guards. The outcome, its class and the
/// fix for what was observed.
async fn probe_started(ctx: &mut Ctx, var: &str, guard: Guard) -> Result<(Outcome, &'static str, String), StepError> {
    if guard == Guard::WebhookSecret {
        if let Some(path) = ctx.env.profile().webhook_path.as_ref().map(|p| p.get().clone()) {
            let probes = unsigned_webhooks(ctx, &path).await?;
            return Ok(judge_webhooks_without_secret(var, &probes));
        }
    }
    // What the variable guards is used by a request: a syncing endpoint for the secret key and
    // the database, the token endpoint for the keys that verify tokens.
    let endpoint = match (guard, ctx.sync_endpoint()) {
        (Guard::SecretKey | Guard::Database | Guard::Other | Guard::WebhookSecret, Some(endpoint)) => endpoint,
        _ => ctx.token_endpoint()?,
    };
    let me = ctx.sign_in("missing-env")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let got = ctx.call(&endpoint, &token).await?;
    let no_webhook_path = guard == Guard::WebhookSecret;
    Ok(judge_request_without(var, guard, &format!("{:?} {}", endpoint.method, endpoint.path.get()), got, no_webhook_path))
}

/// What a valid request got from a backend that started without `var`.
pub(crate) fn judge_request_without(var: &str, guard: Guard, call: &str, got: Exchange, no_webhook_path: bool) -> (Outcome, &'static str, String) {
    let sent = format!("start without {var}, then {call} with a valid token");
    if (200..300).contains(&got.status) {
        let why = if no_webhook_path {
            format!("what it guards ({guard}) could not be probed: the profile has no webhook_path")
        } else {
            format!("{var} is not needed to answer {call}, or the backend falls back to something else")
        };
        let problem = format!("the backend STARTED without the required variable {var} and a valid request still got {}: {why}", got.summary());
        let fix = format!(
            "if {var} is required, exit at start-up naming it; if this backend does not need it (for {call}), remove it from the profile's required_env"
        );
        return (Outcome::warn(sent, Some(got), problem), CLASS, fix);
    }
    let problem = format!(
        "the backend STARTED without the required variable {var} (guards {guard}), so the misconfiguration only shows at request time: a valid request then got {}",
        got.summary()
    );
    let fix = "validate configuration at start-up and exit with a message naming the variable, instead of failing every request later".to_string();
    (Outcome::fail(sent, Some(got), problem), CLASS, fix)
}

/// One webhook sent to a backend without its webhook secret.
#[derive(Debug, Clone)]
pub(crate) struct WebhookProbe {
    /// How it was signed (`unsigned`, `wrongly signed`).
    pub(crate) how: &'static str,
    /// The answer (status 0: none).
    pub(crate) got: Exchange,
    /// Whether the user's row appeared (`None`: no database to look at).
    pub(crate) row: Option<bool>,
}

/// Sends an unsigned and a wrongly signed `user.created` (of a user of another instance, so
/// only the webhook can write its row) to the profile's webhook path.
async fn unsigned_webhooks(ctx: &mut Ctx, path: &str) -> Result<Vec<WebhookProbe>, StepError> {
    let url = format!("{}{path}", ctx.env.backend_url().as_str().trim_end_matches('/'));
    let hooks = ctx.env.mock().webhooks().clone();
    let ep = hooks.endpoint(&url).events(["user.created"]).add().map_err(|e| StepError::Other(e.to_string()))?;
    let other = MockClerk::start().await?;
    let mut probes = vec![];
    for (forgery, how) in [(Forgery::MissingSignature, "unsigned"), (Forgery::WrongSecret, "wrongly signed")] {
        let user = other.create_user(NewUser::with_email(&format!("nosecret-{}@harness.test", mock_clerk::base62(8).to_lowercase())))?;
        let attempt = ctx.timed(hooks.forge(forgery, &ep, WebhookEvent::new("user.created", user.to_json()))).await;
        let row = if ctx.env.has_database() { Some(ctx.env.synced_user(&user.id).await?.is_some()) } else { None };
        let got = Exchange {
            status: attempt.status.unwrap_or(0),
            body: attempt.response_body.clone().or(attempt.error.clone()).unwrap_or_default(),
            ..Exchange::default()
        };
        probes.push(WebhookProbe { how, got, row });
    }
    let _ = hooks.remove_endpoint(&ep.id);
    Ok(probes)
}

/// A backend that started without its webhook secret: a webhook applied (2xx, or its row
/// written) is fail-open, a `fail`; every one refused is a pass (it fails closed).
pub(crate) fn judge_webhooks_without_secret(var: &str, probes: &[WebhookProbe]) -> (Outcome, &'static str, String) {
    let sent = format!("start without {var}, then {} user.created webhooks", probes.iter().map(|p| p.how).collect::<Vec<_>>().join(" and "));
    if let Some(applied) = probes.iter().find(|p| (200..300).contains(&p.got.status) || p.row == Some(true)) {
        let written = if applied.row == Some(true) { " and wrote the user's row" } else { "" };
        let problem = format!(
            "FAIL-OPEN: without {var} the backend started and accepted an {} webhook ({}){written}: anyone can create or change users by posting to it",
            applied.how,
            applied.got.summary()
        );
        let fix = format!("refuse to start without {var} (exit naming it), and never apply a webhook whose Svix signature was not verified");
        return (Outcome::fail(sent, Some(applied.got.clone()), problem), "webhook-signature", fix);
    }
    if let Some(unjudged) = probes.iter().find(|p| p.got.status == 0 || (300..400).contains(&p.got.status)) {
        return (
            Outcome::error(format!(
                "the {} webhook got {}: the receiver was not reached, nothing about {var} can be judged",
                unjudged.how,
                unjudged.got.summary()
            )),
            CLASS,
            String::new(),
        );
    }
    let answers = probes.iter().map(|p| format!("{} → {}", p.how, p.got.status)).collect::<Vec<_>>().join(", ");
    (Outcome::pass(format!("{var}: starts without it but refuses unverifiable webhooks ({answers}): fails closed")), CLASS, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrong(m: MissingStart) -> Outcome {
        match m {
            MissingStart::Wrong(w) => w.outcome,
            other => panic!("expected a wrong start, got {other:?}"),
        }
    }

    #[test]
    fn a_health_timeout_is_no_clean_exit() {
        let start = Start::NotReady { waited: Duration::from_secs(30), last: "HTTP 503".into() };
        let r = wrong(judge_missing_start("CLERK_SECRET_KEY", &start, "ERROR CLERK_SECRET_KEY is not set"));
        assert!(matches!(&r, Outcome::Fail(f) if f.problem.contains("did not exit")), "{r:?}");
    }

    #[test]
    fn only_this_starts_output_counts_and_a_zero_exit_fails() {
        let exited = Start::Exited { status: "exit status: 2".into(), after: Duration::from_millis(300) };
        assert!(matches!(judge_missing_start("DATABASE_URL", &exited, "DATABASE_URL is not set"), MissingStart::Stopped(_)));
        let r = wrong(judge_missing_start("DATABASE_URL", &exited, "Traceback … KeyError"));
        assert!(matches!(&r, Outcome::Fail(f) if f.problem.contains("never names")), "{r:?}");
        let clean = Start::Exited { status: "exit status: 0".into(), after: Duration::from_millis(300) };
        assert!(matches!(judge_missing_start("DATABASE_URL", &clean, "DATABASE_URL"), MissingStart::Wrong(_)));
        assert!(matches!(judge_missing_start("DATABASE_URL", &Start::Ready, ""), MissingStart::Started));
    }

    #[test]
    fn an_exit_naming_the_setting_that_holds_the_variable_is_a_clear_refusal() {
        let exited = Start::Exited { status: "exit status: 1".into(), after: Duration::from_millis(900) };
        let log = "django.core.exceptions.ImproperlyConfigured: CLERK_AUTH['SECRET_KEY'] is required";
        match judge_missing_start("CLERK_SECRET_KEY", &exited, log) {
            MissingStart::Stopped(note) => assert!(note.contains("setting") && note.contains("secret_key"), "{note}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(names_variable("CLERK_WEBHOOK_SECRET", "webhook secret missing").as_deref(), Some("webhook secret"));
        // One generic word is no name: "key" or "url" alone never counts.
        assert_eq!(names_variable("CLERK_SECRET_KEY", "KeyError: key"), None);
        assert_eq!(names_variable("DATABASE_URL", "bad url"), None);
    }

    fn verdict(var: &str, outcome: Outcome, log: &[&str]) -> VarVerdict {
        VarVerdict {
            var: var.into(),
            guard: Guard::Other,
            outcome,
            class: CLASS,
            fix: format!("fix {var}"),
            log: log.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    #[test]
    fn every_variable_is_reported_each_with_its_own_log() {
        let judged = vec![
            verdict("A", Outcome::fail("s", None, "A started"), &["a-line"]),
            VarVerdict::stopped("B", Guard::Database, "B: exits in 10 ms naming it".into()),
            verdict("C", Outcome::warn("s", None, "C still works"), &["c-line"]),
        ];
        let Outcome::Fail(f) = combine(judged) else { panic!("a fail wins") };
        assert!(f.problem.contains("[fail] A") && f.problem.contains("[warn] C") && f.problem.contains("B: exits"), "{}", f.problem);
        let log = f.log.expect("own log");
        assert_eq!(log, ["── the start without A ──", "a-line", "── the start without C ──", "c-line"]);
        assert_eq!(f.fix.as_deref(), Some("A: fix A — C: fix C"));
        let all_pass = combine(vec![VarVerdict::stopped("B", Guard::Database, "B ok".into())]);
        assert!(matches!(all_pass, Outcome::Pass(n) if n == "B ok"));
    }

    #[test]
    fn a_webhook_applied_without_the_secret_is_fail_open_and_refusals_pass() {
        let probe = |how, status, row| WebhookProbe { how, got: Exchange::answered(status, ""), row };
        let (o, class, _) = judge_webhooks_without_secret("W", &[probe("unsigned", 400, Some(false)), probe("wrongly signed", 200, Some(false))]);
        assert!(matches!(&o, Outcome::Fail(f) if f.problem.contains("FAIL-OPEN") && f.problem.contains("wrongly signed")), "{o:?}");
        assert_eq!(class, "webhook-signature");
        let (o, _, _) = judge_webhooks_without_secret("W", &[probe("unsigned", 500, Some(true))]);
        assert!(matches!(&o, Outcome::Fail(f) if f.problem.contains("wrote the user's row")), "a row written is applied whatever the status: {o:?}");
        let (o, _, _) = judge_webhooks_without_secret("W", &[probe("unsigned", 503, None), probe("wrongly signed", 401, None)]);
        assert!(matches!(&o, Outcome::Pass(n) if n.contains("fails closed")), "{o:?}");
        let (o, _, _) = judge_webhooks_without_secret("W", &[probe("unsigned", 0, None)]);
        assert!(matches!(o, Outcome::Error(_)), "no answer is no verdict");
    }

    #[test]
    fn the_fix_describes_the_backend_observed() {
        let got = Exchange { status: 500, ..Exchange::default() };
        let (o, _, fix) = judge_request_without("K", Guard::SecretKey, "GET /me", got, false);
        assert!(matches!(o, Outcome::Fail(_)) && fix.contains("instead of failing every request later"));
        let ok = Exchange { status: 200, ..Exchange::default() };
        let (o, _, fix) = judge_request_without("K", Guard::SecretKey, "GET /me", ok, false);
        assert!(matches!(o, Outcome::Warn(_)) && !fix.contains("failing every request"), "{fix}");
        let exited = Start::Exited { status: "exit status: 1".into(), after: Duration::from_millis(300) };
        let MissingStart::Wrong(w) = judge_missing_start("K", &exited, "Traceback") else { panic!() };
        assert!(!w.fix.contains("failing every request"), "{}", w.fix);
    }
}
