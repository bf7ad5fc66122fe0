//! Machine tokens: API keys (`ak_…`), opaque M2M tokens (`mt_…`) and OAuth access tokens
//! (`oat_…`), issued by the mock and verified on the Backend API paths Clerk's SDKs call
//! (`POST /v1/api_keys/verify`, `/v1/m2m_tokens/verify`,
//! `/v1/oauth_applications/access_tokens/verify`, and the same paths without `/v1`, which
//! `clerk-backend-api`'s `verify_token` posts to).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::{json, Value};

use crate::clock::Clock;

/// The three kinds of machine token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MachineTokenKind {
    /// An API key, `ak_…`, subject a user or organisation.
    ApiKey,
    /// An opaque machine-to-machine token, `mt_…`, subject a machine (`mch_…`).
    M2m,
    /// An OAuth access token of Clerk as identity provider, `oat_…`, subject a user.
    OAuth,
}

impl MachineTokenKind {
    fn secret_prefix(self) -> &'static str {
        match self {
            Self::ApiKey => "ak_",
            Self::M2m => "mt_",
            Self::OAuth => "oat_",
        }
    }
}

/// One issued machine token.
#[derive(Clone, Debug, PartialEq)]
pub struct MachineToken {
    /// Its kind.
    pub kind: MachineTokenKind,
    /// `ak_`/`mt_`/`oat_` and 32 hex digits.
    pub id: String,
    /// What the client presents (`ak_…`, `mt_…`, `oat_…`).
    pub secret: String,
    /// `user_…`, `org_…` or `mch_…`.
    pub subject: String,
    /// API key name.
    pub name: String,
    /// Scopes (for M2M: the machine ids it may call).
    pub scopes: Vec<String>,
    /// Custom claims.
    pub claims: Option<Value>,
    /// OAuth client id.
    pub client_id: String,
    /// Expiry (ms), if any.
    pub expiration: Option<i64>,
    /// Revoked, with a reason.
    pub revoked: Option<String>,
    /// Creator (API keys).
    pub created_by: Option<String>,
    /// ms.
    pub created_at: i64,
    /// ms.
    pub updated_at: i64,
}

impl MachineToken {
    /// Whether it is past its expiry at `now_ms`.
    #[must_use]
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expiration.is_some_and(|e| now_ms >= e)
    }

    /// The JSON the verify endpoint returns (with `secret` only for the create answer of API keys).
    #[must_use]
    pub fn to_json(&self, now_ms: i64, with_secret: bool) -> Value {
        let common = |object: &str| {
            json!({
                "object": object,
                "id": self.id,
                "subject": self.subject,
                "revoked": self.revoked.is_some(),
                "revocation_reason": self.revoked,
                "expired": self.expired(now_ms),
                "expiration": self.expiration,
                "created_at": self.created_at,
                "updated_at": self.updated_at,
            })
        };
        match self.kind {
            MachineTokenKind::ApiKey => {
                let mut v = common("api_key");
                v["type"] = json!("api_key");
                v["name"] = json!(self.name);
                v["claims"] = self.claims.clone().unwrap_or(Value::Null);
                v["scopes"] = json!(self.scopes);
                v["created_by"] = json!(self.created_by);
                v["last_used_at"] = Value::Null;
                if with_secret {
                    v["secret"] = json!(self.secret);
                    v["description"] = Value::Null;
                }
                v
            }
            MachineTokenKind::M2m => {
                let mut v = common("machine_to_machine_token");
                v["claims"] = self.claims.clone().unwrap_or(Value::Null);
                v["scopes"] = json!(self.scopes);
                v["last_used_at"] = Value::Null;
                v
            }
            MachineTokenKind::OAuth => {
                let mut v = common("clerk_idp_oauth_access_token");
                v["client_id"] = json!(self.client_id);
                v["scopes"] = json!(self.scopes);
                v
            }
        }
    }
}

