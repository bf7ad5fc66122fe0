//! # stub-backend
//!
//! A small backend, served inside the test process, that verifies Clerk session tokens the
//! way a correct Clerk backend does — RS256 pinned, keys from the instance's JWKS, 5 s of
//! clock leeway, `sub` required, `iss`/`aud`/`azp` checked when configured, `401` with
//! `WWW-Authenticate: Bearer` for every refusal, CORS headers on errors too — with one
//! switch per misbehaviour ([`Behaviour`]). It is configured like a real backend, by the
//! environment the harness builds from its [profile](profile()), and started by the harness
//! through [`harness::Launcher`], so the harness's verdicts can be tested in
//! milliseconds without Python, Docker or Postgres.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), harness::HarnessError> {
//! use stub_backend::{Behaviour, Stub};
//! // A backend that refuses with 403 where Clerk's SDKs answer 401.
//! let config = Stub::new(Behaviour { forbidden_instead_of_401: true, ..Behaviour::default() }).config();
//! let env = harness::TestEnv::builder(stub_backend::profile()).config(config).start().await?;
//! let url = format!("{}{}", env.backend_url().as_str().trim_end_matches('/'), stub_backend::ME_PATH);
//! assert_eq!(env.http().get(url).send().await?.status(), 403);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use harness::Stream;
use harness::{HarnessConfig, LogBuffer, Profile};
use harness::{InProcessServer, LaunchFuture, Launcher};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::json;
use tower::ServiceExt as _;

mod data;

pub use data::RACE_PROBABILITY;

/// The stub's token endpoint.
pub const ME_PATH: &str = "/api/me";

/// A route that answers every call with the application's own 404 (`{"detail": "user not
/// found"}`), as an API does for a user it does not know: not a missing route.
pub const MISSING_USER_PATH: &str = "/api/profile";

/// A page route that redirects to a login page (session auth).
pub const LOGIN_PAGE_PATH: &str = "/dashboard";

/// A second token endpoint (undeclared in [`PROFILE`]; tests add it): a valid user's list.
pub const ITEMS_PATH: &str = "/api/items";

/// An organization-gated endpoint (undeclared in [`PROFILE`]; tests add it with
/// [`ORG_ENDPOINT`]): `org:admin` of the active organization, read from the v2 `o` claim.
pub const ORG_PATH: &str = "/api/org/settings";

/// The `[[endpoints]]` entry of [`ORG_PATH`], for [`profile_with`].
pub const ORG_ENDPOINT: &str = "[[endpoints]]\nmethod = \"GET\"\npath = \"/api/org/settings\"\nstatus = 200\norg_role = \"org:admin\"\n\n";

/// An organization-gated endpoint by permission (undeclared in [`PROFILE`]; tests add it
/// with [`ORG_PERMISSION_ENDPOINT`]): `org:invoices:manage`, decoded from `fea`, `o.per` and
/// `o.fpm` as Clerk's SDKs decode them.
pub const ORG_PERMISSION_PATH: &str = "/api/org/invoices";

/// The `[[endpoints]]` entry of [`ORG_PERMISSION_PATH`], for [`profile_with`].
pub const ORG_PERMISSION_ENDPOINT: &str =
    "[[endpoints]]\nmethod = \"GET\"\npath = \"/api/org/invoices\"\nstatus = 200\norg_permission = \"org:invoices:manage\"\n\n";

/// The organization permissions a v2 session token grants (`org:<feature>:<permission>`):
/// feature `i` of the `o:`-scoped `fea` entries holds permission `j` of `o.per` when bit `j` of
/// `o.fpm[i]` is set (`@clerk/shared` `jwtPayloadParser`).
fn v2_permissions(claims: &serde_json::Value) -> Vec<String> {
    let split = |v: Option<&serde_json::Value>| -> Vec<String> {
        v.and_then(serde_json::Value::as_str).map(|s| s.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect()).unwrap_or_default()
    };
    let features: Vec<String> = split(claims.get("fea")).into_iter().filter_map(|f| f.strip_prefix("o:").map(str::to_string)).collect();
    let o = claims.get("o");
    let names = split(o.and_then(|o| o.get("per")));
    let masks: Vec<u64> = split(o.and_then(|o| o.get("fpm"))).iter().map(|m| m.parse().unwrap_or(0)).collect();
    let mut granted = vec![];
    for (feature, mask) in features.iter().zip(masks) {
        for (j, name) in names.iter().enumerate().take(64) {
            if mask >> j & 1 == 1 {
                granted.push(format!("org:{feature}:{name}"));
            }
        }
    }
    granted
}

/// A Python traceback with a driver error, as a leaky refusal body carries it.
pub const LEAKY_BODY: &str = "Traceback (most recent call last):\n  File \"/app/.venv/lib/python3.12/site-packages/app/auth.py\", line 42, in verify\n    row = db.execute(q)\npsycopg2.OperationalError: connection to server at \"db\" (10.0.0.5), port 5432 failed";

/// The database mode's syncing endpoint ([`db_profile`]): verifies the token, fetches the user
/// with `GET /v1/users/{id}`, upserts the row.
pub const SYNC_PATH: &str = "/api/sync";

/// The database mode's Clerk webhook receiver ([`db_profile`]).
pub const WEBHOOK_PATH: &str = "/api/webhooks/clerk";

/// The profile the stub is described by (its `[env]` wires it to the mock's JWKS URL).
pub const PROFILE: &str = r#"
name = "stub"
description = "in-process Rust stub backend (stub-backend crate)"
health_path = "/health"
ready_timeout_secs = 5
required_env = ["CLERK_SECRET_KEY", "CLERK_JWKS_URL"]
intercept = false

[process]
# Not run: the stub is served in-process (HarnessConfig::in_process).
command = ["stub-backend"]

[env]
CLERK_SECRET_KEY = "{secret_key}"
CLERK_JWKS_URL = "{jwks_url}"
CLERK_ISSUER = "https://{fapi_host}"
CLERK_AUTHORIZED_PARTIES = "{authorized_parties}"
CORS_ORIGINS = "{cors_origins}"
CLERK_API_URL = "{api_url}"
CLERK_FAPI_HOST = "{fapi_host}"
CLERK_PUBLISHABLE_KEY = "{publishable_key}"

[token]
kind = "session"
authorized_parties = ["http://localhost:3000"]

[cors]
allowed_origins = ["http://localhost:3000"]
disallowed_origins = ["https://evil.example.com"]
credentials = true

[[endpoints]]
method = "GET"
path = "/api/me"
status = 200

[user]
sql = "SELECT clerk_user_id, email, first_name, last_name FROM users WHERE clerk_user_id = $1"
"#;

/// The stub's profile ([`PROFILE`]).
///
/// # Panics
/// Never: the embedded profile is valid (tested).
#[must_use]
#[allow(clippy::expect_used)]
pub fn profile() -> Profile {
    Profile::parse(PROFILE, "stub-backend/PROFILE", ".").expect("the stub's embedded profile is valid")
}

/// [`PROFILE`] for the database mode ([`Stub::config_with_database`]): `DATABASE_URL` and the
/// webhook secret in `[env]`, [`SYNC_PATH`] as a syncing endpoint, [`WEBHOOK_PATH`], a legacy
/// row insert.
///
/// # Panics
/// Never: the embedded profile is valid (tested).
#[must_use]
#[allow(clippy::expect_used)]
pub fn db_profile() -> Profile {
    Profile::parse(&db_profile_text(), "stub-backend/DB_PROFILE", ".").expect("the stub's database profile is valid")
}

