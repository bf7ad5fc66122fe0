//! Docker runtime end to end: Postgres from testcontainers, the reference backend's image as a
//! container reaching the mock and the proxy through the host gateway.
//!
//! `#[ignore]`d: a plain `cargo test` lists them as ignored; `scripts/test` runs them (with
//! HARNESS_DOCKER_TESTS=1) when Docker answers, and then a missing daemon or image FAILS the
//! test with the harness's actionable error.

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
#[ignore = "needs Docker and the offline images: scripts/test runs it when Docker answers"]
async fn docker_postgres_and_container_backend_sync_a_user() -> anyhow::Result<()> {
    harness::internal::require_docker_tests();
    common::init_tracing();
    let profile = harness::Profile::reference()?;
    let env = TestEnv::builder(profile).config(docker_config()).start().await?;
    assert_eq!(env.database().expect("a database").server().kind(), "docker");
    assert_eq!(env.backend().map(harness::Backend::kind), Some("container"));
    common::authenticated_request_syncs_the_user(&env).await?;
    assert!(env.logs().iter().any(|l| l.contains("Uvicorn running")), "container logs are captured: {:?}", env.logs());
    Ok(())
}

#[tokio::test]
#[ignore = "needs Docker and the offline images: scripts/test runs it when Docker answers"]
async fn auto_prefers_docker_when_the_daemon_answers_and_the_images_are_present() -> anyhow::Result<()> {
    harness::internal::require_docker_tests();
    let config = HarnessConfig { postgres_image: Some("clerk-harness/postgres:15".into()), ..HarnessConfig::default() };
    let choice = harness::internal::choose(&config, &harness::Profile::reference()?).await?;
    assert_eq!((choice.postgres, choice.backend), (harness::PostgresMode::Docker, harness::BackendMode::Docker), "{}", choice.reason);
    assert!(choice.reason.starts_with("clerk-harness: HARNESS_RUNTIME=auto chose postgres: docker (clerk-harness/postgres:15 present)"), "{}", choice.reason);
    // An image that is not there sends that piece to the local runtime, saying so.
    let config = HarnessConfig { backend_image: Some("clerk-harness/no-such-image:1".into()), ..config };
    let choice = harness::internal::choose(&config, &harness::Profile::reference()?).await?;
    assert_eq!(choice.backend, harness::BackendMode::Local);
    assert!(choice.reason.contains("backend: local process (image clerk-harness/no-such-image:1 not present)"), "{}", choice.reason);
    Ok(())
}

#[tokio::test]
#[ignore = "needs Docker and the offline images: scripts/test runs it when Docker answers"]
async fn docker_mode_with_a_missing_image_says_how_to_build_it() -> anyhow::Result<()> {
    harness::internal::require_docker_tests();
    let config = HarnessConfig { backend_image: Some("clerk-harness/no-such-image:1".into()), ..docker_config() };
    let err = TestEnv::builder(harness::Profile::reference()?).config(config).start().await.expect_err("image missing");
    assert!(matches!(err, harness::HarnessError::ImageMissing { .. }), "{err}");
    assert!(err.to_string().contains(".ci/images/build.sh"), "{err}");
    Ok(())
}

#[tokio::test]
#[ignore = "needs Docker and the offline images: scripts/test runs it when Docker answers"]
async fn a_container_backend_that_exits_on_start_reports_its_exit_code_and_log() -> anyhow::Result<()> {
    harness::internal::require_docker_tests();
    let err = TestEnv::builder(harness::Profile::reference()?)
        .config(docker_config())
        .env(harness::EnvChanges::new().unset("CLERK_SECRET_KEY"))
        .start()
        .await
        .expect_err("the backend must refuse to start");
    let harness::HarnessError::BackendExited { status, log_tail, .. } = &err else { panic!("expected BackendExited, got {err}") };
    assert_eq!(status, "exit code 2", "{err}");
    assert!(log_tail.contains("CLERK_SECRET_KEY is not set"), "{err}");
    Ok(())
}
