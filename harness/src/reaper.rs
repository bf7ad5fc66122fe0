//! Nothing left behind, even when the harness itself is killed.
//!
//! Everything the harness creates that could outlive it — process groups (the backend,
//! Postgres, setup steps, `initdb`), temp dirs (Postgres data, logs, the per-run CA with its
//! private key) and containers/networks — is [registered](register) here while it exists.
//! Three mechanisms consume the registry:
//!
//! - **Drop guards** tear each piece down in the normal case and on panics.
//! - **The watchdog** ([`start_watchdog`]): the `clerk-harness` binary in a hidden reaper
//!   mode, in a session of its own, holding a pipe from this process. Every registration is
//!   forwarded to it as a JSON line. When the pipe closes without a final `done` (the harness
//!   was SIGKILLed, or a test binary exited with resources still registered), it kills the
//!   process groups (SIGTERM or the group's own first signal, then SIGKILL), removes this run's
//!   containers and networks by label and deletes the temp dirs. Like testcontainers' Ryuk,
//!   but without a container registry.
//! - **`clerk-harness clean`** ([`clean`]): for crashes the watchdog could not handle (both
//!   killed, a reboot of the Docker daemon…). Every temp dir carries a [marker](crate::identity::MARKER_FILE)
//!   with its owner's pid, every child process the [`PID_ENV`] variable, every container and
//!   network the [owner label](crate::identity::OWNER_LABEL): whatever belongs to a process that
//!   is gone is removed; a live run's resources are never touched.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::error::{HarnessError, Result};
use crate::identity::{child_env, data_parent, hostname, read_marker, run_id, write_marker, HOST_LABEL, OWNER_LABEL, PID_ENV, RUN_LABEL, TEMP_PREFIXES};
use crate::process::{group_alive, signal_group};

/// The hidden subcommand that turns the `clerk-harness` binary into the watchdog.
pub const REAPER_ARG: &str = "__reaper";
/// How long a process group gets between its first signal and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// First line the watchdog writes, so a stale or foreign binary is noticed.
const HANDSHAKE: &str = "clerk-harness-reaper 1";

/// Something that must not outlive the run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resource {
    /// A process group, by its leader's pid, and the signal its teardown starts with.
    Group {
        /// The leader's pid (= the group id).
        pid: u32,
        /// The first signal (SIGTERM; SIGQUIT for Postgres), SIGKILL after [`GRACE`].
        signal: i32,
    },
    /// A directory, removed recursively.
    Dir {
        /// Its path.
        path: PathBuf,
    },
    /// This run uses Docker: remove every container and network labelled with its run id.
    Docker,
}

impl Resource {
    /// A process group whose teardown starts with `signal`.
    #[must_use]
    pub fn group(pid: u32, signal: Signal) -> Self {
        Self::Group { pid, signal: signal as i32 }
    }

