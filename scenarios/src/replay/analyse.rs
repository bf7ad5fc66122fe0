//! From a parsed HAR to a [`Recording`]: which entries are the backend's (the profile's
//! endpoints, on the origin they were first seen on) and which are Clerk's (Frontend API
//! token, client and handshake calls; Backend API), and what each Clerk token was — decoded
//! without verifying, and kept only as facts (kind, lifetime, times relative to the request,
//! whether `azp` is one of the profile's origins, which signing key). No token, cookie, id or
//! email of the HAR reaches a [`Recording`]: it is what the replay file stores.

use std::collections::HashMap;

use harness::Profile;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::har::{parse_http_date, Entry, Har};
use super::ReplayError;

/// The `cat` header of Clerk's session tokens (`getToken()`).
const CAT_SESSION: &str = "cl_B7d4PD111AAA";
/// The `cat` header of JWT-template tokens (`getToken({ template })`).
const CAT_TEMPLATE: &str = "cl_B7d4PD222AAA";

/// A browser's conversation with the backend, as facts the replay can reproduce.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    /// The browser that recorded it ("Chrome", "Firefox", "WebKit"…).
    pub browser: String,
    /// The backend's requests, in order.
    pub calls: Vec<Call>,
    /// Clerk's requests (Frontend and Backend API), in order.
    #[serde(default)]
    pub clerk: Vec<ClerkCall>,
}

/// One request of the SPA to the backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// Its index in the HAR's `log.entries`.
    pub entry: usize,
    /// ms since the first backend request (the browser's clock).
    pub at_ms: i64,
    /// `GET`, `POST`…
    pub method: String,
    /// The profile endpoint's path.
    pub path: String,
    /// Whether the request's `Origin` was one of the profile's SPA origins.
    pub origin: Party,
    /// What it carried for authentication.
    pub sent: Sent,
    /// The status the browser got (0: none).
    pub status: u16,
    /// Whether the answer carried `Access-Control-Allow-Origin`.
    pub cors: bool,
    /// Whether the SPA fetched a token from Clerk since its previous backend request.
    pub refreshed_before: bool,
    /// The backend's clock minus the browser's, in whole seconds, from the answer's `Date`
    /// header (0 when it has none or they differ by under 2 s).
    #[serde(default)]
    pub backend_clock_ahead_s: i64,
}

/// Whether a value (an `Origin`, an `azp`) is one of the profile's SPA origins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// One of `[token] authorized_parties` / `[cors] allowed_origins`.
    Profile,
    /// Another origin.
    Other,
    /// None sent.
    Absent,
}

/// How the SPA sent its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// `Authorization: Bearer …`.
    Bearer,
    /// The `__session` cookie (plain or suffixed).
    Cookie,
}

/// What a backend request carried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sent {
    /// Nothing.
    Nothing,
    /// A Clerk session id (`sess_…`) where a token belongs.
    SessionId {
        /// How.
        transport: Transport,
    },
    /// A JWT.
    Token {
        /// How.
        transport: Transport,
        /// What it was.
        token: TokenFacts,
    },
    /// Something that is neither a JWT nor a session id.
    Opaque {
        /// How.
        transport: Transport,
    },
}

/// What a Clerk token was, without its values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenFacts {
    /// `session` or `template`.
    pub kind: TokenKind,
    /// Session tokens: claims version (1, or 2 with `v: 2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    /// Template tokens: the template's name, when the HAR has the Frontend API call that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The claim names (the token's shape), sorted.
    pub claims: Vec<String>,
    /// `exp - iat`, seconds.
    pub lifetime_s: i64,
    /// `iat` minus the time of the request, by the backend's clock where the answer said it
    /// (else the browser's), seconds: positive = issued "in the future" (Clerk's clock ahead).
    pub iat_s: i64,
    /// `exp` minus the request time: negative = expired when sent.
    pub exp_s: i64,
    /// `nbf` minus the request time, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf_s: Option<i64>,
    /// Whether `azp` is one of the profile's SPA origins.
    pub azp: Party,
    /// Which signing key (`kid`) of the recording signed it: 0 the first seen, 1 the next…
    pub key: usize,
}

/// The two kinds of Clerk token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// `getToken()`.
    Session,
    /// `getToken({ template })`.
    Template,
}

/// One request to Clerk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClerkCall {
    /// Its index in the HAR.
    pub entry: usize,
    /// ms since the first backend request (negative: before it).
    pub at_ms: i64,
    /// What it was.
    pub what: ClerkWhat,
    /// Its status.
    pub status: u16,
}

