//! Token validation: what must be accepted and what must be refused with 401.

use std::time::Duration;

use harness::{GetToken, TokenKind};
use mock_clerk::{Fault, MockClerk, Rotation, Route};

use super::{body, forge};
use crate::ctx::judge_rejection;
use crate::fingerprint::{Cause, Claim, Fact};
use crate::scenario::{Exchange, Outcome};

body!(session_token_accepted, |ctx| {
    let me = ctx.sign_in("session-token")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::Session)?;
    if *ctx.env.profile().token.kind.get() == TokenKind::Template {
        let endpoint = ctx.token_endpoint()?;
        let got = ctx.call(&endpoint, &token).await?;
        return Ok(if got.status == 401 {
            Outcome::pass("the profile requires a template token: the default session token is refused with 401")
        } else {
            judge_rejection("a default session token (getToken() without template)".into(), got)
        });
    }
    ctx.expect_accepted("a valid default session token (getToken())", &token).await
});

body!(template_token_accepted, |ctx| {
    let spec = &ctx.env.profile().token;
    let (TokenKind::Template, Some(name)) = (spec.kind.get(), spec.template.clone()) else {
        return Ok(Outcome::not_applicable("the profile's SPA sends default session tokens ([token] kind = \"session\")"));
    };
    let me = ctx.sign_in("template-token")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::Template(name.clone()))?;
    ctx.expect_accepted(&format!("a valid token of template '{name}'"), &token).await
});

body!(session_id_as_bearer, |ctx| {
    let me = ctx.sign_in("session-id")?;
    let endpoint = ctx.token_endpoint()?;
    let mark = ctx.env.log_mark();
    let got = ctx.call(&endpoint, &me.session.id).await?;
    let sent = format!("{:?} {} with the session id (sess_…) instead of a token", endpoint.method, endpoint.path.get());
    if got.status != 401 {
        return Ok(judge_rejection(sent, got));
    }
    if crate::checks::loops::says_why([got.body.as_str()]).is_none() {
        // Its log line may still be on its way.
        ctx.timed(tokio::time::sleep(Duration::from_millis(100))).await;
    }
    let log = ctx.env.log_lines_since(mark);
    Ok(match crate::checks::loops::says_why(std::iter::once(got.body.as_str()).chain(log.iter().map(String::as_str))) {
        Some(why) => Outcome::pass(format!("rejected: {} — saying why: {why}", got.summary())),
        None => crate::checks::loops::silent_refusal(&sent, got, "the session id sent as a token"),
    })
});

body!(expired, |ctx| {
    let me = ctx.sign_in("expired")?;
    let token = forge(ctx, &me.session.id)?.expired_by(30).build()?;
    let outcome = ctx.expect_rejected("a token expired 30 s ago", &token).await?;
    Ok(explain_accepted(ctx, outcome, Claim::Exp, 30, "a token expired 30 s ago"))
});

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

body!(expired_within_skew, |ctx| {
    let me = ctx.sign_in("skew")?;
    let token = forge(ctx, &me.session.id)?.expired_by(2).build()?;
    let outcome = ctx.expect_accepted("a token expired 2 s ago (within Clerk's 5 s clock skew)", &token).await?;
    Ok(explain_refused(ctx, outcome, &[Claim::Exp], 2, "a token expired 2 s ago"))
});

body!(not_yet_valid, |ctx| {
    let me = ctx.sign_in("nbf")?;
    let token = forge(ctx, &me.session.id)?.not_before_in(60).exp_offset(120).build()?;
    let outcome = ctx.expect_rejected("a token not valid before 60 s from now (nbf)", &token).await?;
    Ok(explain_accepted(ctx, outcome, Claim::Nbf, 60, "a token not valid before 60 s from now (nbf)"))
});

body!(iat_in_the_future, |ctx| {
    let me = ctx.sign_in("iat")?;
    let token = forge(ctx, &me.session.id)?.iat_offset(60).nbf_offset(-10).build()?;
    let outcome = ctx.expect_rejected("a token issued 60 s in the future (iat)", &token).await?;
    Ok(explain_accepted(ctx, outcome, Claim::Iat, 60, "a token issued 60 s in the future (iat)"))
});

body!(wrong_audience, |ctx| {
    let me = ctx.sign_in("aud")?;
    let token = forge(ctx, &me.session.id)?.claim("aud", "https://someone-else.example").build()?;
    let outcome = ctx.expect_rejected("a token for another audience (aud)", &token).await?;
    if !ctx.env.profile().token.audience.is_empty() {
        return Ok(outcome);
    }
    Ok(judge_undeclared_audience(outcome))
});

/// No audience declared: the probe is sent all the same. Refusing a foreign `aud` is right;
/// accepting it is what Clerk's own SDKs do when no `audience` option is set (they check
/// `aud` only against a configured list), so it is no finding: the note says what happened
/// and how to make it a real check. A crash stays a failure.
pub(crate) fn judge_undeclared_audience(outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Pass(note) => Outcome::pass(format!("{note} — no audience is declared, and a token for another audience is refused anyway")),
        Outcome::Fail(f) if f.got.as_ref().is_some_and(|g| (200..300).contains(&g.status)) => Outcome::not_applicable(
            "the profile declares no audience ([token] audience = []); sent anyway, a token with aud = https://someone-else.example was accepted, \
             as Clerk's SDKs do without an audience option — declare the backend's audience to check it",
        ),
        other => other,
    }
}

