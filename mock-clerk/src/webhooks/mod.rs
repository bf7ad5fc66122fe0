//! Clerk webhooks, delivered the way Svix delivers them: signed (`svix-id`,
//! `svix-timestamp`, `svix-signature`), in the background, retried on Svix's schedule, every
//! attempt logged — plus the broken deliveries a receiver must refuse.
//!
//! Every store change (through the Backend API, the admin API or the Rust API) becomes a
//! `user.created|updated|deleted` or `session.created|ended|revoked|removed` message for each
//! registered endpoint that accepts its type; [`Webhooks::send_event`] sends any event on
//! demand. Dropping the [`MockClerk`](crate::MockClerk) aborts every delivery in flight.
//!
//! ```no_run
//! use std::time::Duration;
//! use mock_clerk::{MockClerk, NewUser};
//! use mock_clerk::webhooks::{Forgery, WebhookSettings};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Svix's retry schedule in ten-thousandths: the 5 min retry comes after 30 ms.
//! let mock = MockClerk::builder().webhook_settings(WebhookSettings::scaled(1e-4)).start().await?;
//! let endpoint = mock.webhooks().add_endpoint("http://127.0.0.1:3000/webhooks/clerk")?;
//! // Give the backend `endpoint.secret.expose()` as its CLERK_WEBHOOK_SIGNING_SECRET.
//!
//! mock.create_user(NewUser::with_email("ada@example.com"))?;
//! let hooks = mock.webhooks();
//! let message = hooks.wait_for_event("user.created", Duration::from_secs(5)).await?;
//! hooks.wait_delivered(&message.id, Duration::from_secs(5)).await?;
//!
//! hooks.redeliver(&message.id).await?; // same svix-id: the backend must not create a second row
//! let replay = hooks.forge(Forgery::StaleTimestamp, &endpoint, &message).await;
//! assert!(replay.status.is_some_and(|s| s >= 400), "{}", replay.summary());
//! # Ok(()) }
//! ```

mod admin;
mod dispatcher;
mod endpoint;
mod event;
mod forge;
mod helpers;
mod log;
pub mod svix;

use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub(crate) use admin::router;
pub use dispatcher::{WebhookSettings, SVIX_SCHEDULE_SECS};
pub use endpoint::{Endpoint, EndpointBuilder, EndpointSpec};
pub use event::{HttpRequest, WebhookEvent};
pub use forge::Forgery;
pub use log::{Attempt, AttemptKind, Message, SentRequest};
pub use svix::{VerifyError, WebhookSecret};

use crate::clock::Clock;
use crate::instance::Instance;
use crate::store::Store;
use dispatcher::Job;
use log::DeliveryLog;

/// What webhook registration, sending and waiting can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The endpoint URL does not parse or is not http(s).
    #[error("webhook endpoint URL '{url}' is invalid: {reason}; use an absolute http(s) URL such as http://127.0.0.1:3000/webhooks/clerk")]
    InvalidUrl {
        /// What was given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The signing secret is not `whsec_<base64>`.
    #[error(
        "webhook secret '{shown}' is invalid: {reason}; use whsec_ followed by base64 (e.g. the instance's webhook_secret), or omit it to use the instance's"
    )]
    InvalidSecret {
        /// The secret, redacted.
        shown: String,
        /// What is wrong.
        reason: String,
    },
    /// No message with this id.
    #[error("no webhook message '{0}': use an id returned by send_event or listed in the delivery log")]
    UnknownMessage(String),
    /// No endpoint with this id.
    #[error("no webhook endpoint '{0}': register it first (add_endpoint, [[webhook_endpoints]] or POST /_mock/webhooks/endpoints)")]
    UnknownEndpoint(String),
    /// The message was sent to no endpoint, so it can never be delivered.
    #[error("webhook message '{0}' went to no endpoint: register an endpoint that accepts its type before the event happens")]
    NoEndpoint(String),
    /// Every attempt of the retry schedule failed.
    #[error("webhook message '{message_id}' to {url} failed all {attempts} attempts; last: {last}")]
    GaveUp {
        /// The message.
        message_id: String,
        /// The endpoint URL.
        url: String,
        /// How many attempts were made.
        attempts: usize,
        /// The last attempt's outcome.
        last: String,
    },
    /// A wait ran out of time.
    #[error("timed out after {within:?} waiting for {what}; attempts so far:\n{seen}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        within: std::time::Duration,
        /// Every attempt in the log, one per line.
        seen: String,
    },
}

