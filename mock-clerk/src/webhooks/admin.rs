//! Webhook routes of the admin API (Backend API listener, behind the secret key).
//!
//! ```text
//! POST   /_mock/webhooks/endpoints     {url, secret?, events?}           register
//! GET    /_mock/webhooks/endpoints                                        list
//! DELETE /_mock/webhooks/endpoints/{id}
//! POST   /_mock/webhooks/send          {type, data? | user_id? | session_id?, http_request?}
//! POST   /_mock/webhooks/redeliver     {message_id}                       same svix-id, now
//! POST   /_mock/webhooks/forge         {forgery, endpoint_id?, type, data? | user_id? | session_id?}
//! GET    /_mock/webhooks/log           {messages, attempts};  DELETE clears it
//! GET    /_mock/webhooks/settings;  POST {time_scale?, timeout_ms?, schedule_secs?}
//! ```

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{EndpointSpec, Forgery, HttpRequest, WebhookError, WebhookEvent, WebhookSettings};
use crate::error::ClerkApiError;
use crate::state::Shared;
use crate::store::StoreEvent;

pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/_mock/webhooks/endpoints", post(add_endpoint).get(list_endpoints))
        .route("/_mock/webhooks/endpoints/{id}", delete(remove_endpoint))
        .route("/_mock/webhooks/send", post(send))
        .route("/_mock/webhooks/redeliver", post(redeliver))
        .route("/_mock/webhooks/forge", post(forge))
        .route("/_mock/webhooks/log", get(log).delete(clear_log))
        .route("/_mock/webhooks/settings", get(settings).post(set_settings))
}

impl From<WebhookError> for ClerkApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::UnknownMessage(_) | WebhookError::UnknownEndpoint(_) => {
                Self::new(StatusCode::NOT_FOUND, "resource_not_found", "not found", &e.to_string())
            }
            other => Self::unprocessable(&other.to_string()),
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ClerkApiError> {
    let bytes: &[u8] = if body.is_empty() { b"{}" } else { body };
    serde_json::from_slice(bytes).map_err(|e| ClerkApiError::unprocessable(&format!("request body is invalid: {e}")))
}

async fn add_endpoint(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let spec: EndpointSpec = parse(&body)?;
    Ok(Json(json!(shared.webhooks.register(spec)?)))
}

async fn list_endpoints(State(shared): State<Shared>) -> Json<Value> {
    Json(json!({ "endpoints": shared.webhooks.endpoints() }))
}

async fn remove_endpoint(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ClerkApiError> {
    Ok(Json(json!(shared.webhooks.remove_endpoint(&id)?)))
}

/// An event named by its type and either its data or the store object it is about.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    http_request: Option<HttpRequest>,
    /// Only for `/forge`.
    #[serde(default)]
    forgery: Option<Forgery>,
    /// Only for `/forge` (default: the first endpoint).
    #[serde(default)]
    endpoint_id: Option<String>,
}

impl EventBody {
    fn event(&self, shared: &Shared) -> Result<WebhookEvent, ClerkApiError> {
        let t = self.event_type.as_str();
        let event: WebhookEvent = match (&self.data, &self.user_id, &self.session_id) {
            (Some(data), None, None) => WebhookEvent::new(t, data.clone()),
            (None, Some(id), None) if t == "user.deleted" => {
                // The user may still exist (a test announcing a deletion first): carry its external_id like Clerk.
                let external_id = shared.store.user(id).ok().and_then(|u| u.external_id);
                StoreEvent::UserDeleted { id: id.clone(), external_id }.into()
            }
            (None, Some(id), None) if t == "user.created" => StoreEvent::UserCreated(shared.store.user(id)?).into(),
            (None, Some(id), None) if t == "user.updated" => StoreEvent::UserUpdated(shared.store.user(id)?).into(),
            (None, None, Some(id)) if t.starts_with("session.") => {
                let session = shared.store.session(id)?;
                match t {
                    "session.created" => StoreEvent::SessionCreated(session),
                    "session.ended" => StoreEvent::SessionEnded(session),
                    "session.revoked" => StoreEvent::SessionRevoked(session),
                    "session.removed" => StoreEvent::SessionRemoved(session),
                    "session.pending" => StoreEvent::SessionPending(session),
                    _ => return Err(ClerkApiError::unprocessable(&format!("unknown session event type '{t}'; give `data` instead"))),
                }
                .into()
            }
            _ => {
                return Err(ClerkApiError::unprocessable(
                    "give exactly one of `data`, `user_id` (user.created|updated|deleted) or `session_id` (session.created|ended|revoked|removed)",
                ))
            }
        };
        Ok(match &self.http_request {
            Some(r) => event.http_request(&r.client_ip, &r.user_agent),
            None => event,
        })
    }
}

