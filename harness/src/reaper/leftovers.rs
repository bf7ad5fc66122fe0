//! `clerk-harness clean`: what runs whose harness process is gone left behind, found by
//! the marks [`crate::identity`] puts on everything, removed without touching a live run's.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::Signal;

use super::teardown::{merge_docker, on_docker, remove_dir, remove_labelled, stop_groups, ReapReport};
use super::watchdog::REAPER_ARG;
use crate::identity::{data_parent, read_marker, OWNER_LABEL, PID_ENV, TEMP_PREFIXES};

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

fn owner_dead(pid: &str) -> bool {
    pid.parse::<u32>().is_ok_and(|pid| pid != std::process::id() && !process_alive(pid))
}

/// `clerk-harness clean`: removes what runs whose harness process is gone left behind —
/// processes carrying `CLERK_HARNESS_PID`, temp dirs with a [marker](crate::identity::MARKER_FILE), containers and
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
    use super::process_alive;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().expect("spawn true");
        let pid = child.id();
        let _ = child.wait();
        assert!(!process_alive(pid));
        assert!(!process_alive(0));
    }
}
