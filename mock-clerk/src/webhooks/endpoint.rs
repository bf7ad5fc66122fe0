//! Where webhooks go: endpoints with a URL, a signing secret and an event filter.

use serde::{Deserialize, Serialize};
use url::Url;

use super::{WebhookError, WebhookSecret, Webhooks};

/// An endpoint as the config file (`[[webhook_endpoints]]`) and the admin API describe it.
///
/// ```toml
/// [[webhook_endpoints]]
/// url = "http://127.0.0.1:3000/webhooks/clerk"
/// secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"   # default: the instance's webhook_secret
/// events = ["user.created", "user.deleted"]            # default: every event
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    /// Where to POST.
    pub url: Url,
    /// Its own signing secret; absent: the instance's.
    #[serde(default)]
    pub secret: Option<WebhookSecret>,
    /// Event types it receives; empty: all.
    #[serde(default)]
    pub events: Vec<String>,
}

impl EndpointSpec {
    /// All events to `url`, signed with the instance's secret.
    #[must_use]
    pub fn new(url: Url) -> Self {
        Self { url, secret: None, events: vec![] }
    }
}

/// A registered endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// `ep_…`
    pub id: String,
    /// Where to POST.
    pub url: Url,
    /// The secret its deliveries are signed with (hand it to the receiver).
    pub secret: WebhookSecret,
    /// Event types it receives; empty: all.
    pub events: Vec<String>,
}

impl Endpoint {
    /// Whether an event of `event_type` goes to this endpoint.
    #[must_use]
    pub fn accepts(&self, event_type: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == event_type)
    }
}

/// Registers an endpoint; made by [`Webhooks::endpoint`], finished by [`EndpointBuilder::add`].
///
/// ```no_run
/// # fn demo(mock: &mock_clerk::MockClerk) -> Result<(), mock_clerk::webhooks::WebhookError> {
/// let endpoint = mock
///     .webhooks()
///     .endpoint("http://127.0.0.1:3000/webhooks/clerk")
///     .secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
///     .events(["user.created", "user.updated", "user.deleted"])
///     .add()?;
/// println!("signing with {}", endpoint.secret.expose());
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "call .add() to register the endpoint"]
pub struct EndpointBuilder<'a> {
    webhooks: &'a Webhooks,
    url: String,
    secret: Option<String>,
    events: Vec<String>,
}

impl<'a> EndpointBuilder<'a> {
    pub(crate) fn new(webhooks: &'a Webhooks, url: &str) -> Self {
        Self { webhooks, url: url.into(), secret: None, events: vec![] }
    }

    /// Signs with this `whsec_…` secret instead of the instance's.
    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Receives only these event types (callable several times; default: all).
    pub fn events<I, S>(mut self, events: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.events.extend(events.into_iter().map(Into::into));
        self
    }

    /// Registers the endpoint.
    ///
    /// # Errors
    /// [`WebhookError::InvalidUrl`] or [`WebhookError::InvalidSecret`].
    pub fn add(self) -> Result<Endpoint, WebhookError> {
        let url = parse_url(&self.url)?;
        let secret = self.secret.as_deref().map(WebhookSecret::parse).transpose()?;
        self.webhooks.register(EndpointSpec { url, secret, events: self.events })
    }
}

pub(crate) fn parse_url(text: &str) -> Result<Url, WebhookError> {
    let url = Url::parse(text).map_err(|e| WebhookError::InvalidUrl { url: text.into(), reason: e.to_string() })?;
    check_scheme(&url)?;
    Ok(url)
}

pub(crate) fn check_scheme(url: &Url) -> Result<(), WebhookError> {
    if matches!(url.scheme(), "http" | "https") {
        Ok(())
    } else {
        Err(WebhookError::InvalidUrl { url: url.to_string(), reason: format!("scheme '{}' is not http or https", url.scheme()) })
    }
}
