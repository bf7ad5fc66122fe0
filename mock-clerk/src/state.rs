//! The state a running instance shares between its routers and its [`MockClerk`] handle,
//! and the middleware every request passes (faults, then recording).
//!
//! [`MockClerk`]: crate::MockClerk

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ClerkApiError, Error};
use crate::faults::{redact, Api, FaultAction, Faults, RecordedRequest};
use crate::instance::Instance;
use crate::machine::MachineTokens;
use crate::model::Session;
use crate::store::Store;
use crate::tokens::TokenVersion;
use crate::webhooks::Webhooks;

/// State shared by the routers and the handle.
#[derive(Clone)]
pub(crate) struct Shared(pub(crate) Arc<Inner>);

/// The parts of a running instance.
pub(crate) struct Inner {
    /// Identity and keys.
    pub(crate) instance: Instance,
    /// Users, sessions, templates.
    pub(crate) store: Store,
    /// Faults and the request record.
    pub(crate) faults: Faults,
    /// Webhook endpoints, delivery and log.
    pub(crate) webhooks: Webhooks,
    /// API keys, M2M tokens and OAuth access tokens.
    pub(crate) machine_tokens: MachineTokens,
    /// Browser clients (dev browsers, `__client` cookies) and pending handshake payloads.
    pub(crate) clients: crate::cookies::clients::Clients,
    /// Session tokens minted this second (see [`Shared::mint_session_token`]).
    token_cache: std::sync::Mutex<TokenCache>,
    /// Other instances whose secret keys this Backend API also answers ([`MockClerk::add_peer`]).
    pub(crate) peers: std::sync::RwLock<Vec<std::sync::Weak<Inner>>>,
}

/// RS256 (PKCS#1 v1.5) signatures are deterministic, so the same header and claims always
/// encode to the same token: within one second (`iat` resolution) a repeated request for
/// the same session, origin and version gets the byte-identical token without re-signing.
#[derive(Default)]
struct TokenCache {
    second: i64,
    tokens: std::collections::HashMap<String, String>,
}

impl std::ops::Deref for Shared {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Shared {
    /// A new shared state.
    #[must_use]
    pub fn new(instance: Instance, store: Store) -> Self {
        let webhooks = Webhooks::new(&instance, &store);
        let machine_tokens = crate::machine::MachineTokens::new(store.clock().clone());
        Self(Arc::new(Inner {
            instance,
            store,
            faults: Faults::default(),
            webhooks,
            machine_tokens,
            clients: crate::cookies::clients::Clients::default(),
            token_cache: std::sync::Mutex::default(),
            peers: std::sync::RwLock::default(),
        }))
    }

    /// The live peer instance whose secret key is `key`, if any ([`MockClerk::add_peer`]).
    pub(crate) fn peer_with_key(&self, key: &str) -> Option<Shared> {
        let peers = self.peers.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        peers.iter().filter_map(std::sync::Weak::upgrade).map(Shared).find(|peer| peer.instance.secret_key().expose() == key)
    }

    /// A session that can mint tokens (Clerk answers 404 for the others: revoked, ended,
    /// expired, removed, abandoned, replaced).
    ///
    /// This is the one session check of every minting path — FAPI, BAPI, the admin API and
    /// the in-process API all mint through [`Shared::mint_session_token`] and
    /// [`Shared::mint_template_token`] — so a revoked session gets no token anywhere.
    /// Only the forging API (negative tests) builds tokens for any session.
    pub(crate) fn active_session(&self, sid: &str) -> Result<Session, Error> {
        let session = self.store.session(sid)?;
        if session.status.can_mint() {
            Ok(session)
        } else {
            Err(Error::SessionNotFound(format!("{sid} (status {}: only active and pending sessions get tokens)", session.status.as_str())))
        }
    }

    /// Mints the session token of `sid`, optionally with another lifetime (BAPI's
    /// `expires_in_seconds`).
    pub(crate) fn mint_session_token_for(
        &self,
        sid: &str,
        origin: Option<&str>,
        version: TokenVersion,
        expires_in_seconds: Option<i64>,
    ) -> Result<String, Error> {
        let Some(secs) = expires_in_seconds else { return self.mint_session_token(sid, origin, version) };
        let session = self.active_session(sid)?;
        let mut parts = crate::tokens::session_token(&self.instance, &session, origin, version);
        let iat = parts.claims.get("iat").and_then(serde_json::Value::as_i64).unwrap_or(0);
        parts.claims.insert("exp".into(), serde_json::json!(expiry(iat, secs)?));
        parts.encode()
    }

