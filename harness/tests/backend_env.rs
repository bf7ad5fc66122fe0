//! What reaches the backend's environment: the profile's `[env]`, `--env` (config
//! `backend_env`) over it, the profile's `inherit_env` from the harness's own environment,
//! `NO_COLOR=1` and `CLICOLOR=0` unless the profile sets them — and nothing else of that
//! environment (a developer's real Clerk key stays out).
//!
//! The backend is a few lines of Python that answer every GET with their environment as JSON.

mod common;

use std::collections::BTreeMap;

use harness::{EnvChanges, HarnessConfig, Profile, Runtime, TestEnv};

/// Serves `os.environ` as JSON on every path; argv: port, host.
const ENV_DUMP: &str = r#"
import http.server, json, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(dict(os.environ)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer((sys.argv[2], int(sys.argv[1])), H).serve_forever()
"#;

fn profile() -> Profile {
    let text = test_profile(
        "envdump",
        &format!(
            r#"inherit_env = ["CLERK_HARNESS_TEST_INHERITED", "CLERK_HARNESS_TEST_NOT_SET"]

[process]
cwd = "."
command = ["python3", "-c", '''{ENV_DUMP}''', "{{port}}", "127.0.0.1"]

[container]
image = "clerk-harness/reference-backend:latest"
port = 8000
command = ["python", "-c", '''{ENV_DUMP}''', "{{port}}", "0.0.0.0"]

[env]
FROM_PROFILE = "profile"
CLICOLOR = "1"
DATABASE_URL = "{{database_url}}""#
        ),
    );
    Profile::parse(&text, "envdump.toml", std::env::temp_dir()).expect("the test profile is valid")
}

/// The harness's own environment, as a developer's shell might have it: the tests below run
/// in a child process with it (no `set_var` in a multi-threaded test binary).
const HARNESS_SHELL: [(&str, &str); 3] = [
    ("CLERK_SECRET_KEY", "sk_live_the_developers_real_key"),
    ("CLERK_HARNESS_TEST_INHERITED", "from the harness's shell"),
    ("CLERK_HARNESS_TEST_UNLISTED", "must not leak"),
];

fn with_cli_env(mut config: HarnessConfig) -> HarnessConfig {
    for arg in ["FROM_CLI=cli", "FROM_PROFILE=overridden by --env", "ASYNC_DB={database_url_asyncpg}", "EMPTY="] {
        config.backend_env.push(harness::parse_env_arg(arg).expect("valid --env"));
    }
    config
}

async fn backend_env(env: &TestEnv) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(env.http().get(env.backend_url().join("/env")?).send().await?.error_for_status()?.json().await?)
}

fn assert_wired(seen: &BTreeMap<String, String>) {
    assert_eq!(seen.get("FROM_CLI").map(String::as_str), Some("cli"), "--env reaches the backend");
    assert_eq!(seen.get("FROM_PROFILE").map(String::as_str), Some("overridden by --env"), "--env wins over [env]");
    assert_eq!(seen.get("EMPTY").map(String::as_str), Some(""), "--env NAME= sets an empty value");
    let db = &seen["DATABASE_URL"];
    assert!(db.starts_with("postgresql://"), "{db}");
    let async_db = &seen["ASYNC_DB"];
    assert_eq!(async_db.strip_prefix("postgresql+asyncpg://"), db.strip_prefix("postgresql://"), "placeholders expand in --env values");
    assert_eq!(seen.get("NO_COLOR").map(String::as_str), Some("1"), "plain log lines are asked for");
    assert_eq!(seen.get("CLICOLOR").map(String::as_str), Some("1"), "unless the profile's [env] says otherwise");
    assert_eq!(seen.get("CLERK_HARNESS_TEST_INHERITED").map(String::as_str), Some("from the harness's shell"), "inherit_env passes a listed variable");
    for absent in ["CLERK_SECRET_KEY", "CLERK_HARNESS_TEST_UNLISTED", "CLERK_HARNESS_TEST_NOT_SET"] {
        assert!(!seen.contains_key(absent), "{absent} leaked into the backend: {:?}", seen.get(absent));
    }
}

#[test]
fn a_process_backend_gets_env_args_and_inherited_variables_and_nothing_else() {
    common::run_child("a_process_backend_env_child", &HARNESS_SHELL);
}

