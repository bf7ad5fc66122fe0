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
//! Modules: [`instance`] (ids, hosts, keys, rotation), [`clock`], [`keys`], [`store`] and
//! [`model`] (users, sessions, templates), [`tokens`] and [`templates`] (minting),
//! [`forge`] (negative tests), [`faults`] (fault injection, recording, expectations),
//! [`fapi`] and [`bapi`] (routes), [`config`] (the `serve` config file), [`intercept`]
//! (TLS interception for backends that hard-code Clerk's hosts), [`webhooks`] (Svix-signed
//! events, retries, redelivery and forged deliveries).

pub mod admin;
pub mod bapi;
pub mod clock;
pub mod config;
pub mod cookies;
pub mod error;
pub mod fapi;
pub mod faults;
pub mod forge;
pub mod ids;
pub mod instance;
pub mod intercept;
pub mod jwt;
pub mod keys;
pub mod machine;
pub mod model;
pub mod query;
pub mod server;
pub mod store;
pub mod templates;
pub mod tokens;
pub mod webhooks;

pub use clock::Clock;
pub use error::{ClerkApiError, Error};
pub use faults::{Api, Expectation, Fault, FaultAction, Faults, RecordedRequest, Route};
pub use forge::ForgedToken;
pub use instance::{Environment, Instance, InstanceConfig, Rotation, SecretKey};
pub use keys::{Jwk, KeySource};
pub use model::{ActiveOrganization, JwtTemplate, NewUser, Organization, OrganizationMembership, Session, SessionStatus, User};
pub use server::{MockClerk, MockClerkBuilder, Shared};
pub use store::{Store, StoreEvent};
pub use templates::{TemplateSigning, TemplateSpec};
pub use tokens::TokenVersion;
pub use webhooks::{Endpoint, Forgery, Message, WebhookEvent, WebhookSecret, WebhookSettings, Webhooks};
