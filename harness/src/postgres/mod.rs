//! Postgres for the backend: one server per test binary (shared by every environment of the
//! process while any is alive), and a fresh database per backend process, cloned from a
//! template on which the profile's setup ran once.
//!
//! Providers: [`DockerPostgres`] (testcontainers), [`LocalPostgres`] (initdb + postgres in a
//! temp dir) and an existing server given by URL.

mod docker;
mod local;

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Weak};

use sqlx::{Connection, PgConnection};
use url::Url;

pub use docker::DockerPostgres;
pub use local::{find_binaries, BinSearch, LocalPostgres};

use crate::error::{HarnessError, Result};
use crate::identity::random_token;

/// How to get a server; equal specs share one server within the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSpec {
    /// A container from `image`.
    Docker {
        /// `name:tag`.
        image: String,
    },
    /// Local binaries; `listen_extra` is the Docker bridge gateway when containers need it.
    Local {
        /// Where to find the binaries.
        bins: BinSpec,
        /// An address to listen on besides 127.0.0.1.
        listen_extra: Option<IpAddr>,
    },
    /// An existing server: a superuser URL.
    External {
        /// The URL as given.
        url: String,
    },
}

/// [`BinSearch`] in a comparable form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BinSpec(pub Option<std::path::PathBuf>, pub Option<std::ffi::OsString>, pub Option<std::path::PathBuf>);

enum Provider {
    Docker(Box<DockerPostgres>),
    Local(LocalPostgres, Option<IpAddr>),
    External(Url),
}

/// A running (or borrowed) Postgres server.
pub struct PgServer {
    provider: Provider,
    templates: tokio::sync::Mutex<HashMap<String, String>>,
    /// PostgreSQL 15+ can clone with `STRATEGY FILE_COPY`, which avoids WAL-logging the
    /// whole template (a clone then takes ~20 ms instead of ~150 ms on a cold WAL).
    file_copy: std::sync::OnceLock<bool>,
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer").field("kind", &self.kind()).finish_non_exhaustive()
    }
}

static SERVERS: tokio::sync::Mutex<Vec<(ServerSpec, Weak<PgServer>)>> = tokio::sync::Mutex::const_new(Vec::new());

impl PgServer {
    /// The process's server for `spec`: the running one, or a new one. It stops when the last
    /// environment holding it is dropped.
    ///
    /// # Errors
    /// The provider failed to start.
    pub async fn shared(spec: &ServerSpec) -> Result<Arc<Self>> {
        let mut servers = SERVERS.lock().await;
        servers.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(server) = servers.iter().find(|(s, _)| s == spec).and_then(|(_, w)| w.upgrade()) {
            return Ok(server);
        }
        let server = Arc::new(Self::start(spec).await?);
        servers.push((spec.clone(), Arc::downgrade(&server)));
        Ok(server)
    }

    /// A new server for `spec`, not shared.
    ///
    /// # Errors
    /// The provider failed to start.
    pub async fn start(spec: &ServerSpec) -> Result<Self> {
        let provider = match spec {
            ServerSpec::Docker { image } => Provider::Docker(Box::new(DockerPostgres::start(image).await?)),
            ServerSpec::Local { bins, listen_extra } => {
                let search = BinSearch { bin_dir: bins.0.clone(), path: bins.1.clone(), install_root: bins.2.clone() };
                Provider::Local(LocalPostgres::start(&search, *listen_extra).await?, *listen_extra)
            }
            ServerSpec::External { url } => {
                let parsed = Url::parse(url).map_err(|e| HarnessError::Missing {
                    what: format!("the database URL is not a URL ({e})"),
                    fix: "set HARNESS_DATABASE_URL to postgresql://user:password@host:port/db".into(),
                })?;
                let server = Provider::External(parsed);
                let admin = Self { provider: server, templates: Default::default(), file_copy: std::sync::OnceLock::new() };
                admin.connect_admin().await?;
                return Ok(admin);
            }
        };
        Ok(Self { provider, templates: Default::default(), file_copy: std::sync::OnceLock::new() })
    }

