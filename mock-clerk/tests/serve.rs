//! `mock-clerk serve`: one JSON ready line, the admin API, clear errors for bad input.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use common::{fetch_jwks, verify, Options};
use serde_json::{json, Value};

struct Server {
    child: Child,
    ready: Value,
}

impl Drop for Server {
    /// SIGTERM, like a user's Ctrl-C or `docker stop`: the server shuts down cleanly and
    /// removes what it created (the interception CA's temp dir). SIGKILL only as a fallback.
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Server {
    let mut child =
        Command::new(env!("CARGO_BIN_EXE_mock-clerk")).arg("serve").args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn mock-clerk");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("ready line");
    let ready = serde_json::from_str(&line).unwrap_or_else(|e| {
        let mut err = String::new();
        let _ = child.stderr.take().map(|mut s| s.read_to_string(&mut err));
        panic!("ready line is not JSON ({e}): {line:?}; stderr: {err}")
    });
    Server { child, ready }
}

fn write_config(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    std::io::Write::write_all(&mut f, text.as_bytes()).expect("write");
    f
}

#[tokio::test]
async fn the_ready_line_has_everything_a_script_needs() {
    let config = write_config(
        r#"
[instance]
fapi_host = "clerk.example.com"
environment = "production"
[[users]]
id = "user_alice"
email_addresses = ["alice@example.com"]
[[sessions]]
user_id = "user_alice"
[[templates]]
name = "backend"
claims = { email = "{{user.primary_email_address}}" }
"#,
    );
    let server = serve(&["--config", config.path().to_str().expect("utf8")]);
    let r = &server.ready;
    for field in ["fapi_url", "api_url", "fapi_host", "jwks_url", "publishable_key", "secret_key", "webhook_secret", "pem_public_key", "instance_id", "issuer"]
    {
        assert!(r[field].is_string(), "ready line lacks {field}: {r}");
    }
    assert_eq!(r["fapi_host"], "clerk.example.com");
    assert_eq!(r["issuer"], "https://clerk.example.com");
    assert_eq!(mock_clerk::parse_publishable_key(r["publishable_key"].as_str().expect("pk")).as_deref(), Ok("clerk.example.com"));
    assert!(r["publishable_key"].as_str().is_some_and(|k| k.starts_with("pk_live_")));
    assert!(r["secret_key"].as_str().is_some_and(|k| k.starts_with("sk_live_")));
    assert!(r["webhook_secret"].as_str().is_some_and(|k| k.starts_with("whsec_")));

    // Admin API, like the README's curl example.
    let sk = r["secret_key"].as_str().expect("sk");
    let api = r["api_url"].as_str().expect("api");
    let sid = r["sessions"][0]["id"].as_str().expect("seeded session");
    let client = reqwest::Client::new();
    let admin = |path: &str, body: Value| client.post(format!("{api}/_mock/{path}")).bearer_auth(sk).json(&body).send();
    let token: Value = admin("tokens", json!({"session_id": sid, "template": "backend", "origin": "https://app.example.com"}))
        .await
        .expect("mint")
        .json()
        .await
        .expect("json");
    let jwks = fetch_jwks(r["jwks_url"].as_str().expect("jwks")).await;
    let claims = verify(token["jwt"].as_str().expect("jwt"), &jwks, &Options::sdk_defaults(), chrono_now()).expect("verifies");
    assert_eq!(claims["email"], "alice@example.com");

    let forged: Value = admin("tokens", json!({"session_id": sid, "forge": {"expired_by": 30}})).await.expect("forge").json().await.expect("json");
    assert_eq!(verify(forged["jwt"].as_str().expect("jwt"), &jwks, &Options::sdk_defaults(), chrono_now()).map(|_| ()), Err("token-expired"));

    let clock: Value = admin("clock", json!({"advance_secs": 3600})).await.expect("clock").json().await.expect("json");
    assert_eq!(clock["offset_ms"], 3_600_000);

    let rotated: Value = admin("rotate", json!({"overlap_secs": 60})).await.expect("rotate").json().await.expect("json");
    assert_eq!(rotated["keys"].as_array().map(Vec::len), Some(2));

    let unauthorized = client.post(format!("{api}/_mock/users")).json(&json!({})).send().await.expect("POST");
    assert_eq!(unauthorized.status(), 401, "the admin API needs the secret key");
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[tokio::test]
async fn intercept_routes_https_api_clerk_com_to_this_mock() {
    let server = serve(&["--intercept"]);
    let r = &server.ready;
    let proxy = r["proxy_url"].as_str().expect("proxy_url in the ready line");
    let ca = std::fs::read(r["ca_file"].as_str().expect("ca_file")).expect("CA file exists");
    assert_eq!(r["env"]["HTTPS_PROXY"], proxy);
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(proxy).expect("proxy"))
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("pem"))
        .build()
        .expect("client");
    let jwks: Value = client
        .get("https://api.clerk.com/v1/jwks")
        .bearer_auth(r["secret_key"].as_str().expect("sk"))
        .send()
        .await
        .expect("GET via proxy")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"][0]["kid"], r["instance_id"]);
    let fapi = format!("https://{}/.well-known/jwks.json", r["fapi_host"].as_str().expect("host"));
    assert_eq!(client.get(fapi).send().await.expect("GET fapi").status(), 200);
    let ca_dir = std::path::PathBuf::from(r["ca_file"].as_str().expect("ca_file")).parent().expect("dir").to_path_buf();
    drop(server);
    assert!(!ca_dir.exists(), "{} left behind after SIGTERM", ca_dir.display());
}

#[test]
fn a_bad_config_file_fails_with_line_and_field() {
    let config = write_config("[instance]\nfapi_host = \"x.example.com\"\nsecret = \"oops\"\n");
    let out = Command::new(env!("CARGO_BIN_EXE_mock-clerk")).args(["serve", "--config", config.path().to_str().expect("utf8")]).output().expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(":3:1: ") && stderr.contains("unknown field `secret`") && stderr.contains("secret_key"), "{stderr}");
}

#[test]
fn a_port_in_use_fails_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_mock-clerk")).args(["serve", "--api-port", &port]).output().expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already in use") && stderr.contains(&port), "{stderr}");
}