async fn send(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: EventBody = parse(&body)?;
    if b.forgery.is_some() || b.endpoint_id.is_some() {
        return Err(ClerkApiError::unprocessable("`forgery` and `endpoint_id` belong to /_mock/webhooks/forge"));
    }
    let message = shared.webhooks.send_event(b.event(&shared)?);
    Ok(Json(json!(message)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeliverBody {
    message_id: String,
}

async fn redeliver(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: RedeliverBody = parse(&body)?;
    Ok(Json(json!({ "attempts": shared.webhooks.redeliver(&b.message_id).await? })))
}

async fn forge(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: EventBody = parse(&body)?;
    let forgery = b.forgery.ok_or_else(|| ClerkApiError::unprocessable(&format!("`forgery` is required, one of {}", json!(Forgery::ALL))))?;
    let endpoints = shared.webhooks.endpoints();
    let endpoint = match &b.endpoint_id {
        Some(id) => endpoints.iter().find(|e| &e.id == id).ok_or_else(|| WebhookError::UnknownEndpoint(id.clone()))?,
        None => endpoints.first().ok_or_else(|| WebhookError::UnknownEndpoint("(none registered)".into()))?,
    };
    let event = b.event(&shared)?;
    Ok(Json(json!(shared.webhooks.forge(forgery, endpoint, event).await)))
}

async fn log(State(shared): State<Shared>) -> Json<Value> {
    Json(json!({ "messages": shared.webhooks.messages(), "attempts": shared.webhooks.deliveries() }))
}

async fn clear_log(State(shared): State<Shared>) -> Json<Value> {
    shared.webhooks.clear_log();
    Json(json!({ "messages": [], "attempts": [] }))
}

fn settings_json(s: &WebhookSettings) -> Value {
    json!({
        "time_scale": s.time_scale,
        "timeout_ms": u64::try_from(s.timeout.as_millis()).unwrap_or(u64::MAX),
        "schedule_secs": s.schedule.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
    })
}

async fn settings(State(shared): State<Shared>) -> Json<Value> {
    Json(settings_json(&shared.webhooks.settings()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    #[serde(default)]
    time_scale: Option<f64>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    schedule_secs: Option<Vec<f64>>,
}

async fn set_settings(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, ClerkApiError> {
    let b: SettingsBody = parse(&body)?;
    let mut s = shared.webhooks.settings();
    if let Some(scale) = b.time_scale {
        if !(scale.is_finite() && scale >= 0.0) {
            return Err(ClerkApiError::unprocessable("`time_scale` must be a non-negative number"));
        }
        s.time_scale = scale;
    }
    if let Some(ms) = b.timeout_ms {
        s.timeout = Duration::from_millis(ms);
    }
    if let Some(schedule) = b.schedule_secs {
        s.schedule = schedule
            .into_iter()
            .map(|secs| Duration::try_from_secs_f64(secs).map_err(|_| ClerkApiError::unprocessable("`schedule_secs` must hold non-negative numbers")))
            .collect::<Result<_, _>>()?;
    }
    shared.webhooks.set_settings(s.clone());
    Ok(Json(settings_json(&s)))
}
