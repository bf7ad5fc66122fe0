//! Test helpers: waits with a deadline that wake on every log change, redelivery with the
//! same `svix-id`, forged deliveries.

use std::time::Duration;

use serde_json::Value;

use super::dispatcher::{genuine, post};
use super::{Attempt, AttemptKind, Endpoint, Forgery, Message, WebhookError, WebhookEvent, Webhooks};

impl Webhooks {
    /// Waits until `message_id` has been answered with a 2xx by every endpoint it went to;
    /// returns its attempts. Fails early if an endpoint's retry schedule is exhausted.
    ///
    /// # Errors
    /// [`WebhookError::Timeout`] (listing every attempt), [`WebhookError::GaveUp`],
    /// [`WebhookError::NoEndpoint`], [`WebhookError::UnknownMessage`].
    pub async fn wait_delivered(&self, message_id: &str, within: Duration) -> Result<Vec<Attempt>, WebhookError> {
        let message = self.message(message_id)?;
        if message.endpoints.is_empty() {
            return Err(WebhookError::NoEndpoint(message.id));
        }
        let what = format!("message {message_id} ({}) to be delivered", message.event_type);
        self.0
            .log
            .wait(&what, within, |s| {
                let attempts = s.attempts_of(message_id);
                let mut all_delivered = true;
                for endpoint in &message.endpoints {
                    let mine: Vec<&Attempt> = attempts.iter().filter(|a| &a.endpoint_id == endpoint && !matches!(a.kind, AttemptKind::Forged(_))).collect();
                    if mine.iter().any(|a| a.succeeded()) {
                        continue;
                    }
                    all_delivered = false;
                    if s.gave_up.contains(&(message.id.clone(), endpoint.clone())) {
                        let last = mine.last().map_or_else(|| "no attempt".into(), |a| a.summary());
                        let url = mine.last().map_or_else(|| endpoint.clone(), |a| a.url.clone());
                        return Some(Err(WebhookError::GaveUp { message_id: message.id.clone(), url, attempts: mine.len(), last }));
                    }
                }
                all_delivered.then_some(Ok(attempts))
            })
            .await
            .map_err(|e| match e {
                // Only this message's attempts: the log holds every other test's too.
                WebhookError::Timeout { what, within, .. } => WebhookError::Timeout { what, within, seen: self.attempts_summary(message_id) },
                other => other,
            })
    }

    /// Waits until no delivery is [pending](Self::pending): every message answered with a
    /// 2xx, given up on, or cancelled. What a test waits on to show that no further attempt
    /// will come, without sleeping past the retry schedule.
    ///
    /// # Errors
    /// [`WebhookError::Timeout`] listing every attempt.
    pub async fn wait_idle(&self, within: Duration) -> Result<(), WebhookError> {
        self.0.log.wait("every webhook delivery to settle", within, |s| (s.pending == 0).then_some(Ok(()))).await
    }

    /// Waits for the first scheduled (genuine) attempt of `message_id`, whatever its
    /// outcome, so a caller can judge a 4xx at once instead of waiting through the retry
    /// schedule.
    ///
    /// # Errors
    /// [`WebhookError::Timeout`] (listing this message's attempts only),
    /// [`WebhookError::UnknownMessage`], [`WebhookError::NoEndpoint`].
    pub async fn wait_first_attempt(&self, message_id: &str, within: Duration) -> Result<Attempt, WebhookError> {
        let message = self.message(message_id)?;
        if message.endpoints.is_empty() {
            return Err(WebhookError::NoEndpoint(message.id));
        }
        let what = format!("the first delivery attempt of message {message_id} ({})", message.event_type);
        let result = self.0.log.wait(&what, within, |s| s.attempts_of(message_id).into_iter().find(|a| matches!(a.kind, AttemptKind::Scheduled)).map(Ok)).await;
        result.map_err(|e| match e {
            WebhookError::Timeout { what, within, .. } => WebhookError::Timeout { what, within, seen: self.attempts_summary(message_id) },
            other => other,
        })
    }

    /// This message's attempts, one per line (`  (none)` when there is none).
    #[must_use]
    pub fn attempts_summary(&self, message_id: &str) -> String {
        let attempts = self.attempts(message_id);
        if attempts.is_empty() {
            return "  (none)".into();
        }
        attempts.iter().map(|a| format!("  {}", a.summary())).collect::<Vec<_>>().join("\n")
    }

