//! Frontend API routes (`https://<fapi host>`): the JWKS, the token endpoints the browser
//! SDK's `getToken()` calls, and the cookie side (dev browser, client, environment and the
//! handshake a backend redirects to, see [`crate::cookies`]).

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::error::ClerkApiError;
use crate::faults::Api;
use crate::state::{record_and_fault, Shared};
use crate::tokens::TokenVersion;

/// The Frontend API router on `shared`.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/client/sessions/{sid}/tokens", post(session_token))
        .route("/v1/client/sessions/{sid}/tokens/{template}", post(template_token))
        .route("/v1/client/handshake", get(handshake))
        .route("/v1/client", get(get_client))
        .route("/v1/dev_browser", post(create_dev_browser))
        .route("/v1/environment", get(environment))
        .fallback(crate::state::unknown_route)
        .method_not_allowed_fallback(crate::state::unknown_route)
        .layer(axum::middleware::from_fn_with_state((shared.clone(), Api::Frontend), record_and_fault))
        .with_state(shared)
}

async fn jwks(State(shared): State<Shared>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json"), (axum::http::header::CACHE_CONTROL, "public, max-age=3600")], shared.instance.jwks_body())
        .into_response()
}

/// The request's `Origin`, which Clerk puts in `azp`. `Origin: null` (sandboxed iframes,
/// `file://` pages, some redirects) means no origin: Clerk omits `azp` then, never `"null"`.
fn origin(headers: &HeaderMap) -> Option<String> {
    headers.get("origin").and_then(|v| v.to_str().ok()).filter(|o| !o.is_empty() && *o != "null").map(str::to_string)
}

