//! Docker unreachable: `docker` mode fails with an error that says how to fix it or to use
//! `local`; `auto` falls back to local and says why. Each case runs in a child process whose
//! DOCKER_HOST points at a dead socket (no `set_var` in a multi-threaded test binary).

mod common;

use harness::{HarnessConfig, HarnessError, Runtime};

const DEAD_SOCKET: &str = "unix:///nonexistent/clerk-harness/docker.sock";

#[test]
fn docker_mode_with_docker_down_says_how_to_fix_it() {
    common::run_child("docker_mode_with_docker_down_child", &[("DOCKER_HOST", DEAD_SOCKET)]);
}

#[test]
fn auto_mode_with_docker_down_chooses_local_and_says_why() {
    common::run_child("auto_mode_with_docker_down_child", &[("DOCKER_HOST", DEAD_SOCKET)]);
}

#[tokio::test]
#[ignore = "child process of docker_mode_with_docker_down_says_how_to_fix_it"]
async fn docker_mode_with_docker_down_child() {
    common::require_child("docker_mode_with_docker_down_child");
    let config = HarnessConfig { runtime: Runtime::Docker, ..HarnessConfig::default() };
    let err = harness::TestEnv::builder(common::reference_profile()).config(config).start().await.expect_err("Docker is down");
    assert!(matches!(err, HarnessError::DockerUnavailable { .. }), "{err:?}");
    let message = err.to_string();
    for needle in [DEAD_SOCKET, "Start the daemon", "DOCKER_HOST", "HARNESS_RUNTIME=local"] {
        assert!(message.contains(needle), "missing {needle:?} in: {message}");
    }
}

#[tokio::test]
#[ignore = "child process of auto_mode_with_docker_down_chooses_local_and_says_why"]
async fn auto_mode_with_docker_down_child() -> anyhow::Result<()> {
    common::require_child("auto_mode_with_docker_down_child");
    let choice = harness::internal::choose(&HarnessConfig::default(), &common::reference_profile()).await?;
    assert_eq!(choice.postgres, harness::PostgresMode::Local);
    assert_eq!(choice.backend, harness::BackendMode::Local);
    assert!(choice.reason.contains("Docker unreachable"), "{}", choice.reason);
    Ok(())
}
