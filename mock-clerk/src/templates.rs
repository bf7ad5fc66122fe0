//! JWT templates: validation (reserved claims, bounds) and shortcode rendering.
//!
//! A claim value that is exactly one `{{…}}` keeps the shortcode's JSON type
//! (`"{{user.public_metadata}}"` renders an object); shortcodes inside a longer string are
//! interpolated as text (`null` as the empty string); `{{a || b || 'literal'}}` takes the
//! first alternative that is not `null`; an unknown shortcode renders `null`.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::Error;
use crate::instance::Instance;
use crate::model::{JwtTemplate, Session, User};

/// Claims Clerk sets itself; a template may not set them.
pub const RESERVED_CLAIMS: [&str; 7] = ["azp", "exp", "iat", "iss", "jti", "nbf", "sub"];

/// How a template's tokens are signed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "algorithm", content = "key")]
pub enum TemplateSigning {
    /// The instance's key (RS256, in the JWKS).
    #[default]
    #[serde(rename = "instance")]
    InstanceKey,
    /// HS256 with a shared secret.
    #[serde(rename = "HS256")]
    Hs256(String),
    /// RS256 with a custom PKCS#8 PEM key (not in the JWKS).
    #[serde(rename = "RS256")]
    Rs256(String),
}

/// A template to create.
///
/// ```
/// use mock_clerk::TemplateSpec;
/// use serde_json::json;
/// let t = TemplateSpec::new("backend", json!({"email": "{{user.primary_email_address}}"}))
///     .lifetime(300);
/// # let _ = t;
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// Name used by `getToken({ template })`.
    pub name: String,
    /// Claims with shortcodes.
    #[serde(default = "empty_object")]
    pub claims: Value,
    /// Seconds, 30..=315360000 (default 60).
    #[serde(default = "default_lifetime")]
    pub lifetime: i64,
    /// Seconds, 0..=300 (default 5).
    #[serde(default = "default_skew")]
    pub allowed_clock_skew: i64,
    /// Signing key.
    #[serde(default)]
    pub signing: TemplateSigning,
}

fn empty_object() -> Value {
    json!({})
}
fn default_lifetime() -> i64 {
    60
}
fn default_skew() -> i64 {
    5
}

impl TemplateSpec {
    /// A template with Clerk's defaults (lifetime 60 s, skew 5 s, instance key).
    #[must_use]
    pub fn new(name: &str, claims: Value) -> Self {
        Self { name: name.into(), claims, lifetime: 60, allowed_clock_skew: 5, signing: TemplateSigning::InstanceKey }
    }

    /// Token lifetime in seconds.
    #[must_use]
    pub fn lifetime(mut self, secs: i64) -> Self {
        self.lifetime = secs;
        self
    }

    /// `nbf = iat - skew`.
    #[must_use]
    pub fn allowed_clock_skew(mut self, secs: i64) -> Self {
        self.allowed_clock_skew = secs;
        self
    }

    /// Signs with HS256 and `secret`.
    #[must_use]
    pub fn hs256(mut self, secret: &str) -> Self {
        self.signing = TemplateSigning::Hs256(secret.into());
        self
    }

    /// Signs with a custom RS256 key.
    #[must_use]
    pub fn rs256_custom(mut self, pkcs8_pem: &str) -> Self {
        self.signing = TemplateSigning::Rs256(pkcs8_pem.into());
        self
    }

    /// Validates and builds the stored template.
    ///
    /// # Errors
    /// [`Error::ReservedClaim`] naming the claim, or [`Error::InvalidTemplate`].
    pub fn build(self, now_ms: i64) -> Result<JwtTemplate, Error> {
        let invalid = |reason: String| Error::InvalidTemplate { template: self.name.clone(), reason };
        let Value::Object(claims) = &self.claims else {
            return Err(invalid("claims must be a JSON object".into()));
        };
        if let Some(claim) = claims.keys().find(|k| RESERVED_CLAIMS.contains(&k.as_str())) {
            return Err(Error::ReservedClaim { template: self.name.clone(), claim: claim.clone() });
        }
        if !(30..=315_360_000).contains(&self.lifetime) {
            return Err(invalid(format!("lifetime {} is outside 30..=315360000 seconds", self.lifetime)));
        }
        if !(0..=300).contains(&self.allowed_clock_skew) {
            return Err(invalid(format!("allowed_clock_skew {} is outside 0..=300 seconds", self.allowed_clock_skew)));
        }
        if self.name.trim().is_empty() {
            return Err(invalid("name is empty".into()));
        }
        let (custom, alg, key) = match self.signing {
            TemplateSigning::InstanceKey => (false, "RS256", None),
            TemplateSigning::Hs256(k) => (true, "HS256", Some(k)),
            TemplateSigning::Rs256(k) => {
                crate::keys::SigningKey::from_pkcs8_pem(&k, "check")
                    .map_err(|e| Error::InvalidTemplate { template: self.name.clone(), reason: e.to_string() })?;
                (true, "RS256", Some(k))
            }
        };
        Ok(JwtTemplate {
            object: "jwt_template".into(),
            id: crate::ids::new_id("jtmp"),
            name: self.name,
            claims: self.claims,
            lifetime: self.lifetime,
            allowed_clock_skew: self.allowed_clock_skew,
            custom_signing_key: custom,
            signing_algorithm: alg.into(),
            created_at: now_ms,
            updated_at: now_ms,
            signing_key: key,
        })
    }
}

