//! Docker runtime end to end: Postgres from testcontainers, the reference backend's image as a
//! container reaching the mock and the proxy through the host gateway.
//!
//! Gated by HARNESS_DOCKER_TESTS=1 (set by .ci/run after building the images); when set, a
//! missing daemon or image FAILS the test with the harness's actionable error.

mod common;

use harness::{HarnessConfig, Runtime, TestEnv};

fn docker_config() -> HarnessConfig {
    let mut config = HarnessConfig::from_env().expect("HARNESS_* variables are valid");
    config.runtime = Runtime::Docker;
    config.postgres = None;
    config.backend = None;
    config.postgres_image.get_or_insert_with(|| "clerk-harness/postgres:15".into());
    config
}

#[tokio::test]
async fn docker_postgres_and_container_backend_sync_a_user() -> anyhow::Result<()> {
    if !common::docker_tests_enabled("docker_postgres_and_container_backend_sync_a_user") {
        return Ok(());
    }
    common::init_tracing();
    let profile = harness::Profile::reference()?;
    let env = TestEnv::builder(profile).config(docker_config()).start().await?;
    assert_eq!(env.database().server().kind(), "docker");
    assert_eq!(env.backend().map(harness::Backend::kind), Some("container"));
    common::authenticated_request_syncs_the_user(&env).await?;
    assert!(env.logs().iter().any(|l| l.contains("Uvicorn running")), "container logs are captured: {:?}", env.logs());
    Ok(())
}
