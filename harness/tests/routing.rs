//! Routing by name (issue 11): a backend whose HTTP client ignores `HTTPS_PROXY` (the fixture
//! `tests/fixtures/direct-client`, which fetches `https://api.clerk.com/v1/jwks` like Clerk's
//! Python SDK) reaches the mock through the TLS front, in the local runtime (as root: private
//! mount namespace) and in the docker runtime (per-run network, image built from the fixture's
//! own `FROM python:3.11-slim` Dockerfile); with routing switched off, the harness names the
//! host the backend could not reach.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::internal::ensure_image;
use harness::{GetToken, HarnessConfig, PostgresMode, Profile, Runtime, TestEnv};
use mock_clerk::NewUser;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/direct-client")
}

fn fixture_profile() -> Profile {
    common::init_tracing();
    Profile::from_file(fixture_dir().join("profile.toml")).expect("the fixture profile is valid")
}

fn docker_config() -> HarnessConfig {
    HarnessConfig { runtime: Runtime::Docker, postgres_image: Some("clerk-harness/postgres:15".into()), ..HarnessConfig::default() }
}

/// `GET /me` with a fresh user's session token: (status, body).
async fn call_me(env: &TestEnv) -> anyhow::Result<(u16, String)> {
    let me = env.sign_in(NewUser::with_email(&format!("ada-{}@example.com", harness::internal::random_token(6))))?;
    let token = env.spa().get_token(&me.session.id, &GetToken::Session)?;
    let response = env.spa().get("/me").bearer_auth(token).send().await?;
    Ok((response.status().as_u16(), format!("{} (user {})", response.text().await?, me.user.id)))
}

