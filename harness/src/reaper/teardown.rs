//! Teardown of a run's resources: process groups (their first signal, SIGKILL after
//! [`GRACE`]), containers and networks by label, directories — and what it removed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;

use super::registry::Resource;
use crate::identity::{hostname, HOST_LABEL, OWNER_LABEL, RUN_LABEL};
use crate::process::{group_alive, signal_group};

/// How long a process group gets between its first signal and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// What a teardown by the watchdog or by [`clean`](super::clean) removed.
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
    /// Resources left alone because their owner is alive ([`clean`](super::clean)).
    pub live_skipped: usize,
    /// Temp dirs without a marker, left alone ([`clean`](super::clean)).
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
        sweep_run(run, &mut report);
    }
    let dirs: BTreeSet<&PathBuf> = items.iter().filter_map(|r| if let Resource::Dir { path } = r { Some(path) } else { None }).collect();
    for dir in dirs {
        remove_dir(dir, &mut report);
    }
    report
}

/// Removes run `run`'s containers and networks (by its run label) into `report`.
pub(super) fn sweep_run(run: &str, report: &mut ReapReport) {
    let filter = format!("{RUN_LABEL}={run}");
    let docker = on_docker(|docker| remove_labelled(docker, filter, None));
    merge_docker(report, docker);
}

/// Signals every group, waits up to [`GRACE`] for all to be gone, SIGKILLs the rest.
pub(super) fn stop_groups(groups: &[(u32, Signal)], report: &mut ReapReport) {
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

pub(super) fn remove_dir(dir: &Path, report: &mut ReapReport) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => report.dirs.push(dir.to_path_buf()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => report.problems.push(format!("removing {}: {e}", dir.display())),
    }
}

/// Runs `job` with a Docker client on a runtime of its own; an unreachable daemon is a problem
/// in the report, not an error.
pub(super) fn on_docker<Fut>(job: impl FnOnce(testcontainers::bollard::Docker) -> Fut) -> ReapReport
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

pub(super) fn merge_docker(report: &mut ReapReport, docker: ReapReport) {
    report.containers.extend(docker.containers);
    report.networks.extend(docker.networks);
    report.live_skipped += docker.live_skipped;
    report.problems.extend(docker.problems);
}

/// Removes containers, then networks, matching the label `filter`; with `owner_dead`, only
/// those whose owner label passes it (and that were labelled on this machine).
pub(super) async fn remove_labelled(docker: testcontainers::bollard::Docker, filter: String, owner_dead: Option<fn(&str) -> bool>) -> ReapReport {
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

/// Containers labelled on another machine (a shared daemon) have pids of another namespace.
fn same_host(labels: &std::collections::HashMap<String, String>) -> bool {
    labels.get(HOST_LABEL).is_none_or(|h| *h == hostname())
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader};
    use std::os::unix::process::CommandExt as _;
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn reap_stops_a_group_that_ignores_sigterm_and_removes_dirs() {
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
