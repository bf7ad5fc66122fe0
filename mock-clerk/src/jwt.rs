//! Compact JWS encoding with full control over the header — Clerk's `cat` header and the
//! forged tokens need fields and algorithms that JWT libraries refuse to produce.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::keys::SigningKey;

/// What signs a token.
#[derive(Clone, Debug)]
pub enum Signer {
    /// RS256 with an RSA key.
    Rs256(Arc<SigningKey>),
    /// HS256 with a shared secret.
    Hs256(Vec<u8>),
    /// No signature at all (`alg: none`): an empty third segment.
    Unsigned,
}

impl Signer {
    /// The `alg` header value this signer produces.
    #[must_use]
    pub fn alg(&self) -> &'static str {
        match self {
            Self::Rs256(_) => "RS256",
            Self::Hs256(_) => "HS256",
            Self::Unsigned => "none",
        }
    }
}

/// base64url without padding, as JWS uses.
#[must_use]
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Encodes `header.claims.signature`. The header is written as given: the caller sets `alg`.
///
/// # Errors
/// Only if RSA signing fails (serialising a JSON map does not).
pub fn encode(header: &Map<String, Value>, claims: &Map<String, Value>, signer: &Signer) -> Result<String, Error> {
    // Serialised as they stand (compact, keys in map order, as `Value::Object(..).to_string()`
    // writes them) and base64url-encoded into one buffer: no copy of either map.
    let json = |map: &Map<String, Value>| serde_json::to_vec(map).map_err(|e| Error::Key(format!("cannot serialise a JWT segment: {e}")));
    let mut signing_input = String::with_capacity(1024);
    URL_SAFE_NO_PAD.encode_string(json(header)?, &mut signing_input);
    signing_input.push('.');
    URL_SAFE_NO_PAD.encode_string(json(claims)?, &mut signing_input);
    let signature = match signer {
        Signer::Rs256(key) => key.sign_rs256(signing_input.as_bytes())?,
        Signer::Hs256(secret) => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
            ring::hmac::sign(&key, signing_input.as_bytes()).as_ref().to_vec()
        }
        Signer::Unsigned => vec![],
    };
    let mut token = signing_input;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
    Ok(token)
}

/// A JSON object: a JOSE header or a claim set.
pub type Claims = Map<String, Value>;

/// Splits a compact JWT and decodes its header and claims without verifying anything
/// (for tests and diagnoses).
///
/// # Errors
/// A message if the token is not three base64url JSON segments.
pub fn decode_unverified(token: &str) -> Result<(Claims, Claims), String> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("a JWT has three dot-separated segments".into());
    };
    let decode = |seg: &str| -> Result<Map<String, Value>, String> {
        let bytes = URL_SAFE_NO_PAD.decode(seg).map_err(|e| format!("bad base64url: {e}"))?;
        match serde_json::from_slice(&bytes).map_err(|e| format!("bad JSON: {e}"))? {
            Value::Object(m) => Ok(m),
            _ => Err("segment is not a JSON object".into()),
        }
    };
    Ok((decode(h)?, decode(c)?))
}
