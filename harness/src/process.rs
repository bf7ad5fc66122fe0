//! Small process and network helpers: free ports, the unprivileged user, killing a whole
//! process group, random names.

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Pid, Uid, User};
use rand::Rng;

use crate::error::{HarnessError, Result};

/// A port that was free a moment ago on 127.0.0.1.
///
/// # Errors
/// Binding a probe socket failed.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(HarnessError::io("probing for a free port"))?;
    Ok(listener.local_addr().map_err(HarnessError::io("probing for a free port"))?.port())
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

/// Sends `signal` to the process group led by `pid`, waits up to `grace` for `exited()`,
/// then SIGKILLs the group. Later members of the group (grandchildren) are killed too.
pub fn kill_group_with(pid: u32, signal: Signal, grace: Duration, mut exited: impl FnMut() -> bool) {
    let Ok(raw) = i32::try_from(pid) else { return };
    let group = Pid::from_raw(raw);
    if exited() {
        let _ = killpg(group, Signal::SIGKILL);
        return;
    }
    let _ = killpg(group, signal);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if exited() {
            let _ = killpg(group, Signal::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    tracing::warn!(pid, ?signal, "process group did not exit in {grace:?}: SIGKILL");
    let _ = killpg(group, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !exited() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// [`kill_group_with`] for a `std` child that leads its own group; reaps it.
pub fn kill_group(child: &mut std::process::Child, signal: Signal, grace: Duration) {
    let pid = child.id();
    kill_group_with(pid, signal, grace, || !matches!(child.try_wait(), Ok(None)));
}

/// A random lowercase alphanumeric string (database names, passwords).
#[must_use]
pub fn random_token(len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len).map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())])).collect()
}