#[test]
#[ignore = "needs Docker and the offline images: scripts/test runs it when Docker answers"]
fn a_container_backend_gets_env_args_and_inherited_variables_and_nothing_else() {
    harness::internal::require_docker_tests();
    common::run_child("a_container_backend_env_child", &HARNESS_SHELL);
}

#[tokio::test]
#[ignore = "child process of a_process_backend_gets_env_args_and_inherited_variables_and_nothing_else"]
async fn a_process_backend_env_child() -> anyhow::Result<()> {
    common::require_child("a_process_backend_env_child");
    assert!(std::env::var_os("CLERK_HARNESS_TEST_NOT_SET").is_none(), "unset CLERK_HARNESS_TEST_NOT_SET in your shell: this test needs it absent");
    common::init_tracing();
    let config = with_cli_env(HarnessConfig { runtime: Runtime::Local, ..HarnessConfig::default() });
    let mut env = TestEnv::builder(profile()).config(config).start().await?;
    assert_eq!(env.backend().map(harness::Backend::kind), Some("process"));
    assert_wired(&backend_env(&env).await?);
    // A scenario's own change (here: a variable removed) still wins over --env.
    env.restart_backend_with(EnvChanges::new().unset("FROM_CLI")).await?;
    let seen = backend_env(&env).await?;
    assert!(!seen.contains_key("FROM_CLI"), "a scenario's unset beats --env");
    assert_eq!(seen.get("FROM_PROFILE").map(String::as_str), Some("overridden by --env"));
    Ok(())
}

#[tokio::test]
#[ignore = "child process of a_container_backend_gets_env_args_and_inherited_variables_and_nothing_else"]
async fn a_container_backend_env_child() -> anyhow::Result<()> {
    common::require_child("a_container_backend_env_child");
    common::init_tracing();
    let mut config = with_cli_env(HarnessConfig::from_env()?);
    config.runtime = Runtime::Docker;
    config.postgres = Some(harness::PostgresMode::Local);
    config.backend = None;
    let env = TestEnv::builder(profile()).config(config).start().await?;
    assert_eq!(env.backend().map(harness::Backend::kind), Some("container"));
    assert_wired(&backend_env(&env).await?);
    Ok(())
}

#[test]
fn env_args_are_validated() {
    for (arg, says) in [
        ("PYTHONPATH", "no `=`"),
        ("=x", "\"\" is not a variable name"),
        ("1X=y", "\"1X\" is not a variable name"),
        ("A-B=y", "\"A-B\" is not a variable name"),
        ("X={databse_url}", "unknown placeholder `{databse_url}`"),
        ("X={oops", "unclosed `{`"),
    ] {
        let err = harness::parse_env_arg(arg).expect_err(arg).to_string();
        assert!(err.contains(says), "{arg}: {err}");
        assert!(err.contains("--env NAME=VALUE"), "{arg}: {err}");
    }
    assert_eq!(harness::parse_env_arg("X=a=b").expect("valid"), ("X".into(), "a=b".into()));
    assert_eq!(harness::parse_env_arg("X={{json}}").expect("valid").1, "{{json}}", "kept as written, expanded at start");
}

#[tokio::test]
async fn ensure_dirs_exist_before_the_setup_steps_too() -> anyhow::Result<()> {
    common::init_tracing();
    let checkout = tempfile::tempdir()?;
    let text = test_profile(
        "dirs",
        &format!(
            r#"[process]
cwd = "{cwd}"
command = ["python3", "-c", '''{ENV_DUMP}''', "{{port}}", "127.0.0.1"]
# Like orientor's `import app.main`, which mounts StaticFiles("static").
setup = [["python3", "-c", "import os, sys; sys.exit(0 if os.path.isdir('static/avatars') else 3)"]]
ensure_dirs = ["static/avatars"]"#,
            cwd = checkout.path().display()
        ),
    );
    let profile = Profile::parse(&text, "dirs.toml", ".")?;
    let env = TestEnv::builder(profile).config(HarnessConfig { runtime: Runtime::Local, ..HarnessConfig::default() }).start().await?;
    assert!(checkout.path().join("static/avatars").is_dir());
    drop(env);
    Ok(())
}

