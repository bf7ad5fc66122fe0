//! Backend API routes (`https://api.clerk.com`), behind the secret key.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ClerkApiError;
use crate::faults::Api;
use crate::model::{NewUser, SessionStatus};
use crate::query::{Params, UserFilter, UserOrder, USER_FILTER_PARAMS, USER_PAGING_PARAMS};
use crate::server::{record_and_fault, Shared};
use crate::validate::{check_fields, invalid_param, metadata, parse_body, parse_body_400, parse_required_body, token_lifetime, Field, Kind};

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
        // A known path with a method the mock does not serve: Clerk's 404 JSON, not an empty 405.
        .method_not_allowed_fallback(crate::server::unknown_route)
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

/// `PATCH /v1/users/{id}/metadata`'s properties: objects, not nullable.
const METADATA_FIELDS: &[Field] =
    &[("public_metadata", Kind::Object, false), ("private_metadata", Kind::Object, false), ("unsafe_metadata", Kind::Object, false)];

#[derive(Deserialize)]
struct MetadataBody {
    #[serde(default)]
    public_metadata: Option<Value>,
    #[serde(default)]
    private_metadata: Option<Value>,
    #[serde(default)]
    unsafe_metadata: Option<Value>,
}

async fn merge_user_metadata(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: MetadataBody = parse_body(&body)?;
    check_fields(&body, METADATA_FIELDS)?;
    // Objects only: the spec's UpdateUserMetadata properties are not nullable.
    let public = metadata("public_metadata", b.public_metadata, false)?.map(Value::Object);
    let private = metadata("private_metadata", b.private_metadata, false)?.map(Value::Object);
    let unsafe_ = metadata("unsafe_metadata", b.unsafe_metadata, false)?.map(Value::Object);
    Ok(Json(shared.store.merge_user_metadata(&id, public.as_ref(), private.as_ref(), unsafe_.as_ref())?.to_json()))
}

