//! Checks a parsed profile beyond what serde can: placeholders, paths, origins, consistency.
//! Each error is a byte offset into the profile text and a message that says what is allowed.

use super::located::{parse_template, Located};
use super::{Profile, TokenKind, Transport};

type Check = Result<(), (usize, String)>;

pub(super) fn check(profile: &Profile, _text: &str) -> Check {
    let name = &profile.name;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        return fail(name, format!("name {:?} must be non-empty and use only a-z, 0-9, `-` and `_`", name.get()));
    }
    path(&profile.health_path, "health_path")?;
    if let Some(webhook) = &profile.webhook_path {
        path(webhook, "webhook_path")?;
    }
    if profile.ready_timeout_secs == 0 {
        return Err((0, "ready_timeout_secs must be at least 1".into()));
    }
    if profile.process.is_none() && profile.container.is_none() {
        return Err((0, "the profile needs a [process] or a [container] section (or both) to start the backend".into()));
    }
    if let Some(process) = &profile.process {
        command(&process.command, "[process] command")?;
        for step in &process.setup {
            command(step, "[process] setup step")?;
        }
        if let Some(cwd) = &process.cwd {
            template(cwd)?;
        }
    }
    if let Some(container) = &profile.container {
        if container.image.trim().is_empty() {
            return fail(&container.image, "[container] image must be `name:tag`".into());
        }
        for arg in &container.command {
            template(arg)?;
        }
        for step in &container.setup {
            command(step, "[container] setup step")?;
        }
    }
    for (key, value) in &profile.env {
        if !is_env_name(key) {
            return fail(value, format!("env name {key:?} must match [A-Za-z_][A-Za-z0-9_]*"));
        }
        template(value)?;
    }
    let mut inherited = std::collections::BTreeSet::new();
    for name in &profile.inherit_env {
        if !is_env_name(name) {
            return fail(name, format!("inherit_env name {:?} must match [A-Za-z_][A-Za-z0-9_]*", name.get()));
        }
        if profile.env.contains_key(name.get()) {
            return fail(name, format!("inherit_env lists {name} and [env] sets it too: keep one (the harness's value or the profile's)"));
        }
        if !inherited.insert(name.get()) {
            return fail(name, format!("inherit_env lists {name} twice"));
        }
    }
    let mut listed = std::collections::BTreeSet::new();
    for required in &profile.required_env {
        let name = &required.name;
        if !is_env_name(name) {
            return fail(required, format!("required_env name {name:?} must match [A-Za-z_][A-Za-z0-9_]*"));
        }
        if !profile.env.contains_key(name) {
            return fail(required, format!("required_env lists {name} but [env] does not set it: add {name} = \"{{…}}\" under [env]"));
        }
        if !listed.insert(name) {
            return fail(required, format!("required_env lists {name} twice"));
        }
    }
    token(profile)?;
    if profile.cors.allowed_origins.is_empty() {
        return Err((0, "[cors] allowed_origins needs at least one origin: the first is the SPA's".into()));
    }
    for origin in profile.cors.allowed_origins.iter().chain(&profile.cors.disallowed_origins) {
        check_origin(origin)?;
    }
    for endpoint in &profile.endpoints {
        path(&endpoint.path, "endpoint path")?;
        if !(100..=599).contains(endpoint.status.get()) {
            return fail(&endpoint.status, format!("status {} is not an HTTP status (100..=599)", endpoint.status));
        }
        org_gate(endpoint)?;
    }
    if !profile.user.sql.contains("$1") {
        return fail(&profile.user.sql, "[user] sql must take the Clerk user id as $1".into());
    }
    Ok(())
}

fn token(profile: &Profile) -> Check {
    let token = &profile.token;
    if *token.transport.get() == Transport::Cookie && *token.kind.get() == TokenKind::Template {
        return fail(
            &token.transport,
            "transport = \"cookie\" sends the __session cookie, which only ever holds the default session token: use kind = \"session\", or transport = \"bearer\" for a template".into(),
        );
    }
    match (token.kind.get(), &token.template) {
        (TokenKind::Template, None) => fail(&token.kind, "kind = \"template\" needs `template = \"<name>\"` (the name passed to getToken)".into()),
        (TokenKind::Session, Some(name)) => {
            fail(&token.kind, format!("template = {name:?} is set but kind = \"session\": use kind = \"template\" or remove it"))
        }
        _ => Ok(()),
    }
}

fn org_gate(endpoint: &super::Endpoint) -> Check {
    let is_key = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if let (Some(_), Some(permission)) = (&endpoint.org_role, &endpoint.org_permission) {
        return fail(permission, "an endpoint declares org_role or org_permission, not both: keep the one the backend checks".into());
    }
    if let Some(role) = &endpoint.org_role {
        let ok = role.strip_prefix("org:").is_some_and(|key| is_key(key) && !key.contains(':'));
        if !ok {
            return fail(role, format!("org_role {:?} must be an organization role key, `org:<role>` (e.g. \"org:admin\")", role.get()));
        }
    }
    if let Some(permission) = &endpoint.org_permission {
        let parts: Vec<&str> = permission.split(':').collect();
        let ok = parts.len() == 3 && parts[0] == "org" && parts[1..].iter().all(|p| is_key(p)) && !parts[1].starts_with("sys_");
        if !ok {
            return fail(
                permission,
                format!(
                    "org_permission {:?} must be a custom permission key, `org:<feature>:<permission>` (e.g. \"org:invoices:manage\"; system permissions org:sys_* never appear in tokens)",
                    permission.get()
                ),
            );
        }
    }
    Ok(())
}

fn fail<T>(at: &Located<T>, message: String) -> Check {
    Err((at.span().start, message))
}

fn path(value: &Located<String>, what: &str) -> Check {
    if value.starts_with('/') {
        Ok(())
    } else {
        fail(value, format!("{what} {:?} must start with `/`", value.get()))
    }
}

fn command(args: &[Located<String>], what: &str) -> Check {
    if args.first().is_none_or(|program| program.trim().is_empty()) {
        return Err((0, format!("{what} must be a non-empty list: [\"program\", \"arg\", …]")));
    }
    args.iter().try_for_each(template)
}

fn template(value: &Located<String>) -> Check {
    // +1 skips the opening quote; exact for strings without escapes before the error.
    parse_template(value).map(|_| ()).map_err(|(offset, message)| (value.span().start + 1 + offset, message))
}

pub(crate) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_origin(origin: &Located<String>) -> Check {
    // `*` stands for one DNS label in origin patterns (https://*.up.railway.app).
    let probe = origin.replace('*', "x");
    let ok =
        url::Url::parse(&probe).is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.origin().ascii_serialization() == probe.trim_end_matches('/'));
    if ok {
        Ok(())
    } else {
        fail(origin, format!("{:?} is not an origin: write scheme://host[:port], e.g. http://localhost:3000", origin.get()))
    }
}
