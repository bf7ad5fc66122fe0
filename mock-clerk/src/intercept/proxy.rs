use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::ca::{normalize_host, CertificateAuthority};
use super::env::EnvBlock;
use super::error::InterceptError;
use super::front::Front;
use super::journal::{HandshakeFailure, Journal, RoutedRequest, UnknownHostAttempt};
use super::serve::{accept_loop, Shared};

/// Configuration of an [`Interceptor`]; nothing listens until [`start`](Self::start).
#[must_use = "an interceptor builder does nothing until .start() is awaited"]
#[derive(Debug)]
pub struct InterceptorBuilder {
    routes: Vec<(String, Router)>,
    no_proxy: Vec<String>,
    bind: SocketAddr,
    ca: Option<CertificateAuthority>,
}

impl InterceptorBuilder {
    /// Serves `host` (any port, HTTPS through `CONNECT` or plain HTTP) with `router`.
    ///
    /// Use it for `api.clerk.com` (the Backend API), each instance's FAPI host, and any
    /// further host a backend must reach, such as a custom Clerk domain.
    pub fn route(mut self, host: impl Into<String>, router: Router) -> Self {
        self.routes.push((host.into(), router));
        self
    }

    /// Adds a host the client must reach directly, such as the database host, to `NO_PROXY`
    /// in the env blocks. Loopback names are always there.
    pub fn no_proxy(mut self, host: impl Into<String>) -> Self {
        self.no_proxy.push(host.into());
        self
    }

    /// Listens on `addr` instead of `127.0.0.1:0`: for containers, the docker bridge gateway
    /// (e.g. `172.17.0.1:0`) or `0.0.0.0:0`.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Uses an existing CA instead of generating one, e.g. one whose files were already
    /// mounted into a container.
    pub fn certificate_authority(mut self, ca: CertificateAuthority) -> Self {
        self.ca = Some(ca);
        self
    }

    /// Issues the certificates, binds the listener and starts serving.
    ///
    /// # Errors
    /// [`InterceptError::InvalidHost`] for a route that is not a host name, CA and certificate
    /// errors, and [`InterceptError::PortInUse`] / [`InterceptError::AddressNotAvailable`] /
    /// [`InterceptError::Bind`] when the address cannot be bound.
    pub async fn start(self) -> Result<Interceptor, InterceptError> {
        let ca = match self.ca {
            Some(ca) => ca,
            None => CertificateAuthority::new()?,
        };
        let mut routes = HashMap::new();
        for (host, router) in self.routes {
            let host = normalize_host(&host)?;
            ca.issue(&host)?;
            routes.insert(host, router);
        }
        let no_proxy = self.no_proxy.iter().map(|host| host.trim().to_owned()).collect();
        let listener = TcpListener::bind(self.bind).await.map_err(|e| InterceptError::bind(self.bind, e))?;
        let local_addr = listener.local_addr().map_err(|e| InterceptError::bind(self.bind, e))?;

        let shared = Arc::new(Shared {
            issuer: ca.issuer(),
            routes: RwLock::new(routes),
            blocked: Journal::default(),
            routed: Journal::default(),
            handshake_failures: Journal::default(),
        });
        let (shutdown, stopped) = watch::channel(());
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stopped));
        tracing::info!(%local_addr, hosts = ?shared.hosts(), "interception proxy listening");
        Ok(Interceptor { shared, ca, local_addr, no_proxy, accept_task, _shutdown: shutdown })
    }
}

/// An HTTP proxy that makes mocks reachable under real Clerk host names.
///
/// Backends hard-code `https://api.clerk.com` and `https://<frontend API host>` and offer no
/// setting to point them elsewhere. What they do honour is the process environment:
/// `HTTPS_PROXY` sends their requests here as `CONNECT api.clerk.com:443`, and `SSL_CERT_FILE`
/// (or its equivalents) makes them trust the per-run CA this proxy uses to terminate TLS.
/// Requests are then served in-process by the mock's [`Router`]; any other host is refused and
/// recorded, so a test learns what else the backend tried to reach.
///
/// Dropping the interceptor stops the listener and every open connection and deletes the CA
/// files; [`shutdown`](Self::shutdown) does the same and waits for the listener to close.
pub struct Interceptor {
    shared: Arc<Shared>,
    ca: CertificateAuthority,
    local_addr: SocketAddr,
    no_proxy: Vec<String>,
    accept_task: JoinHandle<()>,
    // Never sent on: dropping it is the stop signal every connection task waits for.
    _shutdown: watch::Sender<()>,
}

