//! Backend API routes (`https://api.clerk.com`), behind the secret key.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::ClerkApiError;
use crate::faults::Api;
use crate::state::{record_and_fault, Shared};

mod keys;
mod orgs;
mod sessions;
mod users;

use keys::{create_api_key, revoke_machine_token, verify_api_key, verify_m2m_token, verify_oauth_token};
use orgs::{
    create_membership, create_organization, delete_membership, delete_organization, get_organization, list_memberships, list_organizations, update_membership,
    update_organization, user_memberships,
};
use sessions::{create_session, get_session, handshake_payload, list_sessions, list_templates, revoke_session, session_token, template_token};
use users::{count_users, create_user, delete_user, get_user, list_users, merge_user_metadata, update_user};

/// The Backend API router on `shared` (the admin API is nested under `/_mock`).
pub fn router(shared: Shared) -> Router {
    let v1 = Router::new()
        .route("/v1/jwks", get(jwks))
        .route("/v1/users", get(list_users).post(create_user))
        .route("/v1/users/count", get(count_users))
        .route("/v1/users/{id}", get(get_user).patch(update_user).delete(delete_user))
        .route("/v1/users/{id}/metadata", axum::routing::patch(merge_user_metadata))
        .route("/v1/users/{id}/organization_memberships", get(user_memberships))
        .route("/v1/organizations", get(list_organizations).post(create_organization))
        .route("/v1/organizations/{id}", get(get_organization).patch(update_organization).delete(delete_organization))
        .route("/v1/organizations/{id}/memberships", get(list_memberships).post(create_membership))
        .route("/v1/organizations/{id}/memberships/{user_id}", axum::routing::patch(update_membership).delete(delete_membership))
        .route("/v1/sessions", get(list_sessions).post(create_session))
        .route("/v1/sessions/{id}", get(get_session))
        .route("/v1/sessions/{id}/revoke", post(revoke_session))
        .route("/v1/sessions/{id}/tokens", post(session_token))
        .route("/v1/sessions/{id}/tokens/{template}", post(template_token))
        .route("/v1/jwt_templates", get(list_templates))
        .route("/v1/clients/handshake_payload", get(handshake_payload))
        .route("/v1/api_keys", post(create_api_key))
        .route("/v1/api_keys/{id}/revoke", post(revoke_machine_token))
        .route("/v1/m2m_tokens/{id}/revoke", post(revoke_machine_token))
        // Verification, versioned and unversioned (clerk-backend-api posts to `{api_url}/api_keys/verify`).
        .route("/v1/api_keys/verify", post(verify_api_key))
        .route("/api_keys/verify", post(verify_api_key))
        .route("/v1/m2m_tokens/verify", post(verify_m2m_token))
        .route("/m2m_tokens/verify", post(verify_m2m_token))
        .route("/v1/oauth_applications/access_tokens/verify", post(verify_oauth_token))
        .route("/oauth_applications/access_tokens/verify", post(verify_oauth_token));
    v1.merge(crate::admin::router())
        .fallback(crate::state::unknown_route)
        // A known path with a method the mock does not serve: Clerk's 404 JSON, not an empty 405.
        .method_not_allowed_fallback(crate::state::unknown_route)
        .layer(axum::middleware::from_fn_with_state(shared.clone(), require_secret_key))
        .layer(axum::middleware::from_fn_with_state((shared.clone(), Api::Backend), record_and_fault))
        .with_state(shared)
}

async fn require_secret_key(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let presented = request.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    match presented {
        Some(key) if key == shared.instance.secret_key().expose() => next.run(request).await,
        // Another instance's valid key: Clerk's one API host answers as that instance.
        Some(key) => match shared.peer_with_key(key) {
            Some(peer) => {
                use tower::ServiceExt as _;
                // Without this router's extensions (its matched route and path parameters):
                // the peer's router routes the request afresh.
                let (parts, body) = request.into_parts();
                let mut fresh = Request::new(body);
                *fresh.method_mut() = parts.method;
                *fresh.uri_mut() = parts.uri;
                *fresh.version_mut() = parts.version;
                *fresh.headers_mut() = parts.headers;
                router(peer).oneshot(fresh).await.unwrap_or_else(|never| match never {})
            }
            None => ClerkApiError::key_invalid().into_response(),
        },
        None => ClerkApiError::key_invalid().into_response(),
    }
}

async fn jwks(State(shared): State<Shared>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], shared.instance.jwks_body()).into_response()
}

/// A page of `items` in Clerk's `{data, total_count}` envelope.
pub(super) fn paged(items: Vec<Value>, limit: usize, offset: usize) -> Json<Value> {
    let total = items.len();
    Json(json!({ "data": items.into_iter().skip(offset).take(limit).collect::<Vec<_>>(), "total_count": total }))
}
