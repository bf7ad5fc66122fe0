//! What may outlive a token: a replay after its expiry, a cache of validated tokens, the backend's
//! own session cookie.

use std::time::Duration;

use harness::GetToken;

use crate::checks::{body, forge};
use crate::ctx::judge_rejection;
use crate::fingerprint::{Cause, Claim, Fact};
use crate::scenario::{Exchange, Outcome};

/// How long after a 1 s token `tokens.replay_after_expiry` replays it: past `exp` plus
/// Clerk's 5 s clock skew, with margin.
pub const REPLAY_DELAY: Duration = Duration::from_millis(7_200);

body!(replay_after_expiry, |ctx| {
    let me = ctx.sign_in("replay")?;
    let token = forge(ctx, &me.session.id)?.iat_offset(-50).nbf_offset(-60).exp_offset(1).build()?;
    let first = ctx.expect_accepted("a valid token expiring in 1 s", &token).await?;
    if let Outcome::Fail(_) = first {
        return Ok(first);
    }
    // Time passes at once where the backend's clock can be moved; else on the real clock.
    let how = match ctx.env.backend_clock().advance(REPLAY_DELAY) {
        Ok(()) => "the backend's clock moved on 7.2 s",
        Err(harness::HarnessError::NotApplicable(_)) => {
            ctx.timed(tokio::time::sleep(REPLAY_DELAY)).await;
            "waited 7.2 s on the real clock"
        }
        Err(e) => return Err(e.into()),
    };
    // Without the backend's cookies: a session of its own must not answer for a cache.
    let endpoint = ctx.token_endpoint()?;
    let got = ctx.call_without_cookies(&endpoint, &token).await?;
    let sent = format!("{:?} {} with the same token, replayed 6 s after it expired ({how}), without cookies", endpoint.method, endpoint.path.get());
    if !(200..300).contains(&got.status) {
        return Ok(judge_rejection(sent, got));
    }
    if let Some(cause) = ctx.fingerprint.accepted_cause(Claim::Exp, 6) {
        // Within the measured leeway: a fresh token as old is accepted too. Past the leeway,
        // a cache would still answer; the leeway alone would not.
        let beyond = match ctx.fingerprint.exp.clone() {
            Some(crate::fingerprint::Leeway::Bounded { refused, .. }) if ctx.env.backend_clock().unavailable_reason().is_none() => {
                // 6 s past exp now: `refused` more puts the replay 6 s past the leeway.
                ctx.env.backend_clock().advance(Duration::from_secs(refused))?;
                let again = ctx.call_without_cookies(&endpoint, &token).await?;
                Some((refused + 6, again))
            }
            _ => None,
        };
        return Ok(match beyond {
            Some((at, again)) if (200..300).contains(&again.status) => {
                let cause = validation_cache_cause(ctx, &format!("the same token accepted {at} s after exp, past the measured leeway ({})", cause.measurement));
                let problem = format!("a token accepted once was accepted again {at} s after it expired — past the measured leeway on exp: {}", cause.title);
                Outcome::fail(sent, Some(again), problem.clone()).caused_by(cause, problem)
            }
            Some((at, again)) => {
                let problem = format!(
                    "the replay 6 s after exp was accepted because {} (measured {}), replayed {at} s after exp, past that leeway, it was refused ({}), so nothing was kept from the first acceptance",
                    cause.title, cause.measurement, again.status
                );
                Outcome::fail(sent, Some(got), problem.clone()).classed("clock-skew", cause.fix.clone()).caused_by(cause, problem)
            }
            None => {
                let problem = format!("the replay 6 s after exp was accepted: {} (measured {})", cause.title, cause.measurement);
                Outcome::fail(sent, Some(got), problem.clone()).classed("clock-skew", cause.fix.clone()).caused_by(cause, problem)
            }
        });
    }
    let cause = validation_cache_cause(
        ctx,
        "the same token accepted again 6 s after exp, sent without cookies, while fresh tokens 6 s past exp are refused (leeway search)",
    );
    let problem = format!("a token accepted once was accepted again 6 s after it expired: {}", cause.title);
    Ok(Outcome::fail(sent, Some(got), problem.clone()).caused_by(cause, problem))
});

/// The root cause "validated tokens are cached past exp", with `measurement`.
fn validation_cache_cause(ctx: &crate::ctx::Ctx, measurement: &str) -> Cause {
    Cause {
        id: "validation-cache".into(),
        title: "validated tokens are cached without honouring exp (a token seen once keeps working after it expired)".into(),
        measurement: ctx.fingerprint.token_cache.as_ref().map_or_else(|| measurement.to_string(), |f| format!("{}: {}", f.figure, f.measurement)),
        fix: "cache a validated token until its exp at the latest (or do not cache: RS256 verification is cheap)".into(),
    }
}

/// When `tokens.cache_outlives_exp` replays a genuine token: seconds after its `exp`, off the
/// common leeways and cache lifetimes (60 s, 5 min), so no probe sits on a boundary.
pub const CACHE_PROBES: [i64; 4] = [6, 67, 187, 607];

