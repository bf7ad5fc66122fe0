//! [`BackendClock`]: the backend's clock under the harness's control, so expiry, caches and
//! clock skew are tested in milliseconds instead of by sleeping on the real clock.
//!
//! How the backend's clock is moved depends on how it runs:
//!
//! - **a local process** runs under [libfaketime](https://github.com/wolfcw/libfaketime)
//!   (Debian: `apt-get install libfaketime`): `LD_PRELOAD` plus `FAKETIME_TIMESTAMP_FILE`
//!   pointing at a file the harness rewrites (`+7.200`: seconds ahead of the real clock) and
//!   `FAKETIME_NO_CACHE=1`, so each change applies to the running backend at its next clock
//!   read (Python's `time.time()` and `time.monotonic()` both follow; ≈ 3 µs per read).
//!   Not for a statically linked program or a Go binary (Go reads the clock without libc):
//!   they keep the real clock.
//! - **a container** runs under the same libfaketime: this machine's shared object is copied
//!   into a folder with the timestamp file and that folder is bind-mounted read-only at
//!   [`CONTAINER_CLOCK_DIR`] (a folder, not the file, so the atomic rename of each change is
//!   seen inside). Before the backend starts, a probe container from the same image asks the
//!   image's own dynamic loader to load the library ([`container_probe_command`]): an image
//!   without glibc's loader (Alpine's musl, distroless static) or with an older glibc keeps
//!   the real clock, with the loader's words as the reason. Needs a Docker daemon on this
//!   machine (a bind mount of a local folder).
//! - **an in-process backend** (a [`crate::backend::Launcher`]) that reads a
//!   [`mock_clerk::Clock`] it exposes ([`crate::backend::Launcher::clock`]).
//! - **a backend given by URL**: not controlled (the reason is [`BackendClock::unavailable`]).
//!
//! Two operations, and how they keep the mock consistent:
//!
//! - [`BackendClock::advance`] — *time passes*: Clerk's (the mock's) clock and the backend's
//!   move forward together. Clerk and the backend live in the same world: an hour that passes
//!   for the backend and not for Clerk is a clock skew, not the passage of time — tokens minted
//!   afterwards would look an hour old to the backend, and Svix timestamps would be stale.
//! - [`BackendClock::set_offset`] — *the backend's host clock is off*: the backend's clock
//!   reads Clerk's plus `offset` (negative: behind Clerk). Only that difference is observable
//!   to the backend (the `iat`/`nbf`/`exp` it is sent, Svix timestamps, the TLS certificates'
//!   one-day margin), so it is made by moving Clerk's clock, never the backend's: libfaketime
//!   also moves the monotonic clock, and a monotonic clock that steps — backwards above all —
//!   stalls event-loop timers and trips worker watchdogs. It therefore works for every backend,
//!   controlled or not.
//!
//! When the backend's clock cannot be controlled, `advance` is refused
//! ([`HarnessError::NotApplicable`] with the reason).
//!
//! A monotonic clock that jumps forward trips gunicorn's worker watchdog (a worker that has
//! not checked in for `--timeout` seconds is killed), so a process under libfaketime gets
//! `GUNICORN_CMD_ARGS=--timeout 0` ahead of any `GUNICORN_CMD_ARGS` of its own (a `--timeout`
//! on its command line still wins).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mock_clerk::Clock;

use crate::error::{HarnessError, Result};

/// Where Debian, Fedora and a source install put libfaketime.
pub const LIBFAKETIME_PATHS: [&str; 5] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// The libfaketime shared object on this machine, if installed.
#[must_use]
pub fn find_libfaketime() -> Option<PathBuf> {
    LIBFAKETIME_PATHS.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Where a container sees the folder with libfaketime and the timestamp file.
pub const CONTAINER_CLOCK_DIR: &str = "/clerk-harness-clock";

/// The name of the copy of libfaketime in a container's clock folder.
const CONTAINER_LIBRARY: &str = "libfaketime.so.1";

/// How the backend's clock is moved.
#[derive(Debug, Clone)]
pub enum Control {
    /// libfaketime in the backend process, reading `file`.
    FakeTime {
        /// The shared object (`LD_PRELOAD`) on this machine.
        library: PathBuf,
        /// The timestamp file the harness rewrites, on this machine.
        file: PathBuf,
        /// For a container: the folder on this machine holding `file` and a copy of `library`,
        /// bind-mounted at [`CONTAINER_CLOCK_DIR`] (`None`: a local process).
        mounted: Option<PathBuf>,
    },
    /// An in-process backend reading this clock.
    InProcess(Clock),
    /// Not controlled, and why.
    Unavailable(String),
}

/// The backend's clock. Cloning shares it.
#[derive(Debug, Clone)]
pub struct BackendClock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    mock: Clock,
    control: Control,
    /// The backend's offset from the real clock, ms.
    backend_ms: Mutex<i64>,
}

