//! The running mock: the [`MockClerk`] handle that owns the listeners, and its builder.
//! (The state it shares with the routers lives in `state`.)

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::error::Error;
use crate::faults::{Expectation, Faults};
use crate::forge::ForgedToken;
use crate::instance::{Instance, InstanceConfig, Rotation};
use crate::machine::{MachineToken, MachineTokens, NewMachineToken};
use crate::model::{NewUser, Session, User};
use crate::store::Store;
use crate::templates::TemplateSpec;
use crate::tokens::TokenVersion;
use crate::webhooks::{WebhookSettings, Webhooks};

use crate::state::Shared;

/// Builds a [`MockClerk`].
///
/// ```no_run
/// # async fn demo() -> Result<(), mock_clerk::Error> {
/// use mock_clerk::{MockClerk, InstanceConfig};
/// let mock = MockClerk::builder()
///     .instance(InstanceConfig { fapi_host: Some("clerk.example.com".into()), ..Default::default() })
///     .start()
///     .await?;
/// println!("JWKS at {}", mock.jwks_url());
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
#[must_use = "call .start().await to run the mock"]
pub struct MockClerkBuilder {
    instance: InstanceConfig,
    clock: Option<Clock>,
    bind_ip: Option<IpAddr>,
    fapi_port: u16,
    api_port: u16,
    users: Vec<NewUser>,
    templates: Vec<TemplateSpec>,
    webhook_settings: WebhookSettings,
}

impl MockClerkBuilder {
    /// Instance settings (id, FAPI host, keys).
    pub fn instance(mut self, config: InstanceConfig) -> Self {
        self.instance = config;
        self
    }

    /// Sets the FAPI host, e.g. `clerk.example.com`.
    pub fn fapi_host(mut self, host: &str) -> Self {
        self.instance.fapi_host = Some(host.into());
        self
    }

    /// Uses `clock` (shared with the caller) instead of the system clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Listens on `ip` (default 127.0.0.1), e.g. the Docker bridge gateway for containers.
    pub fn bind_ip(mut self, ip: IpAddr) -> Self {
        self.bind_ip = Some(ip);
        self
    }

    /// Fixed ports for the Frontend and Backend API (default 0: any free port).
    pub fn ports(mut self, fapi: u16, api: u16) -> Self {
        self.fapi_port = fapi;
        self.api_port = api;
        self
    }

    /// Seeds a user.
    pub fn user(mut self, user: NewUser) -> Self {
        self.users.push(user);
        self
    }

    /// Seeds a JWT template.
    pub fn template(mut self, template: TemplateSpec) -> Self {
        self.templates.push(template);
        self
    }

    /// Webhook delivery timing (retry schedule, time scale, timeout).
    pub fn webhook_settings(mut self, settings: WebhookSettings) -> Self {
        self.webhook_settings = settings;
        self
    }

    /// Builds the instance without serving it (for routers mounted elsewhere).
    ///
    /// # Errors
    /// Invalid seed data (reserved template claim, duplicate email) or key errors.
    pub(crate) fn build_state(self) -> Result<(Shared, IpAddr, u16, u16), Error> {
        let clock = self.clock.unwrap_or_default();
        let instance = Instance::new(self.instance, clock.clone())?;
        let store = Store::new(clock.clone());
        for user in self.users {
            store.create_user(user)?;
        }
        for template in self.templates {
            store.insert_template(template.build(clock.now_ms())?);
        }
        let shared = Shared::new(instance, store);
        shared.webhooks.set_settings(self.webhook_settings);
        Ok((shared, self.bind_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)), self.fapi_port, self.api_port))
    }

    /// Binds both APIs and starts serving.
    ///
    /// # Errors
    /// [`Error::Bind`] if a port is taken, or invalid seed data.
    pub async fn start(self) -> Result<MockClerk, Error> {
        let (shared, ip, fapi_port, api_port) = self.build_state()?;
        let fapi_listener = bind(SocketAddr::new(ip, fapi_port)).await?;
        let api_listener = bind(SocketAddr::new(ip, api_port)).await?;
        let fapi_addr = fapi_listener.local_addr()?;
        let api_addr = api_listener.local_addr()?;
        let (shutdown, rx) = watch::channel(false);
        let mut tasks =
            vec![serve(fapi_listener, crate::fapi::router(shared.clone()), rx.clone()), serve(api_listener, crate::bapi::router(shared.clone()), rx)];
        // Aborting the dispatcher (on stop/drop) aborts every webhook delivery in flight.
        tasks.extend(shared.webhooks.start());
        tracing::info!(instance = %shared.instance.id(), fapi_host = %shared.instance.fapi_host(), %fapi_addr, %api_addr, "mock-clerk listening");
        Ok(MockClerk { shared, fapi_addr, api_addr, shutdown, tasks })
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::AddrInUse => "the port is already in use: choose another port or use 0 for any free port",
            std::io::ErrorKind::AddrNotAvailable => "this address is not on any local interface: use 127.0.0.1 or an address of this machine",
            std::io::ErrorKind::PermissionDenied => "ports below 1024 need privileges: use a port above 1024 or 0",
            _ => "check the address and port",
        };
        Error::Bind { addr, source, hint }
    })
}