    /// Mints a template token for `sid`, optionally with another lifetime than the
    /// template's (BAPI's `expires_in_seconds`).
    pub(crate) fn mint_template_token_for(&self, sid: &str, template: &str, origin: Option<&str>, expires_in_seconds: Option<i64>) -> Result<String, Error> {
        let session = self.active_session(sid)?;
        let mut template = self.store.template(template)?;
        if let Some(secs) = expires_in_seconds {
            expiry(self.instance.clock().now_unix(), secs)?;
            template.lifetime = secs;
        }
        let user = self.store.user(&session.user_id)?;
        crate::tokens::template_token(&self.instance, &template, &session, &user, origin)?.encode()
    }

    /// Mints the session token of `sid`.
    pub(crate) fn mint_session_token(&self, sid: &str, origin: Option<&str>, version: TokenVersion) -> Result<String, Error> {
        let session = self.active_session(sid)?;
        let now = self.instance.clock().now_unix();
        // Every session field a token depends on is in the key: with a frozen clock a change
        // (organisation, role, actor, second factor) does not move `updated_at`.
        let key = format!(
            "{sid}|{}|{version:?}|{}|{}|{:?}|{:?}|{:?}|{:?}",
            origin.unwrap_or(""),
            session.updated_at,
            self.instance.active_key().kid(),
            session.status,
            session.active_organization,
            session.actor,
            session.second_factor_at
        );
        {
            let cache = self.token_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.second == now {
                if let Some(token) = cache.tokens.get(&key) {
                    return Ok(token.clone());
                }
            }
        }
        let parts = crate::tokens::session_token(&self.instance, &session, origin, version);
        let token = parts.encode()?;
        let issued_at = parts.claims.get("iat").and_then(serde_json::Value::as_i64);
        let mut cache = self.token_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.second != now {
            cache.second = now;
            cache.tokens.clear();
        }
        if issued_at == Some(now) {
            cache.tokens.insert(key, token.clone());
        }
        Ok(token)
    }

    /// Mints a template token for `sid`.
    pub(crate) fn mint_template_token(&self, sid: &str, template: &str, origin: Option<&str>) -> Result<String, Error> {
        self.mint_template_token_for(sid, template, origin, None)
    }
}

/// `iat + secs`, or an error naming the lifetime when it does not fit an `i64` (callers
/// check Clerk's bounds first; this keeps a caller that does not from wrapping or panicking).
fn expiry(iat: i64, secs: i64) -> Result<i64, Error> {
    iat.checked_add(secs).ok_or_else(|| Error::InvalidLifetime(format!("a lifetime of {secs} s from {iat} does not fit a JWT's exp")))
}

/// Fallback of both APIs: Clerk's 404 JSON.
pub(crate) async fn unknown_route(request: Request) -> Response {
    ClerkApiError::unknown_route(request.method().as_str(), request.uri().path()).into_response()
}

/// Applies injected faults, then records the request with its final status.
pub(crate) async fn record_and_fault(State((shared, api)): State<(Shared, Api)>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let headers: Vec<(String, String)> = request.headers().iter().map(|(k, v)| (k.to_string(), redact(k.as_str(), v.to_str().unwrap_or("<binary>")))).collect();
    let at_ms = shared.instance.clock().now_ms();
    let received = std::time::SystemTime::now();
    let started = std::time::Instant::now();
    let fault = if path.starts_with("/_mock") { None } else { shared.faults.take_matching(api, &method, &path) };
    let received_us = received.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    // A request held by a delay is on the record from its arrival (status 0 until answered).
    let held = match fault.as_ref().map(|f| &f.action) {
        Some(FaultAction::Latency { .. } | FaultAction::Hang { .. }) => Some(shared.faults.record_held(RecordedRequest {
            api,
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            headers: headers.clone(),
            status: 0,
            at_ms,
            faulted: true,
            received_us,
            duration_us: 0,
        })),
        _ => None,
    };
    let (response, faulted) = match fault {
        Some(fault) => match fault.action {
            FaultAction::Latency { millis } => {
                tokio::time::sleep(Duration::from_millis(millis)).await;
                (next.run(request).await, true)
            }
            FaultAction::Hang { millis } => {
                tokio::time::sleep(Duration::from_millis(millis)).await;
                (fault.error().into_response(), true)
            }
            _ => (fault.error().into_response(), true),
        },
        None => (next.run(request).await, false),
    };
    tracing::debug!(?api, %method, %path, status = response.status().as_u16(), faulted, "request");
    let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    match held {
        Some(seq) => shared.faults.complete_held(seq, response.status().as_u16(), duration_us),
        None => shared.faults.record(RecordedRequest {
            api,
            method,
            path,
            query,
            headers,
            status: response.status().as_u16(),
            at_ms,
            faulted,
            received_us,
            duration_us,
        }),
    }
    response
}