impl BackendClock {
    /// A clock moved by `control`; `mock` is Clerk's (the mock instance's) clock.
    ///
    /// # Errors
    /// The timestamp file cannot be written.
    pub(crate) fn new(mock: Clock, control: Control) -> Result<Self> {
        let clock = Self { inner: Arc::new(Inner { mock, control, backend_ms: Mutex::new(0) }) };
        clock.apply(0)?;
        Ok(clock)
    }

    /// A clock that is not controlled, for `reason`.
    #[must_use]
    pub fn unavailable(mock: Clock, reason: impl Into<String>) -> Self {
        Self { inner: Arc::new(Inner { mock, control: Control::Unavailable(reason.into()), backend_ms: Mutex::new(0) }) }
    }

    /// Why the backend's clock is not controlled (`None`: it is).
    #[must_use]
    pub fn unavailable_reason(&self) -> Option<&str> {
        match &self.inner.control {
            Control::Unavailable(reason) => Some(reason),
            _ => None,
        }
    }

    /// Whether the backend's clock is controlled.
    #[must_use]
    pub fn is_controlled(&self) -> bool {
        self.unavailable_reason().is_none()
    }

    /// How the clock is controlled, for reports: `libfaketime (…)`, `in-process` or the reason.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.inner.control {
            Control::FakeTime { library, mounted: None, .. } => format!("libfaketime ({})", library.display()),
            Control::FakeTime { library, mounted: Some(_), .. } => {
                format!("libfaketime ({}, mounted into the container at {CONTAINER_CLOCK_DIR})", library.display())
            }
            Control::InProcess(_) => "the in-process backend's clock".into(),
            Control::Unavailable(reason) => format!("not controlled: {reason}"),
        }
    }

    /// The variables that put a process under this clock (empty unless libfaketime is used),
    /// with the paths it sees (inside the container for a container). An `LD_PRELOAD` the
    /// backend already has is kept, after libfaketime.
    #[must_use]
    pub(crate) fn process_env(&self, existing_preload: Option<&str>) -> Vec<(String, String)> {
        let Control::FakeTime { library, file, mounted } = &self.inner.control else {
            return vec![];
        };
        let (library, file) = match mounted {
            None => (library.display().to_string(), file.display().to_string()),
            Some(_) => (
                format!("{CONTAINER_CLOCK_DIR}/{CONTAINER_LIBRARY}"),
                format!("{CONTAINER_CLOCK_DIR}/{}", file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()),
            ),
        };
        let preload = match existing_preload.filter(|p| !p.is_empty()) {
            Some(other) => format!("{library}:{other}"),
            None => library,
        };
        vec![
            ("LD_PRELOAD".into(), preload),
            ("FAKETIME_TIMESTAMP_FILE".into(), file),
            // Re-read the file at every clock read: a change applies at once, not after a cache period.
            ("FAKETIME_NO_CACHE".into(), "1".into()),
        ]
    }

    /// The folder to bind-mount read-only at `/clerk-harness-clock` in a backend container
    /// (`None` unless the clock is a container's libfaketime).
    #[must_use]
    pub(crate) fn container_mount(&self) -> Option<&Path> {
        match &self.inner.control {
            Control::FakeTime { mounted: Some(dir), .. } => Some(dir),
            _ => None,
        }
    }

    /// `GUNICORN_CMD_ARGS` for a process under libfaketime: `--timeout 0` (no worker
    /// watchdog, which a forward jump of the monotonic clock would trip) ahead of `existing`.
    /// `None` when the clock is not libfaketime's.
    #[must_use]
    pub(crate) fn gunicorn_args(&self, existing: Option<&str>) -> Option<String> {
        if !matches!(self.inner.control, Control::FakeTime { .. }) {
            return None;
        }
        Some(match existing.map(str::trim).filter(|e| !e.is_empty()) {
            Some(own) => format!("--timeout 0 {own}"),
            None => "--timeout 0".into(),
        })
    }

    /// Time passes: Clerk's clock and the backend's move forward by `by` together.
    ///
    /// # Errors
    /// [`HarnessError::NotApplicable`] when the backend's clock is not controlled (the
    /// reason); an I/O error writing the timestamp file.
    pub fn advance(&self, by: Duration) -> Result<()> {
        if let Some(reason) = self.unavailable_reason() {
            return Err(HarnessError::NotApplicable(format!("the backend's clock cannot be moved: {reason}")));
        }
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 4);
        let mut backend = self.inner.backend_ms.lock().unwrap_or_else(PoisonError::into_inner);
        self.apply(*backend + ms)?;
        *backend += ms;
        self.inner.mock.shift_ms(ms);
        Ok(())
    }

    /// The backend's host clock is `offset_ms` milliseconds off Clerk's (negative: behind),
    /// made by moving Clerk's clock (see the module documentation); `0` undoes it.
    pub fn set_offset_ms(&self, offset_ms: i64) {
        let backend = self.inner.backend_ms.lock().unwrap_or_else(PoisonError::into_inner);
        self.inner.mock.set_offset_ms(*backend - offset_ms);
    }

    /// [`BackendClock::set_offset_ms`] in whole seconds.
    pub fn set_offset(&self, offset_secs: i64) {
        self.set_offset_ms(offset_secs.saturating_mul(1000));
    }

    /// How far the backend's clock is off Clerk's now, ms (negative: behind).
    #[must_use]
    pub fn offset_ms(&self) -> i64 {
        *self.inner.backend_ms.lock().unwrap_or_else(PoisonError::into_inner) - self.inner.mock.offset_ms()
    }

    /// How far the backend's clock is ahead of the real clock, ms.
    #[must_use]
    pub fn backend_offset_ms(&self) -> i64 {
        *self.inner.backend_ms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Clerk's (the mock's) clock.
    #[must_use]
    pub fn clerk(&self) -> &Clock {
        &self.inner.mock
    }

    /// Puts the backend's clock `ms` ahead of the real clock.
    fn apply(&self, ms: i64) -> Result<()> {
        match &self.inner.control {
            Control::FakeTime { file, .. } => write_offset(file, ms),
            Control::InProcess(clock) => {
                clock.set_offset_ms(ms);
                Ok(())
            }
            Control::Unavailable(_) => Ok(()),
        }
    }
}

