//! The `Authorization` header: missing, malformed, a session id in place of a token, the scheme's
//! case.

use std::time::Duration;

use harness::GetToken;

use crate::checks::body;
use crate::ctx::judge_rejection;
use crate::scenario::{Exchange, Outcome};

body!(session_id_as_bearer, |ctx| {
    let me = ctx.sign_in("session-id")?;
    let endpoint = ctx.token_endpoint()?;
    let mark = ctx.env.log_mark();
    let got = ctx.call(&endpoint, &me.session.id).await?;
    let sent = format!("{:?} {} with the session id (sess_…) instead of a token", endpoint.method, endpoint.path.get());
    if got.status != 401 {
        return Ok(judge_rejection(sent, got));
    }
    if crate::checks::explain::says_why([got.body.as_str()]).is_none() {
        // Its log line may still be on its way.
        ctx.timed(tokio::time::sleep(Duration::from_millis(100))).await;
    }
    let log = ctx.env.log_lines_since(mark);
    Ok(match crate::checks::explain::says_why(std::iter::once(got.body.as_str()).chain(log.iter().map(String::as_str))) {
        Some(why) => Outcome::pass(format!("rejected: {} — saying why: {why}", got.summary())),
        None => crate::checks::explain::silent_refusal(&sent, got, "the session id sent as a token"),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
