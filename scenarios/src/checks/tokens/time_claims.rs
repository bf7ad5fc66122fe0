//! The time claims (`exp`, `nbf`, `iat`) and the backend host's clock off Clerk's.

use std::time::Duration;

use harness::GetToken;

use crate::checks::explain::{explain_accepted, explain_refused};
use crate::checks::{body, forge};
use crate::ctx::judge_rejection;
use crate::fingerprint::Claim;
use crate::scenario::{Exchange, Outcome};

body!(expired, |ctx| {
    let me = ctx.sign_in("expired")?;
    let token = forge(ctx, &me.session.id)?.expired_by(30).build()?;
    let outcome = ctx.expect_rejected("a token expired 30 s ago", &token).await?;
    Ok(explain_accepted(ctx, outcome, Claim::Exp, 30, "a token expired 30 s ago"))
});

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
            let silent = crate::checks::explain::silent_refusal(&sent, got, "a fresh token from a Clerk 30 s ahead of the backend's clock");
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
    // Without the cookies the fresh token's answer set: a backend session of its own would
    // answer for the token, and its acceptance would be read as a leeway.
    let got = ctx.call_without_cookies(&endpoint, &aged).await?;
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
