//! The backend as a container (testcontainers): env wired with container addresses, the
//! per-run CA copied in, the proxy and mock reachable as `host.docker.internal`, logs captured.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use testcontainers::core::{AccessMode, ContainerPort, Host, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ContainerRequest, GenericImage, ImageExt};
use url::Url;

use super::{command_line, wait_healthy, Health, TAIL_LINES};
use crate::docker::split_image;
use crate::error::{HarnessError, Result};
use crate::logs::{LogBuffer, Stream};

/// How long a setup container may run.
const SETUP_TIMEOUT: Duration = Duration::from_secs(300);

/// What every container of a backend gets.
#[derive(Debug, Clone)]
pub struct ContainerWiring<'a> {
    /// `name:tag`.
    pub image: &'a str,
    /// The environment, already expanded with container addresses.
    pub env: &'a BTreeMap<String, String>,
    /// The CA bundle on this machine, and where it goes in the container.
    pub ca: Option<(&'a Path, &'a str)>,
    /// The per-run network and the extra hosts (Clerk's hosts → the front), when Clerk's hosts
    /// are routed by name (see [`crate::routing`]).
    pub network: Option<(&'a str, Vec<(String, std::net::IpAddr)>)>,
    /// The folder with libfaketime and the timestamp file, bind-mounted read-only at
    /// [`crate::clock::CONTAINER_CLOCK_DIR`] (see [`crate::clock`]).
    pub clock_dir: Option<&'a Path>,
}

fn request(wiring: &ContainerWiring<'_>, port: Option<u16>, logs: &LogBuffer) -> Result<ContainerRequest<GenericImage>> {
    let (name, tag) = split_image(wiring.image);
    let mut image = GenericImage::new(name, tag).with_wait_for(WaitFor::Nothing);
    if let Some(port) = port {
        image = image.with_exposed_port(ContainerPort::Tcp(port));
    }
    let mut req = image.with_host("host.docker.internal", Host::HostGateway);
    for (key, value) in crate::identity::labels() {
        req = req.with_label(key, value);
    }
    if let Some((network, hosts)) = &wiring.network {
        req = req.with_network(*network);
        for (host, ip) in hosts {
            req = req.with_host(host.clone(), Host::Addr(*ip));
        }
    }
    for (k, v) in wiring.env {
        req = req.with_env_var(k, v);
    }
    if let Some(dir) = wiring.clock_dir {
        req = req.with_mount(clock_mount(dir));
    }
    if let Some((host_path, container_path)) = wiring.ca {
        let pem = std::fs::read(host_path).map_err(HarnessError::io(format!("reading the CA file {}", host_path.display())))?;
        req = req.with_copy_to(container_path.to_owned(), pem);
    }
    let sink = logs.clone();
    req = req.with_log_consumer(move |frame: &testcontainers::core::logs::LogFrame| match frame {
        testcontainers::core::logs::LogFrame::StdOut(b) => sink.push_bytes(Stream::Stdout, b),
        testcontainers::core::logs::LogFrame::StdErr(b) => sink.push_bytes(Stream::Stderr, b),
    });
    Ok(req)
}

/// A running backend container.
pub struct ContainerBackend {
    container: Option<ContainerAsync<GenericImage>>,
    url: Url,
}

impl std::fmt::Debug for ContainerBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerBackend").field("id", &self.id()).field("url", &self.url).finish()
    }
}

impl ContainerBackend {
    /// Starts the image (with `command` instead of its CMD when non-empty), publishes `port`
    /// and waits for `health_path`.
    ///
    /// # Errors
    /// The container fails to start, exits, or never answers its health path.
    pub(crate) async fn start(wiring: &ContainerWiring<'_>, command: &[String], port: u16, health: Health<'_>, logs: LogBuffer) -> Result<Self> {
        let since = logs.mark();
        let mut req = request(wiring, Some(port), &logs)?;
        if !command.is_empty() {
            req = req.with_cmd(command.to_vec());
        }
        let container = req.start().await.map_err(HarnessError::container(format!("starting backend container {}", wiring.image)))?;
        let what = if command.is_empty() { format!("container {}", wiring.image) } else { format!("container {}: {}", wiring.image, command_line(command)) };
        // A container that died at once has no published port: report the crash, not the port.
        if let Some(code) = container.exit_code().await.ok().flatten() {
            return Err(HarnessError::BackendExited { command: what, status: format!("exit code {code}"), log_tail: exited_log_tail(&container, &logs).await });
        }
        let host_port =
            container.get_host_port_ipv4(port).await.map_err(HarnessError::container(format!("reading the published port {port} of {}", wiring.image)))?;
        let url = Url::parse(&format!("http://127.0.0.1:{host_port}")).map_err(|e| HarnessError::Missing { what: e.to_string(), fix: String::new() })?;
        let health_url = url.join(health.path).unwrap_or_else(|_| url.clone());
        let c = &container;
        wait_healthy(
            &health_url,
            health.timeout,
            &logs,
            since,
            &what,
            || async move { c.exit_code().await.ok().flatten().map(|code| format!("exit code {code}")) },
        )
        .await?;
        tracing::info!(id = container.id(), %url, "backend container ready");
        Ok(Self { container: Some(container), url })
    }

