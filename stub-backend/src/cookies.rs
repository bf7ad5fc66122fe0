//! The `__session` cookie path and Clerk's handshake.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error_chain;
use crate::Stubbed;

/// The request's cookies.
pub(crate) struct Cookies(HashMap<String, String>);

impl Cookies {
    pub(crate) fn parse(headers: &HeaderMap) -> Self {
        Self(
            headers
                .get_all("cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|kv| kv.trim().split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub(crate) fn plain(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// A `clerk-js` cookie: the suffixed name first, then the plain one.
    pub(crate) fn clerk(&self, state: &Stubbed, name: &str) -> Option<String> {
        self.plain(&mock_clerk::cookies::suffixed(name, &state.settings.cookie_suffix)).or_else(|| self.plain(name))
    }
}

pub(crate) fn query_param(uri: &axum::http::Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The `__session` cookie path: verify, compare `iat` with `__client_uat`, and — with
/// [`Behaviour::handshake`] — send page loads through Clerk's handshake as `@clerk/backend` does.
pub(crate) async fn answer_cookie(
    state: &Stubbed,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    cookies: &Cookies,
    nonce: Option<String>,
) -> Response {
    let document = method == Method::GET && headers.get("sec-fetch-dest").and_then(|v| v.to_str().ok()) == Some("document");
    let count: u32 = cookies.plain(mock_clerk::cookies::REDIRECT_COUNT).and_then(|v| v.parse().ok()).unwrap_or(0);
    if let (true, Some(nonce)) = (state.behaviour.handshake, nonce) {
        match state.redeem(&nonce).await {
            Ok(directives) => {
                let fresh = directives
                    .iter()
                    .find(|d| mock_clerk::cookies::directive_name(d).starts_with("__session"))
                    .map(|d| mock_clerk::cookies::directive_value(d).to_string());
                let verified = match &fresh {
                    Some(t) if !t.is_empty() && !state.behaviour.handshake_refuses_fresh => state.verify(t).await.is_ok(),
                    _ => false,
                };
                if verified || fresh.as_deref().is_some_and(str::is_empty) {
                    state.log(&format!("INFO handshake resolved: {} cookies set", directives.len()));
                    let mut clean = url::form_urlencoded::Serializer::new(String::new());
                    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
                        if k != mock_clerk::cookies::HANDSHAKE_NONCE && k != mock_clerk::cookies::DEV_BROWSER {
                            clean.append_pair(&k, &v);
                        }
                    }
                    let query = clean.finish();
                    let location = if query.is_empty() { uri.path().to_string() } else { format!("{}?{query}", uri.path()) };
                    let mut response = (StatusCode::TEMPORARY_REDIRECT, [("location", location), ("cache-control", "no-store".to_string())]).into_response();
                    for d in &directives {
                        if let Ok(v) = HeaderValue::from_str(d) {
                            response.headers_mut().append("set-cookie", v);
                        }
                    }
                    return response;
                }
                state.log("ERROR Clerk: unable to resolve handshake: the fresh __session does not verify");
            }
            Err(e) => state.log(&format!("ERROR Clerk: unable to resolve handshake: {e}")),
        }
    }
    let handshake = |reason: &str| -> Option<Response> {
        if !(state.behaviour.handshake && document) {
            return None;
        }
        if count >= 3 && !state.behaviour.handshake_ignores_counter {
            state.log(
                "INFO Clerk: Refreshing the session token resulted in an infinite redirect loop. This usually means that your Clerk instance keys do not match",
            );
            return None;
        }
        let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1");
        let mut url = url::Url::parse(&format!("https://{}/v1/client/handshake", state.settings.fapi_host)).ok()?;
        url.query_pairs_mut()
            .append_pair("redirect_url", &format!("http://{host}{uri}"))
            .append_pair("suffixed_cookies", "true")
            .append_pair("__clerk_hs_reason", reason)
            .append_pair("format", "nonce");
        if let (true, Some(dvb)) = (state.settings.development, cookies.clerk(state, mock_clerk::cookies::DEV_BROWSER)) {
            url.query_pairs_mut().append_pair(mock_clerk::cookies::DEV_BROWSER, &dvb);
        }
        state.log(&format!("INFO handshake ({reason}): 307 to {}", url.as_str().split('?').next().unwrap_or_default()));
        let counter = format!("{}={}; SameSite=Lax; HttpOnly; Max-Age=2", mock_clerk::cookies::REDIRECT_COUNT, count + 1);
        Some((StatusCode::TEMPORARY_REDIRECT, [("location", url.to_string()), ("cache-control", "no-store".into()), ("set-cookie", counter)]).into_response())
    };
    if state.behaviour.handshake && state.settings.development && cookies.clerk(state, mock_clerk::cookies::DEV_BROWSER).is_none() {
        return handshake("dev-browser-missing").unwrap_or_else(|| state.refuse("dev-browser-missing", "no __clerk_db_jwt on a development instance", false));
    }
    let Some(token) = cookies.clerk(state, mock_clerk::cookies::SESSION) else {
        return state.refuse("session-token-missing", "no __session cookie", true);
    };
    let client_uat: i64 = cookies.clerk(state, mock_clerk::cookies::CLIENT_UAT).and_then(|v| v.parse().ok()).unwrap_or(0);
    let problem = match state.verify(&token).await {
        Ok(claims) => {
            let iat = claims.get("iat").and_then(serde_json::Value::as_i64).unwrap_or(0);
            if state.behaviour.cookie_ignores_client_uat {
                None
            } else if client_uat <= 0 {
                Some(("session-token-but-no-client-uat", "a __session cookie without __client_uat".to_string()))
            } else if iat < client_uat {
                Some(("session-token-iat-before-client-uat", format!("iat {iat} is before __client_uat {client_uat}")))
            } else {
                None
            }
            .map_or_else(|| Ok(claims), Err)
        }
        Err(e) => Err(e),
    };
    match problem {
        Ok(claims) => axum::Json(json!({"sub": claims.get("sub"), "sid": claims.get("sid"), "via": "__session cookie"})).into_response(),
        Err((reason, detail)) => {
            let handshake_reason = match reason {
                "token-expired" => Some("session-token-expired-refresh-non-eligible-no-refresh-cookie"),
                "token-not-active-yet" => Some("session-token-nbf"),
                "token-iat-in-the-future" => Some("session-token-iat-in-the-future"),
                "session-token-iat-before-client-uat" | "session-token-but-no-client-uat" => Some(reason),
                _ => None,
            };
            handshake_reason.and_then(handshake).unwrap_or_else(|| state.refuse(reason, &detail, false))
        }
    }
}

impl Stubbed {
    /// `GET /v1/clients/handshake_payload?nonce=…` with the secret key.
    async fn redeem(&self, nonce: &str) -> Result<Vec<String>, String> {
        let url = format!("{}/v1/clients/handshake_payload", self.settings.api_url);
        let response = self.http.get(&url).query(&[("nonce", nonce)]).bearer_auth(&self.settings.secret_key).send().await.map_err(|e| error_chain(&e))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        Ok(body["directives"].as_array().map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_string)).collect()).unwrap_or_default())
    }
}
