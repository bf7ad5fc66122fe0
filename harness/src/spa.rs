//! An HTTP client that behaves like the SPA: it runs on an origin (sends `Origin`), gets its
//! token the way the frontend code does (`getToken()`, `getToken({ template })`, or — the
//! classic mistake — the session id), and calls the backend with `Authorization: Bearer` or,
//! with `[token] transport = "cookie"`, with the cookies `clerk-js` keeps (`__session`, …).

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::CookieStore as _;
use reqwest::header::{HeaderValue, AUTHORIZATION, COOKIE, ORIGIN};
use reqwest::{Method, RequestBuilder, Response};

use mock_clerk::MockClerk;
use url::Url;

use crate::error::Result;
use crate::profile::{Endpoint, Profile, TokenKind, Transport};

/// Which token the SPA sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetToken {
    /// What the profile says the SPA sends (session token or its template).
    ProfileDefault,
    /// `getToken()`: the default session token.
    Session,
    /// `getToken({ template })`.
    Template(String),
    /// `session.id` sent as if it were a token (`sess_…`).
    SessionIdByMistake,
}

/// The SPA, borrowed from a [`TestEnv`](crate::TestEnv): see [`TestEnv::spa`](crate::TestEnv::spa).
///
/// ```no_run
/// # async fn demo(env: &harness::TestEnv) -> anyhow::Result<()> {
/// use harness::GetToken;
/// let signed_in = env.sign_in(mock_clerk::NewUser::with_email("ada@example.com"))?;
/// let token = env.spa().get_token(&signed_in.session.id, &GetToken::ProfileDefault)?;
/// let response = env.spa().get("/api/v1/auth/me").bearer_auth(token).send().await?;
/// assert_eq!(response.status(), 200);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Spa<'a> {
    mock: &'a MockClerk,
    profile: &'a Profile,
    /// The environment's backend, and the plain client to it.
    backend_url: &'a Url,
    http: &'a reqwest::Client,
    origin: Option<String>,
    client: Option<reqwest::Client>,
    /// Where [`Spa::request`] sends to, when not the environment's backend.
    base: Option<url::Url>,
}

/// A browser's cookie jar for one signed-in user: what `fetch(…, { credentials: 'include' })`
/// sends back to the backend. Requests made through [`Spa::with_jar`] store the backend's
/// `Set-Cookie` answers here (expiry, path and deletion as a browser applies them) and send
/// the matching cookies.
#[derive(Clone)]
pub struct CookieJar {
    jar: Arc<reqwest::cookie::Jar>,
    client: reqwest::Client,
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieJar").finish_non_exhaustive()
    }
}

impl CookieJar {
    /// An empty jar with its own client (same settings as the environment's: no proxy, redirects not followed,
    /// one retry on a dead keep-alive connection).
    ///
    /// # Errors
    /// The HTTP client could not be built.
    pub fn new(timeout: Duration) -> Result<Self> {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = backend_client_builder(timeout).cookie_provider(Arc::clone(&jar)).build()?;
        Ok(Self { jar, client })
    }

    /// The `Cookie` header the jar would send to `url`, if any cookie matches.
    #[must_use]
    pub fn cookie_header(&self, url: &url::Url) -> Option<String> {
        self.jar.cookies(url).and_then(|v| v.to_str().ok().map(str::to_owned))
    }
}

impl std::fmt::Debug for Spa<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spa")
            .field("profile", &self.profile.name.get())
            .field("backend_url", &self.backend_url.as_str())
            .field("origin", &self.origin)
            .field("base", &self.base.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}

impl<'a> Spa<'a> {
    /// The SPA of `profile` in front of the backend at `backend_url` (reached with `http`),
    /// signed in with `mock`.
    pub(crate) fn new(mock: &'a MockClerk, profile: &'a Profile, backend_url: &'a Url, http: &'a reqwest::Client) -> Self {
        Self { mock, profile, backend_url, http, origin: Some(profile.spa_origin().to_owned()), client: None, base: None }
    }

