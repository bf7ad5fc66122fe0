//! Start-up failures a user can cause are errors that say what happened and what to do.

mod common;

use harness::internal::{BinSearch, LocalPostgres};
use harness::{EnvChanges, HarnessConfig, HarnessError, PostgresMode, TestEnv};

#[tokio::test]
async fn missing_postgres_binaries_say_where_the_harness_looked_and_what_to_do() {
    let search = BinSearch { bin_dir: Some("/nonexistent/pg/bin".into()), path: Some("".into()), install_root: Some("/nonexistent/postgresql".into()) };
    let err = LocalPostgres::start(&search, None).await.expect_err("no binaries there");
    assert!(matches!(err, HarnessError::PostgresBinariesNotFound { .. }), "{err:?}");
    let message = err.to_string();
    for needle in
        ["/nonexistent/pg/bin (HARNESS_PG_BIN_DIR)", "PATH (empty)", "/nonexistent/postgresql/*/bin", "apt-get install postgresql", "HARNESS_POSTGRES=docker"]
    {
        assert!(message.contains(needle), "missing {needle:?} in: {message}");
    }
}

#[tokio::test]
async fn missing_postgres_binaries_surface_through_test_env() {
    let config = HarnessConfig {
        postgres: Some(PostgresMode::Local),
        pg_bin_dir: Some("/nonexistent/pg/bin".into()),
        search_path: Some("".into()),
        pg_install_root: Some("/nonexistent/postgresql".into()),
        ..common::local_config()
    };
    let err = TestEnv::builder(common::reference_profile()).config(config).start().await.expect_err("no binaries");
    assert!(matches!(err, HarnessError::PostgresBinariesNotFound { .. }), "{err}");
}

#[tokio::test]
async fn a_backend_that_exits_on_start_reports_its_exit_code_and_log() -> anyhow::Result<()> {
    // The reference backend refuses to start without its secret key (exit 2, variable named).
    let err = TestEnv::builder(common::reference_profile())
        .config(common::local_config())
        .env(EnvChanges::new().unset("CLERK_SECRET_KEY"))
        .start()
        .await
        .expect_err("the backend must refuse to start");
    let HarnessError::BackendExited { status, log_tail, .. } = &err else { panic!("expected BackendExited, got {err}") };
    assert_eq!(status, "exit code 2", "{err}");
    assert!(log_tail.contains("CLERK_SECRET_KEY is not set"), "{err}");
    assert!(err.to_string().contains("last lines of its log"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_restart_that_fails_leaves_the_error_and_a_working_restart_recovers() -> anyhow::Result<()> {
    let mut env = TestEnv::builder(common::reference_profile()).config(common::local_config()).start().await?;
    let err = env.restart_backend_with(EnvChanges::new().set("REFERENCE_FAULTS", "no_such_fault")).await.expect_err("bad fault name");
    assert!(matches!(err, HarnessError::BackendExited { .. }), "{err}");
    assert!(err.to_string().contains("unknown fault(s) no_such_fault"), "{err}");
    assert!(env.backend().is_none());
    env.restart_backend_with(EnvChanges::new()).await?;
    common::authenticated_request_syncs_the_user(&env).await
}

#[tokio::test]
async fn a_missing_backend_program_points_at_the_install_hint() {
    let mut profile = common::reference_profile();
    let process = profile.process.as_mut().expect("reference has [process]");
    process.command[0] = harness::Located::new(".venv/bin/no-such-python".to_owned());
    let err = TestEnv::builder(profile).config(common::local_config()).start().await.expect_err("no program");
    assert!(matches!(err, HarnessError::BackendProgramNotFound { .. }), "{err}");
    assert!(err.to_string().contains("backends/reference/install.sh"), "{err}");
}

#[tokio::test]
async fn an_external_backend_cannot_be_restarted() -> anyhow::Result<()> {
    // A backend started by one env serves as the "already running" backend of another.
    let owner = TestEnv::builder(common::reference_profile()).config(common::local_config()).start().await?;
    let config = HarnessConfig { backend: Some(harness::BackendMode::Url), backend_url: Some(owner.backend_url().clone()), ..common::local_config() };
    let mut env = TestEnv::builder(common::reference_profile()).config(config).start().await?;
    let err = env.restart_backend_with(EnvChanges::new().unset("CLERK_SECRET_KEY")).await.expect_err("not restartable");
    assert!(matches!(err, HarnessError::NotApplicable(_)), "{err}");
    assert!(err.to_string().contains("HARNESS_BACKEND_URL"), "{err}");
    Ok(())
}
