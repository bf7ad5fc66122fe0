//! A bad profile is an error that names the file, the line and what is allowed.

use harness::{HarnessError, Profile};

const GOOD: &str = r#"
name = "demo"
health_path = "/health"
required_env = ["DATABASE_URL"]

[process]
cwd = "."
command = ["python", "-m", "uvicorn", "app:app", "--port", "{port}"]

[env]
DATABASE_URL = "{database_url}"

[token]
kind = "session"

[cors]
allowed_origins = ["http://localhost:3000"]

[[endpoints]]
method = "GET"
path = "/me"

[user]
sql = "SELECT clerk_user_id, email, first_name, last_name FROM users WHERE clerk_user_id = $1"
"#;

fn error_for(text: &str) -> String {
    match Profile::parse(text, "profiles/demo.toml", ".") {
        Err(e @ HarnessError::Profile { .. }) => e.to_string(),
        Err(other) => panic!("expected a profile error, got {other}"),
        Ok(_) => panic!("expected an error for:\n{text}"),
    }
}

#[test]
fn the_good_profile_parses() {
    let profile = Profile::parse(GOOD, "profiles/demo.toml", ".").expect("valid");
    assert_eq!(profile.spa_origin(), "http://localhost:3000");
}

#[test]
fn the_shipped_profiles_parse() {
    Profile::reference().expect("profiles/reference.toml");
    Profile::orientor("/tmp").expect("profiles/orientor.toml");
}

#[test]
fn an_unknown_key_names_its_line_and_the_allowed_keys() {
    let err = error_for(&GOOD.replace("health_path", "health_pth"));
    assert!(err.starts_with("profiles/demo.toml:3:1: unknown field `health_pth`, expected one of"), "{err}");
    assert!(err.contains("`health_path`"), "{err}");
}

