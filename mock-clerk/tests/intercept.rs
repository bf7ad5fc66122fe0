//! Acceptance tests for TLS interception (issue 4): clients configured only with the env block
//! reach stand-in routers as `https://api.clerk.com` and `https://<fapi host>`; everything
//! else is refused and recorded; the CA files never outlive the run.
//!
//! The Python tests build venvs with pinned httpx versions under
//! `$CARGO_TARGET_TMPDIR/intercept-python/` on first use (the Python package index must be reachable then) and
//! reuse them afterwards.

use std::os::unix::fs::PermissionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use mock_clerk::intercept::{CertificateAuthority, EnvBlock, InterceptError, Interceptor, CA_VARS, NO_PROXY_VARS, PROXY_VARS};
use rstest::rstest;
use serde_json::{json, Value};

const SECRET_KEY: &str = "sk_test_interceptstandin0000000000000000";
const BAPI_HOST: &str = "api.clerk.com";
const FAPI_ALPHA: &str = "alpha-otter-1.clerk.accounts.dev";
const FAPI_BETA: &str = "beta-heron-2.clerk.accounts.dev";
const UNKNOWN_HOST: &str = "telemetry.example.com";

/// Stands in for the Backend API: its JWKS needs the secret key, like Clerk's.
fn bapi_router() -> Router {
    Router::new().route(
        "/v1/jwks",
        get(|headers: HeaderMap| async move {
            let expected = format!("Bearer {SECRET_KEY}");
            match headers.get("authorization").and_then(|value| value.to_str().ok()) {
                Some(given) if given == expected => Ok(Json(json!({ "keys": [{ "kid": "bapi", "kty": "RSA" }] }))),
                _ => Err((StatusCode::UNAUTHORIZED, "missing or wrong secret key")),
            }
        }),
    )
}

/// Stands in for one instance's Frontend API; `kid` tells which instance answered.
fn fapi_router(kid: &'static str) -> Router {
    Router::new().route("/.well-known/jwks.json", get(move || async move { Json(json!({ "keys": [{ "kid": kid, "kty": "RSA" }] })) }))
}

async fn start_interceptor() -> anyhow::Result<Interceptor> {
    Ok(Interceptor::builder().route(BAPI_HOST, bapi_router()).route(FAPI_ALPHA, fapi_router("alpha")).no_proxy("db").start().await?)
}

fn env_var<'a>(env: &'a EnvBlock, name: &str) -> anyhow::Result<&'a str> {
    env.get(name).with_context(|| format!("the env block has no {name}"))
}

