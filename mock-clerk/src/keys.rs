//! RSA-2048 signing keys, their JWK and PEM forms, and a process-wide key pool.
//!
//! Clerk signs with RSA-2048, e = 65537, and its SDKs' networkless verification
//! (`CLERK_JWT_KEY`) assumes exactly that. Generating such a key costs ~100 ms, so instances
//! take keys from a pool of pre-generated ones (see `keys/README.md`): keys alive at the same
//! time in one process are always distinct, and a key goes back to the pool when the last
//! instance holding it drops it.

use std::sync::{Arc, Mutex, OnceLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde::Serialize;

use crate::error::Error;

/// 128 pre-generated keys, concatenated PKCS#8 PEMs (see `keys/README.md`).
const POOL_FILE: &str = include_str!("../keys/pool.pem");
const POOL_SIZE: usize = 128;

/// The `index`-th PEM of the pool file.
fn pool_pem(index: usize) -> Option<&'static str> {
    const END: &str = "-----END PRIVATE KEY-----";
    POOL_FILE.split_inclusive(END).nth(index).map(str::trim)
}

/// Where an instance's signing keys come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// Pre-generated, publicly known test keys (instant); fresh keys past the pool's size.
    #[default]
    Pool,
    /// A freshly generated key for every instance and rotation (~100 ms each).
    Fresh,
}

struct KeyMaterial {
    /// OpenSSL's RSA: on CPUs with AVX-512 IFMA it signs ~2.5x faster than ring (rsaz-avx512),
    /// and the uncached token path is all signing.
    pkey: openssl::pkey::PKey<openssl::pkey::Private>,
    /// Signing contexts set up for RS256 (PKCS#1 v1.5 over a SHA-256 digest), reused: setting
    /// one up per token cost more than the rest of the request's own work. One per concurrent
    /// signer at most; a context is used by one signer at a time.
    signers: Mutex<Vec<openssl::pkey_ctx::PkeyCtx<openssl::pkey::Private>>>,
    n: String,
    e: String,
    public_pem: String,
    private_pem: String,
}

impl KeyMaterial {
    fn from_private_pem(pem: &str) -> Result<Self, Error> {
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| Error::Key(format!("cannot parse PKCS#8 key: {e}")))?;
        Self::from_rsa(&private)
    }

    fn from_rsa(private: &rsa::RsaPrivateKey) -> Result<Self, Error> {
        let der = private.to_pkcs8_der().map_err(|e| Error::Key(format!("cannot encode key: {e}")))?;
        let pkey = openssl::pkey::PKey::private_key_from_pkcs8(der.as_bytes()).map_err(|e| Error::Key(format!("OpenSSL rejected the key: {e}")))?;
        let public = private.to_public_key();
        let public_pem = public.to_public_key_pem(LineEnding::LF).map_err(|e| Error::Key(format!("cannot encode public key: {e}")))?;
        let private_pem = private.to_pkcs8_pem(LineEnding::LF).map_err(|e| Error::Key(format!("cannot encode private key: {e}")))?.to_string();
        Ok(Self {
            pkey,
            signers: Mutex::default(),
            n: URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            public_pem,
            private_pem,
        })
    }

    fn generate() -> Result<Self, Error> {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).map_err(|e| Error::Key(format!("RSA key generation failed: {e}")))?;
        Self::from_rsa(&private)
    }
}

struct Pool {
    materials: Vec<Option<Arc<KeyMaterial>>>,
    /// The lease holding each slot, if any.
    leases: Vec<Option<u64>>,
    next_lease: u64,
}

fn pool() -> &'static Mutex<Pool> {
    static POOL: OnceLock<Mutex<Pool>> = OnceLock::new();
    POOL.get_or_init(|| Mutex::new(Pool { materials: vec![None; POOL_SIZE], leases: vec![None; POOL_SIZE], next_lease: 0 }))
}

/// A JSON Web Key as Clerk publishes it.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Jwk {
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// Always `RSA`.
    pub kty: String,
    /// The key id: the instance id for an instance's first key.
    pub kid: String,
    /// Always `RS256`.
    pub alg: String,
    /// Modulus, base64url without padding.
    pub n: String,
    /// Exponent, base64url without padding (`AQAB`).
    pub e: String,
}