    /// A directory.
    #[must_use]
    pub fn dir(path: &Path) -> Self {
        Self::Dir { path: path.to_path_buf() }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Message {
    Hello { run: String, pid: u32 },
    Add { resource: Resource },
    Remove { resource: Resource },
    Done,
}

struct Watchdog {
    child: Child,
    stdin: ChildStdin,
}

struct Registry {
    items: Vec<Resource>,
    watchdog: Option<Watchdog>,
    auto_tried: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { items: Vec::new(), watchdog: None, auto_tried: false });

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    fn send(&mut self, message: &Message) {
        let Some(watchdog) = &mut self.watchdog else { return };
        let Ok(mut line) = serde_json::to_string(message) else { return };
        line.push('\n');
        if let Err(e) = watchdog.stdin.write_all(line.as_bytes()).and_then(|()| watchdog.stdin.flush()) {
            tracing::warn!(error = %e, "the watchdog process is gone: resources are no longer guarded against a kill of the harness");
            self.watchdog = None;
        }
    }
}

/// Records `resource` (and tells the watchdog, if one runs).
pub fn register(resource: Resource) {
    let mut registry = registry();
    registry.send(&Message::Add { resource: resource.clone() });
    registry.items.push(resource);
}

/// Forgets one registration of `resource` (it was torn down).
pub fn unregister(resource: &Resource) {
    let mut registry = registry();
    if let Some(at) = registry.items.iter().position(|r| r == resource) {
        registry.items.remove(at);
        registry.send(&Message::Remove { resource: resource.clone() });
    }
}

/// What is registered now.
#[must_use]
pub fn registered() -> Vec<Resource> {
    registry().items.clone()
}

/// A registration that ends when dropped: declare it after the thing it guards, so the
/// thing is torn down first.
#[derive(Debug)]
#[must_use = "the registration ends when this is dropped"]
pub struct Registration(Resource);

impl Registration {
    /// Registers `resource` until the returned value is dropped.
    pub fn new(resource: Resource) -> Self {
        register(resource.clone());
        Self(resource)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        unregister(&self.0);
    }
}

/// A temp dir that is registered and carries the owner marker; removed on drop.
#[derive(Debug)]
pub struct OwnedDir {
    // Field order is drop order: the directory goes before its registration.
    dir: tempfile::TempDir,
    _registration: Registration,
}

impl OwnedDir {
    /// Creates `<parent>/<prefix>XXXXXX`, writes the marker and registers it.
    ///
    /// # Errors
    /// The directory or the marker cannot be written.
    pub fn new(prefix: &str, parent: &Path) -> Result<Self> {
        let dir =
            tempfile::Builder::new().prefix(prefix).tempdir_in(parent).map_err(HarnessError::io(format!("creating a temp dir in {}", parent.display())))?;
        let registration = Registration::new(Resource::dir(dir.path()));
        write_marker(dir.path()).map_err(HarnessError::io(format!("writing the owner marker in {}", dir.path().display())))?;
        Ok(Self { dir, _registration: registration })
    }

    /// Its path.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Kills a process group with SIGKILL when dropped unless [disarmed](Self::disarm): for
/// short-lived children (setup steps, `initdb`) whose future may be cancelled. Registered
/// with the watchdog meanwhile.
#[derive(Debug)]
pub struct GroupGuard {
    pid: u32,
    armed: bool,
    _registration: Registration,
}

impl GroupGuard {
    /// Guards the group led by `pid`.
    #[must_use]
    pub fn new(pid: u32) -> Self {
        Self { pid, armed: true, _registration: Registration::new(Resource::group(pid, Signal::SIGKILL)) }
    }

    /// The leader exited normally: only stragglers are killed on drop.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            tracing::debug!(pid = self.pid, "killing an unfinished process group");
        }
        let _ = signal_group(self.pid, Some(Signal::SIGKILL));
    }
}

/// Whether process `pid` exists and is not a zombie.
#[must_use]
pub fn process_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else { return false };
    if raw <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Err(Errno::ESRCH) => false,
        _ => !is_zombie(pid),
    }
}

fn is_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // `pid (comm) S …`: the state follows the last ')' (comm may hold parentheses).
    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).is_some_and(|state| state == "Z")
}

/// Starts the watchdog: `program __reaper` in a session of its own, with its stderr as given.
/// Everything registered so far is sent to it at once. Returns its pid. A no-op when one
/// already runs.
///
/// # Errors
/// The program cannot be started, or it is not a reaper of this version.
pub fn start_watchdog(program: &Path, stderr: Stdio) -> Result<u32> {
    let mut registry = registry();
    if let Some(w) = &registry.watchdog {
        return Ok(w.child.id());
    }
    let mut command = Command::new(program);
    command.arg(REAPER_ARG).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(stderr).current_dir("/");
    for (name, value) in child_env() {
        command.env(name, value);
    }
    let mut child = command.spawn().map_err(HarnessError::io(format!("starting the watchdog {} {REAPER_ARG}", program.display())))?;
    let Some(stdout) = child.stdout.take() else { return Err(not_a_reaper(program, "no stdout")) };
    // A foreign program may print nothing and wait for input: read the handshake on a thread.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    let Some(stdin) = child.stdin.take().filter(|_| line.trim() == HANDSHAKE) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(not_a_reaper(program, &format!("it answered {:?}", line.trim())));
    };
    let pid = child.id();
    registry.watchdog = Some(Watchdog { child, stdin });
    registry.send(&Message::Hello { run: run_id().to_owned(), pid: std::process::id() });
    for resource in registry.items.clone() {
        registry.send(&Message::Add { resource });
    }
    tracing::debug!(pid, program = %program.display(), "watchdog started");
    Ok(pid)
}

