//! Replays a [`Recording`] against the backend under the harness: the same requests, in the
//! same order, each with an equivalent token minted by the mock (same kind, claims version,
//! template, lifetime, times relative to the request, `azp`, signing key — a new `kid` in the
//! recording is a key rotation here), sent the same way; the time between requests passes by
//! moving the clocks, not by waiting. Then: does the loop reproduce, at which request, and why.

use std::time::Duration;

use harness::TestEnv;
use mock_clerk::Rotation;

use super::analyse::{Call, Party, Recording, Sent, TokenFacts, TokenKind, Transport};
use crate::ctx::Ctx;
use crate::fingerprint::{Cause, Claim};
use crate::scenario::{Exchange, Outcome};
use crate::StepError;

/// The `Origin` and `azp` a recording's "another origin" becomes.
pub const OTHER_ORIGIN: &str = "https://another-origin.invalid";

/// Gaps between requests shorter than this are not replayed (the requests' own latency).
const MIN_GAP: Duration = Duration::from_secs(1);

/// One request as replayed.
#[derive(Clone, Debug)]
pub struct Replayed {
    /// The recorded request.
    pub call: Call,
    /// The backend's answer now.
    pub got: Exchange,
}

/// Replays `recording` on `ctx`'s backend for a fresh signed-in user.
///
/// # Errors
/// A token could not be minted (e.g. the recording's template is not in the profile) or a
/// request did not complete.
pub async fn replay(ctx: &mut Ctx, recording: &Recording) -> Result<Vec<Replayed>, StepError> {
    let me = ctx.sign_in("replay")?;
    let sid = me.session.id.clone();
    let mut key = 0;
    let mut previous_at = recording.calls.first().map_or(0, |c| c.at_ms);
    let mut out = Vec::with_capacity(recording.calls.len());
    for (n, call) in recording.calls.iter().enumerate() {
        let gap = Duration::from_millis(u64::try_from(call.at_ms - previous_at).unwrap_or(0));
        previous_at = call.at_ms;
        if gap >= MIN_GAP {
            pass_time(ctx, gap)?;
        }
        if let Sent::Token { token, .. } = &call.sent {
            while key < token.key {
                ctx.env.mock().rotate_key(Rotation::KeepOldFor(Duration::from_secs(3600)))?;
                ctx.note("Clerk rotates its signing key: the recording's next tokens carry a new kid");
                key += 1;
            }
        }
        let credential = credential(&ctx.env, &sid, &call.sent)?;
        let spa = ctx.env.spa();
        let spa = match call.origin {
            Party::Profile => spa,
            Party::Other => spa.with_origin(OTHER_ORIGIN),
            Party::Absent => spa.without_origin(),
        };
        let method = reqwest::Method::from_bytes(call.method.as_bytes()).map_err(|e| StepError::Other(format!("method {:?}: {e}", call.method)))?;
        let mut request = spa.request(method, &call.path);
        match (credential, transport(&call.sent)) {
            (Some(value), Some(Transport::Bearer)) => request = request.header(reqwest::header::AUTHORIZATION, format!("Bearer {value}")),
            (Some(value), Some(Transport::Cookie)) => request = request.header(reqwest::header::COOKIE, ctx.env.spa().session_cookies(Some(&sid), &value)),
            _ => {}
        }
        ctx.set_turn(Some(u32::try_from(n + 1).unwrap_or(u32::MAX)));
        let got = ctx.fetch(request).await;
        ctx.set_turn(None);
        out.push(Replayed { call: call.clone(), got: got? });
    }
    Ok(out)
}

/// Moves Clerk's and the backend's clocks on by `gap` (or says why it cannot).
fn pass_time(ctx: &Ctx, gap: Duration) -> Result<(), StepError> {
    let clock = ctx.env.backend_clock();
    if clock.is_controlled() {
        clock.advance(gap)?;
        ctx.note(format!("{:.1} s pass, as in the recording (clocks moved, not waited)", gap.as_secs_f64()));
    } else {
        // Tokens keep their recorded relative times either way; only the backend's own caches
        // would see the difference.
        ctx.env.mock().clock().advance(gap);
        ctx.note(format!("{:.1} s pass for Clerk only: the backend's clock is not controlled", gap.as_secs_f64()));
    }
    Ok(())
}

fn transport(sent: &Sent) -> Option<Transport> {
    match sent {
        Sent::Nothing => None,
        Sent::SessionId { transport } | Sent::Token { transport, .. } | Sent::Opaque { transport } => Some(*transport),
    }
}

/// The value the SPA sends: a minted equivalent of the recorded token, the session id, or junk.
fn credential(env: &TestEnv, sid: &str, sent: &Sent) -> Result<Option<String>, StepError> {
    Ok(match sent {
        Sent::Nothing => None,
        Sent::SessionId { .. } => Some(sid.to_string()),
        Sent::Opaque { .. } => Some("not-a-clerk-token".into()),
        Sent::Token { token, .. } => Some(mint(env, sid, token)?),
    })
}

