//! Key rotation: how soon a rotated signing key's tokens are accepted, timed on the backend's clock
//! or the real one.

use std::time::Duration;

use harness::GetToken;
use mock_clerk::Rotation;

use super::jwks::jwks_fetches;
use crate::checks::body;
use crate::fingerprint::{Cause, Fact};
use crate::scenario::{Exchange, Outcome};

/// Where the backend's clock can be moved, `tokens.key_rotation` tries the new key again at
/// these offsets (seconds of the backend's clock after the rotation): roughly doubling, off
/// the common cooldowns and cache lifetimes (30 s, 5 min, 1 h) so none is probed on its
/// boundary, up to a day. The bracket found is then narrowed by bisection (one rotation per
/// step).
pub const ROTATION_STEPS: [u64; 14] = [3, 7, 17, 37, 67, 127, 307, 607, 1207, 2407, 3607, 7207, 21607, 86407];

/// What the backend did with tokens of a rotated key.
#[derive(Clone, Debug, PartialEq)]
pub enum Refetch {
    /// Accepted on the first try.
    AtOnce,
    /// Refused at first, accepted once more than `refused` and at most `accepted` had passed
    /// since the backend's last JWKS fetch (a refetch cooldown, or a cache lifetime).
    After {
        /// The longest time after which it was still refused.
        refused: Duration,
        /// The shortest time after which it was accepted.
        accepted: Duration,
        /// Whether the time passed on the backend's clock (moved) or the real clock.
        moved_clock: bool,
        /// JWKS fetches the mock saw between the rotation and the first acceptance.
        fetches: usize,
    },
    /// Refused for the whole horizon.
    Never {
        /// How long (of the backend's clock, or the real clock) it was tried.
        waited: Duration,
        /// JWKS fetches the mock saw after the rotation.
        fetches: usize,
        /// Whether the time passed on the backend's clock.
        moved_clock: bool,
    },
}

/// `≈30 s`, `≈5 min`, `≈1 h`: the measured bound as a reader names it.
pub(crate) fn approx_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 120.0 {
        format!("≈{s:.0} s")
    } else if s < 2.0 * 3600.0 {
        let min = (s / 60.0).round();
        if (min - 60.0).abs() < 1.0 {
            "≈1 h".into()
        } else {
            format!("≈{min:.0} min")
        }
    } else {
        format!("≈{:.0} h", (s / 3600.0).round())
    }
}

impl Refetch {
    /// The fingerprint's figure and its measurement.
    pub(crate) fn fact(&self) -> Fact {
        let by = "tokens.key_rotation".to_string();
        match self {
            Self::AtOnce => Fact {
                figure: "a rotated key is accepted at once (the JWKS is refetched for an unknown kid)".into(),
                measurement: "the new key's first token was accepted".into(),
                by,
            },
            Self::After { refused, accepted, moved_clock, fetches } => Fact {
                figure: format!("a rotated key is accepted only {} after the last JWKS fetch", approx_duration(*accepted)),
                measurement: format!(
                    "refused {:.0} s after the last fetch, accepted {:.0} s after, on {}; the unknown kid alone did not make it refetch \
                     ({fetches} JWKS fetch(es) from the rotation to the acceptance)",
                    refused.as_secs_f64(),
                    accepted.as_secs_f64(),
                    if *moved_clock { "the backend's clock, moved" } else { "the real clock" },
                ),
                by,
            },
            Self::Never { waited, fetches, moved_clock } => Fact {
                figure: format!("a rotated key is not accepted within {}", approx_duration(*waited)),
                measurement: format!(
                    "tried until {} of the {} had passed; {fetches} JWKS fetch(es) after the rotation",
                    crate::fingerprint::span(waited.as_secs()),
                    if *moved_clock { "backend's clock (moved)" } else { "real clock" }
                ),
                by,
            },
        }
    }
}

