//! Cookie sessions: the cookies a browser holds on a Clerk app, the clients they belong to,
//! and the handshake that refreshes them.
//!
//! Written from Clerk's own sources (`clerk/javascript`): `@clerk/shared` `keys.ts`
//! (`getCookieSuffix`), `clerk-js` `core/auth/cookies/*` (which cookies the browser SDK sets,
//! suffixed and un-suffixed), `@clerk/backend` `tokens/authenticateContext.ts`, `request.ts`
//! and `handshake.ts` (how a backend reads them and when it redirects to the handshake).
//!
//! - `__session` holds the session token (60 s), `__client_uat` the client's last update
//!   (Unix seconds, `0` when signed out), and on development instances `__clerk_db_jwt` the
//!   dev browser id (`dvb_…`) that identifies the client to FAPI. Each is set twice: plain and
//!   suffixed with [`cookie_suffix`] of the publishable key (`__session_<suffix>`).
//! - A backend that cannot trust the cookies (token expired, `iat` before `__client_uat`,
//!   dev browser missing) redirects the document request (307) to
//!   `https://<fapi>/v1/client/handshake?redirect_url=…&format=nonce&…`. FAPI finds the
//!   client (dev browser on development instances, the `__client` cookie on its own domain in
//!   production; a first visit without a dev browser gets a new, signed-out client), computes
//!   the cookies it should have, keeps them under a nonce and redirects
//!   back to `redirect_url` with `__clerk_handshake_nonce` (a query parameter in development,
//!   a cookie in production). The backend fetches the cookies from the Backend API
//!   (`GET /v1/clients/handshake_payload?nonce=…` → `{"directives": [Set-Cookie, …]}`) and
//!   sets them. With `format=token` the directives travel in a signed `__clerk_handshake` JWT
//!   instead (claim `handshake`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

pub(crate) mod clients;

pub use clients::{Client, Clients, NONCE_LIFETIME_MS};

use crate::error::Error;
use crate::instance::Environment;
use crate::state::Shared;
use crate::tokens::TokenVersion;

/// The session token cookie.
pub const SESSION: &str = "__session";
/// The client's last update, Unix seconds (`0`: signed out).
pub const CLIENT_UAT: &str = "__client_uat";
/// The dev browser id (development instances).
pub const DEV_BROWSER: &str = "__clerk_db_jwt";
/// The handshake token (cookie in production, query parameter in development).
pub const HANDSHAKE: &str = "__clerk_handshake";
/// The handshake nonce (cookie in production, query parameter in development).
pub const HANDSHAKE_NONCE: &str = "__clerk_handshake_nonce";
/// The backend's own handshake loop counter (`@clerk/backend` gives up at 3).
pub const REDIRECT_COUNT: &str = "__clerk_redirect_count";
/// The client cookie FAPI keeps on its own domain (production instances).
pub const CLIENT: &str = "__client";
/// `Max-Age` of the long-lived cookies (the browser SDK sets them for a year).
const ONE_YEAR_SECS: i64 = 365 * 24 * 3600;

/// The cookie-name suffix of a publishable key, exactly as `@clerk/shared` `getCookieSuffix`
/// computes it: SHA-1 of the key, standard base64, `+`→`-`, `/`→`_`, first 8 characters.
///
/// ```
/// // The cases of @clerk/shared's own test (src/__tests__/keys.spec.ts).
/// use mock_clerk::cookies::cookie_suffix;
/// assert_eq!(cookie_suffix("pk_live_ZmFrZS1jbGVyay10ZXN0LmNsZXJrLmFjY291bnRzLmRldiQ="), "qReyu04C");
/// assert_eq!(cookie_suffix("pk_test_Y2xlcmsuY2xlcmsuZGV2JA"), "QvfNY2dr");
/// assert_eq!(cookie_suffix("pk_test_ZW5vdWdoLWFscGFjYS04Mi5jbGVyay5hY2NvdW50cy5sY2xjbGVyay5jb20k"), "jtYvyt_H");
/// assert_eq!(cookie_suffix("pk_test_eHh4eHh4LXhhYWFhYS1hYS5jbGVyay5hY2NvdW50cy5sY2xjbGVyay5jb20k"), "tZJdb-5s");
/// ```
#[must_use]
pub fn cookie_suffix(publishable_key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, publishable_key.as_bytes());
    STANDARD.encode(digest.as_ref()).replace('+', "-").replace('/', "_").chars().take(8).collect()
}

/// `<name>_<suffix>` (`getSuffixedCookieName`).
#[must_use]
pub fn suffixed(name: &str, suffix: &str) -> String {
    format!("{name}_{suffix}")
}