fn serve(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "mock-clerk server stopped");
        }
    })
}

/// A running mock Clerk instance. Dropping it stops its servers and checks expectations.
pub struct MockClerk {
    shared: Shared,
    fapi_addr: SocketAddr,
    api_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for MockClerk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockClerk")
            .field("instance", &self.shared.instance)
            .field("fapi_addr", &self.fapi_addr)
            .field("api_addr", &self.api_addr)
            .finish_non_exhaustive()
    }
}

impl MockClerk {
    /// Starts configuring a mock.
    pub fn builder() -> MockClerkBuilder {
        MockClerkBuilder::default()
    }

    /// A mock with defaults (random instance, system clock, 127.0.0.1, free ports).
    ///
    /// # Errors
    /// See [`MockClerkBuilder::start`].
    pub async fn start() -> Result<Self, Error> {
        Self::builder().start().await
    }

    /// The instance (id, hosts, keys).
    #[must_use]
    pub fn instance(&self) -> &Instance {
        &self.shared.instance
    }

    /// Users, sessions and templates.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Connection details of this instance as JSON: the ready line of `mock-clerk serve`
    /// (ids, hosts, keys, webhook secret) without the URLs.
    #[must_use]
    pub fn info(&self) -> serde_json::Value {
        crate::admin::instance_info(&self.shared)
    }

    /// API keys, M2M tokens and OAuth access tokens (issue, revoke, list).
    #[must_use]
    pub fn machine_tokens(&self) -> &MachineTokens {
        &self.shared.machine_tokens
    }

    /// The clock (move it to expire tokens without sleeping).
    #[must_use]
    pub fn clock(&self) -> &Clock {
        self.shared.instance.clock()
    }

    /// Webhooks: endpoints, on-demand events, the delivery log, forged deliveries.
    #[must_use]
    pub fn webhooks(&self) -> &Webhooks {
        &self.shared.webhooks
    }

    /// Faults and the request record.
    #[must_use]
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Registers an expectation checked on drop.
    pub fn expect(&self, expectation: Expectation) {
        self.shared.faults.expect(expectation);
    }

    /// `http://127.0.0.1:<port>`: the Frontend API served locally.
    #[must_use]
    pub fn fapi_url(&self) -> String {
        format!("http://{}", self.fapi_addr)
    }

