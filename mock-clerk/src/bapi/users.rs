//! Users: list, count, create, read, update, metadata merge, delete.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ClerkApiError;
use crate::model::NewUser;
use crate::query::{Params, UserFilter, UserOrder, USER_FILTER_PARAMS, USER_PAGING_PARAMS};
use crate::state::Shared;
use crate::validate::{check_fields, metadata, parse_body, parse_required_body, Field, Kind};

pub(super) async fn list_users(State(shared): State<Shared>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
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

pub(super) async fn count_users(State(shared): State<Shared>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
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

pub(super) async fn merge_user_metadata(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: MetadataBody = parse_body(&body)?;
    check_fields(&body, METADATA_FIELDS)?;
    // Objects only: the spec's UpdateUserMetadata properties are not nullable.
    let public = metadata("public_metadata", b.public_metadata, false)?.map(Value::Object);
    let private = metadata("private_metadata", b.private_metadata, false)?.map(Value::Object);
    let unsafe_ = metadata("unsafe_metadata", b.unsafe_metadata, false)?.map(Value::Object);
    Ok(Json(shared.store.merge_user_metadata(&id, public.as_ref(), private.as_ref(), unsafe_.as_ref())?.to_json()))
}

pub(super) async fn get_user(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ClerkApiError> {
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

pub(super) async fn create_user(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
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

pub(super) async fn update_user(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
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

pub(super) async fn delete_user(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ClerkApiError> {
    shared.store.delete_user(&id)?;
    Ok(Json(json!({ "object": "user", "id": id, "deleted": true })))
}
