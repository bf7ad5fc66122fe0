//! Deliveries an attacker (or a broken proxy) would send, for negative tests of a receiver.
//! Each breaks exactly one thing; everything else is genuine.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::svix::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{SentRequest, WebhookSecret};

/// How a forged delivery is broken. A receiver using Svix's verifier rejects each one.
///
/// ```no_run
/// # async fn demo(mock: &mock_clerk::MockClerk) -> Result<(), mock_clerk::webhooks::WebhookError> {
/// use mock_clerk::webhooks::{Forgery, WebhookEvent};
/// let endpoint = mock.webhooks().add_endpoint("http://127.0.0.1:3000/webhooks/clerk")?;
/// let event = WebhookEvent::new("user.created", serde_json::json!({"object": "user", "id": "user_x"}));
/// let attempt = mock.webhooks().forge(Forgery::StaleTimestamp, &endpoint, event).await;
/// assert_eq!(attempt.status, Some(400), "the receiver must refuse a replay");
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Forgery {
    /// `v1,<random bytes>`.
    BadSignature,
    /// Correctly formed, signed with a secret the receiver does not know.
    WrongSecret,
    /// Signed correctly, `svix-timestamp` ten minutes old (a replay; tolerance is five).
    StaleTimestamp,
    /// Signed correctly, `svix-timestamp` ten minutes ahead.
    FutureTimestamp,
    /// No `svix-id` header.
    MissingId,
    /// No `svix-timestamp` header.
    MissingTimestamp,
    /// No `svix-signature` header.
    MissingSignature,
    /// Signed, then the body changed (`data.id` replaced, or a field added).
    TamperedBody,
}

impl Forgery {
    /// Every forgery, for matrices.
    pub const ALL: [Self; 8] = [
        Self::BadSignature,
        Self::WrongSecret,
        Self::StaleTimestamp,
        Self::FutureTimestamp,
        Self::MissingId,
        Self::MissingTimestamp,
        Self::MissingSignature,
        Self::TamperedBody,
    ];

    /// The request this forgery sends for a message `msg_id` with `body`, at `now_unix`.
    pub(crate) fn request(self, secret: &WebhookSecret, msg_id: &str, now_unix: i64, body: String) -> SentRequest {
        let timestamp = match self {
            Self::StaleTimestamp => now_unix - 600,
            Self::FutureTimestamp => now_unix + 600,
            _ => now_unix,
        };
        let signature = match self {
            Self::BadSignature => {
                let mut bytes = [0_u8; 32];
                rand::thread_rng().fill_bytes(&mut bytes);
                format!("v1,{}", STANDARD.encode(bytes))
            }
            Self::WrongSecret => WebhookSecret::random().sign(msg_id, timestamp, body.as_bytes()),
            _ => secret.sign(msg_id, timestamp, body.as_bytes()),
        };
        let body = if self == Self::TamperedBody { tamper(&body) } else { body };
        let mut headers = vec![];
        if self != Self::MissingId {
            headers.push((ID_HEADER.to_string(), msg_id.to_string()));
        }
        if self != Self::MissingTimestamp {
            headers.push((TIMESTAMP_HEADER.to_string(), timestamp.to_string()));
        }
        if self != Self::MissingSignature {
            headers.push((SIGNATURE_HEADER.to_string(), signature));
        }
        headers.push(("content-type".into(), "application/json".into()));
        SentRequest { headers, body }
    }
}

/// What an attacker changes: the object the receiver would act on.
fn tamper(body: &str) -> String {
    let Ok(mut envelope) = serde_json::from_str::<Value>(body) else {
        return format!("{body} ");
    };
    match envelope.get_mut("data").and_then(Value::as_object_mut) {
        Some(data) if data.contains_key("id") => {
            data.insert("id".into(), Value::String(crate::ids::new_id("user")));
        }
        Some(data) => {
            data.insert("tampered".into(), Value::Bool(true));
        }
        None => match envelope.as_object_mut() {
            Some(obj) => {
                obj.insert("tampered".into(), Value::Bool(true));
            }
            None => return format!("{body} "),
        },
    }
    envelope.to_string()
}