impl Interceptor {
    /// Starts configuring an interceptor that listens on `127.0.0.1:0` with a new CA.
    pub fn builder() -> InterceptorBuilder {
        InterceptorBuilder { routes: Vec::new(), no_proxy: Vec::new(), bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), ca: None }
    }

    /// Serves `host` with `router` from now on, replacing any router it had: how a mock
    /// instance started after the proxy (with its own FAPI host) becomes reachable.
    /// Tunnels already open to `host` use the new router for their next request.
    ///
    /// # Errors
    /// [`InterceptError::InvalidHost`] or a certificate error; the routes are unchanged then.
    pub fn add_route(&self, host: &str, router: Router) -> Result<(), InterceptError> {
        let host = normalize_host(host)?;
        self.ca.issue(&host)?;
        self.shared.routes.write().unwrap_or_else(PoisonError::into_inner).insert(host, router);
        Ok(())
    }

    /// Stops serving `host`; later connections to it are refused like any unknown host.
    /// Returns whether it was served.
    pub fn remove_route(&self, host: &str) -> bool {
        let Ok(host) = normalize_host(host) else {
            return false;
        };
        let mut routes = self.shared.routes.write().unwrap_or_else(PoisonError::into_inner);
        routes.remove(&host).is_some()
    }

    /// The hosts served, sorted.
    #[must_use]
    pub fn hosts(&self) -> Vec<String> {
        self.shared.hosts()
    }

    /// The address the proxy listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://127.0.0.1:<port>`: the proxy URL for processes on this machine. When bound to
    /// an unspecified address (`0.0.0.0`, `::`), the loopback address of the same family.
    #[must_use]
    pub fn proxy_url(&self) -> String {
        let ip = match self.local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.local_addr.port()))
    }

    /// The per-run CA.
    #[must_use]
    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// The PEM bundle clients must trust (see [`CertificateAuthority::ca_file`]).
    #[must_use]
    pub fn ca_file(&self) -> &Path {
        self.ca.ca_file()
    }

    /// The variables a process on this machine needs to be routed here: the proxy in every
    /// spelling, `NO_PROXY` with loopback and the [`no_proxy`](InterceptorBuilder::no_proxy)
    /// hosts, and the CA bundle for OpenSSL/Python, requests, curl and Node.
    #[must_use]
    pub fn env_block(&self) -> EnvBlock {
        EnvBlock::new(&self.proxy_url(), &self.ca_file().to_string_lossy(), &self.no_proxy)
    }

    /// The same block for a process in a container: the proxy is reached as
    /// `http://<proxy_host>:<port>` (typically `host.docker.internal`, which on Linux needs
    /// `--add-host host.docker.internal:host-gateway`) and the CA is the file the caller
    /// mounted at `ca_path_in_container` (mount [`ca_file`](Self::ca_file) read-only).
    ///
    /// The proxy must then listen on an address the container can reach: see
    /// [`InterceptorBuilder::bind`].
    #[must_use]
    pub fn env_block_for_container(&self, proxy_host: &str, ca_path_in_container: &str) -> EnvBlock {
        if self.local_addr.ip().is_loopback() {
            tracing::warn!(
                addr = %self.local_addr,
                "the interception proxy listens on loopback only: containers cannot reach it"
            );
        }
        let proxy_url = format!("http://{proxy_host}:{}", self.local_addr.port());
        EnvBlock::new(&proxy_url, ca_path_in_container, &self.no_proxy)
    }

    /// Every connection refused because its host is not served, oldest first (the most recent
    /// [`JOURNAL_CAPACITY`](super::JOURNAL_CAPACITY)).
    #[must_use]
    pub fn blocked_attempts(&self) -> Vec<UnknownHostAttempt> {
        self.shared.blocked.snapshot()
    }

    /// Every request handed to a router, oldest first.
    #[must_use]
    pub fn routed_requests(&self) -> Vec<RoutedRequest> {
        self.shared.routed.snapshot()
    }

    /// Every failed TLS handshake inside a tunnel, oldest first: a client that ignores the CA
    /// variables shows up here rather than as a request.
    #[must_use]
    pub fn handshake_failures(&self) -> Vec<HandshakeFailure> {
        self.shared.handshake_failures.snapshot()
    }

    /// Serves the same routes directly over TLS on `addr` (normally port 443), choosing the
    /// router by SNI, for clients that ignore `HTTPS_PROXY`: see [`Front`]. The front lives
    /// until the returned value is dropped; several may run at once (one per address).
    ///
    /// # Errors
    /// [`InterceptError::PortInUse`], [`InterceptError::AddressNotAvailable`] or
    /// [`InterceptError::Bind`] (port 443 needs root or `CAP_NET_BIND_SERVICE`).
    pub async fn start_front(&self, addr: SocketAddr) -> Result<Front, InterceptError> {
        Front::start(Arc::clone(&self.shared), addr).await
    }

    /// Stops the proxy and waits until its listener is closed, so the port is free when this
    /// returns. Open connections are closed as well.
    pub async fn shutdown(mut self) {
        self.accept_task.abort();
        // The task owns the listener: once it has finished, the port is closed. Dropping
        // `self` afterwards closes every open connection.
        let _ = (&mut self.accept_task).await;
    }
}

impl Drop for Interceptor {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl fmt::Debug for Interceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interceptor").field("local_addr", &self.local_addr).field("hosts", &self.hosts()).field("ca", &self.ca).finish_non_exhaustive()
    }
}