/// A reqwest client told exactly what a process would read from the env block.
fn client_from_env(env: &EnvBlock, trust_ca: bool) -> anyhow::Result<reqwest::Client> {
    let no_proxy = reqwest::NoProxy::from_string(env_var(env, "NO_PROXY")?);
    let mut builder = reqwest::Client::builder()
        .proxy(reqwest::Proxy::https(env_var(env, "HTTPS_PROXY")?)?.no_proxy(no_proxy.clone()))
        .proxy(reqwest::Proxy::http(env_var(env, "HTTP_PROXY")?)?.no_proxy(no_proxy))
        .timeout(Duration::from_secs(10));
    if trust_ca {
        let pem = std::fs::read(env_var(env, "SSL_CERT_FILE")?)?;
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    Ok(builder.build()?)
}

async fn get_json(client: &reqwest::Client, url: &str) -> anyhow::Result<(StatusCode, Value)> {
    let mut request = client.get(url);
    if url.starts_with(&format!("https://{BAPI_HOST}/")) {
        request = request.bearer_auth(SECRET_KEY);
    }
    let response = request.send().await.with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = response.text().await?;
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    Ok((status, value))
}

fn kid(body: &Value) -> Option<&str> {
    body["keys"][0]["kid"].as_str()
}

/// The error and all its causes, for asserting on what a client reports.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

/// Polls `probe` until it yields, for state the proxy records from its own tasks.
async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(found) = probe() {
            return Ok(found);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn reqwest_configured_from_the_env_block_reaches_both_clerk_hosts() -> anyhow::Result<()> {
    let interceptor = start_interceptor().await?;
    let client = client_from_env(&interceptor.env_block(), true)?;

    let (status, body) = get_json(&client, &format!("https://{BAPI_HOST}/v1/jwks")).await?;
    assert_eq!((status, kid(&body)), (StatusCode::OK, Some("bapi")), "{body}");
    let (status, body) = get_json(&client, &format!("https://{FAPI_ALPHA}/.well-known/jwks.json")).await?;
    assert_eq!((status, kid(&body)), (StatusCode::OK, Some("alpha")), "{body}");

    let routed: Vec<String> = interceptor.routed_requests().iter().map(ToString::to_string).collect();
    assert_eq!(routed, [format!("GET https://{BAPI_HOST}/v1/jwks -> 200"), format!("GET https://{FAPI_ALPHA}/.well-known/jwks.json -> 200"),]);
    assert!(interceptor.blocked_attempts().is_empty());
    Ok(())
}

#[tokio::test]
async fn the_backend_api_router_still_sees_a_missing_secret_key() -> anyhow::Result<()> {
    let interceptor = start_interceptor().await?;
    let client = client_from_env(&interceptor.env_block(), true)?;

    let response = client.get(format!("https://{BAPI_HOST}/v1/jwks")).send().await?;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test]
async fn plain_http_to_a_mocked_host_is_routed_in_origin_form() -> anyhow::Result<()> {
    let seen_uri =
        Router::new().route("/probe", get(|uri: axum::http::Uri, headers: HeaderMap| async move { format!("{uri} host={:?}", headers.get("host")) }));
    let interceptor = Interceptor::builder().route(FAPI_ALPHA, seen_uri).start().await?;
    let client = client_from_env(&interceptor.env_block(), true)?;

    let body = client.get(format!("http://{FAPI_ALPHA}/probe?x=1")).send().await?.text().await?;

    assert_eq!(body, format!("/probe?x=1 host=Some(\"{FAPI_ALPHA}\")"));
    Ok(())
}

#[tokio::test]
async fn a_client_without_the_ca_gets_a_certificate_error() -> anyhow::Result<()> {
    let interceptor = start_interceptor().await?;
    let client = client_from_env(&interceptor.env_block(), false)?;

    let error = client.get(format!("https://{BAPI_HOST}/v1/jwks")).send().await.expect_err("a client that does not trust the per-run CA must not connect");

    let chain = error_chain(&error);
    assert!(chain.contains("certificate") && chain.contains("UnknownIssuer"), "{chain}");
    let failure = eventually("the handshake failure to be recorded", || interceptor.handshake_failures().into_iter().next()).await?;
    assert_eq!(failure.host, BAPI_HOST);
    assert!(failure.untrusted_ca, "{failure}");
    assert_eq!(failure.alert.as_deref(), Some("unknown_ca"), "a client that trusts only its bundled roots (webpki-roots) says unknown_ca: {failure}");
    assert!(interceptor.routed_requests().is_empty());
    Ok(())
}

#[tokio::test]
async fn an_unknown_host_is_refused_and_recorded() -> anyhow::Result<()> {
    let interceptor = start_interceptor().await?;
    let client = client_from_env(&interceptor.env_block(), true)?;

    let tunnel = client.get(format!("https://{UNKNOWN_HOST}/v1/events")).send().await;
    let plain = client.get(format!("http://{UNKNOWN_HOST}/ping")).send().await?;

    let chain = error_chain(&tunnel.expect_err("CONNECT to an unknown host must be refused"));
    assert!(chain.contains("tunnel"), "{chain}");
    assert_eq!(plain.status(), StatusCode::FORBIDDEN);
    let body = plain.text().await?;
    assert!(body.starts_with(&format!("clerk-harness blocked GET to {UNKNOWN_HOST}:80")), "{body}");
    assert!(body.contains(BAPI_HOST) && body.contains("NO_PROXY"), "{body}");
    let attempts: Vec<(String, u16, String)> =
        interceptor.blocked_attempts().into_iter().map(|attempt| (attempt.host, attempt.port, attempt.method.to_string())).collect();
    assert_eq!(attempts, [(UNKNOWN_HOST.to_owned(), 443, "CONNECT".to_owned()), (UNKNOWN_HOST.to_owned(), 80, "GET".to_owned()),]);
    assert!(interceptor.blocked_attempts()[0].to_string().starts_with("the backend tried to reach telemetry.example.com:443"));
    Ok(())
}

#[tokio::test]
async fn two_fapi_hosts_are_routed_to_their_own_router() -> anyhow::Result<()> {
    let interceptor = start_interceptor().await?;
    // A second instance starts after the proxy and registers its own FAPI host.
    interceptor.add_route(FAPI_BETA, fapi_router("beta"))?;
    let client = client_from_env(&interceptor.env_block(), true)?;

    let (_, alpha) = get_json(&client, &format!("https://{FAPI_ALPHA}/.well-known/jwks.json")).await?;
    let (_, beta) = get_json(&client, &format!("https://{FAPI_BETA}/.well-known/jwks.json")).await?;

    assert_eq!((kid(&alpha), kid(&beta)), (Some("alpha"), Some("beta")));
    assert_eq!(interceptor.hosts(), [FAPI_ALPHA, BAPI_HOST, FAPI_BETA]);
    Ok(())
}

#[tokio::test]
async fn a_removed_route_is_refused_like_any_unknown_host() -> anyhow::Result<()> {
    let interceptor = start_interceptor().await?;
    interceptor.add_route(FAPI_BETA, fapi_router("beta"))?;

    assert!(interceptor.remove_route(FAPI_BETA));
    let fresh_client = client_from_env(&interceptor.env_block(), true)?;
    let result = fresh_client.get(format!("https://{FAPI_BETA}/.well-known/jwks.json")).send().await;

    assert!(result.is_err(), "{result:?}");
    assert_eq!(interceptor.blocked_attempts()[0].host, FAPI_BETA);
    assert!(!interceptor.remove_route(FAPI_BETA));
    Ok(())
}

#[tokio::test]
async fn a_route_that_is_not_a_host_name_is_rejected_with_the_reason() -> anyhow::Result<()> {
    let result = Interceptor::builder().route("https://api.clerk.com", bapi_router()).start().await;
    let error = result.expect_err("a URL is not a host");
    assert_eq!(error.to_string(), "'https://api.clerk.com' cannot be intercepted: give the host name without a port or scheme");

    let interceptor = start_interceptor().await?;
    let error = interceptor.add_route("*.clerk.accounts.dev", fapi_router("any")).expect_err("wildcard");
    assert!(matches!(error, InterceptError::InvalidHost { .. }), "{error}");
    Ok(())
}

#[tokio::test]
async fn a_taken_port_says_what_to_do() -> anyhow::Result<()> {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?;

    let error = Interceptor::builder().bind(addr).start().await.expect_err("port is taken");

    assert_eq!(error.to_string(), format!("port {} on 127.0.0.1 is already in use: choose another or use port 0", addr.port()));
    Ok(())
}

#[tokio::test]
async fn an_address_this_machine_does_not_have_points_to_the_docker_gateway() -> anyhow::Result<()> {
    // 192.0.2.0/24 is TEST-NET-1: never assigned to a real interface.
    let error = Interceptor::builder().bind("192.0.2.1:0".parse()?).start().await.expect_err("not our address");

    assert!(matches!(error, InterceptError::AddressNotAvailable { .. }), "{error}");
    assert!(error.to_string().contains("172.17.0.1"), "{error}");
    Ok(())
}

#[tokio::test]
async fn the_proxy_can_listen_on_all_interfaces_for_containers() -> anyhow::Result<()> {
    let interceptor = Interceptor::builder().route(BAPI_HOST, bapi_router()).bind("0.0.0.0:0".parse()?).start().await?;
    let port = interceptor.local_addr().port();

    assert_eq!(interceptor.proxy_url(), format!("http://127.0.0.1:{port}"));
    let client = client_from_env(&interceptor.env_block(), true)?;
    let (status, _) = get_json(&client, &format!("https://{BAPI_HOST}/v1/jwks")).await?;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn the_env_block_sets_every_proxy_and_ca_variable() -> anyhow::Result<()> {
    let interceptor = start_interceptor().await?;
    let env = interceptor.env_block();
    let ca_file = interceptor.ca_file().to_string_lossy().into_owned();

    for name in PROXY_VARS {
        assert_eq!(env.get(name), Some(interceptor.proxy_url().as_str()), "{name}");
    }
    for name in NO_PROXY_VARS {
        assert_eq!(env.get(name), Some("localhost,127.0.0.1,::1,db"), "{name}");
    }
    for name in CA_VARS {
        assert_eq!(env.get(name), Some(ca_file.as_str()), "{name}");
    }
    assert_eq!(std::fs::read_to_string(&ca_file)?, interceptor.ca().ca_pem());
    assert!(env.to_env_file().contains(&format!("SSL_CERT_FILE={ca_file}\n")));

    let port = interceptor.local_addr().port();
    let container = interceptor.env_block_for_container("host.docker.internal", "/etc/clerk-ca.pem");
    assert_eq!(container.get("HTTPS_PROXY"), Some(format!("http://host.docker.internal:{port}").as_str()));
    assert_eq!(container.get("SSL_CERT_FILE"), Some("/etc/clerk-ca.pem"));
    assert_eq!(container.get("NODE_EXTRA_CA_CERTS"), Some("/etc/clerk-ca.pem"));
    assert_eq!(container.get("no_proxy"), Some("localhost,127.0.0.1,::1,db"));
    Ok(())
}

#[test]
fn the_ca_key_file_is_private_and_removed_on_drop() -> anyhow::Result<()> {
    let ca = CertificateAuthority::new()?;
    let (key_file, dir) = (ca.key_file().to_path_buf(), ca.dir().to_path_buf());

    assert_eq!(mode(&key_file)?, 0o600);
    assert_eq!(mode(&dir)?, 0o700);
    assert!(std::fs::read_to_string(&key_file)?.contains("PRIVATE KEY"));
    drop(ca);

    assert!(!key_file.exists() && !dir.exists(), "{} survived the drop", dir.display());
    Ok(())
}

#[test]
fn the_ca_files_are_removed_when_a_panic_unwinds_through_a_running_interceptor() {
    let seen: Mutex<Option<PathBuf>> = Mutex::new(None);

    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime for the interceptor");
        runtime.block_on(async {
            let interceptor = start_interceptor().await.expect("interceptor starts");
            *seen.lock().expect("not poisoned") = Some(interceptor.ca().dir().to_path_buf());
            assert!(interceptor.ca().key_file().exists());
            panic!("a test fails while the interceptor is running");
        });
    }));

    assert!(outcome.is_err(), "the closure panicked");
    let dir = seen.lock().expect("not poisoned").clone().expect("the CA was created");
    assert!(!dir.exists(), "{} survived the panic", dir.display());
}

