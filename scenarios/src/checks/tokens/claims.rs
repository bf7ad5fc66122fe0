//! The identity claims: a foreign audience or origin (`aud`, `azp`), another instance's issuer, a
//! missing `sub`.

use crate::checks::{body, forge};
use crate::scenario::Outcome;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Exchange;

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
