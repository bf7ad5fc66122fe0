//! Clerk's official Python SDK (`clerk-backend-api`, pinned in `tests/python/clerk-sdk-venv.sh`)
//! against the mock: what a Python backend gets from `users.list` filters, from
//! `authenticate_request` with a Bearer header or the `__session` cookie, and the organisation
//! permissions its own parser rebuilds from `fea`/`o.per`/`o.fpm`.
//!
//! The venv is built once (PyPI needed on the first run) and cached outside the target dir.

mod common;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use mock_clerk::{MockClerk, NewUser};
use serde_json::{json, Value};

/// The interpreter of the cached SDK venv (built on first use by the script).
async fn sdk_python() -> anyhow::Result<PathBuf> {
    static PYTHON: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    PYTHON
        .get_or_try_init(|| async {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/clerk-sdk-venv.sh");
            let out = tokio::process::Command::new("bash").arg(&script).output().await.with_context(|| format!("running {}", script.display()))?;
            if !out.status.success() {
                bail!("{} failed:\n{}", script.display(), String::from_utf8_lossy(&out.stderr));
            }
            Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
        })
        .await
        .cloned()
}

/// Runs `tests/python/clerk_sdk.py` with `commands`; one result per command.
async fn sdk(commands: &[Value]) -> anyhow::Result<Vec<Value>> {
    use tokio::io::AsyncWriteExt as _;
    let python = sdk_python().await?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/clerk_sdk.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    stdin.write_all(serde_json::to_string(commands)?.as_bytes()).await?;
    drop(stdin);
    let out = child.wait_with_output().await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let results: Vec<Value> = String::from_utf8(out.stdout)?.lines().map(serde_json::from_str).collect::<Result<_, _>>().with_context(|| stderr.to_string())?;
    if !out.status.success() || results.len() != commands.len() || results.iter().any(|r| r.get("error").is_some()) {
        bail!("the SDK script failed: {results:#?}\n--- python stderr ---\n{stderr}");
    }
    Ok(results)
}

fn networkless(mock: &MockClerk, accepts: &[&str]) -> Value {
    json!({ "jwt_key": mock.instance().pem_public_key(), "accepts_token": accepts })
}

#[tokio::test]
async fn users_list_filters_return_only_the_matching_users() -> anyhow::Result<()> {
    let mock = MockClerk::start().await?;
    // Users listed newest first: one created in the same millisecond as another ties, so
    // each gets its own instant.
    let ada = mock.create_user(NewUser::with_email("ada@example.com").username("ada"))?;
    mock.clock().advance(std::time::Duration::from_secs(1));
    let alan = mock.create_user(NewUser::with_email("alan@example.com").username("alan").phone("+15555550101"))?;
    mock.clock().advance(std::time::Duration::from_secs(1));
    let grace = mock.create_user(NewUser::default().username("grace").phone("+15555550102"))?;
    let org = mock.create_organization("Navy", Some(&grace.id))?;
    let base = json!({ "op": "users_list", "api_url": mock.api_url(), "secret_key": mock.instance().secret_key().expose() });
    let with = |request: Value| {
        let mut c = base.clone();
        c["request"] = request;
        c
    };
    let results = sdk(&[
        with(json!({"username": ["alan"]})),
        with(json!({"username": ["ada", "grace"]})),
        with(json!({"phone_number": ["+15555550102"]})),
        with(json!({"organization_id": [org.id]})),
        with(json!({"email_address": ["nobody@example.com"]})),
        with(json!({})),
    ])
    .await?;
    let ids = |i: usize| results[i]["ids"].clone();
    assert_eq!(ids(0), json!([alan.id]), "users.list(username=[alan]) returns only alan");
    assert_eq!(ids(1), json!([grace.id, ada.id]));
    assert_eq!(ids(2), json!([grace.id]));
    assert_eq!(ids(3), json!([grace.id]));
    assert_eq!(ids(4), json!([]));
    assert_eq!(ids(5).as_array().map(Vec::len), Some(3));
    Ok(())
}

