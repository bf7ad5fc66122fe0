//! The proxy's connection handling: plain HTTP/1.1 towards the client, `CONNECT` tunnels that
//! are terminated here with the per-run CA, and in-process dispatch to the mocks' routers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use axum::body::Body;
use axum::Router;
use http::header::{HeaderValue, CONTENT_TYPE, HOST};
use http::{Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper::ext::ReasonPhrase;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::ca::{normalize_host, Issuer};
use super::journal::{HandshakeFailure, Journal, RoutedRequest, UnknownHostAttempt};

/// State shared by the handle and every connection task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) issuer: Arc<Issuer>,
    pub(crate) routes: RwLock<HashMap<String, Router>>,
    pub(crate) blocked: Journal<UnknownHostAttempt>,
    pub(crate) routed: Journal<RoutedRequest>,
    pub(crate) handshake_failures: Journal<HandshakeFailure>,
}

impl Shared {
    pub(crate) fn router(&self, host: &str) -> Option<Router> {
        self.routes.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(host).cloned()
    }

    pub(crate) fn hosts(&self) -> Vec<String> {
        let routes = self.routes.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut hosts: Vec<String> = routes.keys().cloned().collect();
        hosts.sort();
        hosts
    }
}

/// Resolves when the handle's sender is dropped, which is how every task learns to stop.
async fn stopped(mut shutdown: watch::Receiver<()>) {
    while shutdown.changed().await.is_ok() {}
}

/// Spawns `work` so that it ends when the interceptor is dropped.
pub(crate) fn spawn_until_stopped(shutdown: &watch::Receiver<()>, work: impl Future<Output = ()> + Send + 'static) {
    let stop = stopped(shutdown.clone());
    tokio::spawn(async move {
        tokio::select! {
            () = work => {}
            () = stop => {}
        }
    });
}

pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, shutdown: watch::Receiver<()>) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let connection = serve_client(stream, Arc::clone(&shared), shutdown.clone());
                spawn_until_stopped(&shutdown, connection);
            }
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "interception proxy could not accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_client(stream: TcpStream, shared: Arc<Shared>, shutdown: watch::Receiver<()>) {
    // Small request/response pairs: Nagle's delay would dominate the proxy's latency.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| {
        let response = proxy_request(request, Arc::clone(&shared), shutdown.clone());
        async move { Ok::<_, Infallible>(response.await) }
    });
    let served = http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades().await;
    if let Err(error) = served {
        tracing::debug!(%error, "proxy client connection ended with an error");
    }
}

async fn proxy_request(request: Request<Incoming>, shared: Arc<Shared>, shutdown: watch::Receiver<()>) -> Response<Body> {
    let Some((host, port)) = target(&request) else {
        return text(
            StatusCode::BAD_REQUEST,
            "this is the clerk-harness interception proxy: use it as an HTTP proxy \
             (HTTPS_PROXY/HTTP_PROXY), not as a server\n",
        );
    };
    if shared.router(&host).is_none() {
        return refuse(&shared, host, port, request.method().clone());
    }
    if request.method() == Method::CONNECT {
        let upgrade = hyper::upgrade::on(request);
        spawn_until_stopped(&shutdown, terminate_tunnel(upgrade, host, shared));
        return Response::new(Body::empty());
    }
    route(&shared, host, strip_proxy_form(request), false).await
}

/// The host and port a proxied request is for, from the `CONNECT` authority or the
/// absolute-form URI. `None` for an origin-form request sent to the proxy as if it were a
/// server, or a name that cannot be a host.
fn target(request: &Request<Incoming>) -> Option<(String, u16)> {
    let uri = request.uri();
    let authority = uri.authority()?;
    let default_port = match (request.method(), uri.scheme_str()) {
        (&Method::CONNECT, _) | (_, Some("https")) => 443,
        _ => 80,
    };
    let host = normalize_host(authority.host()).ok()?;
    Some((host, authority.port_u16().unwrap_or(default_port)))
}

