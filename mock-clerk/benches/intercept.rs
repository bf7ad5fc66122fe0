//! What interception costs: per-request latency with keep-alive on loopback, direct versus
//! through the proxy, and TLS handshakes per second through `CONNECT`.
//!
//! ```text
//! cargo bench -p mock-clerk --bench intercept            # release build
//! INTERCEPT_BENCH_REQUESTS=20000 cargo bench -p mock-clerk --bench intercept
//! ```
//!
//! Client and proxy share the machine's cores, so every number includes the client's work too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mock_clerk::intercept::{CertificateAuthority, Interceptor};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

const HOST: &str = "api.clerk.com";
const JWKS: &str = r#"{"keys":[{"kid":"ins_bench","kty":"RSA","alg":"RS256","use":"sig","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}]}"#;

fn router() -> Router {
    Router::new().route("/v1/jwks", get(|| async { ([("content-type", "application/json")], JWKS) }))
}

struct Stats {
    label: &'static str,
    samples: Vec<Duration>,
}

impl Stats {
    fn percentile(&self, p: usize) -> Duration {
        self.samples[(self.samples.len() * p / 100).min(self.samples.len() - 1)]
    }

    fn print(&self) {
        let mean = self.samples.iter().sum::<Duration>() / self.samples.len() as u32;
        println!(
            "  {:<38} p50 {:>7.1} µs   p99 {:>7.1} µs   mean {:>7.1} µs",
            self.label,
            micros(self.percentile(50)),
            micros(self.percentile(99)),
            micros(mean),
        );
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Latency of `requests` sequential GETs on one keep-alive connection, after a warm-up.
async fn measure(label: &'static str, client: &reqwest::Client, url: &str, requests: usize) -> anyhow::Result<Stats> {
    for _ in 0..requests / 10 + 10 {
        client.get(url).send().await?.bytes().await?;
    }
    let mut samples = Vec::with_capacity(requests);
    for _ in 0..requests {
        let start = Instant::now();
        let response = client.get(url).send().await?;
        anyhow::ensure!(response.status().is_success(), "{label}: {}", response.status());
        response.bytes().await?;
        samples.push(start.elapsed());
    }
    samples.sort();
    Ok(Stats { label, samples })
}

/// Serves the router with TLS directly, with a certificate from the same CA: the baseline that
/// differs from the proxy path only by the proxy.
async fn serve_tls_directly(ca: &CertificateAuthority) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(|request| router().oneshot(request));
                let _ = http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
            });
        }
    });
    Ok(addr)
}

async fn serve_plain_directly() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, router()).await });
    Ok(addr)
}

/// One `CONNECT` plus a full TLS handshake through the proxy, nothing else.
async fn connect_and_handshake(proxy: SocketAddr, connector: &tokio_rustls::TlsConnector) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(proxy).await?;
    stream.set_nodelay(true)?;
    stream.write_all(format!("CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n").as_bytes()).await?;
    let mut head = Vec::with_capacity(128);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        anyhow::ensure!(stream.read(&mut byte).await? == 1, "proxy closed during CONNECT");
        head.push(byte[0]);
    }
    anyhow::ensure!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    let mut tls = connector.connect(ServerName::try_from(HOST)?, stream).await?;
    tls.shutdown().await.ok();
    Ok(())
}

async fn handshakes_per_second(proxy: SocketAddr, connector: tokio_rustls::TlsConnector, concurrency: usize, duration: Duration) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let connector = connector.clone();
        tasks.spawn(async move {
            let mut done = 0u64;
            while start.elapsed() < duration {
                connect_and_handshake(proxy, &connector).await?;
                done += 1;
            }
            anyhow::Ok(done)
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let requests: usize = std::env::var("INTERCEPT_BENCH_REQUESTS").ok().and_then(|n| n.parse().ok()).unwrap_or(5_000);
    let interceptor = Interceptor::builder().route(HOST, router()).start().await?;
    let ca_cert = reqwest::Certificate::from_pem(interceptor.ca().ca_pem().as_bytes())?;
    let plain_addr = serve_plain_directly().await?;
    let tls_addr = serve_tls_directly(interceptor.ca()).await?;

    let base = || reqwest::Client::builder().no_proxy().tcp_nodelay(true);
    let plain = base().build()?;
    let direct_tls = base().add_root_certificate(ca_cert.clone()).resolve(HOST, tls_addr).build()?;
    let proxied =
        reqwest::Client::builder().tcp_nodelay(true).proxy(reqwest::Proxy::all(interceptor.proxy_url())?).add_root_certificate(ca_cert.clone()).build()?;
    let fresh_connections = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(0)
        .proxy(reqwest::Proxy::all(interceptor.proxy_url())?)
        .add_root_certificate(ca_cert)
        .build()?;

    println!("interception proxy benchmark: {requests} sequential GETs each, keep-alive, loopback");
    println!("(cores: {})", std::thread::available_parallelism().map_or(0, usize::from));
    let plain_stats = measure("direct http (no TLS, no proxy)", &plain, &format!("http://{plain_addr}/v1/jwks"), requests).await?;
    let tls_stats = measure("direct https (same CA, no proxy)", &direct_tls, &format!("https://{HOST}:{}/v1/jwks", tls_addr.port()), requests).await?;
    let proxied_tls = measure("https through the proxy (CONNECT)", &proxied, &format!("https://{HOST}/v1/jwks"), requests).await?;
    let proxied_plain = measure("http through the proxy (absolute-form)", &proxied, &format!("http://{HOST}/v1/jwks"), requests).await?;
    for stats in [&plain_stats, &tls_stats, &proxied_tls, &proxied_plain] {
        stats.print();
    }
    let added = |a: &Stats, b: &Stats| micros(a.percentile(50)) - micros(b.percentile(50));
    println!(
        "  added p50 latency: proxy https vs direct https {:+.1} µs; vs direct http {:+.1} µs; proxy http vs direct http {:+.1} µs",
        added(&proxied_tls, &tls_stats),
        added(&proxied_tls, &plain_stats),
        added(&proxied_plain, &plain_stats),
    );

    let new_connection = measure("https, new connection per request", &fresh_connections, &format!("https://{HOST}/v1/jwks"), requests / 10).await?;
    new_connection.print();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(interceptor.ca().ca_der().clone()).context("CA certificate")?;
    let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let duration = Duration::from_secs(3);
    for concurrency in [1, 4, 16] {
        let rate = handshakes_per_second(interceptor.local_addr(), connector.clone(), concurrency, duration).await?;
        println!("  CONNECT + TLS handshakes, {concurrency:>2} concurrent clients: {rate:>7.0} /s");
    }
    let routed = interceptor.routed_requests().len();
    println!("  (proxy routed {routed} requests, refused {})", interceptor.blocked_attempts().len());
    Ok(())
}