/// The text of [`db_profile`] (for tests that change it).
#[must_use]
pub fn db_profile_text() -> String {
    PROFILE
        .replace("intercept = false\n", &format!("intercept = false\nwebhook_path = \"{WEBHOOK_PATH}\"\n"))
        .replace("[env]\n", "[env]\nDATABASE_URL = \"{database_url}\"\nCLERK_WEBHOOK_SECRET = \"{webhook_secret}\"\n")
        .replace("[user]\n", &format!("[[endpoints]]\nmethod = \"GET\"\npath = \"{SYNC_PATH}\"\nstatus = 200\nsyncs_user = true\n\n[user]\n"))
        + "legacy_insert_sql = \"INSERT INTO users (email) VALUES ($1)\"\n"
}

/// [`PROFILE`] with `from` replaced by `to` (e.g. another endpoint path), parsed.
///
/// # Errors
/// The changed profile is invalid.
pub fn profile_with(from: &str, to: &str) -> harness::Result<Profile> {
    Profile::parse(&PROFILE.replace(from, to), "stub-backend/PROFILE", ".")
}

/// When the JWKS is fetched again for a token whose `kid` is not in the cached set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Refetch {
    /// At once (Clerk's SDKs).
    #[default]
    OnUnknownKid,
    /// Only when the last fetch is at least this long ago (PyJWT's `PyJWKClient`:
    /// `cooldown_duration`, 30 s in 2.15).
    Cooldown(Duration),
    /// Never after the first fetch (a cache kept forever).
    Never,
}

/// How the stub misbehaves. The default is a correct Clerk backend.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
pub struct Behaviour {
    /// Refuse with 403 instead of 401 (bad tokens and a missing header).
    pub forbidden_instead_of_401: bool,
    /// Refuse only a missing `Authorization` header with 403 (FastAPI's `HTTPBearer`).
    pub forbidden_on_missing_bearer: bool,
    /// Clock leeway on `exp`/`nbf`/`iat` (Clerk: 5 s).
    pub leeway: Duration,
    /// Accept expired tokens.
    pub accept_expired: bool,
    /// When the JWKS is refetched for an unknown `kid`.
    pub refetch: Refetch,
    /// Leave out `WWW-Authenticate` on 401.
    pub no_www_authenticate: bool,
    /// Answer 401 with an empty body.
    pub empty_refusal_body: bool,
    /// No CORS headers on non-2xx answers (CORS middleware inside the auth layer).
    pub no_cors_on_errors: bool,
    /// Allow every origin (reflect `Origin`), credentials included.
    pub reflect_any_origin: bool,
    /// Crash (500) on a token that is not a JWT at all instead of answering 401.
    pub crash_on_garbage: bool,
    /// After answering 500 on a keep-alive connection, close that connection when the next
    /// request arrives on it, without answering (uvicorn after an unhandled error, as a
    /// pooled client sees it).
    pub close_after_500: bool,
    /// Hold every token-endpoint request this long before answering.
    pub hang: Option<Duration>,
    /// Start even without `CLERK_SECRET_KEY` / `CLERK_JWKS_URL` (instead of refusing,
    /// naming the variable).
    pub start_without_keys: bool,
    /// Answer the health path with this status and body (e.g. Django's 400 for a host not
    /// in `ALLOWED_HOSTS`) instead of `200 ok`.
    pub health: Option<(u16, String)>,
    /// After a valid Bearer request, set a `sessionid` cookie that alone authenticates
    /// later requests — no token, an expired or garbage one (Django's `SessionAuthentication`
    /// ahead of the token check, a hand-made `request.session` login).
    pub session_cookie: bool,
    /// Answer refusals (401) with this body instead of one that names the reason.
    pub refusal_body: Option<String>,
    /// Answer every call to the token endpoint with Django's CSRF failure page (403).
    pub csrf_page: bool,
    /// Log refusals without their reason (with [`Behaviour::refusal_body`], nothing says why).
    pub quiet_refusals: bool,
    /// Keep a validated token's claims for this long after validation, keyed by the token
    /// string, without looking at `exp` again (orientor's 300 s cache).
    pub validation_cache: Option<Duration>,
    /// Refetch the JWKS when the cached set is this old, for any `kid` (Clerk's SDKs: 5 min);
    /// `None`: keep it until an unknown `kid` (as [`Behaviour::refetch`] allows).
    pub jwks_ttl: Option<Duration>,
    /// With [`Behaviour::jwks_ttl`]: a stale set still verifies the request that found it
    /// stale, and is replaced right after (orientor's stale-while-revalidate JWKS cache).
    pub jwks_stale_while_revalidate: bool,
    /// Redirect the token endpoint to its trailing-slash form (301, Django's `APPEND_SLASH`),
    /// where it is served.
    pub trailing_slash_redirect: bool,
    /// Without `CLERK_SECRET_KEY` / `CLERK_JWKS_URL`, keep running and answer the health
    /// path 503 (logging the missing variable) instead of refusing to start.
    pub unhealthy_without_keys: bool,
    /// Page loads (`Sec-Fetch-Dest: document`) whose `__session` cookie cannot be trusted go
    /// through Clerk's handshake as `@clerk/backend` runs it: 307 to FAPI's
    /// `/v1/client/handshake`, the nonce redeemed at the Backend API, its cookies set.
    pub handshake: bool,
    /// With [`Behaviour::handshake`]: refuse the `__session` the handshake delivers and send
    /// the browser back to the handshake (keys of another instance, a clock ahead).
    pub handshake_refuses_fresh: bool,
    /// With [`Behaviour::handshake`]: never stop at `__clerk_redirect_count=3`.
    pub handshake_ignores_counter: bool,
    /// Do not compare the cookie token's `iat` with `__client_uat` (Clerk's Python SDK).
    pub cookie_ignores_client_uat: bool,
    /// Retry a JWKS fetch that failed, every 100 ms, for as long as it fails, inside the
    /// request (an SDK's default exponential backoff of up to an hour).
    pub retry_jwks_failures: bool,
    /// Which requests get an access-log line, and when.
    pub access_log: AccessLog,
    // tokens slice
    /// Answer 401 (`jwk-remote-failed-to-load`) when the JWKS cannot be loaded, as Clerk's
    /// SDKs' request state does, instead of 503 with `Retry-After`.
    pub jwks_failure_401: bool,
    /// Accept only the exact `Bearer ` prefix (`.replace("Bearer ", "")`), not `bearer`.
    pub case_sensitive_bearer: bool,
    /// [`ITEMS_PATH`] answers 500 with a Python traceback to every valid user.
    pub items_crash: bool,
    /// Refusals (401) carry a Python traceback with a psycopg2 error in their body.
    pub leaky_refusals: bool,
    /// [`ORG_PATH`] reads the v1 claim names (`org_id`, `org_role`) only.
    pub org_claims_v1: bool,
    /// [`ORG_PATH`] answers 401 instead of 403 to a member without the role.
    pub org_refusal_401: bool,
    /// [`ORG_PATH`] accepts any member of an active organization, whatever the role.
    pub org_role_ignored: bool,
    /// When the JWKS cache has expired and the refetch fails, drop the cached keys and refuse
    /// the token as signed by an unknown key (401) — while a cold cache's failure stays 503.
    pub jwks_stale_failure_401: bool,
    // config slice
    /// Fetch the JWKS from the Backend API with the secret key (`{CLERK_API_URL}/v1/jwks`,
    /// as Clerk's SDKs do given a secret key) instead of `CLERK_JWKS_URL`.
    pub jwks_via_secret_key: bool,
    /// How a secret key the Backend API refuses (401 `clerk_key_invalid`) is answered.
    pub key_refused: KeyRefused,
    /// How a start without `CLERK_SECRET_KEY` goes.
    pub missing_secret_key: MissingSecretKey,
    /// `CLERK_WEBHOOK_SECRET` and the webhook receiver at [`CONFIG_WEBHOOK_PATH`].
    pub webhook_secret: WebhookSecretUse,
    /// Call Clerk through `HTTPS_PROXY` with a TLS client that trusts only its bundled roots
    /// (reqwest's `rustls-tls`: webpki-roots, `SSL_CERT_FILE` ignored), as a Rust backend
    /// built that way does: the mock's per-run CA is refused (`unknown_ca`).
    pub bundled_roots_only: bool,
    // data slice: the database mode (`DATABASE_URL` set: [`Stub::config_with_database`]).
    /// A database error during sync becomes a 401 with the driver's text (a Django package).
    pub database_error_401: bool,
    /// Sync by get-then-create without `ON CONFLICT`: a new user's concurrent first requests
    /// race with [`RACE_PROBABILITY`], and the loser's unique violation becomes a 401.
    pub sync_race: bool,
    /// `GET /v1/users/{id}` answering 404 (a user deleted in Clerk, token still valid) is an
    /// unhandled error: 500.
    pub deleted_user_500: bool,
    /// The sync's own timeout on `GET /v1/users/{id}` (`None`: none, it waits as long as Clerk).
    pub backend_api_timeout: Option<Duration>,
    /// One worker: while a sync waits on the Backend API, the health path waits too.
    pub single_worker: bool,
    /// Apply `user.updated` whatever its `updated_at` (the last delivery wins).
    pub webhook_ignores_updated_at: bool,
    /// A delivery it can never apply (an email taken by another row, `user.deleted` of an
    /// unknown user) is an unhandled error: 500 on every retry.
    pub poison_500: bool,
}

