//! `{database_url}` and its variants, as a backend's environment gets them, accepted by each
//! driver they are meant for: libpq (psql), psycopg2, psycopg 3, SQLAlchemy (psycopg2,
//! psycopg 3, asyncpg), asyncpg and sqlx — on a real Postgres the harness started.
//!
//! The Python drivers run in harness/tests/drivers/.venv (install.sh, pinned) as the setup
//! step of a small profile (drivers/check.py), so the URLs are the wired ones, not rebuilt
//! here. node-postgres is not tested: the npm registry is not reachable from this project's
//! machines (pg-connection-string accepts `postgresql://` like `postgres://`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use anyhow::Context as _;
use harness::{HarnessConfig, Profile, Runtime, TestEnv};

fn drivers_dir() -> PathBuf {
    common::repo_root().join("harness/tests/drivers")
}

fn ensure_drivers_venv() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let status = Command::new("flock")
            .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("clerk-harness-drivers-install.lock"))
            .arg(drivers_dir().join("install.sh"))
            .status()
            .expect("run harness/tests/drivers/install.sh (needs flock from util-linux)");
        assert!(status.success(), "harness/tests/drivers/install.sh failed: {status}");
    });
}

fn profile() -> Profile {
    let text = r#"
name = "drivers"
health_path = "/"
intercept = false

[process]
cwd = "."
command = [".venv/bin/python", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
setup = [[".venv/bin/python", "check.py"]]

[env]
DATABASE_URL = "{database_url}"
DATABASE_URL_ASYNCPG = "{database_url_asyncpg}"
DATABASE_URL_PSYCOPG = "{database_url_psycopg}"
DB_HOST = "{database_host}"
DB_PORT = "{database_port}"
DB_NAME = "{database_name}"
DB_USER = "{database_user}"
DB_PASSWORD = "{database_password}"

[token]
kind = "session"

[cors]
allowed_origins = ["http://localhost:3000"]

[user]
sql = "SELECT $1::text AS clerk_user_id, NULL::text AS email, NULL::text AS first_name, NULL::text AS last_name"
"#;
    Profile::parse(text, "drivers.toml", drivers_dir()).expect("the test profile is valid")
}

/// `psql` next to the server binaries the local runtime uses, else on `PATH`.
fn psql() -> anyhow::Result<PathBuf> {
    let bins = harness::internal::find_binaries(&harness::internal::BinSearch::default())?;
    let beside = bins.join("psql");
    if beside.is_file() {
        return Ok(beside);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join("psql")).find(|p| p.is_file()).context("psql (libpq's client) not found next to initdb nor on PATH")
}

#[tokio::test]
async fn every_driver_accepts_the_url_form_meant_for_it() -> anyhow::Result<()> {
    common::init_tracing();
    ensure_drivers_venv();
    let out = tempfile::tempdir()?;
    let result_file = out.path().join("drivers.json");
    let mut config = HarnessConfig { runtime: Runtime::Local, ..HarnessConfig::default() };
    config.backend_env.push(harness::parse_env_arg(&format!("DRIVERS_RESULT={}", result_file.display()))?);
    let env = TestEnv::builder(profile()).config(config).start().await?;

    // Python drivers, from the setup step (which ran on the template database).
    let seen: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&result_file)?)?;
    let url = seen["urls"]["DATABASE_URL"].as_str().context("DATABASE_URL")?;
    assert!(url.starts_with("postgresql://postgres:"), "{url}");
    let db = url.rsplit('/').next().context("a database name")?;
    assert!(db.starts_with("tpl_drivers"), "setup runs on the template: {db}");
    let rest = url.trim_start_matches("postgresql://");
    assert_eq!(seen["urls"]["DATABASE_URL_ASYNCPG"], format!("postgresql+asyncpg://{rest}"));
    assert_eq!(seen["urls"]["DATABASE_URL_PSYCOPG"], format!("postgresql+psycopg://{rest}"));
    for (driver, expected) in [
        ("psycopg2", db.to_owned()),
        ("psycopg2_parts", db.to_owned()),
        ("psycopg3", db.to_owned()),
        ("asyncpg", db.to_owned()),
        ("sqlalchemy_psycopg2", format!("psycopg2:{db}")),
        ("sqlalchemy_psycopg3", format!("psycopg:{db}")),
        ("sqlalchemy_asyncpg", format!("asyncpg:{db}")),
    ] {
        assert_eq!(seen[driver].as_str(), Some(expected.as_str()), "{driver}: {}", seen[driver]);
    }
    // The control: the old postgres:// form really is refused, so the checks above can fail.
    let control = seen["sqlalchemy_postgres_scheme"].as_str().unwrap_or_default();
    assert!(control.starts_with("refused:") && control.contains("postgres"), "{control}");

    // libpq (psql) and sqlx, on the backend's own database, with the URL the wiring computes.
    let database = env.database().context("a process backend has a database of its own")?;
    let own = harness::internal::database_placeholders(&database.url())?;
    let own_url = &own[0].1;
    assert!(own_url.starts_with("postgresql://"), "{own_url}");
    let psql = Command::new(psql()?).args(["-X", "-tA", "-c", "SELECT current_database()", own_url]).output()?;
    assert!(psql.status.success(), "psql: {}", String::from_utf8_lossy(&psql.stderr));
    assert_eq!(String::from_utf8_lossy(&psql.stdout).trim(), database.name());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(own_url).await?;
    let name: String = sqlx::query_scalar("SELECT current_database()::text").fetch_one(&mut conn).await?;
    assert_eq!(name, database.name());
    Ok(())
}

#[test]
fn an_external_postgres_url_comes_out_as_postgresql() {
    let urls = harness::internal::database_placeholders("postgres://admin:s%2Fcret@db.internal/app").expect("valid");
    let values: Vec<&str> = urls.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        values,
        [
            "postgresql://admin:s%2Fcret@db.internal/app",
            "postgresql+asyncpg://admin:s%2Fcret@db.internal/app",
            "postgresql+psycopg://admin:s%2Fcret@db.internal/app",
            "postgresql+psycopg2://admin:s%2Fcret@db.internal/app",
            "db.internal",
            "5432",
            "app",
            "admin",
            "s/cret",
        ]
    );
    let names: Vec<&str> = urls.iter().map(|(n, _)| *n).collect();
    for name in names {
        assert!(harness::internal::PLACEHOLDERS.iter().any(|(known, _)| *known == name), "{name} is a documented placeholder");
    }
    for bad in ["mysql://u@h/db", "not a url", "postgresql:///db"] {
        let err = harness::internal::database_placeholders(bad).expect_err(bad).to_string();
        assert!(err.contains("postgresql://user:password@host:5432/db"), "{bad}: {err}");
    }
}
