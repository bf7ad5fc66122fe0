//! Frontend API routes (`https://<fapi host>`): the JWKS and the token endpoints the browser
//! SDK's `getToken()` calls.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::error::ClerkApiError;
use crate::faults::Api;
use crate::server::{record_and_fault, Shared};
use crate::tokens::TokenVersion;

/// The Frontend API router on `shared`.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/client/sessions/{sid}/tokens", post(session_token))
        .route("/v1/client/sessions/{sid}/tokens/{template}", post(template_token))
        .fallback(crate::server::unknown_route)
        .layer(axum::middleware::from_fn_with_state((shared.clone(), Api::Frontend), record_and_fault))
        .with_state(shared)
}

async fn jwks(State(shared): State<Shared>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json"), (axum::http::header::CACHE_CONTROL, "public, max-age=3600")], shared.instance.jwks_body())
        .into_response()
}

#[derive(Deserialize, Default)]
struct TokenQuery {
    /// Non-standard knob of the mock: `1` mints the deprecated v1 claims.
    #[serde(default)]
    _clerk_session_token_version: Option<u8>,
}

/// The request's `Origin`, which Clerk puts in `azp`. `Origin: null` (sandboxed iframes,
/// `file://` pages, some redirects) means no origin: Clerk omits `azp` then, never `"null"`.
fn origin(headers: &HeaderMap) -> Option<String> {
    headers.get("origin").and_then(|v| v.to_str().ok()).filter(|o| !o.is_empty() && *o != "null").map(str::to_string)
}

async fn session_token(
    State(shared): State<Shared>,
    Path(sid): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ClerkApiError> {
    let version = if q._clerk_session_token_version == Some(1) { TokenVersion::V1 } else { TokenVersion::V2 };
    let jwt = shared.mint_session_token(&sid, origin(&headers).as_deref(), version)?;
    Ok(Json(json!({ "object": "token", "jwt": jwt })))
}

async fn template_token(
    State(shared): State<Shared>,
    Path((sid, template)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ClerkApiError> {
    let jwt = shared.mint_template_token(&sid, &template, origin(&headers).as_deref())?;
    Ok(Json(json!({ "object": "token", "jwt": jwt })))
}