/// What to issue.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMachineToken {
    /// Kind.
    pub kind: MachineTokenKind,
    /// Subject id.
    pub subject: String,
    /// Name (API keys).
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Custom claims.
    pub claims: Option<Value>,
    /// Lifetime in seconds (`None`: never expires).
    pub seconds_until_expiration: Option<i64>,
    /// Creator (API keys).
    pub created_by: Option<String>,
}

impl NewMachineToken {
    /// A token of `kind` for `subject`, no scopes, no expiry.
    #[must_use]
    pub fn new(kind: MachineTokenKind, subject: &str) -> Self {
        Self { kind, subject: subject.into(), name: "mock".into(), scopes: vec![], claims: None, seconds_until_expiration: None, created_by: None }
    }

    /// Sets the scopes.
    #[must_use]
    pub fn scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| (*s).to_string()).collect();
        self
    }

    /// Expires after `secs`.
    #[must_use]
    pub fn expires_in(mut self, secs: i64) -> Self {
        self.seconds_until_expiration = Some(secs);
        self
    }
}

/// Why a machine token does not verify (the verify endpoints answer 404 for each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MachineTokenError {
    /// Never issued, or of another kind.
    #[error("token not found")]
    NotFound,
    /// Revoked.
    #[error("token revoked")]
    Revoked,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
}

/// The machine tokens of one instance, by secret.
#[derive(Clone, Debug)]
pub struct MachineTokens {
    tokens: Arc<RwLock<BTreeMap<String, MachineToken>>>,
    clock: Clock,
}

fn hex32() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..32).map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)])).collect()
}

impl MachineTokens {
    /// Empty, on `clock`.
    #[must_use]
    pub fn new(clock: Clock) -> Self {
        Self { tokens: Arc::default(), clock }
    }

    /// Issues a token.
    #[must_use]
    pub fn issue(&self, new: NewMachineToken) -> MachineToken {
        let now = self.clock.now_ms();
        let prefix = new.kind.secret_prefix();
        let token = MachineToken {
            kind: new.kind,
            id: format!("{prefix}{}", hex32()),
            secret: format!("{prefix}{}", crate::ids::base62(40)),
            subject: new.subject,
            name: new.name,
            scopes: new.scopes,
            claims: new.claims,
            client_id: format!("oauth_app_{}", crate::ids::base62(16)),
            // Saturating: a lifetime past the clock's range never expires rather than wrapping.
            expiration: new.seconds_until_expiration.map(|s| now.saturating_add(s.saturating_mul(1000))),
            revoked: None,
            created_by: new.created_by,
            created_at: now,
            updated_at: now,
        };
        self.tokens.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(token.secret.clone(), token.clone());
        token
    }

    /// Verifies `secret` as a token of `kind`; the JSON the verify endpoint returns.
    ///
    /// # Errors
    /// Unknown (or of another kind), revoked, expired.
    pub fn verify(&self, kind: MachineTokenKind, secret: &str) -> Result<Value, MachineTokenError> {
        let now = self.clock.now_ms();
        let tokens = self.tokens.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let token = tokens.get(secret).filter(|t| t.kind == kind).ok_or(MachineTokenError::NotFound)?;
        if token.revoked.is_some() {
            return Err(MachineTokenError::Revoked);
        }
        if token.expired(now) {
            return Err(MachineTokenError::Expired);
        }
        Ok(token.to_json(now, false))
    }

    /// Revokes the token with id `id`.
    ///
    /// # Errors
    /// [`MachineTokenError::NotFound`].
    pub fn revoke(&self, id: &str, reason: &str) -> Result<MachineToken, MachineTokenError> {
        let now = self.clock.now_ms();
        let mut tokens = self.tokens.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let token = tokens.values_mut().find(|t| t.id == id).ok_or(MachineTokenError::NotFound)?;
        token.revoked = Some(reason.into());
        token.updated_at = now;
        Ok(token.clone())
    }
}
