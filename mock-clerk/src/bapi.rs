//! Backend API routes (`https://api.clerk.com`), behind the secret key.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ClerkApiError;
use crate::faults::Api;
use crate::model::{NewUser, SessionStatus};
use crate::server::{record_and_fault, Shared};
use crate::store::UserQuery;

/// The Backend API router on `shared` (the admin API is nested under `/_mock`).
pub fn router(shared: Shared) -> Router {
    let v1 = Router::new()
        .route("/v1/jwks", get(jwks))
        .route("/v1/users", get(list_users).post(create_user))
        .route("/v1/users/count", get(count_users))
        .route("/v1/users/{id}", get(get_user).patch(update_user).delete(delete_user))
        .route("/v1/sessions", get(list_sessions).post(create_session))
        .route("/v1/sessions/{id}", get(get_session))
        .route("/v1/sessions/{id}/revoke", post(revoke_session))
        .route("/v1/sessions/{id}/tokens", post(session_token))
        .route("/v1/sessions/{id}/tokens/{template}", post(template_token))
        .route("/v1/jwt_templates", get(list_templates));
    v1.merge(crate::admin::router())
        .fallback(crate::server::unknown_route)
        .layer(axum::middleware::from_fn_with_state(shared.clone(), require_secret_key))
        .layer(axum::middleware::from_fn_with_state((shared.clone(), Api::Backend), record_and_fault))
        .with_state(shared)
}

async fn require_secret_key(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let presented = request.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    if presented == Some(shared.instance.secret_key().expose()) {
        next.run(request).await
    } else {
        ClerkApiError::key_invalid().into_response()
    }
}

/// Parses a JSON body like Clerk: anything that is not the expected JSON is a 422.
fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ClerkApiError> {
    let bytes: &[u8] = if body.is_empty() { b"{}" } else { body };
    serde_json::from_slice(bytes).map_err(|e| ClerkApiError::unprocessable(&format!("request body is invalid: {e}")))
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect()
}

fn all(pairs: &[(String, String)], name: &str) -> Vec<String> {
    let bracketed = format!("{name}[]");
    pairs.iter().filter(|(k, _)| k == name || *k == bracketed).map(|(_, v)| v.clone()).collect()
}

fn number(pairs: &[(String, String)], name: &str, default: usize) -> Result<usize, ClerkApiError> {
    match pairs.iter().find(|(k, _)| k == name) {
        None => Ok(default),
        Some((_, v)) => v
            .parse()
            .map_err(|_| ClerkApiError::unprocessable(&format!("`{name}` must be a non-negative integer, got '{v}'")).with_meta(json!({ "param_name": name }))),
    }
}

fn user_query(pairs: &[(String, String)]) -> UserQuery {
    UserQuery {
        email_address: all(pairs, "email_address"),
        user_id: all(pairs, "user_id"),
        external_id: all(pairs, "external_id"),
        query: pairs.iter().find(|(k, _)| k == "query").map(|(_, v)| v.clone()),
    }
}

async fn jwks(State(shared): State<Shared>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], shared.instance.jwks_body()).into_response()
}

async fn list_users(State(shared): State<Shared>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
    let pairs = query_pairs(raw.as_deref());
    let limit = number(&pairs, "limit", 10)?;
    if !(1..=500).contains(&limit) {
        return Err(ClerkApiError::unprocessable("`limit` must be between 1 and 500").with_meta(json!({"param_name": "limit"})));
    }
    let offset = number(&pairs, "offset", 0)?;
    let users = shared.store.list_users(&user_query(&pairs), limit, offset);
    Ok(Json(Value::Array(users.iter().map(crate::model::User::to_json).collect())))
}

async fn count_users(State(shared): State<Shared>, RawQuery(raw): RawQuery) -> Json<Value> {
    let pairs = query_pairs(raw.as_deref());
    Json(json!({ "object": "total_count", "total_count": shared.store.count_users(&user_query(&pairs)) }))
}