#[tokio::test]
async fn shutdown_closes_the_port_and_drop_closes_open_tunnels() -> anyhow::Result<()> {
    let interceptor = start_interceptor().await?;
    let addr = interceptor.local_addr();
    interceptor.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "{addr} still accepts");

    let interceptor = start_interceptor().await?;
    let client = client_from_env(&interceptor.env_block(), true)?;
    let url = format!("https://{FAPI_ALPHA}/.well-known/jwks.json");
    assert_eq!(get_json(&client, &url).await?.0, StatusCode::OK);
    drop(interceptor);

    // The pooled keep-alive tunnel must not keep serving the dropped proxy's routes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while client.get(&url).send().await.is_ok() {
        if tokio::time::Instant::now() > deadline {
            bail!("requests still succeed after the interceptor was dropped");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn mode(path: &Path) -> anyhow::Result<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

// ---------------------------------------------------------------------------------------------
// Python clients: the proof that an unmodified Python backend is routed by the env block alone.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum PythonClient {
    /// `urllib.request` from the standard library, with the system interpreter.
    Urllib,
    /// The same with Python 3.13's stricter default verification flags.
    UrllibStrict,
    /// `httpx.get` from a venv with this exact httpx version.
    Httpx(&'static str),
}

#[rstest]
#[case::urllib_from_the_standard_library(PythonClient::Urllib)]
#[case::urllib_with_python_3_13_strict_verification(PythonClient::UrllibStrict)]
#[case::httpx_0_24(PythonClient::Httpx("0.24.1"))]
#[case::httpx_0_28(PythonClient::Httpx("0.28.1"))]
#[tokio::test(flavor = "multi_thread")]
async fn an_unmodified_python_client_is_routed_by_the_env_block_alone(#[case] client: PythonClient) -> anyhow::Result<()> {
    let interceptor = start_interceptor().await?;
    let bapi = format!("https://{BAPI_HOST}/v1/jwks");
    let fapi = format!("https://{FAPI_ALPHA}/.well-known/jwks.json");
    let unknown = format!("https://{UNKNOWN_HOST}/v1/events");

    let run = run_python(client, interceptor.env_block(), &[&bapi, &fapi, &unknown]).await?;

    run.expect(&bapi, |r| r["status"] == 200 && kid_of_body(r).as_deref() == Some("bapi"))?;
    run.expect(&fapi, |r| r["status"] == 200 && kid_of_body(r).as_deref() == Some("alpha"))?;
    run.expect(&unknown, |r| r["error"].as_str().is_some_and(|e| e.contains("403")))?;
    assert_eq!(interceptor.routed_requests().len(), 2, "{run}");
    assert_eq!(interceptor.blocked_attempts()[0].host, UNKNOWN_HOST, "{run}");
    Ok(())
}

/// Documents which variable each client takes its CA from: without `SSL_CERT_FILE` (the other
/// CA variables still set) none of them trusts the mock. httpx 0.24 and 0.28 both read
/// `SSL_CERT_FILE` (0.28 in `create_ssl_context`, falling back to certifi only when it is
/// unset) and neither reads `REQUESTS_CA_BUNDLE`; urllib gets it through OpenSSL's defaults.
#[rstest]
#[case::urllib_from_the_standard_library(PythonClient::Urllib)]
#[case::httpx_0_24(PythonClient::Httpx("0.24.1"))]
#[case::httpx_0_28(PythonClient::Httpx("0.28.1"))]
#[tokio::test(flavor = "multi_thread")]
async fn a_python_client_without_ssl_cert_file_does_not_trust_the_mock(#[case] client: PythonClient) -> anyhow::Result<()> {
    let interceptor = start_interceptor().await?;
    let env: EnvBlock = interceptor.env_block();
    let without_ssl_cert_file: Vec<(String, String)> = env.into_iter().filter(|(name, _)| name != "SSL_CERT_FILE").collect();
    let fapi = format!("https://{FAPI_ALPHA}/.well-known/jwks.json");

    let run = run_python(client, without_ssl_cert_file, &[&fapi]).await?;

    run.expect(&fapi, |r| r["error"].as_str().is_some_and(|e| e.contains("CERTIFICATE_VERIFY_FAILED")))?;
    let failure = eventually("the handshake failure to be recorded", || interceptor.handshake_failures().into_iter().next()).await?;
    assert!(failure.untrusted_ca, "{failure}\n{run}");
    Ok(())
}

fn kid_of_body(result: &Value) -> Option<String> {
    let body: Value = serde_json::from_str(result["body"].as_str()?).ok()?;
    kid(&body).map(str::to_owned)
}

/// What `tests/python/fetch.py` printed: one result per URL, and its diagnostics.
struct PythonRun {
    client: PythonClient,
    results: Vec<Value>,
    stderr: String,
}

impl PythonRun {
    fn expect(&self, url: &str, check: impl Fn(&Value) -> bool) -> anyhow::Result<()> {
        let result = self.results.iter().find(|r| r["url"] == url);
        match result {
            Some(result) if check(result) => Ok(()),
            _ => bail!("unexpected result for {url}: {result:?}\n{self}"),
        }
    }
}

impl std::fmt::Display for PythonRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:?} results: {:#?}", self.client, self.results)?;
        write!(f, "--- python stderr ---\n{}", self.stderr)
    }
}

