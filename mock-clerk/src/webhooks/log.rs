//! The delivery log: every message sent and every attempt made, with waits that wake on
//! change (never a sleep).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

use super::{Forgery, WebhookError};

/// A webhook message: one event, signed and sent with one `svix-id` to every endpoint that
/// accepts its type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `msg_…`, the `svix-id` of every attempt.
    pub id: String,
    /// e.g. `user.created`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The exact JSON body posted.
    pub body: String,
    /// Ids of the endpoints it was sent to.
    pub endpoints: Vec<String>,
    /// When it was created (ms, mock clock); also the envelope's `timestamp`.
    pub created_at_ms: i64,
}

impl Message {
    /// The body as JSON (the envelope).
    #[must_use]
    pub fn payload(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Why an attempt was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    /// Part of the retry schedule.
    Scheduled,
    /// A manual redelivery (same `svix-id`, new timestamp and signature).
    Redelivery,
    /// A deliberately broken delivery.
    Forged(Forgery),
}

/// Exactly what was posted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SentRequest {
    /// Headers (the Svix ones and `content-type`), in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl SentRequest {
    /// The value of header `name`, if sent.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One POST to one endpoint and how it went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// The `svix-id`.
    pub message_id: String,
    /// e.g. `user.created`.
    pub event_type: String,
    /// `ep_…`
    pub endpoint_id: String,
    /// Where it went.
    pub url: String,
    /// 1-based position in the retry schedule (1 for redeliveries and forgeries).
    pub attempt: u32,
    /// Why it was made.
    pub kind: AttemptKind,
    /// When it started (ms, mock clock).
    pub at_ms: i64,
    /// The receiver's status, if it answered in time.
    pub status: Option<u16>,
    /// Transport error: connection refused, timeout…
    pub error: Option<String>,
    /// Up to 1 KiB of the receiver's answer, to see why it refused.
    pub response_body: Option<String>,
    /// From sending to the answer (or the error).
    #[serde(rename = "latency_ms", serialize_with = "as_millis")]
    pub latency: Duration,
    /// What was sent.
    pub request: SentRequest,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Attempt {
    /// A 2xx answer within the timeout.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// One line: `msg_… user.created → http://… attempt 2: 500 in 3 ms`.
    #[must_use]
    pub fn summary(&self) -> String {
        let outcome = match (&self.status, &self.error) {
            (_, Some(e)) => e.clone(),
            (Some(s), None) => s.to_string(),
            (None, None) => "no answer".into(),
        };
        format!(
            "{} {} → {} attempt {} ({:?}): {outcome} in {} ms",
            self.message_id,
            self.event_type,
            self.url,
            self.attempt,
            self.kind,
            self.latency.as_millis()
        )
    }
}

#[derive(Default)]
pub(crate) struct LogState {
    pub(crate) messages: Vec<Message>,
    pub(crate) attempts: Vec<Attempt>,
    /// (message, endpoint) pairs whose retry schedule is exhausted.
    pub(crate) gave_up: HashSet<(String, String)>,
    /// Deliveries queued or still in their retry schedule ([`super::Webhooks::pending`]).
    pub(crate) pending: usize,
}

impl LogState {
    pub(crate) fn attempts_of(&self, message_id: &str) -> Vec<Attempt> {
        self.attempts.iter().filter(|a| a.message_id == message_id).cloned().collect()
    }

    fn summary(&self) -> String {
        if self.attempts.is_empty() {
            return "  (none)".into();
        }
        self.attempts.iter().map(|a| format!("  {}", a.summary())).collect::<Vec<_>>().join("\n")
    }
}

/// The log, with a change signal for waiters.
pub(crate) struct DeliveryLog {
    state: Mutex<LogState>,
    changed: watch::Sender<()>,
}

impl Default for DeliveryLog {
    fn default() -> Self {
        Self { state: Mutex::default(), changed: watch::channel(()).0 }
    }
}

impl DeliveryLog {
    pub(crate) fn read<T>(&self, f: impl FnOnce(&LogState) -> T) -> T {
        f(&self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    pub(crate) fn write(&self, f: impl FnOnce(&mut LogState)) {
        f(&mut self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        self.changed.send_replace(());
    }

    /// Waits until `check` returns `Some`, re-checking on every change, for at most `within`.
    pub(crate) async fn wait<T>(
        &self,
        what: &str,
        within: Duration,
        mut check: impl FnMut(&LogState) -> Option<Result<T, WebhookError>>,
    ) -> Result<T, WebhookError> {
        let deadline = tokio::time::Instant::now() + within;
        // Subscribing before the first check means no change can slip between the two.
        let mut changes = self.changed.subscribe();
        loop {
            if let Some(result) = self.read(&mut check) {
                return result;
            }
            let woke = tokio::time::timeout_at(deadline, changes.changed()).await;
            if !matches!(woke, Ok(Ok(()))) {
                return self.read(|s| match check(s) {
                    Some(result) => result,
                    None => Err(WebhookError::Timeout { what: what.into(), within, seen: s.summary() }),
                });
            }
        }
    }
}
