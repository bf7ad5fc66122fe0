//! 401 loops: the SPA's refresh-and-retry policy replayed against the backend.

use harness::GetToken;

use super::body;
use crate::loops::{replay, LoopVerdict, SpaPolicy};
use crate::scenario::Outcome;

async fn replay_outcome(ctx: &mut crate::ctx::Ctx, policy: SpaPolicy, what: &str) -> Result<Outcome, crate::StepError> {
    let endpoint = ctx.sync_endpoint().map_or_else(|| ctx.token_endpoint(), Ok)?;
    let me = ctx.sign_in("loop")?;
    let verdict = replay(ctx, &endpoint, &me.session.id, &policy).await?;
    let sent =
        format!("{what}: {:?} {} with {:?}, refresh and retry on 401 up to {} times", endpoint.method, endpoint.path.get(), policy.token, policy.max_retries);
    Ok(match verdict {
        LoopVerdict::Converged { tries: 1 } => Outcome::pass(verdict.describe()),
        LoopVerdict::Converged { .. } => Outcome::pass(format!("{} (a retry was needed)", verdict.describe())),
        LoopVerdict::Loop { ref last, .. } => Outcome::fail(sent, Some(last.clone()), verdict.describe()),
        LoopVerdict::Stopped { ref last } => Outcome::fail(sent, Some(last.clone()), verdict.describe()),
    })
}

body!(spa_policy_converges, |ctx| { replay_outcome(ctx, SpaPolicy::default(), "the SPA's token as the profile describes it").await });

body!(clerk_clock_ahead_converges, |ctx| {
    let policy = SpaPolicy { clock_skew_secs: 3, ..SpaPolicy::default() };
    replay_outcome(ctx, policy, "tokens from a Clerk whose clock is 3 s ahead of the backend's").await
});

body!(session_id_by_mistake_is_diagnosable, |ctx| {
    let policy = SpaPolicy { token: GetToken::SessionIdByMistake, max_retries: 1, ..SpaPolicy::default() };
    let endpoint = ctx.token_endpoint()?;
    let me = ctx.sign_in("loop-sid")?;
    let verdict = replay(ctx, &endpoint, &me.session.id, &policy).await?;
    Ok(match verdict {
        LoopVerdict::Loop { last, .. } if !last.body.trim().is_empty() => {
            Outcome::pass(format!("the frontend bug loops as expected, and each 401 says why: {}", last.summary()))
        }
        LoopVerdict::Loop { last, .. } => Outcome::fail(
            "the session id as Bearer, with retries",
            Some(last),
            "401 loop with an empty body: nothing tells the frontend developer that a session id is not a token",
        ),
        other => Outcome::fail("the session id as Bearer, with retries", None, format!("{}: a session id must never be accepted", other.describe())),
    })
});