/// The shared-memory files libfaketime (0.9.10) creates for the first process of a tree it is
/// preloaded into, named after that process's pid — here the backend's process-group leader.
/// It removes them only when that same process exits normally, so a backend stopped by a
/// signal's default action, SIGKILLed, or whose leader exec'd another program leaves them in
/// `/dev/shm`.
#[must_use]
pub fn faketime_shm_files(pid: u32) -> [PathBuf; 2] {
    [PathBuf::from(format!("/dev/shm/faketime_shm_{pid}")), PathBuf::from(format!("/dev/shm/sem.faketime_sem_{pid}"))]
}

/// Removes [`faketime_shm_files`] of `pid` (a process that is gone); absent files are fine.
pub fn remove_faketime_shm(pid: u32) {
    for file in faketime_shm_files(pid) {
        if let Err(e) = std::fs::remove_file(&file) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(file = %file.display(), error = %e, "could not remove libfaketime's shared memory");
            }
        }
    }
}

/// The pid in a libfaketime shared-memory file name (`faketime_shm_123`, `sem.faketime_sem_123`).
#[must_use]
pub fn faketime_shm_pid(name: &str) -> Option<u32> {
    name.strip_prefix("faketime_shm_").or_else(|| name.strip_prefix("sem.faketime_sem_")).and_then(|pid| pid.parse().ok())
}

/// Prepares `dir` (a fresh folder of the harness's) to be bind-mounted into a container at
/// `/clerk-harness-clock`: a copy of `library` in it, and the folder and its files readable
/// by a container user that is not root. Returns the timestamp file's path on this machine.
///
/// # Errors
/// The copy or the permissions fail.
pub fn prepare_container_dir(dir: &Path, library: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let copy = dir.join(CONTAINER_LIBRARY);
    std::fs::copy(library, &copy).map_err(HarnessError::io(format!("copying {} to {}", library.display(), copy.display())))?;
    for (path, mode) in [(dir, 0o755), (copy.as_path(), 0o644)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(HarnessError::io(format!("making {} readable", path.display())))?;
    }
    Ok(dir.join("faketime"))
}

