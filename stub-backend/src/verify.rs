//! Token verification: the JWKS cache and its refetch policy, the claims checked on the stub's clock.

use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::config_slice::KEY_REFUSED;
use crate::{error_chain, Refetch, Stubbed};

impl Stubbed {
    /// The key for `kid`, fetching the JWKS when the cache is empty or — as the refetch
    /// policy allows — when `kid` is unknown.
    async fn key(&self, kid: &str) -> Result<Option<DecodingKey>, String> {
        let mut jwks = self.jwks.lock().await;
        let now = self.clock.now_ms();
        let age = |at: i64| Duration::from_millis(u64::try_from(now - at).unwrap_or(0));
        let stale = match (jwks.fetched, self.behaviour.jwks_ttl, self.behaviour.refetch) {
            (Some(at), Some(ttl), Refetch::OnUnknownKid | Refetch::Cooldown(_)) => age(at) >= ttl,
            _ => false,
        };
        if let (Some(key), false) = (jwks.keys.get(kid), stale) {
            return Ok(Some(key.clone()));
        }
        let served_stale = if stale && self.behaviour.jwks_stale_while_revalidate { jwks.keys.get(kid).cloned() } else { None };
        let may_fetch = stale
            || match (jwks.fetched, self.behaviour.refetch) {
                (None, _) | (Some(_), Refetch::OnUnknownKid) => true,
                (Some(at), Refetch::Cooldown(cooldown)) => age(at) >= cooldown,
                (Some(_), Refetch::Never) => false,
            };
        if !may_fetch {
            self.log(&format!("INFO kid {kid} not in the cached JWKS; not refetching ({:?})", self.behaviour.refetch));
            return Ok(None);
        }
        let url = &self.settings.jwks_url;
        // config slice
        let via_api = if self.behaviour.jwks_via_secret_key { Some(self.config_slice_jwks().await?) } else { None };
        let set: JwkSet = if let Some(set) = via_api {
            set
        } else {
            loop {
                match self.http.get(url).send().await.and_then(reqwest::Response::error_for_status) {
                    Ok(response) => break response.json().await.map_err(|e| format!("JWKS from {url} is not a key set: {e}"))?,
                    Err(e) if self.behaviour.retry_jwks_failures => {
                        self.log(&format!("WARNING JWKS fetch from {url} failed, retrying in 100 ms: {}", error_chain(&e)));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => {
                        let line = format!("ERROR JWKS fetch from {url} failed: {}", error_chain(&e));
                        self.log(&line);
                        if self.behaviour.jwks_stale_failure_401 && !jwks.keys.is_empty() {
                            jwks.keys.clear();
                            return Ok(None);
                        }
                        return Err(line);
                    }
                }
            }
        };
        jwks.fetched = Some(self.clock.now_ms());
        jwks.keys = set.keys.iter().filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?))).collect();
        self.log(&format!("INFO fetched the JWKS from {url}: {} keys", jwks.keys.len()));
        if served_stale.is_some() {
            self.log(&format!("INFO kid {kid} verified with the stale JWKS while it was refreshed"));
            return Ok(served_stale);
        }
        Ok(jwks.keys.get(kid).cloned())
    }

    pub(crate) async fn verify(&self, token: &str) -> Result<serde_json::Value, (&'static str, String)> {
        if self.behaviour.validation_cache.is_some() {
            let cache = self.validated.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((claims, until)) = cache.get(token) {
                if *until > self.clock.now_ms() {
                    return Ok(claims.clone());
                }
            }
        }
        let claims = self.verify_uncached(token).await?;
        if let Some(ttl) = self.behaviour.validation_cache {
            let until = self.clock.now_ms() + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4);
            self.validated.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(token.to_owned(), (claims.clone(), until));
        }
        Ok(claims)
    }

    async fn verify_uncached(&self, token: &str) -> Result<serde_json::Value, (&'static str, String)> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| ("token-invalid", format!("the token is not a JWT: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(("token-invalid-algorithm", format!("algorithm {:?} is not allowed (RS256 only)", header.alg)));
        }
        let kid = header.kid.ok_or(("token-invalid", "the token has no kid".to_string()))?;
        let key = match self.key(&kid).await {
            Ok(Some(key)) => key,
            Ok(None) => return Err(("jwk-kid-mismatch", format!("no key with kid {kid} in the JWKS"))),
            // config slice
            Err(e) if e.starts_with(KEY_REFUSED) => return Err(("secret-key-invalid", e)),
            Err(e) => return Err(("jwk-remote-failed-to-load", e)),
        };
        // exp, nbf and iat are checked below against the stub's own (movable) clock.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &self.settings.issuer {
            validation.set_issuer(&[issuer]);
        }
        if self.settings.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.settings.audience);
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let reason = match e.kind() {
                ErrorKind::ExpiredSignature => "token-expired",
                ErrorKind::ImmatureSignature => "token-not-active-yet",
                ErrorKind::InvalidSignature => "token-invalid-signature",
                ErrorKind::InvalidIssuer => "token-invalid-issuer",
                ErrorKind::InvalidAudience => "token-invalid-audience",
                _ => "token-invalid",
            };
            (reason, e.to_string())
        })?;
        let claims = data.claims;
        let now = self.clock.now_unix();
        let leeway = i64::try_from(self.behaviour.leeway.as_secs()).unwrap_or(i64::MAX / 4);
        let claim = |name: &str| claims.get(name).and_then(serde_json::Value::as_i64);
        if let (Some(exp), false) = (claim("exp"), self.behaviour.accept_expired) {
            if exp < now - leeway {
                return Err(("token-expired", format!("the token expired {} s ago (exp {exp}, now {now}, leeway {leeway} s)", now - exp)));
            }
        }
        if let Some(nbf) = claim("nbf").filter(|nbf| *nbf > now + leeway) {
            return Err(("token-not-active-yet", format!("the token is not valid before nbf {nbf} (now {now}, leeway {leeway} s)")));
        }
        if let Some(iat) = claim("iat").filter(|iat| *iat > now + leeway) {
            return Err(("token-iat-in-the-future", format!("the token was issued in the future: iat {iat} (now {now}, leeway {leeway} s)")));
        }
        if let (false, Some(azp)) = (self.settings.authorized_parties.is_empty(), claims.get("azp").and_then(serde_json::Value::as_str)) {
            if !self.settings.authorized_parties.iter().any(|p| p == azp) {
                return Err(("token-invalid-authorized-parties", format!("azp {azp} is not an authorized party")));
            }
        }
        Ok(claims)
    }
}