async fn session_token(
    State(shared): State<Shared>,
    Path(sid): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ClerkApiError> {
    let query = query_map(raw.as_deref());
    owned_session(&shared, &headers, &query, &sid)?;
    // A knob of the mock, not Clerk's: `_clerk_session_token_version=1` mints the deprecated v1 claims.
    let version = if query.get("_clerk_session_token_version").map(String::as_str) == Some("1") { TokenVersion::V1 } else { TokenVersion::V2 };
    let jwt = shared.mint_session_token(&sid, origin(&headers).as_deref(), version)?;
    Ok(Json(json!({ "object": "token", "jwt": jwt })))
}

async fn template_token(
    State(shared): State<Shared>,
    Path((sid, template)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ClerkApiError> {
    owned_session(&shared, &headers, &query_map(raw.as_deref()), &sid)?;
    let jwt = shared.mint_template_token(&sid, &template, origin(&headers).as_deref())?;
    Ok(Json(json!({ "object": "token", "jwt": jwt })))
}

/// FAPI mints tokens only for a session of the requesting client, as Clerk does: without a
/// client credential 401 (development: `dev_browser_unauthenticated`; production:
/// `signed_out`), and a session the client does not own — another browser's, or none at
/// all — 404, the same answer as an unknown session, so a session id alone reveals nothing.
fn owned_session(shared: &Shared, headers: &HeaderMap, query: &std::collections::HashMap<String, String>, sid: &str) -> Result<(), ClerkApiError> {
    let Some(client) = requesting_client(shared, headers, query) else {
        return Err(match shared.instance.environment() {
            crate::instance::Environment::Development => dev_browser_unauthenticated(),
            crate::instance::Environment::Production => signed_out(),
        });
    };
    match shared.store.session(sid) {
        Ok(session) if session.client_id == client.id => Ok(()),
        _ => Err(ClerkApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "resource_not_found",
            "not found",
            &format!("No session with id {sid} on this client: a browser gets tokens only for its own sessions"),
        )
        .with_meta(json!({ "param_name": "session_id" }))),
    }
}

fn signed_out() -> ClerkApiError {
    ClerkApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "signed_out",
        "Signed out",
        "You are signed out: the request carries no __client cookie of a signed-in client.",
    )
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

/// Query parameters, first value of each.
fn query_map(raw: Option<&str>) -> std::collections::HashMap<String, String> {
    let mut map = std::collections::HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    map
}

/// The client a FAPI request names: the dev browser (`__clerk_db_jwt` query parameter as
/// clerk-js sends it, `__dev_session` as the FAPI spec's `DevBrowser` scheme names it, the
/// `Clerk-Db-Jwt` header or the `__clerk_db_jwt` cookie) or the `__client` cookie.
fn requesting_client(shared: &Shared, headers: &HeaderMap, query: &std::collections::HashMap<String, String>) -> Option<crate::cookies::Client> {
    let dev_browser = query
        .get(crate::cookies::DEV_BROWSER)
        .or_else(|| query.get(DEV_SESSION))
        .cloned()
        .or_else(|| headers.get("clerk-db-jwt").and_then(|v| v.to_str().ok()).map(str::to_string))
        .or_else(|| cookie(headers, crate::cookies::DEV_BROWSER));
    dev_browser.or_else(|| cookie(headers, crate::cookies::CLIENT)).and_then(|t| shared.clients.by_token(&t))
}

/// The FAPI spec's name for the dev-browser query parameter (`securitySchemes.DevBrowser`).
const DEV_SESSION: &str = "__dev_session";

fn dev_browser_unauthenticated() -> ClerkApiError {
    ClerkApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "dev_browser_unauthenticated",
        "Browser unauthenticated",
        "Unable to authenticate the dev browser: create one with POST /v1/dev_browser and send it as __clerk_db_jwt.",
    )
}

/// `GET /v1/client/handshake`: 307 back to `redirect_url` with the handshake nonce or token.
async fn handshake(State(shared): State<Shared>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Result<Response, ClerkApiError> {
    use crate::cookies::{HandshakeError, HandshakeRequest};
    let q = query_map(raw.as_deref());
    let request = HandshakeRequest {
        redirect_url: q.get("redirect_url").cloned().unwrap_or_default(),
        format: q.get("format").cloned(),
        suffixed_cookies: q.get("suffixed_cookies").is_some_and(|v| v == "true"),
        dev_browser: q.get(crate::cookies::DEV_BROWSER).or_else(|| q.get(DEV_SESSION)).cloned().or_else(|| cookie(&headers, crate::cookies::DEV_BROWSER)),
        client_cookie: cookie(&headers, crate::cookies::CLIENT),
        organization_id: q.get("organization_id").cloned(),
    };
    let redirect = shared.handshake(&request).map_err(|e| match e {
        HandshakeError::MissingRedirectUrl => ClerkApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_missing",
            "redirect_url must be included.",
            "redirect_url must be included.",
        )
        .with_meta(json!({ "param_name": "redirect_url" })),
        HandshakeError::InvalidRedirectUrl(_) | HandshakeError::InvalidFormat(_) => ClerkApiError::unprocessable(&e.to_string()),
        HandshakeError::DevBrowserUnauthenticated => dev_browser_unauthenticated(),
        HandshakeError::Mock(e) => e.into(),
    })?;
    let mut response = axum::http::Response::builder()
        .status(axum::http::StatusCode::TEMPORARY_REDIRECT)
        .header(axum::http::header::LOCATION, &redirect.location)
        .header(axum::http::header::CACHE_CONTROL, "no-store");
    for c in &redirect.set_cookies {
        response = response.header(axum::http::header::SET_COOKIE, c);
    }
    response
        .body(axum::body::Body::empty())
        .map_err(|e| ClerkApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal_clerk_error", "Something went wrong", &e.to_string()))
}

/// `POST /v1/dev_browser`: a new client named by a dev browser id, which `clerk-js` keeps in
/// `__clerk_db_jwt` (it reads `id`). Production instances have no dev browsers.
async fn create_dev_browser(State(shared): State<Shared>) -> Result<Json<serde_json::Value>, ClerkApiError> {
    if shared.instance.environment() == crate::instance::Environment::Production {
        return Err(ClerkApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "dev_browser_not_supported",
            "Dev browsers are only for development instances",
            "Production instances name the client by the __client cookie.",
        ));
    }
    let client = shared.clients.create(None, shared.instance.clock().now_ms());
    Ok(Json(json!({ "object": "dev_browser", "id": client.dev_browser, "instance_id": shared.instance.id() })))
}

/// `GET /v1/client`: the browser's client (`{"response": client, "client": null}`), or
/// `{"response": null}` when the request names none.
async fn get_client(State(shared): State<Shared>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Result<Json<serde_json::Value>, ClerkApiError> {
    let q = query_map(raw.as_deref());
    let client = requesting_client(&shared, &headers, &q);
    let development = shared.instance.environment() == crate::instance::Environment::Development;
    match client {
        Some(c) => Ok(Json(json!({ "response": shared.client_json(&c), "client": null }))),
        None if development => Err(dev_browser_unauthenticated()),
        None => Ok(Json(json!({ "response": null, "client": null }))),
    }
}

/// `GET /v1/environment`: the instance settings `clerk-js` loads first, as far as the mock
/// has them (email/password sign-in, organisations on).
async fn environment(State(shared): State<Shared>) -> Json<serde_json::Value> {
    Json(json!({
        "auth_config": {
            "object": "auth_config",
            "id": format!("aac_{}", crate::ids::base62(27)),
            "first_name": "on",
            "last_name": "on",
            "email_address": "on",
            "phone_number": "off",
            "username": "on",
            "password": "required",
            "identification_requirements": [["email_address"]],
            "identification_strategies": ["email_address", "username"],
            "first_factors": ["password", "email_code"],
            "second_factors": [],
            "email_address_verification_strategies": ["email_code"],
            "single_session_mode": true,
            "enhanced_email_deliverability": false,
            "test_mode": shared.instance.environment() == crate::instance::Environment::Development,
            "url_based_session_syncing": shared.instance.environment() == crate::instance::Environment::Development,
            "claimed_at": null,
            "reverification": false,
            "native_settings": {
                "object": "native_settings",
                "api_enabled": false,
                "trusted_device_sign_in_enabled": false,
                "trusted_device_enrollment_prompt_after_sign_in_enabled": false,
                "trusted_device_enrollment_prompt_after_sign_up_enabled": false,
            },
        },
        "client_debug_mode": false,
        "partitioned_cookies": false,
        "maintenance_mode": false,
    }))
}