body!(wrong_authorized_party, |ctx| {
    let me = ctx.sign_in("azp")?;
    let token = forge(ctx, &me.session.id)?.claim("azp", EVIL_ORIGIN).build()?;
    let outcome = ctx.expect_rejected(&format!("a token minted for {EVIL_ORIGIN} (azp)"), &token).await?;
    if !ctx.env.profile().token.authorized_parties.is_empty() {
        return Ok(outcome);
    }
    Ok(judge_undeclared_parties(outcome))
});

/// An origin no profile lists: where forged-origin probes come from.
pub const EVIL_ORIGIN: &str = "https://evil.example.com";

/// No authorized parties declared: the evil-origin token is sent all the same. Refused:
/// pass. Accepted: the backend takes tokens minted for any origin — Clerk's SDKs skip the
/// `azp` check without `authorizedParties`, which their docs recommend setting — a `warn`
/// with the fix, not a failure.
pub(crate) fn judge_undeclared_parties(outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Fail(mut f) if f.got.as_ref().is_some_and(|g| (200..300).contains(&g.status)) => {
            f.problem = format!(
                "a token minted for {EVIL_ORIGIN} (azp) was accepted: the backend takes tokens issued to any origin \
                 (the profile declares no authorized parties, so this is a risk, not a failure)"
            );
            Outcome::Warn(f).classed(
                "authorized-parties",
                "declare the SPA's origins as authorized parties (Clerk SDKs: authorizedParties / authorized_parties=[…]) and list them in the profile's [token] authorized_parties",
            )
        }
        other => other,
    }
}

body!(foreign_instance, |ctx| {
    let other = MockClerk::start().await?;
    let me = ctx.sign_in("foreign")?;
    let token = forge(ctx, &me.session.id)?.signed_by(other.instance()).claim("iss", other.instance().issuer()).build()?;
    ctx.expect_rejected("a token of another Clerk instance (its key, kid and iss)", &token).await
});

body!(wrong_issuer, |ctx| {
    let me = ctx.sign_in("iss")?;
    let token = forge(ctx, &me.session.id)?.claim("iss", "https://other-instance-12.clerk.accounts.dev").build()?;
    let outcome = ctx.expect_rejected("a genuinely signed token whose iss is another instance's", &token).await?;
    Ok(accepted_is_only_a_risk(
        outcome,
        "accepted a token whose iss is another instance's: Clerk's own SDKs skip the iss check too, and the token is signed by this \
         instance's key, which only Clerk holds — so this is missing defence in depth (a key shared by mistake, a proxy URL), not a forgery path",
    ))
});

/// A token signed by the instance's own key that the backend accepts although one claim is
/// off (iss, a missing sub): only Clerk holds that key and Clerk never mints such a token, and
/// Clerk's own SDKs accept it too, so acceptance is a `warn` (defence in depth), never a `fail`.
/// A crash (5xx) or a 403 stays a failure.
pub(crate) fn accepted_is_only_a_risk(outcome: Outcome, problem: &str) -> Outcome {
    match outcome {
        Outcome::Fail(f) if f.got.as_ref().is_some_and(|g| (200..300).contains(&g.status)) => Outcome::warn(f.sent, f.got, problem),
        other => other,
    }
}

/// Whether the backend verifies with a fixed key (networkless, `CLERK_JWT_KEY`): the mock
/// never served it a JWKS, although it accepted tokens.
fn never_fetched_jwks(ctx: &crate::ctx::Ctx) -> bool {
    jwks_fetches(ctx) == 0
}

body!(unknown_kid, |ctx| {
    let me = ctx.sign_in("kid")?;
    let token = forge(ctx, &me.session.id)?.unknown_kid().build()?;
    let outcome = ctx.expect_rejected("a token whose kid is in no JWKS", &token).await?;
    if matches!(&outcome, Outcome::Fail(f) if f.got.as_ref().is_some_and(|g| (200..300).contains(&g.status))) && never_fetched_jwks(ctx) {
        return Ok(Outcome::not_applicable(
            "networkless verification: the backend never fetched the JWKS and verifies with a fixed public key (CLERK_JWT_KEY), so it \
             never reads kid; this token is signed by the instance's own key, so accepting it is right",
        ));
    }
    Ok(outcome)
});

body!(tampered, |ctx| {
    let me = ctx.sign_in("tampered")?;
    let victim = ctx.sign_in("victim")?;
    let token = forge(ctx, &me.session.id)?.tampered("sub", victim.user.id.as_str()).build()?;
    ctx.expect_rejected("a token whose sub was changed after signing", &token).await
});

body!(alg_none, |ctx| {
    let me = ctx.sign_in("none")?;
    let token = forge(ctx, &me.session.id)?.alg_none().build()?;
    ctx.expect_rejected("an unsigned token (alg: none)", &token).await
});

body!(hs256_with_public_key, |ctx| {
    let me = ctx.sign_in("hs256")?;
    let token = forge(ctx, &me.session.id)?.hs256_with_public_key(ctx.env.mock().instance()).build()?;
    ctx.expect_rejected("an HS256 token keyed with the instance's public key PEM", &token).await
});