/// Polls `probe` until it returns `Some` (the backend's log is pumped asynchronously).
async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = probe() {
            return Ok(found);
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The fixture, served through the front: 200 with the user's id, the JWKS call recorded as
/// coming through the front (not the proxy), and no diagnosis.
async fn assert_reaches_the_mock_by_name(env: &TestEnv, client: &str) -> anyhow::Result<()> {
    let routing = env.name_routing();
    assert!(routing.is_active(), "name routing is off: {}", routing.reason());
    let mark = env.log_mark();
    let (status, body) = call_me(env).await?;
    assert_eq!(status, 200, "{body}\nlog:\n{}", env.logs().join("\n"));
    assert!(body.contains("\"sub\": \"user_"), "{body}");
    // Every call of the run: an SDK that caches the JWKS fetched it at the bring-up probe.
    let calls = env.interceptor().routed_requests();
    assert!(
        calls.iter().any(|c| c.host == "api.clerk.com" && c.path == "/v1/jwks" && c.status == 200 && c.via_front),
        "the mock did not see the JWKS call through the front: {calls:?}"
    );
    assert!(calls.iter().all(|c| c.via_front), "a call came through the proxy, which this client must ignore: {calls:?}");
    assert!(env.logs().iter().any(|l| l.contains(client)), "the backend did not use {client}:\n{}", env.logs().join("\n"));
    assert_eq!(env.outbound_diagnosis(mark), None);
    Ok(())
}

#[tokio::test]
async fn local_runtime_as_root_routes_a_client_that_ignores_the_proxy() -> anyhow::Result<()> {
    let env = TestEnv::builder(fixture_profile()).config(common::local_config()).start().await?;
    if nix::unistd::geteuid().is_root() {
        assert!(env.name_routing().reason().contains("private /etc/hosts"), "{}", env.name_routing().reason());
        assert!(env.name_routing().front_addr().is_some_and(|a| a.ip().is_loopback() && a.port() == 443));
        assert_reaches_the_mock_by_name(&env, "urllib with ProxyHandler({})").await
    } else {
        // Without root the backend's /etc/hosts cannot be replaced: the harness says so.
        assert!(!env.name_routing().is_active());
        assert!(env.name_routing().reason().contains("without root"), "{}", env.name_routing().reason());
        Ok(())
    }
}

#[tokio::test]
async fn with_name_routing_off_the_unreached_host_is_named_with_the_fix() -> anyhow::Result<()> {
    let config = HarnessConfig { no_name_routing: true, ..common::local_config() };
    let env = TestEnv::builder(fixture_profile()).config(config).start().await?;
    assert!(!env.name_routing().is_active());
    assert!(env.name_routing().reason().contains("switched off"), "{}", env.name_routing().reason());
    let mark = env.log_mark();
    let started = Instant::now();
    let (status, body) = call_me(&env).await?;
    // This machine has no route to api.clerk.com (the harness runs offline): the fixture's
    // client fails to connect, logs it, and answers 502.
    assert_eq!(status, 502, "{body}");
    let unreached = eventually("the diagnosis", || env.outbound_diagnosis(mark))
        .await
        .map_err(|e| e.context(format!("log since the request:\n{}", env.log_lines_since(mark).join("\n"))))?;
    assert_eq!(unreached.host, "api.clerk.com", "{unreached}");
    assert!(!unreached.name_routing_active);
    assert!(unreached.evidence_line.contains("api.clerk.com"), "{unreached}");
    assert!(unreached.fix().contains("--runtime docker") && unreached.fix().contains("CLERK_JWT_KEY"), "{}", unreached.fix());
    assert!(env.clerk_calls_since(mark).is_empty(), "the mock saw a call: {:?}", env.clerk_calls_since(mark));
    eprintln!("diagnosed in {:?}: {unreached}\nfix: {}", started.elapsed(), unreached.fix());
    Ok(())
}

#[tokio::test]
async fn the_pem_public_key_placeholder_is_the_instance_signing_key() -> anyhow::Result<()> {
    let profile = fixture_profile();
    let text = std::fs::read_to_string(fixture_dir().join("profile.toml"))?
        .replace("CLERK_SECRET_KEY = \"{secret_key}\"", "CLERK_SECRET_KEY = \"{secret_key}\"\nCLERK_JWT_KEY = \"{pem_public_key}\"");
    let profile = Profile::parse(&text, "direct-client+pem.toml", &profile.source.base_dir)?;
    let env = TestEnv::builder(profile).config(common::local_config()).start().await?;
    // The backend's environment, as the backend itself sees it.
    let pid = match env.backend() {
        Some(harness::Backend::Process(p)) => p.pid(),
        other => anyhow::bail!("expected a process backend, got {other:?}"),
    };
    let environ = std::fs::read(format!("/proc/{pid}/environ"))?;
    let value = environ.split(|b| *b == 0).find_map(|kv| kv.strip_prefix(b"CLERK_JWT_KEY=")).map(|v| String::from_utf8_lossy(v).into_owned());
    assert_eq!(value.as_deref(), Some(env.mock().instance().pem_public_key().as_str()));
    assert!(value.is_some_and(|v| v.starts_with("-----BEGIN PUBLIC KEY-----\n")));
    Ok(())
}

#[tokio::test]
#[ignore = "needs Docker and the offline images: scripts/test runs it when Docker answers"]
async fn docker_runtime_builds_the_backend_from_its_dockerfile_and_routes_its_client_by_name() -> anyhow::Result<()> {
    harness::internal::require_docker_tests();
    let env = TestEnv::builder(fixture_profile()).config(docker_config()).start().await?;
    assert_eq!(env.choice().postgres, PostgresMode::Docker);
    assert!(env.name_routing().reason().starts_with("docker: network clerk-harness-"), "{}", env.name_routing().reason());
    assert_reaches_the_mock_by_name(&env, "httpx 0.27.2 with an explicit transport").await?;
    let network = env.name_routing().container_network().map(|(n, _)| n.to_owned()).expect("a per-run network");
    drop(env);
    let docker = harness::internal::connect().await?;
    let gone = docker.inspect_network(&network, None).await.is_err();
    assert!(gone, "the per-run network {network} outlived the environment");
    Ok(())
}

#[tokio::test]
#[ignore = "needs Docker and the offline images: scripts/test runs it when Docker answers"]
async fn docker_runtime_with_name_routing_off_names_the_unreached_host() -> anyhow::Result<()> {
    harness::internal::require_docker_tests();
    let config = HarnessConfig { no_name_routing: true, ..docker_config() };
    let env = TestEnv::builder(fixture_profile()).config(config).start().await?;
    let mark = env.log_mark();
    let (status, body) = call_me(&env).await?;
    assert_eq!(status, 502, "{body}");
    let unreached = eventually("the diagnosis", || env.outbound_diagnosis(mark)).await?;
    assert_eq!(unreached.host, "api.clerk.com", "{unreached}");
    assert!(env.clerk_calls_since(mark).is_empty());
    Ok(())
}

#[tokio::test]
#[ignore = "needs Docker and the offline images: scripts/test runs it when Docker answers"]
async fn an_unchanged_context_reuses_the_image_and_a_changed_one_rebuilds_it() -> anyhow::Result<()> {
    harness::internal::require_docker_tests();
    let docker = harness::internal::connect().await?;
    let context = tempfile::tempdir()?;
    for file in ["app.py", "requirements.txt", "Dockerfile"] {
        std::fs::copy(fixture_dir().join(file), context.path().join(file))?;
    }
    let image = format!("clerk-harness/test-build-{}:local", harness::internal::random_token(6));
    let id = |image: String| {
        let docker = docker.clone();
        async move { docker.inspect_image(&image).await.map(|i| i.id.unwrap_or_default()) }
    };
    let first = ensure_image(&docker, &image, context.path(), "Dockerfile").await?;
    assert!(!first.reused);
    let first_id = id(image.clone()).await?;
    let again = ensure_image(&docker, &image, context.path(), "Dockerfile").await?;
    assert!(again.reused, "an unchanged context must not be rebuilt");
    assert_eq!(id(image.clone()).await?, first_id);
    std::fs::write(context.path().join("app.py"), std::fs::read_to_string(context.path().join("app.py"))? + "\n# changed\n")?;
    let changed = ensure_image(&docker, &image, context.path(), "Dockerfile").await?;
    assert!(!changed.reused);
    assert_ne!(changed.inputs, first.inputs);
    let changed_id = id(image.clone()).await?;
    assert_ne!(changed_id, first_id);
    // The replaced image was pruned; remove ours.
    assert!(docker.inspect_image(&first_id).await.is_err(), "the replaced image {first_id} is still there");
    docker.remove_image(&image, None::<testcontainers::bollard::query_parameters::RemoveImageOptions>, None).await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs Docker and the offline images: scripts/test runs it when Docker answers"]
async fn docker_runtime_serves_clerks_official_python_sdk_with_the_secret_key() -> anyhow::Result<()> {
    harness::internal::require_docker_tests();
    let profile = Profile::from_file(fixture_dir().join("../clerk-sdk/profile.toml"))?;
    let env = TestEnv::builder(profile).config(docker_config()).start().await?;
    assert_reaches_the_mock_by_name(&env, "clerk-sdk backend on").await
}