fn not_a_reaper(program: &Path, why: &str) -> HarnessError {
    HarnessError::Missing {
        what: format!("{} is not a clerk-harness watchdog of this version ({why})", program.display()),
        fix: "rebuild clerk-harness (cargo build -p scenarios), point HARNESS_REAPER at it, or set HARNESS_REAPER=off".into(),
    }
}

/// For library users (`cargo test`): starts a watchdog once per process if a `clerk-harness`
/// binary is found — `HARNESS_REAPER` (a path; `off` disables it), else next to the running
/// executable or one directory up (`target/debug/deps/…` → `target/debug/clerk-harness`).
/// Without one, Drop guards alone clean up (not after a SIGKILL). Blocks briefly (handshake).
pub fn ensure_watchdog() {
    {
        let mut registry = registry();
        if registry.watchdog.is_some() || registry.auto_tried {
            return;
        }
        registry.auto_tried = true;
    }
    let program = match std::env::var_os("HARNESS_REAPER") {
        Some(v) if matches!(v.to_str(), Some("off" | "0" | "none" | "false")) => return,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => std::env::current_exe().ok().and_then(|exe| {
            let dir = exe.parent()?.to_path_buf();
            [dir.join("clerk-harness"), dir.parent()?.join("clerk-harness")].into_iter().find(|p| p.is_file())
        }),
    };
    let Some(program) = program else {
        tracing::debug!("no clerk-harness binary found for the watchdog: resources are cleaned by Drop only (set HARNESS_REAPER)");
        return;
    };
    if let Err(e) = start_watchdog(&program, Stdio::null()) {
        tracing::warn!(error = %e, "no watchdog: a SIGKILL of this process would leave its processes and temp dirs behind");
    }
}

/// Whether a watchdog is attached.
#[must_use]
pub fn watchdog_running() -> bool {
    registry().watchdog.is_some()
}

/// Ends the watchdog: with nothing registered any more it is told `done` and exits without
/// acting; otherwise its pipe is closed and it removes what is left (after a Docker run it
/// always sweeps the run's label, in case a container removal failed). Waits for it and
/// returns how many process groups and directories were still registered.
pub fn finish_watchdog() -> usize {
    let (watchdog, left) = {
        let mut registry = registry();
        if registry.items.is_empty() {
            registry.send(&Message::Done);
        }
        let left = registry.items.iter().filter(|r| **r != Resource::Docker).count();
        (registry.watchdog.take(), left)
    };
    if let Some(Watchdog { mut child, stdin }) = watchdog {
        drop(stdin);
        let _ = child.wait();
    }
    left
}

/// The watchdog's side: call first thing in the reaper process. Leaves the caller's session
/// (so a Ctrl-C or a hang-up of the terminal does not reach it), writes the handshake to
/// stdout, follows the registrations on stdin and, when stdin ends without `done`, tears
/// everything down. `None` after a clean `done`.
#[must_use]
pub fn serve_reaper() -> Option<ReapReport> {
    let _ = nix::unistd::setsid();
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{HANDSHAKE}").and_then(|()| out.flush());
    }
    let mut items: Vec<Resource> = Vec::new();
    let mut run = String::new();
    let mut owner = 0;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str::<Message>(&line) {
            Ok(Message::Done) => return None,
            Ok(Message::Hello { run: r, pid }) => (run, owner) = (r, pid),
            Ok(Message::Add { resource }) => items.push(resource),
            Ok(Message::Remove { resource }) => {
                if let Some(at) = items.iter().position(|r| *r == resource) {
                    items.remove(at);
                }
            }
            Err(e) => tracing::warn!(error = %e, %line, "watchdog: ignoring a message it does not understand"),
        }
    }
    let mut report = reap(&items, &run);
    report.owner = owner;
    Some(report)
}