body!(missing_sub, |ctx| {
    let me = ctx.sign_in("nosub")?;
    let token = forge(ctx, &me.session.id)?.without_claim("sub").build()?;
    let outcome = ctx.expect_rejected("a token without sub", &token).await?;
    Ok(accepted_is_only_a_risk(
        outcome,
        "accepted a token without sub: only Clerk can sign one and it never omits sub, but the request then has no user — require sub \
         so a bad token can never become an anonymous user",
    ))
});

body!(no_authorization_header, |ctx| {
    let endpoint = ctx.token_endpoint()?;
    let got = ctx.call_raw(&endpoint, None).await?;
    let sent = format!("{:?} {} without an Authorization header", endpoint.method, endpoint.path.get());
    Ok(judge_missing_bearer(sent, got, &ctx.fingerprint.stack))
});

/// A request without credentials must get 401 (403 stops the SPA from refreshing: a
/// failure). The 401 should carry `WWW-Authenticate: Bearer`: RFC 6750 §3 says the resource
/// server MUST include it when a request has no token, and RFC 9110 §15.5.2 requires a
/// challenge on every 401. Without it the verdict is `warn`, not `fail`: a browser SPA
/// never reads that header (Clerk's frontend SDKs refresh on the 401 status alone), the
/// common stacks omit it (FastAPI's `HTTPBearer(auto_error=False)` plus a hand-raised
/// `HTTPException(401)`, Clerk's SDK helpers that return an unauthenticated request state
/// for the app to turn into a 401), so nothing breaks for the SPA — but non-browser clients,
/// proxies and API tooling rely on the challenge to know the scheme.
pub(crate) fn judge_missing_bearer(sent: String, got: Exchange, stack: &crate::stack::Stack) -> Outcome {
    let challenge = got.header("www-authenticate").map(str::to_string);
    match judge_rejection(sent.clone(), got.clone()) {
        Outcome::Pass(note) if challenge.as_deref().is_some_and(|c| c.trim_start().to_ascii_lowercase().starts_with("bearer")) => {
            Outcome::pass(format!("{note} with WWW-Authenticate: {}", challenge.unwrap_or_default()))
        }
        Outcome::Pass(_) => {
            let problem = match &challenge {
                None => "401 without WWW-Authenticate: Bearer (RFC 6750 §3 requires it; the SPA works without it, non-browser clients and proxies do not know the scheme)".to_string(),
                Some(c) => format!("401 with WWW-Authenticate: {c}, not a Bearer challenge (RFC 6750 §3)"),
            };
            Outcome::warn(sent, Some(got), problem).classed("missing-bearer", crate::stack::fix(crate::stack::Knob::Challenge, stack))
        }
        other => other,
    }
}

body!(malformed_header, |ctx| {
    let endpoint = ctx.token_endpoint()?;
    for value in ["Bearer", "Bearer ", "Token abc.def.ghi", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer a.b.c"] {
        let got = ctx.call_raw(&endpoint, Some(value)).await?;
        let outcome = judge_rejection(format!("{:?} {} with Authorization: {value:?}", endpoint.method, endpoint.path.get()), got);
        if matches!(outcome, Outcome::Fail(_)) {
            return Ok(outcome);
        }
    }
    const MALFORMED: &str = "six malformed Authorization headers, each refused with 401";
    if *ctx.env.profile().token.transport.get() != harness::Transport::Bearer {
        return Ok(Outcome::pass(format!("{MALFORMED} (the SPA sends its token as a cookie: the scheme's case is not probed)")));
    }
    // RFC 7235 §2.1: the auth scheme is case-insensitive — a valid token under `bearer`.
    let me = ctx.sign_in("scheme-case")?;
    // The control: the same kind of token under `Bearer`. Not accepted (the keys cannot be
    // loaded, the token kind is refused…): the case is not judged here — other scenarios are.
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let control = ctx.call_raw(&endpoint, Some(&format!("Bearer {token}"))).await?;
    if control.status != *endpoint.status.get() {
        return Ok(Outcome::pass(format!(
            "{MALFORMED} (the scheme's case was not probed: a valid token under `Bearer` itself got {}, which tokens.session_token judges)",
            control.status
        )));
    }
    let mut cases = vec![];
    for scheme in ["bearer", "BEARER"] {
        let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
        let got = ctx.call_raw(&endpoint, Some(&format!("{scheme} {token}"))).await?;
        cases.push((scheme, got));
    }
    Ok(judge_scheme_case(&endpoint, *endpoint.status.get(), cases, MALFORMED))
});

/// A valid token sent as `bearer <token>` / `BEARER <token>`: accepted is right (RFC 7235
/// §2.1: the scheme is case-insensitive); a refusal is a `warn` (every browser SPA sends
/// `Bearer`, so nothing breaks for it, but other clients may not); a crash is a failure.
pub(crate) fn judge_scheme_case(endpoint: &harness::Endpoint, want: u16, cases: Vec<(&str, Exchange)>, malformed: &str) -> Outcome {
    let sent = |scheme: &str| format!("{:?} {} with Authorization: {scheme} <a valid token>", endpoint.method, endpoint.path.get());
    if let Some((scheme, got)) = cases.iter().find(|(_, got)| got.status >= 500) {
        let problem = format!("crashed ({}) on a valid token sent with the scheme written {scheme:?}", got.status);
        return Outcome::fail(sent(scheme), Some(got.clone()), problem);
    }
    let refused: Vec<&(&str, Exchange)> = cases.iter().filter(|(_, got)| got.status != want).collect();
    match refused.first() {
        None => Outcome::pass(format!("{malformed}; a valid token under `bearer` and `BEARER` accepted (RFC 7235 §2.1: the scheme is case-insensitive)")),
        Some((scheme, got)) => Outcome::warn(
            sent(scheme),
            Some(got.clone()),
            format!(
                "a valid token sent as `{scheme} <token>` was refused ({}): RFC 7235 §2.1 makes the auth scheme case-insensitive — browsers' SPAs send `Bearer`, \
                 other clients (curl scripts, mobile apps, proxies) may not; refused: {}",
                got.status,
                refused.iter().map(|(s, g)| format!("{s} → {}", g.status)).collect::<Vec<_>>().join(", ")
            ),
        )
        .classed("missing-bearer", "compare the scheme case-insensitively (split the header on the first space and lowercase the scheme), not with a `Bearer ` prefix"),
    }
}

