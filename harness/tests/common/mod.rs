//! Helpers shared by the harness's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use harness::{GetToken, HarnessConfig, Profile, Runtime, TestEnv};
use mock_clerk::NewUser;

/// Logs to the test output when `RUST_LOG` or `TEST_LOG` is set; silent otherwise.
pub fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = std::env::var("RUST_LOG").or_else(|_| std::env::var("TEST_LOG")).ok();
        if let Some(filter) = filter {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
    });
}

/// Marks a test binary's child process: set by [`run_child`], checked by [`require_child`].
const CHILD_VAR: &str = "CLERK_HARNESS_TEST_CHILD";

/// Runs the `#[ignore]`d test `name` (its name ends in `_child`) of this very test binary in a
/// child process whose environment has `vars` set, and fails with its output unless it passes.
/// How a test gets a process environment of its own without `std::env::set_var` in a
/// multi-threaded test binary.
pub fn run_child(name: &str, vars: &[(&str, &str)]) {
    assert!(name.ends_with("_child"), "child tests end in _child (scripts/test filters them out): {name}");
    let exe = std::env::current_exe().expect("this test binary");
    let mut cmd = Command::new(exe);
    cmd.args(["--ignored", "--exact", name, "--nocapture", "--test-threads=1"]).env(CHILD_VAR, name);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the child test starts");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child test {name} failed ({}):\n{text}", out.status);
    assert!(text.contains("1 passed"), "child test {name} did not run:\n{text}");
}

/// First line of a `_child` test: it only runs inside [`run_child`], with its environment.
pub fn require_child(name: &str) {
    assert_eq!(
        std::env::var(CHILD_VAR).ok().as_deref(),
        Some(name),
        "{name} is the child process of another test (it needs the environment that test gives it): run that test instead"
    );
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Makes sure the reference backend's virtualenv exists (install.sh is idempotent; the lock
/// keeps parallel test binaries from installing twice at once).
pub fn ensure_reference_venv() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let dir = repo_root().join("backends/reference");
        let status = Command::new("flock")
            .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("clerk-harness-reference-install.lock"))
            .arg(dir.join("install.sh"))
            .status()
            .expect("run backends/reference/install.sh (needs flock from util-linux)");
        assert!(status.success(), "backends/reference/install.sh failed: {status}");
    });
}

/// The reference profile, with its virtualenv in place.
pub fn reference_profile() -> Profile {
    init_tracing();
    ensure_reference_venv();
    Profile::reference().expect("profiles/reference.toml is valid")
}

/// Local Postgres, local backend process.
pub fn local_config() -> HarnessConfig {
    HarnessConfig { runtime: Runtime::Local, ..HarnessConfig::default() }
}

/// One authenticated request: the SPA's default token on the profile's sync endpoint → the
/// expected status, and exactly the synced row in the backend's database.
pub async fn authenticated_request_syncs_the_user(env: &TestEnv) -> anyhow::Result<()> {
    let email = format!("ada-{}@example.com", harness::internal::random_token(8));
    let me = env.sign_in(NewUser::with_email(&email).names("Ada", "Lovelace"))?;
    let endpoint = env.profile().sync_endpoints().next().expect("the profile has a sync endpoint");
    let response = env.spa().call(endpoint, &me.session.id, &GetToken::ProfileDefault).await?;
    let status = response.status();
    let body = response.text().await?;
    assert_eq!(status.as_u16(), *endpoint.status.get(), "body: {body}\nlog:\n{}", env.logs().join("\n"));
    let row = env.synced_user(&me.user.id).await?.expect("a synced row");
    assert_eq!(row.clerk_user_id.as_deref(), Some(me.user.id.as_str()));
    assert_eq!(row.email.as_deref(), Some(email.as_str()));
    assert_eq!((row.first_name.as_deref(), row.last_name.as_deref()), (Some("Ada"), Some("Lovelace")));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(env.db()?).await?;
    assert_eq!(count, 1, "a fresh database holds only this user");
    Ok(())
}