// config slice
/// How the stub answers when the Backend API refuses its secret key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyRefused {
    /// 500 whose body and log say the Backend API refused `CLERK_SECRET_KEY`.
    #[default]
    NamedServerError,
    /// A bare `500 Internal Server Error`, nothing logged.
    BareServerError,
    /// 401, as if the user's token were bad (the SPA refreshes and loops).
    Unauthorized,
}

// config slice
/// How a start without `CLERK_SECRET_KEY` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingSecretKey {
    /// Exit naming the variable (`CLERK_SECRET_KEY is not set`).
    #[default]
    ExitNamingVariable,
    /// Exit naming the setting that holds it, as a Django package does
    /// (`CLERK_AUTH['SECRET_KEY'] is required`).
    ExitNamingSetting,
    /// Start, and answer every authenticated request 500.
    FailEveryRequest,
}

// config slice
/// The webhook receiver's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookSecretUse {
    /// Start without `CLERK_WEBHOOK_SECRET`; deliveries are then refused (503).
    #[default]
    Optional,
    /// Exit naming `CLERK_WEBHOOK_SECRET` when it is missing.
    Required,
    /// Start without it and apply every delivery unchecked (fail-open).
    FailOpen,
}

// config slice
/// The stub's webhook receiver (Svix-verified with `CLERK_WEBHOOK_SECRET`): answers 200 to
/// a delivery it applies.
pub const CONFIG_WEBHOOK_PATH: &str = "/config/webhooks/clerk";

/// The stub's access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLog {
    /// Calls to the health path only, as they are answered (`INFO GET /health?… `).
    #[default]
    Health,
    /// Every request, this long after its answer, in order (`INFO 127.0.0.1 "GET /api/me
    /// HTTP/1.1" 401`): gunicorn writes its access line after the response is sent, and a
    /// busy worker later still.
    AfterAnswer(Duration),
    /// None (a server started without an access log).
    Off,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            forbidden_instead_of_401: false,
            forbidden_on_missing_bearer: false,
            leeway: Duration::from_secs(5),
            accept_expired: false,
            refetch: Refetch::OnUnknownKid,
            no_www_authenticate: false,
            empty_refusal_body: false,
            no_cors_on_errors: false,
            reflect_any_origin: false,
            crash_on_garbage: false,
            close_after_500: false,
            hang: None,
            start_without_keys: false,
            health: None,
            session_cookie: false,
            refusal_body: None,
            csrf_page: false,
            quiet_refusals: false,
            validation_cache: None,
            jwks_ttl: Some(Duration::from_secs(300)),
            jwks_stale_while_revalidate: false,
            trailing_slash_redirect: false,
            unhealthy_without_keys: false,
            handshake: false,
            handshake_refuses_fresh: false,
            handshake_ignores_counter: false,
            cookie_ignores_client_uat: false,
            retry_jwks_failures: false,
            access_log: AccessLog::Health,
            jwks_failure_401: false,
            case_sensitive_bearer: false,
            items_crash: false,
            leaky_refusals: false,
            org_claims_v1: false,
            org_refusal_401: false,
            org_role_ignored: false,
            jwks_stale_failure_401: false,
            // config slice
            jwks_via_secret_key: false,
            key_refused: KeyRefused::NamedServerError,
            missing_secret_key: MissingSecretKey::ExitNamingVariable,
            webhook_secret: WebhookSecretUse::Optional,
            bundled_roots_only: false,
            database_error_401: false,
            sync_race: false,
            deleted_user_500: false,
            backend_api_timeout: Some(Duration::from_secs(1)),
            single_worker: false,
            webhook_ignores_updated_at: false,
            poison_500: false,
        }
    }
}

/// The launcher: starts a stub with a [`Behaviour`] each time the harness starts (or
/// restarts) the backend.
///
/// Every instance it launches reads one [`mock_clerk::Clock`] (the host's clock, shared
/// across restarts), which the harness moves ([`harness::BackendClock`]).
#[derive(Debug, Clone, Default)]
pub struct Stub {
    behaviour: Behaviour,
    clock: mock_clerk::Clock,
}

impl Stub {
    /// A stub that behaves as `behaviour` says.
    #[must_use]
    pub fn new(behaviour: Behaviour) -> Self {
        Self { behaviour, clock: mock_clerk::Clock::system() }
    }

    /// A harness configuration running this stub in-process without a database.
    #[must_use]
    pub fn config(self) -> HarnessConfig {
        HarnessConfig::in_process(Arc::new(self))
    }

    /// [`Stub::config`] with a database of the local Postgres runtime: use it with
    /// [`db_profile`], which hands the stub `DATABASE_URL` and declares [`SYNC_PATH`] and
    /// [`WEBHOOK_PATH`].
    #[must_use]
    pub fn config_with_database(self) -> HarnessConfig {
        HarnessConfig { postgres: Some(harness::PostgresMode::Local), ..self.config() }
    }
}

impl Launcher for Stub {
    fn launch(&self, env: BTreeMap<String, String>, logs: LogBuffer) -> LaunchFuture {
        let behaviour = self.behaviour.clone();
        let clock = self.clock.clone();
        Box::pin(async move { start(behaviour, clock, &env, logs).await })
    }