    /// `docker`, `local` or `url`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self.provider {
            Provider::Docker(_) => "docker",
            Provider::Local(..) => "local",
            Provider::External(_) => "url",
        }
    }

    /// The local server, when this is one (pid, temp dir).
    #[must_use]
    pub fn local(&self) -> Option<&LocalPostgres> {
        match &self.provider {
            Provider::Local(local, _) => Some(local),
            _ => None,
        }
    }

    /// The container, when this is one.
    #[must_use]
    pub fn container(&self) -> Option<&DockerPostgres> {
        match &self.provider {
            Provider::Docker(docker) => Some(docker),
            _ => None,
        }
    }

    /// URL of database `db` from this machine.
    #[must_use]
    pub fn url(&self, db: &str) -> String {
        match &self.provider {
            Provider::Docker(d) => d.url(db),
            Provider::Local(l, _) => l.url(db),
            Provider::External(url) => with_db(url, db).to_string(),
        }
    }

    /// URL of database `db` from a container (bridge address or `host.docker.internal`).
    #[must_use]
    pub fn container_url(&self, db: &str) -> String {
        match &self.provider {
            Provider::Docker(d) => d.container_url(db),
            Provider::Local(l, listen) => {
                let host = listen.map_or_else(|| "host.docker.internal".to_owned(), |ip| ip.to_string());
                format!("postgresql://postgres:{}@{host}:{}/{db}", l.password(), l.port())
            }
            Provider::External(url) => {
                let mut url = with_db(url, db);
                if matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) {
                    let _ = url.set_host(Some("host.docker.internal"));
                }
                url.to_string()
            }
        }
    }

    fn admin_url(&self) -> String {
        match &self.provider {
            Provider::External(url) => url.to_string(),
            _ => self.url("postgres"),
        }
    }

    async fn connect_admin(&self) -> Result<PgConnection> {
        PgConnection::connect(&self.admin_url()).await.map_err(HarnessError::db(format!("connecting to the {} Postgres server", self.kind())))
    }

    /// The template database for `key`, created on first use: `setup(host_url, container_url)`
    /// runs once against it, then it is frozen (no connections, `IS_TEMPLATE`).
    ///
    /// # Errors
    /// SQL errors, or the setup's error (the half-made template is dropped).
    pub async fn template<F, Fut>(&self, key: &str, setup: F) -> Result<String>
    where
        F: FnOnce(String, String) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let mut templates = self.templates.lock().await;
        if let Some(name) = templates.get(key) {
            return Ok(name.clone());
        }
        let name = format!("tpl_{}_{}", sanitize(key), random_token(8));
        let mut admin = self.connect_admin().await?;
        exec(&mut admin, &format!("CREATE DATABASE \"{name}\""), "creating the template database").await?;
        if let Err(e) = setup(self.url(&name), self.container_url(&name)).await {
            let _ = exec(&mut admin, &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"), "dropping the failed template").await;
            return Err(e);
        }
        exec(&mut admin, &format!("ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true"), "freezing the template").await?;
        // Flush the setup's writes now, so that the clones' own checkpoints (FILE_COPY) are
        // cheap from the first one on. Needs superuser rights: optional on a borrowed server.
        let _ = exec(&mut admin, "CHECKPOINT", "checkpoint after the template").await;
        let _ = admin.close().await;
        tracing::info!(template = %name, key, "template database ready");
        templates.insert(key.to_owned(), name.clone());
        Ok(name)
    }

    /// A fresh database, cloned from `template` (or empty).
    ///
    /// # Errors
    /// SQL errors.
    pub async fn create_database(self: &Arc<Self>, template: Option<&str>) -> Result<Database> {
        let name = format!("db_{}", random_token(12));
        let mut admin = self.connect_admin().await?;
        let file_copy = match self.file_copy.get() {
            Some(known) => *known,
            None => {
                let version: String =
                    sqlx::query_scalar("SHOW server_version_num").fetch_one(&mut admin).await.map_err(HarnessError::db("reading the server version"))?;
                *self.file_copy.get_or_init(|| version.parse::<u32>().is_ok_and(|v| v >= 150_000))
            }
        };
        let strategy = if file_copy { " STRATEGY FILE_COPY" } else { "" };
        let sql = match template {
            Some(t) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{t}\"{strategy}"),
            None => format!("CREATE DATABASE \"{name}\""),
        };
        exec(&mut admin, &sql, "creating the backend's database").await?;
        let _ = admin.close().await;
        Ok(Database { server: Arc::clone(self), name, owned: true })
    }

    /// The database the server's URL names (for an external backend that already uses it):
    /// never created, cloned or dropped by the harness.
    #[must_use]
    pub fn existing(self: &Arc<Self>) -> Database {
        let name = match &self.provider {
            Provider::External(url) => url.path().trim_start_matches('/').to_owned(),
            _ => String::new(),
        };
        let name = if name.is_empty() { "postgres".to_owned() } else { name };
        Database { server: Arc::clone(self), name, owned: false }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Servers the harness started die with their data; a borrowed one keeps only what it had.
        if let Provider::External(_) = self.provider {
            let names: Vec<String> = self.templates.get_mut().values().cloned().collect();
            // A template cannot be dropped while it is one.
            let statements = names
                .iter()
                .flat_map(|n| [format!("ALTER DATABASE \"{n}\" IS_TEMPLATE false"), format!("DROP DATABASE IF EXISTS \"{n}\" WITH (FORCE)")])
                .collect();
            blocking_sql(self.admin_url(), statements);
        }
    }
}

