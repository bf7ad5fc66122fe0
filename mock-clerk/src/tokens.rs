//! Session tokens (v2, v1 on request) and JWT-template tokens, exactly as Clerk mints them.

use serde_json::{json, Map, Value};

use crate::error::Error;
use crate::instance::Instance;
use crate::jwt::Signer;
use crate::model::{JwtTemplate, Session, User};

/// `cat` header of session tokens.
pub const CAT_SESSION: &str = "cl_B7d4PD111AAA";
/// `cat` header of JWT-template tokens.
pub const CAT_TEMPLATE: &str = "cl_B7d4PD222AAA";
/// Session token lifetime, seconds.
pub const SESSION_TOKEN_LIFETIME: i64 = 60;
/// How far before `iat` a session token's `nbf` lies, seconds.
pub const SESSION_TOKEN_NBF_SKEW: i64 = 10;

/// Session-token claim format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenVersion {
    /// Current format: `v: 2`, `fva`, `sts`, organisation in `o`.
    #[default]
    V2,
    /// Deprecated format: no `v`, organisation in `org_id`, `org_slug`, `org_role`, `org_permissions`.
    V1,
}

/// Organisation permissions packed the way v2 session tokens carry them.
///
/// Written from the decoders of Clerk's SDKs (`@clerk/shared` `jwtPayloadParser`:
/// `splitByScope(fea)`, `parsePermissions`, `buildOrgPermissions`; `clerk-backend-api`
/// `security/authenticaterequest.py` `_compute_org_permissions`): `fea` lists the features as
/// `scope:feature`, `o.per` the distinct permission names, and `o.fpm` one decimal bitmask per
/// feature, bit `i` (least significant first) granting `per[i]`; a set bit of feature `f` and
/// permission `p` reads back as `org:f:p`.
///
/// The JavaScript decoder pairs `fpm[i]` with the i-th *organisation-scoped* feature, the Python
/// one with the i-th entry of `fea`: every feature here is organisation-scoped (`o:`), so both
/// read the same permissions. Clerk leaves system permissions (`org:sys_*`) out of tokens;
/// so does this encoder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrgPermissions {
    /// Top-level `fea` claim, e.g. `o:invoices,o:reports`.
    pub fea: String,
    /// `o.per`, e.g. `manage,read`.
    pub per: String,
    /// `o.fpm`, e.g. `2,3`.
    pub fpm: String,
}