    fn clock(&self) -> Option<mock_clerk::Clock> {
        Some(self.clock.clone())
    }
}

/// What the stub read from its environment.
#[derive(Debug)]
struct Settings {
    secret_key: String,
    api_url: String,
    fapi_host: String,
    /// `clerk-js`'s cookie-name suffix of the publishable key.
    cookie_suffix: String,
    development: bool,
    jwks_url: String,
    issuer: Option<String>,
    audience: Vec<String>,
    authorized_parties: Vec<String>,
    cors_origins: Vec<String>,
    // config slice
    webhook_secret: Option<String>,
}

#[derive(Default)]
struct Jwks {
    keys: HashMap<String, DecodingKey>,
    /// When the set was fetched, ms on the stub's clock.
    fetched: Option<i64>,
}

struct Stubbed {
    behaviour: Behaviour,
    settings: Settings,
    jwks: tokio::sync::Mutex<Jwks>,
    http: reqwest::Client,
    logs: LogBuffer,
    /// `sessionid` values handed out ([`Behaviour::session_cookie`]).
    sessions: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The required variable missing at start ([`Behaviour::unhealthy_without_keys`]).
    missing: Option<&'static str>,
    /// The host's clock (moved by the harness).
    clock: mock_clerk::Clock,
    /// Validated tokens and until when (ms) they are trusted ([`Behaviour::validation_cache`]).
    validated: std::sync::Mutex<HashMap<String, (serde_json::Value, i64)>>,
    /// Access-log lines and when to write them ([`AccessLog::AfterAnswer`]).
    access: tokio::sync::mpsc::UnboundedSender<(tokio::time::Instant, String)>,
    /// The database, when `DATABASE_URL` is set.
    db: Option<data::Db>,
    /// The one worker of [`Behaviour::single_worker`].
    worker: tokio::sync::Mutex<()>,
}

fn list(env: &BTreeMap<String, String>, name: &str) -> Vec<String> {
    env.get(name).map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
}

