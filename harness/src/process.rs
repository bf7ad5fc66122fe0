//! Small process and network helpers: free ports, the unprivileged user, stopping a whole
//! process group (first signal, SIGKILL after a grace period),

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Pid, Uid, User};

use crate::error::{HarnessError, Result};

/// A port that was free a moment ago on 127.0.0.1, for a server the harness starts later
/// (the backend, a local Postgres).
///
/// It is chosen below the kernel's ephemeral range (`ip_local_port_range`, 32768–60999 by
/// default), where the kernel never hands out ports by itself: a port taken from that range
/// (a bind to port 0) and released can be given to the next socket that binds port 0 — a
/// mock's listener in a parallel test took a backend's port that way, and the backend's health
/// probe was answered by the mock. Falls back to a kernel-chosen port when nothing below the
/// range is free (or the range starts too low to leave room).
///
/// # Errors
/// Binding a probe socket failed.
pub fn free_port() -> Result<u16> {
    use rand::Rng as _;
    let (low, high) = below_ephemeral_range(&std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default());
    let mut rng = rand::thread_rng();
    for _ in 0..64 {
        if low >= high {
            break;
        }
        let port = rng.gen_range(low..high);
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(HarnessError::io("probing for a free port"))?;
    Ok(listener.local_addr().map_err(HarnessError::io("probing for a free port"))?.port())
}

/// The ports `free_port` picks from, `low..high`: from 20000 up to the start of the ephemeral
/// range read from `ip_local_port_range` ("32768\t60999"); empty when that range starts at or
/// below 20000 or cannot be read.
fn below_ephemeral_range(range: &str) -> (u16, u16) {
    const LOW: u16 = 20_000;
    let start = range.split_whitespace().next().and_then(|n| n.parse::<u16>().ok()).unwrap_or(0);
    (LOW, start.max(LOW))
}

/// `(uid, gid)` to run Postgres as when this process is root (`postgres`, else `nobody`);
/// `None` when not root (Postgres refuses to run as root).
///
/// # Errors
/// Running as root and neither user exists.
pub fn unprivileged_user() -> Result<Option<(u32, u32)>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Ok(Some(user)) = User::from_name(name) {
            return Ok(Some((user.uid.as_raw(), user.gid.as_raw())));
        }
    }
    Err(HarnessError::Missing {
        what: "running as root, and Postgres refuses to run as root, but there is no `postgres` or `nobody` user".into(),
        fix: "create one (useradd --system postgres), run the tests as a normal user, or use HARNESS_POSTGRES=docker".into(),
    })
}

/// Sends `signal` (`None`: only checks) to process group `pgid`. Refuses the ids that would
/// hit more than one group or the caller's own: 0 (`killpg(0)` is the caller's group), 1,
/// anything beyond `i32`, and this process's own group.
///
/// # Errors
/// `EINVAL` for a refused id; `ESRCH` when the group is gone; `EPERM`.
pub fn signal_group(pgid: u32, signal: Option<Signal>) -> nix::Result<()> {
    let raw = i32::try_from(pgid).map_err(|_| Errno::EINVAL)?;
    if raw <= 1 || Pid::from_raw(raw) == nix::unistd::getpgrp() {
        return Err(Errno::EINVAL);
    }
    killpg(Pid::from_raw(raw), signal)
}

/// Whether any process of group `pgid` still exists (zombies included).
#[must_use]
pub fn group_alive(pgid: u32) -> bool {
    !matches!(signal_group(pgid, None), Err(Errno::ESRCH | Errno::EINVAL))
}

/// The pid of a freshly spawned Tokio child: it has one until it is reaped.
///
/// # Errors
/// The child was already reaped (it cannot then lead a group we could signal).
pub fn spawned_pid(child: &tokio::process::Child, what: &str) -> Result<u32> {
    child.id().ok_or_else(|| HarnessError::Missing { what: format!("{what} exited before its process id was read"), fix: "see its output above".into() })
}

/// Stops the group led by `pid`, our child: `first` signal, SIGKILL after `grace` (reported
/// with a warning), then SIGKILL for any straggler of the group. `wait` blocks until the
/// leader is reaped. No polling: a timer thread escalates while this thread waits.
pub fn stop_group_blocking(pid: u32, first: Signal, grace: Duration, wait: impl FnOnce()) {
    if signal_group(pid, Some(first)).is_err() {
        wait();
        return;
    }
    let (done, timer) = std::sync::mpsc::channel::<()>();
    let escalate = std::thread::spawn(move || {
        if matches!(timer.recv_timeout(grace), Err(std::sync::mpsc::RecvTimeoutError::Timeout)) {
            tracing::warn!(pid, signal = ?first, "process group did not exit within {grace:?} of {first}: SIGKILL");
            let _ = signal_group(pid, Some(Signal::SIGKILL));
        }
    });
    wait();
    drop(done);
    let _ = escalate.join();
    let _ = signal_group(pid, Some(Signal::SIGKILL));
}

