//! Findings explained by the fingerprint: a token accepted or refused past a claim, named by the
//! backend's measured leeway instead of a guess; and a correct refusal that does not say why.
//! Shared by the token, environment and loop checks.

use crate::fingerprint::Claim;
use crate::scenario::Outcome;

/// An acceptance of a token `offset` seconds past `claim` that the fingerprint's measured
/// leeway explains: the finding names that cause (with its measurement and the stack's fix)
/// instead of a guess. Other outcomes unchanged.
pub(crate) fn explain_accepted(ctx: &crate::ctx::Ctx, outcome: Outcome, claim: Claim, offset: u64, what: &str) -> Outcome {
    if !outcome.accepted_wrongly() {
        return outcome;
    }
    match ctx.fingerprint.accepted_cause(claim, offset) {
        Some(cause) => {
            let problem = format!("ACCEPTED {what}: {} — measured {}", cause.title, cause.measurement);
            outcome.caused_by(cause, problem)
        }
        None => outcome,
    }
}

/// A refusal of a token `offset` seconds past `claim` that Clerk's SDKs accept (5 s of
/// skew), explained by the measured leeway when it is narrower.
pub(crate) fn explain_refused(ctx: &crate::ctx::Ctx, outcome: Outcome, claims: &[Claim], offset: u64, what: &str) -> Outcome {
    if !matches!(&outcome, Outcome::Fail(f) if f.got.as_ref().is_some_and(|g| g.status >= 400)) {
        return outcome;
    }
    match claims.iter().find_map(|c| ctx.fingerprint.refused_cause(*c, offset)) {
        Some(cause) => {
            let problem = format!("refused {what}: {} — measured {}", cause.title, cause.measurement);
            outcome.caused_by(cause, problem)
        }
        None => outcome,
    }
}

/// Words a 401 body (or the backend's log) uses when it says why a session id is no token.
/// A bare "token" is not among them: "Token validation failed: " names the token, not what
/// is wrong with it.
pub(crate) const SAYS_WHY: [&str; 10] = ["jwt", "invalid", "malformed", "decode", "segment", "signature", "format", "session id", "not a token", "expired"];

/// The text among `texts` (the 401's body, then the backend's log lines) that says why a
/// token was refused, if one does.
pub(crate) fn says_why<'a>(texts: impl IntoIterator<Item = &'a str>) -> Option<String> {
    texts.into_iter().find_map(|text| {
        let plain = crate::pages::visible_text(text).to_lowercase();
        SAYS_WHY.iter().any(|w| plain.contains(w)).then(|| harness::internal::excerpt_around(text, &SAYS_WHY, 160))
    })
}

/// The one root cause of every correct refusal that does not say why (`tokens.session_id`,
/// this loop, `tokens.backend_clock_behind`): a `warn` wherever it appears — the answer is
/// right, the developer is left without a clue.
pub(crate) fn silent_refusal(sent: &str, got: crate::scenario::Exchange, what: &str) -> Outcome {
    let body = if got.body.trim().is_empty() { "an empty body".to_string() } else { format!("\"{}\"", got.excerpt(80)) };
    let cause = crate::fingerprint::Cause {
        id: "silent-refusal".into(),
        title: "correct 401s that do not say why: neither the answer nor the backend's log names what is wrong with the token".into(),
        measurement: format!("{what} was refused with 401 and {body}; no log line of the request named the reason"),
        fix: "name the reason in the 401's body and in the log (Clerk's SDKs: token-invalid, token-expired, token-not-active-yet…), \
              so a developer sees at once that the SPA sent a session id or that a clock is off"
            .into(),
    };
    let problem = format!("refused with 401 as it should be, but {body} does not say why and neither does the backend's log: {}", cause.title);
    Outcome::warn(sent, Some(got), problem.clone()).classed("token-format", cause.fix.clone()).caused_by(cause, problem)
}