async fn start(behaviour: Behaviour, clock: mock_clerk::Clock, env: &BTreeMap<String, String>, logs: LogBuffer) -> Result<InProcessServer, String> {
    let mut missing = None;
    config_slice_start(&behaviour, env)?;
    if !behaviour.start_without_keys {
        for name in ["CLERK_SECRET_KEY", "CLERK_JWKS_URL"].into_iter().filter(|n| !config_slice_lets_start(&behaviour, n)) {
            if env.get(name).is_none_or(String::is_empty) {
                if !behaviour.unhealthy_without_keys {
                    return Err(format!("stub-backend: configuration error: {name} is not set"));
                }
                missing.get_or_insert(name);
            }
        }
    }
    let settings = Settings {
        jwks_url: env.get("CLERK_JWKS_URL").cloned().unwrap_or_default(),
        issuer: env.get("CLERK_ISSUER").filter(|s| !s.is_empty()).cloned(),
        audience: list(env, "CLERK_AUDIENCE"),
        authorized_parties: list(env, "CLERK_AUTHORIZED_PARTIES"),
        cors_origins: list(env, "CORS_ORIGINS"),
        secret_key: env.get("CLERK_SECRET_KEY").cloned().unwrap_or_default(),
        api_url: env.get("CLERK_API_URL").cloned().unwrap_or_default(),
        fapi_host: env.get("CLERK_FAPI_HOST").cloned().unwrap_or_default(),
        cookie_suffix: env.get("CLERK_PUBLISHABLE_KEY").map(|pk| mock_clerk::cookies::cookie_suffix(pk)).unwrap_or_default(),
        development: env.get("CLERK_PUBLISHABLE_KEY").is_none_or(|pk| pk.starts_with("pk_test_")),
        // config slice
        webhook_secret: env.get("CLERK_WEBHOOK_SECRET").filter(|s| !s.is_empty()).cloned(),
    };
    let db = match env.get("DATABASE_URL").filter(|u| !u.is_empty()) {
        Some(url) => Some(data::Db::connect(url).await?),
        None => None,
    };
    let (access, access_lines) = tokio::sync::mpsc::unbounded_channel();
    // config slice
    let http = match config_slice_client(&behaviour, env)? {
        Some(client) => client,
        None => reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().map_err(|e| format!("stub-backend: HTTP client: {e}"))?,
    };
    let state = Arc::new(Stubbed {
        behaviour,
        settings,
        jwks: tokio::sync::Mutex::new(Jwks::default()),
        http,
        logs,
        sessions: std::sync::Mutex::new(std::collections::HashSet::new()),
        missing,
        clock,
        validated: std::sync::Mutex::new(HashMap::new()),
        access,
        db,
        worker: tokio::sync::Mutex::new(()),
    });
    let router = Router::new()
        .route(SYNC_PATH, get(data::sync))
        .route(WEBHOOK_PATH, axum::routing::post(data::webhook))
        .route("/health", get(health))
        .route(ME_PATH, get(me).post(me).options(preflight))
        .route(&format!("{ME_PATH}/"), get(me_slash).post(me_slash).options(preflight))
        .route(ITEMS_PATH, get(items))
        .route(ORG_PATH, get(org_settings))
        .route(ORG_PERMISSION_PATH, get(org_invoices))
        .route(MISSING_USER_PATH, get(|| async { (StatusCode::NOT_FOUND, axum::Json(json!({"detail": "user not found"}))) }))
        .route(LOGIN_PAGE_PATH, get(|| async { axum::response::Redirect::to("/accounts/login/?next=/dashboard") }))
        // config slice
        .route(CONFIG_WEBHOOK_PATH, axum::routing::post(config_slice_webhook))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.map_err(|e| format!("stub-backend: bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("stub-backend: {e}"))?;
    let url = url::Url::parse(&format!("http://{addr}")).map_err(|e| format!("stub-backend: {e}"))?;
    state.log(&format!("INFO stub-backend listening on {url}"));
    let task = tokio::spawn(serve(listener, router, state, access_lines));
    Ok(InProcessServer::new(url, task))
}

/// Accepts connections until aborted; every connection task lives in the `JoinSet`, so
/// aborting this task stops them all.
async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    state: Arc<Stubbed>,
    mut access_lines: tokio::sync::mpsc::UnboundedReceiver<(tokio::time::Instant, String)>,
) {
    let mut connections = tokio::task::JoinSet::new();
    let logs = state.logs.clone();
    // One writer, in order: each line once its time has come.
    connections.spawn(async move {
        while let Some((due, line)) = access_lines.recv().await {
            tokio::time::sleep_until(due).await;
            logs.push(Stream::Stdout, &line);
        }
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        while connections.try_join_next().is_some() {}
        let router = router.clone();
        let state = Arc::clone(&state);
        connections.spawn(async move {
            // Set once this connection answered 500 (with `close_after_500`).
            let poisoned = Arc::new(AtomicBool::new(false));
            let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                let router = router.clone();
                let poisoned = Arc::clone(&poisoned);
                let close_after_500 = state.behaviour.close_after_500;
                let state = Arc::clone(&state);
                async move {
                    if poisoned.load(Ordering::SeqCst) {
                        state.log("INFO closing a connection that answered 500 (a new request arrived on it)");
                        return Err(std::io::Error::other("connection closed after a 500"));
                    }
                    let request_line = format!("{} {}", request.method(), request.uri());
                    let response = router.oneshot(request.map(Body::new)).await.unwrap_or_else(|never| match never {});
                    if let AccessLog::AfterAnswer(delay) = state.behaviour.access_log {
                        let line = format!("INFO 127.0.0.1 \"{request_line} HTTP/1.1\" {}", response.status().as_u16());
                        let _ = state.access.send((tokio::time::Instant::now() + delay, line));
                    }
                    if close_after_500 && response.status() == StatusCode::INTERNAL_SERVER_ERROR {
                        poisoned.store(true, Ordering::SeqCst);
                    }
                    Ok::<_, std::io::Error>(response)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(io, service).await;
        });
    }
}

impl Stubbed {
    fn log(&self, line: &str) {
        self.logs.push(Stream::Stderr, line);
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.behaviour.reflect_any_origin
            || self.settings.cors_origins.iter().any(|allowed| {
                allowed == origin
                    || allowed
                        .split_once("://*.")
                        .is_some_and(|(scheme, rest)| origin.strip_prefix(&format!("{scheme}://")).is_some_and(|host| host.ends_with(&format!(".{rest}"))))
            })
    }

    /// Adds CORS headers for `origin` (if allowed) to `response`.
    fn cors(&self, origin: Option<&HeaderValue>, mut response: Response) -> Response {
        let Some(origin) = origin else { return response };
        if !response.status().is_success() && self.behaviour.no_cors_on_errors {
            return response;
        }
        if self.origin_allowed(origin.to_str().unwrap_or_default()) {
            let headers = response.headers_mut();
            headers.insert("access-control-allow-origin", origin.clone());
            headers.insert("access-control-allow-credentials", HeaderValue::from_static("true"));
            headers.insert("vary", HeaderValue::from_static("Origin"));
        }
        response
    }

    fn refuse(&self, reason: &str, detail: &str, missing: bool) -> Response {
        if reason == "jwk-remote-failed-to-load" && !self.behaviour.jwks_failure_401 {
            self.log(&format!("ERROR 503: the JWKS cannot be loaded: {detail}"));
            let body = json!({"detail": "the signing keys cannot be loaded; retry later", "reason": reason}).to_string();
            return (StatusCode::SERVICE_UNAVAILABLE, [("content-type", "application/json"), ("retry-after", "5")], body).into_response();
        }
        let status = if self.behaviour.forbidden_instead_of_401 || (missing && self.behaviour.forbidden_on_missing_bearer) {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        if self.behaviour.quiet_refusals {
            self.log(&format!("INFO refused ({})", status.as_u16()));
        } else {
            self.log(&format!("INFO refused ({}): {reason}: {detail}", status.as_u16()));
        }
        let body = match (&self.behaviour.refusal_body, self.behaviour.empty_refusal_body) {
            _ if self.behaviour.leaky_refusals => format!("{{\"detail\": {}}}", json!(format!("{reason}: {detail}\n{LEAKY_BODY}"))),
            (_, true) => String::new(),
            (Some(body), false) => body.clone(),
            (None, false) => json!({"detail": detail, "reason": reason}).to_string(),
        };
        let mut response = (status, [("content-type", "application/json")], body).into_response();
        if status == StatusCode::UNAUTHORIZED && !self.behaviour.no_www_authenticate {
            let value = if missing { "Bearer".to_string() } else { format!("Bearer error=\"invalid_token\", error_description=\"{reason}\"") };
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert("www-authenticate", value);
            }
        }
        response
    }

    /// The key for `kid`, fetching the JWKS when the cache is empty or — as the refetch
    /// policy allows — when `kid` is unknown.
    async fn key(&self, kid: &str) -> Result<Option<DecodingKey>, String> {
        let mut jwks = self.jwks.lock().await;
        let now = self.clock.now_ms();
        let age = |at: i64| Duration::from_millis(u64::try_from(now - at).unwrap_or(0));
        let stale = match (jwks.fetched, self.behaviour.jwks_ttl, self.behaviour.refetch) {
            (Some(at), Some(ttl), Refetch::OnUnknownKid | Refetch::Cooldown(_)) => age(at) >= ttl,
            _ => false,
        };
        if let (Some(key), false) = (jwks.keys.get(kid), stale) {
            return Ok(Some(key.clone()));
        }
        let served_stale = if stale && self.behaviour.jwks_stale_while_revalidate { jwks.keys.get(kid).cloned() } else { None };
        let may_fetch = stale
            || match (jwks.fetched, self.behaviour.refetch) {
                (None, _) | (Some(_), Refetch::OnUnknownKid) => true,
                (Some(at), Refetch::Cooldown(cooldown)) => age(at) >= cooldown,
                (Some(_), Refetch::Never) => false,
            };
        if !may_fetch {
            self.log(&format!("INFO kid {kid} not in the cached JWKS; not refetching ({:?})", self.behaviour.refetch));
            return Ok(None);
        }
        let url = &self.settings.jwks_url;
        // config slice
        let via_api = if self.behaviour.jwks_via_secret_key { Some(self.config_slice_jwks().await?) } else { None };
        let set: JwkSet = if let Some(set) = via_api {
            set
        } else {
            loop {
                match self.http.get(url).send().await.and_then(reqwest::Response::error_for_status) {
                    Ok(response) => break response.json().await.map_err(|e| format!("JWKS from {url} is not a key set: {e}"))?,
                    Err(e) if self.behaviour.retry_jwks_failures => {
                        self.log(&format!("WARNING JWKS fetch from {url} failed, retrying in 100 ms: {}", error_chain(&e)));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => {
                        let line = format!("ERROR JWKS fetch from {url} failed: {}", error_chain(&e));
                        self.log(&line);
                        if self.behaviour.jwks_stale_failure_401 && !jwks.keys.is_empty() {
                            jwks.keys.clear();
                            return Ok(None);
                        }
                        return Err(line);
                    }
                }
            }
        };
        jwks.fetched = Some(self.clock.now_ms());
        jwks.keys = set.keys.iter().filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?))).collect();
        self.log(&format!("INFO fetched the JWKS from {url}: {} keys", jwks.keys.len()));
        if served_stale.is_some() {
            self.log(&format!("INFO kid {kid} verified with the stale JWKS while it was refreshed"));
            return Ok(served_stale);
        }
        Ok(jwks.keys.get(kid).cloned())
    }

    async fn verify(&self, token: &str) -> Result<serde_json::Value, (&'static str, String)> {
        if self.behaviour.validation_cache.is_some() {
            let cache = self.validated.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((claims, until)) = cache.get(token) {
                if *until > self.clock.now_ms() {
                    return Ok(claims.clone());
                }
            }
        }
        let claims = self.verify_uncached(token).await?;
        if let Some(ttl) = self.behaviour.validation_cache {
            let until = self.clock.now_ms() + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4);
            self.validated.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(token.to_owned(), (claims.clone(), until));
        }
        Ok(claims)
    }

    async fn verify_uncached(&self, token: &str) -> Result<serde_json::Value, (&'static str, String)> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| ("token-invalid", format!("the token is not a JWT: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(("token-invalid-algorithm", format!("algorithm {:?} is not allowed (RS256 only)", header.alg)));
        }
        let kid = header.kid.ok_or(("token-invalid", "the token has no kid".to_string()))?;
        let key = match self.key(&kid).await {
            Ok(Some(key)) => key,
            Ok(None) => return Err(("jwk-kid-mismatch", format!("no key with kid {kid} in the JWKS"))),
            // config slice
            Err(e) if e.starts_with(KEY_REFUSED) => return Err(("secret-key-invalid", e)),
            Err(e) => return Err(("jwk-remote-failed-to-load", e)),
        };
        // exp, nbf and iat are checked below against the stub's own (movable) clock.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &self.settings.issuer {
            validation.set_issuer(&[issuer]);
        }
        if self.settings.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.settings.audience);
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let reason = match e.kind() {
                ErrorKind::ExpiredSignature => "token-expired",
                ErrorKind::ImmatureSignature => "token-not-active-yet",
                ErrorKind::InvalidSignature => "token-invalid-signature",
                ErrorKind::InvalidIssuer => "token-invalid-issuer",
                ErrorKind::InvalidAudience => "token-invalid-audience",
                _ => "token-invalid",
            };
            (reason, e.to_string())
        })?;
        let claims = data.claims;
        let now = self.clock.now_unix();
        let leeway = i64::try_from(self.behaviour.leeway.as_secs()).unwrap_or(i64::MAX / 4);
        let claim = |name: &str| claims.get(name).and_then(serde_json::Value::as_i64);
        if let (Some(exp), false) = (claim("exp"), self.behaviour.accept_expired) {
            if exp < now - leeway {
                return Err(("token-expired", format!("the token expired {} s ago (exp {exp}, now {now}, leeway {leeway} s)", now - exp)));
            }
        }
        if let Some(nbf) = claim("nbf").filter(|nbf| *nbf > now + leeway) {
            return Err(("token-not-active-yet", format!("the token is not valid before nbf {nbf} (now {now}, leeway {leeway} s)")));
        }
        if let Some(iat) = claim("iat").filter(|iat| *iat > now + leeway) {
            return Err(("token-iat-in-the-future", format!("the token was issued in the future: iat {iat} (now {now}, leeway {leeway} s)")));
        }
        if let (false, Some(azp)) = (self.settings.authorized_parties.is_empty(), claims.get("azp").and_then(serde_json::Value::as_str)) {
            if !self.settings.authorized_parties.iter().any(|p| p == azp) {
                return Err(("token-invalid-authorized-parties", format!("azp {azp} is not an authorized party")));
            }
        }
        Ok(claims)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn health(State(state): State<Arc<Stubbed>>, uri: axum::http::Uri) -> Response {
    if state.behaviour.access_log == AccessLog::Health {
        state.log(&format!("INFO GET {uri} "));
    }
    let _worker = if state.behaviour.single_worker { Some(state.worker.lock().await) } else { None };
    if let Some(name) = state.missing {
        state.log(&format!("ERROR configuration error: {name} is not set"));
        return (StatusCode::SERVICE_UNAVAILABLE, "misconfigured").into_response();
    }
    match &state.behaviour.health {
        None => "ok".into_response(),
        Some((status, body)) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, [("content-type", "text/html")], body.clone()).into_response()
        }
    }
}