body!(cache_outlives_exp, |ctx| {
    let clock = ctx.env.backend_clock().clone();
    if let Some(reason) = clock.unavailable_reason() {
        return Ok(Outcome::not_applicable(format!(
            "minutes past exp would have to pass on the real clock — the backend's clock cannot be moved: {reason} \
             (tokens.replay_after_expiry checks a replay seconds after exp on the real clock)"
        )));
    }
    let me = ctx.sign_in("cache")?;
    let genuine = forge(ctx, &me.session.id)?;
    let exp =
        genuine.parts().claims.get("exp").and_then(serde_json::Value::as_i64).ok_or_else(|| crate::StepError::Other("the mock's token has no exp".into()))?;
    let token = genuine.build()?;
    let first = ctx.expect_accepted("a valid token as the SPA gets it", &token).await?;
    if let Outcome::Fail(_) = first {
        return Ok(first);
    }
    let endpoint = ctx.token_endpoint()?;
    // Replays past exp, without cookies: (seconds after exp, answer).
    let mut replays: Vec<(i64, Exchange)> = vec![];
    for after in CACHE_PROBES {
        let ahead = exp + after - clock.clerk().now_unix();
        if ahead > 0 {
            clock.advance(Duration::from_secs(ahead.unsigned_abs()))?;
        }
        let got = ctx.call_without_cookies(&endpoint, &token).await?;
        let accepted = (200..300).contains(&got.status);
        replays.push((after, got));
        if !accepted {
            break;
        }
    }
    let sent = |after: i64| {
        format!("{:?} {} with the same token, {} after its exp (the backend's clock moved on; no cookies)", endpoint.method, endpoint.path.get(), span(after))
    };
    let Some((last_after, last)) = replays.last().cloned() else { return Err(crate::StepError::Other("no replay was sent".into())) };
    let refused_at = (!(200..300).contains(&last.status)).then_some(last_after);
    if refused_at.is_some() && !matches!(last.status, 401) {
        return Ok(judge_rejection(sent(last_after), last));
    }
    let accepted: Vec<i64> = replays.iter().filter(|(_, g)| (200..300).contains(&g.status)).map(|(a, _)| *a).collect();
    let Some(&longest) = accepted.last() else {
        ctx.fingerprint.token_cache = Some(Fact {
            figure: "no cache of validated tokens".into(),
            measurement: format!("the token replayed {} after exp was refused", span(last_after)),
            by: "tokens.cache_outlives_exp".into(),
        });
        return Ok(Outcome::pass(format!("refused {} after exp: {}", span(last_after), last.summary())));
    };
    let evidence = replays.iter().find(|(a, _)| *a == longest).map(|(_, g)| g.clone());
    let within_leeway = |a: i64| ctx.fingerprint.accepted_cause(Claim::Exp, a.unsigned_abs()).is_some();
    let beyond: Vec<i64> = accepted.iter().copied().filter(|a| !within_leeway(*a)).collect();
    let replayed = |list: &[i64]| list.iter().map(|a| span(*a)).collect::<Vec<_>>().join(", ");
    if beyond.is_empty() {
        // Every accepted replay is explained by the leeway (or an unchecked exp).
        let cause = ctx.fingerprint.accepted_cause(Claim::Exp, longest.unsigned_abs()).ok_or_else(|| crate::StepError::Other("no leeway cause".into()))?;
        if let Some(at) = refused_at {
            ctx.fingerprint.token_cache = Some(Fact {
                figure: "no cache of validated tokens".into(),
                measurement: format!("replays within the leeway accepted ({}), refused {} after exp", replayed(&accepted), span(at)),
                by: "tokens.cache_outlives_exp".into(),
            });
        }
        let problem = format!(
            "accepted {} after exp because {} (measured {}){}",
            replayed(&accepted),
            cause.title,
            cause.measurement,
            refused_at.map_or(String::new(), |at| format!(" — refused {} after exp, past that leeway: nothing was kept from the first acceptance", span(at)))
        );
        return Ok(Outcome::fail(sent(longest), evidence, problem.clone()).classed("clock-skew", cause.fix.clone()).caused_by(cause, problem));
    }
    let lifetime = match refused_at {
        Some(at) => format!("between {} and {} past exp", span(longest), span(at)),
        None => format!("at least {} past exp", span(longest)),
    };
    ctx.fingerprint.token_cache = Some(Fact {
        figure: format!("validated tokens cached {lifetime}"),
        measurement: format!("the same token replayed without cookies, accepted {} after exp, past the measured leeway", replayed(&beyond)),
        by: "tokens.cache_outlives_exp".into(),
    });
    let cause = validation_cache_cause(ctx, "");
    let problem = format!(
        "a token accepted once was still accepted {} after its exp{}: {}",
        span(longest),
        refused_at.map_or(String::new(), |at| format!(" (refused {} after)", span(at))),
        cause.title
    );
    Ok(Outcome::fail(sent(longest), evidence, problem.clone()).caused_by(cause, problem))
});

