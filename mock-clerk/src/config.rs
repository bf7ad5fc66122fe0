//! The `mock-clerk serve --config FILE` file (TOML). Unknown keys are errors that name the
//! file, line and the allowed keys.
//!
//! ```toml
//! bind = "127.0.0.1"       # default; 0.0.0.0 to reach it from containers
//! fapi_port = 0            # 0 = any free port
//! api_port = 0
//!
//! [instance]
//! fapi_host = "clerk.example.com"   # default: random *.clerk.accounts.dev
//! environment = "production"        # pk_live_/sk_live_
//! secret_key = "sk_test_fixed"      # default: random
//!
//! [[users]]
//! id = "user_alice"
//! email_addresses = ["alice@example.com"]
//! first_name = "Alice"
//!
//! [[sessions]]
//! user_id = "user_alice"
//!
//! [[templates]]
//! name = "backend"
//! lifetime = 300
//! claims = { email = "{{user.primary_email_address}}" }
//!
//! [[webhook_endpoints]]
//! url = "http://127.0.0.1:3000/webhooks/clerk"
//! secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"  # default: the instance's webhook_secret
//! events = ["user.created", "user.updated", "user.deleted"]  # default: all
//! ```

use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

use crate::error::Error;
use crate::instance::InstanceConfig;
use crate::model::{NewUser, SessionStatus};
use crate::templates::TemplateSpec;
use crate::webhooks::EndpointSpec;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listen address (default 127.0.0.1).
    #[serde(default)]
    pub bind: Option<IpAddr>,
    /// Frontend API port (default 0).
    #[serde(default)]
    pub fapi_port: u16,
    /// Backend API port (default 0).
    #[serde(default)]
    pub api_port: u16,
    /// Instance settings.
    #[serde(default)]
    pub instance: InstanceConfig,
    /// Seed users.
    #[serde(default)]
    pub users: Vec<NewUser>,
    /// Seed sessions.
    #[serde(default)]
    pub sessions: Vec<SessionSeed>,
    /// Seed JWT templates.
    #[serde(default)]
    pub templates: Vec<TemplateSpec>,
    /// Webhook endpoints (`url`, `secret`?, `events`?).
    #[serde(default)]
    pub webhook_endpoints: Vec<EndpointSpec>,
}

/// A session to create at start.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSeed {
    /// Its user (must be among `users`).
    pub user_id: String,
    /// Status (default active).
    #[serde(default)]
    pub status: SessionStatus,
}

impl Config {
    /// Reads and validates `path`.
    ///
    /// # Errors
    /// [`Error::Config`] with the file, line, column and what is wrong.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config { path: path.display().to_string(), message: format!("cannot read: {e}") })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses TOML text; `origin` names it in errors.
    ///
    /// # Errors
    /// [`Error::Config`] with line and column.
    pub fn parse(text: &str, origin: &str) -> Result<Self, Error> {
        // The same `file:line:column: message` form as the harness's profile errors, which
        // editors and terminals turn into links.
        toml::from_str(text).map_err(|e| {
            let start = e.span().map_or(0, |span| span.start);
            let line = text[..start].matches('\n').count() + 1;
            let column = start - text[..start].rfind('\n').map_or(0, |i| i + 1) + 1;
            Error::Config { path: format!("{origin}:{line}:{column}"), message: e.message().trim().to_owned() }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_names_the_line_and_the_allowed_keys() {
        let err = Config::parse("fapi_port = 0\n[instance]\nfapi_hots = \"x\"\n", "mock.toml").expect_err("bad");
        let msg = err.to_string();
        assert!(msg.starts_with("mock.toml:3:1: "), "{msg}");
        assert!(msg.contains("fapi_hots") && msg.contains("fapi_host"), "{msg}");
    }

    #[test]
    fn a_full_config_parses() {
        let cfg = Config::parse(
            r#"
bind = "0.0.0.0"
[instance]
fapi_host = "clerk.example.com"
environment = "production"
[[users]]
id = "user_a"
email_addresses = ["a@example.com"]
[[sessions]]
user_id = "user_a"
[[templates]]
name = "backend"
lifetime = 300
claims = { email = "{{user.primary_email_address}}" }
"#,
            "t",
        )
        .expect("valid");
        assert_eq!(cfg.users.len(), 1);
        assert_eq!(cfg.templates[0].lifetime, 300);
    }
}
