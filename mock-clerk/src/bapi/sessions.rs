//! Sessions and their tokens, JWT templates, and the handshake payload FAPI kept for a nonce.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::paged;
use crate::error::ClerkApiError;
use crate::model::SessionStatus;
use crate::query::Params;
use crate::state::Shared;
use crate::validate::{parse_body, token_lifetime};

pub(super) async fn list_sessions(State(shared): State<Shared>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
    let params = Params::parse(raw.as_deref(), &["client_id", "user_id", "status", "paginated", "limit", "offset"])?;
    let status = match params.one("status") {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<SessionStatus>(json!(s))
                .ok()
                .filter(|st| *st != SessionStatus::Pending)
                .ok_or_else(|| ClerkApiError::unprocessable(&format!("unknown session status '{s}'")).with_meta(json!({"param_name": "status"})))?,
        ),
    };
    let paginated = params.bool("paginated")?.unwrap_or(false);
    let (limit, offset) = params.limit_offset()?;
    let client_id = params.one("client_id");
    let sessions: Vec<_> =
        shared.store.list_sessions(params.one("user_id"), status).into_iter().filter(|s| client_id.is_none_or(|c| s.client_id == c)).collect();
    let total = sessions.len();
    let page: Vec<Value> = sessions.iter().skip(offset).take(limit).map(crate::model::Session::to_json).collect();
    Ok(Json(if paginated { json!({ "data": page, "total_count": total }) } else { Value::Array(page) }))
}

#[derive(Deserialize)]
struct CreateSessionBody {
    user_id: String,
}

pub(super) async fn create_session(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: CreateSessionBody = parse_body(&body)?;
    Ok(Json(shared.store.create_session(&b.user_id)?.to_json()))
}

pub(super) async fn get_session(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ClerkApiError> {
    Ok(Json(shared.store.session(&id)?.to_json()))
}

pub(super) async fn revoke_session(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ClerkApiError> {
    Ok(Json(shared.store.set_session_status(&id, SessionStatus::Revoked)?.to_json()))
}

#[derive(Deserialize, Default)]
struct TokenBody {
    #[serde(default)]
    expires_in_seconds: Option<i64>,
}

pub(super) async fn session_token(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let lifetime = token_lifetime(parse_body::<TokenBody>(&body)?.expires_in_seconds)?;
    let jwt = shared.mint_session_token_for(&id, None, crate::tokens::TokenVersion::V2, lifetime)?;
    Ok(Json(json!({ "object": "token", "jwt": jwt })))
}

pub(super) async fn template_token(
    State(shared): State<Shared>,
    Path((id, template)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ClerkApiError> {
    let lifetime = token_lifetime(parse_body::<TokenBody>(&body)?.expires_in_seconds)?;
    let jwt = shared.mint_template_token_for(&id, &template, None, lifetime)?;
    Ok(Json(json!({ "object": "token", "jwt": jwt })))
}

/// `GET /v1/jwt_templates`: an array, or with `paginated=true` the `{data, total_count}`
/// envelope; `limit`/`offset` page either.
pub(super) async fn list_templates(State(shared): State<Shared>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
    let params = Params::parse(raw.as_deref(), &["paginated", "limit", "offset"])?;
    let paginated = params.bool("paginated")?.unwrap_or(false);
    let (limit, offset) = params.limit_offset()?;
    let templates: Vec<Value> = shared.store.templates().iter().filter_map(|t| serde_json::to_value(t).ok()).collect();
    if paginated {
        return Ok(paged(templates, limit, offset));
    }
    Ok(Json(Value::Array(templates.into_iter().skip(offset).take(limit).collect())))
}

/// `GET /v1/clients/handshake_payload?nonce=…`: the `Set-Cookie` directives FAPI kept under
/// the nonce of a handshake (`@clerk/backend` `clients.getHandshakePayload`).
pub(super) async fn handshake_payload(State(shared): State<Shared>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
    let nonce = url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()).find(|(k, _)| k == "nonce").map(|(_, v)| v.into_owned());
    let Some(nonce) = nonce.filter(|n| !n.is_empty()) else {
        return Err(ClerkApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "missing_parameter",
            "Missing required parameter",
            "The nonce parameter is required",
        )
        .with_meta(json!({ "param_name": "nonce" })));
    };
    match shared.clients.redeem(&nonce, shared.instance.clock().now_ms()) {
        Some(directives) => Ok(Json(json!({ "directives": directives }))),
        None => Err(ClerkApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_nonce",
            "Invalid nonce provided",
            "The nonce provided is invalid or has expired",
        )
        .with_meta(json!({ "param_name": "nonce" }))),
    }
}