#[test]
fn a_bad_enum_value_lists_the_allowed_values() {
    let err = error_for(&GOOD.replace(r#"kind = "session""#, r#"kind = "jwt""#));
    assert!(err.starts_with("profiles/demo.toml:14:8:"), "{err}");
    assert!(err.contains("`session`") && err.contains("`template`"), "{err}");
    let err = error_for(&GOOD.replace(r#"method = "GET""#, r#"method = "FETCH""#));
    assert!(err.starts_with("profiles/demo.toml:20:"), "{err}");
    assert!(err.contains("`GET`") && err.contains("`DELETE`"), "{err}");
}

#[test]
fn an_unknown_placeholder_lists_the_known_ones() {
    let err = error_for(&GOOD.replace("{database_url}", "{db_url}"));
    assert!(err.starts_with("profiles/demo.toml:11:"), "{err}");
    assert!(err.contains("unknown placeholder `{db_url}`") && err.contains("{database_url}") && err.contains("{proxy_url}"), "{err}");
}

#[test]
fn a_required_variable_the_env_does_not_set_is_named() {
    let err = error_for(&GOOD.replace(r#"required_env = ["DATABASE_URL"]"#, r#"required_env = ["DATABASE_URL", "CLERK_SECRET_KEY"]"#));
    assert!(err.starts_with("profiles/demo.toml:4:"), "{err}");
    assert!(err.contains("CLERK_SECRET_KEY") && err.contains("[env]"), "{err}");
}

#[test]
fn bad_values_say_what_is_expected() {
    for (from, to, line, needle) in [
        (r#"path = "/me""#, r#"path = "me""#, 21, "must start with `/`"),
        ("http://localhost:3000", "localhost:3000", 17, "is not an origin"),
        ("WHERE clerk_user_id = $1", "WHERE clerk_user_id = ?", 24, "$1"),
        (r#"kind = "session""#, "kind = \"template\"", 14, "needs `template"),
        (r#"path = "/me""#, "path = \"/me\"\nstatus = 42", 22, "not an HTTP status"),
        (r#"path = "/me""#, "path = \"/me\"\norg_role = \"admin\"", 22, "`org:<role>`"),
        (r#"path = "/me""#, "path = \"/me\"\norg_permission = \"org:manage\"", 22, "`org:<feature>:<permission>`"),
        (r#"path = "/me""#, "path = \"/me\"\norg_role = \"org:admin\"\norg_permission = \"org:a:b\"", 23, "not both"),
    ] {
        let err = error_for(&GOOD.replace(from, to));
        assert!(err.starts_with(&format!("profiles/demo.toml:{line}:")), "{from} -> {to}: {err}");
        assert!(err.contains(needle), "{from} -> {to}: {err}");
    }
}

#[test]
fn the_token_transport_is_bearer_or_cookie_and_cookies_carry_session_tokens_only() {
    use harness::Transport;
    assert_eq!(*Profile::parse(GOOD, "profiles/demo.toml", ".").expect("valid").token.transport.get(), Transport::Bearer, "the default");
    let cookie = Profile::parse(&GOOD.replace(r#"kind = "session""#, "kind = \"session\"\ntransport = \"cookie\""), "profiles/demo.toml", ".").expect("valid");
    assert_eq!(*cookie.token.transport.get(), Transport::Cookie);
    let err = error_for(&GOOD.replace(r#"kind = "session""#, "kind = \"session\"\ntransport = \"header\""));
    assert!(err.starts_with("profiles/demo.toml:15:13:") && err.contains("`bearer`") && err.contains("`cookie`"), "{err}");
    let err = error_for(&GOOD.replace(r#"kind = "session""#, "kind = \"template\"\ntemplate = \"backend\"\ntransport = \"cookie\""));
    assert!(err.starts_with("profiles/demo.toml:16:13:") && err.contains("__session cookie"), "{err}");
}

#[test]
fn a_missing_file_is_named() {
    let err = Profile::from_file("/nonexistent/profile.toml").expect_err("no such file");
    assert!(err.to_string().contains("/nonexistent/profile.toml"), "{err}");
}

#[test]
fn inherit_env_names_are_checked_at_their_line() {
    let with = |list: &str| GOOD.replace("required_env = [\"DATABASE_URL\"]", &format!("required_env = [\"DATABASE_URL\"]\ninherit_env = {list}"));
    let profile = Profile::parse(&with(r#"["PYTHONPATH", "LD_LIBRARY_PATH"]"#), "profiles/demo.toml", ".").expect("valid");
    assert_eq!(profile.inherit_env.iter().map(|n| n.get().as_str()).collect::<Vec<_>>(), ["PYTHONPATH", "LD_LIBRARY_PATH"]);

    let err = error_for(&with(r#"["PYTHONPATH", "PIP-INDEX"]"#));
    assert!(err.starts_with("profiles/demo.toml:5:30: inherit_env name \"PIP-INDEX\" must match"), "{err}");
    let err = error_for(&with(r#"["DATABASE_URL"]"#));
    assert!(err.starts_with("profiles/demo.toml:5:16: inherit_env lists DATABASE_URL and [env] sets it too"), "{err}");
    let err = error_for(&with(r#"["A", "A"]"#));
    assert!(err.starts_with("profiles/demo.toml:5:21: inherit_env lists A twice"), "{err}");
    let err = error_for(&with(r#""PYTHONPATH""#));
    assert!(err.starts_with("profiles/demo.toml:5:15:"), "{err}");
}

#[test]
fn the_database_placeholders_are_known() {
    for name in [
        "database_url",
        "database_url_asyncpg",
        "database_url_psycopg",
        "database_url_psycopg2",
        "database_host",
        "database_port",
        "database_name",
        "database_user",
        "database_password",
    ] {
        Profile::parse(&GOOD.replace("{database_url}", &format!("{{{name}}}")), "profiles/demo.toml", ".").expect(name);
    }
    let err = error_for(&GOOD.replace("{database_url}", "{database_url_async}"));
    assert!(err.contains("unknown placeholder `{database_url_async}`") && err.contains("{database_url_asyncpg}"), "{err}");
}

#[test]
fn required_env_entries_may_say_what_they_guard() {
    use harness::Guard;
    let with = |list: &str| {
        GOOD.replace(r#"required_env = ["DATABASE_URL"]"#, &format!("required_env = {list}")).replace(
            r#"DATABASE_URL = "{database_url}""#,
            "DATABASE_URL = \"{database_url}\"\nCLERK_WEBHOOK_SECRET = \"{webhook_secret}\"\nCLERK_SECRET_KEY = \"{secret_key}\"\nAPP_MODE = \"x\"",
        )
    };
    let profile = Profile::parse(
        &with(r#"[{ name = "CLERK_WEBHOOK_SECRET", guards = "webhook_secret" }, "DATABASE_URL", "CLERK_SECRET_KEY", { name = "APP_MODE" }]"#),
        "profiles/demo.toml",
        ".",
    )
    .expect("valid");
    let guards: Vec<(String, Guard)> = profile.required_env.iter().map(|v| (v.name.clone(), profile.guard_of(v))).collect();
    assert_eq!(
        guards,
        [
            ("CLERK_WEBHOOK_SECRET".into(), Guard::WebhookSecret),
            ("DATABASE_URL".into(), Guard::Database),
            ("CLERK_SECRET_KEY".into(), Guard::SecretKey),
            ("APP_MODE".into(), Guard::Other)
        ],
        "an explicit guard, or inferred from the [env] value's placeholder"
    );

    let err = error_for(&with(r#"[{ name = "CLERK_SECRET_KEY", guards = "api_key" }]"#));
    assert!(err.starts_with("profiles/demo.toml:4:") && err.contains("unknown variant `api_key`") && err.contains("`webhook_secret`"), "{err}");
    let err = error_for(&with(r#"[{ name = "CLERK_SECRET_KEY", guard = "secret_key" }]"#));
    assert!(err.starts_with("profiles/demo.toml:4:") && err.contains("unknown field `guard`") && err.contains("`guards`"), "{err}");
    let err = error_for(&with(r#"[{ guards = "secret_key" }]"#));
    assert!(err.starts_with("profiles/demo.toml:4:") && err.contains("missing field `name`"), "{err}");
    let err = error_for(&with(r#"["CLERK_SECRET_KEY", { name = "CLERK_SECRET_KEY" }]"#));
    assert!(err.starts_with("profiles/demo.toml:4:") && err.contains("lists CLERK_SECRET_KEY twice"), "{err}");
    let err = error_for(&with(r#"[{ name = "NOT_SET" }]"#));
    assert!(err.contains("required_env lists NOT_SET but [env] does not set it"), "{err}");
}

#[test]
fn user_fields_default_to_all_and_an_unknown_field_is_named() {
    let profile = Profile::parse(GOOD, "profiles/demo.toml", ".").expect("valid");
    assert_eq!(profile.user.fields, harness::UserField::ALL.to_vec());
    let only_email = GOOD.replace("[user]\n", "[user]\nfields = [\"email\"]\n");
    let profile = Profile::parse(&only_email, "profiles/demo.toml", ".").expect("valid");
    assert_eq!(profile.user.skipped(), vec!["first_name", "last_name"]);
    let err = error_for(&GOOD.replace("[user]\n", "[user]\nfields = [\"email\", \"phone\"]\n"));
    assert!(err.contains("unknown variant `phone`") && err.contains("`first_name`"), "{err}");
    assert!(err.starts_with("profiles/demo.toml:"), "{err}");
}

/// `GOOD` as the `[tool.clerk-harness]` table of a pyproject.toml, after the project's own.
fn as_pyproject(profile: &str) -> String {
    let mut text = String::from("[project]\nname = \"api\"\n\n[tool.ruff]\nline-length = 100\n\n[tool.clerk-harness]");
    for line in profile.lines() {
        let line = match line.strip_prefix("[[") {
            Some(rest) => format!("[[tool.clerk-harness.{rest}"),
            None => match line.strip_prefix('[') {
                Some(rest) => format!("[tool.clerk-harness.{rest}"),
                None => line.to_owned(),
            },
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

#[test]
fn a_pyproject_toml_holds_the_profile_in_tool_clerk_harness() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pyproject.toml");
    std::fs::write(&path, as_pyproject(GOOD)).expect("write");
    let profile = Profile::from_file(&path).expect("the [tool.clerk-harness] table is a profile");
    assert_eq!(profile.name.get(), "demo");
    assert_eq!(profile.spa_origin(), "http://localhost:3000");
    let cwd = profile.process_cwd().expect("[tool.clerk-harness.process] cwd");
    assert_eq!(cwd, std::path::absolute(dir.path().join(".")).expect("absolute"), "cwd is relative to the pyproject's folder");
    assert_eq!(profile.location(&profile.name), format!("{}:8", path.display()), "locations are the pyproject's lines");
}

#[test]
fn a_pyproject_error_names_its_own_line_and_a_missing_table_says_where_the_profile_goes() {
    let typo = as_pyproject(&GOOD.replace("health_path", "health_pth"));
    let line = typo.lines().position(|l| l.starts_with("health_pth")).expect("the typo's line") + 1;
    let err = Profile::parse_pyproject(&typo, "pyproject.toml", ".").expect_err("typo");
    assert!(err.to_string().starts_with(&format!("pyproject.toml:{line}:1: unknown field `health_pth`")), "{err}");
    let err = Profile::parse_pyproject("[project]\nname = \"api\"\n", "pyproject.toml", ".").expect_err("no table");
    assert!(err.to_string().contains("no [tool.clerk-harness] table"), "{err}");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pyproject.toml");
    std::fs::write(&path, "[tool.black]\nline-length = 100\n").expect("write");
    let err = Profile::from_file(&path).expect_err("no table");
    assert!(err.to_string().contains("pyproject.toml:1:1: no [tool.clerk-harness] table"), "{err}");
}
