//! Docker unreachable: `docker` mode fails with an error that says how to fix it or to use
//! `local`; `auto` falls back to local and says why. Its own test binary, because it points
//! DOCKER_HOST at a dead socket for the whole process.

mod common;

use harness::{HarnessConfig, HarnessError, Runtime};

const DEAD_SOCKET: &str = "unix:///nonexistent/clerk-harness/docker.sock";

fn point_docker_at_a_dead_socket() {
    // Every test here sets the same value before touching Docker.
    std::env::set_var("DOCKER_HOST", DEAD_SOCKET);
}

#[tokio::test]
async fn docker_mode_with_docker_down_says_how_to_fix_it() {
    point_docker_at_a_dead_socket();
    let config = HarnessConfig { runtime: Runtime::Docker, ..HarnessConfig::default() };
    let err = harness::TestEnv::builder(common::reference_profile()).config(config).start().await.expect_err("Docker is down");
    assert!(matches!(err, HarnessError::DockerUnavailable { .. }), "{err:?}");
    let message = err.to_string();
    for needle in [DEAD_SOCKET, "Start the daemon", "DOCKER_HOST", "HARNESS_RUNTIME=local"] {
        assert!(message.contains(needle), "missing {needle:?} in: {message}");
    }
}

#[tokio::test]
async fn auto_mode_with_docker_down_chooses_local_and_says_why() -> anyhow::Result<()> {
    point_docker_at_a_dead_socket();
    let choice = harness::runtime::choose(&HarnessConfig::default(), &common::reference_profile()).await?;
    assert_eq!(choice.postgres, harness::PostgresMode::Local);
    assert_eq!(choice.backend, harness::BackendMode::Local);
    assert!(choice.reason.contains("Docker unreachable"), "{}", choice.reason);
    Ok(())
}