/// The Clerk requests the replay distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClerkWhat {
    /// `POST /v1/client/sessions/{id}/tokens[/{template}]`: `getToken()`.
    Token,
    /// `/v1/client…` (the client, sign-in, touch).
    Client,
    /// `/v1/client/handshake`.
    Handshake,
    /// `/v1/environment`, `/v1/dev_browser`, the JWKS…
    Other,
    /// The Backend API (`api.clerk.com`).
    BackendApi,
}

/// Reads `har` against `profile`.
///
/// # Errors
/// [`ReplayError::NoEndpoint`] when no entry is a request to one of the profile's endpoints,
/// [`ReplayError::NoToken`] when none of those carries a Clerk token or session id.
pub fn analyse(har: &Har, profile: &Profile) -> Result<Recording, ReplayError> {
    let origins: Vec<String> = profile
        .token
        .authorized_parties
        .iter()
        .chain(profile.cors.allowed_origins.iter().map(|o| o.get()))
        .map(|o| o.trim_end_matches('/').to_string())
        .collect();
    let party = |value: Option<&str>| match value {
        None => Party::Absent,
        Some(v) if origins.iter().any(|o| o == v.trim_end_matches('/')) => Party::Profile,
        Some(_) => Party::Other,
    };
    let endpoint_of = |e: &Entry| {
        profile
            .endpoints
            .iter()
            .find(|ep| ep.method.as_reqwest().as_str() == e.request.method && same_path(ep.path.get(), e.request.url.path()))
            .map(|ep| ep.path.get().clone())
    };
    let backend_origin = har.entries.iter().find(|e| e.request.method != "OPTIONS" && endpoint_of(e).is_some()).map(|e| e.request.url.origin());
    let Some(backend_origin) = backend_origin else {
        let wanted: Vec<String> = profile.endpoints.iter().map(|e| format!("{} {}", e.method.as_reqwest(), e.path.get())).collect();
        return Err(ReplayError::NoEndpoint { entries: har.entries.len(), wanted: wanted.join(", ") });
    };
    let templates = template_names(har);
    let t0 = har.entries.iter().find(|e| e.request.url.origin() == backend_origin && endpoint_of(e).is_some()).map_or(0, |e| e.started_ms);
    let mut kids: Vec<String> = vec![];
    let mut calls = vec![];
    let mut clerk = vec![];
    let mut refreshed = false;
    for e in &har.entries {
        if let Some(what) = clerk_what(e) {
            if what == ClerkWhat::Token && (200..300).contains(&e.response.status) {
                refreshed = true;
            }
            clerk.push(ClerkCall { entry: e.index, at_ms: e.started_ms - t0, what, status: e.response.status });
            continue;
        }
        if e.request.method == "OPTIONS" || e.request.url.origin() != backend_origin {
            continue;
        }
        let Some(path) = endpoint_of(e) else { continue };
        let ahead = backend_clock_ahead(e);
        let now_s = e.started_ms.div_euclid(1000) + ahead;
        let sent = sent(e, now_s, &templates, &mut kids, &party);
        calls.push(Call {
            entry: e.index,
            at_ms: e.started_ms - t0,
            method: e.request.method.clone(),
            path,
            origin: party(e.request.header("origin")),
            sent,
            status: e.response.status,
            cors: e.response.header("access-control-allow-origin").is_some(),
            refreshed_before: std::mem::take(&mut refreshed),
            backend_clock_ahead_s: ahead,
        });
    }
    if calls.iter().all(|c| matches!(c.sent, Sent::Nothing | Sent::Opaque { .. })) {
        return Err(ReplayError::NoToken { first: calls[0].entry, calls: calls.len() });
    }
    Ok(Recording { browser: har.browser.clone(), calls, clerk })
}

/// `/api/me` matches `/api/me` and `/api/me/`.
fn same_path(endpoint: &str, path: &str) -> bool {
    endpoint.trim_end_matches('/') == path.trim_end_matches('/')
}

fn clerk_what(e: &Entry) -> Option<ClerkWhat> {
    let host = e.request.url.host_str().unwrap_or_default();
    let path = e.request.url.path();
    if host == "api.clerk.com" || host == "api.clerk.dev" {
        return Some(ClerkWhat::BackendApi);
    }
    let clerk_host = host.ends_with(".clerk.accounts.dev") || host.starts_with("clerk.") || host.ends_with(".clerk.com");
    if !clerk_host && !path.starts_with("/v1/client") && !path.starts_with("/v1/environment") && !path.starts_with("/v1/dev_browser") {
        return None;
    }
    Some(if path.starts_with("/v1/client/handshake") {
        ClerkWhat::Handshake
    } else if path.starts_with("/v1/client/sessions/") && path.contains("/tokens") {
        ClerkWhat::Token
    } else if path.starts_with("/v1/client") {
        ClerkWhat::Client
    } else {
        ClerkWhat::Other
    })
}