body!(every_endpoint, |ctx| {
    let endpoints = ctx.env.profile().endpoints.clone();
    if endpoints.is_empty() {
        return Ok(Outcome::not_applicable("the profile lists no [[endpoints]]"));
    }
    let mut answers = vec![];
    for (i, endpoint) in endpoints.iter().enumerate() {
        // A fresh user each (a syncing endpoint creates its row), holding the endpoint's
        // organization role or permission when it is org-gated.
        let me = match endpoint.org_gate() {
            Some(gate) => crate::checks::orgs::org_user(ctx, &format!("endpoint-{i}"), &gate, crate::checks::orgs::Grant::Required)?,
            None => ctx.sign_in(&format!("endpoint-{i}"))?,
        };
        let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
        let got = ctx.call(endpoint, &token).await?;
        answers.push((endpoint.clone(), got));
    }
    Ok(judge_every_endpoint(answers))
});

/// Each declared endpoint with what a fresh valid user got: every one must answer its
/// declared status. The first mismatch is the finding (a 5xx first), naming every mismatch.
pub(crate) fn judge_every_endpoint(answers: Vec<(harness::Endpoint, Exchange)>) -> Outcome {
    let name = |e: &harness::Endpoint| format!("{:?} {}", e.method, e.path.get());
    let wrong: Vec<&(harness::Endpoint, Exchange)> = answers.iter().filter(|(e, got)| got.status != *e.status.get()).collect();
    let Some((endpoint, got)) = wrong.iter().find(|(_, got)| got.status >= 500).or_else(|| wrong.first()).copied() else {
        return Outcome::pass(format!(
            "{} endpoint(s), each called by a fresh signed-in user with a valid token, answered their declared status: {}",
            answers.len(),
            answers.iter().map(|(e, g)| format!("{} → {}", name(e), g.status)).collect::<Vec<_>>().join("; ")
        ));
    };
    let all = wrong.iter().map(|(e, g)| format!("{} → {} (declared {})", name(e), g.status, e.status.get())).collect::<Vec<_>>().join("; ");
    let sent = format!("{} with a valid token of a fresh signed-in user", name(endpoint));
    let problem = if got.status >= 500 {
        format!(
            "{} crashed ({}) for a valid signed-in user: \"{}\" — every user gets this error; all mismatches: {all}",
            name(endpoint),
            got.status,
            got.excerpt(160)
        )
    } else {
        format!("{} answered {} to a valid signed-in user, not its declared {}: {all}", name(endpoint), got.status, endpoint.status.get())
    };
    Outcome::fail(sent, Some(got.clone()), problem)
}

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

/// How far off Clerk's the backend host's clock is in the clock-skew scenarios.
pub const HOST_SKEW_SECS: i64 = 30;

/// How the skew was made, for the report.
fn skew_how() -> &'static str {
    "Clerk's clock moved: only the difference is observable to the backend"
}

/// Words that say a token was refused for its time claims (`nbf`, `iat`), in Clerk's SDKs,
/// PyJWT, jose and the like: "token-not-active-yet", "The token is not yet valid (iat)",
/// "JWT issued at date claim (iat) is in the future", "ImmatureSignatureError"…
const TIME_CLAIM_WORDS: [&str; 9] = ["nbf", "iat", "not active", "not yet valid", "not before", "in the future", "immature", "clock", "issued at"];

/// The first text (answer body, then log lines) that names a time-claim reason.
pub(crate) fn names_time_reason<'a>(texts: impl IntoIterator<Item = &'a str>) -> Option<String> {
    texts.into_iter().find_map(|text| {
        let plain = text.to_ascii_lowercase().replace(['-', '_'], " ");
        TIME_CLAIM_WORDS.iter().any(|w| plain.contains(w)).then(|| harness::internal::excerpt_around(text, &TIME_CLAIM_WORDS, 160))
    })
}

