//! Machine tokens: API keys, M2M and OAuth tokens (issue, verify, revoke).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ClerkApiError;
use crate::state::Shared;
use crate::validate::{invalid_param, parse_body_400};

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

pub(super) async fn create_api_key(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
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

pub(super) async fn verify_api_key(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let secret = parse_body_400::<VerifyBody>(&body)?.presented(&["secret"])?;
    shared.machine_tokens.verify(crate::machine::MachineTokenKind::ApiKey, &secret).map(Json).map_err(machine_error)
}

pub(super) async fn verify_m2m_token(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    // The spec names the field `token`; clerk-backend-api sends `secret`. Both are read.
    let token = parse_body_400::<VerifyBody>(&body)?.presented(&["token", "secret"])?;
    shared.machine_tokens.verify(crate::machine::MachineTokenKind::M2m, &token).map(Json).map_err(machine_error)
}

pub(super) async fn verify_oauth_token(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let token = parse_body_400::<VerifyBody>(&body)?.presented(&["access_token", "secret"])?;
    shared.machine_tokens.verify(crate::machine::MachineTokenKind::OAuth, &token).map(Json).map_err(machine_error)
}

pub(super) async fn revoke_machine_token(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
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
