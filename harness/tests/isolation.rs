//! Nothing is left behind when a test panics mid-scenario, and two test processes running
//! at once do not collide. Each case re-runs this test binary as a child process (the child
//! tests below do nothing unless HARNESS_ISOLATION_CHILD is set).

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use harness::{HarnessConfig, Runtime, TestEnv};

const CHILD_FLAG: &str = "HARNESS_ISOLATION_CHILD";

fn child_config() -> HarnessConfig {
    let mut config = common::local_config();
    if std::env::var("HARNESS_ISOLATION_RUNTIME").as_deref() == Ok("docker") {
        config.runtime = Runtime::Docker;
        config.postgres_image.get_or_insert_with(|| "clerk-harness/postgres:15".into());
    }
    config
}

/// Child: brings an environment up, makes one request, reports what it started, panics.
#[tokio::test]
async fn child_panics_mid_scenario() -> anyhow::Result<()> {
    if std::env::var(CHILD_FLAG).is_err() {
        return Ok(());
    }
    let env = TestEnv::builder(common::reference_profile()).config(child_config()).start().await?;
    common::authenticated_request_syncs_the_user(&env).await?;
    let backend_pid = match env.backend() {
        Some(harness::Backend::Process(p)) => p.pid().to_string(),
        _ => String::new(),
    };
    let postgres_pid = env.database().expect("a database").server().local().map(|l| l.pid().to_string()).unwrap_or_default();
    println!("STARTED backend_pid={backend_pid} postgres_pid={postgres_pid}");
    panic!("deliberate panic mid-scenario");
}

/// Child: one authenticated request end to end.
#[tokio::test]
async fn child_runs_one_scenario() -> anyhow::Result<()> {
    if std::env::var(CHILD_FLAG).is_err() {
        return Ok(());
    }
    let env = TestEnv::builder(common::reference_profile()).config(child_config()).start().await?;
    common::authenticated_request_syncs_the_user(&env).await?;
    println!("SCENARIO OK backend={}", env.backend_url());
    Ok(())
}

fn spawn_child(test: &str, tmp: &Path, runtime: &str) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary path"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_FLAG, "1")
        .env("HARNESS_ISOLATION_RUNTIME", runtime)
        .env("TMPDIR", tmp)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the child test process")
}

fn text(output: &Output) -> String {
    format!("--- stdout ---\n{}\n--- stderr ---\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Processes whose command line or environment mentions `needle` (root can read both).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let mentions =
            ["cmdline", "environ"].iter().any(|f| std::fs::read(entry.path().join(f)).is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(needle)));
        if mentions {
            found.push(pid);
        }
    }
    found
}

async fn containers_of(pid: u32) -> Vec<String> {
    let docker = harness::internal::connect().await.expect("Docker answers");
    harness::internal::containers_of(&docker, pid).await.expect("list containers")
}

async fn panicking_child_leaves_nothing_behind(runtime: &str) {
    let tmp = tempfile::tempdir().expect("a private TMPDIR for the child");
    let needle = tmp.path().display().to_string();
    assert!(processes_mentioning(&needle).is_empty(), "before: nothing uses {needle}");
    let child = spawn_child("child_panics_mid_scenario", tmp.path(), runtime);
    let child_pid = child.id();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("child output");
    let log = text(&output);
    assert!(!output.status.success(), "the child must fail by its panic\n{log}");
    assert!(log.contains("deliberate panic mid-scenario"), "the child panicked where intended\n{log}");
    let started = log.lines().find_map(|l| l.split_once("STARTED ")).unwrap_or_else(|| panic!("the child reported its processes\n{log}")).1;

    for field in started.split_whitespace() {
        let pid = field.split('=').nth(1).unwrap_or_default();
        if !pid.is_empty() {
            assert!(!Path::new("/proc").join(pid).exists(), "{field} still runs after the child exited\n{log}");
        }
    }
    // The child's watchdog finishes the teardown after the child is gone: poll with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !processes_mentioning(&needle).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(processes_mentioning(&needle), Vec::<u32>::new(), "after: processes still use the child's TMPDIR\n{log}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).expect("read TMPDIR").flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "temp files left in the child's TMPDIR: {left:?}\n{log}");
    if runtime == "docker" {
        assert_eq!(containers_of(child_pid).await, Vec::<String>::new(), "containers left by the child\n{log}");
    }
}

#[tokio::test]
async fn a_panic_mid_scenario_leaves_no_process_or_temp_dir() {
    common::ensure_reference_venv();
    panicking_child_leaves_nothing_behind("local").await;
}

#[tokio::test]
#[ignore = "needs Docker and the offline images: scripts/test runs it when Docker answers"]
async fn a_panic_mid_scenario_leaves_no_container() {
    harness::internal::require_docker_tests();
    panicking_child_leaves_nothing_behind("docker").await;
}

async fn two_processes_at_once(runtime: &str) {
    common::ensure_reference_venv();
    let tmp = tempfile::tempdir().expect("TMPDIR");
    let children: Vec<_> = (0..2).map(|_| spawn_child("child_runs_one_scenario", tmp.path(), runtime)).collect();
    let outputs =
        tokio::task::spawn_blocking(move || children.into_iter().map(|c| c.wait_with_output().expect("output")).collect::<Vec<_>>()).await.expect("join");
    let mut urls = Vec::new();
    for output in &outputs {
        let log = text(output);
        assert!(output.status.success(), "a child failed while another ran beside it\n{log}");
        let line = log.lines().find_map(|l| l.split_once("SCENARIO OK ")).unwrap_or_else(|| panic!("no OK line\n{log}")).1.to_owned();
        urls.push(line);
    }
    assert_ne!(urls[0], urls[1], "each process has its own backend");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn two_test_processes_at_once_do_not_collide() {
    two_processes_at_once("local").await;
}

#[tokio::test]
#[ignore = "needs Docker and the offline images: scripts/test runs it when Docker answers"]
async fn two_test_processes_at_once_do_not_collide_in_docker() {
    harness::internal::require_docker_tests();
    two_processes_at_once("docker").await;
}
