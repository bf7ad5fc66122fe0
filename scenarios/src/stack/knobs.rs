//! The fixes: each setting a finding is about ([`Knob`]), named in the detected stack's own
//! terms ([`fix`]), stack-neutral when the stack was not told.

use super::{Language, Library, Stack};

/// A setting a fix is about, named in each stack's own terms by [`fix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Knob {
    /// The leeway on `exp`/`nbf`/`iat` (Clerk's SDKs: 5 s).
    Leeway,
    /// `exp` verified at all.
    VerifyExp,
    /// `nbf` verified at all.
    VerifyNbf,
    /// `iat` checked not to be in the future.
    VerifyIat,
    /// `sub` required.
    RequireSub,
    /// The algorithm pinned to RS256, the key from the JWKS.
    PinAlgorithm,
    /// The signature verified.
    VerifySignature,
    /// A missing token answered 401, not 403.
    MissingBearer,
    /// `WWW-Authenticate: Bearer` on 401.
    Challenge,
    /// The JWKS refetched at once for an unknown `kid`.
    JwksRefetch,
    /// The JWKS cache given a lifetime.
    JwksLifetime,
    /// Backend API calls in the request path bounded (retries, timeouts).
    BoundedRetries,
    /// A refused token answered 401, not 403.
    Status401,
    /// Every verification error mapped to 401, never a crash.
    CatchErrors,
}

/// The knob a catalogue scenario's failure is about, when its fix depends on the stack.
#[must_use]
pub fn scenario_knob(id: &str) -> Option<Knob> {
    Some(match id {
        "tokens.expired" => Knob::VerifyExp,
        "tokens.expired_within_skew" => Knob::Leeway,
        "tokens.not_yet_valid" => Knob::VerifyNbf,
        "tokens.iat_in_future" => Knob::VerifyIat,
        "tokens.alg_none" | "tokens.hs256_public_key" => Knob::PinAlgorithm,
        "tokens.tampered" => Knob::VerifySignature,
        "tokens.missing_sub" => Knob::RequireSub,
        "tokens.no_authorization" => Knob::MissingBearer,
        "tokens.jwks_cache_expiry" => Knob::JwksLifetime,
        "tokens.key_rotation" => Knob::JwksRefetch,
        _ => return None,
    })
}

