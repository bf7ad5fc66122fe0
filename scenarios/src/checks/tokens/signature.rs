//! Signatures and keys: another instance's key, an unknown `kid`, a tampered payload, `alg: none`,
//! HS256 keyed with the public key.

use mock_clerk::MockClerk;

use super::jwks::never_fetched_jwks;
use crate::checks::{body, forge};
use crate::scenario::Outcome;

body!(foreign_instance, |ctx| {
    let other = MockClerk::start().await?;
    let me = ctx.sign_in("foreign")?;
    let token = forge(ctx, &me.session.id)?.signed_by(other.instance()).claim("iss", other.instance().issuer()).build()?;
    ctx.expect_rejected("a token of another Clerk instance (its key, kid and iss)", &token).await
});

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
