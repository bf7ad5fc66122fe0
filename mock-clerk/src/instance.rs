//! An instance's identity and keys: id, Frontend API host, publishable and secret keys,
//! webhook secret, and the signing-key ring with rotation.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use rand::{Rng, RngCore};
use serde::Deserialize;

use crate::clock::Clock;
use crate::error::Error;
use crate::keys::{Jwk, KeySource, SigningKey};

/// Development (`pk_test_`/`sk_test_`) or production (`pk_live_`/`sk_live_`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// `*.clerk.accounts.dev` hosts and `_test_` keys.
    #[default]
    Development,
    /// Custom domain (`clerk.example.com`) and `_live_` keys.
    Production,
}

impl Environment {
    fn key_infix(self) -> &'static str {
        match self {
            Self::Development => "test",
            Self::Production => "live",
        }
    }
}

/// A Clerk secret key. `Debug` and `Display` show only its tail: secrets never reach logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps a key string.
    #[must_use]
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The full key, for handing to a backend under test.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tail = self.0.get(self.0.len().saturating_sub(4)..).unwrap_or("");
        let prefix = if self.0.starts_with("sk_live_") { "sk_live_" } else { "sk_test_" };
        write!(f, "{prefix}…{tail}")
    }
}

impl std::fmt::Display for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// How an instance is set up. Every field has a Clerk-shaped random default.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// `ins_…` (default random).
    #[serde(default)]
    pub id: Option<String>,
    /// Frontend API host (default `<word>-<word>-NN.clerk.accounts.dev`).
    #[serde(default)]
    pub fapi_host: Option<String>,
    /// Development or production.
    #[serde(default)]
    pub environment: Environment,
    /// Secret key (default random `sk_test_…`).
    #[serde(default)]
    pub secret_key: Option<String>,
    /// Webhook signing secret (default random `whsec_…`).
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// Where signing keys come from.
    #[serde(default)]
    pub key_source: KeySource,
    /// A fixed PKCS#8 PEM signing key instead of one from `key_source`.
    #[serde(default)]
    pub signing_key_pem: Option<String>,
}

/// What happens to the old key when the signing key is rotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The old key stays in the JWKS for this long (tokens it signed keep verifying).
    KeepOldFor(Duration),
    /// The old key leaves the JWKS at once.
    DropOld,
}

struct RetiredKey {
    key: Arc<SigningKey>,
    /// ms; `None` never expires.
    until_ms: Option<i64>,
}

struct KeyRing {
    active: Arc<SigningKey>,
    retired: Vec<RetiredKey>,
}

/// One Clerk instance's identity and keys.
pub struct Instance {
    id: String,
    fapi_host: String,
    environment: Environment,
    publishable_key: String,
    secret_key: SecretKey,
    webhook_secret: String,
    key_source: KeySource,
    keys: RwLock<KeyRing>,
    /// The serialised JWKS and the kids it holds: the JWKS endpoints are the hottest path.
    jwks_body: std::sync::Mutex<(Vec<String>, axum::body::Bytes)>,
    clock: Clock,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance").field("id", &self.id).field("fapi_host", &self.fapi_host).field("secret_key", &self.secret_key).finish_non_exhaustive()
    }
}

const WORDS: &[&str] = &[
    "proper", "sparrow", "brave", "gentle", "lucky", "quiet", "rapid", "sunny", "witty", "calm", "eager", "fancy", "noble", "tidy", "vivid", "amused", "bold",
    "cosmic", "daring", "honest", "heron", "otter", "falcon", "badger", "lemur", "panda", "robin", "tiger", "walrus", "zebra", "beetle", "koala", "lynx",
    "mole", "newt", "quail", "raven", "seal", "swan", "wren",
];

/// A random development FAPI host like `proper-sparrow-49.clerk.accounts.dev`.
#[must_use]
pub fn random_fapi_host() -> String {
    let mut rng = rand::thread_rng();
    let a = WORDS[rng.gen_range(0..20)];
    let b = WORDS[rng.gen_range(20..WORDS.len())];
    format!("{a}-{b}-{}.clerk.accounts.dev", rng.gen_range(10..100))
}

