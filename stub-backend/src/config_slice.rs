//! The configuration misbehaviours: secret key refused or missing, webhook secret, bundled roots.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use serde_json::json;

use crate::error_chain;
use crate::{Behaviour, KeyRefused, MissingSecretKey, Stubbed, WebhookSecretUse};

// config slice
/// The start of an error a refused secret key makes ([`KeyRefused`]).
pub(crate) const KEY_REFUSED: &str = "the Clerk Backend API refused CLERK_SECRET_KEY";

// config slice
/// Start-up checks of [`Behaviour::missing_secret_key`] and [`Behaviour::webhook_secret`].
pub(crate) fn config_slice_start(behaviour: &Behaviour, env: &BTreeMap<String, String>) -> Result<(), String> {
    let unset = |name: &str| env.get(name).is_none_or(String::is_empty);
    if unset("CLERK_SECRET_KEY") && behaviour.missing_secret_key == MissingSecretKey::ExitNamingSetting && !behaviour.start_without_keys {
        return Err("django.core.exceptions.ImproperlyConfigured: CLERK_AUTH['SECRET_KEY'] is required".into());
    }
    if unset("CLERK_WEBHOOK_SECRET") && behaviour.webhook_secret == WebhookSecretUse::Required {
        return Err("stub-backend: configuration error: CLERK_WEBHOOK_SECRET is not set".into());
    }
    Ok(())
}

// config slice
/// Whether the stub starts without `name` anyway ([`MissingSecretKey::FailEveryRequest`]).
pub(crate) fn config_slice_lets_start(behaviour: &Behaviour, name: &str) -> bool {
    name == "CLERK_SECRET_KEY" && behaviour.missing_secret_key == MissingSecretKey::FailEveryRequest
}

// config slice
impl Stubbed {
    /// `GET {CLERK_API_URL}/v1/jwks` with the secret key.
    pub(crate) async fn config_slice_jwks(&self) -> Result<JwkSet, String> {
        let url = format!("{}/v1/jwks", self.settings.api_url);
        let response = self.http.get(&url).bearer_auth(&self.settings.secret_key).send().await.map_err(|e| {
            let line = format!("ERROR JWKS fetch from {url} failed: {}", error_chain(&e));
            self.log(&line);
            line
        })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let body = response.text().await.unwrap_or_default();
            let line = format!("{KEY_REFUSED}: GET {url} answered {}: {body}", status.as_u16());
            if self.behaviour.key_refused != KeyRefused::BareServerError {
                self.log(&format!("ERROR {line}"));
            }
            return Err(line);
        }
        if !status.is_success() {
            let line = format!("ERROR JWKS fetch from {url} answered {}", status.as_u16());
            self.log(&line);
            return Err(line);
        }
        response.json().await.map_err(|e| format!("JWKS from {url} is not a key set: {e}"))
    }

    /// The answer to a request while the Backend API refuses the secret key.
    pub(crate) fn config_slice_key_refused(&self, reason: &str, detail: &str) -> Response {
        match self.behaviour.key_refused {
            KeyRefused::NamedServerError => {
                (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"detail": format!("server misconfigured: {detail}"), "reason": reason}))).into_response()
            }
            KeyRefused::BareServerError => (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response(),
            KeyRefused::Unauthorized => self.refuse(reason, detail, false),
        }
    }

    /// [`MissingSecretKey::FailEveryRequest`] without a secret key: a 500.
    pub(crate) fn config_slice_unconfigured(&self) -> Option<Response> {
        (self.behaviour.missing_secret_key == MissingSecretKey::FailEveryRequest && self.settings.secret_key.is_empty()).then(|| {
            self.log("ERROR Clerk is not configured: every authenticated request fails");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
        })
    }
}

// config slice
/// `POST` [`CONFIG_WEBHOOK_PATH`]: a Svix-verified delivery is applied (200); without
/// `CLERK_WEBHOOK_SECRET`, refused (503) or — [`WebhookSecretUse::FailOpen`] — applied unchecked.
pub(crate) async fn config_slice_webhook(State(state): State<Arc<Stubbed>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let kind = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v["type"].as_str().map(str::to_string)).unwrap_or_default();
    match &state.settings.webhook_secret {
        None if state.behaviour.webhook_secret == WebhookSecretUse::FailOpen => {
            state.log(&format!("INFO webhook {kind} applied (no CLERK_WEBHOOK_SECRET: signature not checked)"));
            axum::Json(json!({"applied": kind})).into_response()
        }
        None => {
            state.log("ERROR CLERK_WEBHOOK_SECRET is not set: cannot verify webhooks");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"detail": "CLERK_WEBHOOK_SECRET is not set"}))).into_response()
        }
        Some(secret) => {
            let verified = mock_clerk::webhooks::WebhookSecret::parse(secret)
                .map_err(|e| e.to_string())
                .and_then(|s| s.verify(&headers, &body, state.clock.now_unix()).map_err(|e| e.to_string()));
            match verified {
                Ok(()) => {
                    state.log(&format!("INFO webhook {kind} applied"));
                    axum::Json(json!({"applied": kind})).into_response()
                }
                Err(e) => {
                    state.log(&format!("INFO webhook refused: {e}"));
                    (StatusCode::BAD_REQUEST, axum::Json(json!({"detail": format!("invalid signature: {e}")}))).into_response()
                }
            }
        }
    }
}

// config slice
/// [`Behaviour::bundled_roots_only`]: a client through `HTTPS_PROXY` trusting webpki-roots only.
pub(crate) fn config_slice_client(behaviour: &Behaviour, env: &BTreeMap<String, String>) -> Result<Option<reqwest::Client>, String> {
    if !behaviour.bundled_roots_only {
        return Ok(None);
    }
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(5));
    if let Some(proxy) = env.get("HTTPS_PROXY").filter(|p| !p.is_empty()) {
        builder = builder.proxy(reqwest::Proxy::https(proxy).map_err(|e| format!("stub-backend: HTTPS_PROXY: {e}"))?);
    }
    builder.build().map(Some).map_err(|e| format!("stub-backend: HTTP client: {e}"))
}