/// A token of the same kind and shape, with the same times relative to now.
fn mint(env: &TestEnv, sid: &str, facts: &TokenFacts) -> Result<String, StepError> {
    let mock = env.mock();
    let forged = match facts.kind {
        TokenKind::Session => {
            let forged = mock.forge_session_token(sid)?;
            if facts.version == Some(1) {
                forged.v1()
            } else {
                forged
            }
        }
        TokenKind::Template => {
            let name = facts.template.clone().or_else(|| env.profile().token.template.clone()).ok_or_else(|| {
                StepError::Other("the recording sent a JWT-template token, but neither the HAR nor the profile names the template: set [token] template".into())
            })?;
            mock.forge_template_token(sid, &name)?
        }
    };
    let now = mock.clock().now_unix();
    let mut forged = forged.claim("iat", now + facts.iat_s).claim("exp", now + facts.exp_s);
    forged = match facts.nbf_s {
        Some(nbf) => forged.claim("nbf", now + nbf),
        None => forged.without_claim("nbf"),
    };
    forged = match facts.azp {
        Party::Profile => forged.claim("azp", env.profile().spa_origin()),
        Party::Other => forged.claim("azp", OTHER_ORIGIN),
        Party::Absent => forged.without_claim("azp"),
    };
    Ok(forged.build()?)
}

/// Whether a status is a refusal: a 401, or no answer at all for the page (0: what a browser
/// records for an answer its CORS check blocked — the SPA sees a network error).
fn refused(status: u16) -> bool {
    status == 401 || status == 0
}

/// The recording's loop: the first refused request, when at least two were refused in a row.
#[must_use]
pub fn recorded_loop(recording: &Recording) -> Option<usize> {
    first_loop(recording.calls.iter().map(|c| c.status))
}

fn first_loop(statuses: impl Iterator<Item = u16>) -> Option<usize> {
    let statuses: Vec<u16> = statuses.collect();
    statuses.windows(2).position(|w| refused(w[0]) && refused(w[1]))
}

/// The verdict: the replay fails when the loop is there (the recorded one reproduces, or one
/// appears where the recording had none), with its cause — a warning when the cause is the
/// SPA's mistake ([`FRONTEND_CAUSES`]) and the backend was right to refuse; it passes when
/// the loop is gone.
#[must_use]
pub fn judge(ctx: &Ctx, recording: &Recording, replayed: &[Replayed]) -> Outcome {
    let recorded = recorded_loop(recording);
    let now = first_loop(replayed.iter().map(|r| r.got.status));
    let statuses: Vec<String> = replayed.iter().map(|r| r.got.status.to_string()).collect();
    let sent = format!("the recording's {} backend request(s), each with an equivalent token minted by the mock", replayed.len());
    let Some(at) = now else {
        return if recorded.is_some() {
            Outcome::pass(format!("the recorded 401 loop does not reproduce: answered {}", statuses.join(", ")))
        } else {
            Outcome::pass(format!("replays green: answered {}", statuses.join(", ")))
        };
    };
    let r = &replayed[at];
    let refusals = replayed[at..].iter().take_while(|r| refused(r.got.status)).count();
    let causes = causes(ctx, &replayed[at..]);
    let primary = causes.first().cloned().unwrap_or_else(|| unexplained(&r.got));
    let others: Vec<String> = causes.iter().skip(1).map(|c| c.title.clone()).collect();
    let what = match recorded {
        Some(rec) if rec == at => "the 401 loop reproduces",
        Some(_) => "a 401 loop reproduces, starting at another request than recorded",
        None => "a 401 loop the recording did not have",
    };
    let mut problem = format!("{what} at request {} (HAR entry {}): {} refusals in a row — {}", at + 1, r.call.entry, refusals, primary.title);
    if !others.is_empty() {
        problem.push_str(&format!("; also: {}", others.join("; ")));
    }
    if FRONTEND_CAUSES.contains(&primary.id.as_str()) {
        // The backend answered correctly; what loops is the SPA: a warning, so a replay file of
        // a frontend bug does not fail every backend run until the SPA is fixed and re-recorded.
        let problem = format!("{problem} (the SPA's mistake: the backend is right to refuse it)");
        Outcome::warn(sent, Some(r.got.clone()), problem.clone()).caused_by(primary, problem)
    } else {
        Outcome::fail(sent, Some(r.got.clone()), problem.clone()).caused_by(primary, problem)
    }
}

/// Causes that are the SPA's mistakes: a correct backend refuses what it sent.
pub const FRONTEND_CAUSES: &[&str] = &["session-id-as-token", "no-token", "not-a-jwt", "default-token-where-template-required", "expired-token"];

