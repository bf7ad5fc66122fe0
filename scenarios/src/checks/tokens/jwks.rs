//! The JWKS: its cache's lifetime, and outages with a warm and a cold cache.

use std::time::Duration;

use harness::GetToken;
use mock_clerk::{Fault, Rotation, Route};

use crate::checks::{body, forge};
use crate::ctx::judge_rejection;
use crate::scenario::{Exchange, Outcome};

pub(crate) fn jwks_fetches(ctx: &crate::ctx::Ctx) -> usize {
    let faults = ctx.env.mock().faults();
    faults.requests_matching(&Route::frontend("GET /.well-known/jwks.json")).len() + faults.requests_matching(&Route::backend("GET /v1/jwks")).len()
}

/// Whether the backend verifies with a fixed key (networkless, `CLERK_JWT_KEY`): the mock
/// never served it a JWKS, although it accepted tokens.
pub(crate) fn never_fetched_jwks(ctx: &crate::ctx::Ctx) -> bool {
    jwks_fetches(ctx) == 0
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
