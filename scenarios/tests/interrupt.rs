//! An interrupted `clerk-harness run` leaves nothing behind. Real runs of the reference
//! backend get SIGINT, SIGTERM or SIGKILL at a point in time chosen by their own stderr
//! progress lines (Postgres starting, the profile's setup, a scenario, a backend restart, backends
//! starting beside the shared one);
//! then no process, container, network, `/dev/shm` or temp dir of that run may remain.
//! A run's leftovers are found by its run id (`HARNESS_RUN_ID`), never globally: other
//! tests run in parallel.
//!
//! The Docker cases are `#[ignore]`d (they need the daemon and the offline images): run them
//! with `HARNESS_DOCKER_TESTS=1 cargo nextest run -p scenarios --test interrupt --run-ignored all`.

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rstest::rstest;

/// Bring-up on a loaded two-core machine can take a while.
const LINE_WAIT: Duration = Duration::from_secs(180);
const EXIT_WAIT: Duration = Duration::from_secs(60);
/// "Within a few seconds": the watchdog's grace period is 3 s.
const GONE_WAIT: Duration = Duration::from_secs(15);

fn profile(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match name {
        "reference" => root.join("../profiles/reference.toml"),
        other => root.join(format!("tests/fixtures/{other}/{other}.toml")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Runtime {
    Local,
    Docker,
}

impl Runtime {
    fn arg(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Docker => "docker",
        }
    }
}

/// Where in a run the signal goes out.
#[derive(Clone, Copy, Debug)]
enum Point {
    PostgresStart,
    Setup,
    Scenario,
    Restart,
    /// While backends start beside the shared one (the key and host scenarios).
    Beside,
}

impl Point {
    fn only(self) -> &'static str {
        match self {
            Self::Restart => "tokens.key_rotation",
            Self::Beside => "env.foreign_,env.invalid_",
            _ => "tokens.",
        }
    }

    /// The stderr line after which the signal is sent.
    fn line(self) -> &'static str {
        match self {
            Self::PostgresStart => "starting Postgres",
            Self::Setup => "running the profile's setup steps",
            Self::Scenario => "[ 2/",
            Self::Restart => "restarting the backend",
            Self::Beside => "beside the running one",
        }
    }

    /// What the interrupt message must say the run was doing.
    fn phase(self) -> &'static str {
        match self {
            Self::PostgresStart => "starting Postgres",
            Self::Setup => "running the profile's setup steps",
            Self::Scenario => "running scenario tokens.",
            Self::Restart => "restarting the backend",
            Self::Beside => "beside the running one",
        }
    }
}

/// A `clerk-harness run` child with its stderr collected line by line.
struct Run {
    child: Child,
    id: String,
    _own_tmp: tempfile::TempDir,
    /// Its TMPDIR: its own, or one shared with another run.
    tmp: PathBuf,
    lines: Receiver<String>,
    log: Arc<Mutex<String>>,
    runtime: Runtime,
}

impl Run {
    fn start(profile_name: &str, runtime: Runtime, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clerk-harness"));
        cmd.arg("run").arg("--profile").arg(profile(profile_name)).args(["--runtime", runtime.arg()]).args(args);
        Self::spawn(cmd, runtime, env)
    }