/// The entrypoint and arguments of the probe container: the image's dynamic loader listing
/// the mounted library's dependencies, which fails (or prints `not found`) where the image
/// cannot preload it. `None` on an architecture whose loader path is not known here.
#[must_use]
pub fn container_probe_command() -> Option<(&'static str, Vec<String>)> {
    let loader = match std::env::consts::ARCH {
        "x86_64" => "/lib64/ld-linux-x86-64.so.2",
        "aarch64" => "/lib/ld-linux-aarch64.so.1",
        _ => return None,
    };
    Some((loader, vec!["--list".into(), format!("{CONTAINER_CLOCK_DIR}/{CONTAINER_LIBRARY}")]))
}

/// What the probe container's exit code and output say: `Ok` when the library loads.
///
/// # Errors
/// The reason, for [`BackendClock::unavailable`].
pub fn judge_container_probe(image: &str, exit_code: Option<i64>, output: &str) -> std::result::Result<(), String> {
    let quoted = output.lines().map(str::trim).filter(|l| !l.is_empty()).take(3).collect::<Vec<_>>().join(" | ");
    match exit_code {
        Some(0) if !output.contains("not found") => Ok(()),
        Some(0) => Err(format!("libfaketime cannot be loaded in the image {image} (its glibc lacks what it needs: {quoted})")),
        Some(code) => Err(format!(
            "the image {image} cannot preload libfaketime (its dynamic loader failed with exit code {code}: {}) — an image without glibc (Alpine's musl, distroless static) keeps the real clock",
            if quoted.is_empty() { "no output".to_string() } else { quoted }
        )),
        None => Err(format!("the libfaketime probe container of {image} did not finish")),
    }
}

/// `+7.200`: libfaketime's relative offset in seconds (fractions allowed).
#[must_use]
pub fn faketime_offset(ms: i64) -> String {
    let sign = if ms < 0 { '-' } else { '+' };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// Replaces `file` atomically (write a sibling, rename): libfaketime re-reads it at every
/// clock read and must never see it half written.
fn write_offset(file: &Path, ms: i64) -> Result<()> {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, format!("{}\n", faketime_offset(ms))).map_err(HarnessError::io(format!("writing {}", tmp.display())))?;
    // Readable by a container's user that is not root, whatever the umask.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).map_err(HarnessError::io(format!("making {} readable", tmp.display())))?;
    }
    std::fs::rename(&tmp, file).map_err(HarnessError::io(format!("replacing {}", file.display())))
}

/// Why libfaketime cannot move `program`'s clock, if it cannot: a statically linked
/// executable (no dynamic loader, so `LD_PRELOAD` is ignored) or a Go binary (its runtime
/// reads the clock through the vDSO, not libc). Scripts are judged by their interpreter.
#[must_use]
pub fn faketime_blocker(program: &Path) -> Option<String> {
    let mut path = program.to_path_buf();
    let mut via = vec![];
    for _ in 0..4 {
        let bytes = std::fs::read(&path).ok()?;
        match judge_program(&path, &bytes) {
            Judged::Interpreter(next) => {
                via.push(next.clone());
                path = PathBuf::from(next);
            }
            Judged::Blocked(why) => return Some(with_interpreters(&via, why)),
            Judged::Fine => return None,
        }
    }
    None
}

/// `why`, said of the interpreter chain that led to it (`its interpreter /x: …`).
#[must_use]
pub fn with_interpreters(via: &[String], why: String) -> String {
    via.iter().rev().fold(why, |why, interpreter| format!("its interpreter {interpreter}: {why}"))
}

/// What the first bytes of a program say about libfaketime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// A script: judge its interpreter (the `#!` line's first word).
    Interpreter(String),
    /// libfaketime cannot move its clock, and why.
    Blocked(String),
    /// A dynamically linked program, or one this cannot tell.
    Fine,
}

/// Judges the program `name` from its content `bytes` (see [`faketime_blocker`]).
#[must_use]
pub fn judge_program(name: &Path, bytes: &[u8]) -> Judged {
    if let Some(rest) = bytes.strip_prefix(b"#!") {
        let line = rest.split(|b| *b == b'\n').next().unwrap_or_default();
        let text = String::from_utf8_lossy(line);
        return match text.split_whitespace().next() {
            Some(interpreter) => Judged::Interpreter(interpreter.to_string()),
            None => Judged::Fine,
        };
    }
    if !bytes.starts_with(b"\x7fELF") {
        return Judged::Fine;
    }
    if bytes.windows(14).any(|w| w == b"\xff Go buildinf:") {
        return Judged::Blocked(format!("{} is a Go binary: Go reads the clock without libc, so libfaketime cannot move it", name.display()));
    }
    match elf_has_interpreter(bytes) {
        Some(false) => Judged::Blocked(format!("{} is statically linked: LD_PRELOAD (libfaketime) does not apply to it", name.display())),
        _ => Judged::Fine,
    }
}

