//! The admin API of a running mock (under `/_mock` on the Backend API listener, behind the
//! secret key): seed users and templates, mint any token — forged ones included — rotate
//! keys, inject faults, move the clock, read the request record.
//!
//! ```text
//! curl -s -H "Authorization: Bearer $SK" -d '{"email_addresses":["a@example.com"]}' $API/_mock/users
//! curl -s -H "Authorization: Bearer $SK" -d '{"user_id":"user_…"}' $API/_mock/sessions
//! curl -s -H "Authorization: Bearer $SK" -d '{"session_id":"sess_…","forge":{"expired_by":30}}' $API/_mock/tokens
//! curl -s -H "Authorization: Bearer $SK" -d '{"session_id":"sess_…","origin":"http://localhost:3000"}' $API/_mock/browser
//! ```

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ClerkApiError;
use crate::faults::fault_from_json;
use crate::forge::ForgedToken;
use crate::instance::Rotation;
use crate::model::{ActiveOrganization, NewUser, SessionStatus};
use crate::state::Shared;
use crate::templates::TemplateSpec;
use crate::tokens::TokenVersion;

pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/_mock/info", get(info))
        .route("/_mock/users", post(create_user))
        .route("/_mock/sessions", post(create_session))
        .route("/_mock/templates", post(create_template))
        .route("/_mock/tokens", post(mint_token))
        .route("/_mock/browser", post(browser_sign_in))
        .route("/_mock/rotate", post(rotate))
        .route("/_mock/faults", post(add_fault).delete(clear_faults).get(list_faults))
        .route("/_mock/clock", post(clock).get(clock_now))
        .route("/_mock/requests", get(requests).delete(reset_requests))
        .merge(crate::webhooks::router())
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ClerkApiError> {
    let bytes: &[u8] = if body.is_empty() { b"{}" } else { body };
    serde_json::from_slice(bytes).map_err(|e| ClerkApiError::unprocessable(&format!("request body is invalid: {e}")))
}

/// Connection details of this instance (the ready line of `serve` without the URLs).
pub fn instance_info(shared: &Shared) -> Value {
    let i = &shared.instance;
    json!({
        "instance_id": i.id(),
        "fapi_host": i.fapi_host(),
        "issuer": i.issuer(),
        "publishable_key": i.publishable_key(),
        "secret_key": i.secret_key().expose(),
        "webhook_secret": i.webhook_secret(),
        "pem_public_key": i.pem_public_key(),
        "kid": i.active_key().kid(),
    })
}

async fn info(State(shared): State<Shared>) -> Json<Value> {
    Json(instance_info(&shared))
}