    fn spawn(mut cmd: Command, runtime: Runtime, env: &[(&str, &str)]) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or_default();
        let id = format!("it-{}-{nanos:x}", std::process::id());
        // A private TMPDIR: the CA and log dirs land there, so anything left in it is this run's.
        let own_tmp = tempfile::Builder::new().prefix("interrupt-test-").tempdir().expect("private TMPDIR");
        let tmp = env.iter().find(|(name, _)| *name == "TMPDIR").map_or_else(|| own_tmp.path().to_path_buf(), |(_, dir)| PathBuf::from(dir));
        cmd.env("HARNESS_RUN_ID", &id).env("TMPDIR", &tmp).env("NO_COLOR", "1").env_remove("RUST_LOG");
        if Path::new("/dev/shm").is_dir() {
            cmd.env("HARNESS_PG_DATA_PARENT", "/dev/shm");
        }
        for (name, value) in env {
            cmd.env(name, value);
        }
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start clerk-harness");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("log").push_str(&format!("{line}\n"));
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, id, _own_tmp: own_tmp, tmp, lines, log, runtime }
    }

    fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// Waits for a stderr line containing `needle`.
    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + LINE_WAIT;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no line with {needle:?} within {LINE_WAIT:?}:\n{}", self.log()),
                Err(RecvTimeoutError::Disconnected) => panic!("the run ended before a line with {needle:?}:\n{}", self.log()),
            }
        }
    }

    fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        kill(Pid::from_raw(pid), signal).expect("signal the harness");
    }

    /// Waits for the harness to exit, then for its stderr to close (the watchdog shares it).
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + EXIT_WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the harness did not exit within {EXIT_WAIT:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        };
        let deadline = Instant::now() + GONE_WAIT;
        while self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_ok() {}
        status
    }

    /// Everything of this run that still exists.
    fn leftovers(&self) -> Vec<String> {
        let mut found = processes_of(&self.id);
        found.extend(dirs_of(&self.id, &self.tmp));
        if self.runtime == Runtime::Docker {
            found.extend(docker_of(&self.id));
        }
        found
    }

    /// Polls until nothing of the run is left, or fails listing what is.
    fn assert_nothing_left(&self) {
        let deadline = Instant::now() + GONE_WAIT;
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "left behind after {GONE_WAIT:?}: {left:#?}\nharness stderr:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls until `what` holds for the run's leftovers (a resource came into being).
    fn wait_until(&self, what: &str, holds: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + LINE_WAIT;
        while !holds(&self.leftovers()) {
            assert!(Instant::now() < deadline, "never saw {what}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // A failed assertion must not leave the harness running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Processes whose environment carries `CLERK_HARNESS_RUN=<id>` (all the harness starts).
fn processes_of(id: &str) -> Vec<String> {
    let needle = format!("CLERK_HARNESS_RUN={id}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if environ.split(|b| *b == 0).any(|var| var == needle.as_bytes()) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push(format!("process {}: {cmdline}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// Temp dirs whose owner marker names run `id` (in the system temp dir, `/dev/shm` and the
/// run's TMPDIR), and anything in its TMPDIR that belongs to no other run.
fn dirs_of(id: &str, private_tmp: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for parent in [std::env::temp_dir(), PathBuf::from("/dev/shm"), private_tmp.to_path_buf()] {
        let Ok(entries) = std::fs::read_dir(&parent) else { continue };
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with("clerk-harness-") {
                continue;
            }
            let marker = std::fs::read_to_string(entry.path().join(harness::internal::MARKER_FILE)).unwrap_or_default();
            if marker.lines().any(|l| l == format!("run={id}")) {
                found.push(format!("dir {}", entry.path().display()));
            }
        }
    }
    // In the run's TMPDIR, also anything without a marker (a dir made before its marker).
    if let Ok(entries) = std::fs::read_dir(private_tmp) {
        for entry in entries.flatten() {
            let marker = std::fs::read_to_string(entry.path().join(harness::internal::MARKER_FILE)).unwrap_or_default();
            let other_run = marker.lines().any(|l| l.starts_with("run=") && l != format!("run={id}"));
            let listed = format!("dir {}", entry.path().display());
            if !other_run && !found.contains(&listed) {
                found.push(listed);
            }
        }
    }
    found
}

/// Containers and networks labelled with run `id`.
fn docker_of(id: &str) -> Vec<String> {
    let filter = format!("label=org.clerk-harness.run={id}");
    let list = |args: &[&str]| -> Vec<String> {
        let out = Command::new("docker").args(args).args(["--filter", &filter, "-q"]).output().expect("docker CLI");
        assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    };
    let mut found: Vec<String> = list(&["ps", "-a"]).into_iter().map(|c| format!("container {c}")).collect();
    found.extend(list(&["network", "ls"]).into_iter().map(|n| format!("network {n}")));
    found
}

fn interrupt_at(runtime: Runtime, point: Point, signal: Signal) {
    let mut run = Run::start("reference", runtime, &["--only", point.only()], &[]);
    run.wait_for(point.line());
    match (point, runtime) {
        // Interrupt while Postgres really is starting: its dir or container exists.
        (Point::PostgresStart, Runtime::Local) => run.wait_until("the Postgres data dir", |l| l.iter().any(|r| r.contains("clerk-harness-pg-"))),
        (Point::PostgresStart, Runtime::Docker) => run.wait_until("the Postgres container", |l| l.iter().any(|r| r.starts_with("container "))),
        (Point::Scenario, Runtime::Local) => {
            let left = run.leftovers();
            assert!(left.iter().filter(|r| r.starts_with("process ")).count() >= 2, "backend and Postgres should run: {left:#?}");
            assert!(left.iter().filter(|r| r.starts_with("dir ")).count() >= 3, "Postgres, CA and log dirs should exist: {left:#?}");
        }
        (Point::Scenario, Runtime::Docker) => {
            let left = run.leftovers();
            assert!(left.iter().filter(|r| r.starts_with("container ")).count() >= 2, "backend and Postgres containers should run: {left:#?}");
        }
        _ => {}
    }
    run.signal(signal);
    let status = run.wait();
    let log = run.log();
    match signal {
        Signal::SIGKILL => {
            assert_eq!(status.signal(), Some(9), "{log}");
            assert!(log.contains(&format!("clerk-harness watchdog: run {}", run.id)), "the watchdog should report what it removed:\n{log}");
        }
        _ => {
            let (name, code) = if signal == Signal::SIGINT { ("SIGINT", 130) } else { ("SIGTERM", 143) };
            assert_eq!(status.code(), Some(code), "{log}");
            let said = log.lines().find(|l| l.contains(&format!("{name} received while"))).unwrap_or_else(|| panic!("no interrupt message:\n{log}"));
            assert!(said.contains(point.phase()), "the message should name {:?}: {said}", point.phase());
            assert!(log.contains("torn down in"), "{log}");
        }
    }
    run.assert_nothing_left();
}

#[rstest]
#[case::postgres_start(Point::PostgresStart)]
#[case::setup(Point::Setup)]
#[case::scenario(Point::Scenario)]
#[case::restart(Point::Restart)]
#[case::beside(Point::Beside)]
fn an_interrupted_local_run_leaves_nothing(#[case] point: Point, #[values(Signal::SIGINT, Signal::SIGTERM, Signal::SIGKILL)] signal: Signal) {
    interrupt_at(Runtime::Local, point, signal);
}

#[rstest]
#[case::postgres_start(Point::PostgresStart)]
#[case::setup(Point::Setup)]
#[case::scenario(Point::Scenario)]
#[case::restart(Point::Restart)]
#[case::beside(Point::Beside)]
#[ignore = "needs Docker and the offline images: HARNESS_DOCKER_TESTS=1 … --run-ignored all"]
fn an_interrupted_docker_run_leaves_nothing(#[case] point: Point, #[values(Signal::SIGINT, Signal::SIGTERM, Signal::SIGKILL)] signal: Signal) {
    harness::internal::require_docker_tests();
    interrupt_at(Runtime::Docker, point, signal);
}

#[test]
fn a_backend_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let mut run = Run::start("stubborn", Runtime::Local, &["--only", "tokens.session_token"], &[]);
    run.wait_for("[ 1/1]");
    let left = run.leftovers();
    assert!(left.iter().any(|r| r.contains("server.py")), "the stubborn backend should run: {left:#?}");
    let status = run.wait();
    let log = run.log();
    assert!(matches!(status.code(), Some(0 | 1)), "{log}");
    assert!(log.contains("did not exit within 3s of SIGTERM: SIGKILL"), "the grace period should be reported:\n{log}");
    run.assert_nothing_left();
}

#[test]
fn a_second_ctrl_c_exits_at_once_and_the_watchdog_finishes_the_teardown() {
    let mut run = Run::start("stubborn", Runtime::Local, &["--only", "tokens."], &[]);
    run.wait_for("[ 1/");
    run.signal(Signal::SIGINT);
    // The first teardown waits out the backend's grace period: the second signal lands in it.
    run.wait_for("tearing down (a second Ctrl-C forces the exit)");
    run.signal(Signal::SIGINT);
    let status = run.wait();
    let log = run.log();
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(log.contains("second signal: exiting now"), "{log}");
    assert!(!log.contains("torn down in"), "the forced exit should not wait for the teardown:\n{log}");
    run.assert_nothing_left();
}

#[test]
fn the_whole_run_timeout_tears_down_and_exits_2_naming_what_ran() {
    // The bring-up alone (Postgres, the setup step, the backend's start) takes longer than 1 s.
    let mut run = Run::start("reference", Runtime::Local, &["--only", "tokens.", "--timeout", "1s"], &[]);
    let status = run.wait();
    let log = run.log();
    assert_eq!(status.code(), Some(2), "{log}");
    let said = log.lines().find(|l| l.contains("the run timed out after 1 s while")).unwrap_or_else(|| panic!("no timeout message:\n{log}"));
    assert!(said.contains("bringing up the environment ("), "the message should name the step: {said}");
    run.assert_nothing_left();
}

fn clean_removes_a_crashed_runs_leftovers_only(runtime: Runtime) {
    // A run without its watchdog, SIGKILLed mid-scenario: a crash that leaves everything.
    let mut crashed = Run::start("reference", runtime, &["--only", "tokens."], &[("HARNESS_REAPER", "off")]);
    crashed.wait_for("[ 2/");
    crashed.signal(Signal::SIGKILL);
    let status = crashed.wait();
    assert_eq!(status.signal(), Some(9));
    let before = crashed.leftovers();
    assert!(before.len() >= 3, "the crash should have left its pieces: {before:#?}");

    // The live run shares the crashed run's TMPDIR, and `clean` looks there. It is an idle
    // `clerk-harness up`: a `run` frozen mid-scenario would time out its backend's calls to Clerk.
    let shared_tmp = crashed.tmp.display().to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clerk-harness"));
    cmd.arg("up").arg("--profile").arg(profile("reference")).args(["--runtime", runtime.arg()]);
    let mut live = Run::spawn(cmd, runtime, &[("TMPDIR", &shared_tmp)]);
    live.wait_for("clerk-harness: up and ready");
    let live_before = live.leftovers();
    assert!(live_before.iter().any(|r| r.starts_with("dir ")), "{live_before:#?}");

    let out = Command::new(env!("CARGO_BIN_EXE_clerk-harness")).arg("clean").env("TMPDIR", &shared_tmp).env("NO_COLOR", "1").output().expect("clean");
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{text}");
    crashed.assert_nothing_left();
    let live_after = live.leftovers();
    for item in &live_before {
        assert!(live_after.contains(item), "clean removed a live run's {item}\n{text}");
    }
    live.signal(Signal::SIGTERM);
    let status = live.wait();
    assert_eq!(status.code(), Some(0), "the live environment should tear down normally:\n{}", live.log());
    live.assert_nothing_left();
}

#[test]
fn clean_removes_a_crashed_local_runs_leftovers_and_not_a_live_runs() {
    clean_removes_a_crashed_runs_leftovers_only(Runtime::Local);
}

#[test]
#[ignore = "needs Docker and the offline images: HARNESS_DOCKER_TESTS=1 … --run-ignored all"]
fn clean_removes_a_crashed_docker_runs_leftovers_and_not_a_live_runs() {
    harness::internal::require_docker_tests();
    clean_removes_a_crashed_runs_leftovers_only(Runtime::Docker);
}

/// Not a test of its own: the library user that `a_killed_library_user_leaves_nothing` starts
/// and SIGKILLs (it does nothing unless that test started it).
#[tokio::test]
#[ignore = "child process of a_killed_library_user_leaves_nothing"]
async fn library_user_child() {
    assert!(
        std::env::var_os("INTERRUPT_LIBRARY_CHILD").is_some(),
        "library_user_child is the child process of a_killed_library_user_leaves_nothing: run that test instead"
    );
    let profile = harness::Profile::from_file(profile("reference")).expect("profile");
    let env = harness::TestEnv::builder(profile).config(harness::HarnessConfig::local()).start().await.expect("environment");
    eprintln!("LIBRARY CHILD READY");
    tokio::time::sleep(Duration::from_secs(300)).await;
    drop(env);
}

#[test]
fn a_killed_library_user_leaves_nothing() {
    // A test binary using the harness as a library, killed with SIGKILL: its watchdog (the
    // clerk-harness binary, found through HARNESS_REAPER) removes what it had started.
    let mut cmd = Command::new(std::env::current_exe().expect("this test binary"));
    cmd.args(["--ignored", "--exact", "library_user_child", "--nocapture"]);
    cmd.env("INTERRUPT_LIBRARY_CHILD", "1").env("HARNESS_REAPER", env!("CARGO_BIN_EXE_clerk-harness"));
    let mut run = Run::spawn(cmd, Runtime::Local, &[]);
    run.wait_for("LIBRARY CHILD READY");
    let left = run.leftovers();
    assert!(left.iter().any(|r| r.contains("uvicorn")), "the backend should run: {left:#?}");
    assert!(left.iter().any(|r| r.contains(harness::internal::REAPER_ARG)), "the watchdog should run: {left:#?}");
    run.signal(Signal::SIGKILL);
    assert_eq!(run.wait().signal(), Some(9));
    run.assert_nothing_left();
}

/// libfaketime's shared memory in `/dev/shm` is named after the process that made it: `clean`
/// removes the files of processes that are gone and keeps those of live ones.
#[test]
fn clean_removes_libfaketime_shared_memory_of_dead_processes_only() {
    let mut gone = Command::new("true").spawn().expect("spawn true");
    let dead = gone.id();
    gone.wait().expect("wait");
    let live = std::process::id();
    for pid in [dead, live] {
        for file in harness::internal::faketime_shm_files(pid) {
            std::fs::write(&file, b"").expect("write in /dev/shm");
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_clerk-harness")).arg("clean").env("NO_COLOR", "1").output().expect("clean");
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    let kept: Vec<bool> = harness::internal::faketime_shm_files(live).iter().map(|f| f.exists()).collect();
    for file in harness::internal::faketime_shm_files(live) {
        let _ = std::fs::remove_file(file);
    }
    assert!(out.status.success(), "{text}");
    assert!(harness::internal::faketime_shm_files(dead).iter().all(|f| !f.exists()), "a dead process's files stay:\n{text}");
    assert_eq!(kept, [true, true], "a live process's files were removed:\n{text}");
}