/// The name of a `Set-Cookie` directive, as `@clerk/backend` `getCookieName` reads it.
#[must_use]
pub fn directive_name(directive: &str) -> &str {
    directive.split(';').next().and_then(|kv| kv.split('=').next()).unwrap_or("")
}

/// The value of a `Set-Cookie` directive, as `@clerk/backend` `getCookieValue` reads it.
#[must_use]
pub fn directive_value(directive: &str) -> &str {
    directive.split(';').next().and_then(|kv| kv.split('=').nth(1)).unwrap_or("")
}

/// A signed-in browser: the cookies it holds on the application's domain.
#[derive(Clone, Debug)]
pub struct BrowserSession {
    /// Its client.
    pub client: Client,
    /// The signed-in session.
    pub session_id: String,
    /// The cookie-name suffix of the instance's publishable key.
    pub suffix: String,
    /// `__session`.
    pub session_token: String,
    /// `__client_uat` (Unix seconds).
    pub client_uat: i64,
    /// Whether `__clerk_db_jwt` is set (development instances).
    pub development: bool,
}

impl BrowserSession {
    /// The cookies as name/value pairs, suffixed and plain, as `clerk-js` sets them.
    #[must_use]
    pub fn cookies(&self) -> Vec<(String, String)> {
        browser_cookies(&self.suffix, &self.session_token, self.client_uat, self.development.then_some(self.client.dev_browser.as_str()))
    }

    /// The `Cookie` header a browser sends with them.
    #[must_use]
    pub fn cookie_header(&self) -> String {
        cookie_header(&self.cookies())
    }
}

/// The cookies `clerk-js` keeps on the application for a session token: `__session` and
/// `__client_uat` (and `__clerk_db_jwt` when a dev browser is given), each suffixed and plain.
#[must_use]
pub fn browser_cookies(suffix: &str, session_token: &str, client_uat: i64, dev_browser: Option<&str>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut both = |name: &str, value: String| {
        out.push((suffixed(name, suffix), value.clone()));
        out.push((name.to_string(), value));
    };
    both(SESSION, session_token.to_string());
    both(CLIENT_UAT, client_uat.to_string());
    if let Some(dev_browser) = dev_browser {
        both(DEV_BROWSER, dev_browser.to_string());
    }
    out
}

/// `name=value; name=value` as a browser sends cookies.
#[must_use]
pub fn cookie_header(cookies: &[(String, String)]) -> String {
    cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
}

/// What a handshake request asks for (`GET /v1/client/handshake`).
#[derive(Clone, Debug, Default)]
pub struct HandshakeRequest {
    /// Where to send the browser back.
    pub redirect_url: String,
    /// `nonce` or `token` (default `token`, as in the spec).
    pub format: Option<String>,
    /// `suffixed_cookies=true`: set the suffixed cookies too.
    pub suffixed_cookies: bool,
    /// The dev browser id (query parameter or cookie).
    pub dev_browser: Option<String>,
    /// The `__client` cookie on FAPI's domain (production).
    pub client_cookie: Option<String>,
    /// `organization_id`: `Some("")` activates the personal account.
    pub organization_id: Option<String>,
}

/// Where FAPI sends the browser back, and what it sets on the way.
#[derive(Clone, Debug)]
pub struct HandshakeRedirect {
    /// The `Location` of the 307.
    pub location: String,
    /// `Set-Cookie` headers of the 307 (production: the nonce or the token).
    pub set_cookies: Vec<String>,
    /// The directives the backend will set.
    pub directives: Vec<String>,
}

/// Why a handshake cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// `redirect_url` missing.
    #[error("redirect_url is missing")]
    MissingRedirectUrl,
    /// `redirect_url` not an absolute http(s) URL.
    #[error("redirect_url {0:?} is not an absolute http(s) URL")]
    InvalidRedirectUrl(String),
    /// `format` not `nonce` or `token`.
    #[error("format {0:?} is not nonce or token")]
    InvalidFormat(String),
    /// Development instance and a dev browser FAPI does not know.
    #[error("unknown dev browser: development instances name the client by __clerk_db_jwt")]
    DevBrowserUnauthenticated,
    /// Minting failed.
    #[error(transparent)]
    Mock(#[from] Error),
}

impl Shared {
    /// The cookie-name suffix of this instance's publishable key.
    #[must_use]
    pub fn cookie_suffix(&self) -> String {
        cookie_suffix(self.instance.publishable_key())
    }

