//! Svix's signing scheme, as Clerk's webhooks use it: HMAC-SHA256 over
//! `"{svix-id}.{svix-timestamp}.{body}"`, keyed with the base64-decoded part of `whsec_…`,
//! sent as `svix-signature: v1,<base64>`.
//!
//! ```
//! use mock_clerk::webhooks::WebhookSecret;
//! let secret: WebhookSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".parse()?;
//! let body = br#"{"email":"test@example.com","username":"test_user"}"#;
//! assert_eq!(
//!     secret.sign("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1_649_367_553, body),
//!     "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
//! );
//! # Ok::<(), mock_clerk::webhooks::WebhookError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore as _;
use ring::hmac;

use super::WebhookError;

/// `svix-id`: the message id, `msg_…`, the same on every attempt (receivers dedupe on it).
pub const ID_HEADER: &str = "svix-id";
/// `svix-timestamp`: Unix seconds of this attempt.
pub const TIMESTAMP_HEADER: &str = "svix-timestamp";
/// `svix-signature`: space-separated `v1,<base64>` signatures.
pub const SIGNATURE_HEADER: &str = "svix-signature";
/// How far (seconds) a receiver lets `svix-timestamp` stray from its clock.
pub const TOLERANCE_SECS: i64 = 300;

const PREFIX: &str = "whsec_";

/// A webhook signing secret (`whsec_` + base64). `Debug` shows only its last four characters.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`.
    ///
    /// # Errors
    /// [`WebhookError::InvalidSecret`] without the prefix, with bad base64 or an empty key.
    pub fn parse(text: &str) -> Result<Self, WebhookError> {
        let invalid = |reason: &str| WebhookError::InvalidSecret { shown: redacted(text), reason: reason.into() };
        let encoded = text.strip_prefix(PREFIX).ok_or_else(|| invalid("it does not start with whsec_"))?;
        let key = STANDARD.decode(encoded).map_err(|e| invalid(&format!("the part after whsec_ is not base64 ({e})")))?;
        if key.is_empty() {
            return Err(invalid("the key is empty"));
        }
        Ok(Self { text: text.into(), key })
    }

    /// A fresh random secret (24 bytes, like Clerk's).
    #[must_use]
    pub fn random() -> Self {
        let mut key = vec![0_u8; 24];
        rand::thread_rng().fill_bytes(&mut key);
        Self { text: format!("{PREFIX}{}", STANDARD.encode(&key)), key }
    }

    /// The secret as text, `whsec_…`, e.g. to hand to the backend under test.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`.
    #[must_use]
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.key);
        let tag = hmac::sign(&key, &signed_content(msg_id, timestamp, body));
        format!("v1,{}", STANDARD.encode(tag.as_ref()))
    }

    /// Verifies a delivery as a careful receiver does (all three headers, timestamp within
    /// [`TOLERANCE_SECS`] of `now_unix`, one matching `v1` signature, constant-time compare).
    ///
    /// # Errors
    /// The first reason the delivery is not genuine.
    pub fn verify(&self, headers: &http::HeaderMap, body: &[u8], now_unix: i64) -> Result<(), VerifyError> {
        let get = |name: &'static str| headers.get(name).ok_or(VerifyError::MissingHeader(name))?.to_str().map_err(|_| VerifyError::MissingHeader(name));
        let id = get(ID_HEADER)?;
        let timestamp: i64 = get(TIMESTAMP_HEADER)?.trim().parse().map_err(|_| VerifyError::InvalidTimestamp)?;
        let signatures = get(SIGNATURE_HEADER)?;
        if timestamp < now_unix - TOLERANCE_SECS {
            return Err(VerifyError::TimestampTooOld);
        }
        if timestamp > now_unix + TOLERANCE_SECS {
            return Err(VerifyError::TimestampInFuture);
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.key);
        let content = signed_content(id, timestamp, body);
        let matches = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| STANDARD.decode(s).ok())
            .any(|tag| hmac::verify(&key, &content, &tag).is_ok());
        if matches {
            Ok(())
        } else {
            Err(VerifyError::InvalidSignature)
        }
    }
}

fn signed_content(msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = format!("{msg_id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    content
}

fn redacted(text: &str) -> String {
    let tail: String = text.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("whsec_…{tail}")
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redacted(&self.text))
    }
}

impl FromStr for WebhookSecret {
    type Err = WebhookError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for WebhookSecret {
    type Error = WebhookError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl serde::Serialize for WebhookSecret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for WebhookSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Why [`WebhookSecret::verify`] rejected a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A Svix header is absent (or not text).
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// `svix-timestamp` is not an integer.
    #[error("svix-timestamp is not a Unix time in seconds")]
    InvalidTimestamp,
    /// More than five minutes old: a replay.
    #[error("signature timestamp too old")]
    TimestampTooOld,
    /// More than five minutes ahead.
    #[error("signature timestamp too far in future")]
    TimestampInFuture,
    /// No `v1` signature matches the body.
    #[error("signature invalid")]
    InvalidSignature,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    fn headers(sig: &str, ts: i64) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(ID_HEADER, ID.parse().expect("ascii"));
        h.insert(TIMESTAMP_HEADER, ts.to_string().parse().expect("ascii"));
        h.insert(SIGNATURE_HEADER, sig.parse().expect("ascii"));
        h
    }

    #[test]
    fn reproduces_the_svix_test_vector() {
        let secret = WebhookSecret::parse(SECRET).expect("valid");
        assert_eq!(secret.sign(ID, 1_649_367_553, BODY), "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn verify_accepts_one_good_signature_among_several_and_rejects_replays() {
        let secret = WebhookSecret::parse(SECRET).expect("valid");
        let good = secret.sign(ID, 1_649_367_553, BODY);
        let h = headers(&format!("v1,AAAA {good}"), 1_649_367_553);
        assert_eq!(secret.verify(&h, BODY, 1_649_367_553 + 10), Ok(()));
        assert_eq!(secret.verify(&h, BODY, 1_649_367_553 + 301), Err(VerifyError::TimestampTooOld));
        assert_eq!(secret.verify(&h, b"{}", 1_649_367_553), Err(VerifyError::InvalidSignature));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = WebhookSecret::parse(SECRET).expect("valid");
        assert_eq!(format!("{secret:?}"), "whsec_…b7oD");
        assert!(WebhookSecret::parse("C2FVsBQ").is_err());
        assert!(WebhookSecret::parse("whsec_!!").is_err());
    }
}
