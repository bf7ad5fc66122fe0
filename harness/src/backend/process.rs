//! The backend as a local process: its own process group, output captured line by line, the
//! whole group killed on drop (also while a test panics).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::process::{Child, Command};
use url::Url;

use super::{command_line, wait_healthy, Health, TAIL_LINES};
use crate::error::{HarnessError, Result};
use crate::logs::{pump, LogBuffer, Stream};
use crate::process::{spawned_pid, stop_group, stop_group_blocking};
use crate::profile::ProcessSpec;
use crate::reaper::{GroupGuard, Registration, Resource};

/// Variables a backend process inherits from the harness; everything else comes from the
/// profile, so a developer's real Clerk keys in their shell never reach the backend.
pub const INHERITED_ENV: [&str; 13] =
    ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "VIRTUAL_ENV", "CONDA_PREFIX", "PYENV_VERSION"];

/// How long a setup step may run.
const SETUP_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a backend gets between SIGTERM and SIGKILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(3);

/// A running backend process.
#[derive(Debug)]
pub struct ProcessBackend {
    child: Child,
    pid: u32,
    url: Url,
    stopped: bool,
    /// The tasks copying its stdout and stderr into the log, awaited by [`Self::stop`].
    pumps: Vec<tokio::task::JoinHandle<()>>,
    _registration: Registration,
}

impl ProcessBackend {
    /// Starts `args` in `cwd` with exactly `env` (plus `INHERITED_ENV`) and waits until
    /// `health_path` answers 2xx. With `hosts_file`, the process runs in a private mount
    /// namespace with that file as its `/etc/hosts` (see [`crate::routing`]).
    ///
    /// # Errors
    /// Program missing, spawn failure, [`HarnessError::BackendExited`] or
    /// [`HarnessError::BackendNotReady`].
    #[allow(clippy::too_many_arguments)] // independent launch parameters, all required
    pub(crate) async fn start(
        spec: &ProcessSpec,
        args: &[String],
        cwd: &Path,
        env: &BTreeMap<String, String>,
        port: u16,
        health: Health<'_>,
        logs: LogBuffer,
        hosts_file: Option<&Path>,
    ) -> Result<Self> {
        ensure_dirs(spec, cwd)?;
        let since = logs.mark();
        let mut cmd = command(spec, args, cwd, env, hosts_file)?;
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).process_group(0);
        let mut child = cmd.spawn().map_err(HarnessError::io(format!("starting `{}` in {}", command_line(args), cwd.display())))?;
        let pid = spawned_pid(&child, &format!("the backend `{}`", command_line(args)))?;
        let registration = Registration::new(Resource::group(pid, Signal::SIGTERM));
        let mut pumps = vec![];
        if let Some(out) = child.stdout.take() {
            pumps.push(tokio::spawn(pump(out, logs.clone(), Stream::Stdout)));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(tokio::spawn(pump(err, logs.clone(), Stream::Stderr)));
        }
        let url = Url::parse(&format!("http://127.0.0.1:{port}")).map_err(|e| HarnessError::Missing { what: e.to_string(), fix: String::new() })?;
        let mut backend = Self { child, pid, url, stopped: false, pumps, _registration: registration };
        let health_url = backend.url.join(health.path).unwrap_or_else(|_| backend.url.clone());
        let line = command_line(args);
        let child = &mut backend.child;
        wait_healthy(&health_url, health.timeout, &logs, since, &line, || {
            let status = child.try_wait().ok().flatten().map(|s| describe(&s));
            async move { status }
        })
        .await?;
        tracing::info!(pid, %line, "backend process ready");
        Ok(backend)
    }

    /// Base URL.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Process id (= process group id).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops the whole process group: SIGTERM, SIGKILL after 3 s (with a warning).
    pub async fn stop(mut self) {
        stop_group(&mut self.child, self.pid, Signal::SIGTERM, STOP_GRACE).await;
        self.stopped = true;
        crate::clock::remove_faketime_shm(self.pid);
        // Its last lines are in the log when this returns (a child that kept a pipe open
        // past the group's kill is not waited for long).
        let pumps = std::mem::take(&mut self.pumps);
        let _ = tokio::time::timeout(Duration::from_secs(1), futures::future::join_all(pumps)).await;
    }
}

impl Drop for ProcessBackend {
    /// The fallback when [`ProcessBackend::stop`] was not awaited (a panic, a cancelled run):
    /// the same escalation, blocking, off the async worker.
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let pid = self.pid;
        let child = &mut self.child;
        crate::process::off_runtime(|| {
            stop_group_blocking(pid, Signal::SIGTERM, STOP_GRACE, || {
                if matches!(child.try_wait(), Ok(None)) {
                    if let Ok(raw) = i32::try_from(pid) {
                        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(raw), None);
                    }
                }
            });
        });
        crate::clock::remove_faketime_shm(pid);
    }
}

