//! Values that remember where they were written, and the `{placeholder}` templates.

use std::collections::BTreeMap;
use std::ops::{Deref, Range};

use serde::{Deserialize, Deserializer};

/// A profile value with the byte range it came from, so a bad value is reported at its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    value: T,
    span: Range<usize>,
}

impl<T> Located<T> {
    /// A value that was not read from a file (span 0..0).
    pub fn new(value: T) -> Self {
        Self { value, span: 0..0 }
    }

    /// The value.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// Byte range in the profile text.
    #[must_use]
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }
}

impl<T: Default> Default for Located<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: std::fmt::Display> std::fmt::Display for Located<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value.fmt(f)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = toml::Spanned::<T>::deserialize(deserializer)?;
        let span = spanned.span();
        Ok(Self { value: spanned.into_inner(), span })
    }
}

/// The placeholders an env value, command or setup step may use, with what each stands for.
pub const PLACEHOLDERS: [(&str, &str); 22] = [
    ("secret_key", "the mock instance's secret key (sk_test_…)"),
    ("publishable_key", "the mock instance's publishable key (pk_test_…)"),
    ("fapi_host", "the Frontend API host, e.g. clever-otter-42.clerk.accounts.dev"),
    ("jwks_url", "the mock's JWKS URL served directly (http://…/.well-known/jwks.json)"),
    ("api_url", "the mock's Backend API served directly (http://…)"),
    (
        "database_url",
        "postgresql://user:password@host:port/db URL of the backend's own fresh database (libpq, psycopg 2/3, asyncpg, sqlx, node-postgres, dj-database-url; SQLAlchemy's default driver: psycopg2 in 2.0, psycopg 3 in 2.1)",
    ),
    ("database_url_asyncpg", "the same URL as postgresql+asyncpg://… for SQLAlchemy's async engine on asyncpg"),
    ("database_url_psycopg", "the same URL as postgresql+psycopg://… for SQLAlchemy on psycopg 3"),
    ("database_url_psycopg2", "the same URL as postgresql+psycopg2://… for SQLAlchemy on psycopg2 (2.1 picks psycopg 3 for a plain postgresql://)"),
    ("database_host", "the database's host (127.0.0.1, or the address a container reaches it at)"),
    ("database_port", "the database's port"),
    ("database_name", "the database's name"),
    ("database_user", "the database user (a superuser)"),
    ("database_password", "that user's password"),
    ("port", "the port the backend must listen on"),
    ("webhook_secret", "the instance's Svix webhook signing secret (whsec_…)"),
    ("ca_file", "path of the per-run CA bundle the backend must trust"),
    ("proxy_url", "the interception proxy (http://host:port) for HTTPS_PROXY"),
    ("cors_origins", "the profile's allowed CORS origins, comma separated"),
    ("audience", "the profile's token audience(s), comma separated"),
    ("authorized_parties", "the profile's authorized parties, comma separated"),
    ("pem_public_key", "the instance's signing key as an SPKI PEM public key (Clerk's \"PEM public key\", for networkless CLERK_JWT_KEY)"),
];

/// Concrete values for every placeholder, for one start of a backend.
pub type Wiring = BTreeMap<&'static str, String>;

/// Why a template string is invalid: byte offset (relative to the string) and message.
pub(crate) type TemplateError = (usize, String);

/// Splits `text` into literal and placeholder parts; `{{` and `}}` are literal braces.
pub(crate) fn parse_template(text: &str) -> Result<Vec<Part<'_>>, TemplateError> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|&(_, n)| n) == Some('{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let rest = &text[i + 1..];
                let Some(end) = rest.find('}') else {
                    return Err((i, "unclosed `{`: write `{{` for a literal brace".into()));
                };
                let name = &rest[..end];
                if !PLACEHOLDERS.iter().any(|(known, _)| *known == name) {
                    let allowed: Vec<String> = PLACEHOLDERS.iter().map(|(n, _)| format!("{{{n}}}")).collect();
                    return Err((i, format!("unknown placeholder `{{{name}}}`; allowed: {}", allowed.join(", "))));
                }
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Placeholder(name));
                for _ in 0..=end {
                    chars.next();
                }
            }
            '}' => return Err((i, "stray `}`: write `}}` for a literal brace".into())),
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(parts)
}

/// A piece of a template.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Part<'a> {
    Literal(String),
    Placeholder(&'a str),
}

/// Replaces every placeholder of an already validated template with its value.
#[must_use]
pub fn expand(text: &str, wiring: &Wiring) -> String {
    match parse_template(text) {
        Ok(parts) => parts
            .into_iter()
            .map(|part| match part {
                Part::Literal(s) => s,
                Part::Placeholder(name) => wiring.get(name).cloned().unwrap_or_default(),
            })
            .collect(),
        // Profiles are validated at load time; an invalid string here was built in code.
        Err(_) => text.to_owned(),
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |nl| before.len() - nl - 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_known_placeholders_and_literal_braces() {
        let mut wiring = Wiring::new();
        wiring.insert("port", "8123".into());
        assert_eq!(expand("--port={port} {{x}}", &wiring), "--port=8123 {x}");
    }

    #[test]
    fn rejects_unknown_placeholders_with_the_allowed_list() {
        let err = parse_template("x {secret}").expect_err("unknown placeholder");
        assert_eq!(err.0, 2);
        assert!(err.1.contains("{secret_key}"), "{}", err.1);
    }

    #[test]
    fn line_col_is_one_based() {
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("abc", 0), (1, 1));
    }
}