/// The verdict on a fresh token sent while the backend's clock is 30 s behind Clerk's. Clerk's
/// SDKs (5 s of skew) refuse it — `nbf` (iat − 10 s) is 20 s ahead of the backend's clock — so
/// a 401 is right, and it should say why: a 401 that names the time claim (or a log line that
/// does) points straight at the host's clock; one that names nothing is every user refused
/// with no clue (`warn`). Accepting it is a wider leeway than Clerk's, not a defect (its cost,
/// expired tokens accepted as long, is `tokens.expired`'s business). 403 or 5xx: `fail`.
pub(crate) fn judge_clock_behind(sent: String, got: Exchange, log: &[String]) -> Outcome {
    if (200..300).contains(&got.status) {
        return Outcome::pass(format!(
            "accepted ({}): the backend allows at least 20 s of clock skew (the token's nbf was 20 s ahead of its clock; Clerk's SDKs allow 5 s), \
             so a host clock {HOST_SKEW_SECS} s behind goes unnoticed",
            got.status
        ));
    }
    if got.status != 401 {
        return judge_rejection(sent, got);
    }
    let body = got.body.clone();
    match names_time_reason(std::iter::once(body.as_str()).chain(log.iter().map(String::as_str))) {
        Some(why) => Outcome::pass(format!("refused with 401 as Clerk's SDKs do (5 s of skew), saying why: {why}")),
        None => {
            // One severity and one cause for one kind of answer: a correct 401 that says nothing.
            let silent = crate::checks::loops::silent_refusal(&sent, got, "a fresh token from a Clerk 30 s ahead of the backend's clock");
            let Outcome::Warn(f) = silent else { return silent };
            Outcome::Warn(crate::scenario::Finding {
                problem: format!(
                    "refused with 401 as Clerk's SDKs do, but neither the answer nor the backend's log says the token is not yet valid (nbf/iat ahead of \
                     the server's clock): with a host clock {HOST_SKEW_SECS} s behind, every user is refused and nothing points at the clock"
                ),
                class: Some("clock-skew"),
                fix: Some(
                    "name the reason in the 401 and the log (Clerk's SDKs: token-not-active-yet, token-iat-in-the-future), and keep the host's clock synchronised (NTP: chrony, systemd-timesyncd)"
                        .into(),
                ),
                ..f
            })
        }
    }
}

body!(backend_clock_behind, |ctx| {
    let me = ctx.sign_in("clock-behind")?;
    let clock = ctx.env.backend_clock().clone();
    clock.set_offset(-HOST_SKEW_SECS);
    let outcome = clock_behind_probe(ctx, &me.session.id).await;
    clock.set_offset(0);
    outcome
});

async fn clock_behind_probe(ctx: &mut crate::ctx::Ctx, session_id: &str) -> Result<Outcome, crate::StepError> {
    let token = ctx.env.spa().get_token(session_id, &GetToken::ProfileDefault)?;
    let endpoint = ctx.token_endpoint()?;
    let mark = ctx.env.log_mark();
    let got = ctx.call(&endpoint, &token).await?;
    let sent = format!(
        "{:?} {} with a fresh token while the backend's host clock is {HOST_SKEW_SECS} s behind Clerk's ({})",
        endpoint.method,
        endpoint.path.get(),
        skew_how()
    );
    if got.status == 401 && names_time_reason([got.body.as_str()]).is_none() {
        // Its log line may still be on its way.
        ctx.timed(tokio::time::sleep(Duration::from_millis(100))).await;
    }
    let log = ctx.env.log_lines_since(mark);
    let outcome = judge_clock_behind(sent, got, &log);
    // An acceptance: say what the measured leeways are, not only "at least 20 s".
    Ok(match outcome {
        Outcome::Pass(note) if note.starts_with("accepted") => {
            let measured: Vec<String> =
                [Claim::Nbf, Claim::Iat].into_iter().filter_map(|c| ctx.fingerprint.leeway(c).map(|l| format!("{} {}", c.name(), l.describe(c)))).collect();
            if measured.is_empty() {
                Outcome::Pass(note)
            } else {
                Outcome::pass(format!("{note} — measured: {}", measured.join("; ")))
            }
        }
        other => other,
    })
}

body!(backend_clock_ahead, |ctx| {
    let me = ctx.sign_in("clock-ahead")?;
    let clock = ctx.env.backend_clock().clone();
    clock.set_offset(HOST_SKEW_SECS);
    let outcome = clock_ahead_probe(ctx, &me.session.id).await;
    clock.set_offset(0);
    outcome
});

/// How old (by Clerk's clock) the cached token is that `tokens.backend_clock_ahead` sends
/// second: with 15 s left, it is 15 s expired for a backend 30 s ahead.
const AGED_TOKEN_SECS: i64 = 45;

async fn clock_ahead_probe(ctx: &mut crate::ctx::Ctx, session_id: &str) -> Result<Outcome, crate::StepError> {
    let how = skew_how();
    let token = ctx.env.spa().get_token(session_id, &GetToken::ProfileDefault)?;
    let fresh = ctx.expect_accepted(&format!("a fresh token while the backend's host clock is {HOST_SKEW_SECS} s ahead of Clerk's ({how})"), &token).await?;
    if let Outcome::Fail(f) = fresh {
        return Ok(Outcome::Fail(f).classed(
            "clock-skew",
            "a token is valid until its exp: do not refuse tokens by their age (iat) beyond exp, and keep the host's clock synchronised (NTP)",
        ));
    }
    let aged = forge(ctx, session_id)?.iat_offset(-AGED_TOKEN_SECS).nbf_offset(-AGED_TOKEN_SECS - 10).build()?;
    let endpoint = ctx.token_endpoint()?;
    let got = ctx.call(&endpoint, &aged).await?;
    let sent = format!(
        "{:?} {} with a token issued {AGED_TOKEN_SECS} s ago (15 s left by Clerk's clock, 15 s expired by the backend's, {HOST_SKEW_SECS} s ahead)",
        endpoint.method,
        endpoint.path.get()
    );
    Ok(match got.status {
        s if (200..300).contains(&s) => Outcome::pass(format!(
            "a fresh token accepted; a {AGED_TOKEN_SECS} s old one accepted too (the backend allows at least 15 s of skew, Clerk's SDKs 5 s)"
        )),
        401 => Outcome::pass(format!(
            "a fresh token accepted; a {AGED_TOKEN_SECS} s old one (expired by the backend's clock) refused with 401, as Clerk's SDKs do: the SPA refreshes once and goes on"
        )),
        _ => judge_rejection(sent, got),
    })
}