async fn get_user(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ClerkApiError> {
    Ok(Json(shared.store.user(&id)?.to_json()))
}

/// `POST /v1/users`'s properties (`additionalProperties: false`), those the mock ignores too.
const CREATE_USER_FIELDS: &[Field] = &[
    ("external_id", Kind::String, true),
    ("first_name", Kind::String, true),
    ("last_name", Kind::String, true),
    ("locale", Kind::String, true),
    ("email_address", Kind::Strings, false),
    ("email_address_identification_status", Kind::Strings, false),
    ("phone_number", Kind::Strings, false),
    ("phone_number_identification_status", Kind::Strings, false),
    ("web3_wallet", Kind::Strings, false),
    ("username", Kind::String, true),
    ("password", Kind::String, true),
    ("password_digest", Kind::String, true),
    ("password_hasher", Kind::String, false),
    ("skip_password_checks", Kind::Bool, true),
    ("skip_password_requirement", Kind::Bool, true),
    ("totp_secret", Kind::String, true),
    ("backup_codes", Kind::Strings, false),
    ("public_metadata", Kind::Object, false),
    ("private_metadata", Kind::Object, false),
    ("unsafe_metadata", Kind::Object, false),
    ("delete_self_enabled", Kind::Bool, true),
    ("legal_accepted_at", Kind::String, true),
    ("skip_legal_checks", Kind::Bool, true),
    ("skip_user_requirement", Kind::Bool, true),
    ("create_organization_enabled", Kind::Bool, true),
    ("create_organizations_limit", Kind::Integer, true),
    ("created_at", Kind::String, true),
    ("bypass_client_trust", Kind::Bool, true),
    ("banned", Kind::Bool, true),
    ("locked", Kind::Bool, true),
];

/// `PATCH /v1/users/{id}`'s properties (`additionalProperties: false`).
const UPDATE_USER_FIELDS: &[Field] = &[
    ("external_id", Kind::String, true),
    ("first_name", Kind::String, true),
    ("last_name", Kind::String, true),
    ("locale", Kind::String, true),
    ("primary_email_address_id", Kind::String, true),
    ("notify_primary_email_address_changed", Kind::Bool, true),
    ("primary_phone_number_id", Kind::String, true),
    ("primary_web3_wallet_id", Kind::String, true),
    ("username", Kind::String, true),
    ("profile_image_id", Kind::String, true),
    ("password", Kind::String, true),
    ("password_digest", Kind::String, false),
    ("password_hasher", Kind::String, false),
    ("skip_password_checks", Kind::Bool, true),
    ("sign_out_of_other_sessions", Kind::Bool, true),
    ("totp_secret", Kind::String, true),
    ("backup_codes", Kind::Strings, false),
    ("public_metadata", Kind::Object, true),
    ("private_metadata", Kind::Object, true),
    ("unsafe_metadata", Kind::Object, true),
    ("delete_self_enabled", Kind::Bool, true),
    ("create_organization_enabled", Kind::Bool, true),
    ("legal_accepted_at", Kind::String, true),
    ("skip_legal_checks", Kind::Bool, true),
    ("create_organizations_limit", Kind::Integer, true),
    ("created_at", Kind::String, true),
    ("bypass_client_trust", Kind::Bool, true),
];

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
    let b: CreateUserBody = parse_required_body(&body)?;
    check_fields(&body, CREATE_USER_FIELDS)?;
    // The instance's sign-up requires an email address (`identification_requirements` of
    // `GET /v1/environment`): Clerk refuses a user without one.
    if b.email_address.iter().all(|e| e.trim().is_empty()) {
        return Err(ClerkApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "form_data_missing",
            "missing data",
            "email_address is required: this instance identifies users by email address",
        )
        .with_meta(json!({ "param_name": "email_address" })));
    }
    let new = NewUser {
        email_addresses: b.email_address,
        phone_numbers: b.phone_number,
        first_name: b.first_name,
        last_name: b.last_name,
        username: b.username,
        external_id: b.external_id,
        public_metadata: metadata("public_metadata", b.public_metadata, false)?.map(Value::Object),
        private_metadata: metadata("private_metadata", b.private_metadata, false)?.map(Value::Object),
        unsafe_metadata: metadata("unsafe_metadata", b.unsafe_metadata, false)?.map(Value::Object),
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
    let b: UpdateUserBody = parse_required_body(&body)?;
    check_fields(&body, UPDATE_USER_FIELDS)?;
    let public = metadata("public_metadata", b.public_metadata, true)?;
    let private = metadata("private_metadata", b.private_metadata, true)?;
    let unsafe_ = metadata("unsafe_metadata", b.unsafe_metadata, true)?;
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
        if let Some(m) = public {
            u.public_metadata = Value::Object(m);
        }
        if let Some(m) = private {
            u.private_metadata = Value::Object(m);
        }
        if let Some(m) = unsafe_ {
            u.unsafe_metadata = Value::Object(m);
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
    let lifetime = token_lifetime(parse_body::<TokenBody>(&body)?.expires_in_seconds)?;
    let jwt = shared.mint_session_token_for(&id, None, crate::tokens::TokenVersion::V2, lifetime)?;
    Ok(Json(json!({ "object": "token", "jwt": jwt })))
}

async fn template_token(State(shared): State<Shared>, Path((id, template)): Path<(String, String)>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let lifetime = token_lifetime(parse_body::<TokenBody>(&body)?.expires_in_seconds)?;
    let jwt = shared.mint_template_token_for(&id, &template, None, lifetime)?;
    Ok(Json(json!({ "object": "token", "jwt": jwt })))
}

/// `GET /v1/jwt_templates`: an array, or with `paginated=true` the `{data, total_count}`
/// envelope; `limit`/`offset` page either.
async fn list_templates(State(shared): State<Shared>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
    let params = Params::parse(raw.as_deref(), &["paginated", "limit", "offset"])?;
    let paginated = params.bool("paginated")?.unwrap_or(false);
    let (limit, offset) = params.limit_offset()?;
    let templates: Vec<Value> = shared.store.templates().iter().filter_map(|t| serde_json::to_value(t).ok()).collect();
    if paginated {
        return Ok(paged(templates, limit, offset));
    }
    Ok(Json(Value::Array(templates.into_iter().skip(offset).take(limit).collect())))
}

fn paged(items: Vec<Value>, limit: usize, offset: usize) -> Json<Value> {
    let total = items.len();
    Json(json!({ "data": items.into_iter().skip(offset).take(limit).collect::<Vec<_>>(), "total_count": total }))
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
    let (field, descending) = direction(params.one("order_by").filter(|v| !v.is_empty()).unwrap_or("-created_at"));
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
// No `deny_unknown_fields`: the spec admits other properties here (no `additionalProperties: false`).
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
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    role_set_key: Option<String>,
}

/// `created_at` of an organisation create/update: RFC 3339 (`2012-10-20T07:15:20.902Z`), as ms.
fn rfc3339_ms(value: &str) -> Result<i64, ClerkApiError> {
    let at = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|e| invalid_param("created_at", &format!("created_at must be an RFC 3339 date-time such as 2012-10-20T07:15:20.902Z: {e}")))?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| invalid_param("created_at", "created_at is out of range"))
}

/// `max_allowed_memberships`: 0 (unlimited) or more.
fn max_memberships(value: Option<i64>) -> Result<Option<i64>, ClerkApiError> {
    match value {
        Some(n) if n < 0 => Err(invalid_param("max_allowed_memberships", "max_allowed_memberships must be 0 (unlimited) or more")),
        other => Ok(other),
    }
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
    let max = max_memberships(b.max_allowed_memberships)?;
    let created_at = b.created_at.as_deref().filter(|s| !s.is_empty()).map(rfc3339_ms).transpose()?;
    let org = shared.store.update_organization(&org.id, |o| {
        if let Some(max) = max {
            o.max_allowed_memberships = max;
        }
        if let Some(at) = created_at {
            o.created_at = at;
        }
        o.role_set_key = b.role_set_key;
    })?;
    Ok(Json(org.to_json()))
}