/// Serves `time.time()` and `time.monotonic()` as JSON on every path; argv: port.
const TIME_SERVER: &str = r#"
import http.server, json, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(dict(time=time.time(), monotonic=time.monotonic())).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer((sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

/// A test profile without interception: `name`, then `runs` (top-level keys first, then the
/// `[process]` or `[container]` section and `[env]`), then the same `[token]`, `[cors]` and
/// `[user]` sections for every test here.
fn test_profile(name: &str, runs: &str) -> String {
    format!(
        r#"
name = "{name}"
health_path = "/health"
intercept = false

{runs}

[token]
kind = "session"

[cors]
allowed_origins = ["http://localhost:3000"]

[user]
sql = "SELECT $1::text AS clerk_user_id, NULL::text AS email, NULL::text AS first_name, NULL::text AS last_name"
"#
    )
}

async fn backend_time(env: &TestEnv) -> anyhow::Result<(f64, f64)> {
    let seen: serde_json::Value = env.http().get(env.backend_url().join("/time")?).send().await?.error_for_status()?.json().await?;
    Ok((seen["time"].as_f64().unwrap_or_default(), seen["monotonic"].as_f64().unwrap_or_default()))
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

/// A Python backend runs under libfaketime: `advance` moves its wall and monotonic clocks
/// (and Clerk's) while it runs, and a clock set behind Clerk's is made by moving Clerk's
/// forward, never the backend's back. Needs libfaketime (scripts/test installs it).
#[tokio::test]
async fn a_process_backend_runs_on_the_clock_the_harness_moves() -> anyhow::Result<()> {
    common::init_tracing();
    assert!(harness::internal::find_libfaketime().is_some(), "libfaketime is not installed: apt-get install libfaketime (scripts/test does)");
    let text = test_profile("clock", &format!("[process]\ncwd = \".\"\ncommand = [\"python3\", \"-c\", '''{TIME_SERVER}''', \"{{port}}\"]"));
    let profile = Profile::parse(&text, "clock.toml", std::env::temp_dir())?;
    let config = HarnessConfig { runtime: Runtime::Local, postgres: Some(harness::PostgresMode::None), ..HarnessConfig::default() };
    let env = TestEnv::builder(profile).config(config).start().await?;
    let clock = env.backend_clock();
    assert!(clock.is_controlled(), "{}", clock.describe());
    let (wall, mono) = backend_time(&env).await?;
    assert!((wall - unix_now()).abs() < 60.0, "the backend starts on the real clock: {wall} vs {}", unix_now());
    let clerk_before = env.mock().clock().now_unix();

    clock.advance(std::time::Duration::from_secs(7200))?;
    let (wall2, mono2) = backend_time(&env).await?;
    assert!((wall2 - unix_now() - 7200.0).abs() < 60.0, "wall clock 2 h ahead: {wall2} vs {}", unix_now());
    assert!(mono2 - mono >= 7200.0, "the monotonic clock moves too (caches timed by it expire): {mono} → {mono2}");
    assert!(env.mock().clock().now_unix() - clerk_before >= 7200, "Clerk's clock moved with it");

    clock.set_offset(-30);
    let (wall3, _) = backend_time(&env).await?;
    assert!(wall3 >= wall2, "a skew never moves the backend's clock back: {wall2} → {wall3}");
    let skew = wall3 - env.mock().clock().now_ms() as f64 / 1000.0;
    assert!((skew + 30.0).abs() < 5.0, "the backend's clock is 30 s behind Clerk's: {skew}");
    assert_eq!(clock.offset_ms(), -30_000);
    // libfaketime's shared memory (named after the leader's pid) goes with the backend, also
    // when it dies of SIGTERM's default action as this one does.
    let pid = match env.backend() {
        Some(harness::Backend::Process(process)) => process.pid(),
        other => anyhow::bail!("a process backend: {other:?}"),
    };
    let shm = harness::internal::faketime_shm_files(pid);
    assert!(shm.iter().all(|f| f.exists()), "libfaketime made its shared memory: {shm:?}");
    env.shutdown().await;
    assert!(shm.iter().all(|f| !f.exists()), "left in /dev/shm: {shm:?}");
    Ok(())
}

/// A container backend runs under the same libfaketime (this machine's, mounted): `advance`
/// moves its wall and monotonic clocks while it runs, as for a process.
#[tokio::test]
#[ignore = "needs Docker and the offline images: scripts/test runs it when Docker answers"]
async fn a_container_backend_runs_on_the_clock_the_harness_moves() -> anyhow::Result<()> {
    harness::internal::require_docker_tests();
    common::init_tracing();
    assert!(harness::internal::find_libfaketime().is_some(), "libfaketime is not installed: apt-get install libfaketime (scripts/test does)");
    let text = test_profile(
        "clock-container",
        &format!("[container]\nimage = \"python:3.11-slim\"\nport = 8000\ncommand = [\"python3\", \"-c\", '''{TIME_SERVER}''', \"{{port}}\", \"0.0.0.0\"]"),
    );
    let profile = Profile::parse(&text, "clock-container.toml", std::env::temp_dir())?;
    let config = HarnessConfig { runtime: Runtime::Docker, postgres: Some(harness::PostgresMode::None), ..HarnessConfig::default() };
    let env = TestEnv::builder(profile).config(config).start().await?;
    assert_eq!(env.backend().map(harness::Backend::kind), Some("container"));
    let clock = env.backend_clock();
    assert!(clock.is_controlled(), "{}", clock.describe());
    assert!(clock.describe().contains("mounted into the container"), "{}", clock.describe());
    let (wall, mono) = backend_time(&env).await?;
    assert!((wall - unix_now()).abs() < 60.0, "the container starts on the real clock: {wall} vs {}", unix_now());
    clock.advance(std::time::Duration::from_secs(7200))?;
    let (wall2, mono2) = backend_time(&env).await?;
    assert!((wall2 - unix_now() - 7200.0).abs() < 60.0, "wall clock 2 h ahead inside the container: {wall2} vs {}", unix_now());
    assert!(mono2 - mono >= 7200.0, "the monotonic clock moves too: {mono} → {mono2}");
    clock.advance(std::time::Duration::from_secs(60))?;
    let (wall3, _) = backend_time(&env).await?;
    assert!(wall3 - wall2 >= 60.0, "a second change is seen too (the folder is mounted, not the file): {wall2} → {wall3}");
    Ok(())
}

/// An image the library cannot be preloaded in (here one without any dynamic loader: FROM
/// scratch), or whose program reads the clock without libc (a Go binary), keeps the real
/// clock, and the reason says why; no probe container is left behind.
#[tokio::test]
#[ignore = "needs Docker: scripts/test runs it when Docker answers"]
async fn an_image_without_glibc_keeps_the_real_clock_with_the_reason() -> anyhow::Result<()> {
    harness::internal::require_docker_tests();
    let context = tempfile::tempdir()?;
    std::fs::write(context.path().join("Dockerfile"), "FROM scratch\nCOPY marker /marker\n")?;
    std::fs::write(context.path().join("marker"), "no loader here\n")?;
    let docker = harness::internal::connect().await?;
    harness::internal::ensure_image(&docker, "clerk-harness/test-no-loader:latest", context.path(), "Dockerfile").await?;
    let dir = tempfile::tempdir()?;
    let library = harness::internal::find_libfaketime().expect("libfaketime is installed (scripts/test does)");
    harness::internal::prepare_container_dir(dir.path(), &library)?;
    let reason = harness::internal::probe_faketime("clerk-harness/test-no-loader:latest", dir.path(), None).await.expect_err("no loader, no libfaketime");
    assert!(reason.contains("clerk-harness/test-no-loader:latest") && reason.contains("no glibc dynamic loader"), "{reason}");
    // The stand-in python image (Debian's glibc) can, for its own CMD (python3) as for a
    // command of the profile's.
    harness::internal::probe_faketime("python:3.11-slim", dir.path(), None).await.map_err(anyhow::Error::msg)?;
    harness::internal::probe_faketime("python:3.11-slim", dir.path(), Some("python3")).await.map_err(anyhow::Error::msg)?;
    // A Go server on that same glibc image, reached through PATH and a symbolic link, keeps
    // the real clock (Go reads it without libc).
    let go = tempfile::tempdir()?;
    let mut binary = b"\x7fELF\x02\x01\x01".to_vec();
    binary.resize(64, 0);
    binary.extend_from_slice(b"\xff Go buildinf:\x08\x02");
    std::fs::write(go.path().join("server"), &binary)?;
    std::fs::write(
        go.path().join("Dockerfile"),
        "FROM python:3.11-slim\nCOPY server /app/server\nRUN chmod 755 /app/server && ln -s /app/server /usr/local/bin/server\nENTRYPOINT [\"server\"]\n",
    )?;
    harness::internal::ensure_image(&docker, "clerk-harness/test-go-server:latest", go.path(), "Dockerfile").await?;
    let reason = harness::internal::probe_faketime("clerk-harness/test-go-server:latest", dir.path(), Some("python3")).await.expect_err("a Go entrypoint");
    assert!(reason.contains("/app/server is a Go binary"), "the entrypoint wins over the profile's command, links followed: {reason}");
    let (left, _) = harness::internal::labelled(&docker, &format!("{}={}", harness::internal::OWNER_LABEL, std::process::id())).await?;
    assert!(left.is_empty(), "probe containers left behind: {left:?}");
    Ok(())
}

/// `TestEnv::trial_starts`: several starts at once beside the running backend, each with its
/// own log and outcome; the environment's backend keeps answering, and the trials' lines
/// reach its log afterwards.
#[tokio::test]
async fn trial_starts_judge_each_start_apart_and_leave_the_backend_running() -> anyhow::Result<()> {
    common::init_tracing();
    let guarded = format!("import os, sys\nif not os.environ.get('REQUIRED'):\n    print('REQUIRED is missing', flush=True)\n    sys.exit(3)\n{TIME_SERVER}");
    let text =
        test_profile("trials", &format!("[process]\ncwd = \".\"\ncommand = [\"python3\", \"-c\", '''{guarded}''', \"{{port}}\"]\n\n[env]\nREQUIRED = \"yes\""));
    let profile = Profile::parse(&text, "trials.toml", std::env::temp_dir())?;
    let config = HarnessConfig { runtime: Runtime::Local, postgres: Some(harness::PostgresMode::None), ..HarnessConfig::default() };
    let env = TestEnv::builder(profile).config(config).start().await?;
    let before = env.backend_url().clone();
    let trials = env.trial_starts(vec![EnvChanges::new().unset("REQUIRED"), EnvChanges::new(), EnvChanges::new().unset("REQUIRED")]).await?;
    assert_eq!(trials.len(), 3);
    for i in [0, 2] {
        assert!(matches!(&trials[i].result, Err(harness::HarnessError::BackendExited { status, .. }) if status.contains('3')), "{:?}", trials[i].result);
        assert!(trials[i].log.iter().any(|l| l.contains("REQUIRED is missing")), "{:?}", trials[i].log);
    }
    assert!(trials[1].result.is_ok(), "{:?}", trials[1].result);
    assert!(!trials[1].log.iter().any(|l| l.contains("REQUIRED is missing")), "a trial's log is its own: {:?}", trials[1].log);
    assert_eq!(env.backend_url(), &before, "the environment's backend is not replaced");
    backend_time(&env).await?;
    assert_eq!(env.logs().iter().filter(|l| l.contains("REQUIRED is missing")).count(), 2, "the trials' lines reach the environment's log");
    Ok(())
}

/// A restart overlaps the old process's stop with the new start; a backend that holds a lock
/// of its own (here a lock file, kept for a second after SIGTERM) refuses to start while the
/// old one runs, and the restart then starts it once more, alone, instead of failing.
#[tokio::test]
async fn a_restart_that_collides_with_the_old_process_is_tried_again_alone() -> anyhow::Result<()> {
    common::init_tracing();
    let dir = tempfile::tempdir()?;
    let lock = dir.path().join("backend.lock");
    let guarded = format!(
        "import fcntl, signal, sys, time\nheld = open({lock:?}, 'w')\ntry:\n    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept OSError:\n    print('the lock is held by another instance', flush=True)\n    sys.exit(4)\n\
         def slow_exit(*_):\n    time.sleep(1)\n    sys.exit(0)\nsignal.signal(signal.SIGTERM, slow_exit)\n{TIME_SERVER}",
        lock = lock.display().to_string()
    );
    let text = test_profile("locked", &format!("[process]\ncwd = \".\"\ncommand = [\"python3\", \"-c\", '''{guarded}''', \"{{port}}\"]"));
    let profile = Profile::parse(&text, "locked.toml", std::env::temp_dir())?;
    let config = HarnessConfig { runtime: Runtime::Local, postgres: Some(harness::PostgresMode::None), ..HarnessConfig::default() };
    let mut env = TestEnv::builder(profile).config(config).start().await?;
    let first = env.backend_url().clone();
    env.restart_backend_with(EnvChanges::new()).await?;
    assert_ne!(env.backend_url(), &first, "a new process on another port");
    backend_time(&env).await?;
    assert!(env.logs().iter().any(|l| l.contains("the lock is held by another instance")), "the overlapped start collided first: {:?}", env.logs());
    Ok(())
}
