//! Findings explained by the fingerprint: a token accepted or refused past a claim, named by the
//! backend's measured leeway instead of a guess. Shared by the token and loop checks.

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
