//! 401 loops: the SPA's refresh-and-retry policy replayed against the backend.

use harness::GetToken;

use super::body;
use crate::checks::explain::{says_why, silent_refusal};
use crate::loops::{replay, LoopVerdict, SpaPolicy};
use crate::scenario::Outcome;

async fn replay_outcome(ctx: &mut crate::ctx::Ctx, policy: SpaPolicy, what: &str) -> Result<Outcome, crate::StepError> {
    let endpoint = match ctx.sync_endpoint() {
        Some(endpoint) => endpoint,
        None => ctx.token_endpoint()?,
    };
    let me = ctx.sign_in("loop")?;
    let verdict = replay(ctx, &endpoint, &me.session.id, &policy).await?;
    let sent =
        format!("{what}: {:?} {} with {:?}, refresh and retry on 401 up to {} times", endpoint.method, endpoint.path.get(), policy.token, policy.max_retries);
    Ok(judge_convergence(sent, verdict))
}

/// The row expects convergence on the FIRST try: a token the SPA just got must work. Needing
/// a refresh-and-retry means the backend refused a valid fresh token (users see a failed
/// call, or a slow page, on every first request) — a failure, with the first answer.
pub(crate) fn judge_convergence(sent: String, verdict: LoopVerdict) -> Outcome {
    match verdict {
        LoopVerdict::Converged { tries: 1, .. } => Outcome::pass(verdict.describe()),
        LoopVerdict::Converged { tries, ref first } => Outcome::fail(
            sent,
            first.clone(),
            format!("the first valid token was refused: converged only after {tries} tries, each retry with a freshly refreshed token"),
        ),
        LoopVerdict::Loop { ref last, .. } | LoopVerdict::Stopped { ref last } => Outcome::fail(sent, Some(last.clone()), verdict.describe()),
    }
}

/// The session-id bug loops by design (the frontend sends `sess_…`); the backend's part is
/// a 401 each time, which should say why — the token is not a JWT, invalid, malformed… — in
/// its body or its log. A 401 that says nothing is a `warn` (one severity for one kind of
/// answer, as in `tokens.session_id` and `tokens.backend_clock_behind`).
pub(crate) fn judge_session_id_loop(verdict: LoopVerdict, log: &[String]) -> Outcome {
    const SENT: &str = "the session id (sess_…) as Bearer, refreshed and retried on 401";
    match verdict {
        LoopVerdict::Loop { last, .. } => match says_why(std::iter::once(last.body.as_str()).chain(log.iter().map(String::as_str))) {
            Some(why) => Outcome::pass(format!("the frontend bug loops as expected, and each 401 says why: {why}")),
            None => silent_refusal(SENT, last, "the session id sent as a token"),
        },
        LoopVerdict::Converged { tries, .. } => {
            Outcome::fail(SENT, None, format!("the session id was ACCEPTED as a token (on try {tries}): a session id must never authenticate a request"))
        }
        LoopVerdict::Stopped { last } => {
            let problem =
                format!("answered {} instead of 401: a session id sent as Bearer is an invalid token and must get 401 saying it is not a JWT", last.status);
            Outcome::fail(SENT, Some(last), problem)
        }
    }
}

body!(spa_policy_converges, |ctx| { replay_outcome(ctx, SpaPolicy::default(), "the SPA's token as the profile describes it").await });

body!(clerk_clock_ahead_converges, |ctx| {
    let policy = SpaPolicy { clock_skew_secs: 3, ..SpaPolicy::default() };
    let outcome = replay_outcome(ctx, policy, "tokens from a Clerk whose clock is 3 s ahead of the backend's").await?;
    // A refusal of a token 3 s ahead is a leeway narrower than Clerk's 5 s, when measured so.
    use crate::fingerprint::Claim;
    Ok(crate::checks::explain::explain_refused(ctx, outcome, &[Claim::Iat, Claim::Nbf], 3, "a token issued 3 s ahead of the backend's clock"))
});

body!(session_id_by_mistake_is_diagnosable, |ctx| {
    let policy = SpaPolicy { token: GetToken::SessionIdByMistake, max_retries: 1, ..SpaPolicy::default() };
    let endpoint = ctx.token_endpoint()?;
    let me = ctx.sign_in("loop-sid")?;
    let mark = ctx.env.log_mark();
    let verdict = replay(ctx, &endpoint, &me.session.id, &policy).await?;
    let log = ctx.env.log_lines_since(mark);
    Ok(judge_session_id_loop(verdict, &log))
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Exchange;

    #[test]
    fn converging_only_after_a_retry_fails() {
        let first = Exchange { status: 401, body: r#"{"detail":"token-iat-in-the-future"}"#.into(), ..Exchange::default() };
        let o = judge_convergence("s".into(), LoopVerdict::Converged { tries: 2, first: Some(first) });
        assert!(matches!(&o, Outcome::Fail(f) if f.problem.contains("after 2 tries") && f.got.as_ref().is_some_and(|g| g.status == 401)), "{o:?}");
        assert!(matches!(judge_convergence("s".into(), LoopVerdict::Converged { tries: 1, first: None }), Outcome::Pass(_)));
    }

    #[test]
    fn a_body_says_why_only_if_it_names_the_token_problem() {
        let loop_with = |body: &str| LoopVerdict::Loop { tries: 2, last: Exchange { status: 401, body: body.into(), ..Exchange::default() } };
        assert!(matches!(judge_session_id_loop(loop_with(r#"{"detail":"Invalid token: not enough segments"}"#), &[]), Outcome::Pass(_)));
        let silent = judge_session_id_loop(loop_with(r#"{"detail":"Authentication required"}"#), &[]);
        assert!(matches!(&silent, Outcome::Warn(f) if f.cause.as_ref().is_some_and(|c| c.id == "silent-refusal")), "{silent:?}");
        assert!(matches!(judge_session_id_loop(loop_with(""), &[]), Outcome::Warn(_)));
        // The log may say why when the body does not.
        let logged = ["WARNING jwt.exceptions.DecodeError: Not enough segments".to_string()];
        assert!(matches!(judge_session_id_loop(loop_with(r#"{"detail":"Authentication required"}"#), &logged), Outcome::Pass(_)));
        let accepted = judge_session_id_loop(LoopVerdict::Converged { tries: 1, first: None }, &[]);
        assert!(matches!(&accepted, Outcome::Fail(f) if f.problem.contains("ACCEPTED")), "{accepted:?}");
    }
}