/// `6 s`, `4 min`.
fn span(secs: i64) -> String {
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

body!(backend_session_outlives_clerk, |ctx| {
    if !ctx.env.profile().cors.credentials {
        return Ok(Outcome::not_applicable(
            "the SPA sends no credentials ([cors] credentials = false): a cookie of the backend never comes back with its requests",
        ));
    }
    let me = ctx.sign_in("cookie")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let first = ctx.expect_accepted("a valid token (a browser with credentials: 'include', empty cookie jar)", &token).await?;
    if !matches!(first, Outcome::Pass(_)) {
        return Ok(first);
    }
    let url = ctx.env.backend_url().clone();
    let Some(cookies) = ctx.jar(&me.session.id).and_then(|j| j.cookie_header(&url)) else {
        ctx.fingerprint.session = Some(Fact {
            figure: "no session of its own: the backend set no cookie".into(),
            measurement: "a valid Bearer request from a browser with credentials: 'include'".into(),
            by: "tokens.backend_session_outlives_clerk".into(),
        });
        return Ok(Outcome::pass("the backend set no cookie: every request is authenticated by its Clerk token alone"));
    };
    let names: Vec<&str> = cookies.split(';').filter_map(|c| c.split('=').next()).map(str::trim).collect();
    let names = names.join(", ");
    let endpoint = ctx.token_endpoint()?;
    let expired = forge(ctx, &me.session.id)?.expired_by(30).build()?;
    let mut probes = vec![];
    probes.push(("no Authorization header".to_string(), ctx.call_raw(&endpoint, None).await?));
    probes.push(("a Clerk token expired 30 s ago".to_string(), ctx.call(&endpoint, &expired).await?));
    probes.push(("Authorization: Bearer not-a-jwt".to_string(), ctx.call_raw(&endpoint, Some("Bearer not-a-jwt")).await?));
    ctx.env.mock().store().set_session_status(&me.session.id, mock_clerk::SessionStatus::Revoked)?;
    probes.push(("no token, after the Clerk session was revoked (signed out)".to_string(), ctx.call_raw(&endpoint, None).await?));
    let sent = format!("{:?} {} with the cookies the backend set ({names})", endpoint.method, endpoint.path.get());
    let alone: Vec<&str> = probes.iter().filter(|(_, got)| (200..300).contains(&got.status)).map(|(what, _)| what.as_str()).collect();
    ctx.fingerprint.session = Some(Fact {
        figure: if alone.is_empty() {
            format!("sets {names}, which authenticates nothing without a valid Clerk token")
        } else {
            format!("sets {names}, which alone authenticates ({})", alone.join("; "))
        },
        measurement: format!(
            "the cookies sent back with: {}",
            probes.iter().map(|(what, got)| format!("{what} → {}", got.status)).collect::<Vec<_>>().join("; ")
        ),
        by: "tokens.backend_session_outlives_clerk".into(),
    });
    let outcome = judge_backend_session(sent, &names, probes);
    let cause = Cause {
        id: "backend-session".into(),
        title: format!("the backend keeps a session of its own ({names}) that outlives the Clerk token and session"),
        measurement: ctx.fingerprint.session.as_ref().map(|f| f.measurement.clone()).unwrap_or_default(),
        fix: "tie the backend session to the Clerk session: verify the Clerk token on every request and keep no session of your own, or end yours at the \
              token's exp and when Clerk's session ends (its sid, session.ended/session.revoked webhooks)"
            .into(),
    };
    Ok(match outcome {
        Outcome::Fail(f) => {
            let problem = f.problem.clone();
            Outcome::Fail(f).caused_by(cause, problem)
        }
        other => other,
    })
});

/// The SPA (a browser with `credentials: 'include'`) sends back the cookies the backend set
/// after a valid Bearer request. If one of them alone authenticates — without a token, with
/// an expired or garbage token, or after the Clerk session was revoked — signing out of
/// Clerk does not sign the user out of the backend, and an expired token keeps working: a
/// failure. (A browser sends a `SameSite=Lax` cookie only to a same-site backend —
/// `app.example.com` and `api.example.com` are — which is where this bites.)
pub(crate) fn judge_backend_session(sent: String, names: &str, probes: Vec<(String, Exchange)>) -> Outcome {
    let accepted: Vec<&(String, Exchange)> = probes.iter().filter(|(_, got)| (200..300).contains(&got.status)).collect();
    match accepted.first() {
        None => Outcome::pass(format!(
            "the backend sets cookies ({names}), but they authenticate nothing without a valid Clerk token: {}",
            probes.iter().map(|(what, got)| format!("{what} → {}", got.status)).collect::<Vec<_>>().join("; ")
        )),
        Some((_, got)) => Outcome::fail(
            sent,
            Some(got.clone()),
            format!(
                "the backend's own session cookie ({names}) authenticates without a valid Clerk token — accepted: {}",
                accepted.iter().map(|(what, got)| format!("{what} ({})", got.status)).collect::<Vec<_>>().join("; ")
            ),
        ),
    }
}