/// The webhooks of one mock instance: endpoints, sending, the delivery log. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks(Arc<Inner>);

struct Inner {
    instance_id: String,
    instance_secret: String,
    clock: Clock,
    store: Store,
    endpoints: RwLock<Vec<Endpoint>>,
    settings: RwLock<WebhookSettings>,
    log: DeliveryLog,
    jobs: mpsc::UnboundedSender<Job>,
    /// Taken by the dispatcher when it starts.
    jobs_rx: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    client: reqwest::Client,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").field("endpoints", &self.endpoints()).field("settings", &self.settings()).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Webhooks {
    /// Webhooks of `instance` (id, default secret, clock), fed by `store`'s changes once
    /// [started](Self::start).
    #[must_use]
    pub fn new(instance: &Instance, store: &Store) -> Self {
        let (jobs, jobs_rx) = mpsc::unbounded_channel();
        let client = reqwest::Client::builder()
            // A 3xx is a failed delivery, as with Svix: never follow it.
            .redirect(reqwest::redirect::Policy::none())
            // Receivers are local; an HTTP(S)_PROXY in the environment must not capture them.
            .no_proxy()
            .user_agent(concat!("Svix-Webhooks/1.0 (mock-clerk/", env!("CARGO_PKG_VERSION"), "; +https://www.svix.com/http-sender/)"))
            .build()
            .unwrap_or_default();
        Self(Arc::new(Inner {
            instance_id: instance.id().into(),
            instance_secret: instance.webhook_secret().into(),
            clock: instance.clock().clone(),
            store: store.clone(),
            endpoints: RwLock::default(),
            settings: RwLock::default(),
            log: DeliveryLog::default(),
            jobs,
            jobs_rx: Mutex::new(Some(jobs_rx)),
            client,
        }))
    }

    /// Starts the dispatcher (the mock does this in `start()`); `None` if already started.
    /// Aborting the returned task stops every delivery.
    #[must_use = "abort the task to stop deliveries"]
    pub fn start(&self) -> Option<JoinHandle<()>> {
        let jobs = lock(&self.0.jobs_rx).take()?;
        let events = self.0.store.subscribe();
        Some(tokio::spawn(dispatcher::run(self.clone(), jobs, events)))
    }

    /// The current delivery settings.
    #[must_use]
    pub fn settings(&self) -> WebhookSettings {
        self.0.settings.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Replaces the delivery settings (deliveries already running keep their schedule).
    pub fn set_settings(&self, settings: WebhookSettings) {
        *self.0.settings.write().unwrap_or_else(std::sync::PoisonError::into_inner) = settings;
    }

    /// Starts registering an endpoint at `url`; see [`EndpointBuilder`].
    pub fn endpoint(&self, url: &str) -> EndpointBuilder<'_> {
        EndpointBuilder::new(self, url)
    }

    /// Registers `url` for every event, signed with the instance's secret.
    ///
    /// # Errors
    /// An invalid URL, or an invalid instance secret.
    pub fn add_endpoint(&self, url: &str) -> Result<Endpoint, WebhookError> {
        self.endpoint(url).add()
    }

    /// Registers an endpoint from its description (config file, admin API).
    ///
    /// # Errors
    /// A non-http(s) URL, or (without its own secret) an invalid instance secret.
    pub fn register(&self, spec: EndpointSpec) -> Result<Endpoint, WebhookError> {
        endpoint::check_scheme(&spec.url)?;
        let secret = match spec.secret {
            Some(secret) => secret,
            None => WebhookSecret::parse(&self.0.instance_secret)?,
        };
        let endpoint = Endpoint { id: crate::ids::new_id("ep"), url: spec.url, secret, events: spec.events };
        tracing::debug!(endpoint = %endpoint.id, url = %endpoint.url, events = ?endpoint.events, "webhook endpoint registered");
        self.0.endpoints.write().unwrap_or_else(std::sync::PoisonError::into_inner).push(endpoint.clone());
        Ok(endpoint)
    }