async fn get_organization(State(shared): State<Shared>, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
    let params = Params::parse(raw.as_deref(), &["include_members_count", "include_missing_member_with_elevated_permissions"])?;
    let include_members_count = params.bool("include_members_count")?.unwrap_or(false);
    params.bool("include_missing_member_with_elevated_permissions")?;
    let mut org = shared.store.organization(&id)?.to_json();
    if !include_members_count {
        if let Some(m) = org.as_object_mut() {
            m.remove("members_count");
        }
    }
    Ok(Json(org))
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
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    role_set_key: Option<String>,
}

async fn update_organization(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: UpdateOrganizationBody = parse_required_body(&body)?;
    let max = max_memberships(b.max_allowed_memberships)?;
    let created_at = b.created_at.as_deref().filter(|s| !s.is_empty()).map(rfc3339_ms).transpose()?;
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
        if let Some(m) = max {
            o.max_allowed_memberships = m;
        }
        if let Some(at) = created_at {
            o.created_at = at;
        }
        if b.role_set_key.is_some() {
            o.role_set_key = b.role_set_key;
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
    let order = match params.one("order_by").filter(|v| !v.is_empty()) {
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
// No `deny_unknown_fields`: the spec admits other properties here (no `additionalProperties: false`).
struct CreateMembershipBody {
    user_id: String,
    role: String,
    #[serde(default)]
    public_metadata: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    private_metadata: Option<serde_json::Map<String, Value>>,
}

async fn create_membership(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: CreateMembershipBody = parse_required_body(&body)?;
    let org = shared.store.organization(&id)?;
    Ok(Json(shared.store.add_membership(&org.id, &b.user_id, &b.role, b.public_metadata.map(Value::Object), b.private_metadata.map(Value::Object))?))
}

#[derive(Deserialize)]
// No `deny_unknown_fields`: the spec admits other properties here (no `additionalProperties: false`).
struct UpdateMembershipBody {
    role: String,
}

async fn update_membership(State(shared): State<Shared>, Path((id, user_id)): Path<(String, String)>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: UpdateMembershipBody = parse_required_body(&body)?;
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
    let b: CreateApiKeyBody = parse_body_400(&body)?;
    if b.kind.as_deref().is_some_and(|k| k != "api_key") {
        return Err(invalid_param("type", "type must be api_key"));
    }
    crate::validate::api_key_name(&b.name)?;
    if b.description.as_ref().is_some_and(|d| d.chars().count() > 255) {
        return Err(invalid_param("description", "description must be at most 255 characters"));
    }
    if !crate::validate::has_id_shape(&b.subject, &["user", "org", "mch", "scim"]) {
        return Err(invalid_param(
            "subject",
            "subject must be a user, organization, machine or SCIM id (user_…, org_…, mch_…, scim_… with 27 characters after the prefix)",
        ));
    }
    if b.created_by.as_ref().is_some_and(|c| !crate::validate::has_id_shape(c, &["user"])) {
        return Err(invalid_param("created_by", "created_by must be a user id (user_… with 27 characters after the prefix)"));
    }
    if b.subject.starts_with("user_") {
        shared.store.user(&b.subject)?;
    }
    if b.subject.starts_with("org_") {
        shared.store.organization(&b.subject)?;
    }
    let seconds = match b.seconds_until_expiration {
        Some(s) if s <= 0.0 || !s.is_finite() => return Err(invalid_param("seconds_until_expiration", "seconds_until_expiration must be greater than 0")),
        // Refused past a millennium rather than wrapped past what the clock holds.
        #[allow(clippy::cast_precision_loss)]
        Some(s) if s > crate::validate::MAX_SECONDS_AHEAD as f64 => {
            return Err(invalid_param("seconds_until_expiration", &format!("seconds_until_expiration must be at most {}", crate::validate::MAX_SECONDS_AHEAD)))
        }
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
        fields.into_iter().find(|(name, v)| v.is_some() && allowed.contains(name)).and_then(|(_, v)| v).ok_or_else(|| {
            ClerkApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "form_param_missing",
                "missing parameter",
                &format!("one of {} is required", allowed.join(", ")),
            )
            .with_meta(json!({ "param_name": allowed[0] }))
        })
    }
}

async fn verify_api_key(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let secret = parse_body_400::<VerifyBody>(&body)?.presented(&["secret"])?;
    shared.machine_tokens.verify(crate::machine::MachineTokenKind::ApiKey, &secret).map(Json).map_err(machine_error)
}

async fn verify_m2m_token(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    // The spec names the field `token`; clerk-backend-api sends `secret`. Both are read.
    let token = parse_body_400::<VerifyBody>(&body)?.presented(&["token", "secret"])?;
    shared.machine_tokens.verify(crate::machine::MachineTokenKind::M2m, &token).map(Json).map_err(machine_error)
}

async fn verify_oauth_token(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let token = parse_body_400::<VerifyBody>(&body)?.presented(&["access_token", "secret"])?;
    shared.machine_tokens.verify(crate::machine::MachineTokenKind::OAuth, &token).map(Json).map_err(machine_error)
}

async fn revoke_machine_token(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Revoke {
        #[serde(default)]
        revocation_reason: Option<String>,
    }
    let b: Revoke = parse_body_400(&body)?;
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