fn refuse(shared: &Shared, host: String, port: u16, method: Method) -> Response<Body> {
    let attempt = UnknownHostAttempt { host, port, method, at: SystemTime::now() };
    tracing::warn!(host = %attempt.host, port, method = %attempt.method, "refused: host is not mocked");
    let known = shared.hosts().join(", ");
    let body = format!(
        "clerk-harness blocked {} to {}:{}: only mocked hosts are reachable through this proxy \
         ({known}). If the backend must reach this host directly, add it to NO_PROXY.\n",
        attempt.method, attempt.host, attempt.port,
    );
    shared.blocked.push(attempt);
    let mut response = text(StatusCode::FORBIDDEN, &body);
    // Most clients show only the status line of a refused CONNECT, so say it there too.
    response.extensions_mut().insert(ReasonPhrase::from_static(b"Forbidden by clerk-harness: host is not mocked"));
    response
}

/// Turns an absolute-form proxy request into what the router would see from a direct client.
fn strip_proxy_form(mut request: Request<Incoming>) -> Request<Incoming> {
    let uri = request.uri().clone();
    if let Some(authority) = uri.authority() {
        if let Ok(value) = HeaderValue::from_str(authority.as_str()) {
            request.headers_mut().entry(HOST).or_insert(value);
        }
    }
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    if let Ok(origin_form) = path_and_query.parse::<Uri>() {
        *request.uri_mut() = origin_form;
    }
    request.headers_mut().remove("proxy-connection");
    request.headers_mut().remove("proxy-authorization");
    request
}

pub(crate) async fn route(shared: &Shared, host: String, request: Request<Incoming>, via_front: bool) -> Response<Body> {
    let Some(router) = shared.router(&host) else {
        // The route was removed while a tunnel to it was still open.
        return text(StatusCode::BAD_GATEWAY, &format!("clerk-harness: no mock serves {host} any more\n"));
    };
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    tracing::debug!(%host, %method, %path, %status, "routed to mock");
    shared.routed.push(RoutedRequest { host, method, path, status, at: SystemTime::now(), via_front });
    response
}

async fn terminate_tunnel(upgrade: hyper::upgrade::OnUpgrade, host: String, shared: Arc<Shared>) {
    let upgraded = match upgrade.await {
        Ok(upgraded) => upgraded,
        Err(error) => {
            tracing::debug!(%host, %error, "client left before the tunnel opened");
            return;
        }
    };
    let config = match shared.issuer.tunnel_config(&host) {
        Ok(config) => config,
        Err(error) => {
            tracing::warn!(%host, %error, "cannot terminate TLS");
            return;
        }
    };
    let tls = TlsAcceptor::from(config).accept(TokioIo::new(upgraded)).await;
    serve_decrypted(tls, host, shared, false).await;
}

/// Serves the decrypted HTTP/1 requests of one TLS connection — a CONNECT tunnel
/// (`via_front` false) or the TLS front — once its handshake is done; a failed handshake is
/// recorded (a client that distrusts the per-run CA shows up here).
pub(crate) async fn serve_decrypted<S>(tls: std::io::Result<S>, host: String, shared: Arc<Shared>, via_front: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let tls = match tls {
        Ok(tls) => tls,
        Err(error) => {
            let failure = handshake_failure(host, &error);
            tracing::warn!("{failure}");
            shared.handshake_failures.push(failure);
            return;
        }
    };
    let service = service_fn(move |request| {
        let shared = Arc::clone(&shared);
        let host = host.clone();
        async move { Ok::<_, Infallible>(route(&shared, host, request, via_front).await) }
    });
    if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(tls), service).await {
        tracing::debug!(%error, via_front, "TLS connection to the mock ended with an error");
    }
}

pub(crate) fn handshake_failure(host: String, error: &std::io::Error) -> HandshakeFailure {
    use rustls::AlertDescription::{BadCertificate, CertificateUnknown, UnknownCA};
    let received = match error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::AlertReceived(alert)) => Some(*alert),
        _ => None,
    };
    let untrusted_ca = matches!(received, Some(UnknownCA | BadCertificate | CertificateUnknown));
    let alert = match received {
        Some(UnknownCA) => Some("unknown_ca".to_string()),
        Some(BadCertificate) => Some("bad_certificate".to_string()),
        Some(CertificateUnknown) => Some("certificate_unknown".to_string()),
        Some(other) => Some(format!("{other:?}")),
        // A client whose verification failed may hang up without an alert.
        None if matches!(error.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset) => {
            Some("closed during the handshake".to_string())
        }
        None => None,
    };
    HandshakeFailure { host, untrusted_ca, error: error.to_string(), alert, at: SystemTime::now() }
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_owned()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