    /// Unregisters an endpoint (deliveries already scheduled continue).
    ///
    /// # Errors
    /// [`WebhookError::UnknownEndpoint`].
    pub fn remove_endpoint(&self, id: &str) -> Result<Endpoint, WebhookError> {
        let mut endpoints = self.0.endpoints.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let index = endpoints.iter().position(|e| e.id == id).ok_or_else(|| WebhookError::UnknownEndpoint(id.into()))?;
        Ok(endpoints.remove(index))
    }

    /// The registered endpoints, oldest first.
    #[must_use]
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.0.endpoints.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Sends `event` now to every endpoint that accepts its type, in the background; returns
    /// the message (its `id` is the `svix-id`). Never blocks.
    ///
    /// Session events get the session's `user` added when absent, as Clerk sends them.
    pub fn send_event(&self, event: impl Into<WebhookEvent>) -> Message {
        let mut event = event.into();
        self.add_session_user(&mut event);
        let now_ms = self.0.clock.now_ms();
        let endpoints: Vec<Endpoint> = self.endpoints().into_iter().filter(|e| e.accepts(event.event_type())).collect();
        let message = Message {
            id: crate::ids::new_id("msg"),
            event_type: event.event_type().into(),
            body: event.envelope(&self.0.instance_id, now_ms).to_string(),
            endpoints: endpoints.iter().map(|e| e.id.clone()).collect(),
            created_at_ms: now_ms,
        };
        tracing::debug!(message = %message.id, event = %message.event_type, endpoints = endpoints.len(), "webhook message");
        self.0.log.write(|s| s.messages.push(message.clone()));
        for endpoint in endpoints {
            // The receiver lives as long as the dispatcher; after a stop, jobs just wait unsent.
            let _ = self.0.jobs.send(Job { message: message.clone(), endpoint, _pending: dispatcher::Pending::new(self) });
        }
        message
    }

    /// Deliveries queued or still in their retry schedule: 0 once every message has been
    /// answered with a 2xx, given up on, or cancelled by stopping the mock.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.0.log.read(|s| s.pending)
    }

    fn add_session_user(&self, event: &mut WebhookEvent) {
        if !event.event_type().starts_with("session.") {
            return;
        }
        let Some(data) = event.data_mut().as_object_mut() else { return };
        if data.contains_key("user") {
            return;
        }
        if let Some(user) = data.get("user_id").and_then(Value::as_str).and_then(|id| self.0.store.user(id).ok()) {
            data.insert("user".into(), user.to_json());
        }
    }

    /// Every message sent, oldest first.
    #[must_use]
    pub fn messages(&self) -> Vec<Message> {
        self.0.log.read(|s| s.messages.clone())
    }

    /// A message by id.
    ///
    /// # Errors
    /// [`WebhookError::UnknownMessage`].
    pub fn message(&self, id: &str) -> Result<Message, WebhookError> {
        self.0.log.read(|s| s.messages.iter().find(|m| m.id == id).cloned()).ok_or_else(|| WebhookError::UnknownMessage(id.into()))
    }

    /// Every attempt (scheduled, redelivered, forged), oldest first.
    #[must_use]
    pub fn deliveries(&self) -> Vec<Attempt> {
        self.0.log.read(|s| s.attempts.clone())
    }

    /// The attempts of one message.
    #[must_use]
    pub fn attempts(&self, message_id: &str) -> Vec<Attempt> {
        self.0.log.read(|s| s.attempts_of(message_id))
    }

    /// Forgets the log (messages and attempts); deliveries in flight keep logging.
    pub fn clear_log(&self) {
        self.0.log.write(|s| *s = log::LogState::default());
    }
}
