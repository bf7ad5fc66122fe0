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
    for (key, value) in crate::docker::labels() {
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
    pub async fn start(wiring: &ContainerWiring<'_>, command: &[String], port: u16, health: Health<'_>, logs: LogBuffer) -> Result<Self> {
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
/// [`crate::clock::container_probe_command`]). Takes about as long as a container start.
///
/// # Errors
/// Why not, in words for [`crate::clock::BackendClock::unavailable`].
pub async fn probe_faketime(image: &str, clock_dir: &Path) -> std::result::Result<(), String> {
    let Some((loader, args)) = crate::clock::container_probe_command() else {
        return Err(format!("libfaketime's loader path on {} is not known to the harness", std::env::consts::ARCH));
    };
    let (name, tag) = split_image(image);
    let mut req = GenericImage::new(name, tag).with_wait_for(WaitFor::Nothing).with_entrypoint(loader).with_cmd(args).with_mount(clock_mount(clock_dir));
    for (key, value) in crate::docker::labels() {
        req = req.with_label(key, value);
    }
    let container = match req.start().await {
        Ok(container) => container,
        // Most often the loader is missing: the runtime cannot even start the entrypoint.
        Err(e) => {
            return Err(format!(
                "the libfaketime probe container of {image} did not start ({e}): an image without glibc's loader {loader} (Alpine's musl, distroless static) keeps the real clock"
            ))
        }
    };
    let started = Instant::now();
    let code = loop {
        match container.exit_code().await {
            Ok(Some(code)) => break Some(code),
            Ok(None) if started.elapsed() < Duration::from_secs(30) => tokio::time::sleep(Duration::from_millis(20)).await,
            Ok(None) | Err(_) => break None,
        }
    };
    let out = container.stdout_to_vec().await.unwrap_or_default();
    let err = container.stderr_to_vec().await.unwrap_or_default();
    let output = format!("{}{}", String::from_utf8_lossy(&out), String::from_utf8_lossy(&err));
    crate::clock::judge_container_probe(image, code, &output)
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
        let started = Instant::now();
        let code = loop {
            match container.exit_code().await {
                Ok(Some(code)) => break code,
                Ok(None) if started.elapsed() < SETUP_TIMEOUT => tokio::time::sleep(Duration::from_millis(100)).await,
                Ok(None) => {
                    return Err(HarnessError::SetupFailed {
                        profile: profile.into(),
                        command: line,
                        status: format!("timed out after {SETUP_TIMEOUT:?}"),
                        output: logs.tail(TAIL_LINES),
                    })
                }
                Err(e) => return Err(HarnessError::container(format!("waiting for setup `{line}`"))(e)),
            }
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
