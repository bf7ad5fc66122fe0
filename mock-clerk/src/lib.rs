//! # mock-clerk
//!
//! A faithful, offline mock of the [Clerk](https://clerk.com) authentication service, for
//! testing backends that verify Clerk tokens and sync Clerk users.
//!
//! It mints session tokens and JWT-template tokens that Clerk's own SDKs accept (same
//! header with `kid` and `cat`, same claims, RS256 with RSA-2048), serves the JWKS and the
//! Backend API with Clerk's JSON shapes, and forges every kind of broken token for negative
//! tests. The clock is injectable, faults are data, and every request is recorded.
//!
//! Start a mock, sign a user in, mint the token the SPA would send and verify it the way a
//! backend does (JWKS over HTTP, RS256 pinned, `kid` from the header) — then forge an expired
//! one and watch the same verification refuse it:
//!
//! ```
//! use jsonwebtoken::{decode, decode_header, jwk::JwkSet, Algorithm, DecodingKey, Validation};
//! use mock_clerk::{MockClerk, NewUser};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mock = MockClerk::start().await?;
//! let user = mock.create_user(NewUser::with_email("ada@example.com").names("Ada", "Lovelace"))?;
//! let session = mock.create_session(&user.id)?;
//! let token = mock.session_token(&session.id, Some("http://localhost:3000"))?;
//!
//! let jwks: JwkSet = reqwest::get(mock.jwks_url()).await?.json().await?;
//! let verify = |token: &str| -> Result<serde_json::Value, Box<dyn std::error::Error>> {
//!     let kid = decode_header(token)?.kid.ok_or("Clerk tokens carry a kid")?;
//!     let key = DecodingKey::from_jwk(jwks.find(&kid).ok_or("kid not in the JWKS")?)?;
//!     Ok(decode::<serde_json::Value>(token, &key, &Validation::new(Algorithm::RS256))?.claims)
//! };
//! let claims = verify(&token)?;
//! assert_eq!(claims["sub"], user.id.as_str());
//! assert_eq!(claims["azp"], "http://localhost:3000");
//!
//! let expired = mock.forge_session_token(&session.id)?.expired_by(120).build()?;
//! assert!(verify(&expired).is_err(), "an expired token must be refused");
//! # Ok(()) }
//! ```
//!
//! ## The API
//!
//! - [`MockClerk`] — a running instance ([`MockClerk::start`], [`MockClerk::builder`]): its
//!   URLs, users and sessions ([`NewUser`], [`User`], [`Session`], [`SessionStatus`]),
//!   organizations ([`Organization`], [`OrganizationMembership`]), tokens
//!   ([`MockClerk::session_token`], [`MockClerk::template_token`] with a [`TemplateSpec`]),
//!   machine tokens ([`NewMachineToken`], [`MachineTokens`]), key rotation ([`Rotation`]) and
//!   other instances behind the same Backend API host ([`MockClerk::add_peer`]: the secret
//!   key selects the instance, as on `api.clerk.com`).
//! - [`ForgedToken`] — every broken token a backend must refuse (expired, not yet valid,
//!   wrong `azp`/`iss`/`aud`, `alg: none`, HS256 with the public key, unknown `kid`, another
//!   instance's key, tampered payload, a session id instead of a JWT).
//! - [`Clock`] — the instance's "now": move it to expire tokens without sleeping.
//! - [`Faults`] / [`Fault`] / [`Expectation`] — fault injection (status, 429, latency, hang,
//!   JWKS outage), the request record ([`RecordedRequest`]) and wiremock-style expectations.
//! - [`webhooks`] — Svix-signed events, retries, redelivery and forged deliveries.
//! - [`intercept`] — TLS interception for backends that hard-code Clerk's hosts: a per-run
//!   CA, a CONNECT proxy for `HTTPS_PROXY` clients and a TLS front chosen by SNI.
//! - [`Config`] — the `mock-clerk serve` config file (binary behind the default `cli` feature).

// Every public type is nameable from the crate root (or `cookies::`/`intercept::`/`webhooks::`): the
// modules are private, the API is the curated set of re-exports below.
#![warn(unnameable_types)]

mod admin;
mod bapi;
mod clock;
mod config;
pub mod cookies;
mod error;
mod fapi;
mod faults;
mod forge;
mod ids;
mod instance;
pub mod intercept;
mod jwt;
mod keys;
mod machine;
mod model;
mod query;
mod server;
mod state;
mod store;
mod templates;
mod tokens;
mod validate;
pub mod webhooks;

pub use clock::Clock;
pub use config::{Config, SessionSeed};
pub use error::{ClerkApiError, ClerkErrorItem, Error};
pub use faults::{Api, Expectation, Fault, FaultAction, Faults, RecordedRequest, Route, MAX_RECORDED};
pub use forge::ForgedToken;
pub use ids::{base62, new_id};
pub use instance::{parse_publishable_key, publishable_key_for, Environment, Instance, InstanceConfig, Rotation, SecretKey};
pub use jwt::{decode_unverified, Claims, Signer};
pub use keys::{Jwk, KeySource, SigningKey};
pub use machine::{MachineToken, MachineTokenError, MachineTokenKind, MachineTokens, NewMachineToken};
pub use model::{
    ActiveOrganization, EmailAddress, JwtTemplate, NewUser, Organization, OrganizationMembership, PhoneNumber, Session, SessionStatus, User, Verification,
};
pub use query::{IdFilter, Params, UserFilter, UserOrder, UserOrderField, MAX_FILTER_VALUES};
pub use server::{MockClerk, MockClerkBuilder};
pub use store::{Store, StoreEvent};
pub use templates::{TemplateSigning, TemplateSpec};
pub use tokens::{TokenParts, TokenVersion};
pub use webhooks::{Endpoint, Forgery, Message, WebhookEvent, WebhookSecret, WebhookSettings, Webhooks};