/// What a teardown by the watchdog or by [`clean`] removed.
#[derive(Debug, Default, Clone)]
pub struct ReapReport {
    /// The run (watchdog only).
    pub run: String,
    /// Its harness's pid (watchdog only).
    pub owner: u32,
    /// Process groups signalled.
    pub groups: Vec<u32>,
    /// Groups that needed SIGKILL after the grace period.
    pub forced: Vec<u32>,
    /// Groups still alive at the end.
    pub survivors: Vec<u32>,
    /// Containers removed.
    pub containers: Vec<String>,
    /// Networks removed.
    pub networks: Vec<String>,
    /// Directories removed (and libfaketime shared-memory files of dead processes, by `clean`).
    pub dirs: Vec<PathBuf>,
    /// Things that could not be done.
    pub problems: Vec<String>,
    /// Resources left alone because their owner is alive ([`clean`]).
    pub live_skipped: usize,
    /// Temp dirs without a marker, left alone ([`clean`]).
    pub unmarked: Vec<PathBuf>,
}

impl ReapReport {
    /// Whether nothing was done and nothing went wrong.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.containers.is_empty() && self.networks.is_empty() && self.dirs.is_empty() && self.problems.is_empty()
    }
}

impl std::fmt::Display for ReapReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.groups.is_empty() {
            parts.push(format!("stopped process groups {:?}", self.groups));
        }
        if !self.forced.is_empty() {
            parts.push(format!("SIGKILLed {:?} after {GRACE:?} (they ignored their first signal)", self.forced));
        }
        if !self.survivors.is_empty() {
            parts.push(format!("COULD NOT STOP {:?}", self.survivors));
        }
        if !self.containers.is_empty() {
            parts.push(format!("removed {} container(s)", self.containers.len()));
        }
        if !self.networks.is_empty() {
            parts.push(format!("removed {} network(s)", self.networks.len()));
        }
        if !self.dirs.is_empty() {
            let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
            parts.push(format!("removed {}", dirs.join(", ")));
        }
        for problem in &self.problems {
            parts.push(format!("problem: {problem}"));
        }
        if parts.is_empty() {
            parts.push("nothing to remove".into());
        }
        write!(f, "{}", parts.join("; "))
    }
}

/// Tears down `items` of run `run`: groups (first signal, SIGKILL after [`GRACE`]), then the
/// run's containers and networks (when [`Resource::Docker`] is among them), then directories.
/// Blocking; call it outside a Tokio runtime (it makes its own for Docker).
#[must_use]
pub fn reap(items: &[Resource], run: &str) -> ReapReport {
    let mut report = ReapReport { run: run.to_owned(), ..ReapReport::default() };
    let groups: Vec<(u32, Signal)> = items
        .iter()
        .filter_map(|r| match r {
            Resource::Group { pid, signal } => Some((*pid, Signal::try_from(*signal).unwrap_or(Signal::SIGTERM))),
            _ => None,
        })
        .collect();
    stop_groups(&groups, &mut report);
    for &(pid, _) in &groups {
        if !report.survivors.contains(&pid) {
            crate::clock::remove_faketime_shm(pid);
        }
    }
    if items.contains(&Resource::Docker) && !run.is_empty() {
        let filter = format!("{}={run}", RUN_LABEL);
        let docker = on_docker(|docker| remove_labelled(docker, filter, None));
        merge_docker(&mut report, docker);
    }
    let dirs: BTreeSet<&PathBuf> = items.iter().filter_map(|r| if let Resource::Dir { path } = r { Some(path) } else { None }).collect();
    for dir in dirs {
        remove_dir(dir, &mut report);
    }
    report
}