/// The verdict on a key rotation: at once is right; after a cooldown or a cache lifetime it
/// works, with every user of the new key refused meanwhile (a `warn` with the measured delay);
/// never within the horizon is a failure.
pub(crate) fn judge_rotation(sent: String, refetch: &Refetch, last: Option<Exchange>, stack: &crate::stack::Stack) -> Outcome {
    let fact = refetch.fact();
    match refetch {
        Refetch::AtOnce => Outcome::pass("the new key's token was accepted on the first try: the JWKS is refetched for an unknown kid"),
        Refetch::After { accepted, .. } => {
            let cause = Cause {
                id: "jwks-refetch-delay".into(),
                title: format!("the backend refetches the JWKS only {} after its last fetch, not for an unknown kid", approx_duration(*accepted)),
                measurement: fact.measurement.clone(),
                fix: crate::stack::fix(crate::stack::Knob::JwksRefetch, stack),
            };
            let problem = format!(
                "refetches the JWKS only after a delay: the new key's token was {}; every user whose token carries the new key gets 401 meanwhile",
                fact.measurement
            );
            Outcome::warn(sent, last, problem.clone()).classed("jwks-cache", cause.fix.clone()).caused_by(cause, problem)
        }
        Refetch::Never { fetches, .. } => Outcome::fail(
            sent,
            last,
            format!(
                "{}: {}",
                fact.figure,
                if *fetches == 0 {
                    "the JWKS was never refetched for the unknown kid".to_string()
                } else {
                    format!("the JWKS was fetched {fetches} time(s) after the rotation, yet the new kid was still refused (a key cache that ignores the refetched set?)")
                }
            ),
        ),
    }
}

/// One try of the current key's token: `Ok(true)` accepted, `Ok(false)` refused (401/403),
/// `Err(outcome)` any other answer (judged at once).
async fn try_new_key(ctx: &mut crate::ctx::Ctx, session_id: &str, sent: &str, turn: u32) -> Result<Result<(bool, Exchange), Outcome>, crate::StepError> {
    let fetches = jwks_fetches(ctx);
    let first = try_new_key_once(ctx, session_id, sent, turn).await?;
    if !matches!(first, Ok((false, _))) {
        return Ok(first);
    }
    // A cache that refreshes in the background (stale-while-revalidate) refuses the request
    // that found it stale and fetches right after: wait for that fetch to land before the
    // clock moves on (a jump while it is in flight can time it out on the faked clock), then
    // try once more at the same time.
    if !refetch_landed(ctx, fetches).await {
        return Ok(first);
    }
    ctx.note("the JWKS was fetched after the refusal (a background refresh): trying again at the same time");
    try_new_key_once(ctx, session_id, sent, turn).await
}

