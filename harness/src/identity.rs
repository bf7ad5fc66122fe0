//! Who this run is, and how everything it leaves behind says so: the run id, the owner pid
//! and host, the labels on Docker objects, the variables on child processes, the marker in
//! temp dirs and where those dirs go. Docker, Postgres, processes and the reaper all mark
//! what they create from here; this module uses none of them, so teardown can find what any
//! of them made.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rand::Rng;

/// Variable set on every process the harness starts: the run id.
pub const RUN_ENV: &str = "CLERK_HARNESS_RUN";
/// Variable set on every process the harness starts: the harness's pid (owner).
pub const PID_ENV: &str = "CLERK_HARNESS_PID";
/// File in every temp dir the harness creates: `pid=<owner pid>` and `run=<run id>` lines.
pub const MARKER_FILE: &str = ".clerk-harness-owner";
/// Prefixes of the temp dirs the harness creates.
pub const TEMP_PREFIXES: [&str; 5] = ["clerk-harness-pg-", "clerk-harness-ca-", "clerk-harness-logs-", "clerk-harness-hosts-", "clerk-harness-clock-"];

/// Label put on every container and network the harness creates, with the owning process id
/// as value: lets a test (or a person) find leftovers with `docker ps -a --filter label=…`,
/// and `clerk-harness clean` tell a crashed run's from a live one's.
pub const OWNER_LABEL: &str = "org.clerk-harness.pid";

/// Label with the run id ([`run_id`]): what the watchdog removes by.
pub const RUN_LABEL: &str = "org.clerk-harness.run";

/// Label with the host name of the harness: a pid only means something on its own machine.
pub const HOST_LABEL: &str = "org.clerk-harness.host";

/// This process's run id: `HARNESS_RUN_ID` when set (letters, digits, `.`, `_`, `-`; at
/// most 64), else `<pid>-<random>`. Labels, markers and child environments carry it.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| match std::env::var("HARNESS_RUN_ID") {
        Ok(id) if !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) => id,
        Ok(id) => {
            tracing::warn!(%id, "HARNESS_RUN_ID may only hold letters, digits, '.', '_' and '-' (at most 64): using a generated id");
            generated_run_id()
        }
        Err(_) => generated_run_id(),
    })
}

fn generated_run_id() -> String {
    format!("{}-{}", std::process::id(), random_token(6))
}

/// The variables every child process gets: [`RUN_ENV`] and [`PID_ENV`].
#[must_use]
pub fn child_env() -> [(&'static str, String); 2] {
    [(RUN_ENV, run_id().to_owned()), (PID_ENV, std::process::id().to_string())]
}

/// This machine's host name (`/proc/sys/kernel/hostname`), empty when unknown.
#[must_use]
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default()
}

/// The labels of every Docker object the harness creates (containers, networks, built
/// images): one place, so that clean-up can find all of them by label.
#[must_use]
pub fn labels() -> std::collections::HashMap<String, String> {
    std::collections::HashMap::from([
        (OWNER_LABEL.to_owned(), std::process::id().to_string()),
        (RUN_LABEL.to_owned(), run_id().to_owned()),
        (HOST_LABEL.to_owned(), hostname()),
    ])
}

/// Writes [`MARKER_FILE`] into `dir`: this process's pid and run id.
///
/// # Errors
/// The file cannot be written.
pub fn write_marker(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join(MARKER_FILE), format!("pid={}\nrun={}\n", std::process::id(), run_id()))
}

/// The owner recorded in a temp dir's marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The harness's pid.
    pub pid: u32,
    /// Its run id.
    pub run: String,
}

/// Reads `dir`'s marker; `None` when it has none (or an unreadable one).
#[must_use]
pub fn read_marker(dir: &Path) -> Option<Owner> {
    let text = std::fs::read_to_string(dir.join(MARKER_FILE)).ok()?;
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix('=').map(str::to_owned));
    Some(Owner { pid: field("pid")?.parse().ok()?, run: field("run")? })
}

/// Where the cluster's temp dir goes: `HARNESS_PG_DATA_PARENT`, else an explicitly set
/// `TMPDIR`, else `/dev/shm` when it is a writable tmpfs (initdb takes half the time there and
/// `CREATE DATABASE` stays fast from the first clone on), else the system temp dir.
#[must_use]
pub fn data_parent() -> PathBuf {
    if let Some(dir) = std::env::var_os("HARNESS_PG_DATA_PARENT").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if std::env::var_os("TMPDIR").is_some_and(|d| !d.is_empty()) {
        return std::env::temp_dir();
    }
    let shm = Path::new("/dev/shm");
    let writable = tempfile::Builder::new().prefix(".clerk-harness-probe-").tempdir_in(shm).is_ok();
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// A random lowercase alphanumeric string (run ids, database names, passwords).
#[must_use]
pub fn random_token(len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len).map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(read_marker(dir.path()), None);
        write_marker(dir.path()).expect("marker");
        assert_eq!(read_marker(dir.path()), Some(Owner { pid: std::process::id(), run: run_id().to_owned() }));
    }
}
