//! Token validation: what must be accepted and what must be refused with 401.
//!
//! One module per concern: valid tokens (`acceptance`), the `Authorization` header
//! (`headers`), the time claims and the host's clock (`time_claims`), the identity claims
//! (`claims`), signatures and keys (`signature`), what may outlive a token (`lifetime`),
//! the JWKS cache and outages (`jwks`) and key rotation (`rotation`).

mod acceptance;
mod claims;
mod headers;
mod jwks;
mod lifetime;
mod rotation;
mod signature;
mod time_claims;

pub use acceptance::{every_endpoint, session_token_accepted, template_token_accepted};
pub use claims::{missing_sub, wrong_audience, wrong_authorized_party, wrong_issuer, EVIL_ORIGIN};
pub use headers::{malformed_header, no_authorization_header, session_id_as_bearer};
pub use jwks::{judge_cold_cache, jwks_cache_expiry, jwks_down_with_cold_cache, jwks_down_with_warm_cache, ColdPhase};
pub use lifetime::{backend_session_outlives_clerk, cache_outlives_exp, replay_after_expiry};
pub use rotation::key_rotation;
pub use signature::{alg_none, foreign_instance, hs256_with_public_key, tampered, unknown_kid};
pub use time_claims::{backend_clock_ahead, backend_clock_behind, expired, expired_within_skew, iat_in_the_future, not_yet_valid};