    /// Sends and stores cookies with `jar`, like a browser with `credentials: 'include'`.
    #[must_use]
    pub fn with_jar(mut self, jar: &CookieJar) -> Self {
        self.client = Some(jar.client.clone());
        self
    }

    /// Sends to the backend at `base` (e.g. a [`crate::SideBackend`]) instead of the
    /// environment's.
    #[must_use]
    pub fn at(mut self, base: &url::Url) -> Self {
        self.base = Some(base.clone());
        self
    }

    /// Runs on another origin (e.g. a disallowed one for CORS checks).
    #[must_use]
    pub fn with_origin(mut self, origin: &str) -> Self {
        self.origin = Some(origin.to_owned());
        self
    }

    /// Sends no `Origin` header (like a server-side caller).
    #[must_use]
    pub fn without_origin(mut self) -> Self {
        self.origin = None;
        self
    }

    /// The origin it sends.
    #[must_use]
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// What `getToken` returns in the page for `session_id`.
    ///
    /// # Errors
    /// Unknown or ended session, unknown template.
    pub fn get_token(&self, session_id: &str, kind: &GetToken) -> Result<String> {
        let mock = self.mock;
        let origin = self.origin.as_deref();
        let token = match kind {
            GetToken::ProfileDefault => {
                let spec = &self.profile.token;
                match (spec.kind.get(), &spec.template) {
                    (TokenKind::Template, Some(name)) => mock.template_token(session_id, name, origin)?,
                    _ => mock.session_token(session_id, origin)?,
                }
            }
            GetToken::Session => mock.session_token(session_id, origin)?,
            GetToken::Template(name) => mock.template_token(session_id, name, origin)?,
            GetToken::SessionIdByMistake => session_id.to_owned(),
        };
        Ok(token)
    }

    /// A request to the backend with the SPA's `Origin`.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let base = self.base.as_ref().unwrap_or(self.backend_url);
        let url = format!("{}{}", base.as_str().trim_end_matches('/'), path);
        let client = self.client.as_ref().unwrap_or(self.http);
        let mut builder = client.request(method, url);
        if let Some(origin) = &self.origin {
            if let Ok(value) = HeaderValue::from_str(origin) {
                builder = builder.header(ORIGIN, value);
            }
        }
        builder
    }

    /// `GET path` with the SPA's `Origin`.
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    /// A CORS preflight for `method path` asking for `headers` (e.g. `["authorization"]`).
    pub fn preflight(&self, method: &Method, path: &str, headers: &[&str]) -> RequestBuilder {
        let mut builder = self.request(Method::OPTIONS, path).header("access-control-request-method", method.as_str());
        if !headers.is_empty() {
            builder = builder.header("access-control-request-headers", headers.join(","));
        }
        builder
    }

    /// Calls a profile endpoint with the token `kind` of `session_id`.
    ///
    /// # Errors
    /// Token minting or the HTTP request failed (a non-2xx status is not an error).
    pub async fn call(&self, endpoint: &Endpoint, session_id: &str, kind: &GetToken) -> Result<Response> {
        let token = self.get_token(session_id, kind)?;
        let request = self.request(endpoint.method.as_reqwest(), endpoint.path.get());
        Ok(self.authenticate(request, Some(session_id), &token).send().await?)
    }

    /// Calls a profile endpoint with a ready-made (possibly forged) token, sent the way the
    /// profile's `[token] transport` says.
    ///
    /// # Errors
    /// The HTTP request failed.
    pub async fn call_with_token(&self, endpoint: &Endpoint, token: &str) -> Result<Response> {
        let request = self.request(endpoint.method.as_reqwest(), endpoint.path.get());
        Ok(self.authenticate(request, None, token).send().await?)
    }

    /// Adds `token` to `request` as the profile's `[token] transport` sends it: an
    /// `Authorization: Bearer` header, or the cookies `clerk-js` keeps for it
    /// ([`Spa::session_cookies`]; `session_id` names the browser's client for the dev browser).
    pub fn authenticate(&self, request: RequestBuilder, session_id: Option<&str>, token: &str) -> RequestBuilder {
        match self.profile.token.transport.get() {
            Transport::Bearer => {
                let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
                request.header(AUTHORIZATION, value)
            }
            Transport::Cookie => {
                let cookies = self.session_cookies(session_id, token);
                request.header(COOKIE, HeaderValue::from_str(&cookies).unwrap_or_else(|_| HeaderValue::from_static("__session=invalid")))
            }
        }
    }

    /// The `Cookie` header of a browser whose `clerk-js` holds `token`: `__session`,
    /// `__client_uat` (the token's `iat`: the client changed no later than the token was
    /// minted) and, on development instances with a known `session_id`, the dev browser
    /// `__clerk_db_jwt` — each plain and suffixed with the publishable key's suffix.
    #[must_use]
    pub fn session_cookies(&self, session_id: Option<&str>, token: &str) -> String {
        let mock = self.mock;
        let iat = mock_clerk::decode_unverified(token).ok().and_then(|(_, claims)| claims.get("iat").and_then(serde_json::Value::as_i64));
        let client_uat = iat.unwrap_or_else(|| mock.clock().now_unix());
        let development = mock.instance().environment() == mock_clerk::Environment::Development;
        let dev_browser = session_id.filter(|_| development).and_then(|sid| mock.browser_client(sid).ok()).map(|c| c.dev_browser);
        mock_clerk::cookies::cookie_header(&mock_clerk::cookies::browser_cookies(&mock.cookie_suffix(), token, client_uat, dev_browser.as_deref()))
    }
}

