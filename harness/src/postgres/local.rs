//! Postgres from the machine's own binaries: `initdb` into a temp dir, `postgres` on a free
//! port, as an unprivileged user when the harness runs as root. Stopped and deleted on drop.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{HarnessError, Result};
use crate::identity::{child_env, data_parent, random_token};
use crate::process::{free_port, spawned_pid, stop_child_group, unprivileged_user};
use crate::reaper::{GroupGuard, OwnedDir, Registration, Resource};

/// How long a fresh cluster may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the server gets between SIGQUIT and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running local server. Dropping it stops the server and deletes its directory.
#[derive(Debug)]
pub struct LocalPostgres {
    // Field order is drop order: the server stops, then its directory goes.
    server: ServerProcess,
    port: u16,
    password: String,
    dir: OwnedDir,
}

/// The `postgres` process: registered, stopped (SIGQUIT, SIGKILL after [`STOP_GRACE`]) on drop.
#[derive(Debug)]
struct ServerProcess {
    child: Child,
    _registration: Registration,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // SIGQUIT = immediate shutdown: the data is thrown away anyway.
        stop_child_group(&mut self.child, nix::sys::signal::Signal::SIGQUIT, STOP_GRACE);
    }
}

/// Where to look for the binaries.
#[derive(Debug, Clone, Default)]
pub struct BinSearch {
    /// An explicit directory (`HARNESS_PG_BIN_DIR`), looked at first.
    pub bin_dir: Option<PathBuf>,
    /// The `PATH` to search (default: this process's).
    pub path: Option<OsString>,
    /// Root of versioned installs (default `/usr/lib/postgresql`).
    pub install_root: Option<PathBuf>,
}

/// Finds a directory holding both `initdb` and `postgres`.
///
/// # Errors
/// [`HarnessError::PostgresBinariesNotFound`] listing every place looked at.
pub fn find_binaries(search: &BinSearch) -> Result<PathBuf> {
    let mut searched = Vec::new();
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = &search.bin_dir {
        if has_both(dir) {
            return Ok(dir.clone());
        }
        searched.push(format!("{} (HARNESS_PG_BIN_DIR)", dir.display()));
    }
    let path = search.path.clone().or_else(|| std::env::var_os("PATH")).unwrap_or_default();
    let entries: Vec<PathBuf> = std::env::split_paths(&path).filter(|p| !p.as_os_str().is_empty()).collect();
    for dir in &entries {
        // Debian links only some tools into /usr/bin: follow initdb to its real directory.
        if let Ok(real) = std::fs::canonicalize(dir.join("initdb")) {
            if let Some(real_dir) = real.parent().filter(|d| has_both(d)) {
                return Ok(real_dir.to_path_buf());
            }
        }
    }
    searched.push(if entries.is_empty() { "PATH (empty)".into() } else { format!("PATH ({})", path.to_string_lossy()) });
    let root = search.install_root.clone().unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql"));
    let mut versions: Vec<PathBuf> = std::fs::read_dir(&root).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path().join("bin"))).collect()).unwrap_or_default();
    versions.sort_by_key(|p| std::cmp::Reverse(p.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())));
    if let Some(dir) = versions.into_iter().find(|d| has_both(d)) {
        return Ok(dir);
    }
    searched.push(format!("{}/*/bin", root.display()));
    Err(HarnessError::PostgresBinariesNotFound { searched: searched.join(", ") })
}