async fn create_user(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let new: NewUser = parse(&body)?;
    Ok(Json(shared.store.create_user(new)?.to_json()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionBody {
    user_id: String,
    #[serde(default)]
    status: SessionStatus,
    #[serde(default)]
    organization: Option<ActiveOrganization>,
}

async fn create_session(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: SessionBody = parse(&body)?;
    Ok(Json(shared.store.create_session_with(&b.user_id, b.status, b.organization)?.to_json()))
}

async fn create_template(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let spec: TemplateSpec = parse(&body)?;
    let template = spec.build(shared.instance.clock().now_ms())?;
    shared.store.insert_template(template.clone());
    Ok(Json(serde_json::to_value(template).unwrap_or(Value::Null)))
}

/// One forging step per field; see [`ForgedToken`] for what each does.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForgeSpec {
    #[serde(default)]
    claims: serde_json::Map<String, Value>,
    #[serde(default)]
    remove_claims: Vec<String>,
    #[serde(default)]
    headers: serde_json::Map<String, Value>,
    #[serde(default)]
    remove_headers: Vec<String>,
    #[serde(default)]
    expired_by: Option<i64>,
    #[serde(default)]
    exp_offset: Option<i64>,
    #[serde(default)]
    nbf_offset: Option<i64>,
    #[serde(default)]
    iat_offset: Option<i64>,
    #[serde(default)]
    alg_none: bool,
    #[serde(default)]
    hs256_with_public_key: bool,
    #[serde(default)]
    unknown_kid: bool,
    #[serde(default)]
    tampered: Option<(String, Value)>,
    #[serde(default)]
    v1: bool,
}

impl ForgeSpec {
    pub(crate) fn apply(self, mut t: ForgedToken, shared: &Shared) -> ForgedToken {
        if let Some(s) = self.expired_by {
            t = t.expired_by(s);
        }
        if let Some(s) = self.exp_offset {
            t = t.exp_offset(s);
        }
        if let Some(s) = self.nbf_offset {
            t = t.nbf_offset(s);
        }
        if let Some(s) = self.iat_offset {
            t = t.iat_offset(s);
        }
        for (k, v) in self.claims {
            t = t.claim(&k, v);
        }
        for k in &self.remove_claims {
            t = t.without_claim(k);
        }
        for (k, v) in self.headers {
            t = t.header(&k, v);
        }
        for k in &self.remove_headers {
            t = t.without_header(k);
        }
        if self.unknown_kid {
            t = t.unknown_kid();
        }
        if self.v1 {
            t = t.v1();
        }
        if self.alg_none {
            t = t.alg_none();
        }
        if self.hs256_with_public_key {
            t = t.hs256_with_public_key(&shared.instance);
        }
        if let Some((claim, value)) = self.tampered {
            t = t.tampered(&claim, value);
        }
        t
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    session_id: String,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    version: TokenVersion,
    /// Return the session id itself, the classic frontend bug.
    #[serde(default)]
    session_id_instead: bool,
    #[serde(default)]
    forge: Option<ForgeSpec>,
}

async fn mint_token(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: TokenRequest = parse(&body)?;
    if b.session_id_instead {
        shared.store.session(&b.session_id)?;
        return Ok(Json(json!({ "object": "token", "jwt": b.session_id })));
    }
    let Some(spec) = b.forge else {
        // A genuine token: the same minting path (and session check) as FAPI and BAPI.
        let jwt = match &b.template {
            None => shared.mint_session_token(&b.session_id, b.origin.as_deref(), b.version)?,
            Some(name) => shared.mint_template_token(&b.session_id, name, b.origin.as_deref())?,
        };
        return Ok(Json(json!({ "object": "token", "jwt": jwt })));
    };
    // Forging builds from any session, active or not: negative tests need that.
    let session = shared.store.session(&b.session_id)?;
    let parts = match &b.template {
        None => crate::tokens::session_token(&shared.instance, &session, b.origin.as_deref(), b.version),
        Some(name) => {
            let template = shared.store.template(name)?;
            let user = shared.store.user(&session.user_id)?;
            crate::tokens::template_token(&shared.instance, &template, &session, &user, b.origin.as_deref())?
        }
    };
    let forged = spec.apply(ForgedToken::new(parts, shared.instance.clock().now_unix()), &shared);
    Ok(Json(json!({ "object": "token", "jwt": forged.build()? })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// Keep the old key in the JWKS this long; absent: drop it at once.
    #[serde(default)]
    overlap_secs: Option<u64>,
}

async fn rotate(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: RotateBody = parse(&body)?;
    let rotation = b.overlap_secs.map_or(Rotation::DropOld, |s| Rotation::KeepOldFor(Duration::from_secs(s)));
    let kid = shared.instance.rotate_key(rotation)?;
    Ok(Json(json!({ "kid": kid, "keys": shared.instance.jwks() })))
}

async fn add_fault(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let value: Value = parse(&body)?;
    let fault = fault_from_json(value).map_err(|e| ClerkApiError::unprocessable(&e))?;
    shared.faults.inject(fault);
    Ok(Json(json!({ "faults": shared.faults.active() })))
}

async fn clear_faults(State(shared): State<Shared>) -> Json<Value> {
    shared.faults.clear();
    Json(json!({ "faults": [] }))
}

async fn list_faults(State(shared): State<Shared>) -> Json<Value> {
    Json(json!({ "faults": shared.faults.active() }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    #[serde(default)]
    advance_secs: Option<i64>,
    #[serde(default)]
    offset_secs: Option<i64>,
    #[serde(default)]
    freeze_at_unix: Option<i64>,
    #[serde(default)]
    reset: bool,
}

async fn clock(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: ClockBody = parse(&body)?;
    let clock = shared.instance.clock();
    // Checked before anything moves: a clock outside years 0..=9999 is refused, never wrapped.
    let within = |name: &str, secs: i64| {
        if secs.checked_abs().is_some_and(|a| a <= crate::validate::MAX_CLOCK_SECS) {
            Ok(secs)
        } else {
            Err(ClerkApiError::unprocessable(&format!("{name} must be within ±{} seconds (year 9999)", crate::validate::MAX_CLOCK_SECS)))
        }
    };
    let freeze = b.freeze_at_unix.map(|t| within("freeze_at_unix", t)).transpose()?;
    let offset = b.offset_secs.map(|s| within("offset_secs", s)).transpose()?;
    let advance = b.advance_secs.map(|s| within("advance_secs", s)).transpose()?;
    if let Some(s) = advance {
        let current = if b.reset { 0 } else { offset.map_or(clock.offset_ms() / 1000, |o| o) };
        within("the clock's offset after advance_secs", current.saturating_add(s))?;
    }
    if b.reset {
        clock.reset();
    }
    if let Some(t) = freeze {
        clock.freeze_at_unix(t);
    }
    if let Some(s) = offset {
        clock.set_offset_secs(s);
    }
    if let Some(s) = advance {
        clock.shift_ms(s * 1000);
    }
    Ok(clock_now(State(shared)).await)
}

async fn clock_now(State(shared): State<Shared>) -> Json<Value> {
    let clock = shared.instance.clock();
    Json(json!({ "now_unix": clock.now_unix(), "offset_ms": clock.offset_ms() }))
}

async fn requests(State(shared): State<Shared>) -> Json<Value> {
    Json(json!({ "requests": shared.faults.requests() }))
}

async fn reset_requests(State(shared): State<Shared>) -> Json<Value> {
    shared.faults.reset_requests();
    Json(json!({ "requests": [] }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BrowserRequest {
    session_id: String,
    #[serde(default)]
    origin: Option<String>,
}

/// Signs a browser in: the cookies `clerk-js` holds on the app (`cookies`, plain and
/// suffixed, and the `cookie_header` it sends), and what names its client to FAPI
/// (`dev_browser` on development instances, `client_cookie` on production ones).
async fn browser_sign_in(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: BrowserRequest = parse(&body)?;
    let browser = shared.browser_sign_in(&b.session_id, b.origin.as_deref())?;
    let cookies: serde_json::Map<String, Value> = browser.cookies().into_iter().map(|(n, v)| (n, Value::String(v))).collect();
    Ok(Json(json!({
        "client_id": browser.client.id,
        "session_id": browser.session_id,
        "cookie_suffix": browser.suffix,
        "cookies": cookies,
        "cookie_header": browser.cookie_header(),
        "dev_browser": browser.development.then_some(&browser.client.dev_browser),
        "client_cookie": (!browser.development).then_some(&browser.client.client_cookie),
    })))
}
