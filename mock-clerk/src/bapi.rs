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
use crate::query::{Params, UserFilter, UserOrder, USER_FILTER_PARAMS, USER_PAGING_PARAMS};
use crate::server::{record_and_fault, Shared};

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
        .fallback(crate::server::unknown_route)
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

/// Parses a JSON body like Clerk: anything that is not the expected JSON is a 422.
fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ClerkApiError> {
    let bytes: &[u8] = if body.is_empty() { b"{}" } else { body };
    serde_json::from_slice(bytes).map_err(|e| ClerkApiError::unprocessable(&format!("request body is invalid: {e}")))
}

async fn jwks(State(shared): State<Shared>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], shared.instance.jwks_body()).into_response()
}

async fn list_users(State(shared): State<Shared>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
    let allowed: Vec<&str> = USER_FILTER_PARAMS.iter().chain(USER_PAGING_PARAMS).copied().collect();
    let params = Params::parse(raw.as_deref(), &allowed)?;
    let filter = UserFilter::from_params(&params)?;
    let (limit, offset) = params.limit_offset()?;
    let order = UserOrder::parse(params.one("order_by"))?;
    let starting_after = params.one("starting_after");
    crate::query::check_cursor(starting_after, order, offset)?;
    let users = shared.store.list_users(&filter, order, starting_after, limit, offset);
    Ok(Json(Value::Array(users.iter().map(crate::model::User::to_json).collect())))
}