/// Django's CSRF failure page (DEBUG off), as `django.views.csrf.csrf_failure` renders it.
pub const DJANGO_CSRF_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <meta http-equiv=\"content-type\" content=\"text/html; charset=utf-8\">\n  <meta name=\"robots\" content=\"NONE,NOARCHIVE\">\n  <title>403 Forbidden</title>\n  <style type=\"text/css\">\n    html * { padding:0; margin:0; }\n    body * { padding:10px 20px; }\n    body * * { padding:0; }\n    body { font:small sans-serif; background:#eee; color:#000; }\n    body>div { border-bottom:1px solid #ddd; }\n    h1 { font-weight:normal; margin-bottom:.4em; }\n    h1 span { font-size:60%; color:#666; font-weight:normal; }\n    #info { background:#f6f6f6; }\n    #info ul { margin: 0.5em 4em; }\n    #info p, #summary p { padding-top:10px; }\n    #summary { background: #ffc; }\n    #explanation { background:#eee; border-bottom: 0px none; }\n  </style>\n</head>\n<body>\n<div id=\"summary\">\n  <h1>Forbidden <span>(403)</span></h1>\n  <p>CSRF verification failed. Request aborted.</p>\n\n\n</div>\n\n<div id=\"explanation\">\n  <p><small>More information is available with DEBUG=True.</small></p>\n</div>\n\n</body>\n</html>\n";

/// `GET|POST /api/me/`: the token endpoint's trailing-slash form.
async fn me_slash(State(state): State<Arc<Stubbed>>, method: Method, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    if !state.behaviour.trailing_slash_redirect {
        return (StatusCode::NOT_FOUND, axum::Json(json!({"detail": "Not Found"}))).into_response();
    }
    let origin = headers.get("origin");
    let response = answer(&state, &method, &uri, &headers).await;
    state.log(&format!("INFO {method} {ME_PATH}/ -> {}", response.status().as_u16()));
    state.cors(origin, response)
}

/// `GET|POST /api/me` (and every preflight on it).
async fn me(State(state): State<Arc<Stubbed>>, method: Method, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let origin = headers.get("origin");
    if state.behaviour.trailing_slash_redirect {
        state.log(&format!("INFO {method} {ME_PATH} -> 301 {ME_PATH}/"));
        return (StatusCode::MOVED_PERMANENTLY, [("location", format!("{ME_PATH}/"))]).into_response();
    }
    if state.behaviour.csrf_page {
        state.log(&format!("WARNING Forbidden (CSRF cookie not set.): {ME_PATH}"));
        return state.cors(origin, (StatusCode::FORBIDDEN, [("content-type", "text/html; charset=utf-8")], DJANGO_CSRF_PAGE).into_response());
    }
    if let Some(hang) = state.behaviour.hang {
        state.log(&format!("INFO holding the request for {hang:?}"));
        tokio::time::sleep(hang).await;
    }
    let response = answer(&state, &method, &uri, &headers).await;
    state.log(&format!("INFO {method} {ME_PATH} -> {}", response.status().as_u16()));
    state.cors(origin, response)
}

async fn answer(state: &Stubbed, method: &Method, uri: &axum::http::Uri, headers: &HeaderMap) -> Response {
    if state.behaviour.session_cookie {
        let cookie = headers.get("cookie").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let session = cookie.split(';').filter_map(|c| c.trim().strip_prefix("sessionid=")).next();
        if session.is_some_and(|s| state.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(s)) {
            state.log("INFO authenticated by the sessionid cookie");
            return axum::Json(json!({"via": "session cookie"})).into_response();
        }
    }
    let response = answer_token(state, method, uri, headers).await;
    if state.behaviour.session_cookie && response.status().is_success() {
        let id = format!("{:032x}", rand::random::<u128>());
        state.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id.clone());
        let mut response = response;
        if let Ok(v) = HeaderValue::from_str(&format!("sessionid={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=300")) {
            response.headers_mut().insert("set-cookie", v);
        }
        return response;
    }
    response
}

