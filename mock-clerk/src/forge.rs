//! The forging API: tokens that are wrong in exactly one way, for negative tests.
//!
//! Start from a genuine token ([`crate::MockClerk::forge_session_token`] or
//! [`crate::MockClerk::forge_template_token`]), change one thing, and [`ForgedToken::build`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mock = mock_clerk::MockClerk::builder().start().await?;
//! let user = mock.create_user(mock_clerk::NewUser::with_email("a@example.com"))?;
//! let session = mock.create_session(&user.id)?;
//! let expired = mock.forge_session_token(&session.id)?.expired_by(30).build()?;
//! let wrong_aud = mock.forge_session_token(&session.id)?.claim("aud", "someone-else").build()?;
//! # let _ = (expired, wrong_aud); Ok(()) }
//! ```

use serde_json::{json, Value};

use crate::error::Error;
use crate::instance::Instance;
use crate::jwt::{b64url, Signer};
use crate::tokens::TokenParts;

/// A token being forged. Every method changes one thing; the rest stays genuine.
#[derive(Clone, Debug)]
#[must_use = "a forged token does nothing until build() is called"]
pub struct ForgedToken {
    parts: TokenParts,
    now: i64,
    tamper: Option<(String, Value)>,
}

impl ForgedToken {
    pub(crate) fn new(parts: TokenParts, now: i64) -> Self {
        Self { parts, now, tamper: None }
    }

    /// Sets (or replaces) a claim.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.parts.claims.insert(name.into(), value.into());
        self
    }

    /// Removes a claim (e.g. `sub`).
    pub fn without_claim(mut self, name: &str) -> Self {
        self.parts.claims.remove(name);
        self
    }

    /// Sets (or replaces) a header field.
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.parts.header.insert(name.into(), value.into());
        self
    }

    /// Removes a header field (e.g. `kid`).
    pub fn without_header(mut self, name: &str) -> Self {
        self.parts.header.remove(name);
        self
    }

    /// `exp = now + secs` (negative: already expired).
    pub fn exp_offset(self, secs: i64) -> Self {
        let now = self.now;
        self.claim("exp", now.saturating_add(secs))
    }

    /// Expired `secs` seconds ago; `iat` and `nbf` moved back so that only `exp` is wrong.
    pub fn expired_by(self, secs: i64) -> Self {
        let now = self.now;
        let exp = now.saturating_sub(secs);
        self.claim("iat", exp.saturating_sub(60)).claim("nbf", exp.saturating_sub(70)).claim("exp", exp)
    }

    /// `nbf = now + secs` (positive: not yet valid).
    pub fn nbf_offset(self, secs: i64) -> Self {
        let now = self.now;
        self.claim("nbf", now.saturating_add(secs))
    }

    /// Not valid for another `secs` seconds, with `iat` left at now: only `nbf` is wrong.
    pub fn not_before_in(self, secs: i64) -> Self {
        self.nbf_offset(secs)
    }

    /// `iat = now + secs` (positive: issued in the future), `nbf` kept valid.
    pub fn iat_offset(self, secs: i64) -> Self {
        let now = self.now;
        let iat = now.saturating_add(secs);
        self.claim("iat", iat).claim("exp", iat.saturating_add(60))
    }

    /// Unsigned: `alg: none` and an empty signature.
    pub fn alg_none(mut self) -> Self {
        self.parts.signer = Signer::Unsigned;
        self.header("alg", "none")
    }

    /// The classic algorithm-confusion attack: HS256 keyed with the instance's RSA public key
    /// PEM. Only a verifier that takes `alg` from the token accepts it.
    pub fn hs256_with_public_key(mut self, instance: &Instance) -> Self {
        self.parts.signer = Signer::Hs256(instance.pem_public_key().into_bytes());
        self.header("alg", "HS256")
    }

    /// HS256 with an arbitrary secret.
    pub fn hs256_with_secret(mut self, secret: &[u8]) -> Self {
        self.parts.signer = Signer::Hs256(secret.to_vec());
        self.header("alg", "HS256")
    }

    /// A `kid` that no JWKS contains (signed with the genuine key).
    pub fn unknown_kid(self) -> Self {
        let kid = crate::ids::new_id("ins");
        self.header("kid", kid)
    }

    /// Signed by another instance's key, with that instance's `kid`; `iss` unchanged.
    /// Chain `.claim("iss", other.issuer())` for a wholly foreign token.
    pub fn signed_by(mut self, other: &Instance) -> Self {
        let key = other.active_key();
        self.parts.header.insert("kid".into(), json!(key.kid()));
        self.parts.signer = Signer::Rs256(key);
        self
    }

    /// Signed by `key` with its `kid` — e.g. a key this instance rotated out
    /// ([`Instance::active_key`] taken before [`Instance::rotate_key`]).
    pub fn signed_with(mut self, key: std::sync::Arc<crate::keys::SigningKey>) -> Self {
        self.parts.header.insert("kid".into(), json!(key.kid()));
        self.parts.signer = Signer::Rs256(key);
        self
    }

    /// Signed by another instance's key but keeping this instance's `kid`: the signature
    /// does not match the key the `kid` names.
    pub fn signed_by_key_of(mut self, other: &Instance) -> Self {
        self.parts.signer = Signer::Rs256(other.active_key());
        self
    }

    /// After signing, replaces `claim` in the payload with `value`: the signature no longer
    /// matches.
    pub fn tampered(mut self, claim: &str, value: impl Into<Value>) -> Self {
        self.tamper = Some((claim.into(), value.into()));
        self
    }

    /// Deprecated v1 claims: no `v`, `fva`, `sts`; the organisation (if any) as `org_id`,
    /// `org_slug`, `org_role`.
    pub fn v1(mut self) -> Self {
        for claim in ["v", "fva", "sts"] {
            self.parts.claims.remove(claim);
        }
        if let Some(Value::Object(org)) = self.parts.claims.remove("o") {
            for (from, to) in [("id", "org_id"), ("slg", "org_slug"), ("rol", "org_role")] {
                if let Some(v) = org.get(from) {
                    self.parts.claims.insert(to.into(), v.clone());
                }
            }
        }
        self
    }

    /// The parts as they stand (for assertions).
    #[must_use]
    pub fn parts(&self) -> &TokenParts {
        &self.parts
    }

    /// Encodes and signs.
    ///
    /// # Errors
    /// Only if signing fails.
    pub fn build(&self) -> Result<String, Error> {
        let token = self.parts.encode()?;
        let Some((claim, value)) = &self.tamper else {
            return Ok(token);
        };
        let mut claims = self.parts.claims.clone();
        claims.insert(claim.clone(), value.clone());
        let mut segments: Vec<&str> = token.split('.').collect();
        let payload = b64url(Value::Object(claims).to_string().as_bytes());
        segments[1] = &payload;
        Ok(segments.join("."))
    }
}