/// [`stop_group_blocking`] for a `std` child; run off the async worker when inside a
/// multi-threaded runtime.
pub fn stop_child_group(child: &mut std::process::Child, first: Signal, grace: Duration) {
    let pid = child.id();
    off_runtime(|| {
        stop_group_blocking(pid, first, grace, || {
            let _ = child.wait();
        });
    });
}

/// Async teardown of a group led by a Tokio child: `first`, SIGKILL after `grace` (reported
/// with a warning), SIGKILL for stragglers.
pub async fn stop_group(child: &mut tokio::process::Child, pid: u32, first: Signal, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) || signal_group(pid, Some(first)).is_err() {
        let _ = signal_group(pid, Some(Signal::SIGKILL));
        let _ = child.wait().await;
        return;
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        tracing::warn!(pid, signal = ?first, "process group did not exit within {grace:?} of {first}: SIGKILL");
        let _ = signal_group(pid, Some(Signal::SIGKILL));
        let _ = child.wait().await;
    }
    let _ = signal_group(pid, Some(Signal::SIGKILL));
}

/// Runs blocking teardown code from a `Drop`: on a multi-threaded Tokio runtime the worker
/// hands its other tasks over first (`block_in_place`); elsewhere it just runs.
pub fn off_runtime<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader};
    use std::os::unix::process::CommandExt as _;
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn free_ports_come_from_below_the_ephemeral_range() {
        assert_eq!(below_ephemeral_range("32768\t60999\n"), (20_000, 32_768));
        assert_eq!(below_ephemeral_range("1024 65535"), (20_000, 20_000), "no room: the kernel picks");
        assert_eq!(below_ephemeral_range(""), (20_000, 20_000));
        let (low, high) = below_ephemeral_range(&std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").expect("the range"));
        for _ in 0..20 {
            let port = free_port().expect("a free port");
            if low < high {
                assert!((low..high).contains(&port), "{port} is outside {low}..{high}");
            }
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("the port is free");
        }
    }

    #[test]
    fn group_zero_one_and_our_own_are_refused() {
        // Without the guard, SIGCONT would reach this test's own process group (harmless, but
        // the call would succeed).
        assert_eq!(signal_group(0, Some(Signal::SIGCONT)), Err(Errno::EINVAL));
        assert_eq!(signal_group(1, Some(Signal::SIGCONT)), Err(Errno::EINVAL));
        let own = u32::try_from(nix::unistd::getpgrp().as_raw()).expect("pgid");
        assert_eq!(signal_group(own, Some(Signal::SIGCONT)), Err(Errno::EINVAL));
        assert_eq!(signal_group(u32::MAX, Some(Signal::SIGCONT)), Err(Errno::EINVAL));
    }

    /// SIGKILLed members vanish from the group once init reaped them: poll with a deadline.
    fn gone_soon(pgid: u32) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while group_alive(pgid) {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    fn stubborn_group() -> std::process::Child {
        let mut child = Command::new("sh")
            .args(["-c", "trap '' TERM; sh -c \"trap '' TERM; echo ready; while :; do sleep 1; done\""])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("sh");
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
        assert_eq!(line.trim(), "ready");
        child
    }

    #[test]
    fn a_group_that_ignores_sigterm_is_killed_after_the_grace_period() {
        let mut child = stubborn_group();
        let pid = child.id();
        stop_child_group(&mut child, Signal::SIGTERM, Duration::from_millis(200));
        assert!(gone_soon(pid), "the grandchild survived");
    }

    #[tokio::test]
    async fn the_async_stop_escalates_too() {
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "trap '' TERM; echo ready; while :; do sleep 1; done"])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("sh");
        let pid = spawned_pid(&child, "sh").expect("pid");
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().expect("stdout")));
        assert_eq!(lines.next_line().await.expect("read").as_deref(), Some("ready"));
        stop_group(&mut child, pid, Signal::SIGTERM, Duration::from_millis(200)).await;
        assert!(gone_soon(pid));
    }
}
