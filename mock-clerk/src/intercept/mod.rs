//! TLS interception: unmodified backends reach the mock as `https://api.clerk.com` and
//! `https://<frontend API host>`.
//!
//! Real backends hard-code Clerk's hosts and have no setting for another API URL, but their
//! HTTP stacks honour `HTTPS_PROXY` and a CA bundle from the environment. So the harness runs
//! an HTTP proxy that accepts `CONNECT api.clerk.com:443`, terminates TLS itself with a
//! certificate from a [`CertificateAuthority`] made for this run, and serves the request with
//! the mock's [`axum::Router`] in-process. Plain `http://` proxy requests to those hosts are
//! served the same way. Every other host is refused with `403` and recorded as an
//! [`UnknownHostAttempt`]: the harness runs offline, and a backend calling something else is
//! worth a line in the report rather than a hang.
//!
//! The module knows nothing about Clerk itself: it routes hosts to whatever routers it is
//! given, which also makes it usable with stand-in routers in tests.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! use axum::{routing::get, Router};
//! use mock_clerk::intercept::Interceptor;
//!
//! let bapi = Router::new().route("/v1/jwks", get(|| async { r#"{"keys":[]}"# }));
//! let interceptor = Interceptor::builder()
//!     .route("api.clerk.com", bapi)
//!     .no_proxy("db") // the backend's database stays direct
//!     .start()
//!     .await?;
//!
//! // A backend process would get `.envs(&interceptor.env_block())`; reqwest is told the same
//! // two things in code: the proxy, and the CA to trust.
//! let env = interceptor.env_block();
//! assert_eq!(env.get("HTTPS_PROXY"), Some(interceptor.proxy_url().as_str()));
//! let client = reqwest::Client::builder()
//!     .proxy(reqwest::Proxy::https(interceptor.proxy_url())?)
//!     .add_root_certificate(reqwest::Certificate::from_pem(interceptor.ca().ca_pem().as_bytes())?)
//!     .build()?;
//! let body = client.get("https://api.clerk.com/v1/jwks").send().await?.text().await?;
//! assert_eq!(body, r#"{"keys":[]}"#);
//!
//! // Anything else is refused and recorded.
//! assert!(client.get("https://telemetry.example.com/").send().await.is_err());
//! assert_eq!(interceptor.blocked_attempts()[0].host, "telemetry.example.com");
//! # Ok(()) }
//! ```
//!
//! Clients that ignore the proxy variables (Clerk's Python SDK builds its own httpx
//! transport) are served by a [`Front`] instead: [`Interceptor::start_front`] listens on
//! `<addr>:443` and chooses the router by the TLS SNI, so a client whose resolver sends
//! `api.clerk.com` to `addr` (container extra hosts, a private `/etc/hosts`) reaches the same
//! mocks, recorded in the same journals.
//!
//! Limits: HTTP/1.1 only (ALPN offers `http/1.1`, which every client falls back to); clients
//! that bring their own CA store show up in [`Interceptor::handshake_failures`].

mod ca;
mod env;
mod error;
mod front;
mod journal;
mod proxy;
mod serve;

pub use ca::CertificateAuthority;
pub use env::{EnvBlock, CA_VARS, LOOPBACK_HOSTS, NO_PROXY_VARS, PROXY_VARS};
pub use error::InterceptError;
pub use front::Front;
pub use journal::{HandshakeFailure, RoutedRequest, UnknownHostAttempt, JOURNAL_CAPACITY};
pub use proxy::{Interceptor, InterceptorBuilder};