    /// `http://127.0.0.1:<port>`: the Backend API served locally (the real one is
    /// `https://api.clerk.com`; use the interceptor for backends that hard-code it).
    #[must_use]
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// The local JWKS URL (`<fapi_url>/.well-known/jwks.json`).
    #[must_use]
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.fapi_url())
    }

    /// Socket addresses of the Frontend and Backend API.
    #[must_use]
    pub fn addrs(&self) -> (SocketAddr, SocketAddr) {
        (self.fapi_addr, self.api_addr)
    }

    /// The Frontend API router (in-process, e.g. for the TLS interceptor).
    pub fn fapi_router(&self) -> Router {
        crate::fapi::router(self.shared.clone())
    }

    /// The Backend API router (in-process, e.g. for the TLS interceptor).
    pub fn bapi_router(&self) -> Router {
        crate::bapi::router(self.shared.clone())
    }

    /// Creates a user.
    ///
    /// # Errors
    /// The email address is taken.
    pub fn create_user(&self, user: NewUser) -> Result<User, Error> {
        self.shared.store.create_user(user)
    }

    /// Signs `user_id` in: a new active session.
    ///
    /// # Errors
    /// Unknown user.
    pub fn create_session(&self, user_id: &str) -> Result<Session, Error> {
        self.shared.store.create_session(user_id)
    }

    /// Defines a custom organisation role with its permission keys (`org:<feature>:<permission>`).
    pub fn define_role(&self, key: &str, permissions: &[&str]) {
        self.shared.store.define_role(key, permissions);
    }

    /// Creates an organisation (slug derived from the name); `created_by` becomes its admin.
    ///
    /// # Errors
    /// Slug taken, unknown creator.
    pub fn create_organization(&self, name: &str, created_by: Option<&str>) -> Result<crate::model::Organization, Error> {
        self.shared.store.create_organization(name, None, created_by, None, None)
    }

    /// Adds `user_id` to `org_id` with `role` (`org:admin`, `org:member` or a defined role).
    ///
    /// # Errors
    /// Unknown organisation, user or role; already a member.
    pub fn add_membership(&self, org_id: &str, user_id: &str, role: &str) -> Result<serde_json::Value, Error> {
        self.shared.store.add_membership(org_id, user_id, role, None, None)
    }

    /// Makes `org_id` the session's active organisation (`None` clears it), as
    /// `setActive({ organization })` does; its tokens then carry `o` (v2) or `org_*` (v1).
    ///
    /// # Errors
    /// Unknown session or organisation; the user is not a member.
    pub fn set_active_organization(&self, session_id: &str, org_id: Option<&str>) -> Result<Session, Error> {
        self.shared.store.set_active_organization(session_id, org_id)
    }

    /// Issues an API key, M2M token or OAuth access token; its `secret` is what a client
    /// sends and what the verify endpoints accept.
    pub fn issue_machine_token(&self, new: NewMachineToken) -> MachineToken {
        self.shared.machine_tokens.issue(new)
    }

    /// Adds (or replaces) a JWT template.
    ///
    /// # Errors
    /// A reserved claim (the error names it) or out-of-range lifetime/skew.
    pub fn add_template(&self, spec: TemplateSpec) -> Result<crate::model::JwtTemplate, Error> {
        let template = spec.build(self.clock().now_ms())?;
        self.shared.store.insert_template(template.clone());
        Ok(template)
    }

    /// The v2 session token of `session_id`, as `getToken()` returns it from a page at
    /// `origin` (`azp`), or without `azp` when `None`.
    ///
    /// # Errors
    /// Unknown or inactive session.
    pub fn session_token(&self, session_id: &str, origin: Option<&str>) -> Result<String, Error> {
        self.session_token_version(session_id, origin, TokenVersion::V2)
    }

    /// A session token in a given claim format.
    ///
    /// # Errors
    /// Unknown or inactive session.
    pub fn session_token_version(&self, session_id: &str, origin: Option<&str>, version: TokenVersion) -> Result<String, Error> {
        self.shared.mint_session_token(session_id, origin, version)
    }

    /// Signs a browser in with `session_id`: the cookies `clerk-js` then holds on the app at
    /// `origin` (`__session`, `__client_uat` and on development instances `__clerk_db_jwt`,
    /// each plain and suffixed), and the client FAPI knows it by (see [`crate::cookies`]).
    ///
    /// # Errors
    /// Unknown or inactive session.
    pub fn browser_sign_in(&self, session_id: &str, origin: Option<&str>) -> Result<crate::cookies::BrowserSession, Error> {
        self.shared.browser_sign_in(session_id, origin)
    }

    /// The browser client of `session_id` (with its dev browser), made known to FAPI on first
    /// use with the session as its active one; an existing client is returned unchanged.
    ///
    /// # Errors
    /// Unknown session.
    pub fn browser_client(&self, session_id: &str) -> Result<crate::cookies::Client, Error> {
        self.shared.browser_client(session_id)
    }

    /// The cookie-name suffix of this instance's publishable key (`__session_<suffix>`).
    #[must_use]
    pub fn cookie_suffix(&self) -> String {
        self.shared.cookie_suffix()
    }

    /// A token from the JWT template `template`, as `getToken({ template })` returns it.
    ///
    /// # Errors
    /// Unknown or inactive session (like the FAPI path: a revoked or ended session gets no
    /// template token either), unknown user or template.
    pub fn template_token(&self, session_id: &str, template: &str, origin: Option<&str>) -> Result<String, Error> {
        self.shared.mint_template_token(session_id, template, origin)
    }

    /// Starts forging from a genuine session token of `session_id` (no `azp`).
    ///
    /// # Errors
    /// Unknown session.
    pub fn forge_session_token(&self, session_id: &str) -> Result<ForgedToken, Error> {
        let session = self.shared.store.session(session_id)?;
        let parts = crate::tokens::session_token(&self.shared.instance, &session, None, TokenVersion::V2);
        Ok(ForgedToken::new(parts, self.clock().now_unix()))
    }

    /// Starts forging from a genuine template token.
    ///
    /// # Errors
    /// Unknown session, user or template.
    pub fn forge_template_token(&self, session_id: &str, template: &str) -> Result<ForgedToken, Error> {
        let session = self.shared.store.session(session_id)?;
        let user = self.shared.store.user(&session.user_id)?;
        let template = self.shared.store.template(template)?;
        let parts = crate::tokens::template_token(&self.shared.instance, &template, &session, &user, None)?;
        Ok(ForgedToken::new(parts, self.clock().now_unix()))
    }

    /// Rotates the signing key; returns the new `kid`.
    ///
    /// # Errors
    /// Key generation failed.
    pub fn rotate_key(&self, rotation: Rotation) -> Result<String, Error> {
        self.shared.instance.rotate_key(rotation)
    }

    /// Makes this mock's Backend API answer requests that carry `other`'s secret key as
    /// `other` does — its JWKS, its users, its sessions — as Clerk does: `api.clerk.com` serves
    /// every instance and the secret key selects which. A key of no instance it knows (an
    /// invalid or revoked key, or a peer that was dropped) still gets 401 `clerk_key_invalid`.
    ///
    /// The peer is held weakly: dropping `other` stops it being served here.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use mock_clerk::MockClerk;
    /// let (a, b) = (MockClerk::start().await?, MockClerk::start().await?);
    /// a.add_peer(&b);
    /// let jwks: serde_json::Value = reqwest::Client::new()
    ///     .get(format!("{}/v1/jwks", a.api_url()))
    ///     .bearer_auth(b.instance().secret_key().expose())
    ///     .send().await?.json().await?;
    /// assert_eq!(jwks["keys"][0]["kid"], b.instance().active_key().kid());
    /// # Ok(()) }
    /// ```
    pub fn add_peer(&self, other: &MockClerk) {
        if Arc::ptr_eq(&self.shared.0, &other.shared.0) {
            return;
        }
        let mut peers = self.shared.peers.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        peers.retain(|p| p.strong_count() > 0 && !std::ptr::eq(p.as_ptr(), Arc::as_ptr(&other.shared.0)));
        peers.push(Arc::downgrade(&other.shared.0));
    }

    /// Stops serving `other`'s secret key here (see [`MockClerk::add_peer`]).
    pub fn remove_peer(&self, other: &MockClerk) {
        let mut peers = self.shared.peers.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        peers.retain(|p| p.strong_count() > 0 && !std::ptr::eq(p.as_ptr(), Arc::as_ptr(&other.shared.0)));
    }

    /// Stops the servers now (also done on drop).
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for MockClerk {
    fn drop(&mut self) {
        self.stop();
        self.shared.instance.release_keys();
        if self.shared.faults.has_expectations() && !std::thread::panicking() {
            if let Err(report) = self.shared.faults.verify() {
                panic!("{report}");
            }
        }
    }
}
