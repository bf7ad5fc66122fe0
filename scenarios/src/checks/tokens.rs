//! Token validation: what must be accepted and what must be refused with 401.

use std::time::Duration;

use harness::{GetToken, TokenKind};
use mock_clerk::{Fault, MockClerk, Rotation};

use super::{body, forge};
use crate::ctx::judge_rejection;
use crate::scenario::Outcome;

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
    ctx.expect_rejected("the session id (sess_…) instead of a token", &me.session.id).await
});

body!(expired, |ctx| {
    let me = ctx.sign_in("expired")?;
    let token = forge(ctx, &me.session.id)?.expired_by(30).build()?;
    ctx.expect_rejected("a token expired 30 s ago", &token).await
});

body!(expired_within_skew, |ctx| {
    let me = ctx.sign_in("skew")?;
    let token = forge(ctx, &me.session.id)?.expired_by(2).build()?;
    ctx.expect_accepted("a token expired 2 s ago (within Clerk's 5 s clock skew)", &token).await
});

body!(not_yet_valid, |ctx| {
    let me = ctx.sign_in("nbf")?;
    let token = forge(ctx, &me.session.id)?.not_before_in(60).build()?;
    ctx.expect_rejected("a token not valid before 60 s from now (nbf)", &token).await
});

body!(iat_in_the_future, |ctx| {
    let me = ctx.sign_in("iat")?;
    let token = forge(ctx, &me.session.id)?.iat_offset(60).nbf_offset(-10).build()?;
    ctx.expect_rejected("a token issued 60 s in the future (iat)", &token).await
});

body!(wrong_audience, |ctx| {
    if ctx.env.profile().token.audience.is_empty() {
        return Ok(Outcome::not_applicable("the profile declares no audience ([token] audience = [])"));
    }
    let me = ctx.sign_in("aud")?;
    let token = forge(ctx, &me.session.id)?.claim("aud", "https://someone-else.example").build()?;
    ctx.expect_rejected("a token for another audience (aud)", &token).await
});

body!(wrong_authorized_party, |ctx| {
    if ctx.env.profile().token.authorized_parties.is_empty() {
        return Ok(Outcome::not_applicable("the profile declares no authorized parties ([token] authorized_parties = [])"));
    }
    let me = ctx.sign_in("azp")?;
    let token = forge(ctx, &me.session.id)?.claim("azp", "https://evil.example.com").build()?;
    ctx.expect_rejected("a token minted for https://evil.example.com (azp)", &token).await
});

body!(foreign_instance, |ctx| {
    let other = MockClerk::start().await?;
    let me = ctx.sign_in("foreign")?;
    let token = forge(ctx, &me.session.id)?.signed_by(other.instance()).claim("iss", other.instance().issuer()).build()?;
    ctx.expect_rejected("a token of another Clerk instance (its key, kid and iss)", &token).await
});

body!(wrong_issuer, |ctx| {
    let me = ctx.sign_in("iss")?;
    let token = forge(ctx, &me.session.id)?.claim("iss", "https://other-instance-12.clerk.accounts.dev").build()?;
    ctx.expect_rejected("a genuinely signed token whose iss is another instance's", &token).await
});

body!(unknown_kid, |ctx| {
    let me = ctx.sign_in("kid")?;
    let token = forge(ctx, &me.session.id)?.unknown_kid().build()?;
    ctx.expect_rejected("a token whose kid is in no JWKS", &token).await
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
    ctx.expect_rejected("a token without sub", &token).await
});

body!(no_authorization_header, |ctx| {
    let endpoint = ctx.token_endpoint()?;
    let got = ctx.call_raw(&endpoint, None).await?;
    let sent = format!("{:?} {} without an Authorization header", endpoint.method, endpoint.path.get());
    Ok(match judge_rejection(sent, got.clone()) {
        Outcome::Pass(note) if got.header("www-authenticate").is_none() => {
            Outcome::pass(format!("{note} (no WWW-Authenticate: Bearer header, which RFC 6750 asks for)"))
        }
        other => other,
    })
});

body!(malformed_header, |ctx| {
    let endpoint = ctx.token_endpoint()?;
    for value in ["Bearer", "Bearer ", "Token abc.def.ghi", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer a.b.c"] {
        let got = ctx.call_raw(&endpoint, Some(value)).await?;
        let outcome = judge_rejection(format!("{:?} {} with Authorization: {value:?}", endpoint.method, endpoint.path.get()), got);
        if matches!(outcome, Outcome::Fail(_)) {
            return Ok(outcome);
        }
    }
    Ok(Outcome::pass("six malformed Authorization headers, each refused with 401"))
});

body!(replay_after_expiry, |ctx| {
    let me = ctx.sign_in("replay")?;
    let token = forge(ctx, &me.session.id)?.iat_offset(-50).nbf_offset(-60).exp_offset(1).build()?;
    let first = ctx.expect_accepted("a valid token expiring in 1 s", &token).await?;
    if let Outcome::Fail(_) = first {
        return Ok(first);
    }
    // The backend runs on the real clock: wait until the token is past exp + Clerk's 5 s skew.
    ctx.timed(tokio::time::sleep(Duration::from_millis(7_200))).await;
    let outcome = ctx.expect_rejected("the same token, replayed 6 s after it expired", &token).await?;
    Ok(match outcome {
        Outcome::Fail(mut f) if f.got.as_ref().is_some_and(|g| g.status < 300) => {
            f.problem = "a token accepted once was accepted again after it expired: validated tokens are cached without honouring exp".into();
            Outcome::Fail(f)
        }
        other => other,
    })
});

body!(key_rotation, |ctx| {
    ctx.fresh_backend(harness::EnvChanges::new()).await?;
    let me = ctx.sign_in("rotation")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let warm = ctx.expect_accepted("a valid token (warms the JWKS cache)", &token).await?;
    if let Outcome::Fail(_) = warm {
        return Ok(warm);
    }
    let kid = ctx.env.mock().rotate_key(Rotation::KeepOldFor(Duration::from_secs(3600)))?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let outcome = ctx.expect_accepted(&format!("a token signed by the new key {kid} right after rotation"), &token).await?;
    Ok(match outcome {
        Outcome::Fail(mut f) => {
            f.problem = format!("{}: the JWKS cache was not refetched for the unknown kid", f.problem);
            Outcome::Fail(f)
        }
        pass => pass,
    })
});

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