/// Why request `r` was refused, most likely first: what the SPA sent (from the recording)
/// and what the backend answered (now).
fn causes(ctx: &Ctx, from: &[Replayed]) -> Vec<Cause> {
    let r = &from[0];
    let mut out = vec![];
    match &r.call.sent {
        Sent::SessionId { .. } => out.push(cause(
            "session-id-as-token",
            "the SPA sent its session id (sess_…) instead of a token: a new one never helps, so every retry is refused",
            "the recorded request carried a Clerk session id where a JWT belongs",
            "send `await getToken()` (or `useAuth().getToken()`), not `session.id`, in the Authorization header",
        )),
        Sent::Nothing => out.push(cause(
            "no-token",
            "the SPA sent no token at all",
            "the recorded request had no Authorization header and no __session cookie",
            "attach `Bearer ${await getToken()}` to every backend request",
        )),
        Sent::Opaque { .. } => out.push(cause(
            "not-a-jwt",
            "the SPA sent something that is neither a Clerk token nor a session id",
            "the recorded credential is not a JWT",
            "send `await getToken()`",
        )),
        Sent::Token { token, .. } => token_causes(ctx, token, &mut out),
    }
    if r.call.origin != Party::Absent && r.got.header("access-control-allow-origin").is_none() {
        let cors = cause(
            "cors-missing-on-401",
            "the 401 carries no CORS headers: the browser hides it from the SPA (a network error), so clerk-js never sees a 401 to refresh on",
            "the replayed 401 to a request with an Origin had no Access-Control-Allow-Origin",
            "add the CORS headers to every answer, errors included (put the CORS middleware outermost)",
        );
        // The SPA retried without a new token: it never saw the 401, so this is the loop's cause.
        let blind = from.get(1).is_some_and(|next| !next.call.refreshed_before);
        if blind {
            out.insert(0, cors);
        } else {
            out.push(cors);
        }
    }
    out
}

fn token_causes(ctx: &Ctx, t: &TokenFacts, out: &mut Vec<Cause>) {
    let profile = ctx.env.profile();
    let wants_template = *profile.token.kind.get() == harness::TokenKind::Template;
    if t.kind == TokenKind::Session && wants_template {
        let template = profile.token.template.clone().unwrap_or_default();
        out.push(cause(
            "default-token-where-template-required",
            &format!("the SPA sent the default session token where the backend requires the JWT template {template:?}"),
            "the recorded token's cat is the session token's and the profile's [token] kind is template",
            &format!("call `getToken({{ template: \"{template}\" }})` in the SPA"),
        ));
    }
    if t.azp == Party::Other {
        out.push(cause(
            "azp-other-origin",
            "the token's azp is not one of the backend's authorized parties",
            "the recorded token was minted for another origin",
            "add the SPA's origin to the backend's authorized parties",
        ));
    }
    if t.iat_s > 0 || t.nbf_s.is_some_and(|n| n > 0) {
        let ahead = t.iat_s.max(t.nbf_s.unwrap_or(0));
        let measured = ctx.fingerprint.refused_cause(Claim::Iat, u64::try_from(ahead).unwrap_or(0));
        let mut c = cause(
            "clock-skew",
            &format!("Clerk's clock is {ahead} s ahead of the backend's: the token was issued \"in the future\" and the backend allows less leeway than that"),
            &format!("the recorded token's iat was {} s after the request (nbf {})", t.iat_s, t.nbf_s.map_or_else(|| "absent".into(), |n| format!("{n:+} s"))),
            "allow about 5 s of leeway on iat/nbf/exp as Clerk's SDKs do, and keep the server's clock in sync (NTP)",
        );
        if let Some(m) = measured {
            c.measurement = format!("{}; measured: {}", c.measurement, m.measurement);
            c.fix = m.fix;
        }
        out.push(c);
    }
    if t.exp_s < 0 {
        out.push(cause(
            "expired-token",
            &format!("the SPA sent a token that had expired {} s before: it reuses a cached token instead of calling getToken() before each request", -t.exp_s),
            &format!("the recorded token's exp was {} s before the request", -t.exp_s),
            "call `await getToken()` right before each request (clerk-js refreshes it) instead of storing the token",
        ));
    }
    if t.key > 0 {
        out.push(cause(
            "stale-jwks",
            "Clerk rotated its signing key and the backend keeps its old JWKS: it never refetches on an unknown kid",
            &format!("the refused token carries signing key #{} of the recording (a new kid)", t.key + 1),
            "refetch the JWKS when a token's kid is unknown (at most once per few seconds), instead of caching it forever",
        ));
    }
}

fn unexplained(got: &Exchange) -> Cause {
    cause(
        "refuses-valid-token",
        "the backend refuses a token that is genuine, unexpired and for the right origin",
        &format!("answered {}", got.summary()),
        "read the backend's log and 401 body: its verification configuration (issuer, audience, keys) does not match Clerk's tokens",
    )
}

fn cause(id: &str, title: &str, measurement: &str, fix: &str) -> Cause {
    Cause { id: id.into(), title: title.into(), measurement: measurement.into(), fix: fix.into() }
}