/// The publishable key Clerk derives from a FAPI host: `pk_test_` + unpadded base64 of `host$`.
///
/// ```
/// use mock_clerk::{publishable_key_for, Environment};
/// assert_eq!(
///     publishable_key_for("proper-sparrow-49.clerk.accounts.dev", Environment::Development),
///     "pk_test_cHJvcGVyLXNwYXJyb3ctNDkuY2xlcmsuYWNjb3VudHMuZGV2JA"
/// );
/// ```
#[must_use]
pub fn publishable_key_for(fapi_host: &str, environment: Environment) -> String {
    format!("pk_{}_{}", environment.key_infix(), STANDARD_NO_PAD.encode(format!("{fapi_host}$")))
}

/// Decodes a publishable key to its FAPI host, with the checks Clerk's SDKs make: a
/// `pk_test_`/`pk_live_` prefix, base64 that decodes to text holding a `.` and ending in
/// exactly one `$`.
///
/// # Errors
/// A message saying which check failed.
pub fn parse_publishable_key(key: &str) -> Result<String, String> {
    let encoded = key
        .strip_prefix("pk_test_")
        .or_else(|| key.strip_prefix("pk_live_"))
        .ok_or_else(|| format!("publishable key '{key}' does not start with pk_test_ or pk_live_"))?;
    let bytes = STANDARD_NO_PAD.decode(encoded.trim_end_matches('=')).map_err(|e| format!("publishable key is not valid base64: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| "publishable key does not decode to text".to_string())?;
    let host = text.strip_suffix('$').ok_or_else(|| format!("decoded publishable key '{text}' does not end with '$'"))?;
    if host.contains('$') {
        return Err(format!("decoded publishable key '{text}' has more than one '$'"));
    }
    if !host.contains('.') {
        return Err(format!("decoded publishable key '{text}' is not a host name (no '.')"));
    }
    Ok(host.to_string())
}

impl Instance {
    /// Creates an instance from `config` on `clock`.
    ///
    /// # Errors
    /// Only if the configured signing key PEM is invalid.
    pub fn new(config: InstanceConfig, clock: Clock) -> Result<Self, Error> {
        let id = config.id.unwrap_or_else(|| crate::ids::new_id("ins"));
        let fapi_host = config.fapi_host.unwrap_or_else(random_fapi_host);
        let infix = config.environment.key_infix();
        let secret_key = config.secret_key.unwrap_or_else(|| format!("sk_{infix}_{}", crate::ids::base62(42)));
        let webhook_secret = config.webhook_secret.unwrap_or_else(|| {
            let mut bytes = [0_u8; 24];
            rand::thread_rng().fill_bytes(&mut bytes);
            format!("whsec_{}", STANDARD.encode(bytes))
        });
        let active = match &config.signing_key_pem {
            Some(pem) => SigningKey::from_pkcs8_pem(pem, id.clone())?,
            None => SigningKey::acquire(config.key_source, id.clone())?,
        };
        Ok(Self {
            publishable_key: publishable_key_for(&fapi_host, config.environment),
            environment: config.environment,
            secret_key: SecretKey(secret_key),
            webhook_secret,
            key_source: config.key_source,
            keys: RwLock::new(KeyRing { active: Arc::new(active), retired: vec![] }),
            jwks_body: std::sync::Mutex::default(),
            clock,
            id,
            fapi_host,
        })
    }

    /// `ins_…`
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The Frontend API host, e.g. `proper-sparrow-49.clerk.accounts.dev`.
    #[must_use]
    pub fn fapi_host(&self) -> &str {
        &self.fapi_host
    }

    /// `https://<fapi host>`: the `iss` of every token, as Clerk's SDKs expect it.
    #[must_use]
    pub fn issuer(&self) -> String {
        format!("https://{}", self.fapi_host)
    }

    /// Development or production.
    #[must_use]
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// `pk_test_…`
    #[must_use]
    pub fn publishable_key(&self) -> &str {
        &self.publishable_key
    }

    /// `sk_test_…`
    #[must_use]
    pub fn secret_key(&self) -> &SecretKey {
        &self.secret_key
    }

    /// `whsec_…`
    #[must_use]
    pub fn webhook_secret(&self) -> &str {
        &self.webhook_secret
    }

    /// The key that signs new tokens.
    #[must_use]
    pub fn active_key(&self) -> Arc<SigningKey> {
        Arc::clone(&self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).active)
    }

    /// The PEM public key of the active key (Clerk's "JWT public key" for `CLERK_JWT_KEY`).
    #[must_use]
    pub fn pem_public_key(&self) -> String {
        self.active_key().public_pem().to_string()
    }

    /// The keys served by the JWKS endpoints: the active one and retired ones still in overlap.
    #[must_use]
    pub fn jwks(&self) -> Vec<Jwk> {
        let now = self.clock.now_ms();
        let ring = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        std::iter::once(ring.active.jwk()).chain(ring.retired.iter().filter(|r| r.until_ms.is_none_or(|until| now < until)).map(|r| r.key.jwk())).collect()
    }

    /// `{"keys":[…]}` as served by both JWKS endpoints, serialised once per key set.
    #[must_use]
    pub fn jwks_body(&self) -> axum::body::Bytes {
        let now = self.clock.now_ms();
        let kids: Vec<String> = {
            let ring = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            std::iter::once(ring.active.kid().to_string())
                .chain(ring.retired.iter().filter(|r| r.until_ms.is_none_or(|until| now < until)).map(|r| r.key.kid().to_string()))
                .collect()
        };
        let mut cache = self.jwks_body.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.0 != kids || cache.1.is_empty() {
            let body = serde_json::json!({ "keys": self.jwks() }).to_string();
            *cache = (kids, axum::body::Bytes::from(body));
        }
        cache.1.clone()
    }

    /// Rotates the signing key: a new key (with a new `kid`) signs from now on.
    ///
    /// # Errors
    /// Only if generating a key fails.
    pub fn rotate_key(&self, rotation: Rotation) -> Result<String, Error> {
        let kid = crate::ids::new_id("ins");
        let new_key = Arc::new(SigningKey::acquire(self.key_source, kid.clone())?);
        let mut ring = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = std::mem::replace(&mut ring.active, new_key);
        if let Rotation::KeepOldFor(overlap) = rotation {
            let until = self.clock.now_ms() + i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX / 2);
            ring.retired.push(RetiredKey { key: old, until_ms: Some(until) });
        }
        tracing::info!(instance = %self.id, new_kid = %kid, ?rotation, "signing key rotated");
        Ok(kid)
    }

    /// Returns this instance's pool keys to the pool (called when its mock stops). A key
    /// may then be handed to a new instance even if this one is still referenced.
    pub fn release_keys(&self) {
        let ring = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        ring.active.release_to_pool();
        for retired in &ring.retired {
            retired.key.release_to_pool();
        }
    }

    /// The clock this instance stamps tokens with.
    #[must_use]
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishable_key_round_trips_to_the_fapi_host() {
        for host in ["proper-sparrow-49.clerk.accounts.dev", "clerk.example.com", &random_fapi_host()] {
            for env in [Environment::Development, Environment::Production] {
                let pk = publishable_key_for(host, env);
                assert_eq!(parse_publishable_key(&pk).as_deref(), Ok(host));
            }
        }
    }

    #[test]
    fn publishable_keys_that_sdks_reject_are_rejected() {
        let no_dot = format!("pk_test_{}", STANDARD_NO_PAD.encode("localhost$"));
        let two_dollars = format!("pk_test_{}", STANDARD_NO_PAD.encode("a.b$$"));
        let no_dollar = format!("pk_test_{}", STANDARD_NO_PAD.encode("a.b"));
        for bad in [no_dot, two_dollars, no_dollar, "sk_test_abc".to_string()] {
            assert!(parse_publishable_key(&bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn secret_key_debug_hides_all_but_the_tail() {
        let k = SecretKey::new("sk_test_abcdefghijklmnopWXYZ");
        assert_eq!(format!("{k:?}"), "sk_test_…WXYZ");
    }

    #[test]
    fn rotation_keeps_the_old_key_only_during_the_overlap() {
        let clock = Clock::fixed_at_unix(1_000_000);
        let inst = Instance::new(InstanceConfig::default(), clock.clone()).expect("instance");
        let old_kid = inst.active_key().kid().to_string();
        assert_eq!(old_kid, inst.id());
        let new_kid = inst.rotate_key(Rotation::KeepOldFor(Duration::from_secs(60))).expect("rotate");
        let kids: Vec<String> = inst.jwks().into_iter().map(|k| k.kid).collect();
        assert_eq!(kids, vec![new_kid.clone(), old_kid]);
        clock.advance(Duration::from_secs(61));
        let kids: Vec<String> = inst.jwks().into_iter().map(|k| k.kid).collect();
        assert_eq!(kids, vec![new_kid]);
    }
}
