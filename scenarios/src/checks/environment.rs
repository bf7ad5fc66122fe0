//! Start-up configuration: missing variables, another instance's keys or host.

use std::time::Instant;

use harness::{EnvChanges, GetToken, HarnessError};
use mock_clerk::MockClerk;

use super::body;
use crate::scenario::{Exchange, Outcome};

/// The backend env variable whose profile value uses `placeholder` (e.g. `{secret_key}`).
fn var_with(ctx: &crate::ctx::Ctx, placeholder: &str) -> Option<String> {
    ctx.env.profile().env.iter().find(|(_, v)| v.get().contains(placeholder)).map(|(k, _)| k.clone())
}

body!(missing_required_variable, |ctx| {
    let vars: Vec<String> = ctx.env.profile().required_env.iter().map(|v| v.get().clone()).collect();
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
    // taken for the backend's fault, and a backend that does start is then asked a request.
    let trials = ctx.trial_starts(vars.iter().map(|var| EnvChanges::new().unset(var.clone())).collect()).await?;
    let mut notes = vec![];
    for (var, trial) in vars.iter().zip(trials) {
        let started = start_of(trial.result, trial.elapsed)?;
        if let MissingStart::Stopped(note) = judge_missing_start(var, &started, &trial.log.join("\n")) {
            notes.push(note);
            continue;
        }
        let t0 = Instant::now();
        let mark = ctx.env.log_mark();
        let result = ctx.fresh_backend(EnvChanges::new().unset(var.clone())).await;
        // Only this start's output: earlier starts named every variable too.
        let log = ctx.env.log_lines_since(mark).join("\n");
        let sent = format!("start without {var}");
        let started = start_of(result, t0.elapsed())?;
        match judge_missing_start(var, &started, &log) {
            MissingStart::Stopped(note) => notes.push(note),
            MissingStart::Wrong(outcome) => return Ok(outcome),
            MissingStart::Started => {
                // It started: show what a valid request then gets.
                let endpoint = match ctx.sync_endpoint() {
                    Some(endpoint) => endpoint,
                    None => ctx.token_endpoint()?,
                };
                let me = ctx.sign_in("missing-env")?;
                let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
                let got = ctx.call(&endpoint, &token).await?;
                let detail = format!("; a valid request then got {}", got.summary());
                return Ok(Outcome::fail(
                    sent,
                    Some(got),
                    format!("the backend STARTED without the required variable {var}, so the misconfiguration only shows at request time{detail}"),
                ));
            }
        }
    }
    Ok(Outcome::pass(notes.join("; ")))
});

/// How a start went, from its result; other errors are the harness's.
fn start_of(result: Result<(), HarnessError>, elapsed: std::time::Duration) -> Result<Start, HarnessError> {
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
        after: std::time::Duration,
    },
    /// Still running but never healthy within the ready timeout.
    NotReady {
        /// The ready timeout.
        waited: std::time::Duration,
        /// The last health answer or connection error.
        last: String,
    },
    /// It started and answered its health path.
    Ready,
}

/// The verdict on one start without a required variable.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // built once per required variable
pub(crate) enum MissingStart {
    /// A non-zero exit naming the variable: the note.
    Stopped(String),
    /// Anything else but a start: the failure.
    Wrong(Outcome),
    /// It started (the caller shows what a request then gets).
    Started,
}

/// A start without `var`: [`MissingStart::Stopped`] for a non-zero exit whose output (`log`,
/// this start's lines only) names the variable. A health timeout is no clean exit: the
/// backend kept running, misconfigured, for the whole ready timeout.
pub(crate) fn judge_missing_start(var: &str, start: &Start, log: &str) -> MissingStart {
    let sent = format!("start without {var}");
    let named = log.contains(var);
    match start {
        Start::Exited { status, .. } if exited_cleanly(status) => MissingStart::Wrong(Outcome::fail(
            sent,
            None,
            format!("the backend exited with {status} (success) without {var}: a missing required variable must be a non-zero exit"),
        )),
        Start::Exited { after, .. } if named => MissingStart::Stopped(format!("{var}: exits in {} ms naming it", after.as_millis())),
        Start::Exited { status, .. } => {
            MissingStart::Wrong(Outcome::fail(sent, None, format!("the backend stopped ({status}) without {var} but its output never names the variable")))
        }
        Start::NotReady { waited, last } => MissingStart::Wrong(Outcome::fail(
            sent,
            None,
            format!(
                "the backend did not exit without {var}: it kept running, not healthy after {:.1} s (last health answer: {last}){}",
                waited.as_secs_f64(),
                if named {
                    "; its output names the variable, but only an exit stops a deployment at once"
                } else {
                    ", and its output never names the variable"
                }
            ),
        )),
        Start::Ready => MissingStart::Started,
    }
}

/// Whether an exit status (as the harness words it) is a success.
fn exited_cleanly(status: &str) -> bool {
    let s = status.trim();
    s == "0" || s.ends_with("exit status: 0") || s.ends_with("exit code 0") || s.ends_with("exit code: 0")
}