async fn get_user(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ClerkApiError> {
    Ok(Json(shared.store.user(&id)?.to_json()))
}

#[derive(Deserialize)]
struct CreateUserBody {
    #[serde(default)]
    email_address: Vec<String>,
    #[serde(default)]
    phone_number: Vec<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    public_metadata: Option<Value>,
    #[serde(default)]
    private_metadata: Option<Value>,
    #[serde(default)]
    unsafe_metadata: Option<Value>,
}

async fn create_user(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: CreateUserBody = parse_body(&body)?;
    let new = NewUser {
        email_addresses: b.email_address,
        phone_numbers: b.phone_number,
        first_name: b.first_name,
        last_name: b.last_name,
        username: b.username,
        external_id: b.external_id,
        public_metadata: b.public_metadata,
        private_metadata: b.private_metadata,
        unsafe_metadata: b.unsafe_metadata,
        ..NewUser::default()
    };
    Ok(Json(shared.store.create_user(new)?.to_json()))
}

#[derive(Deserialize)]
struct UpdateUserBody {
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    primary_email_address_id: Option<String>,
    #[serde(default)]
    public_metadata: Option<Value>,
    #[serde(default)]
    private_metadata: Option<Value>,
    #[serde(default)]
    unsafe_metadata: Option<Value>,
}

async fn update_user(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: UpdateUserBody = parse_body(&body)?;
    if let Some(primary) = &b.primary_email_address_id {
        let user = shared.store.user(&id)?;
        if !user.email_addresses.iter().any(|e| &e.id == primary) {
            return Err(ClerkApiError::unprocessable("primary_email_address_id does not belong to the user")
                .with_meta(json!({"param_name": "primary_email_address_id"})));
        }
    }
    let user = shared.store.update_user(&id, |u| {
        if b.first_name.is_some() {
            u.first_name = b.first_name;
        }
        if b.last_name.is_some() {
            u.last_name = b.last_name;
        }
        if b.username.is_some() {
            u.username = b.username;
        }
        if b.external_id.is_some() {
            u.external_id = b.external_id;
        }
        if b.primary_email_address_id.is_some() {
            u.primary_email_address_id = b.primary_email_address_id;
        }
        if let Some(m) = b.public_metadata {
            u.public_metadata = m;
        }
        if let Some(m) = b.private_metadata {
            u.private_metadata = m;
        }
        if let Some(m) = b.unsafe_metadata {
            u.unsafe_metadata = m;
        }
    })?;
    Ok(Json(user.to_json()))
}

async fn delete_user(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ClerkApiError> {
    shared.store.delete_user(&id)?;
    Ok(Json(json!({ "object": "user", "id": id, "deleted": true })))
}

async fn list_sessions(State(shared): State<Shared>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
    let pairs = query_pairs(raw.as_deref());
    let user_id = pairs.iter().find(|(k, _)| k == "user_id").map(|(_, v)| v.as_str());
    let status = match pairs.iter().find(|(k, _)| k == "status") {
        None => None,
        Some((_, s)) => Some(
            serde_json::from_value::<SessionStatus>(json!(s))
                .map_err(|_| ClerkApiError::unprocessable(&format!("unknown session status '{s}'")).with_meta(json!({"param_name": "status"})))?,
        ),
    };
    let limit = number(&pairs, "limit", 10)?;
    let offset = number(&pairs, "offset", 0)?;
    let sessions = shared.store.list_sessions(user_id, status);
    Ok(Json(Value::Array(sessions.iter().skip(offset).take(limit).map(crate::model::Session::to_json).collect())))
}

#[derive(Deserialize)]
struct CreateSessionBody {
    user_id: String,
}

async fn create_session(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: CreateSessionBody = parse_body(&body)?;
    Ok(Json(shared.store.create_session(&b.user_id)?.to_json()))
}

async fn get_session(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ClerkApiError> {
    Ok(Json(shared.store.session(&id)?.to_json()))
}

async fn revoke_session(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ClerkApiError> {
    Ok(Json(shared.store.set_session_status(&id, SessionStatus::Revoked)?.to_json()))
}

#[derive(Deserialize, Default)]
struct TokenBody {
    #[serde(default)]
    expires_in_seconds: Option<i64>,
}

async fn session_token(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: TokenBody = parse_body(&body)?;
    let jwt = shared.mint_session_token_for(&id, None, crate::tokens::TokenVersion::V2, b.expires_in_seconds)?;
    Ok(Json(json!({ "object": "token", "jwt": jwt })))
}

async fn template_token(State(shared): State<Shared>, Path((id, template)): Path<(String, String)>) -> Result<Json<Value>, ClerkApiError> {
    let jwt = shared.mint_template_token(&id, &template, None)?;
    Ok(Json(json!({ "object": "token", "jwt": jwt })))
}

async fn list_templates(State(shared): State<Shared>) -> Json<Value> {
    Json(serde_json::to_value(shared.store.templates()).unwrap_or(Value::Null))
}