/// Runs `fetch.py` with nothing in its environment but `env` and `PATH`.
async fn run_python(
    client: PythonClient,
    env: impl IntoIterator<Item = (impl AsRef<std::ffi::OsStr>, impl AsRef<std::ffi::OsStr>)>,
    urls: &[&str],
) -> anyhow::Result<PythonRun> {
    let (python, client_name) = match client {
        PythonClient::Urllib => (system_python().await?, "urllib"),
        PythonClient::UrllibStrict => (system_python().await?, "urllib-strict"),
        PythonClient::Httpx(version) => (venv_with_httpx(version).await?, "httpx"),
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/fetch.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(client_name)
        .args(["--bearer", SECRET_KEY])
        .args(urls)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env)
        .output()
        .await
        .with_context(|| format!("running {}", python.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        bail!("{} exited with {}\n--- stderr ---\n{stderr}", script.display(), output.status);
    }
    let results = stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<Vec<Value>, _>>()
        .with_context(|| format!("fetch.py printed something else than JSON lines:\n{stdout}"))?;
    Ok(PythonRun { client, results, stderr })
}

/// The absolute path of `python3`: resolved once with the full environment, because version
/// managers' shims do not work under the cleared environment the clients run with.
async fn system_python() -> anyhow::Result<PathBuf> {
    let output = tokio::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .await
        .context("python3 not found on PATH: the Python client tests need it (apt-get install python3 python3-venv)")?;
    if !output.status.success() {
        bail!("python3 failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(PathBuf::from(String::from_utf8(output.stdout)?.trim()))
}

/// The interpreter of a venv with `httpx==version`, created on first use and kept under the
/// cargo target directory, keyed by Python and httpx version.
async fn venv_with_httpx(version: &str) -> anyhow::Result<PathBuf> {
    let python = system_python().await?;
    let python_version = tokio::process::Command::new(&python).args(["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"]).output().await?;
    let python_version = String::from_utf8(python_version.stdout)?.trim().to_owned();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("intercept-python");
    let venv = root.join(format!("py{python_version}-httpx-{version}"));
    let interpreter = venv.join("bin/python");
    if interpreter.exists() {
        return Ok(interpreter);
    }

    // Build next to the final place and rename: a venv is either complete or absent, even
    // when two tests (or two test runs) build the same one at once.
    std::fs::create_dir_all(&root)?;
    let building = tempfile::Builder::new().prefix("building-").tempdir_in(&root)?;
    let steps: [(&Path, Vec<String>); 2] = [
        (&python, vec!["-m".into(), "venv".into(), building.path().to_string_lossy().into()]),
        (
            &building.path().join("bin/python"),
            ["-m", "pip", "install", "--quiet", "--disable-pip-version-check"].into_iter().map(String::from).chain([format!("httpx=={version}")]).collect(),
        ),
    ];
    for (program, args) in steps {
        let output = tokio::process::Command::new(program).args(&args).output().await?;
        if !output.status.success() {
            bail!(
                "{} {} failed (the httpx venvs need python3-venv and PyPI on first run):\n{}",
                program.display(),
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    let built = building.keep();
    if std::fs::rename(&built, &venv).is_err() {
        // Another builder won the race; its venv is as good as ours.
        std::fs::remove_dir_all(&built)?;
    }
    Ok(interpreter)
}

// --- the direct TLS front (issue 11): clients that ignore HTTPS_PROXY ---------------------------

/// A client that never uses a proxy and resolves `hosts` to the front's address, as a backend
/// behind container extra hosts or a private `/etc/hosts` does.
fn direct_client(interceptor: &Interceptor, front: std::net::SocketAddr, hosts: &[&str], trust_ca: bool) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10));
    for host in hosts {
        builder = builder.resolve(host, front);
    }
    if trust_ca {
        builder = builder.tls_built_in_root_certs(false).add_root_certificate(reqwest::Certificate::from_pem(interceptor.ca().ca_pem().as_bytes())?);
    }
    Ok(builder.build()?)
}

#[tokio::test]
async fn the_front_routes_each_clerk_host_by_sni_without_a_proxy() -> anyhow::Result<()> {
    let interceptor = start_interceptor().await?;
    interceptor.add_route(FAPI_BETA, fapi_router("beta"))?;
    let front = interceptor.start_front("127.0.0.1:0".parse()?).await?;
    let client = direct_client(&interceptor, front.local_addr(), &[BAPI_HOST, FAPI_ALPHA, FAPI_BETA], true)?;
    let port = front.local_addr().port();

    let request = client.get(format!("https://{BAPI_HOST}:{port}/v1/jwks")).bearer_auth(SECRET_KEY);
    let response = request.send().await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(kid(&response.json().await?), Some("bapi"));
    let (status, body) = get_json(&client, &format!("https://{FAPI_ALPHA}:{port}/.well-known/jwks.json")).await?;
    assert_eq!((status, kid(&body)), (StatusCode::OK, Some("alpha")));
    let (status, body) = get_json(&client, &format!("https://{FAPI_BETA}:{port}/.well-known/jwks.json")).await?;
    assert_eq!((status, kid(&body)), (StatusCode::OK, Some("beta")));

    assert!(interceptor.routed_requests().iter().all(|r| r.via_front), "{:?}", interceptor.routed_requests());
    let routed: Vec<String> = interceptor.routed_requests().iter().map(ToString::to_string).collect();
    assert_eq!(
        routed,
        [
            format!("GET https://{BAPI_HOST}/v1/jwks -> 200"),
            format!("GET https://{FAPI_ALPHA}/.well-known/jwks.json -> 200"),
            format!("GET https://{FAPI_BETA}/.well-known/jwks.json -> 200"),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn the_front_refuses_and_records_a_name_no_mock_serves() -> anyhow::Result<()> {
    let interceptor = start_interceptor().await?;
    let front = interceptor.start_front("127.0.0.1:0".parse()?).await?;
    let client = direct_client(&interceptor, front.local_addr(), &[UNKNOWN_HOST], true)?;
    let error = client.get(format!("https://{UNKNOWN_HOST}:{}/", front.local_addr().port())).send().await.expect_err("no mock serves it");
    assert!(error.is_connect() || error.is_request(), "{}", error_chain(&error));
    let attempts = eventually("the refusal to be recorded", || Some(interceptor.blocked_attempts()).filter(|a| !a.is_empty())).await?;
    assert_eq!(attempts[0].host, UNKNOWN_HOST);
    assert_eq!(attempts[0].port, front.local_addr().port());
    assert!(interceptor.routed_requests().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_client_of_the_front_without_the_ca_is_recorded_as_a_handshake_failure() -> anyhow::Result<()> {
    let interceptor = start_interceptor().await?;
    let front = interceptor.start_front("127.0.0.1:0".parse()?).await?;
    let client = direct_client(&interceptor, front.local_addr(), &[BAPI_HOST], false)?;
    let error = client.get(format!("https://{BAPI_HOST}:{}/v1/jwks", front.local_addr().port())).send().await.expect_err("untrusted CA");
    assert!(error_chain(&error).to_lowercase().contains("certificate"), "{}", error_chain(&error));
    let failures = eventually("the handshake failure to be recorded", || Some(interceptor.handshake_failures()).filter(|f| !f.is_empty())).await?;
    assert_eq!(failures[0].host, BAPI_HOST);
    assert!(failures[0].untrusted_ca, "{}", failures[0]);
    assert_eq!(failures[0].alert.as_deref(), Some("unknown_ca"), "{}", failures[0]);
    Ok(())
}

#[tokio::test]
async fn dropping_the_front_closes_its_port() -> anyhow::Result<()> {
    let interceptor = start_interceptor().await?;
    let front = interceptor.start_front("127.0.0.1:0".parse()?).await?;
    let addr = front.local_addr();
    front.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "{addr} still accepts connections");
    // The interceptor itself keeps working.
    let client = client_from_env(&interceptor.env_block(), true)?;
    let (status, _) = get_json(&client, &format!("https://{FAPI_ALPHA}/.well-known/jwks.json")).await?;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}
