//! CORS as the browser enforces it: a preflight the SPA's `Authorization` header needs, and
//! CORS headers on the 401 itself (without them the browser hides the 401 from the SPA).

use super::body;
use super::tokens::EVIL_ORIGIN;
use crate::scenario::{Exchange, Outcome};

fn allows_header(got: &Exchange, header: &str) -> bool {
    got.header("access-control-allow-headers").is_some_and(|v| v.split(',').any(|h| h.trim().eq_ignore_ascii_case(header)))
}

body!(preflight_from_allowed_origin, |ctx| {
    let origins: Vec<String> = ctx.env.profile().cors.allowed_origins.iter().map(|o| o.get().clone()).collect();
    if origins.is_empty() {
        return Ok(Outcome::not_applicable("the profile lists no [cors] allowed_origins"));
    }
    let credentials = ctx.env.profile().cors.credentials;
    let endpoints = ctx.env.profile().endpoints.clone();
    let mut checked = 0;
    for origin in &origins {
        for endpoint in &endpoints {
            let request = ctx.env.spa().with_origin(origin).preflight(&endpoint.method.as_reqwest(), endpoint.path.get(), &["authorization"]);
            let got = ctx.fetch(request).await?;
            let sent = format!("OPTIONS {} from {origin} asking for {:?} with the authorization header", endpoint.path.get(), endpoint.method);
            let problem = if matches!(got.status, 401 | 403) {
                Some(format!("the preflight itself was refused with {}: OPTIONS must never need a token", got.status))
            } else if !(200..300).contains(&got.status) {
                Some(format!("the preflight failed with {}", got.status))
            } else if got.header("access-control-allow-origin") != Some(origin.as_str()) {
                Some(format!(
                    "Access-Control-Allow-Origin is {:?}, not {origin}: the browser blocks the request before the backend sees the token",
                    got.header("access-control-allow-origin")
                ))
            } else if !allows_header(&got, "authorization") {
                Some(format!(
                    "the authorization header is not allowed (Access-Control-Allow-Headers: {:?}): the browser never sends the token",
                    got.header("access-control-allow-headers")
                ))
            } else if credentials && got.header("access-control-allow-credentials") != Some("true") {
                Some("Access-Control-Allow-Credentials is not true although the SPA sends credentials".into())
            } else {
                None
            };
            if let Some(problem) = problem {
                return Ok(Outcome::fail(sent, Some(got), problem));
            }
            checked += 1;
        }
    }
    Ok(Outcome::pass(format!("{checked} preflights (origins × endpoints) allowed with the authorization header")))
});

body!(preflight_from_disallowed_origin, |ctx| {
    let declared: Vec<String> = ctx.env.profile().cors.disallowed_origins.iter().map(|o| o.get().clone()).collect();
    // No declared expectation silences no probe: an origin no profile allows is sent anyway.
    let origins = if declared.is_empty() { vec![EVIL_ORIGIN.to_string()] } else { declared.clone() };
    let endpoint = ctx.token_endpoint()?;
    for origin in &origins {
        let request = ctx.env.spa().with_origin(origin).preflight(&endpoint.method.as_reqwest(), endpoint.path.get(), &["authorization"]);
        let got = ctx.fetch(request).await?;
        let sent = format!("OPTIONS {} from {origin} asking for {:?} with the authorization header", endpoint.path.get(), endpoint.method);
        if let Some(outcome) = judge_foreign_preflight(sent, origin, got, !declared.is_empty()) {
            return Ok(outcome);
        }
    }
    Ok(Outcome::pass(if declared.is_empty() {
        format!("the profile lists no [cors] disallowed_origins; a preflight from {EVIL_ORIGIN} got no Access-Control-Allow-Origin")
    } else {
        format!("{} disallowed origin(s) got no Access-Control-Allow-Origin", origins.len())
    }))
});

/// A preflight from an origin that must not be allowed: `None` when it was not allowed.
/// Allowed (reflected or `*`) is a failure when the profile declares the origin disallowed,
/// and a `warn` with the fix when the probe came from [`EVIL_ORIGIN`] because the profile
/// declares nothing: the backend lets any site call it from a browser, which matters when it
/// also allows credentials (cookies).
pub(crate) fn judge_foreign_preflight(sent: String, origin: &str, got: Exchange, declared: bool) -> Option<Outcome> {
    let acao = got.header("access-control-allow-origin").map(str::to_string);
    if acao.as_deref() != Some(origin) && acao.as_deref() != Some("*") {
        return None;
    }
    let credentials = got.header("access-control-allow-credentials") == Some("true");
    let with = if credentials { " with Access-Control-Allow-Credentials: true" } else { "" };
    Some(if declared {
        Outcome::fail(sent, Some(got), format!("a disallowed origin was allowed (Access-Control-Allow-Origin: {acao:?}{with})"))
    } else {
        Outcome::warn(
            sent,
            Some(got),
            format!("any origin is allowed (a preflight from {origin} got Access-Control-Allow-Origin: {acao:?}{with}); the profile declares no disallowed origins, so this is a risk, not a failure"),
        )
        .classed("cors", "allow only the SPA's origins (an explicit list, or a regex anchored on your domains), never reflect any Origin — above all with credentials; list an origin under the profile's [cors] disallowed_origins to make this a check")
    })
}

body!(error_response_carries_cors_headers, |ctx| {
    let Some(origin) = ctx.env.profile().cors.allowed_origins.first().map(|o| o.get().clone()) else {
        return Ok(Outcome::not_applicable("the profile lists no [cors] allowed_origins"));
    };
    let endpoint = ctx.token_endpoint()?;
    let request = ctx.env.spa().with_origin(&origin).request(endpoint.method.as_reqwest(), endpoint.path.get());
    let got = ctx.fetch(request).await?;
    let sent = format!("{:?} {} from {origin} without a token", endpoint.method, endpoint.path.get());
    Ok(judge_refusal_cors(sent, &origin, got))
});

/// Whatever the refusal was (401, or a 403 that `tokens.no_authorization` reports on its
/// own), the browser shows it to the SPA only with `Access-Control-Allow-Origin`.
pub(crate) fn judge_refusal_cors(sent: String, origin: &str, got: Exchange) -> Outcome {
    let status = got.status;
    let acao = got.header("access-control-allow-origin");
    if acao == Some(origin) || acao == Some("*") {
        Outcome::pass(format!("the refusal ({status}) carries Access-Control-Allow-Origin, so the SPA can react to it"))
    } else {
        let problem = format!(
            "the {status} answer carries no Access-Control-Allow-Origin for {origin}: the browser hides it, the SPA sees a network error and cannot refresh its token"
        );
        Outcome::fail(sent, Some(got), problem)
    }
}