/// The client the SPA (and every scenario) talks to the backend with. It behaves like a
/// browser when a pooled keep-alive connection turns out to be dead — the server closed it
/// after its last answer (uvicorn does after a 500) and the request got no answer at all:
/// the request is sent once more on a new connection. Any answer, a timeout, or a second
/// connection failure is final. `timeout` bounds each request.
///
/// # Errors
/// The TLS backend could not be initialised.
pub fn backend_client(timeout: std::time::Duration) -> Result<reqwest::Client> {
    Ok(backend_client_builder(timeout).build()?)
}

/// [`backend_client`]'s settings, to add a cookie jar to. Redirects are NOT followed: callers
/// see (and report) each 3xx, and a browser never follows one on a CORS preflight either.
fn backend_client_builder(timeout: std::time::Duration) -> reqwest::ClientBuilder {
    /// Every host: the client only ever talks to the backend.
    struct AnyHost;
    impl PartialEq<&str> for AnyHost {
        fn eq(&self, _: &&str) -> bool {
            true
        }
    }
    let retry = reqwest::retry::for_host(AnyHost).no_budget().max_retries_per_request(1).classify_fn(|attempt| {
        match attempt.error().and_then(|e| e.downcast_ref::<reqwest::Error>()) {
            Some(e) if is_dead_connection(e) => {
                tracing::debug!(error = %e, "the connection was closed before an answer: sending once more on a new connection");
                attempt.retryable()
            }
            _ => attempt.success(),
        }
    });
    reqwest::Client::builder().no_proxy().timeout(timeout).retry(retry).redirect(reqwest::redirect::Policy::none())
}

/// A connection-level failure before any answer: the server closed (or reset) the
/// connection. Timeouts are not: the request may be running.
fn is_dead_connection(e: &reqwest::Error) -> bool {
    if e.is_timeout() || e.status().is_some() || !e.is_request() {
        return false;
    }
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            if hyper.is_incomplete_message() || hyper.is_canceled() || hyper.is_closed() {
                return true;
            }
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
            if matches!(io.kind(), ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof) {
                return true;
            }
        }
        source = cause.source();
    }
    false
}
