//! Organizations and their memberships.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::paged;
use crate::error::ClerkApiError;
use crate::query::{Params, UserFilter, UserOrder};
use crate::state::Shared;
use crate::validate::{invalid_param, parse_body, parse_required_body};

/// `+field`/`-field`/`field` → (field, descending); `+` may arrive as a space.
fn direction(value: &str) -> (&str, bool) {
    match value.as_bytes().first() {
        Some(b'-') => (&value[1..], true),
        Some(b'+' | b' ') => (&value[1..], false),
        _ => (value, false),
    }
}

pub(super) async fn list_organizations(State(shared): State<Shared>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
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

pub(super) async fn create_organization(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
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

pub(super) async fn get_organization(State(shared): State<Shared>, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
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

pub(super) async fn update_organization(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
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

pub(super) async fn delete_organization(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ClerkApiError> {
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

pub(super) async fn list_memberships(State(shared): State<Shared>, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
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

pub(super) async fn create_membership(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: CreateMembershipBody = parse_required_body(&body)?;
    let org = shared.store.organization(&id)?;
    Ok(Json(shared.store.add_membership(&org.id, &b.user_id, &b.role, b.public_metadata.map(Value::Object), b.private_metadata.map(Value::Object))?))
}

#[derive(Deserialize)]
// No `deny_unknown_fields`: the spec admits other properties here (no `additionalProperties: false`).
struct UpdateMembershipBody {
    role: String,
}

pub(super) async fn update_membership(
    State(shared): State<Shared>,
    Path((id, user_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ClerkApiError> {
    let b: UpdateMembershipBody = parse_required_body(&body)?;
    let org = shared.store.organization(&id)?;
    Ok(Json(shared.store.update_membership_role(&org.id, &user_id, &b.role)?))
}

pub(super) async fn delete_membership(State(shared): State<Shared>, Path((id, user_id)): Path<(String, String)>) -> Result<Json<Value>, ClerkApiError> {
    let org = shared.store.organization(&id)?;
    Ok(Json(shared.store.delete_membership(&org.id, &user_id)?))
}

pub(super) async fn user_memberships(State(shared): State<Shared>, Path(user_id): Path<String>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ClerkApiError> {
    let params = Params::parse(raw.as_deref(), &["limit", "offset"])?;
    let (limit, offset) = params.limit_offset()?;
    shared.store.user(&user_id)?;
    let mut items = Vec::new();
    for org in shared.store.organizations_of(&user_id) {
        items.extend(shared.store.memberships(&org)?.into_iter().filter(|m| m["public_user_data"]["user_id"] == user_id.as_str()));
    }
    Ok(paged(items, limit, offset))
}