/// A database of its own for one backend process. Dropped with the environment.
#[derive(Debug)]
pub struct Database {
    server: Arc<PgServer>,
    name: String,
    owned: bool,
}

impl Database {
    /// Its name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// URL from this machine.
    #[must_use]
    pub fn url(&self) -> String {
        self.server.url(&self.name)
    }

    /// URL from a container.
    #[must_use]
    pub(crate) fn container_url(&self) -> String {
        self.server.container_url(&self.name)
    }

    /// The server it lives on.
    #[must_use]
    pub fn server(&self) -> &Arc<PgServer> {
        &self.server
    }

    /// Takes this database away from its clients until the returned guard is restored or
    /// dropped (also on an error or a panic): no new connection is accepted
    /// (`ALLOW_CONNECTIONS false`, which binds superusers too) and every open one is
    /// terminated, so the backend's next query fails as it does when its Postgres goes away.
    /// Only this database: the server and the other environments' databases keep running, in
    /// every runtime (local process, container or a server given by URL).
    ///
    /// # Errors
    /// The server refused the statements (a borrowed server without superuser rights).
    pub async fn take_offline(&self) -> Result<DatabaseOffline> {
        let mut admin = self.server.connect_admin().await?;
        let name = self.name.replace('"', "");
        exec(&mut admin, &format!("ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS false"), "refusing connections to the backend's database").await?;
        let guard = DatabaseOffline { admin_url: self.server.admin_url(), name: name.clone(), restored: false };
        let terminate =
            format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()", name.replace('\'', "''"));
        exec(&mut admin, &terminate, "terminating the backend's database connections").await?;
        let _ = admin.close().await;
        tracing::info!(database = %name, "database taken offline");
        Ok(guard)
    }
}

/// A database taken offline by [`Database::take_offline`]: connections are accepted again on
/// [`DatabaseOffline::restore`], or when the guard is dropped.
#[derive(Debug)]
#[must_use = "the database comes back when this guard is restored or dropped"]
pub struct DatabaseOffline {
    admin_url: String,
    name: String,
    restored: bool,
}

impl DatabaseOffline {
    fn statement(&self) -> String {
        format!("ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS true", self.name)
    }

    /// Accepts connections again.
    ///
    /// # Errors
    /// The statement failed (the guard's drop tries once more).
    pub async fn restore(mut self) -> Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await.map_err(HarnessError::db("connecting to restore the backend's database"))?;
        exec(&mut admin, &self.statement(), "accepting connections to the backend's database again").await?;
        let _ = admin.close().await;
        self.restored = true;
        tracing::info!(database = %self.name, "database back online");
        Ok(())
    }
}

impl Drop for DatabaseOffline {
    fn drop(&mut self) {
        if !self.restored {
            blocking_sql(self.admin_url.clone(), vec![self.statement()]);
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // When this is the server's last user, the server goes away with everything in it.
        let last = Arc::strong_count(&self.server) == 1;
        if !self.owned {
            return;
        }
        if !last || matches!(self.server.provider, Provider::External(_)) {
            blocking_sql(self.server.admin_url(), vec![format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)]);
        }
    }
}

