//! CORS as the browser enforces it: a preflight the SPA's `Authorization` header needs, and
//! CORS headers on the 401 itself (without them the browser hides the 401 from the SPA).

use reqwest::Method;

use super::body;
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
            let got = Exchange::read(ctx.timed(request.send()).await?).await;
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
    let origins: Vec<String> = ctx.env.profile().cors.disallowed_origins.iter().map(|o| o.get().clone()).collect();
    if origins.is_empty() {
        return Ok(Outcome::not_applicable("the profile lists no [cors] disallowed_origins"));
    }
    let endpoint = ctx.token_endpoint()?;
    for origin in &origins {
        let request = ctx.env.spa().with_origin(origin).preflight(&Method::GET, endpoint.path.get(), &["authorization"]);
        let got = Exchange::read(ctx.timed(request.send()).await?).await;
        let acao = got.header("access-control-allow-origin").map(str::to_string);
        if acao.as_deref() == Some(origin.as_str()) || acao.as_deref() == Some("*") {
            return Ok(Outcome::fail(
                format!("OPTIONS {} from {origin}", endpoint.path.get()),
                Some(got),
                format!("a disallowed origin was allowed (Access-Control-Allow-Origin: {acao:?})"),
            ));
        }
    }
    Ok(Outcome::pass(format!("{} disallowed origin(s) got no Access-Control-Allow-Origin", origins.len())))
});

body!(error_response_carries_cors_headers, |ctx| {
    let Some(origin) = ctx.env.profile().cors.allowed_origins.first().map(|o| o.get().clone()) else {
        return Ok(Outcome::not_applicable("the profile lists no [cors] allowed_origins"));
    };
    let endpoint = ctx.token_endpoint()?;
    let request = ctx.env.spa().with_origin(&origin).request(endpoint.method.as_reqwest(), endpoint.path.get());
    let got = Exchange::read(ctx.timed(request.send()).await?).await;
    let sent = format!("{:?} {} from {origin} without a token", endpoint.method, endpoint.path.get());
    Ok(if got.status != 401 {
        Outcome::fail(sent, Some(got), "expected a 401 to check its CORS headers")
    } else if got.header("access-control-allow-origin") != Some(origin.as_str()) {
        Outcome::fail(
            sent,
            Some(got),
            "the 401 carries no Access-Control-Allow-Origin: the browser hides it, the SPA sees a network error and cannot refresh its token",
        )
    } else {
        Outcome::pass("the 401 carries Access-Control-Allow-Origin, so the SPA can react to it")
    })
});
