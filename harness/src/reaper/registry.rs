//! The registry: what must not outlive the run ([`Resource`]), registered while it exists by
//! guards that end the registration on drop ([`Registration`], [`OwnedDir`],
//! [`GroupGuard`]), and forwarded to the watchdog when one runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin};
use std::sync::{Mutex, MutexGuard, PoisonError};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::error::{HarnessError, Result};
use crate::identity::write_marker;
use crate::process::signal_group;

/// Something that must not outlive the run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resource {
    /// A process group, by its leader's pid, and the signal its teardown starts with.
    Group {
        /// The leader's pid (= the group id).
        pid: u32,
        /// The first signal (SIGTERM; SIGQUIT for Postgres), SIGKILL after [`GRACE`](super::GRACE).
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
pub(super) enum Message {
    Hello { run: String, pid: u32 },
    Add { resource: Resource },
    Remove { resource: Resource },
    Done,
}

pub(super) struct Watchdog {
    pub(super) child: Child,
    pub(super) stdin: ChildStdin,
}

pub(super) struct Registry {
    pub(super) items: Vec<Resource>,
    pub(super) watchdog: Option<Watchdog>,
    pub(super) auto_tried: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { items: Vec::new(), watchdog: None, auto_tried: false });

pub(super) fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    pub(super) fn send(&mut self, message: &Message) {
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
}