/// Whether a JWKS fetch reached the mock since it had seen `before` of them, waiting up to
/// [`REFRESH_GRACE`] for one, then a moment for the backend to install the set.
async fn refetch_landed(ctx: &crate::ctx::Ctx, before: usize) -> bool {
    let deadline = tokio::time::Instant::now() + REFRESH_GRACE;
    while jwks_fetches(ctx) == before {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    true
}

/// How long `tokens.key_rotation` waits, after a refusal, for a JWKS fetch the refusal set
/// off in the background.
const REFRESH_GRACE: Duration = Duration::from_millis(100);

async fn try_new_key_once(ctx: &mut crate::ctx::Ctx, session_id: &str, sent: &str, turn: u32) -> Result<Result<(bool, Exchange), Outcome>, crate::StepError> {
    let endpoint = ctx.token_endpoint()?;
    let want = *endpoint.status.get();
    let token = ctx.env.spa().get_token(session_id, &GetToken::ProfileDefault)?;
    ctx.set_turn(Some(turn));
    let got = ctx.call_without_cookies(&endpoint, &token).await;
    ctx.set_turn(None);
    let got = got?;
    if got.status == want || (200..300).contains(&got.status) {
        return Ok(Ok((true, got)));
    }
    // Only a refusal (401, or a 403 from a library that refuses with 403 — reported by its
    // own scenarios) can be a cache waiting to refetch; anything else is judged now.
    if got.status != 401 && got.status != 403 {
        let problem = format!("the new key's valid token was answered {} (neither accepted nor a plain 401)", got.status);
        return Ok(Err(Outcome::fail(sent, Some(got), problem)));
    }
    Ok(Ok((false, got)))
}

body!(key_rotation, |ctx| {
    let fetches_at_start = jwks_fetches(ctx);
    ctx.fresh_backend(harness::EnvChanges::new()).await?;
    let me = ctx.sign_in("rotation")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let warm = ctx.expect_accepted("a valid token (warms the JWKS cache)", &token).await?;
    if let Outcome::Fail(_) = warm {
        return Ok(warm);
    }
    let networkless = jwks_fetches(ctx) == fetches_at_start;
    let kid = ctx.env.mock().rotate_key(Rotation::KeepOldFor(Duration::from_secs(3600)))?;
    ctx.note(format!("rotates Clerk's signing key: new tokens carry kid {kid}"));
    if networkless {
        // A fixed public key (CLERK_JWT_KEY) never follows a rotation: by design, the new key
        // only works after a redeploy with the new PEM. One try says whether that is so.
        let endpoint = ctx.token_endpoint()?;
        let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
        let got = ctx.call(&endpoint, &token).await?;
        let sent = format!("{:?} {} with a token signed by the new key {kid}", endpoint.method, endpoint.path.get());
        return Ok(if (200..300).contains(&got.status) {
            Outcome::pass("accepted the new key's token at once")
        } else if got.status >= 500 {
            let problem = format!("crashed ({}) on a valid token of the rotated key instead of refusing it with 401", got.status);
            Outcome::fail(sent, Some(got), problem)
        } else {
            ctx.fingerprint.jwks = Some(Fact {
                figure: "networkless: a fixed public key, never refetched".into(),
                measurement: "tokens accepted without any JWKS fetch; the rotated key's token refused".into(),
                by: "tokens.key_rotation".into(),
            });
            Outcome::warn(
                sent,
                Some(got),
                "networkless verification (the backend accepted tokens without ever fetching the JWKS): tokens of a rotated key are \
                 refused until CLERK_JWT_KEY holds the new PEM and the backend is redeployed — plan key rotation as a deploy step, or \
                 verify with the JWKS",
            )
        });
    }
    let fetches_before = jwks_fetches(ctx);
    let endpoint = ctx.token_endpoint()?;
    let sent = format!("{:?} {} with a token signed by the new key {kid}, right after rotation", endpoint.method, endpoint.path.get());
    let (accepted, got) = match try_new_key(ctx, &me.session.id, &sent, 1).await? {
        Ok(answer) => answer,
        Err(outcome) => return Ok(outcome),
    };
    if accepted {
        ctx.fingerprint.jwks = Some(Refetch::AtOnce.fact());
        return Ok(judge_rotation(sent, &Refetch::AtOnce, Some(got), &ctx.fingerprint.stack));
    }
    let clock = ctx.env.backend_clock().clone();
    let refetch = if clock.unavailable_reason().is_none() {
        match rotation_on_the_clock(ctx, &me.session.id, &sent, &clock, fetches_before).await? {
            Ok(refetch) => refetch,
            Err(outcome) => return Ok(outcome),
        }
    } else {
        match rotation_on_the_real_clock(ctx, &me.session.id, &sent, fetches_before).await? {
            Ok(refetch) => refetch,
            Err(outcome) => return Ok(outcome),
        }
    };
    ctx.fingerprint.jwks = Some(refetch.fact());
    if let Refetch::After { moved_clock: false, .. } | Refetch::Never { moved_clock: false, .. } = refetch {
        ctx.note(format!(
            "the backend's clock cannot be moved ({}): the refetch was timed on the real clock, for at most {:.0} s",
            clock.unavailable_reason().unwrap_or("?"),
            ctx.rotation_patience.as_secs_f64()
        ));
    }
    let last = Some(got);
    Ok(judge_rotation(sent, &refetch, last, &ctx.fingerprint.stack))
});

/// Times the refetch by moving the backend's clock ([`ROTATION_STEPS`]), then narrows the
/// bracket by bisection: each step rotates the key again right after the backend fetched the
/// JWKS (its acceptance), moves the clock half-way and tries; an acceptance there is the new
/// upper bound, a refusal the new lower one (and the clock moves on to the upper bound, where
/// it must be accepted again, which refetches).
async fn rotation_on_the_clock(
    ctx: &mut crate::ctx::Ctx,
    session_id: &str,
    sent: &str,
    clock: &harness::BackendClock,
    fetches_before: usize,
) -> Result<Result<Refetch, Outcome>, crate::StepError> {
    // From here on the backend's key cache and clock are not what other scenarios expect.
    ctx.dirty = true;
    let mut at = 0;
    let mut turn = 1;
    let mut bracket = None;
    for step in ROTATION_STEPS {
        clock.advance(Duration::from_secs(step - at))?;
        at = step;
        turn += 1;
        match try_new_key(ctx, session_id, sent, turn).await? {
            Err(outcome) => return Ok(Err(outcome)),
            Ok((true, _)) => {
                bracket = Some((ROTATION_STEPS.iter().copied().take_while(|s| *s < step).last().unwrap_or(0), step));
                break;
            }
            Ok((false, _)) => {}
        }
    }
    let fetches = jwks_fetches(ctx) - fetches_before;
    let Some((mut lo, mut hi)) = bracket else {
        return Ok(Ok(Refetch::Never { waited: Duration::from_secs(at), fetches, moved_clock: true }));
    };
    // Narrow to ~1 % (at least 1 s): one rotation per step.
    while hi - lo > (hi / 100).max(1) {
        let mid = lo + (hi - lo) / 2;
        let kid = ctx.env.mock().rotate_key(Rotation::KeepOldFor(Duration::from_secs(3600)))?;
        ctx.note(format!("rotates again (kid {kid}) to narrow the delay: tries {mid} s after the last fetch"));
        clock.advance(Duration::from_secs(mid))?;
        turn += 1;
        match try_new_key(ctx, session_id, sent, turn).await? {
            Err(outcome) => return Ok(Err(outcome)),
            Ok((true, _)) => hi = mid,
            Ok((false, _)) => {
                lo = mid;
                clock.advance(Duration::from_secs(hi - mid))?;
                turn += 1;
                match try_new_key(ctx, session_id, sent, turn).await? {
                    Err(outcome) => return Ok(Err(outcome)),
                    Ok((true, _)) => {}
                    // Not accepted where it was before: the delay is not a fixed one; keep
                    // the bracket measured so far.
                    Ok((false, _)) => break,
                }
            }
        }
    }
    Ok(Ok(Refetch::After { refused: Duration::from_secs(lo), accepted: Duration::from_secs(hi), moved_clock: true, fetches }))
}

/// The real-clock fallback: tries the new key with a backoff for [`Ctx::rotation_patience`].
async fn rotation_on_the_real_clock(
    ctx: &mut crate::ctx::Ctx,
    session_id: &str,
    sent: &str,
    fetches_before: usize,
) -> Result<Result<Refetch, Outcome>, crate::StepError> {
    let started = std::time::Instant::now();
    let mut tries = 1;
    let mut last_refused = Duration::ZERO;
    let mut pause = Duration::from_millis(250);
    loop {
        if started.elapsed() >= ctx.rotation_patience {
            return Ok(Ok(Refetch::Never { waited: started.elapsed(), fetches: jwks_fetches(ctx) - fetches_before, moved_clock: false }));
        }
        ctx.timed(tokio::time::sleep(pause)).await;
        pause = (pause * 2).min(Duration::from_secs(2));
        tries += 1;
        match try_new_key(ctx, session_id, sent, tries).await? {
            Err(outcome) => return Ok(Err(outcome)),
            Ok((true, _)) => {
                return Ok(Ok(Refetch::After {
                    refused: last_refused,
                    accepted: started.elapsed(),
                    moved_clock: false,
                    fetches: jwks_fetches(ctx) - fetches_before,
                }))
            }
            Ok((false, _)) => last_refused = started.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::ROTATION_PATIENCE;

    #[test]
    fn rotation_findings_are_told_apart() {
        let stack = crate::stack::Stack::default();
        assert!(matches!(judge_rotation("s".into(), &Refetch::AtOnce, None, &stack), Outcome::Pass(_)));
        let cooldown = Refetch::After { refused: Duration::from_secs(29), accepted: Duration::from_secs(30), moved_clock: true, fetches: 1 };
        let after = judge_rotation("s".into(), &cooldown, None, &stack);
        assert!(
            matches!(&after, Outcome::Warn(f) if f.problem.contains("refused 29 s after the last fetch, accepted 30 s after")
                && f.cause.as_ref().is_some_and(|c| c.title.contains("≈30 s"))),
            "{after:?}"
        );
        let never = judge_rotation("s".into(), &Refetch::Never { waited: Duration::from_secs(86407), fetches: 0, moved_clock: true }, None, &stack);
        assert!(matches!(&never, Outcome::Fail(f) if f.problem.contains("never refetched")), "{never:?}");
        let ignored = judge_rotation("s".into(), &Refetch::Never { waited: ROTATION_PATIENCE, fetches: 2, moved_clock: false }, None, &stack);
        assert!(matches!(&ignored, Outcome::Fail(f) if f.problem.contains("fetched 2 time(s)")), "{ignored:?}");
    }

    #[test]
    fn delays_are_named_as_a_reader_would() {
        assert_eq!(approx_duration(Duration::from_secs(30)), "≈30 s");
        assert_eq!(approx_duration(Duration::from_secs(301)), "≈5 min");
        assert_eq!(approx_duration(Duration::from_secs(3607)), "≈1 h");
        assert_eq!(approx_duration(Duration::from_secs(3590)), "≈1 h");
    }

    #[test]
    fn the_patience_outlasts_pyjwts_default_cooldown() {
        assert!(ROTATION_PATIENCE > Duration::from_secs(30));
    }
}