/// How far `tokens.jwks_cache_expiry` moves time after rotating the key: past every JWKS cache
/// of Clerk's SDKs (@clerk/backend: 5 min, clerk-backend-api: 300 s, PyJWT's `PyJWKClient`:
/// 300 s) and the hour a rotated-out key stays published.
pub const JWKS_CACHE_HOURS: u64 = 2;

/// How long `tokens.jwks_cache_expiry` waits for a background JWKS refresh after a stale
/// set verified a token.
const STALE_REFRESH_WITHIN: Duration = Duration::from_secs(2);

body!(jwks_cache_expiry, |ctx| {
    let clock = ctx.env.backend_clock().clone();
    if let Some(reason) = clock.unavailable_reason() {
        return Ok(Outcome::not_applicable(format!("hours would have to pass on the real clock — the backend's clock cannot be moved: {reason}")));
    }
    let me = ctx.sign_in("jwks-expiry")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let warm = ctx.expect_accepted("a valid token (warms the JWKS cache)", &token).await?;
    if let Outcome::Fail(_) = warm {
        return Ok(warm);
    }
    if never_fetched_jwks(ctx) {
        return Ok(Outcome::not_applicable(
            "networkless verification: the backend never fetched the JWKS and verifies with a fixed public key (CLERK_JWT_KEY): it has no key cache to expire",
        ));
    }
    let old = ctx.env.mock().instance().active_key();
    let old_kid = old.kid().to_string();
    ctx.env.mock().rotate_key(Rotation::KeepOldFor(Duration::from_secs(3600)))?;
    // From here on the backend's key cache is not what other scenarios expect unless it passes.
    ctx.dirty = true;
    clock.advance(Duration::from_secs(JWKS_CACHE_HOURS * 3600))?;
    let fetches_before = jwks_fetches(ctx);
    let endpoint = ctx.token_endpoint()?;
    let retired = forge(ctx, &me.session.id)?.signed_with(old.clone()).build()?;
    let got = ctx.call(&endpoint, &retired).await?;
    let sent = format!(
        "{:?} {} with a fresh token signed by {old_kid}, {JWKS_CACHE_HOURS} h after a rotation that kept it published for 1 h",
        endpoint.method,
        endpoint.path.get()
    );
    if (200..300).contains(&got.status) {
        // A cache that refreshes in the background (stale-while-revalidate) verifies the
        // request that found it stale with the old set, then replaces it: give the refresh a
        // moment, then ask once more before calling the cache eternal.
        let deadline = tokio::time::Instant::now() + STALE_REFRESH_WITHIN;
        while jwks_fetches(ctx) == fetches_before && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let fetches = jwks_fetches(ctx) - fetches_before;
        if fetches > 0 {
            // Another token of the withdrawn key (its iat a second earlier): the same string
            // could be answered from a cache of validated tokens, which is another scenario's.
            let another = forge(ctx, &me.session.id)?.signed_with(old).iat_offset(-1).build()?;
            let again = ctx.call(&endpoint, &another).await?;
            if !(200..300).contains(&again.status) {
                let problem = format!(
                    "the JWKS cache does expire, but the request that found it stale ({JWKS_CACHE_HOURS} h on) was still verified with the stale set — a key \
                     that left the JWKS an hour ago verified one more token — and the refreshed set refused the next ({fetches} JWKS fetch(es)): \
                     stale-while-revalidate with a lifetime of hours keeps a withdrawn key trusted that long (Clerk's SDKs: 5 min)"
                );
                return Ok(Outcome::warn(format!("{sent}, twice"), Some(again), problem).classed(
                    "jwks-cache",
                    "do not verify with a set found stale: refetch before verifying when the cached set is older than its lifetime, and keep that lifetime \
                     near Clerk's 5 min (a background refresh may serve the stale set only while Clerk still publishes its keys)",
                ));
            }
            return Ok(Outcome::fail(
                sent,
                Some(again),
                format!(
                    "a key that left the instance's JWKS an hour ago still verifies tokens {JWKS_CACHE_HOURS} h on, even after {fetches} JWKS fetch(es): \
                     keys missing from the fetched set are kept, so a key Clerk withdrew (rotated out or compromised) is trusted until the backend restarts"
                ),
            ));
        }
        return Ok(Outcome::fail(
            sent,
            Some(got),
            format!(
                "a key that left the instance's JWKS an hour ago still verifies tokens {JWKS_CACHE_HOURS} h after the JWKS was cached (no JWKS fetch since): \
                 the key cache never expires, so a key Clerk withdrew (rotated out or compromised) is trusted until the backend restarts"
            ),
        ));
    }
    if got.status != 401 {
        return Ok(judge_rejection(sent, got));
    }
    let current = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let now = ctx.expect_accepted(&format!("a valid token of the current key, {JWKS_CACHE_HOURS} h on"), &current).await?;
    if let Outcome::Fail(f) = now {
        return Ok(Outcome::Fail(f));
    }
    ctx.dirty = false;
    Ok(Outcome::pass(format!(
        "{JWKS_CACHE_HOURS} h on, the withdrawn key {old_kid} was refused with 401 and the current key accepted ({} JWKS fetch(es) after the jump)",
        jwks_fetches(ctx) - fetches_before
    )))
});