impl OrgPermissions {
    /// Packs permission keys (`org:<feature>:<permission>`); other keys and system
    /// permissions are left out.
    #[must_use]
    pub fn encode(permissions: &[String]) -> Self {
        let mut features: Vec<&str> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        let mut grants: Vec<(&str, &str)> = Vec::new();
        for key in permissions {
            let mut parts = key.split(':');
            let (Some("org"), Some(feature), Some(name), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else { continue };
            if feature.starts_with("sys_") || feature.is_empty() || name.is_empty() {
                continue;
            }
            features.push(feature);
            names.push(name);
            grants.push((feature, name));
        }
        features.sort_unstable();
        features.dedup();
        names.sort_unstable();
        names.dedup();
        let masks: Vec<String> = features
            .iter()
            .map(|f| {
                let bits: Vec<bool> = names.iter().map(|n| grants.contains(&(f, n))).collect();
                bits_to_decimal(&bits)
            })
            .collect();
        Self { fea: features.iter().map(|f| format!("o:{f}")).collect::<Vec<_>>().join(","), per: names.join(","), fpm: masks.join(",") }
    }
}

/// The decimal string of a bit set (bit 0 first), of any length: the SDKs parse `fpm`
/// entries as arbitrary-precision decimals, so more than 64 permission names still work.
fn bits_to_decimal(bits: &[bool]) -> String {
    // Little-endian base-10 digits; Horner from the most significant bit.
    let mut digits: Vec<u8> = vec![0];
    for bit in bits.iter().rev() {
        let mut carry = u8::from(*bit);
        for d in &mut digits {
            let v = *d * 2 + carry;
            *d = v % 10;
            carry = v / 10;
        }
        if carry > 0 {
            digits.push(carry);
        }
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

/// A token before encoding: header, claims and signer. The forging API edits these.
#[derive(Clone, Debug)]
pub struct TokenParts {
    /// JOSE header.
    pub header: Map<String, Value>,
    /// Claims.
    pub claims: Map<String, Value>,
    /// What signs it.
    pub signer: Signer,
}

impl TokenParts {
    /// Encodes and signs.
    ///
    /// # Errors
    /// Only if signing fails.
    pub fn encode(&self) -> Result<String, Error> {
        crate::jwt::encode(&self.header, &self.claims, &self.signer)
    }
}

fn rs256_header(instance: &Instance, cat: &str) -> (Map<String, Value>, Signer) {
    let key = instance.active_key();
    let mut header = Map::new();
    header.insert("alg".into(), json!("RS256"));
    header.insert("cat".into(), json!(cat));
    header.insert("kid".into(), json!(key.kid()));
    header.insert("typ".into(), json!("JWT"));
    (header, Signer::Rs256(key))
}

fn minutes_since(now_ms: i64, then_ms: i64) -> i64 {
    (now_ms - then_ms).max(0) / 60_000
}

/// The session token for `session`, as `getToken()` returns it.
///
/// `origin` is the `Origin` of the Frontend API request; it becomes `azp` (absent without one).
#[must_use]
pub fn session_token(instance: &Instance, session: &Session, origin: Option<&str>, version: TokenVersion) -> TokenParts {
    let now_ms = instance.clock().now_ms();
    let iat = now_ms.div_euclid(1000);
    let (header, signer) = rs256_header(instance, CAT_SESSION);
    let mut c = Map::new();
    if let Some(origin) = origin {
        c.insert("azp".into(), json!(origin));
    }
    c.insert("exp".into(), json!(iat + SESSION_TOKEN_LIFETIME));
    c.insert("iat".into(), json!(iat));
    c.insert("iss".into(), json!(instance.issuer()));
    c.insert("nbf".into(), json!(iat - SESSION_TOKEN_NBF_SKEW));
    c.insert("sid".into(), json!(session.id));
    c.insert("sub".into(), json!(session.user_id));
    // Both formats carry `fva` (factor verification age, minutes; -1: no second factor).
    let second = session.second_factor_at.map_or(-1, |t| minutes_since(now_ms, t));
    c.insert("fva".into(), json!([minutes_since(now_ms, session.first_factor_at), second]));
    match version {
        TokenVersion::V2 => {
            c.insert("sts".into(), json!(if session.status == crate::model::SessionStatus::Pending { "pending" } else { "active" }));
            c.insert("v".into(), json!(2));
            if let Some(org) = &session.active_organization {
                let packed = OrgPermissions::encode(&org.permissions);
                if !packed.fea.is_empty() {
                    c.insert("fea".into(), json!(packed.fea));
                }
                let role = org.role.strip_prefix("org:").unwrap_or(&org.role);
                c.insert("o".into(), json!({ "id": org.id, "slg": org.slug, "rol": role, "per": packed.per, "fpm": packed.fpm }));
            }
        }
        TokenVersion::V1 => {
            if let Some(org) = &session.active_organization {
                c.insert("org_id".into(), json!(org.id));
                c.insert("org_slug".into(), json!(org.slug));
                c.insert("org_role".into(), json!(org.role));
                let custom: Vec<&String> = org.permissions.iter().filter(|p| !p.starts_with("org:sys_")).collect();
                c.insert("org_permissions".into(), json!(custom));
            }
        }
    }
    if let Some(actor) = &session.actor {
        c.insert("act".into(), actor.clone());
    }
    TokenParts { header, claims: c, signer }
}

/// A token from a JWT template for `session`'s user.
///
/// # Errors
/// If the template's custom RS256 key cannot be parsed.
pub fn template_token(instance: &Instance, template: &JwtTemplate, session: &Session, user: &User, origin: Option<&str>) -> Result<TokenParts, Error> {
    let iat = instance.clock().now_unix();
    let (mut header, mut signer) = rs256_header(instance, CAT_TEMPLATE);
    if template.custom_signing_key {
        let secret = template.signing_key.clone().unwrap_or_default();
        header.remove("kid");
        if template.signing_algorithm == "HS256" {
            signer = Signer::Hs256(secret.into_bytes());
            header.insert("alg".into(), json!("HS256"));
        } else {
            let key = crate::keys::SigningKey::from_pkcs8_pem(&secret, template.id.clone())?;
            signer = Signer::Rs256(std::sync::Arc::new(key));
        }
    }
    let ctx = crate::templates::Context { user, session, instance };
    let rendered = crate::templates::render_claims(&template.claims, &ctx);
    let mut c = match rendered {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Some(origin) = origin {
        c.insert("azp".into(), json!(origin));
    }
    c.insert("exp".into(), json!(iat + template.lifetime));
    c.insert("iat".into(), json!(iat));
    c.insert("iss".into(), json!(instance.issuer()));
    c.insert("jti".into(), json!(crate::ids::base62(20).to_lowercase()));
    c.insert("nbf".into(), json!(iat - template.allowed_clock_skew));
    c.insert("sub".into(), json!(user.id));
    Ok(TokenParts { header, claims: c, signer })
}