/// The fix for `knob` in `stack`'s terms; stack-neutral when the stack was not told.
#[must_use]
#[allow(clippy::too_many_lines)]
pub fn fix(knob: Knob, stack: &Stack) -> String {
    use Library as L;
    let rust = stack.has(L::Jsonwebtoken);
    let clerk_py = stack.has(L::ClerkBackendApi);
    let pyjwt = stack.has(L::Pyjwt) || stack.language == Language::Python;
    let clerk_js = stack.has(L::ClerkBackendJs);
    let node_jwt = stack.has(L::NodeJsonwebtoken);
    let jose = stack.has(L::Jose);
    let go = stack.language == Language::Go;
    match knob {
        Knob::Leeway => {
            if stack.has(L::FastapiClerkAuth) {
                "fastapi-clerk-auth passes ClerkConfig.leeway (default 0) to PyJWT: ClerkConfig(jwks_url=…, leeway=5)".into()
            } else if rust {
                "set jsonwebtoken's `Validation::leeway` to 5 (its default is 60 s): `let mut validation = Validation::new(Algorithm::RS256); validation.leeway = 5;`".into()
            } else if clerk_py {
                "keep clerk-backend-api's default clock skew: AuthenticateRequestOptions(clock_skew_in_ms=5000)".into()
            } else if pyjwt {
                "pass PyJWT a leeway of about 5 s: jwt.decode(token, key, algorithms=['RS256'], leeway=5)".into()
            } else if clerk_js {
                "keep @clerk/backend's default clockSkewInMs (5000)".into()
            } else if node_jwt {
                "jwt.verify(token, key, { algorithms: ['RS256'], clockTolerance: 5 })".into()
            } else if jose {
                "jwtVerify(token, JWKS, { clockTolerance: 5 })".into()
            } else if go {
                "jwt.WithLeeway(5 * time.Second) (golang-jwt)".into()
            } else {
                "allow about 5 s of leeway on exp, nbf and iat, as Clerk's SDKs do".into()
            }
        }
        Knob::VerifyExp => {
            if rust {
                "keep jsonwebtoken's `Validation::validate_exp = true` (the default) with `exp` in `required_spec_claims`, and a small `leeway`".into()
            } else if pyjwt {
                "verify exp: PyJWT does by default — do not pass options={'verify_exp': False} or verify=False".into()
            } else if node_jwt {
                "do not pass ignoreExpiration: true to jwt.verify".into()
            } else {
                "verify exp on every request, with at most a few seconds of leeway".into()
            }
        }
        Knob::VerifyNbf => {
            if rust {
                "set jsonwebtoken's `validation.validate_nbf = true` (its default is false: nbf is not checked)".into()
            } else if pyjwt {
                "verify nbf: PyJWT does by default — do not pass options={'verify_nbf': False}".into()
            } else if node_jwt {
                "do not pass ignoreNotBefore: true to jwt.verify".into()
            } else {
                "verify nbf (refuse a token before its nbf, beyond a few seconds of leeway)".into()
            }
        }
        Knob::VerifyIat => {
            if rust {
                "jsonwebtoken never checks iat: after decode, refuse a token whose claims.iat is more than ~5 s ahead of now (Clerk's SDKs: token-iat-in-the-future)".into()
            } else if pyjwt {
                "PyJWT refuses an iat in the future unless verify_iat is off: do not pass options={'verify_iat': False}".into()
            } else {
                "refuse a token whose iat is more than ~5 s in the future (Clerk's SDKs: token-iat-in-the-future)".into()
            }
        }
        Knob::RequireSub => {
            if rust {
                "require sub: `validation.set_required_spec_claims(&[\"exp\", \"sub\"])`, and a `sub: String` (not `Option`) in your claims struct".into()
            } else if pyjwt {
                "require sub: jwt.decode(..., options={'require': ['exp', 'iat', 'sub']})".into()
            } else {
                "require sub: refuse a token without it".into()
            }
        }
        Knob::PinAlgorithm => {
            if rust {
                "use `Validation::new(Algorithm::RS256)` and a `DecodingKey::from_rsa_components` from the JWK: never build the Validation from the token header's alg".into()
            } else if pyjwt {
                "pin algorithms=['RS256'] in jwt.decode; never take alg from the token header".into()
            } else if node_jwt {
                "pass algorithms: ['RS256'] to jwt.verify".into()
            } else {
                "pin the algorithm to RS256; never take alg from the token header".into()
            }
        }
        Knob::VerifySignature => {
            if rust {
                "never use `dangerous::insecure_decode` (or `insecure_disable_signature_validation`) for authentication: decode with the JWK's key".into()
            } else if pyjwt {
                "verify the signature: never jwt.decode(..., options={'verify_signature': False})".into()
            } else if node_jwt {
                "use jwt.verify, never jwt.decode, to authenticate".into()
            } else {
                "verify the signature with the instance's JWKS".into()
            }
        }
        Knob::MissingBearer => {
            if stack.has(L::FastapiClerkAuth) {
                fix(Knob::Status401, stack)
            } else if stack.has(L::Fastapi) {
                "answer 401 for a missing token: FastAPI's HTTPBearer answers 403 unless auto_error=False and you raise HTTPException(401) yourself".into()
            } else if stack.has(L::Django) {
                "answer 401 for a missing token: DRF answers 403 when the first authentication class's authenticate_header() returns None — return 'Bearer' from it".into()
            } else if stack.has(L::Axum) {
                "answer 401 for a missing token: return (StatusCode::UNAUTHORIZED, [(WWW_AUTHENTICATE, \"Bearer\")]) from your extractor's rejection".into()
            } else {
                "answer 401 (not 403) for a missing token, so the SPA refreshes and signs in".into()
            }
        }
        Knob::Challenge => {
            if stack.has(L::Fastapi) {
                "add `WWW-Authenticate: Bearer` to 401 answers (FastAPI: HTTPException(401, headers={\"WWW-Authenticate\": \"Bearer\"}))".into()
            } else if stack.has(L::Django) {
                "add `WWW-Authenticate: Bearer` to 401 answers (DRF: your authentication class's authenticate_header() returns 'Bearer')".into()
            } else if stack.has(L::Axum) {
                "add `WWW-Authenticate: Bearer` to 401 answers (axum: [(header::WWW_AUTHENTICATE, \"Bearer\")] in the rejection)".into()
            } else {
                "add `WWW-Authenticate: Bearer` to 401 answers (RFC 6750 §3)".into()
            }
        }
        Knob::JwksRefetch => {
            if clerk_py || clerk_js {
                "Clerk's SDK refetches the JWKS for an unknown kid: keep its defaults (no custom key cache in front of it)".into()
            } else if stack.has(L::PyJwkClient) {
                "refetch at once on an unknown kid (rate-limited per kid), or shorten the cooldown: PyJWT's PyJWKClient waits cooldown_duration (default 30 s) after its last fetch — PyJWKClient(url, cooldown_duration=…)".into()
            } else if rust {
                "when a token's kid is not in your cached key set, refetch the JWKS at once (rate-limited per kid, e.g. at most once a second) before refusing it".into()
            } else {
                "refetch the JWKS at once for an unknown kid (rate-limited per kid) before refusing the token".into()
            }
        }
        Knob::JwksLifetime => {
            if stack.has(L::PyJwkClient) && !clerk_py {
                "give the JWKS cache a lifetime: PyJWKClient(url, lifespan=300) (Clerk's SDKs: 5 min) instead of keeping keys until a restart".into()
            } else if rust {
                "store the fetch time with your cached key set and refetch when it is older than ~5 min (Clerk's SDKs: 5 min), instead of keeping keys until a restart".into()
            } else {
                "give the JWKS cache a lifetime (Clerk's SDKs: 5 min) instead of keeping keys until a restart".into()
            }
        }
        Knob::Status401 => {
            if stack.has(L::FastapiClerkAuth) {
                "fastapi-clerk-auth raises HTTPException(403, \"Forbidden\") for every missing or invalid token: build the guard with \
                 ClerkHTTPBearer(config, auto_error=False) and raise HTTPException(401, headers={\"WWW-Authenticate\": \"Bearer\"}) yourself when it returns None"
                    .into()
            } else if stack.has(L::Fastapi) {
                "answer 401 for a refused token: raise HTTPException(status_code=401, headers={\"WWW-Authenticate\": \"Bearer\"}), and build HTTPBearer(auto_error=False) \
                 (it answers 403 itself)"
                    .into()
            } else if stack.has(L::Django) {
                "answer 401 for a refused token: DRF turns AuthenticationFailed into 403 when the first authentication class's authenticate_header() returns None — return 'Bearer'"
                    .into()
            } else {
                "answer 401 (not 403) for a missing, expired or invalid token: 403 means 'you may not', and the SPA never refreshes on it".into()
            }
        }
        Knob::CatchErrors => {
            if stack.has(L::ClerkDjango) {
                "clerk-django's ClerkAuthMiddleware lets PyJWT's errors (DecodeError, ExpiredSignatureError…) and DRF's AuthenticationFailed escape a plain \
                 Django middleware, where nothing turns them into a 401: verify in a DRF authentication class instead, or catch jwt.PyJWTError around the \
                 middleware's check and return a 401 JsonResponse"
                    .into()
            } else if stack.has(L::Pyjwt) || stack.language == Language::Python {
                "catch jwt.PyJWTError (the base of every PyJWT decode error) and answer 401; never let a verification error reach the framework as a 500".into()
            } else if rust {
                "map every jsonwebtoken::errors::Error (and a missing or unknown kid) to 401; never unwrap() or expect() a decode".into()
            } else {
                "map every verification error (a malformed, expired or foreign token) to 401; a crash is a 500 the SPA cannot recover from".into()
            }
        }
        Knob::BoundedRetries => {
            if clerk_py {
                "bound clerk-backend-api's retries in the request path — its default RetryConfig backs off for up to an hour: pass \
                 retries=RetryConfig('backoff', BackoffStrategy(500, 2000, 1.5, 5000), True) (per call or Clerk(retry_config=…)) and timeout_ms, \
                 then answer 503 with Retry-After"
                    .into()
            } else {
                "bound the Backend API call's retries and timeout in the request path (a few seconds at most), then answer 503 with Retry-After".into()
            }
        }
    }
}