    /// Base URL on this machine.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The container id.
    #[must_use]
    pub fn id(&self) -> &str {
        self.container.as_ref().map_or("", |c| c.id())
    }
}

impl Drop for ContainerBackend {
    fn drop(&mut self) {
        if let Some(container) = self.container.take() {
            crate::docker::drop_container(container);
        }
    }
}

/// The last lines of an exited container, read from Docker itself: complete, where the log
/// consumer feeding `logs` may still be behind. Falls back to `logs` if Docker cannot say.
async fn exited_log_tail(container: &ContainerAsync<GenericImage>, logs: &LogBuffer) -> String {
    match (container.stdout_to_vec().await, container.stderr_to_vec().await) {
        (Ok(out), Ok(err)) if !(out.is_empty() && err.is_empty()) => {
            let text = format!("{}{}", String::from_utf8_lossy(&out), String::from_utf8_lossy(&err));
            crate::logs::tail_lines(&text, TAIL_LINES)
        }
        _ => logs.tail(TAIL_LINES),
    }
}

fn clock_mount(dir: &Path) -> Mount {
    Mount::bind_mount(dir.display().to_string(), crate::clock::CONTAINER_CLOCK_DIR).with_access_mode(AccessMode::ReadOnly)
}

/// Whether `image` can run under libfaketime: a one-shot container of it, with `clock_dir`
/// mounted, in which the image's own dynamic loader lists the library's dependencies (see
/// `container_probe_command` in the clock module); then the program the backend container will
/// run — the image's entrypoint, else `command` (the profile's), else the image's CMD — is
/// read out of that container and judged like a local one (a Go or statically linked binary
/// keeps the real clock; a script is judged by its interpreter). Takes about as long as a
/// container start. The probe container is removed, also when it could not start.
///
/// # Errors
/// Why not, in words for [`crate::clock::BackendClock::unavailable`].
pub async fn probe_faketime(image: &str, clock_dir: &Path, command: Option<&str>) -> std::result::Result<(), String> {
    let Some((loader, args)) = crate::clock::container_probe_command() else {
        return Err(format!("libfaketime's loader path on {} is not known to the harness", std::env::consts::ARCH));
    };
    let docker = crate::docker::connect().await.map_err(|e| e.to_string())?;
    let (entrypoint, cmd, path_var) = image_program(&docker, image).await?;
    let (name, tag) = split_image(image);
    let container_name = format!("clerk-harness-clock-probe-{}", crate::identity::random_token(10).to_ascii_lowercase());
    let mut req = GenericImage::new(name, tag)
        .with_wait_for(WaitFor::Nothing)
        .with_entrypoint(loader)
        .with_cmd(args)
        .with_mount(clock_mount(clock_dir))
        .with_container_name(&container_name);
    for (key, value) in crate::identity::labels() {
        req = req.with_label(key, value);
    }
    let container = match req.start().await {
        Ok(container) => container,
        Err(e) => {
            // Created but not started: testcontainers has no handle to remove it with.
            let _ = crate::docker::remove_container(&docker, &container_name).await;
            let said = e.to_string();
            return Err(if said.contains(loader) || said.contains("no such file") {
                format!("the image {image} has no glibc dynamic loader ({loader}: {said}): an image without glibc (Alpine's musl, distroless static) keeps the real clock")
            } else {
                format!("the libfaketime probe container of {image} did not start: {said}")
            });
        }
    };
    let code = wait_exit(&container, Duration::from_secs(30)).await.ok().flatten();
    let out = container.stdout_to_vec().await.unwrap_or_default();
    let err = container.stderr_to_vec().await.unwrap_or_default();
    let output = format!("{}{}", String::from_utf8_lossy(&out), String::from_utf8_lossy(&err));
    crate::clock::judge_container_probe(image, code, &output)?;
    let program = entrypoint.or_else(|| command.map(str::to_owned)).or(cmd);
    match program {
        Some(program) => judge_container_program(&docker, container.id(), &program, &path_var).await,
        None => Ok(()),
    }
}

/// The image's entrypoint and CMD programs, and its `PATH`.
async fn image_program(docker: &testcontainers::bollard::Docker, image: &str) -> std::result::Result<(Option<String>, Option<String>, String), String> {
    let inspected = docker.inspect_image(image).await.map_err(|e| format!("inspecting the image {image}: {e}"))?;
    let config = inspected.config.unwrap_or_default();
    let first = |v: Option<Vec<String>>| v.and_then(|v| v.into_iter().next()).filter(|p| !p.is_empty());
    let path = config
        .env
        .unwrap_or_default()
        .into_iter()
        .find_map(|e| e.strip_prefix("PATH=").map(str::to_owned))
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    Ok((first(config.entrypoint), first(config.cmd), path))
}