    /// Signs a browser in with `session_id`: the session's client becomes known to FAPI (with
    /// a dev browser on development instances) and uses that session; returns the cookies the
    /// browser SDK then holds on the application (`origin` becomes the token's `azp`).
    ///
    /// # Errors
    /// Unknown or inactive session.
    pub fn browser_sign_in(&self, session_id: &str, origin: Option<&str>) -> Result<BrowserSession, Error> {
        let session = self.active_session(session_id)?;
        let now = self.instance.clock().now_ms();
        self.browser_client(session_id)?;
        let client = self.clients.update(&session.client_id, now, |c| c.last_active_session_id = Some(session.id.clone()))?;
        let session_token = self.mint_session_token(&session.id, origin, TokenVersion::V2)?;
        Ok(BrowserSession {
            client_uat: client.updated_at / 1000,
            client,
            session_id: session.id,
            suffix: self.cookie_suffix(),
            session_token,
            development: self.instance.environment() == Environment::Development,
        })
    }

    /// The browser client of `session_id` (its `client_id`), made known to FAPI on first use
    /// with the session as its active one; an existing client is returned unchanged.
    ///
    /// # Errors
    /// Unknown session.
    pub fn browser_client(&self, session_id: &str) -> Result<Client, Error> {
        let session = self.store.session(session_id)?;
        if let Some(client) = self.clients.get(&session.client_id) {
            return Ok(client);
        }
        let client = self.clients.create(Some(&session.client_id), session.created_at);
        self.clients.update(&client.id, session.created_at, |c| c.last_active_session_id = Some(session.id.clone()))
    }

    /// The `Set-Cookie` directives that bring a browser of `client` up to date on the
    /// application at `origin`: a fresh `__session` and `__client_uat` (and the dev browser on
    /// development instances) when its session can mint, clearing ones when signed out.
    ///
    /// # Errors
    /// Minting failed.
    pub fn handshake_directives(&self, client: Option<&Client>, origin: Option<&str>, suffixed_cookies: bool) -> Result<Vec<String>, Error> {
        let production = self.instance.environment() == Environment::Production;
        let attrs = if production { "Path=/; SameSite=Lax; Secure" } else { "Path=/; SameSite=Lax" };
        let signed_in = client.and_then(|c| c.last_active_session_id.as_deref()).filter(|sid| self.active_session(sid).is_ok());
        let suffix = self.cookie_suffix();
        let mut values: Vec<(&str, String)> = Vec::new();
        match (signed_in, client) {
            (Some(sid), Some(c)) => {
                let token = self.mint_session_token(sid, origin, TokenVersion::V2)?;
                values.push((SESSION, format!("{token}; {attrs}; Max-Age={ONE_YEAR_SECS}")));
                values.push((CLIENT_UAT, format!("{}; {attrs}; Max-Age={ONE_YEAR_SECS}", c.updated_at / 1000)));
            }
            _ => {
                values.push((SESSION, format!("; {attrs}; Max-Age=0")));
                values.push((CLIENT_UAT, format!("0; {attrs}; Max-Age={ONE_YEAR_SECS}")));
            }
        }
        if let (false, Some(c)) = (production, client) {
            values.push((DEV_BROWSER, format!("{}; {attrs}; Max-Age={ONE_YEAR_SECS}", c.dev_browser)));
        }
        let mut directives = Vec::new();
        for (name, rest) in values {
            if suffixed_cookies {
                directives.push(format!("{}={rest}", suffixed(name, &suffix)));
            }
            directives.push(format!("{name}={rest}"));
        }
        Ok(directives)
    }

