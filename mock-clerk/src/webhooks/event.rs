//! What a webhook says: the event type, its `data`, and the envelope Clerk wraps them in.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::store::StoreEvent;

/// The request that caused an event (`event_attributes.http_request`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    /// The client's IP address.
    pub client_ip: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
}

impl Default for HttpRequest {
    /// Changes made through the mock carry no browser request: a local client stands in.
    fn default() -> Self {
        Self { client_ip: "127.0.0.1".into(), user_agent: concat!("mock-clerk/", env!("CARGO_PKG_VERSION")).into() }
    }
}

/// One event to deliver: a Clerk event type and its `data`.
///
/// Store changes convert into it (`StoreEvent::UserCreated(user).into()`); any other event can
/// be built by hand:
///
/// ```
/// use mock_clerk::webhooks::WebhookEvent;
/// let event = WebhookEvent::new("user.deleted", serde_json::json!({"object": "user", "id": "user_1", "deleted": true}))
///     .http_request("203.0.113.7", "Mozilla/5.0");
/// assert_eq!(event.event_type(), "user.deleted");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookEvent {
    event_type: String,
    data: Value,
    http_request: HttpRequest,
}

impl WebhookEvent {
    /// An event of `event_type` (e.g. `user.updated`) carrying `data`.
    #[must_use]
    pub fn new(event_type: impl Into<String>, data: Value) -> Self {
        Self { event_type: event_type.into(), data, http_request: HttpRequest::default() }
    }

    /// Sets `event_attributes.http_request` (default `127.0.0.1`, `mock-clerk/<version>`).
    #[must_use]
    pub fn http_request(mut self, client_ip: &str, user_agent: &str) -> Self {
        self.http_request = HttpRequest { client_ip: client_ip.into(), user_agent: user_agent.into() };
        self
    }

    /// The event type, e.g. `session.revoked`.
    #[must_use]
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The `data` payload.
    #[must_use]
    pub fn data(&self) -> &Value {
        &self.data
    }

    pub(crate) fn data_mut(&mut self) -> &mut Value {
        &mut self.data
    }

    /// The JSON body Clerk posts: `{data, object:"event", type, timestamp (ms), instance_id,
    /// event_attributes:{http_request:{client_ip, user_agent}}}`.
    #[must_use]
    pub fn envelope(&self, instance_id: &str, timestamp_ms: i64) -> Value {
        json!({
            "data": self.data,
            "object": "event",
            "type": self.event_type,
            "timestamp": timestamp_ms,
            "instance_id": instance_id,
            "event_attributes": { "http_request": self.http_request },
        })
    }
}

impl From<StoreEvent> for WebhookEvent {
    fn from(event: StoreEvent) -> Self {
        let mut data = event.data();
        if let (
            StoreEvent::SessionCreated(_)
            | StoreEvent::SessionEnded(_)
            | StoreEvent::SessionRevoked(_)
            | StoreEvent::SessionRemoved(_)
            | StoreEvent::SessionPending(_),
            Some(obj),
        ) = (&event, data.as_object_mut())
        {
            // The webhook Session schema (2025-04-15) is closed and has no `tasks`: the BAPI
            // session has it, the webhook payload does not.
            obj.remove("tasks");
        }
        Self::new(event.event_type(), data)
    }
}

impl From<&StoreEvent> for WebhookEvent {
    fn from(event: &StoreEvent) -> Self {
        event.clone().into()
    }
}