#[tokio::test]
async fn the_official_parser_reads_back_exactly_the_granted_org_permissions() -> anyhow::Result<()> {
    let mock = MockClerk::start().await?;
    let granted = ["org:invoices:read", "org:invoices:manage", "org:reports:read", "org:reports:export", "org:team:invite"];
    mock.define_role("org:billing", &[&granted[..], &["org:sys_memberships:read"]].concat());
    mock.define_role("org:viewer", &["org:reports:read"]);
    let user = mock.create_user(NewUser::with_email("p@example.com"))?;
    let viewer = mock.create_user(NewUser::with_email("v@example.com"))?;
    let org = mock.create_organization("Perms", None)?;
    mock.add_membership(&org.id, &user.id, "org:billing")?;
    mock.add_membership(&org.id, &viewer.id, "org:viewer")?;
    let session = mock.create_session(&user.id)?;
    mock.set_active_organization(&session.id, Some(&org.id))?;
    let viewer_session = mock.create_session(&viewer.id)?;
    mock.set_active_organization(&viewer_session.id, Some(&org.id))?;
    let token = mock.session_token(&session.id, None)?;
    let viewer_token = mock.session_token(&viewer_session.id, None)?;

    let results = sdk(&[
        json!({"op": "authenticate", "headers": {"Authorization": format!("Bearer {token}")}, "options": networkless(&mock, &["session_token"])}),
        json!({"op": "authenticate", "headers": {"Authorization": format!("Bearer {viewer_token}")}, "options": networkless(&mock, &["session_token"])}),
    ])
    .await?;
    let read = |r: &Value| -> Vec<String> {
        let mut p: Vec<String> =
            r["payload"]["org_permissions"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
        p.sort();
        p
    };
    assert_eq!(results[0]["status"], "signed-in", "{:#}", results[0]);
    let mut want: Vec<String> = granted.iter().map(|s| (*s).to_string()).collect();
    want.sort();
    assert_eq!(read(&results[0]), want, "payload[org_permissions] from clerk-backend-api's own parser");
    assert_eq!(results[0]["payload"]["org_id"], json!(org.id));
    assert_eq!(read(&results[1]), vec!["org:reports:read".to_string()], "a one-permission role");
    Ok(())
}

#[tokio::test]
async fn authenticate_request_reads_the_session_cookie_and_refuses_an_expired_one() -> anyhow::Result<()> {
    let mock = MockClerk::start().await?;
    let user = mock.create_user(NewUser::with_email("c@example.com"))?;
    let session = mock.create_session(&user.id)?;
    let token = mock.session_token(&session.id, Some("http://localhost:3000"))?;
    let expired = mock.forge_session_token(&session.id)?.expired_by(120).build()?;
    let options = networkless(&mock, &["any"]);
    let results = sdk(&[
        json!({"op": "authenticate", "headers": {"Cookie": format!("__client_uat=1; __session={token}")}, "options": options}),
        json!({"op": "authenticate", "headers": {"Cookie": format!("__session={expired}")}, "options": options}),
        json!({"op": "authenticate", "headers": {}, "options": options}),
    ])
    .await?;
    assert_eq!((results[0]["status"].clone(), results[0]["payload"]["sub"].clone()), (json!("signed-in"), json!(user.id)), "{:#}", results[0]);
    assert_eq!((results[1]["status"].clone(), results[1]["reason"].clone()), (json!("signed-out"), json!("token-expired")));
    assert_eq!(results[2]["reason"], "session-token-missing");
    Ok(())
}

#[tokio::test]
async fn machine_tokens_verify_through_the_sdk_and_accepts_token_gates_their_types() -> anyhow::Result<()> {
    use mock_clerk::{MachineTokenKind, NewMachineToken};
    let mock = MockClerk::start().await?;
    let user = mock.create_user(NewUser::with_email("m@example.com"))?;
    let machine = mock_clerk::new_id("mch");
    let api_key = mock.issue_machine_token(NewMachineToken::new(MachineTokenKind::ApiKey, &user.id).scopes(&["read:reports"]));
    let m2m = mock.issue_machine_token(NewMachineToken::new(MachineTokenKind::M2m, &machine));
    let oauth = mock.issue_machine_token(NewMachineToken::new(MachineTokenKind::OAuth, &user.id).scopes(&["profile", "email"]));
    let short = mock.issue_machine_token(NewMachineToken::new(MachineTokenKind::ApiKey, &user.id).expires_in(30));
    let revoked = mock.issue_machine_token(NewMachineToken::new(MachineTokenKind::M2m, &machine));
    mock.machine_tokens().revoke(&revoked.id, "leaked")?;
    mock.clock().advance(std::time::Duration::from_secs(31));
    let session = mock.create_session(&user.id)?;
    let session_token = mock.session_token(&session.id, None)?;

    // `verify_token` posts to `{api_url}/api_keys/verify` etc. — the unversioned paths.
    let options = json!({ "secret_key": mock.instance().secret_key().expose(), "api_url": mock.api_url() });
    let verify = |token: &str| json!({ "op": "verify_token", "token": token, "options": options });
    let gate = |token: &str, accepts: &[&str]| json!({"op": "authenticate", "headers": {"Authorization": format!("Bearer {token}")}, "options": networkless(&mock, accepts)});
    let results = sdk(&[
        verify(&api_key.secret),
        verify(&m2m.secret),
        verify(&oauth.secret),
        verify(&short.secret),
        verify(&revoked.secret),
        verify("ak_neverissued0000000000000000000000"),
        gate(&api_key.secret, &["session_token"]),
        gate(&session_token, &["api_key", "m2m_token"]),
    ])
    .await?;
    assert_eq!(
        (results[0]["payload"]["subject"].clone(), results[0]["payload"]["scopes"].clone()),
        (json!(user.id), json!(["read:reports"])),
        "{:#}",
        results[0]
    );
    assert_eq!(results[1]["payload"]["subject"], json!(machine));
    assert_eq!(results[2]["payload"]["object"], "clerk_idp_oauth_access_token");
    for (i, what) in [(3, "expired"), (4, "revoked"), (5, "never issued")] {
        assert_eq!(results[i]["reason"], "token-invalid", "{what}: {:#}", results[i]);
    }
    assert_eq!((results[6]["status"].clone(), results[6]["reason"].clone()), (json!("signed-out"), json!("token-type-not-supported")));
    assert_eq!(results[7]["reason"], "token-type-not-supported");
    Ok(())
}

#[tokio::test]
async fn authenticate_request_reads_the_browsers_suffixed_cookies_and_a_handshake_revives_an_expired_one() -> anyhow::Result<()> {
    const APP: &str = "http://localhost:3000";
    let mock = MockClerk::start().await?;
    let user = mock.create_user(NewUser::with_email("jar@example.com"))?;
    let session = mock.create_session(&user.id)?;
    let browser = mock.browser_sign_in(&session.id, Some(APP))?;
    let suffix = mock_clerk::cookies::cookie_suffix(mock.instance().publishable_key());
    // Only the suffixed cookies (what a browser holds after the plain ones were cleared), then
    // the whole jar clerk-js keeps: the SDK takes the first cookie named `__session…`.
    let suffixed_only: String = browser.cookies().iter().filter(|(n, _)| n.ends_with(&suffix)).map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
    assert!(suffixed_only.starts_with(&format!("__session_{suffix}=")));
    let mut options = networkless(&mock, &["session_token"]);
    options["authorized_parties"] = json!([APP]);
    let expired = mock.forge_session_token(&session.id)?.claim("azp", json!(APP)).expired_by(120).build()?;
    let expired_jar = browser.cookie_header().replace(&browser.session_token, &expired);

    // The handshake the expired cookie calls for, through FAPI and the Backend API.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let answer = http
        .get(format!("{}/v1/client/handshake", mock.fapi_url()))
        .query(&[
            ("redirect_url", format!("{APP}/dashboard")),
            ("format", "nonce".into()),
            ("suffixed_cookies", "true".into()),
            ("__clerk_db_jwt", browser.client.dev_browser.clone()),
        ])
        .send()
        .await?;
    assert_eq!(answer.status(), 307);
    let location = url::Url::parse(answer.headers()["location"].to_str()?)?;
    let nonce = location.query_pairs().find(|(k, _)| k == "__clerk_handshake_nonce").map(|(_, v)| v.into_owned()).context("nonce in the redirect")?;
    let payload: Value = http
        .get(format!("{}/v1/clients/handshake_payload", mock.api_url()))
        .query(&[("nonce", nonce)])
        .header("authorization", common::bearer(&mock))
        .send()
        .await?
        .json()
        .await?;
    let refreshed: String = payload["directives"]
        .as_array()
        .context("directives")?
        .iter()
        .filter_map(Value::as_str)
        .map(|d| d.split(';').next().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("; ");

    let authenticate = |cookie: &str| json!({"op": "authenticate", "headers": {"Cookie": cookie}, "options": options});
    let results = sdk(&[authenticate(&suffixed_only), authenticate(&browser.cookie_header()), authenticate(&expired_jar), authenticate(&refreshed)]).await?;
    for (i, what) in [(0, "suffixed cookies only"), (1, "the whole jar"), (3, "the cookies of the handshake")] {
        assert_eq!(
            (results[i]["status"].clone(), results[i]["payload"]["sub"].clone(), results[i]["payload"]["azp"].clone()),
            (json!("signed-in"), json!(user.id), json!(APP)),
            "{what}: {:#}",
            results[i]
        );
    }
    assert_eq!((results[2]["status"].clone(), results[2]["reason"].clone()), (json!("signed-out"), json!("token-expired")), "{:#}", results[2]);
    assert_ne!(results[3]["payload"]["iat"], json!(null));
    Ok(())
}