    /// Answers `GET /v1/client/handshake`: the directives for the browser's client, kept under
    /// a nonce (`format=nonce`) or signed into a handshake token (`format=token`), and where
    /// to send the browser back with them.
    ///
    /// # Errors
    /// See [`HandshakeError`].
    pub fn handshake(&self, request: &HandshakeRequest) -> Result<HandshakeRedirect, HandshakeError> {
        if request.redirect_url.is_empty() {
            return Err(HandshakeError::MissingRedirectUrl);
        }
        let mut redirect = url::Url::parse(&request.redirect_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| HandshakeError::InvalidRedirectUrl(request.redirect_url.clone()))?;
        let format = request.format.as_deref().unwrap_or("token");
        if !matches!(format, "nonce" | "token") {
            return Err(HandshakeError::InvalidFormat(format.into()));
        }
        let production = self.instance.environment() == Environment::Production;
        let client = if production {
            request.client_cookie.as_deref().and_then(|t| self.clients.by_token(t))
        } else {
            // No dev browser at all is a first visit: a new (signed-out) client and its dev
            // browser, which the directives hand to the app. One FAPI does not know is refused.
            Some(match request.dev_browser.as_deref() {
                None | Some("") => self.clients.create(None, self.instance.clock().now_ms()),
                Some(token) => self.clients.by_token(token).ok_or(HandshakeError::DevBrowserUnauthenticated)?,
            })
        };
        if let (Some(org), Some(sid)) = (request.organization_id.as_deref(), client.as_ref().and_then(|c| c.last_active_session_id.as_deref())) {
            // "If the organization cannot be set as active […] the active organization for the
            // session will not change."
            let org_id = if org.is_empty() { None } else { self.store.organization(org).ok().map(|o| o.id) };
            if org.is_empty() || org_id.is_some() {
                let _ = self.store.set_active_organization(sid, org_id.as_deref());
            }
        }
        let origin = redirect.origin().ascii_serialization();
        let directives = self.handshake_directives(client.as_ref(), Some(&origin), request.suffixed_cookies)?;
        let now = self.instance.clock().now_ms();
        let (name, value) = if format == "nonce" {
            (HANDSHAKE_NONCE, self.clients.store_nonce(directives.clone(), now + NONCE_LIFETIME_MS))
        } else {
            (HANDSHAKE, self.handshake_token(&directives)?)
        };
        let mut set_cookies = Vec::new();
        if production {
            set_cookies.push(format!("{name}={value}; Path=/; Max-Age=60; SameSite=Lax; Secure; HttpOnly"));
        } else {
            redirect.query_pairs_mut().append_pair(name, &value);
        }
        Ok(HandshakeRedirect { location: redirect.to_string(), set_cookies, directives })
    }

    /// A handshake token: `{"handshake": [directives…]}` signed by the instance key with the
    /// session-token header (`@clerk/backend` `verifyHandshakeJwt` refuses other categories).
    fn handshake_token(&self, directives: &[String]) -> Result<String, Error> {
        let key = self.instance.active_key();
        let now = self.instance.clock().now_unix();
        let mut header = Map::new();
        header.insert("alg".into(), json!("RS256"));
        header.insert("cat".into(), json!(crate::tokens::CAT_SESSION));
        header.insert("kid".into(), json!(key.kid()));
        header.insert("typ".into(), json!("JWT"));
        let mut claims = Map::new();
        claims.insert("handshake".into(), json!(directives));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + NONCE_LIFETIME_MS / 1000));
        crate::jwt::encode(&header, &claims, &crate::jwt::Signer::Rs256(key))
    }

    /// The FAPI client JSON (`Client.Client` of the Frontend API spec).
    #[must_use]
    pub fn client_json(&self, client: &Client) -> Value {
        let sessions: Vec<Value> = client
            .last_active_session_id
            .iter()
            .filter_map(|sid| self.store.session(sid).ok())
            .filter(|s| s.status.can_mint())
            .map(|s| {
                let user = self.store.user(&s.user_id).ok();
                let identifier = user.as_ref().and_then(|u| u.primary_email().or(u.primary_phone()).or(u.username.as_deref())).unwrap_or_default().to_string();
                json!({
                    "object": "session",
                    "id": s.id,
                    "status": s.status.as_str(),
                    "expire_at": s.expire_at,
                    "abandon_at": s.abandon_at,
                    "last_active_at": s.last_active_at,
                    "last_active_token": Value::Null,
                    "last_active_organization_id": s.last_active_organization_id,
                    "actor": s.actor,
                    "public_user_data": {
                        "first_name": user.as_ref().and_then(|u| u.first_name.clone()),
                        "last_name": user.as_ref().and_then(|u| u.last_name.clone()),
                        "image_url": user.as_ref().map(|u| u.image_url.clone()),
                        "has_image": user.as_ref().is_some_and(|u| u.has_image),
                        "identifier": identifier,
                        "user_id": s.user_id,
                        "username": user.as_ref().and_then(|u| u.username.clone()),
                    },
                    "factor_verification_age": [((self.instance.clock().now_ms() - s.first_factor_at) / 60_000).max(0), -1],
                    "created_at": s.created_at,
                    "updated_at": s.updated_at,
                })
            })
            .collect();
        let last_active = sessions.first().and_then(|s| s["id"].as_str().map(str::to_string));
        json!({
            "object": "client",
            "id": client.id,
            "sessions": sessions,
            "sign_in": Value::Null,
            "sign_up": Value::Null,
            "last_active_session_id": last_active,
            "last_authentication_strategy": Value::Null,
            "cookie_expires_at": client.created_at + ONE_YEAR_SECS * 1000,
            "captcha_bypass": false,
            "created_at": client.created_at,
            "updated_at": client.updated_at,
        })
    }
}