/// An RSA-2048 signing key with its key id.
pub struct SigningKey {
    material: Arc<KeyMaterial>,
    kid: String,
    /// (pool slot, lease id) while this key holds a pool slot.
    lease: Option<(usize, u64)>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).field("lease", &self.lease).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Takes a key from `source` and labels it with `kid`.
    ///
    /// # Errors
    /// Only if key generation or parsing fails, which indicates a broken build.
    pub fn acquire(source: KeySource, kid: impl Into<String>) -> Result<Self, Error> {
        let kid = kid.into();
        if source == KeySource::Pool {
            let mut pool = pool().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(slot) = pool.leases.iter().position(Option::is_none) {
                let material = match &pool.materials[slot] {
                    Some(m) => Arc::clone(m),
                    None => {
                        let pem = pool_pem(slot).ok_or_else(|| Error::Key(format!("key pool has no key {slot}")))?;
                        let m = Arc::new(KeyMaterial::from_private_pem(pem)?);
                        pool.materials[slot] = Some(Arc::clone(&m));
                        m
                    }
                };
                pool.next_lease += 1;
                let lease = pool.next_lease;
                pool.leases[slot] = Some(lease);
                return Ok(Self { material, kid, lease: Some((slot, lease)) });
            }
        }
        Ok(Self { material: Arc::new(KeyMaterial::generate()?), kid, lease: None })
    }

    /// Loads a key from a PKCS#8 PEM (e.g. from a config file).
    ///
    /// # Errors
    /// The PEM is not an RSA PKCS#8 private key.
    pub fn from_pkcs8_pem(pem: &str, kid: impl Into<String>) -> Result<Self, Error> {
        Ok(Self { material: Arc::new(KeyMaterial::from_private_pem(pem)?), kid: kid.into(), lease: None })
    }

    /// The key id (`kid` header and JWK field).
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK.
    #[must_use]
    pub fn jwk(&self) -> Jwk {
        Jwk { use_: "sig".into(), kty: "RSA".into(), kid: self.kid.clone(), alg: "RS256".into(), n: self.material.n.clone(), e: self.material.e.clone() }
    }

    /// The SPKI PEM public key, what Clerk shows as "PEM public key" for `CLERK_JWT_KEY`.
    #[must_use]
    pub fn public_pem(&self) -> &str {
        &self.material.public_pem
    }

    /// The PKCS#8 PEM private key (for exporting to other tools in tests).
    #[must_use]
    pub fn private_pem(&self) -> &str {
        &self.material.private_pem
    }

    /// RS256 signature of `message`.
    ///
    /// # Errors
    /// Never in practice; OpenSSL reports an error only for unusable keys.
    pub fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let failed = |e: openssl::error::ErrorStack| Error::Key(format!("RS256 signing failed: {e}"));
        let digest = openssl::sha::sha256(message);
        let reused = self.material.signers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let mut ctx = match reused {
            Some(ctx) => ctx,
            None => {
                let mut ctx = openssl::pkey_ctx::PkeyCtx::new(&self.material.pkey).map_err(failed)?;
                ctx.sign_init().map_err(failed)?;
                ctx.set_rsa_padding(openssl::rsa::Padding::PKCS1).map_err(failed)?;
                ctx.set_signature_md(openssl::md::Md::sha256()).map_err(failed)?;
                ctx
            }
        };
        let mut signature = Vec::with_capacity(256);
        ctx.sign_to_vec(&digest, &mut signature).map_err(failed)?;
        self.material.signers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(ctx);
        Ok(signature)
    }
}

impl SigningKey {
    /// Gives the pool slot back now, before the key itself is dropped: a stopped mock's
    /// server tasks may hold the key a little longer (until the runtime drops the aborted
    /// tasks), and a test creating mocks in a loop must not pay for fresh keys meanwhile.
    pub(crate) fn release_to_pool(&self) {
        if let Some((slot, lease)) = self.lease {
            let mut pool = pool().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if pool.leases[slot] == Some(lease) {
                pool.leases[slot] = None;
            }
        }
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        self.release_to_pool();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_alive_together_are_distinct_and_return_to_the_pool() {
        let a = SigningKey::acquire(KeySource::Pool, "a").expect("key");
        let b = SigningKey::acquire(KeySource::Pool, "b").expect("key");
        assert_ne!(a.jwk().n, b.jwk().n);
        assert_eq!(a.jwk().e, "AQAB");
        let n_a = a.jwk().n;
        drop(a);
        // Whatever slot is handed out next, it is not b's.
        let c = SigningKey::acquire(KeySource::Pool, "c").expect("key");
        assert_ne!(c.jwk().n, b.jwk().n);
        let _ = n_a;
    }

    #[test]
    fn the_pool_file_holds_distinct_rsa_2048_keys() {
        let mut moduli = std::collections::HashSet::new();
        for i in 0..POOL_SIZE {
            let m = KeyMaterial::from_private_pem(pool_pem(i).expect("pem")).expect("parses");
            assert_eq!(m.e, "AQAB");
            assert_eq!(URL_SAFE_NO_PAD.decode(&m.n).expect("b64").len(), 256);
            moduli.insert(m.n);
        }
        assert_eq!(moduli.len(), POOL_SIZE);
        assert!(pool_pem(POOL_SIZE).is_none_or(str::is_empty));
    }

    #[test]
    fn reused_signing_contexts_sign_as_a_fresh_signer_does() {
        let k = SigningKey::acquire(KeySource::Pool, "k").expect("key");
        for message in [&b"header.claims"[..], b"", &[7u8; 4096]] {
            let mut fresh = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &k.material.pkey).expect("signer");
            fresh.set_rsa_padding(openssl::rsa::Padding::PKCS1).expect("padding");
            fresh.update(message).expect("update");
            let expected = fresh.sign_to_vec().expect("sign");
            // Twice: the second signature comes from the context the first one left.
            assert_eq!(k.sign_rs256(message).expect("sign"), expected);
            assert_eq!(k.sign_rs256(message).expect("sign"), expected);
        }
    }

    #[test]
    fn modulus_is_2048_bits() {
        let k = SigningKey::acquire(KeySource::Pool, "k").expect("key");
        let n = URL_SAFE_NO_PAD.decode(k.jwk().n).expect("b64");
        assert_eq!(n.len(), 256);
        assert!(k.public_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
    }
}