/// How long `tokens.key_rotation` keeps trying a new key's token after the first refusal
/// when the backend's clock cannot be moved and time must pass on the real clock: past
/// PyJWT's `PyJWKClient` default `cooldown_duration` (30 s since its last JWKS fetch,
/// `jwt/jwks_client.py`), with margin.
pub const ROTATION_PATIENCE: Duration = Duration::from_secs(38);

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

fn jwks_fetches(ctx: &crate::ctx::Ctx) -> usize {
    let faults = ctx.env.mock().faults();
    faults.requests_matching(&Route::frontend("GET /.well-known/jwks.json")).len() + faults.requests_matching(&Route::backend("GET /v1/jwks")).len()
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

body!(jwks_down_with_warm_cache, |ctx| {
    let me = ctx.sign_in("jwks-down")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let warm = ctx.expect_accepted("a valid token (warms the JWKS cache)", &token).await?;
    if let Outcome::Fail(_) = warm {
        return Ok(warm);
    }
    for fault in Fault::jwks_outage() {
        ctx.env.mock().faults().inject(fault);
    }
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let outcome = ctx.expect_accepted("a new valid token while the JWKS endpoint answers 503", &token).await;
    ctx.env.mock().faults().clear();
    outcome
});

/// How far `tokens.jwks_down_cold_cache` moves the backend's clock to expire a warm JWKS
/// cache: past the common lifetimes (PyJWKClient and Clerk's SDKs: 5 min; 1 h elsewhere).
pub const JWKS_CACHE_EXPIRY: Duration = Duration::from_secs(2 * 3600 + 7);

body!(jwks_down_with_cold_cache, |ctx| {
    // A fresh backend that has never fetched the keys, started while the JWKS is down.
    for fault in Fault::jwks_outage() {
        ctx.env.mock().faults().inject(fault);
    }
    let fetches_before = jwks_fetches(ctx);
    if let Err(e) = ctx.fresh_backend(harness::EnvChanges::new()).await {
        ctx.env.mock().faults().clear();
        return Ok(Outcome::warn(
            "a backend start while the JWKS endpoint answers 503",
            None,
            format!("the backend does not start while Clerk's JWKS is unreachable ({e}): a Clerk outage during a deploy or a restart takes the whole API down"),
        ));
    }
    let me = ctx.sign_in("jwks-cold")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let endpoint = ctx.token_endpoint()?;
    let cold = ctx.call(&endpoint, &token).await?;
    let networkless = jwks_fetches(ctx) == fetches_before;
    ctx.env.mock().faults().clear();
    let mut phases = vec![ColdPhase::outage("at start-up (the backend never fetched the keys), the JWKS answering 503", cold)];
    // Recovery: the JWKS is back; the same valid token.
    let back = ctx.call(&endpoint, &token).await?;
    phases.push(ColdPhase::recovery("once the JWKS answers again, the same valid token", back));
    // The cache expires while the JWKS is down again.
    let clock = ctx.env.backend_clock().clone();
    let mut expiry = None;
    if clock.unavailable_reason().is_none() && !networkless {
        clock.advance(JWKS_CACHE_EXPIRY)?;
        ctx.note(format!("moved the backend's clock {} s on: past the JWKS cache's likely lifetime", JWKS_CACHE_EXPIRY.as_secs()));
        for fault in Fault::jwks_outage() {
            ctx.env.mock().faults().inject(fault);
        }
        let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
        let asked = jwks_fetches(ctx);
        let expired = ctx.call(&endpoint, &token).await?;
        ctx.env.mock().faults().clear();
        if jwks_fetches(ctx) == asked && (200..300).contains(&expired.status) {
            // Answered from a cache that outlived the move: that outage was not exercised.
            expiry = Some(format!(
                "the JWKS cache outlived {} s (no JWKS request in the second outage), so a cache expiring during an outage was not exercised \
                 (tokens.jwks_cache_expiry judges a cache that long)",
                JWKS_CACHE_EXPIRY.as_secs()
            ));
        }
        phases.push(ColdPhase::outage(&format!("{} s later (the cache expired), the JWKS answering 503 again", JWKS_CACHE_EXPIRY.as_secs()), expired));
        let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
        let back = ctx.call(&endpoint, &token).await?;
        phases.push(ColdPhase::recovery("once the JWKS answers again, a new valid token", back));
    } else if let Some(reason) = clock.unavailable_reason() {
        expiry = Some(format!("the cache-expiry phase was skipped: the backend's clock cannot be moved ({reason})"));
    }
    let sent = format!("{:?} {} with valid tokens", endpoint.method, endpoint.path.get());
    let outcome = judge_cold_cache(sent, *endpoint.status.get(), &phases, networkless);
    Ok(match (outcome, expiry) {
        (Outcome::Pass(note), Some(skipped)) => Outcome::pass(format!("{note}; {skipped}")),
        (outcome, _) => outcome,
    })
});

/// One step of `tokens.jwks_down_cold_cache`: a valid token sent during a JWKS outage or
/// after it, and the answer.
#[derive(Clone, Debug)]
pub struct ColdPhase {
    /// What was going on (`at start-up …, the JWKS answering 503`).
    pub what: String,
    /// Whether the JWKS was down.
    pub outage: bool,
    /// The backend's answer to a valid token.
    pub got: Exchange,
}

impl ColdPhase {
    /// A valid token sent while the JWKS is down.
    #[must_use]
    pub fn outage(what: &str, got: Exchange) -> Self {
        Self { what: what.into(), outage: true, got }
    }

    /// A valid token sent once the JWKS is back.
    #[must_use]
    pub fn recovery(what: &str, got: Exchange) -> Self {
        Self { what: what.into(), outage: false, got }
    }
}

/// The JWKS down with a cold cache. During an outage 5xx (503: retryable) is right and a 2xx
/// from a still-valid cache too; 401/403 make the SPA sign out or loop: a failure. After one,
/// the valid token must be accepted.
#[must_use]
pub fn judge_cold_cache(sent: String, want: u16, phases: &[ColdPhase], networkless: bool) -> Outcome {
    if networkless {
        return match phases.first() {
            Some(ColdPhase { got, .. }) if got.status == want => Outcome::pass(format!(
                "accepted ({}) with the JWKS down from start-up: the backend verifies with a fixed key (networkless) and never needs the JWKS",
                got.status
            )),
            Some(ColdPhase { what, got, .. }) => {
                Outcome::fail(sent, Some(got.clone()), format!("{what}: a valid token got {}, and the backend never asked for the JWKS", got.status))
            }
            None => Outcome::error("no phase ran"),
        };
    }
    for ColdPhase { what, outage, got } in phases {
        let status = got.status;
        let wrong = if *outage {
            match status {
                401 | 403 => Some(format!(
                    "{what}: a valid token got {status} — the SPA takes it for a bad session and signs the user out or loops; \
                     a JWKS that cannot be loaded is the server's problem: answer 503 (retryable)"
                )),
                s if s >= 500 || s == want => None,
                s => Some(format!("{what}: a valid token got {s}, neither a 5xx (retryable) nor its declared {want}")),
            }
        } else if status == want {
            None
        } else {
            Some(format!("{what}: a valid token got {status}, not {want} — the backend did not recover once the JWKS was back (a failed fetch cached?)"))
        };
        if let Some(problem) = wrong {
            return Outcome::fail(sent, Some(got.clone()), problem);
        }
    }
    Outcome::pass(phases.iter().map(|p| format!("{} → {}", p.what, p.got.status)).collect::<Vec<_>>().join("; "))
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

#[cfg(test)]
mod tests {
    #[test]
    fn an_accepted_self_signed_oddity_is_a_warning_but_a_crash_or_403_stays_a_failure() {
        use crate::scenario::{Exchange, Outcome};
        let ex = |status| Some(Exchange::answered(status, ""));
        let judge = |status| super::accepted_is_only_a_risk(Outcome::fail("sent", ex(status), "ACCEPTED"), "risk");
        assert!(matches!(judge(200), Outcome::Warn(f) if f.problem == "risk"));
        assert!(matches!(judge(500), Outcome::Fail(_)));
        assert!(matches!(judge(403), Outcome::Fail(_)));
        assert!(matches!(super::accepted_is_only_a_risk(Outcome::pass("401"), "risk"), Outcome::Pass(_)));
    }

    use super::*;

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

    #[test]
    fn a_challenge_of_another_scheme_is_a_warning_and_403_a_failure() {
        let with = |status: u16, challenge: Option<&str>| Exchange {
            status,
            headers: challenge.map(|c| vec![("www-authenticate".to_string(), c.to_string())]).unwrap_or_default(),
            ..Exchange::default()
        };
        assert!(matches!(judge_missing_bearer("s".into(), with(401, Some("Bearer realm=\"api\"")), &crate::stack::Stack::default()), Outcome::Pass(_)));
        assert!(matches!(judge_missing_bearer("s".into(), with(401, Some("Basic")), &crate::stack::Stack::default()), Outcome::Warn(_)));
        assert!(matches!(judge_missing_bearer("s".into(), with(401, None), &crate::stack::Stack::default()), Outcome::Warn(_)));
        assert!(matches!(judge_missing_bearer("s".into(), with(403, Some("Bearer")), &crate::stack::Stack::default()), Outcome::Fail(_)));
    }

    #[test]
    fn undeclared_expectations_report_what_the_backend_did() {
        let accepted = Outcome::fail("s", Some(Exchange { status: 200, ..Exchange::default() }), "ACCEPTED");
        assert!(matches!(judge_undeclared_parties(accepted.clone()), Outcome::Warn(f) if f.class == Some("authorized-parties")));
        assert!(matches!(judge_undeclared_audience(accepted), Outcome::NotApplicable(n) if n.contains("accepted")));
        let crashed = Outcome::fail("s", Some(Exchange { status: 500, ..Exchange::default() }), "crashed");
        assert!(matches!(judge_undeclared_parties(crashed.clone()), Outcome::Fail(_)));
        assert!(matches!(judge_undeclared_audience(crashed), Outcome::Fail(_)));
    }
}