async fn answer_token(state: &Stubbed, method: &Method, uri: &axum::http::Uri, headers: &HeaderMap) -> Response {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        let cookies = Cookies::parse(headers);
        let nonce = query_param(uri, mock_clerk::cookies::HANDSHAKE_NONCE).or_else(|| cookies.plain(mock_clerk::cookies::HANDSHAKE_NONCE));
        if cookies.clerk(state, mock_clerk::cookies::SESSION).is_some() || (state.behaviour.handshake && nonce.is_some()) {
            return answer_cookie(state, method, uri, headers, &cookies, nonce).await;
        }
        return state.refuse("token-missing", "no Authorization header", true);
    };
    let token = if state.behaviour.case_sensitive_bearer {
        value.strip_prefix("Bearer ")
    } else {
        value.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map(|(_, t)| t)
    };
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return state.refuse("token-invalid", "the Authorization header is not `Bearer <token>`", false);
    };
    if state.behaviour.crash_on_garbage && token.split('.').count() != 3 {
        state.log("ERROR unhandled exception: not enough segments");
        return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
    }
    // config slice
    if let Some(response) = state.config_slice_unconfigured() {
        return response;
    }
    match state.verify(token).await {
        Ok(claims) => axum::Json(json!({"sub": claims.get("sub"), "sid": claims.get("sid")})).into_response(),
        // config slice
        Err((reason, detail)) if reason == "secret-key-invalid" => state.config_slice_key_refused(reason, &detail),
        Err((reason, detail)) => state.refuse(reason, &detail, false),
    }
}

/// `GET /api/items`: the token endpoint's answer, or — [`Behaviour::items_crash`] — a 500
/// with a traceback to a valid user.
async fn items(State(state): State<Arc<Stubbed>>, method: Method, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let origin = headers.get("origin");
    let response = answer_token(&state, &method, &uri, &headers).await;
    let response = if state.behaviour.items_crash && response.status().is_success() {
        state.log(&format!("ERROR Exception in ASGI application\n{LEAKY_BODY}"));
        (StatusCode::INTERNAL_SERVER_ERROR, [("content-type", "text/plain")], format!("Internal Server Error\n{LEAKY_BODY}")).into_response()
    } else {
        response
    };
    state.log(&format!("INFO {method} {ITEMS_PATH} -> {}", response.status().as_u16()));
    state.cors(origin, response)
}