body!(secret_key_of_another_instance, |ctx| {
    let Some(var) = var_with(ctx, "{secret_key}") else {
        return Ok(Outcome::not_applicable("no [env] entry of the profile uses {secret_key}"));
    };
    // A syncing endpoint calls the Backend API with the key; without one, the token endpoint
    // may still use it (Clerk's Python SDK authenticates GET /v1/jwks with it).
    let syncs = ctx.sync_endpoint();
    let endpoint = match &syncs {
        Some(endpoint) => endpoint.clone(),
        None => ctx.token_endpoint()?,
    };
    let other = MockClerk::start().await?;
    ctx.fresh_backend(EnvChanges::new().set(var.clone(), other.instance().secret_key().expose())).await?;
    let me = ctx.sign_in("foreign-sk")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let got = ctx.call(&endpoint, &token).await?;
    let sent = format!("{:?} {} with a valid token; {var} = another instance's secret key", endpoint.method, endpoint.path.get());
    Ok(match got.status {
        s if s >= 500 => Outcome::pass(format!("a server error ({s}), not a 401 the SPA would retry forever")),
        401 => Outcome::fail(
            sent,
            Some(got),
            "a Backend API authentication failure (clerk_key_invalid) surfaced as 401: the SPA refreshes its (valid) token and loops",
        ),
        s if (200..300).contains(&s) && syncs.is_none() => Outcome::not_applicable(format!(
            "{var} is not used to answer {} (it succeeded with another instance's key): no endpoint of the profile syncs the user, so this \
             backend's Backend API calls are not exercised",
            endpoint.path.get()
        )),
        s if (200..300).contains(&s) => Outcome::fail(sent, Some(got), "succeeded although the Backend API refused the secret key"),
        _ => Outcome::fail(sent, Some(got), "expected a 5xx telling the operator the secret key is wrong"),
    })
});

body!(fapi_host_of_another_instance, |ctx| {
    let Some(var) = var_with(ctx, "{fapi_host}").or_else(|| var_with(ctx, "{jwks_url}")) else {
        return Ok(Outcome::not_applicable("no [env] entry of the profile uses {fapi_host} or {jwks_url}"));
    };
    let other = MockClerk::start().await?;
    ctx.env.interceptor().add_route(other.instance().fapi_host(), other.fapi_router()).map_err(|e| crate::StepError::Other(e.to_string()))?;
    // Every variable that names the instance points at B, each keeping its own shape
    // (`https://{fapi_host}/.well-known/jwks.json` stays a URL); other placeholders expand as usual.
    let mut changes = EnvChanges::new();
    for (name, value) in &ctx.env.profile().env {
        let raw = value.get();
        if raw.contains("{fapi_host}") || raw.contains("{jwks_url}") || raw.contains("{publishable_key}") || raw.contains("{pem_public_key}") {
            let pointed = raw
                .replace("{fapi_host}", other.instance().fapi_host())
                .replace("{jwks_url}", &other.jwks_url())
                .replace("{publishable_key}", other.instance().publishable_key())
                .replace("{pem_public_key}", &other.instance().pem_public_key());
            changes = changes.set(name.clone(), pointed);
        }
    }
    ctx.fresh_backend(changes).await?;
    let me = ctx.sign_in("foreign-fapi")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let endpoint = ctx.token_endpoint()?;
    let got: Exchange = ctx.call(&endpoint, &token).await?;
    ctx.env.interceptor().remove_route(other.instance().fapi_host());
    let sent = format!("a valid token of instance A; {var} points at instance B");
    Ok(match got.status {
        401 => Outcome::pass("refused with 401: the backend only trusts its own instance's keys"),
        s if (200..300).contains(&s) => Outcome::fail(sent, Some(got), "ACCEPTED a token of an instance it is not configured for"),
        _ => Outcome::fail(sent, Some(got), "expected 401 for a token signed by a key the configured instance does not publish"),
    })
});

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_health_timeout_is_no_clean_exit() {
        let start = Start::NotReady { waited: Duration::from_secs(30), last: "HTTP 503".into() };
        let r = judge_missing_start("CLERK_SECRET_KEY", &start, "ERROR CLERK_SECRET_KEY is not set");
        assert!(matches!(&r, MissingStart::Wrong(Outcome::Fail(f)) if f.problem.contains("did not exit")), "{r:?}");
    }

    #[test]
    fn only_this_starts_output_counts_and_a_zero_exit_fails() {
        let exited = Start::Exited { status: "exit status: 2".into(), after: Duration::from_millis(300) };
        assert!(matches!(judge_missing_start("DATABASE_URL", &exited, "DATABASE_URL is not set"), MissingStart::Stopped(_)));
        let r = judge_missing_start("DATABASE_URL", &exited, "Traceback … KeyError");
        assert!(matches!(&r, MissingStart::Wrong(Outcome::Fail(f)) if f.problem.contains("never names")), "{r:?}");
        let clean = Start::Exited { status: "exit status: 0".into(), after: Duration::from_millis(300) };
        assert!(matches!(judge_missing_start("DATABASE_URL", &clean, "DATABASE_URL"), MissingStart::Wrong(Outcome::Fail(_))));
        assert!(matches!(judge_missing_start("DATABASE_URL", &Start::Ready, ""), MissingStart::Started));
    }
}
