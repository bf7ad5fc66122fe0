//! A direct TLS front: the mocks served on `<addr>:443` as if they were Clerk's own hosts, for
//! clients that ignore `HTTPS_PROXY` but resolve Clerk's names to `addr` (container extra
//! hosts, or a private `/etc/hosts` in a mount namespace).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::Method;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::LazyConfigAcceptor;

use super::ca::normalize_host;
use super::error::InterceptError;
use super::journal::UnknownHostAttempt;
use super::serve::{serve_decrypted, spawn_until_stopped, Shared};

/// A TLS listener that serves the [`Interceptor`](super::Interceptor)'s routes directly,
/// choosing the router by the name the client sends in SNI.
///
/// It shares the interceptor's CA, routes and journals: a request through the front shows up
/// in [`Interceptor::routed_requests`](super::Interceptor::routed_requests) like one through
/// the proxy, a name no mock serves in
/// [`Interceptor::blocked_attempts`](super::Interceptor::blocked_attempts), a client that
/// does not trust the CA in
/// [`Interceptor::handshake_failures`](super::Interceptor::handshake_failures).
/// Started with [`Interceptor::start_front`](super::Interceptor::start_front); dropping it
/// closes the listener and every connection.
pub struct Front {
    local_addr: SocketAddr,
    accept_task: JoinHandle<()>,
    _shutdown: watch::Sender<()>,
}

impl Front {
    pub(crate) async fn start(shared: Arc<Shared>, addr: SocketAddr) -> Result<Self, InterceptError> {
        let listener = TcpListener::bind(addr).await.map_err(|e| InterceptError::bind(addr, e))?;
        let local_addr = listener.local_addr().map_err(|e| InterceptError::bind(addr, e))?;
        let (shutdown, stopped) = watch::channel(());
        let accept_task = tokio::spawn(accept_loop(listener, shared, stopped));
        tracing::info!(%local_addr, "direct TLS front listening");
        Ok(Self { local_addr, accept_task, _shutdown: shutdown })
    }

    /// The address the front listens on (port 443 unless asked otherwise).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops listening and waits until the port is closed.
    pub async fn shutdown(mut self) {
        self.accept_task.abort();
        let _ = (&mut self.accept_task).await;
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl fmt::Debug for Front {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Front").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, shutdown: watch::Receiver<()>) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => spawn_until_stopped(&shutdown, serve_tls(stream, Arc::clone(&shared), shutdown.clone())),
            Err(error) => {
                tracing::warn!(%error, "TLS front could not accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_tls(stream: TcpStream, shared: Arc<Shared>, _shutdown: watch::Receiver<()>) {
    let _ = stream.set_nodelay(true);
    let port = stream.local_addr().map_or(443, |a| a.port());
    let start = match LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await {
        Ok(start) => start,
        Err(error) => {
            tracing::debug!(%error, "TLS front: no ClientHello (not a TLS client?)");
            return;
        }
    };
    let sni = start.client_hello().server_name().map(str::to_owned);
    let Some(host) = sni.as_deref().and_then(|name| normalize_host(name).ok()) else {
        tracing::warn!("TLS front: the client sent no SNI, so there is no way to tell which Clerk host it wants");
        return;
    };
    if shared.router(&host).is_none() {
        tracing::warn!(%host, "TLS front: refused, host is not mocked");
        shared.blocked.push(UnknownHostAttempt { host, port, method: Method::CONNECT, at: SystemTime::now() });
        return;
    }
    let config = match shared.issuer.tunnel_config(&host) {
        Ok(config) => config,
        Err(error) => {
            tracing::warn!(%host, %error, "TLS front cannot present a certificate");
            return;
        }
    };
    serve_decrypted(start.into_stream(config).await, host, shared, true).await;
}
