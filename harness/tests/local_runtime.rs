//! Local runtime end to end: Postgres from the machine's binaries, the reference backend as a
//! process; and an "external" database given by URL.

mod common;

use common::authenticated_request_syncs_the_user;
use harness::{HarnessConfig, PostgresMode, TestEnv};

#[tokio::test]
async fn local_postgres_and_process_backend_sync_a_user() -> anyhow::Result<()> {
    let env = TestEnv::builder(common::reference_profile()).config(common::local_config()).start().await?;
    assert_eq!(env.database().expect("a database").server().kind(), "local");
    assert_eq!(env.backend().map(harness::Backend::kind), Some("process"));
    authenticated_request_syncs_the_user(&env).await
}

#[tokio::test]
async fn external_database_url_and_process_backend_sync_a_user() -> anyhow::Result<()> {
    // The "existing server" is a local one started here: the harness only gets its URL.
    let server = harness::internal::LocalPostgres::start(&harness::internal::BinSearch::default(), None).await?;
    let config = HarnessConfig { postgres: Some(PostgresMode::Url), database_url: Some(server.url("postgres")), ..common::local_config() };
    let env = TestEnv::builder(common::reference_profile()).config(config).start().await?;
    assert_eq!(env.database().expect("a database").server().kind(), "url");
    authenticated_request_syncs_the_user(&env).await?;
    let name = env.database().expect("a database").name().to_owned();
    drop(env);
    // The harness cleans up after itself on a server it does not own.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&server.url("postgres")).await?;
    let left: Vec<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE 'db\\_%' OR datname LIKE 'tpl\\_%'").fetch_all(&mut conn).await?;
    assert!(left.is_empty(), "databases left behind on the external server: {left:?} (env used {name})");
    Ok(())
}

#[tokio::test]
async fn restart_with_changed_env_gets_a_fresh_database_and_backend() -> anyhow::Result<()> {
    let mut env = TestEnv::builder(common::reference_profile()).config(common::local_config()).start().await?;
    authenticated_request_syncs_the_user(&env).await?;
    let first_db = env.database().expect("a database").name().to_owned();
    let mark = env.log_mark();
    env.restart_backend_with(harness::EnvChanges::new().set("REFERENCE_FAULTS", "skip_issuer")).await?;
    assert_ne!(env.database().expect("a database").name(), first_db);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(env.db()?).await?;
    assert_eq!(count, 0, "the new database is a fresh clone of the template");
    let since = env.log_lines_since(mark).join("\n");
    assert!(since.contains("skip_issuer"), "the restarted backend logs its faults:\n{since}");
    authenticated_request_syncs_the_user(&env).await
}
