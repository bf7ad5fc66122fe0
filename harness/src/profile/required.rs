//! `required_env` entries: a variable's name, and optionally what it guards.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// What a required variable guards: decides how a start without it is probed
/// (`env.missing_required`) and how a failure is labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guard {
    /// Clerk's secret key (Backend API calls, JWKS through the Backend API).
    SecretKey,
    /// The Svix webhook signing secret (`whsec_…`): probed with unsigned and wrongly signed
    /// webhooks to the profile's `webhook_path`.
    WebhookSecret,
    /// The database connection.
    Database,
    /// A PEM public key verifying tokens without a JWKS (`jwt_key` / networkless).
    JwtKey,
    /// The publishable key, FAPI host or JWKS URL: where the instance's keys are found.
    PublishableKey,
    /// Anything else.
    Other,
}

impl Guard {
    /// The name as written in a profile (`webhook_secret`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretKey => "secret_key",
            Self::WebhookSecret => "webhook_secret",
            Self::Database => "database",
            Self::JwtKey => "jwt_key",
            Self::PublishableKey => "publishable_key",
            Self::Other => "other",
        }
    }

    /// What an `[env]` value guards, from the placeholder it uses (`{webhook_secret}` →
    /// [`Guard::WebhookSecret`]); [`Guard::Other`] when it uses none of Clerk's or the database's.
    #[must_use]
    pub fn of_value(value: &str) -> Self {
        if value.contains("{secret_key}") {
            Self::SecretKey
        } else if value.contains("{webhook_secret}") {
            Self::WebhookSecret
        } else if value.contains("{pem_public_key}") {
            Self::JwtKey
        } else if value.contains("{database_") {
            Self::Database
        } else if ["{publishable_key}", "{fapi_host}", "{jwks_url}"].iter().any(|p| value.contains(p)) {
            Self::PublishableKey
        } else {
            Self::Other
        }
    }
}

impl std::fmt::Display for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `required_env`: `"CLERK_SECRET_KEY"`, or
/// `{ name = "CLERK_WEBHOOK_SECRET", guards = "webhook_secret" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredVar {
    /// The variable's name.
    pub name: String,
    /// What it guards, when the profile says; else [`crate::Profile::guard_of`] infers it
    /// from the placeholder its `[env]` value uses.
    pub guards: Option<Guard>,
}

impl std::fmt::Display for RequiredVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for RequiredVar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entry;
        impl<'de> Visitor<'de> for Entry {
            type Value = RequiredVar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#"a variable name, or { name = "…", guards = "secret_key|webhook_secret|database|jwt_key|publishable_key|other" }"#)
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<RequiredVar, E> {
                Ok(RequiredVar { name: name.to_owned(), guards: None })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RequiredVar, A::Error> {
                let (mut name, mut guards) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" => name = Some(map.next_value::<String>()?),
                        "guards" => guards = Some(map.next_value::<Guard>()?),
                        other => return Err(de::Error::unknown_field(other, &["name", "guards"])),
                    }
                }
                let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
                Ok(RequiredVar { name, guards })
            }
        }
        deserializer.deserialize_any(Entry)
    }
}