impl LocalPostgres {
    /// Initialises and starts a cluster listening on 127.0.0.1 and, when given, `extra_listen`
    /// (the Docker bridge gateway, for container backends).
    ///
    /// # Errors
    /// Binaries missing, `initdb` failing, or the server not accepting connections in time.
    pub async fn start(search: &BinSearch, extra_listen: Option<IpAddr>) -> Result<Self> {
        let bin = find_binaries(search)?;
        let dir = OwnedDir::new("clerk-harness-pg-", &data_parent())?;
        let user = unprivileged_user()?;
        let password = random_token(24);
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir(&sock).map_err(HarnessError::io("creating the socket dir"))?;
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, format!("{password}\n")).map_err(HarnessError::io("writing the password file"))?;
        if let Some((uid, gid)) = user {
            for path in [dir.path(), sock.as_path(), pwfile.as_path()] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(HarnessError::io(format!("chown {}", path.display())))?;
            }
        }

        let mut initdb = tokio::process::Command::new(bin.join("initdb"));
        initdb
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .arg("-D")
            .arg(&data)
            .env_remove("PGDATA")
            .envs(child_env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some((uid, gid)) = user {
            initdb.uid(uid).gid(gid);
        }
        let child = initdb.spawn().map_err(HarnessError::io(format!("running {}/initdb", bin.display())))?;
        // initdb and the postgres it starts die with this future (Ctrl-C during the start).
        let mut guard = GroupGuard::new(spawned_pid(&child, "initdb")?);
        let out = child.wait_with_output().await.map_err(HarnessError::io(format!("running {}/initdb", bin.display())))?;
        guard.disarm();
        drop(guard);
        if !out.status.success() {
            let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            return Err(HarnessError::PostgresStart { reason: format!("initdb failed ({})", out.status), log_tail: crate::logs::tail_lines(&log, 30) });
        }
        let mut listen = "127.0.0.1".to_owned();
        if let Some(ip) = extra_listen {
            let _ = write!(listen, ",{ip}");
        }
        append(&data.join("pg_hba.conf"), "host all all 0.0.0.0/0 scram-sha-256\n")?;

        let mut last_error = String::new();
        // A free port can be taken between the probe and the bind: try a few.
        for _ in 0..3 {
            let port = free_port()?;
            let conf = format!(
                "listen_addresses = '{listen}'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\n\
                 synchronous_commit = off\nfull_page_writes = off\nwal_init_zero = off\nmax_connections = 300\nshared_buffers = 64MB\n\
                 dynamic_shared_memory_type = mmap\n",
                sock.display()
            );
            append(&data.join("postgresql.auto.conf"), &conf)?;
            let log_path = dir.path().join("postgres.log");
            let log = std::fs::File::create(&log_path).map_err(HarnessError::io("creating postgres.log"))?;
            let log_err = log.try_clone().map_err(HarnessError::io("opening postgres.log"))?;
            let mut cmd = Command::new(bin.join("postgres"));
            cmd.arg("-D").arg(&data).envs(child_env()).stdin(Stdio::null()).stdout(log).stderr(log_err).process_group(0);
            as_user(&mut cmd, user);
            let child = cmd.spawn().map_err(HarnessError::io(format!("starting {}/postgres", bin.display())))?;
            let registration = Registration::new(Resource::group(child.id(), nix::sys::signal::Signal::SIGQUIT));
            // Stopped by its Drop also if this future is dropped while waiting.
            let mut server = ServerProcess { child, _registration: registration };
            let url = format!("postgresql://postgres:{password}@127.0.0.1:{port}/postgres");
            match wait_ready(&mut server.child, &url, &log_path).await {
                Ok(()) => {
                    tracing::info!(port, data = %data.display(), "local postgres ready");
                    return Ok(Self { server, port, password, dir });
                }
                Err(e) => {
                    drop(server);
                    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if !text.contains("could not bind") && !text.contains("Address already in use") {
                        return Err(e);
                    }
                    last_error = e.to_string();
                }
            }
        }
        Err(HarnessError::PostgresStart { reason: "no free port could be bound".into(), log_tail: last_error })
    }

    /// Superuser URL of database `db` on 127.0.0.1.
    #[must_use]
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres:{}@127.0.0.1:{}/{db}", self.password, self.port)
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser password.
    #[must_use]
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The server's process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.server.child.id()
    }

    /// The temp dir holding data, socket and log.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

async fn wait_ready(child: &mut Child, url: &str, log: &Path) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(HarnessError::PostgresStart {
                reason: format!("postgres exited with {status}"),
                log_tail: crate::logs::tail_lines(&std::fs::read_to_string(log).unwrap_or_default(), 30),
            });
        }
        match <sqlx::PgConnection as sqlx::Connection>::connect(url).await {
            Ok(conn) => {
                let _ = sqlx::Connection::close(conn).await;
                return Ok(());
            }
            Err(e) if Instant::now() > deadline => {
                return Err(HarnessError::PostgresStart {
                    reason: format!("not accepting connections after {START_TIMEOUT:?}: {e}"),
                    log_tail: crate::logs::tail_lines(&std::fs::read_to_string(log).unwrap_or_default(), 30),
                })
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

fn as_user(cmd: &mut Command, user: Option<(u32, u32)>) {
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).map_err(HarnessError::io(format!("opening {}", path.display())))?;
    file.write_all(text.as_bytes()).map_err(HarnessError::io(format!("writing {}", path.display())))
}