    /// Waits until `message_id` has at least `n` failed attempts (all endpoints together);
    /// returns its attempts.
    ///
    /// # Errors
    /// [`WebhookError::Timeout`] (listing every attempt), [`WebhookError::UnknownMessage`].
    pub async fn wait_failed_attempts(&self, message_id: &str, n: usize, within: Duration) -> Result<Vec<Attempt>, WebhookError> {
        self.message(message_id)?;
        let what = format!("{n} failed attempts of message {message_id}");
        self.0
            .log
            .wait(&what, within, |s| {
                let attempts = s.attempts_of(message_id);
                let failed = attempts.iter().filter(|a| !a.succeeded()).count();
                (failed >= n).then_some(Ok(attempts))
            })
            .await
    }

    /// Waits for the first message matching `predicate` (store changes become messages a
    /// moment after the API call that made them).
    ///
    /// # Errors
    /// [`WebhookError::Timeout`].
    pub async fn wait_for_message(&self, what: &str, within: Duration, mut predicate: impl FnMut(&Message) -> bool) -> Result<Message, WebhookError> {
        self.0.log.wait(what, within, |s| s.messages.iter().find(|m| predicate(m)).cloned().map(Ok)).await
    }

    /// Waits for the first message of `event_type`, e.g. `user.created`.
    ///
    /// # Errors
    /// [`WebhookError::Timeout`].
    pub async fn wait_for_event(&self, event_type: &str, within: Duration) -> Result<Message, WebhookError> {
        self.wait_for_message(&format!("a {event_type} message"), within, |m| m.event_type == event_type).await
    }

    /// Waits for the first message of `event_type` whose `data.id` is `object_id`.
    ///
    /// # Errors
    /// [`WebhookError::Timeout`].
    pub async fn wait_for_event_about(&self, event_type: &str, object_id: &str, within: Duration) -> Result<Message, WebhookError> {
        self.wait_for_message(&format!("a {event_type} message about {object_id}"), within, |m| {
            m.event_type == event_type && m.payload()["data"]["id"] == object_id
        })
        .await
    }

    /// Sends `message_id` again, now, once to each endpoint it went to: same `svix-id` and
    /// body, fresh timestamp and signature — what a Svix retry or a dashboard "resend" looks
    /// like to the receiver. Returns the attempts (also logged).
    ///
    /// # Errors
    /// [`WebhookError::UnknownMessage`]; [`WebhookError::UnknownEndpoint`] if one was removed.
    pub async fn redeliver(&self, message_id: &str) -> Result<Vec<Attempt>, WebhookError> {
        let message = self.message(message_id)?;
        let endpoints = self.endpoints();
        let mut attempts = vec![];
        for id in &message.endpoints {
            let endpoint = endpoints.iter().find(|e| &e.id == id).ok_or_else(|| WebhookError::UnknownEndpoint(id.clone()))?;
            let request = genuine(&endpoint.secret, &message.id, self.0.clock.now_unix(), message.body.clone());
            attempts.push(post(self, endpoint, &message, 1, AttemptKind::Redelivery, request).await);
        }
        Ok(attempts)
    }

    /// Posts one forged delivery of `event` (a new message id) to `endpoint`, now, and returns
    /// the attempt: what was sent and how the receiver answered (also logged).
    pub async fn forge(&self, forgery: Forgery, endpoint: &Endpoint, event: impl Into<WebhookEvent>) -> Attempt {
        let mut event = event.into();
        self.add_session_user(&mut event);
        let now_ms = self.0.clock.now_ms();
        let message = Message {
            id: crate::ids::new_id("msg"),
            event_type: event.event_type().into(),
            body: event.envelope(&self.0.instance_id, now_ms).to_string(),
            endpoints: vec![endpoint.id.clone()],
            created_at_ms: now_ms,
        };
        let request = forgery.request(&endpoint.secret, &message.id, self.0.clock.now_unix(), message.body.clone());
        post(self, endpoint, &message, 1, AttemptKind::Forged(forgery), request).await
    }
}

impl From<&Message> for WebhookEvent {
    /// The event a message carries (type, `data`, `http_request`), e.g. to forge a copy of it.
    fn from(message: &Message) -> Self {
        let payload = message.payload();
        let event = Self::new(message.event_type.clone(), payload.get("data").cloned().unwrap_or(Value::Null));
        let request = &payload["event_attributes"]["http_request"];
        match (request["client_ip"].as_str(), request["user_agent"].as_str()) {
            (Some(ip), Some(agent)) => event.http_request(ip, agent),
            _ => event,
        }
    }
}
