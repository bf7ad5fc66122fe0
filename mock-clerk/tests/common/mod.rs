//! Shared test helpers: fetching JWKS over HTTP and a verifier that makes the same checks,
//! in the same order, as Clerk's JavaScript SDK (`@clerk/backend` `verifyToken`).
#![allow(dead_code)]

pub mod openapi;

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use mock_clerk::{decode_unverified, Claims};
use serde_json::Value;

/// The JWKS at `url`, fetched over HTTP like an SDK does.
pub async fn fetch_jwks(url: &str) -> Vec<Value> {
    let body: Value = reqwest::get(url).await.expect("GET jwks").json().await.expect("jwks JSON");
    body["keys"].as_array().expect("keys array").clone()
}

/// What the verifier is configured with.
#[derive(Default, Clone)]
pub struct Options {
    pub audience: Option<String>,
    pub authorized_parties: Vec<String>,
    pub clock_skew: i64,
}

impl Options {
    pub fn sdk_defaults() -> Self {
        Self { clock_skew: 5, ..Self::default() }
    }
}

/// Verifies like `@clerk/backend`; the error is Clerk's reason name.
pub fn verify(token: &str, jwks: &[Value], opts: &Options, now: i64) -> Result<Claims, &'static str> {
    let (header, _) = decode_unverified(token).map_err(|_| "token-invalid")?;
    if let Some(typ) = header.get("typ") {
        if typ != "JWT" {
            return Err("token-invalid");
        }
    }
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let algorithm = match alg {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        _ => return Err("token-invalid-algorithm"),
    };
    let kid = header.get("kid").and_then(Value::as_str).ok_or("jwk-kid-mismatch")?;
    let jwk = jwks.iter().find(|k| k["kid"] == kid).ok_or("jwk-kid-mismatch")?;
    let key = DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap_or(""), jwk["e"].as_str().unwrap_or("")).map_err(|_| "jwk-failed-to-resolve")?;
    signature_and_claims(token, &key, algorithm, opts, now)
}

/// Networkless: verifies with the PEM public key the way the SDKs load `CLERK_JWT_KEY`:
/// strip the PEM armour and the fixed RSA-2048/e=65537 SPKI prefix and suffix; what is
/// left is the base64 modulus.
pub fn verify_networkless(token: &str, pem: &str, opts: &Options, now: i64) -> Result<Claims, &'static str> {
    const PREFIX: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA";
    const SUFFIX: &str = "IDAQAB";
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().join("");
    let modulus = body.strip_prefix(PREFIX).and_then(|m| m.strip_suffix(SUFFIX)).ok_or("jwk-local-missing")?.replace('+', "-").replace('/', "_");
    let key = DecodingKey::from_rsa_components(&modulus, "AQAB").map_err(|_| "jwk-local-missing")?;
    let (header, _) = decode_unverified(token).map_err(|_| "token-invalid")?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err("token-invalid-algorithm");
    }
    signature_and_claims(token, &key, Algorithm::RS256, opts, now)
}

fn signature_and_claims(token: &str, key: &DecodingKey, alg: Algorithm, opts: &Options, now: i64) -> Result<Claims, &'static str> {
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims: Claims = decode::<Claims>(token, key, &validation).map_err(|_| "token-invalid-signature")?.claims;
    if !claims.get("sub").is_some_and(Value::is_string) {
        return Err("token-invalid-sub");
    }
    if let Some(aud) = &opts.audience {
        let ok = match claims.get("aud") {
            Some(Value::String(s)) => s == aud,
            Some(Value::Array(a)) => a.iter().any(|x| x == aud.as_str()),
            _ => false,
        };
        if !ok {
            return Err("token-invalid-audience");
        }
    }
    if !opts.authorized_parties.is_empty() {
        if let Some(azp) = claims.get("azp").and_then(Value::as_str) {
            if !opts.authorized_parties.iter().any(|p| p == azp) {
                return Err("token-invalid-authorized-parties");
            }
        }
    }
    let num = |name: &str| claims.get(name).and_then(Value::as_i64);
    if let Some(exp) = num("exp") {
        if exp + opts.clock_skew <= now {
            return Err("token-expired");
        }
    } else {
        return Err("token-expired");
    }
    if num("nbf").is_some_and(|nbf| nbf - opts.clock_skew > now) {
        return Err("token-not-active-yet");
    }
    if num("iat").is_some_and(|iat| iat - opts.clock_skew > now) {
        return Err("token-iat-in-the-future");
    }
    Ok(claims)
}

/// Authorization header for the Backend API.
pub fn bearer(mock: &mock_clerk::MockClerk) -> String {
    format!("Bearer {}", mock.instance().secret_key().expose())
}
