//! The browser clients FAPI knows (by dev browser id or `__client` cookie) and the
//! handshake payloads pending under their nonces.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::Error;

/// How long a handshake nonce can be redeemed, ms.
pub const NONCE_LIFETIME_MS: i64 = 5 * 60 * 1000;

/// A browser client: what FAPI knows of one browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// `client_…` (the `client_id` of its sessions).
    pub id: String,
    /// The dev browser id that names it on development instances (`dvb_…`).
    pub dev_browser: String,
    /// The `__client` cookie that names it on production instances.
    pub client_cookie: String,
    /// The session the browser uses, if signed in.
    pub last_active_session_id: Option<String>,
    /// ms.
    pub created_at: i64,
    /// ms; `__client_uat` is this in seconds.
    pub updated_at: i64,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<String, Client>,
    /// dev browser id or `__client` cookie → client id.
    by_token: HashMap<String, String>,
    /// nonce → (directives, expires at ms).
    nonces: HashMap<String, (Vec<String>, i64)>,
}

/// The browser clients of an instance and the pending handshake payloads.
#[derive(Default)]
pub struct Clients(Mutex<Inner>);

impl Clients {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new client with no session (`POST /v1/dev_browser`, or a first visit to FAPI).
    pub fn create(&self, id: Option<&str>, now_ms: i64) -> Client {
        let client = Client {
            id: id.map_or_else(|| crate::ids::new_id("client"), str::to_string),
            dev_browser: crate::ids::new_id("dvb"),
            client_cookie: crate::ids::base62(40),
            last_active_session_id: None,
            created_at: now_ms,
            updated_at: now_ms,
        };
        let mut inner = self.lock();
        inner.by_token.insert(client.dev_browser.clone(), client.id.clone());
        inner.by_token.insert(client.client_cookie.clone(), client.id.clone());
        inner.clients.insert(client.id.clone(), client.clone());
        client
    }

    /// The client named by a dev browser id or a `__client` cookie.
    #[must_use]
    pub fn by_token(&self, token: &str) -> Option<Client> {
        let inner = self.lock();
        inner.by_token.get(token).and_then(|id| inner.clients.get(id)).cloned()
    }

    /// A client by id.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<Client> {
        self.lock().clients.get(id).cloned()
    }

    /// Changes a client; `updated_at` moves to `now_ms` (what `__client_uat` reports).
    ///
    /// # Errors
    /// [`Error::ClientNotFound`].
    pub fn update(&self, id: &str, now_ms: i64, change: impl FnOnce(&mut Client)) -> Result<Client, Error> {
        let mut inner = self.lock();
        let client = inner.clients.get_mut(id).ok_or_else(|| Error::ClientNotFound(id.into()))?;
        change(client);
        client.updated_at = now_ms;
        Ok(client.clone())
    }

    /// Keeps `directives` under a new nonce until `expires_ms`.
    pub fn store_nonce(&self, directives: Vec<String>, expires_ms: i64) -> String {
        let nonce = crate::ids::base62(32);
        let mut inner = self.lock();
        inner.nonces.retain(|_, (_, until)| *until > expires_ms - NONCE_LIFETIME_MS);
        inner.nonces.insert(nonce.clone(), (directives, expires_ms));
        nonce
    }

    /// The directives kept under `nonce`, if it is known and not expired.
    #[must_use]
    pub fn redeem(&self, nonce: &str, now_ms: i64) -> Option<Vec<String>> {
        self.lock().nonces.get(nonce).filter(|(_, until)| *until > now_ms).map(|(d, _)| d.clone())
    }
}