/// Runs the profile's setup steps (schema creation) in `cwd` with `env`, one after another
/// (with `hosts_file` as `/etc/hosts` when given, like the backend).
///
/// # Errors
/// [`HarnessError::SetupFailed`] with the step's output.
pub async fn run_process_setup(
    profile: &str,
    spec: &ProcessSpec,
    steps: &[Vec<String>],
    cwd: &Path,
    env: &BTreeMap<String, String>,
    hosts_file: Option<&Path>,
) -> Result<()> {
    if !steps.is_empty() {
        // A setup step that imports the app needs them as much as the start does.
        ensure_dirs(spec, cwd)?;
    }
    for args in steps {
        let line = command_line(args);
        let mut cmd = command(spec, args, cwd, env, hosts_file)?;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).kill_on_drop(true);
        let child = cmd.spawn().map_err(HarnessError::io(format!("starting setup `{line}`")))?;
        // Killed with its whole group if this future is dropped (Ctrl-C, timeout).
        let mut guard = GroupGuard::new(spawned_pid(&child, &format!("setup `{line}`"))?);
        let output = match tokio::time::timeout(SETUP_TIMEOUT, child.wait_with_output()).await {
            Ok(out) => {
                guard.disarm();
                out.map_err(HarnessError::io(format!("running setup `{line}`")))?
            }
            Err(_) => {
                drop(guard);
                return Err(HarnessError::SetupFailed {
                    profile: profile.into(),
                    command: line,
                    status: format!("timed out after {SETUP_TIMEOUT:?}"),
                    output: String::new(),
                });
            }
        };
        if !output.status.success() {
            let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            return Err(HarnessError::SetupFailed {
                profile: profile.into(),
                command: line,
                status: describe(&output.status),
                output: crate::logs::tail_lines(&text, TAIL_LINES),
            });
        }
        tracing::info!(%line, "setup step done");
    }
    Ok(())
}

/// Creates the profile's `ensure_dirs` under `cwd` (the backend's checkout) when missing.
fn ensure_dirs(spec: &ProcessSpec, cwd: &Path) -> Result<()> {
    if !cwd.is_dir() {
        // Never create the checkout itself: `command` reports the missing directory.
        return Ok(());
    }
    for dir in &spec.ensure_dirs {
        let path = cwd.join(dir);
        if !path.exists() {
            tracing::info!(path = %path.display(), "creating a directory the backend needs");
            std::fs::create_dir_all(&path).map_err(HarnessError::io(format!("creating {}", path.display())))?;
        }
    }
    Ok(())
}

/// The backend's command; with `hosts_file`, wrapped to run in a private mount namespace with
/// that file as `/etc/hosts` (see [`crate::routing`]).
fn command(spec: &ProcessSpec, args: &[String], cwd: &Path, env: &BTreeMap<String, String>, hosts_file: Option<&Path>) -> Result<Command> {
    if !cwd.is_dir() {
        return Err(HarnessError::Missing {
            what: format!("the backend's working directory {} does not exist", cwd.display()),
            fix: "check the profile's [process] cwd, or pass --backend-dir / HARNESS_BACKEND_DIR".into(),
        });
    }
    let (program, rest) = args.split_first().ok_or_else(|| HarnessError::Missing { what: "empty command".into(), fix: "fix the profile".into() })?;
    let path_var = env.get("PATH").cloned().or_else(|| std::env::var("PATH").ok()).unwrap_or_default();
    let resolved = resolve_program(program, cwd, &path_var).ok_or_else(|| HarnessError::BackendProgramNotFound {
        program: program.clone(),
        cwd: cwd.to_path_buf(),
        hint: spec.install_hint.clone().unwrap_or_else(|| "install it or fix the profile's command".into()),
    })?;
    let mut cmd = match hosts_file {
        Some(hosts) => {
            let (program, wrapped) = crate::routing::wrap_in_namespace(hosts, &resolved, rest);
            let mut cmd = Command::new(program);
            cmd.args(wrapped);
            cmd
        }
        None => {
            let mut cmd = Command::new(resolved);
            cmd.args(rest);
            cmd
        }
    };
    cmd.current_dir(cwd).env_clear();
    for name in INHERITED_ENV {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.env("PYTHONUNBUFFERED", "1");
    cmd.envs(crate::identity::child_env());
    cmd.envs(env);
    Ok(cmd)
}

/// `program` as a path: relative to `cwd` when it has a `/`, else searched on `path_var`.
pub(crate) fn resolve_program(program: &str, cwd: &Path, path_var: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = cwd.join(program);
        return path.is_file().then_some(path);
    }
    std::env::split_paths(path_var).map(|dir| dir.join(program)).find(|p| p.is_file())
}

fn describe(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}