/// Runs statements on a thread of its own (usable from `Drop`, inside or outside a runtime).
fn blocking_sql(url: String, statements: Vec<String>) {
    let worker = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async move {
            let connect = tokio::time::timeout(std::time::Duration::from_secs(5), PgConnection::connect(&url));
            let Ok(Ok(mut conn)) = connect.await else { return };
            for sql in statements {
                if let Err(e) = sqlx::raw_sql(&sql).execute(&mut conn).await {
                    tracing::warn!(%sql, error = %e, "cleanup statement failed");
                }
            }
            let _ = conn.close().await;
        });
    });
    let _ = crate::process::off_runtime(|| worker.join());
}

async fn exec(conn: &mut PgConnection, sql: &str, what: &str) -> Result<()> {
    sqlx::raw_sql(sql).execute(conn).await.map(|_| ()).map_err(HarnessError::db(what))
}

fn with_db(url: &Url, db: &str) -> Url {
    let mut url = url.clone();
    url.set_path(&format!("/{db}"));
    url
}

fn sanitize(key: &str) -> String {
    key.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).take(40).collect()
}

/// The `{database_*}` placeholders of a profile for the database at `url`, in the order of
/// [`crate::profile::PLACEHOLDERS`]:
///
/// | placeholder | value | for |
/// |---|---|---|
/// | `database_url` | `postgresql://user:pw@host:port/db` | libpq/psql, psycopg 2 and 3, asyncpg, sqlx, node-postgres, dj-database-url; SQLAlchemy's default driver (psycopg2 in 2.0, psycopg 3 in 2.1) |
/// | `database_url_asyncpg` | `postgresql+asyncpg://…` | SQLAlchemy's async engine on asyncpg |
/// | `database_url_psycopg` | `postgresql+psycopg://…` | SQLAlchemy on psycopg 3 (sync or async) |
/// | `database_url_psycopg2` | `postgresql+psycopg2://…` | SQLAlchemy on psycopg2 (SQLAlchemy 2.1 picks psycopg 3 for a plain `postgresql://`) |
/// | `database_host`, `database_port`, `database_name`, `database_user`, `database_password` | the parts | settings that take them apart (Django `DATABASES`, `PGHOST`…) |
///
/// A `postgres://` URL (an external server's, as the user wrote it) comes out as
/// `postgresql://`: SQLAlchemy refuses the short scheme.
///
/// ```
/// let urls = harness::internal::database_placeholders("postgres://u:p%40ss@127.0.0.1:5433/db_1").expect("valid");
/// assert_eq!(urls[0], ("database_url", "postgresql://u:p%40ss@127.0.0.1:5433/db_1".to_owned()));
/// assert_eq!(urls[1].1, "postgresql+asyncpg://u:p%40ss@127.0.0.1:5433/db_1");
/// assert_eq!(urls[3].1, "postgresql+psycopg2://u:p%40ss@127.0.0.1:5433/db_1");
/// assert_eq!(urls[8], ("database_password", "p@ss".to_owned()));
/// ```
///
/// # Errors
/// [`HarnessError::Missing`] when `url` is not a `postgres://` or `postgresql://` URL with a host.
pub fn database_placeholders(url: &str) -> Result<[(&'static str, String); 9]> {
    let bad = |why: &str| HarnessError::Missing {
        what: format!("the database URL {} {why}", redact(url)),
        fix: "give a URL such as postgresql://user:password@host:5432/db".into(),
    };
    let mut parsed = Url::parse(url).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(bad("does not start with postgresql:// or postgres://"));
    }
    let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("has no host"))?.to_owned();
    let port = parsed.port().unwrap_or(5432).to_string();
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let name = decode(parsed.path().trim_start_matches('/'));
    let user = decode(parsed.username());
    let password = parsed.password().map(decode).unwrap_or_default();
    let with_scheme = |parsed: &mut Url, scheme: &str| -> Result<String> {
        parsed.set_scheme(scheme).map_err(|()| bad(&format!("cannot take the scheme {scheme}")))?;
        Ok(parsed.to_string())
    };
    Ok([
        ("database_url", with_scheme(&mut parsed, "postgresql")?),
        ("database_url_asyncpg", with_scheme(&mut parsed, "postgresql+asyncpg")?),
        ("database_url_psycopg", with_scheme(&mut parsed, "postgresql+psycopg")?),
        ("database_url_psycopg2", with_scheme(&mut parsed, "postgresql+psycopg2")?),
        ("database_host", host),
        ("database_port", port),
        ("database_name", name),
        ("database_user", user),
        ("database_password", password),
    ])
}

/// `url` without its password, for error messages.
fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(unparsable)".into(),
    }
}