/// Signals every group, waits up to [`GRACE`] for all to be gone, SIGKILLs the rest.
fn stop_groups(groups: &[(u32, Signal)], report: &mut ReapReport) {
    let mut pending: Vec<u32> = Vec::new();
    for &(pid, signal) in groups {
        match signal_group(pid, Some(signal)) {
            Ok(()) => pending.push(pid),
            Err(Errno::ESRCH) => {}
            Err(e) => report.problems.push(format!("signalling process group {pid}: {e}")),
        }
    }
    report.groups.extend(&pending);
    // A separate process, not async code: polling with short sleeps is the simple way to wait
    // for processes that are not our children.
    let settle = |pending: &mut Vec<u32>, within: Duration| {
        let deadline = Instant::now() + within;
        loop {
            pending.retain(|&pid| group_alive(pid));
            if pending.is_empty() || Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    settle(&mut pending, GRACE);
    for &pid in &pending {
        tracing::warn!(pid, "process group ignored its first signal for {GRACE:?}: SIGKILL");
        let _ = signal_group(pid, Some(Signal::SIGKILL));
    }
    report.forced.extend(&pending);
    settle(&mut pending, Duration::from_secs(5));
    report.survivors = pending;
}

fn remove_dir(dir: &Path, report: &mut ReapReport) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => report.dirs.push(dir.to_path_buf()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => report.problems.push(format!("removing {}: {e}", dir.display())),
    }
}

/// Runs `job` with a Docker client on a runtime of its own; an unreachable daemon is a problem
/// in the report, not an error.
fn on_docker<Fut>(job: impl FnOnce(testcontainers::bollard::Docker) -> Fut) -> ReapReport
where
    Fut: std::future::Future<Output = ReapReport>,
{
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return ReapReport { problems: vec!["could not start a runtime for Docker".into()], ..ReapReport::default() };
    };
    rt.block_on(async {
        match crate::docker::connect().await {
            Ok(docker) => match tokio::time::timeout(Duration::from_secs(60), job(docker)).await {
                Ok(report) => report,
                Err(_) => ReapReport { problems: vec!["Docker did not answer within 60 s".into()], ..ReapReport::default() },
            },
            Err(e) => ReapReport { problems: vec![format!("Docker: {e}")], ..ReapReport::default() },
        }
    })
}

fn merge_docker(report: &mut ReapReport, docker: ReapReport) {
    report.containers.extend(docker.containers);
    report.networks.extend(docker.networks);
    report.live_skipped += docker.live_skipped;
    report.problems.extend(docker.problems);
}

/// Removes containers, then networks, matching the label `filter`; with `owner_dead`, only
/// those whose owner label passes it (and that were labelled on this machine).
async fn remove_labelled(docker: testcontainers::bollard::Docker, filter: String, owner_dead: Option<fn(&str) -> bool>) -> ReapReport {
    let mut report = ReapReport::default();
    let (containers, networks) = match crate::docker::labelled(&docker, &filter).await {
        Ok(found) => found,
        Err(e) => {
            report.problems.push(e.to_string());
            return report;
        }
    };
    let keep = |labels: &std::collections::HashMap<String, String>| {
        owner_dead.is_some_and(|dead| !dead(labels.get(OWNER_LABEL).map_or("", String::as_str)) || !same_host(labels))
    };
    for (id, labels) in containers {
        if keep(&labels) {
            report.live_skipped += 1;
            continue;
        }
        match crate::docker::remove_container(&docker, &id).await {
            Ok(()) => report.containers.push(id),
            Err(e) => report.problems.push(e.to_string()),
        }
    }
    for (id, labels) in networks {
        if keep(&labels) {
            report.live_skipped += 1;
            continue;
        }
        match docker.remove_network(&id).await {
            Ok(()) => report.networks.push(id),
            Err(e) => report.problems.push(format!("removing network {id}: {e}")),
        }
    }
    report
}

fn owner_dead(pid: &str) -> bool {
    pid.parse::<u32>().is_ok_and(|pid| pid != std::process::id() && !process_alive(pid))
}

/// Containers labelled on another machine (a shared daemon) have pids of another namespace.
fn same_host(labels: &std::collections::HashMap<String, String>) -> bool {
    labels.get(HOST_LABEL).is_none_or(|h| *h == hostname())
}

