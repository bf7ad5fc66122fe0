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
use std::sync::Arc;
use std::time::Duration;

use harness::{HarnessConfig, LogBuffer, Profile};
use harness::{LaunchFuture, Launcher};
use jsonwebtoken::DecodingKey;

mod config_slice;
mod cookies;
mod data;
mod routes;
mod server;
mod verify;

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
    /// ahead of the token check, a hand-made `request.session` login). On the token endpoint
    /// and, in the database mode, the syncing one (django-clerk-users' middleware).
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
        Box::pin(async move { server::start(behaviour, clock, &env, logs).await })
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

/// Django's CSRF failure page (DEBUG off), as `django.views.csrf.csrf_failure` renders it.
pub const DJANGO_CSRF_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <meta http-equiv=\"content-type\" content=\"text/html; charset=utf-8\">\n  <meta name=\"robots\" content=\"NONE,NOARCHIVE\">\n  <title>403 Forbidden</title>\n  <style type=\"text/css\">\n    html * { padding:0; margin:0; }\n    body * { padding:10px 20px; }\n    body * * { padding:0; }\n    body { font:small sans-serif; background:#eee; color:#000; }\n    body>div { border-bottom:1px solid #ddd; }\n    h1 { font-weight:normal; margin-bottom:.4em; }\n    h1 span { font-size:60%; color:#666; font-weight:normal; }\n    #info { background:#f6f6f6; }\n    #info ul { margin: 0.5em 4em; }\n    #info p, #summary p { padding-top:10px; }\n    #summary { background: #ffc; }\n    #explanation { background:#eee; border-bottom: 0px none; }\n  </style>\n</head>\n<body>\n<div id=\"summary\">\n  <h1>Forbidden <span>(403)</span></h1>\n  <p>CSRF verification failed. Request aborted.</p>\n\n\n</div>\n\n<div id=\"explanation\">\n  <p><small>More information is available with DEBUG=True.</small></p>\n</div>\n\n</body>\n</html>\n";

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
