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

/// Whether Docker tests were asked for (`.ci/run` sets HARNESS_DOCKER_TESTS=1 after building
/// the images); when not, the test prints why it is skipped.
pub fn docker_tests_enabled(test: &str) -> bool {
    let on = std::env::var("HARNESS_DOCKER_TESTS").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("SKIPPED {test}: set HARNESS_DOCKER_TESTS=1 (after .ci/images/build.sh) to run the Docker runtime tests");
    }
    on
}

/// One authenticated request: the SPA's default token on the profile's sync endpoint → the
/// expected status, and exactly the synced row in the backend's database.
pub async fn authenticated_request_syncs_the_user(env: &TestEnv) -> anyhow::Result<()> {
    let email = format!("ada-{}@example.com", harness::process::random_token(8));
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
