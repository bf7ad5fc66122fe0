//! Background delivery: one task turns store changes into messages and runs one task per
//! (message, endpoint) through Svix's retry schedule. Aborting the dispatcher task drops its
//! `JoinSet`, which aborts every delivery in flight.

use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;

use super::svix::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{Attempt, AttemptKind, Endpoint, Message, SentRequest, WebhookSecret, Webhooks};
use crate::store::StoreEvent;

/// Svix's schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (seconds).
pub const SVIX_SCHEDULE_SECS: [u64; 8] = [0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000];

/// How deliveries are timed.
///
/// ```
/// use mock_clerk::webhooks::WebhookSettings;
/// use std::time::Duration;
/// // Svix's schedule in ten-thousandths: 0, 0.5 ms, 30 ms, 180 ms, 720 ms, 1.8 s, 3.6 s, 3.6 s.
/// let fast = WebhookSettings { timeout: Duration::from_millis(500), ..WebhookSettings::scaled(1e-4) };
/// assert_eq!(fast.delay(2), Some(Duration::from_millis(30)));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookSettings {
    /// Delay before each attempt, unscaled (default [`SVIX_SCHEDULE_SECS`]); its length is the
    /// number of attempts.
    pub schedule: Vec<Duration>,
    /// Multiplies every delay (default 1; tests use e.g. `1e-4`).
    pub time_scale: f64,
    /// An answer later than this is a failure (default 15 s, as Svix).
    pub timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self { schedule: SVIX_SCHEDULE_SECS.iter().map(|s| Duration::from_secs(*s)).collect(), time_scale: 1.0, timeout: Duration::from_secs(15) }
    }
}

impl WebhookSettings {
    /// Svix's schedule compressed by `time_scale`, default timeout.
    #[must_use]
    pub fn scaled(time_scale: f64) -> Self {
        Self { time_scale, ..Self::default() }
    }

    /// The scaled delay before attempt `index` (0-based), if the schedule has that many.
    #[must_use]
    pub fn delay(&self, index: usize) -> Option<Duration> {
        let unscaled = *self.schedule.get(index)?;
        let scale = if self.time_scale.is_finite() && self.time_scale >= 0.0 { self.time_scale } else { 1.0 };
        Some(Duration::try_from_secs_f64(unscaled.as_secs_f64() * scale).unwrap_or(unscaled))
    }
}

/// One message to one endpoint.
pub(crate) struct Job {
    pub(crate) message: Message,
    pub(crate) endpoint: Endpoint,
    pub(crate) _pending: Pending,
}

/// Counts one delivery as pending from the moment it is queued until its job is dropped:
/// delivered, given up, or cancelled with the dispatcher (aborted task, closed queue). Weak,
/// so a job waiting in an unstarted queue does not keep the webhooks alive.
pub(crate) struct Pending(std::sync::Weak<super::Inner>);

impl Pending {
    pub(crate) fn new(webhooks: &Webhooks) -> Self {
        webhooks.0.log.write(|s| s.pending += 1);
        Self(std::sync::Arc::downgrade(&webhooks.0))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.log.write(|s| s.pending = s.pending.saturating_sub(1));
        }
    }
}

/// The dispatcher task: never returns on its own; the mock aborts it on stop/drop.
pub(crate) async fn run(webhooks: Webhooks, mut jobs: mpsc::UnboundedReceiver<Job>, mut events: broadcast::Receiver<StoreEvent>) {
    let mut deliveries = JoinSet::new();
    let mut feed_open = true;
    loop {
        tokio::select! {
            Some(job) = jobs.recv() => {
                deliveries.spawn(deliver(webhooks.clone(), job));
            }
            event = events.recv(), if feed_open => match event {
                Ok(event) => {
                    webhooks.send_event(event);
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "webhook dispatcher fell behind the store: {missed} events were not sent");
                }
                Err(broadcast::error::RecvError::Closed) => feed_open = false,
            },
            Some(_) = deliveries.join_next(), if !deliveries.is_empty() => {}
            else => break,
        }
    }
}

/// Runs the retry schedule until a 2xx or the schedule is exhausted.
async fn deliver(webhooks: Webhooks, job: Job) {
    let settings = webhooks.settings();
    let mut index = 0;
    while let Some(delay) = settings.delay(index) {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        index += 1;
        let request = genuine(&job.endpoint.secret, &job.message.id, webhooks.0.clock.now_unix(), job.message.body.clone());
        let attempt = post(&webhooks, &job.endpoint, &job.message, u32::try_from(index).unwrap_or(u32::MAX), AttemptKind::Scheduled, request).await;
        if attempt.succeeded() {
            return;
        }
    }
    tracing::warn!(message = %job.message.id, endpoint = %job.endpoint.url, attempts = index, "webhook delivery gave up");
    webhooks.0.log.write(|s| {
        s.gave_up.insert((job.message.id.clone(), job.endpoint.id.clone()));
    });
}

/// The request Svix sends: the three headers, signed at `now_unix`.
pub(crate) fn genuine(secret: &WebhookSecret, msg_id: &str, now_unix: i64, body: String) -> SentRequest {
    let signature = secret.sign(msg_id, now_unix, body.as_bytes());
    SentRequest {
        headers: vec![
            (ID_HEADER.into(), msg_id.into()),
            (TIMESTAMP_HEADER.into(), now_unix.to_string()),
            (SIGNATURE_HEADER.into(), signature),
            ("content-type".into(), "application/json".into()),
        ],
        body,
    }
}

/// Posts `request` to `endpoint` once and logs the attempt.
pub(crate) async fn post(webhooks: &Webhooks, endpoint: &Endpoint, message: &Message, attempt: u32, kind: AttemptKind, request: SentRequest) -> Attempt {
    let timeout = webhooks.settings().timeout;
    let at_ms = webhooks.0.clock.now_ms();
    let mut builder = webhooks.0.client.post(endpoint.url.clone()).timeout(timeout).body(request.body.clone());
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let started = Instant::now();
    let (status, error, response_body) = match builder.send().await {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let mut snippet = Vec::new();
            while snippet.len() < 1024 {
                match response.chunk().await {
                    Ok(Some(chunk)) => snippet.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            snippet.truncate(1024);
            (Some(status), None, Some(String::from_utf8_lossy(&snippet).into_owned()))
        }
        Err(e) => (None, Some(describe(&e, timeout)), None),
    };
    let record = Attempt {
        message_id: message.id.clone(),
        event_type: message.event_type.clone(),
        endpoint_id: endpoint.id.clone(),
        url: endpoint.url.to_string(),
        attempt,
        kind,
        at_ms,
        status,
        error,
        response_body,
        latency: started.elapsed(),
        request,
    };
    tracing::debug!(attempt = %record.summary(), "webhook attempt");
    webhooks.0.log.write(|s| s.attempts.push(record.clone()));
    record
}

fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timed out after {} ms", timeout.as_millis());
    }
    let mut text = if e.is_connect() { "connection failed".to_string() } else { "request failed".to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