/// Judges `program` (a path or a name on `path_var`) as found in the (stopped) container `id`.
async fn judge_container_program(docker: &testcontainers::bollard::Docker, id: &str, program: &str, path_var: &str) -> std::result::Result<(), String> {
    let mut name = program.to_owned();
    let mut via: Vec<String> = vec![];
    for _ in 0..4 {
        let Some((path, bytes)) = read_program(docker, id, &name, path_var).await else {
            // Not found or not readable: the harness cannot tell, the backend's start will.
            return Ok(());
        };
        match crate::clock::judge_program(Path::new(&path), &bytes) {
            crate::clock::Judged::Interpreter(next) => {
                via.push(next.clone());
                name = next;
            }
            crate::clock::Judged::Blocked(why) => return Err(format!("in the container, {}", crate::clock::with_interpreters(&via, why))),
            crate::clock::Judged::Fine => return Ok(()),
        }
    }
    Ok(())
}

/// The content of `program` in container `id` (on `path_var` when it has no `/`), symbolic
/// links followed; with the path it was found at.
async fn read_program(docker: &testcontainers::bollard::Docker, id: &str, program: &str, path_var: &str) -> Option<(String, Vec<u8>)> {
    let candidates: Vec<String> = if program.contains('/') {
        vec![program.to_owned()]
    } else {
        path_var.split(':').filter(|d| !d.is_empty()).map(|d| format!("{}/{program}", d.trim_end_matches('/'))).collect()
    };
    for candidate in candidates {
        let mut path = candidate;
        for _ in 0..8 {
            match read_entry(docker, id, &path).await {
                Some(Entry::File(bytes)) => return Some((path, bytes)),
                Some(Entry::Link(target)) => {
                    path = if target.starts_with('/') {
                        target
                    } else {
                        let dir = Path::new(&path).parent().map(|p| p.display().to_string()).unwrap_or_default();
                        format!("{}/{target}", dir.trim_end_matches('/'))
                    };
                }
                None => break,
            }
        }
    }
    None
}

enum Entry {
    File(Vec<u8>),
    Link(String),
}

/// One path of a container, through Docker's archive endpoint: a regular file's content or a
/// symbolic link's target (`None`: absent, a folder, or larger than 256 MiB).
async fn read_entry(docker: &testcontainers::bollard::Docker, id: &str, path: &str) -> Option<Entry> {
    use futures::TryStreamExt;
    use tokio::io::AsyncReadExt;
    const LIMIT: usize = 256 << 20;
    let options = testcontainers::bollard::query_parameters::DownloadFromContainerOptionsBuilder::new().path(path).build();
    let mut stream = docker.download_from_container(id, Some(options));
    let mut tar = Vec::new();
    while let Some(chunk) = stream.try_next().await.ok()? {
        tar.extend_from_slice(&chunk);
        if tar.len() > LIMIT {
            return None;
        }
    }
    let mut archive = tokio_tar::Archive::new(tar.as_slice());
    let mut entries = archive.entries().ok()?;
    while let Some(entry) = entries.try_next().await.ok()? {
        let mut entry = entry;
        match entry.header().entry_type() {
            tokio_tar::EntryType::Regular | tokio_tar::EntryType::Continuous => {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).await.ok()?;
                return Some(Entry::File(bytes));
            }
            tokio_tar::EntryType::Symlink => return entry.link_name().ok()?.map(|t| Entry::Link(t.display().to_string())),
            tokio_tar::EntryType::Directory => return None,
            _ => {}
        }
    }
    None
}

/// A one-shot container's exit code once it exits; `None` if it still runs after `within`.
async fn wait_exit(container: &ContainerAsync<GenericImage>, within: Duration) -> std::result::Result<Option<i64>, testcontainers::TestcontainersError> {
    let started = Instant::now();
    loop {
        match container.exit_code().await? {
            Some(code) => return Ok(Some(code)),
            None if started.elapsed() < within => tokio::time::sleep(Duration::from_millis(20)).await,
            None => return Ok(None),
        }
    }
}

/// Runs each setup step in a one-shot container of the image and waits for it to exit 0.
///
/// # Errors
/// [`HarnessError::SetupFailed`] with the step's output.
pub async fn run_container_setup(profile: &str, wiring: &ContainerWiring<'_>, steps: &[Vec<String>]) -> Result<()> {
    for args in steps {
        let line = command_line(args);
        let logs = LogBuffer::new(None).map_err(HarnessError::io("log buffer"))?;
        let container = request(wiring, None, &logs)?
            .with_cmd(args.clone())
            .start()
            .await
            .map_err(HarnessError::container(format!("starting setup container `{line}` of {}", wiring.image)))?;
        let code = match wait_exit(&container, SETUP_TIMEOUT).await {
            Ok(Some(code)) => code,
            Ok(None) => {
                return Err(HarnessError::SetupFailed {
                    profile: profile.into(),
                    command: line,
                    status: format!("timed out after {SETUP_TIMEOUT:?}"),
                    output: logs.tail(TAIL_LINES),
                })
            }
            Err(e) => return Err(HarnessError::container(format!("waiting for setup `{line}`"))(e)),
        };
        if code != 0 {
            return Err(HarnessError::SetupFailed {
                profile: profile.into(),
                command: line,
                status: format!("exit code {code}"),
                output: exited_log_tail(&container, &logs).await,
            });
        }
        tracing::info!(%line, "setup step done (container)");
    }
    Ok(())
}