/// What shortcodes can refer to.
pub struct Context<'a> {
    /// `user.*`
    pub user: &'a User,
    /// `session.*` and `org.*`
    pub session: &'a Session,
    /// The instance.
    pub instance: &'a Instance,
}

/// Renders every shortcode in `claims`.
#[must_use]
pub fn render_claims(claims: &Value, ctx: &Context<'_>) -> Value {
    match claims {
        Value::String(s) => render_string(s, ctx),
        Value::Array(items) => Value::Array(items.iter().map(|v| render_claims(v, ctx)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), render_claims(v, ctx))).collect::<Map<_, _>>()),
        other => other.clone(),
    }
}

fn render_string(s: &str, ctx: &Context<'_>) -> Value {
    let trimmed = s.trim();
    if let Some(inner) = trimmed.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
        if !inner.contains("{{") && !inner.contains("}}") {
            return evaluate(inner, ctx);
        }
    }
    if !s.contains("{{") {
        return Value::String(s.into());
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        match evaluate(&after[..end], ctx) {
            Value::Null => {}
            Value::String(text) => out.push_str(&text),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Value::String(out)
}

fn evaluate(expr: &str, ctx: &Context<'_>) -> Value {
    for alternative in expr.split("||") {
        let alt = alternative.trim();
        let value = if let Some(lit) = quoted(alt) {
            Value::String(lit.into())
        } else if let Ok(number) = alt.parse::<f64>() {
            json!(number)
        } else if alt == "true" || alt == "false" {
            json!(alt == "true")
        } else {
            lookup(alt, ctx)
        };
        if !value.is_null() {
            return value;
        }
    }
    Value::Null
}

fn quoted(s: &str) -> Option<&str> {
    s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')).or_else(|| s.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
}

fn opt(s: Option<&str>) -> Value {
    s.map_or(Value::Null, |v| Value::String(v.into()))
}

fn lookup(path: &str, ctx: &Context<'_>) -> Value {
    let u = ctx.user;
    let org = ctx.session.active_organization.as_ref();
    let verified = |status: Option<&str>| status.map_or(Value::Null, |s| json!(s == "verified"));
    match path {
        "user.id" => json!(u.id),
        "user.external_id" => opt(u.external_id.as_deref()),
        "user.first_name" => opt(u.first_name.as_deref()),
        "user.last_name" => opt(u.last_name.as_deref()),
        "user.full_name" => {
            let parts: Vec<&str> = [u.first_name.as_deref(), u.last_name.as_deref()].into_iter().flatten().collect();
            if parts.is_empty() {
                Value::Null
            } else {
                json!(parts.join(" "))
            }
        }
        "user.username" => opt(u.username.as_deref()),
        "user.primary_email_address" => opt(u.primary_email()),
        "user.primary_phone_address" | "user.primary_phone_number" => opt(u.primary_phone()),
        "user.image_url" | "user.profile_image_url" => json!(u.image_url),
        "user.has_image" => json!(u.has_image),
        "user.created_at" => json!(u.created_at),
        "user.updated_at" => json!(u.updated_at),
        "user.two_factor_enabled" => json!(u.two_factor_enabled),
        "user.email_verified" => {
            let primary = u.primary_email_address_id.as_deref();
            verified(u.email_addresses.iter().find(|e| Some(e.id.as_str()) == primary).and_then(|e| e.verification.as_ref()).map(|v| v.status.as_str()))
        }
        "user.phone_number_verified" => {
            let primary = u.primary_phone_number_id.as_deref();
            verified(u.phone_numbers.iter().find(|p| Some(p.id.as_str()) == primary).and_then(|p| p.verification.as_ref()).map(|v| v.status.as_str()))
        }
        "user.public_metadata" => u.public_metadata.clone(),
        "user.unsafe_metadata" => u.unsafe_metadata.clone(),
        "session.id" => json!(ctx.session.id),
        "session.actor" => ctx.session.actor.clone().unwrap_or(Value::Null),
        "org.id" => opt(org.map(|o| o.id.as_str())),
        "org.name" => opt(org.map(|o| o.name.as_str())),
        "org.slug" => opt(org.map(|o| o.slug.as_str())),
        "org.role" => opt(org.map(|o| o.role.as_str())),
        "instance.id" => json!(ctx.instance.id()),
        other => {
            for (prefix, root) in [("user.public_metadata.", &u.public_metadata), ("user.unsafe_metadata.", &u.unsafe_metadata)] {
                if let Some(rest) = other.strip_prefix(prefix) {
                    return rest.split('.').try_fold(root, |v, key| v.get(key)).cloned().unwrap_or(Value::Null);
                }
            }
            tracing::debug!(shortcode = other, "unknown shortcode renders null");
            Value::Null
        }
    }
}
