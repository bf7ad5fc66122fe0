//! The watchdog: the `clerk-harness` binary in a hidden reaper mode ([`REAPER_ARG`]), in a
//! session of its own, following this process's registrations through a pipe and tearing
//! down what is left when the pipe closes without a final `done`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::registry::{registry, Message, Resource, Watchdog};
use super::teardown::{reap, sweep_run, ReapReport};
use crate::error::{HarnessError, Result};
use crate::identity::{child_env, run_id};

/// The hidden subcommand that turns the `clerk-harness` binary into the watchdog.
pub const REAPER_ARG: &str = "__reaper";

/// First line the watchdog writes, so a stale or foreign binary is noticed.
const HANDSHAKE: &str = "clerk-harness-reaper 1";

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
    if items.contains(&Resource::Docker) && !run.is_empty() {
        // A container the owner asked for just before it died is created by the daemon after
        // the first sweep (the request outlives its client): sweep again while it may appear.
        for wait in LATE_SWEEPS {
            std::thread::sleep(wait);
            sweep_run(&run, &mut report);
        }
    }
    report.owner = owner;
    Some(report)
}

/// The pauses before the sweeps after a dead run's first one (6 s in all).
const LATE_SWEEPS: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(3)];