/// Token → template name, from the Frontend API calls `…/tokens/{template}` and their `jwt`.
fn template_names(har: &Har) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for e in &har.entries {
        let path = e.request.url.path();
        let Some((_, template)) = path.split_once("/tokens/") else { continue };
        if !path.starts_with("/v1/client/sessions/") || template.is_empty() {
            continue;
        }
        let jwt = e
            .response
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str::<Value>(b).ok())
            .and_then(|v| v.get("jwt").and_then(Value::as_str).map(str::to_owned));
        if let Some(jwt) = jwt {
            names.insert(jwt, template.to_string());
        }
    }
    names
}

/// The backend's clock ahead of the browser's, from the answer's `Date` (whole seconds; under
/// 2 s is the header's rounding, so 0).
fn backend_clock_ahead(e: &Entry) -> i64 {
    let Some(date) = e.response.header("date").and_then(parse_http_date) else { return 0 };
    let diff = date - e.started_ms.div_euclid(1000);
    if diff.abs() < 2 {
        0
    } else {
        diff
    }
}

/// The credential a backend request carried: its `Authorization`, else a `__session` cookie.
fn sent(e: &Entry, now_s: i64, templates: &HashMap<String, String>, kids: &mut Vec<String>, party: &impl Fn(Option<&str>) -> Party) -> Sent {
    let bearer = e.request.header("authorization").map(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).unwrap_or(v).trim().to_string());
    let cookie = e.request.cookies.iter().find(|(k, _)| k == "__session" || k.starts_with("__session_")).map(|(_, v)| v.clone());
    let (value, transport) = match (bearer, cookie) {
        (Some(v), _) if !v.is_empty() => (v, Transport::Bearer),
        (_, Some(v)) if !v.is_empty() => (v, Transport::Cookie),
        _ => return Sent::Nothing,
    };
    if value.starts_with("sess_") {
        return Sent::SessionId { transport };
    }
    match facts(&value, now_s, templates, kids, party) {
        Some(token) => Sent::Token { transport, token },
        None => Sent::Opaque { transport },
    }
}

/// Decodes a JWT's header and claims without verifying them.
fn facts(jwt: &str, now_s: i64, templates: &HashMap<String, String>, kids: &mut Vec<String>, party: &impl Fn(Option<&str>) -> Party) -> Option<TokenFacts> {
    let (header, claims) = mock_clerk::decode_unverified(jwt).ok()?;
    let int = |name: &str| claims.get(name).and_then(Value::as_i64);
    let iat = int("iat")?;
    let exp = int("exp")?;
    let kind = match header.get("cat").and_then(Value::as_str) {
        Some(CAT_TEMPLATE) => TokenKind::Template,
        Some(CAT_SESSION) => TokenKind::Session,
        // No `cat` (older tokens): a session token carries `sid` and nothing custom.
        _ if claims.contains_key("sid") && claims.keys().all(|k| SESSION_CLAIMS.contains(&k.as_str())) => TokenKind::Session,
        _ => TokenKind::Template,
    };
    let kid = header.get("kid").and_then(Value::as_str).unwrap_or_default().to_string();
    let key = kids.iter().position(|k| *k == kid).unwrap_or_else(|| {
        kids.push(kid);
        kids.len() - 1
    });
    let mut names: Vec<String> = claims.keys().cloned().collect();
    names.sort();
    Some(TokenFacts {
        kind,
        version: (kind == TokenKind::Session).then(|| if int("v") == Some(2) { 2 } else { 1 }),
        template: templates.get(jwt).cloned(),
        claims: names,
        lifetime_s: exp - iat,
        iat_s: iat - now_s,
        exp_s: exp - now_s,
        nbf_s: int("nbf").map(|n| n - now_s),
        azp: party(claims.get("azp").and_then(Value::as_str)),
        key,
    })
}

/// The claims of Clerk's session tokens (v1 and v2).
const SESSION_CLAIMS: &[&str] =
    &["azp", "exp", "fva", "iat", "iss", "nbf", "sid", "sub", "v", "sts", "o", "fea", "act", "jti", "org_id", "org_slug", "org_role", "org_permissions", "pla"];