/// `GET /api/org/settings`: `org:admin` of the active organization, read from the v2 claims
/// (`o.rol` = `admin`), as `@clerk/backend` derives `orgRole`; 403 otherwise.
async fn org_settings(State(state): State<Arc<Stubbed>>, headers: HeaderMap) -> Response {
    let origin = headers.get("origin");
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
    let response = match state.verify(token.trim()).await {
        Err((reason, detail)) => state.refuse(reason, &detail, token.is_empty()),
        Ok(claims) => {
            let (org, role) = if state.behaviour.org_claims_v1 {
                (claims.get("org_id").and_then(|v| v.as_str()).map(str::to_string), claims.get("org_role").and_then(|v| v.as_str()).map(str::to_string))
            } else {
                let o = claims.get("o");
                (
                    o.and_then(|o| o.get("id")).and_then(|v| v.as_str()).map(str::to_string),
                    o.and_then(|o| o.get("rol")).and_then(|v| v.as_str()).map(|r| format!("org:{r}")),
                )
            };
            let allowed = org.is_some() && (state.behaviour.org_role_ignored || role.as_deref() == Some("org:admin"));
            if allowed {
                axum::Json(json!({"org": org, "role": role})).into_response()
            } else {
                let why = if org.is_none() { "no active organization" } else { "org:admin required" };
                state.log(&format!("INFO refused: {why}"));
                let status = if state.behaviour.org_refusal_401 { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
                (status, axum::Json(json!({"detail": why}))).into_response()
            }
        }
    };
    state.log(&format!("INFO GET {ORG_PATH} -> {}", response.status().as_u16()));
    state.cors(origin, response)
}

/// `GET /api/org/invoices`: `org:invoices:manage` in the active organization (v2 claims); 403
/// otherwise (401 with [`Behaviour::org_refusal_401`]).
async fn org_invoices(State(state): State<Arc<Stubbed>>, headers: HeaderMap) -> Response {
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
    let response = match state.verify(token.trim()).await {
        Err((reason, detail)) => state.refuse(reason, &detail, token.is_empty()),
        Ok(claims) if claims.get("o").is_some() && v2_permissions(&claims).iter().any(|p| p == "org:invoices:manage") => {
            axum::Json(json!({"invoices": []})).into_response()
        }
        Ok(_) => {
            let status = if state.behaviour.org_refusal_401 { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
            (status, axum::Json(json!({"detail": "org:invoices:manage required"}))).into_response()
        }
    };
    state.log(&format!("INFO GET {ORG_PERMISSION_PATH} -> {}", response.status().as_u16()));
    state.cors(headers.get("origin"), response)
}

/// `OPTIONS /api/me`: preflights need no token.
async fn preflight(State(state): State<Arc<Stubbed>>, headers: HeaderMap) -> Response {
    let origin = headers.get("origin").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !state.origin_allowed(origin) {
        return (StatusCode::BAD_REQUEST, "Disallowed CORS origin").into_response();
    }
    let mut response = StatusCode::OK.into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert("access-control-allow-origin", v);
    }
    h.insert("access-control-allow-credentials", HeaderValue::from_static("true"));
    h.insert("access-control-allow-methods", HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"));
    h.insert("access-control-allow-headers", HeaderValue::from_static("authorization, content-type"));
    h.insert("access-control-max-age", HeaderValue::from_static("600"));
    h.insert("vary", HeaderValue::from_static("Origin"));
    response
}

/// The request's cookies.
struct Cookies(HashMap<String, String>);

impl Cookies {
    fn parse(headers: &HeaderMap) -> Self {
        Self(
            headers
                .get_all("cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|kv| kv.trim().split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn plain(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// A `clerk-js` cookie: the suffixed name first, then the plain one.
    fn clerk(&self, state: &Stubbed, name: &str) -> Option<String> {
        self.plain(&mock_clerk::cookies::suffixed(name, &state.settings.cookie_suffix)).or_else(|| self.plain(name))
    }
}

fn query_param(uri: &axum::http::Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The `__session` cookie path: verify, compare `iat` with `__client_uat`, and — with
/// [`Behaviour::handshake`] — send page loads through Clerk's handshake as `@clerk/backend` does.
async fn answer_cookie(state: &Stubbed, method: &Method, uri: &axum::http::Uri, headers: &HeaderMap, cookies: &Cookies, nonce: Option<String>) -> Response {
    let document = method == Method::GET && headers.get("sec-fetch-dest").and_then(|v| v.to_str().ok()) == Some("document");
    let count: u32 = cookies.plain(mock_clerk::cookies::REDIRECT_COUNT).and_then(|v| v.parse().ok()).unwrap_or(0);
    if let (true, Some(nonce)) = (state.behaviour.handshake, nonce) {
        match state.redeem(&nonce).await {
            Ok(directives) => {
                let fresh = directives
                    .iter()
                    .find(|d| mock_clerk::cookies::directive_name(d).starts_with("__session"))
                    .map(|d| mock_clerk::cookies::directive_value(d).to_string());
                let verified = match &fresh {
                    Some(t) if !t.is_empty() && !state.behaviour.handshake_refuses_fresh => state.verify(t).await.is_ok(),
                    _ => false,
                };
                if verified || fresh.as_deref().is_some_and(str::is_empty) {
                    state.log(&format!("INFO handshake resolved: {} cookies set", directives.len()));
                    let mut clean = url::form_urlencoded::Serializer::new(String::new());
                    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
                        if k != mock_clerk::cookies::HANDSHAKE_NONCE && k != mock_clerk::cookies::DEV_BROWSER {
                            clean.append_pair(&k, &v);
                        }
                    }
                    let query = clean.finish();
                    let location = if query.is_empty() { uri.path().to_string() } else { format!("{}?{query}", uri.path()) };
                    let mut response = (StatusCode::TEMPORARY_REDIRECT, [("location", location), ("cache-control", "no-store".to_string())]).into_response();
                    for d in &directives {
                        if let Ok(v) = HeaderValue::from_str(d) {
                            response.headers_mut().append("set-cookie", v);
                        }
                    }
                    return response;
                }
                state.log("ERROR Clerk: unable to resolve handshake: the fresh __session does not verify");
            }
            Err(e) => state.log(&format!("ERROR Clerk: unable to resolve handshake: {e}")),
        }
    }
    let handshake = |reason: &str| -> Option<Response> {
        if !(state.behaviour.handshake && document) {
            return None;
        }
        if count >= 3 && !state.behaviour.handshake_ignores_counter {
            state.log(
                "INFO Clerk: Refreshing the session token resulted in an infinite redirect loop. This usually means that your Clerk instance keys do not match",
            );
            return None;
        }
        let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1");
        let mut url = url::Url::parse(&format!("https://{}/v1/client/handshake", state.settings.fapi_host)).ok()?;
        url.query_pairs_mut()
            .append_pair("redirect_url", &format!("http://{host}{uri}"))
            .append_pair("suffixed_cookies", "true")
            .append_pair("__clerk_hs_reason", reason)
            .append_pair("format", "nonce");
        if let (true, Some(dvb)) = (state.settings.development, cookies.clerk(state, mock_clerk::cookies::DEV_BROWSER)) {
            url.query_pairs_mut().append_pair(mock_clerk::cookies::DEV_BROWSER, &dvb);
        }
        state.log(&format!("INFO handshake ({reason}): 307 to {}", url.as_str().split('?').next().unwrap_or_default()));
        let counter = format!("{}={}; SameSite=Lax; HttpOnly; Max-Age=2", mock_clerk::cookies::REDIRECT_COUNT, count + 1);
        Some((StatusCode::TEMPORARY_REDIRECT, [("location", url.to_string()), ("cache-control", "no-store".into()), ("set-cookie", counter)]).into_response())
    };
    if state.behaviour.handshake && state.settings.development && cookies.clerk(state, mock_clerk::cookies::DEV_BROWSER).is_none() {
        return handshake("dev-browser-missing").unwrap_or_else(|| state.refuse("dev-browser-missing", "no __clerk_db_jwt on a development instance", false));
    }
    let Some(token) = cookies.clerk(state, mock_clerk::cookies::SESSION) else {
        return state.refuse("session-token-missing", "no __session cookie", true);
    };
    let client_uat: i64 = cookies.clerk(state, mock_clerk::cookies::CLIENT_UAT).and_then(|v| v.parse().ok()).unwrap_or(0);
    let problem = match state.verify(&token).await {
        Ok(claims) => {
            let iat = claims.get("iat").and_then(serde_json::Value::as_i64).unwrap_or(0);
            if state.behaviour.cookie_ignores_client_uat {
                None
            } else if client_uat <= 0 {
                Some(("session-token-but-no-client-uat", "a __session cookie without __client_uat".to_string()))
            } else if iat < client_uat {
                Some(("session-token-iat-before-client-uat", format!("iat {iat} is before __client_uat {client_uat}")))
            } else {
                None
            }
            .map_or_else(|| Ok(claims), Err)
        }
        Err(e) => Err(e),
    };
    match problem {
        Ok(claims) => axum::Json(json!({"sub": claims.get("sub"), "sid": claims.get("sid"), "via": "__session cookie"})).into_response(),
        Err((reason, detail)) => {
            let handshake_reason = match reason {
                "token-expired" => Some("session-token-expired-refresh-non-eligible-no-refresh-cookie"),
                "token-not-active-yet" => Some("session-token-nbf"),
                "token-iat-in-the-future" => Some("session-token-iat-in-the-future"),
                "session-token-iat-before-client-uat" | "session-token-but-no-client-uat" => Some(reason),
                _ => None,
            };
            handshake_reason.and_then(handshake).unwrap_or_else(|| state.refuse(reason, &detail, false))
        }
    }
}

impl Stubbed {
    /// `GET /v1/clients/handshake_payload?nonce=…` with the secret key.
    async fn redeem(&self, nonce: &str) -> Result<Vec<String>, String> {
        let url = format!("{}/v1/clients/handshake_payload", self.settings.api_url);
        let response = self.http.get(&url).query(&[("nonce", nonce)]).bearer_auth(&self.settings.secret_key).send().await.map_err(|e| error_chain(&e))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        Ok(body["directives"].as_array().map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_string)).collect()).unwrap_or_default())
    }
}

// config slice
/// The start of an error a refused secret key makes ([`KeyRefused`]).
const KEY_REFUSED: &str = "the Clerk Backend API refused CLERK_SECRET_KEY";

// config slice
/// Start-up checks of [`Behaviour::missing_secret_key`] and [`Behaviour::webhook_secret`].
fn config_slice_start(behaviour: &Behaviour, env: &BTreeMap<String, String>) -> Result<(), String> {
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
fn config_slice_lets_start(behaviour: &Behaviour, name: &str) -> bool {
    name == "CLERK_SECRET_KEY" && behaviour.missing_secret_key == MissingSecretKey::FailEveryRequest
}

// config slice
impl Stubbed {
    /// `GET {CLERK_API_URL}/v1/jwks` with the secret key.
    async fn config_slice_jwks(&self) -> Result<JwkSet, String> {
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
    fn config_slice_key_refused(&self, reason: &str, detail: &str) -> Response {
        match self.behaviour.key_refused {
            KeyRefused::NamedServerError => {
                (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"detail": format!("server misconfigured: {detail}"), "reason": reason}))).into_response()
            }
            KeyRefused::BareServerError => (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response(),
            KeyRefused::Unauthorized => self.refuse(reason, detail, false),
        }
    }

    /// [`MissingSecretKey::FailEveryRequest`] without a secret key: a 500.
    fn config_slice_unconfigured(&self) -> Option<Response> {
        (self.behaviour.missing_secret_key == MissingSecretKey::FailEveryRequest && self.settings.secret_key.is_empty()).then(|| {
            self.log("ERROR Clerk is not configured: every authenticated request fails");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
        })
    }
}

// config slice
/// `POST` [`CONFIG_WEBHOOK_PATH`]: a Svix-verified delivery is applied (200); without
/// `CLERK_WEBHOOK_SECRET`, refused (503) or — [`WebhookSecretUse::FailOpen`] — applied unchecked.
async fn config_slice_webhook(State(state): State<Arc<Stubbed>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
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
fn config_slice_client(behaviour: &Behaviour, env: &BTreeMap<String, String>) -> Result<Option<reqwest::Client>, String> {
    if !behaviour.bundled_roots_only {
        return Ok(None);
    }
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(5));
    if let Some(proxy) = env.get("HTTPS_PROXY").filter(|p| !p.is_empty()) {
        builder = builder.proxy(reqwest::Proxy::https(proxy).map_err(|e| format!("stub-backend: HTTPS_PROXY: {e}"))?);
    }
    builder.build().map(Some).map_err(|e| format!("stub-backend: HTTP client: {e}"))
}