/// Whether a 64-bit little-endian ELF has a `PT_INTERP` program header (dynamically linked);
/// `None` when it cannot tell.
fn elf_has_interpreter(bytes: &[u8]) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
        return None;
    }
    let u16_at = |at: usize| bytes.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u64_at = |at: usize| bytes.get(at..at + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_le_bytes);
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    let mut found = false;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let kind = bytes.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))?;
        found |= kind == PT_INTERP;
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libfaketime_shared_memory_is_named_after_the_pid() {
        assert_eq!(faketime_shm_pid("faketime_shm_123"), Some(123));
        assert_eq!(faketime_shm_pid("sem.faketime_sem_77"), Some(77));
        assert_eq!(faketime_shm_pid("faketime_shm_x"), None);
        assert_eq!(faketime_shm_pid("other_123"), None);
        assert_eq!(faketime_shm_files(5)[0], PathBuf::from("/dev/shm/faketime_shm_5"));
    }

    #[test]
    fn offsets_are_written_as_libfaketime_reads_them() {
        assert_eq!(faketime_offset(0), "+0.000");
        assert_eq!(faketime_offset(7_200), "+7.200");
        assert_eq!(faketime_offset(-30_000), "-30.000");
        assert_eq!(faketime_offset(7_200_005), "+7200.005");
    }

    #[test]
    fn advancing_moves_clerk_and_the_backend_together() {
        let mock = Clock::fixed_at_unix(1_000);
        let backend = Clock::fixed_at_unix(1_000);
        let clock = BackendClock::new(mock.clone(), Control::InProcess(backend.clone())).expect("in-process");
        clock.advance(Duration::from_secs(7200)).expect("controlled");
        assert_eq!((mock.now_unix(), backend.now_unix()), (8_200, 8_200));
        assert_eq!(clock.offset_ms(), 0);
    }

    #[test]
    fn a_skewed_backend_clock_is_made_by_moving_clerks() {
        let mock = Clock::fixed_at_unix(1_000);
        let backend = Clock::fixed_at_unix(1_000);
        let clock = BackendClock::new(mock.clone(), Control::InProcess(backend.clone())).expect("in-process");
        clock.advance(Duration::from_secs(100)).expect("controlled");
        clock.set_offset(-30);
        assert_eq!((mock.now_unix(), backend.now_unix()), (1_130, 1_100), "the backend's clock never jumps for a skew");
        assert_eq!(clock.offset_ms(), -30_000);
        clock.set_offset(30);
        assert_eq!((mock.now_unix(), backend.now_unix()), (1_070, 1_100));
        clock.set_offset(0);
        assert_eq!((mock.now_unix(), backend.now_unix()), (1_100, 1_100));
    }

    #[test]
    fn an_uncontrolled_clock_refuses_to_advance_and_still_skews() {
        let mock = Clock::fixed_at_unix(1_000);
        let clock = BackendClock::unavailable(mock.clone(), "a container");
        assert!(matches!(clock.advance(Duration::from_secs(1)), Err(HarnessError::NotApplicable(r)) if r.contains("a container")));
        clock.set_offset(30);
        assert_eq!(mock.now_unix(), 970);
        assert_eq!(clock.offset_ms(), 30_000);
        assert_eq!(clock.gunicorn_args(None), None);
    }

    #[test]
    fn the_timestamp_file_follows_the_backend_clock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("faketime");
        let mock = Clock::system();
        let clock =
            BackendClock::new(mock, Control::FakeTime { library: PathBuf::from("/lib/libfaketime.so.1"), file: file.clone(), mounted: None }).expect("file");
        assert_eq!(std::fs::read_to_string(&file).expect("written"), "+0.000\n");
        clock.advance(Duration::from_millis(7_200)).expect("advance");
        assert_eq!(std::fs::read_to_string(&file).expect("written"), "+7.200\n");
        let env = clock.process_env(Some("/opt/other.so"));
        assert!(env.contains(&("LD_PRELOAD".into(), "/lib/libfaketime.so.1:/opt/other.so".into())));
        assert!(env.contains(&("FAKETIME_NO_CACHE".into(), "1".into())));
        assert_eq!(clock.gunicorn_args(Some("--workers 2")).as_deref(), Some("--timeout 0 --workers 2"));
        assert_eq!(clock.container_mount(), None);
    }

    #[test]
    fn a_container_sees_the_library_and_the_file_in_the_mounted_folder() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let library = dir.path().join("libfaketime-host.so");
        std::fs::write(&library, b"\x7fELF not really").expect("write");
        let clock_dir = dir.path().join("clock");
        std::fs::create_dir(&clock_dir).expect("mkdir");
        std::fs::set_permissions(&clock_dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let file = prepare_container_dir(&clock_dir, &library).expect("prepared");
        // A private leftover (or a strict umask) must not make the timestamp file unreadable.
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, "").expect("write");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(std::fs::read(clock_dir.join("libfaketime.so.1")).expect("copied"), b"\x7fELF not really");
        assert_eq!(std::fs::metadata(&clock_dir).expect("dir").permissions().mode() & 0o777, 0o755, "a non-root container user can enter it");
        let clock = BackendClock::new(Clock::system(), Control::FakeTime { library, file: file.clone(), mounted: Some(clock_dir.clone()) }).expect("file");
        assert_eq!(std::fs::read_to_string(&file).expect("written"), "+0.000\n");
        assert_eq!(std::fs::metadata(&file).expect("file").permissions().mode() & 0o777, 0o644, "readable by a container user that is not root");
        assert_eq!(clock.container_mount(), Some(clock_dir.as_path()));
        let env = clock.process_env(None);
        assert!(env.contains(&("LD_PRELOAD".into(), "/clerk-harness-clock/libfaketime.so.1".into())), "{env:?}");
        assert!(env.contains(&("FAKETIME_TIMESTAMP_FILE".into(), "/clerk-harness-clock/faketime".into())), "{env:?}");
        assert!(clock.describe().contains("mounted into the container"));
    }

    #[test]
    fn the_container_probe_is_read_from_the_loaders_words() {
        assert_eq!(judge_container_probe("img", Some(0), "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n"), Ok(()));
        let old_glibc = judge_container_probe("img", Some(0), "/clerk-harness-clock/libfaketime.so.1: version `GLIBC_2.34' not found").expect_err("refused");
        assert!(old_glibc.contains("GLIBC_2.34"), "{old_glibc}");
        let musl = judge_container_probe("alpine-app", Some(127), "exec /lib64/ld-linux-x86-64.so.2: no such file or directory").expect_err("refused");
        assert!(musl.contains("alpine-app") && musl.contains("exit code 127") && musl.contains("no such file"), "{musl}");
        assert!(judge_container_probe("img", None, "").expect_err("refused").contains("did not finish"));
    }

    #[test]
    fn static_and_go_binaries_are_recognised() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A minimal ELF64 header with one PT_LOAD program header: statically linked.
        let mut elf = vec![0u8; 0x40 + 0x38];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        elf[0x40..0x44].copy_from_slice(&1u32.to_le_bytes());
        let static_bin = dir.path().join("static");
        std::fs::write(&static_bin, &elf).expect("write");
        assert!(faketime_blocker(&static_bin).is_some_and(|w| w.contains("statically linked")));
        elf[0x40..0x44].copy_from_slice(&3u32.to_le_bytes());
        let dynamic = dir.path().join("dynamic");
        std::fs::write(&dynamic, &elf).expect("write");
        assert_eq!(faketime_blocker(&dynamic), None);
        let mut go = elf.clone();
        go.extend_from_slice(b"\xff Go buildinf:");
        let go_bin = dir.path().join("go");
        std::fs::write(&go_bin, &go).expect("write");
        assert!(faketime_blocker(&go_bin).is_some_and(|w| w.contains("Go binary")));
        let script = dir.path().join("script");
        std::fs::write(&script, format!("#!{}\nexec true\n", static_bin.display())).expect("write");
        assert!(faketime_blocker(&script).is_some_and(|w| w.contains("interpreter")));
        let python = dir.path().join("py");
        std::fs::write(&python, format!("#!{}\nprint()\n", dynamic.display())).expect("write");
        assert_eq!(faketime_blocker(&python), None);
    }
}