/// `clerk-harness clean`: removes what runs whose harness process is gone left behind —
/// processes carrying [`PID_ENV`], temp dirs with a [marker](crate::identity::MARKER_FILE), containers and
/// networks with the [owner label](crate::identity::OWNER_LABEL) — and never anything of a live
/// process. Temp dirs without a marker are listed, not removed. Blocking; call it outside a
/// Tokio runtime.
#[must_use]
pub fn clean() -> ReapReport {
    let mut report = ReapReport::default();
    let dead = |pid: u32| pid != std::process::id() && !process_alive(pid);

    // Processes first, so nothing writes into a directory while it is removed.
    let mut groups: Vec<(u32, Signal)> = Vec::new();
    for (pid, owner, group, comm, reaper) in harness_processes() {
        if reaper {
            continue;
        }
        if !dead(owner) {
            report.live_skipped += 1;
            continue;
        }
        let signal = if comm == "postgres" { Signal::SIGQUIT } else { Signal::SIGTERM };
        let target = group.unwrap_or(pid);
        if !groups.iter().any(|(g, _)| *g == target) {
            groups.push((target, signal));
        }
    }
    stop_groups(&groups, &mut report);

    let mut parents: Vec<PathBuf> = vec![std::env::temp_dir(), PathBuf::from("/dev/shm"), data_parent()];
    parents.dedup();
    let mut seen = BTreeSet::new();
    for parent in parents {
        let Ok(entries) = std::fs::read_dir(&parent) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            // libfaketime's shared memory of a backend that is gone (see clock::faketime_shm_files).
            if let Some(pid) = crate::clock::faketime_shm_pid(name).filter(|_| parent == Path::new("/dev/shm")) {
                if dead(pid) && std::fs::remove_file(&path).is_ok() {
                    report.dirs.push(path);
                }
                continue;
            }
            if !TEMP_PREFIXES.iter().any(|p| name.starts_with(p)) || !path.is_dir() || !seen.insert(path.clone()) {
                continue;
            }
            match read_marker(&path) {
                None => report.unmarked.push(path),
                Some(owner) if !dead(owner.pid) => report.live_skipped += 1,
                Some(_) => remove_dir(&path, &mut report),
            }
        }
    }

    let docker = on_docker(|docker| remove_labelled(docker, OWNER_LABEL.to_owned(), Some(owner_dead)));
    merge_docker(&mut report, docker);
    report
}

/// `(pid, owner pid, process group, comm, is a watchdog)` of every process carrying [`PID_ENV`].
fn harness_processes() -> Vec<(u32, u32, Option<u32>, String, bool)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return found };
    let needle = format!("{PID_ENV}=");
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        let owner = environ.split(|b| *b == 0).find_map(|var| std::str::from_utf8(var).ok()?.strip_prefix(&needle)?.parse::<u32>().ok());
        let Some(owner) = owner else { continue };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default().trim().to_owned();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let reaper = cmdline.split(|b| *b == 0).any(|arg| arg == REAPER_ARG.as_bytes());
        let group = i32::try_from(pid)
            .ok()
            .and_then(|raw| nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(raw))).ok())
            .and_then(|g| u32::try_from(g.as_raw()).ok());
        found.push((pid, owner, group, comm, reaper));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_json_line_each() {
        let text = serde_json::to_string(&Message::Add { resource: Resource::group(42, Signal::SIGQUIT) }).expect("json");
        assert_eq!(text, r#"{"op":"add","resource":{"kind":"group","pid":42,"signal":3}}"#);
        let back: Message = serde_json::from_str(r#"{"op":"remove","resource":{"kind":"dir","path":"/tmp/x"}}"#).expect("parse");
        assert!(matches!(back, Message::Remove { resource: Resource::Dir { .. } }));
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(process_alive(std::process::id()));
        let mut child = Command::new("true").spawn().expect("spawn true");
        let pid = child.id();
        let _ = child.wait();
        assert!(!process_alive(pid));
        assert!(!process_alive(0));
    }

    #[test]
    fn reap_stops_a_group_that_ignores_sigterm_and_removes_dirs() {
        use std::os::unix::process::CommandExt as _;
        let mut child =
            Command::new("sh").args(["-c", "trap '' TERM; echo ready; while :; do sleep 1; done"]).stdout(Stdio::piped()).process_group(0).spawn().expect("sh");
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
        let pid = child.id();
        let dir = tempfile::tempdir().expect("dir").keep();
        // Reap the leader on a thread, as init would for an orphan.
        let waiter = std::thread::spawn(move || child.wait());
        let report = reap(&[Resource::group(pid, Signal::SIGTERM), Resource::dir(&dir)], "");
        let _ = waiter.join();
        assert_eq!(report.forced, vec![pid], "{report}");
        assert!(report.survivors.is_empty(), "{report}");
        assert!(!group_alive(pid));
        assert!(!dir.exists());
    }
}