async fn count_users(State(shared): State<Shared>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
    let params = Params::parse(raw.as_deref(), USER_FILTER_PARAMS)?;
    let filter = UserFilter::from_params(&params)?;
    Ok(Json(json!({ "object": "total_count", "total_count": shared.store.count_users(&filter) })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetadataBody {
    #[serde(default)]
    public_metadata: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    private_metadata: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    unsafe_metadata: Option<serde_json::Map<String, Value>>,
}

async fn merge_user_metadata(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: MetadataBody = parse_body(&body)?;
    let (public, private, unsafe_) = (b.public_metadata.map(Value::Object), b.private_metadata.map(Value::Object), b.unsafe_metadata.map(Value::Object));
    Ok(Json(shared.store.merge_user_metadata(&id, public.as_ref(), private.as_ref(), unsafe_.as_ref())?.to_json()))
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

fn paged(items: Vec<Value>, limit: usize, offset: usize) -> Json<Value> {
    let total = items.len();
    Json(json!({ "data": items.into_iter().skip(offset).take(limit).collect::<Vec<_>>(), "total_count": total }))
}

fn invalid_param(name: &str, message: &str) -> ClerkApiError {
    ClerkApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "form_param_value_invalid", "is invalid", message).with_meta(json!({ "param_name": name }))
}

/// `+field`/`-field`/`field` → (field, descending); `+` may arrive as a space.
fn direction(value: &str) -> (&str, bool) {
    match value.as_bytes().first() {
        Some(b'-') => (&value[1..], true),
        Some(b'+' | b' ') => (&value[1..], false),
        _ => (value, false),
    }
}

async fn list_organizations(State(shared): State<Shared>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
    let params = Params::parse(
        raw.as_deref(),
        &["include_members_count", "include_missing_member_with_elevated_permissions", "query", "user_id", "organization_id", "order_by", "limit", "offset"],
    )?;
    let include_members_count = params.bool("include_members_count")?.unwrap_or(false);
    params.bool("include_missing_member_with_elevated_permissions")?;
    let (limit, offset) = params.limit_offset()?;
    let users = crate::query::IdFilter::parse(params.list("user_id")?);
    let ids = crate::query::IdFilter::parse(params.list("organization_id")?);
    let query = params.one("query").map(str::to_lowercase);
    let (field, descending) = direction(params.one("order_by").unwrap_or("-created_at"));
    if !["name", "created_at", "members_count"].contains(&field) {
        return Err(invalid_param("order_by", "order_by must be name, created_at or members_count, optionally prefixed with + or -"));
    }
    let mut orgs: Vec<_> = shared
        .store
        .organizations()
        .into_iter()
        .filter(|o| ids.admits(Some(&o.id)))
        .filter(|o| query.as_ref().is_none_or(|q| o.id == *q || o.name.to_lowercase().contains(q) || o.slug.contains(q.as_str())))
        .filter(|o| {
            users.is_empty() || {
                let members: Vec<String> = shared
                    .store
                    .memberships(&o.id)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|m| m["public_user_data"]["user_id"].as_str().map(str::to_string))
                    .collect();
                users.admits_any(members.iter().map(String::as_str))
            }
        })
        .collect();
    orgs.sort_by(|a, b| {
        let ord = match field {
            "name" => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            "members_count" => a.members_count.cmp(&b.members_count),
            _ => a.created_at.cmp(&b.created_at),
        }
        .then_with(|| a.id.cmp(&b.id));
        if descending {
            ord.reverse()
        } else {
            ord
        }
    });
    let items = orgs
        .iter()
        .map(|o| {
            let mut j = o.to_json();
            if !include_members_count {
                if let Some(m) = j.as_object_mut() {
                    m.remove("members_count");
                }
            }
            j
        })
        .collect();
    Ok(paged(items, limit, offset))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateOrganizationBody {
    name: String,
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    public_metadata: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    private_metadata: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    max_allowed_memberships: Option<i64>,
}

async fn create_organization(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: CreateOrganizationBody = parse_body(&body)?;
    if b.name.trim().is_empty() {
        return Err(invalid_param("name", "name must not be empty"));
    }
    if let Some(slug) = &b.slug {
        if slug.is_empty() || !slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(invalid_param("slug", "slug can contain only lowercase alphanumeric characters and the dash \"-\""));
        }
    }
    let org = shared.store.create_organization(
        &b.name,
        b.slug.as_deref(),
        b.created_by.as_deref(),
        b.public_metadata.map(Value::Object),
        b.private_metadata.map(Value::Object),
    )?;
    let org = match b.max_allowed_memberships {
        Some(max) => shared.store.update_organization(&org.id, |o| o.max_allowed_memberships = max)?,
        None => org,
    };
    Ok(Json(org.to_json()))
}

async fn get_organization(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ClerkApiError> {
    Ok(Json(shared.store.organization(&id)?.to_json()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateOrganizationBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    public_metadata: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    private_metadata: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    max_allowed_memberships: Option<i64>,
    #[serde(default)]
    admin_delete_enabled: Option<bool>,
}

async fn update_organization(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: UpdateOrganizationBody = parse_body(&body)?;
    let id = shared.store.organization(&id)?.id;
    let org = shared.store.update_organization(&id, |o| {
        if let Some(n) = b.name {
            o.name = n;
        }
        if let Some(s) = b.slug {
            o.slug = s;
        }
        if let Some(m) = b.public_metadata {
            o.public_metadata = Value::Object(m);
        }
        if let Some(m) = b.private_metadata {
            o.private_metadata = Value::Object(m);
        }
        if let Some(m) = b.max_allowed_memberships {
            o.max_allowed_memberships = m;
        }
        if let Some(a) = b.admin_delete_enabled {
            o.admin_delete_enabled = a;
        }
    })?;
    Ok(Json(org.to_json()))
}

async fn delete_organization(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ClerkApiError> {
    let id = shared.store.organization(&id)?.id;
    let org = shared.store.delete_organization(&id)?;
    Ok(Json(json!({ "object": "organization", "id": org.id, "slug": org.slug, "deleted": true })))
}

const MEMBERSHIP_LIST_PARAMS: &[&str] = &[
    "order_by",
    "user_id",
    "email_address",
    "phone_number",
    "username",
    "web3_wallet",
    "role",
    "query",
    "email_address_query",
    "phone_number_query",
    "username_query",
    "name_query",
    "last_active_at_before",
    "last_active_at_after",
    "created_at_before",
    "created_at_after",
    "limit",
    "offset",
];

async fn list_memberships(State(shared): State<Shared>, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
    let params = Params::parse(raw.as_deref(), MEMBERSHIP_LIST_PARAMS)?;
    // The filters are on the members, as the spec words them ("Returns users …").
    let filter = UserFilter::from_params(&params)?;
    let roles = params.list("role")?;
    let (limit, offset) = params.limit_offset()?;
    let order = match params.one("order_by") {
        None => None,
        Some(v) => {
            let (field, _) = direction(v);
            if !["phone_number", "email_address", "created_at", "first_name", "last_name", "username"].contains(&field) {
                return Err(invalid_param(
                    "order_by",
                    "order_by must be phone_number, email_address, created_at, first_name, last_name or username, optionally prefixed with + or -",
                ));
            }
            Some(UserOrder::parse(Some(v))?)
        }
    };
    let org = shared.store.organization(&id)?;
    let mut members: Vec<(Value, crate::model::User)> = shared
        .store
        .memberships(&org.id)?
        .into_iter()
        .filter(|m| roles.is_empty() || m["role"].as_str().is_some_and(|r| roles.iter().any(|x| x == r)))
        .filter_map(|m| {
            let user = shared.store.user(m["public_user_data"]["user_id"].as_str()?).ok()?;
            let orgs = shared.store.organizations_of(&user.id);
            filter.matches(&user, &orgs).then_some((m, user))
        })
        .collect();
    if let Some(order) = order {
        if order.field == crate::query::UserOrderField::CreatedAt {
            members.sort_by_key(|(m, _)| m["created_at"].as_i64());
            if order.descending {
                members.reverse();
            }
        } else {
            members.sort_by(|(_, a), (_, b)| order.compare(a, b));
        }
    }
    Ok(paged(members.into_iter().map(|(m, _)| m).collect(), limit, offset))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateMembershipBody {
    user_id: String,
    role: String,
    #[serde(default)]
    public_metadata: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    private_metadata: Option<serde_json::Map<String, Value>>,
}

async fn create_membership(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: CreateMembershipBody = parse_body(&body)?;
    let org = shared.store.organization(&id)?;
    Ok(Json(shared.store.add_membership(&org.id, &b.user_id, &b.role, b.public_metadata.map(Value::Object), b.private_metadata.map(Value::Object))?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateMembershipBody {
    role: String,
}

async fn update_membership(State(shared): State<Shared>, Path((id, user_id)): Path<(String, String)>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: UpdateMembershipBody = parse_body(&body)?;
    let org = shared.store.organization(&id)?;
    Ok(Json(shared.store.update_membership_role(&org.id, &user_id, &b.role)?))
}

async fn delete_membership(State(shared): State<Shared>, Path((id, user_id)): Path<(String, String)>) -> Result<Json<Value>, ClerkApiError> {
    let org = shared.store.organization(&id)?;
    Ok(Json(shared.store.delete_membership(&org.id, &user_id)?))
}

async fn user_memberships(State(shared): State<Shared>, Path(user_id): Path<String>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
    let params = Params::parse(raw.as_deref(), &["limit", "offset"])?;
    let (limit, offset) = params.limit_offset()?;
    shared.store.user(&user_id)?;
    let mut items = Vec::new();
    for org in shared.store.organizations_of(&user_id) {
        items.extend(shared.store.memberships(&org)?.into_iter().filter(|m| m["public_user_data"]["user_id"] == user_id.as_str()));
    }
    Ok(paged(items, limit, offset))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApiKeyBody {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    name: String,
    #[serde(default)]
    description: Option<String>,
    subject: String,
    #[serde(default)]
    claims: Option<Value>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    seconds_until_expiration: Option<f64>,
}

async fn create_api_key(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: CreateApiKeyBody = parse_body(&body)?;
    if b.kind.as_deref().is_some_and(|k| k != "api_key") {
        return Err(invalid_param("type", "type must be api_key"));
    }
    if b.name.trim().len() < 3 {
        return Err(invalid_param("name", "name must be at least 3 characters"));
    }
    let _ = b.description;
    let subject_ok = ["user_", "org_", "mch_"].iter().any(|p| b.subject.starts_with(p));
    if !subject_ok {
        return Err(invalid_param("subject", "subject must be a user, organization or machine id"));
    }
    if b.subject.starts_with("user_") {
        shared.store.user(&b.subject)?;
    }
    if b.subject.starts_with("org_") {
        shared.store.organization(&b.subject)?;
    }
    let seconds = match b.seconds_until_expiration {
        Some(s) if s <= 0.0 || !s.is_finite() => return Err(invalid_param("seconds_until_expiration", "seconds_until_expiration must be greater than 0")),
        #[allow(clippy::cast_possible_truncation)]
        Some(s) => Some(s.ceil() as i64),
        None => None,
    };
    let token = shared.machine_tokens.issue(crate::machine::NewMachineToken {
        kind: crate::machine::MachineTokenKind::ApiKey,
        subject: b.subject,
        name: b.name,
        scopes: b.scopes,
        claims: b.claims,
        seconds_until_expiration: seconds,
        created_by: b.created_by,
    });
    Ok(Json(token.to_json(shared.store.clock().now_ms(), true)))
}

fn machine_error(e: crate::machine::MachineTokenError) -> ClerkApiError {
    ClerkApiError::new(axum::http::StatusCode::NOT_FOUND, "resource_not_found", "not found", &format!("The token is invalid: {e}"))
}

#[derive(Deserialize)]
struct VerifyBody {
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

impl VerifyBody {
    fn presented(self, allowed: &[&str]) -> Result<String, ClerkApiError> {
        let fields = [("secret", self.secret), ("token", self.token), ("access_token", self.access_token)];
        fields
            .into_iter()
            .find(|(name, v)| v.is_some() && allowed.contains(name))
            .and_then(|(_, v)| v)
            .ok_or_else(|| ClerkApiError::unprocessable(&format!("one of {} is required", allowed.join(", "))).with_meta(json!({ "param_name": allowed[0] })))
    }
}

async fn verify_api_key(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let secret = parse_body::<VerifyBody>(&body)?.presented(&["secret"])?;
    shared.machine_tokens.verify(crate::machine::MachineTokenKind::ApiKey, &secret).map(Json).map_err(machine_error)
}

async fn verify_m2m_token(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    // The spec names the field `token`; clerk-backend-api sends `secret`. Both are read.
    let token = parse_body::<VerifyBody>(&body)?.presented(&["token", "secret"])?;
    shared.machine_tokens.verify(crate::machine::MachineTokenKind::M2m, &token).map(Json).map_err(machine_error)
}

async fn verify_oauth_token(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let token = parse_body::<VerifyBody>(&body)?.presented(&["access_token", "secret"])?;
    shared.machine_tokens.verify(crate::machine::MachineTokenKind::OAuth, &token).map(Json).map_err(machine_error)
}

async fn revoke_machine_token(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    #[derive(Deserialize, Default)]
    struct Revoke {
        #[serde(default)]
        revocation_reason: Option<String>,
    }
    let b: Revoke = parse_body(&body)?;
    let token = shared.machine_tokens.revoke(&id, b.revocation_reason.as_deref().unwrap_or("revoked")).map_err(machine_error)?;
    Ok(Json(token.to_json(shared.store.clock().now_ms(), false)))
}

/// `GET /v1/clients/handshake_payload?nonce=…`: the `Set-Cookie` directives FAPI kept under
/// the nonce of a handshake (`@clerk/backend` `clients.getHandshakePayload`).
async fn handshake_payload(State(shared): State<Shared>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
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
