//! Building a backend's image from its own Dockerfile (profile `[container] build = "dir"`),
//! offline, and reusing it while its inputs are unchanged.
//!
//! - **Reuse**: the image is labelled `org.clerk-harness.inputs=<sha256 of the Dockerfile and
//!   every file of the context>`; an image of that name with the same label is used as is.
//!   Skipped when hashing (and never worth sending to Docker): `.git`, `.venv`, `venv`,
//!   `__pycache__`, `node_modules`, `.pytest_cache`, `.mypy_cache`, `*.pyc`.
//! - **Offline**: no registry is reachable, so `FROM python:3.11-slim` resolves to the local
//!   stand-in built by `.ci/images/build.sh python`; the build runs with `--pull=false`.
//!   No container reaches PyPI either: when the context has a `requirements.txt`, its wheels
//!   (CPython 3.11, manylinux x86_64) are downloaded on this machine with `pip download`,
//!   cached under `~/.cache/clerk-harness/build-wheels/`, and served to the build over HTTP on the
//!   Docker bridge; the stand-in image turns the build args `PIP_FIND_LINKS`, `PIP_NO_INDEX`
//!   and `PIP_TRUSTED_HOST` into pip's configuration (`ONBUILD ARG`), so the Dockerfile's own
//!   `pip install -r requirements.txt` installs them without network.
//! - Built with the Docker CLI's legacy builder (`DOCKER_BUILDKIT=0`: the engine here has no
//!   buildx).

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use testcontainers::bollard::Docker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::error::{HarnessError, Result};

/// Label holding the hash of an image's inputs.
pub const INPUTS_LABEL: &str = "org.clerk-harness.inputs";
/// Label naming the image a build produced (to prune the image it replaced).
pub const IMAGE_LABEL: &str = "org.clerk-harness.image";

const SKIPPED: [&str; 8] = [".git", ".venv", "venv", "__pycache__", "node_modules", ".pytest_cache", ".mypy_cache", ".ruff_cache"];

/// What [`ensure_image`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The image (`name:tag`).
    pub image: String,
    /// The inputs hash (the label's value).
    pub inputs: String,
    /// True when an image with these inputs existed and was used as is.
    pub reused: bool,
}

/// Builds `image` from the Dockerfile in `context` unless an image of that name was already
/// built from the same inputs.
///
/// # Errors
/// [`HarnessError::Missing`] for a missing context or Dockerfile, or no `docker` CLI;
/// [`HarnessError::ImageBuild`] with the build's last lines when `docker build` fails.
pub async fn ensure_image(docker: &Docker, image: &str, context: &Path, dockerfile: &str) -> Result<Built> {
    let dockerfile_path = context.join(dockerfile);
    if !dockerfile_path.is_file() {
        return Err(HarnessError::Missing {
            what: format!("no {dockerfile} in {} (the profile's [container] build)", context.display()),
            fix: "point [container] build at the folder holding the backend's Dockerfile (relative to the profile), or set [container] dockerfile".into(),
        });
    }
    let inputs = {
        let (context, dockerfile) = (context.to_path_buf(), dockerfile.to_owned());
        tokio::task::spawn_blocking(move || inputs_hash(&context, &dockerfile))
            .await
            .map_err(|e| HarnessError::io("hashing the build context")(std::io::Error::other(e)))??
    };
    if label_of(docker, image).await.as_deref() == Some(inputs.as_str()) {
        tracing::info!(image, inputs = &inputs[..12], "backend image up to date: reusing it");
        return Ok(Built { image: image.to_owned(), inputs, reused: true });
    }
    let started = Instant::now();
    let base = base_image(&std::fs::read_to_string(&dockerfile_path).unwrap_or_default());
    let wheels = if context.join("requirements.txt").is_file() && base.as_deref().is_some_and(|b| b.starts_with("python")) {
        Some(WheelServer::start(&download_wheels(&context.join("requirements.txt")).await?, docker).await?)
    } else {
        None
    };
    let mut cmd = tokio::process::Command::new("docker");
    cmd.env("DOCKER_BUILDKIT", "0").args(["build", "--pull=false", "--force-rm", "-f"]).arg(&dockerfile_path);
    cmd.args(["--label", &format!("{INPUTS_LABEL}={inputs}"), "--label", &format!("{IMAGE_LABEL}={image}"), "-t", image]);
    if let Some(server) = &wheels {
        let url = format!("http://{}/", server.addr);
        cmd.args(["--build-arg", &format!("PIP_FIND_LINKS={url}"), "--build-arg", "PIP_NO_INDEX=1"]);
        cmd.args(["--build-arg", &format!("PIP_TRUSTED_HOST={}", server.addr.ip())]);
    }
    cmd.arg(context).stdin(Stdio::null()).kill_on_drop(true);
    tracing::info!(image, context = %context.display(), "building the backend image");
    let output = cmd.output().await.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => HarnessError::Missing {
            what: "the `docker` CLI is not installed, so the backend's Dockerfile cannot be built".into(),
            fix: "install it (Debian: apt-get install docker.io), or build the image yourself and drop `build` from the profile".into(),
        },
        _ => HarnessError::io("running docker build")(e),
    })?;
    drop(wheels);
    if !output.status.success() {
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        let hint = match &base {
            Some(base) if !crate::docker::image_present(docker, base).await.unwrap_or(true) => format!(
                "the base image {base} is not in the local store and no registry is reachable: build the offline stand-ins with .ci/images/build.sh (python:3.11-slim) or tag an image as {base}"
            ),
            _ => "read the build output above; a `pip install` that finds no wheel needs a requirements.txt that pins versions with manylinux or pure-Python wheels".into(),
        };
        return Err(HarnessError::ImageBuild { image: image.to_owned(), context: context.to_path_buf(), output: crate::logs::tail_lines(&text, 40), hint });
    }
    // The image this build replaced is now dangling: remove it (ours only, by label).
    let _ = tokio::process::Command::new("docker")
        .args(["image", "prune", "-f", "--filter", &format!("label={IMAGE_LABEL}={image}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    tracing::info!(image, secs = started.elapsed().as_secs_f32(), "backend image built");
    Ok(Built { image: image.to_owned(), inputs, reused: false })
}

async fn label_of(docker: &Docker, image: &str) -> Option<String> {
    let inspected = docker.inspect_image(image).await.ok()?;
    inspected.config?.labels?.get(INPUTS_LABEL).cloned()
}

/// The first stage's base image (`FROM [--platform=…] name[:tag] [AS stage]`), without
/// build-arg substitution.
fn base_image(dockerfile: &str) -> Option<String> {
    dockerfile
        .lines()
        .map(str::trim)
        .find(|l| l.len() > 5 && l[..5].eq_ignore_ascii_case("from "))
        .and_then(|l| l.split_whitespace().skip(1).find(|word| !word.starts_with("--")).map(str::to_owned))
}

/// SHA-256 over the Dockerfile's name and every context file (path, executable bit,
/// contents), in path order.
fn inputs_hash(context: &Path, dockerfile: &str) -> Result<String> {
    let mut files = Vec::new();
    collect(context, context, &mut files)?;
    files.sort();
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(b"clerk-harness build v1\0");
    digest.update(dockerfile.as_bytes());
    for relative in files {
        let path = context.join(&relative);
        let mut file = std::fs::File::open(&path).map_err(HarnessError::io(format!("reading {}", path.display())))?;
        let executable =
            std::os::unix::fs::PermissionsExt::mode(&file.metadata().map_err(HarnessError::io(format!("reading {}", path.display())))?.permissions()) & 0o111
                != 0;
        digest.update(b"\0file\0");
        digest.update(relative.to_string_lossy().as_bytes());
        digest.update(if executable { b"\0x\0" } else { b"\0-\0" });
        let mut buffer = [0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buffer).map_err(HarnessError::io(format!("reading {}", path.display())))?;
            if n == 0 {
                break;
            }
            digest.update(&buffer[..n]);
        }
    }
    Ok(digest.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(HarnessError::io(format!("listing the build context {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(HarnessError::io(format!("listing {}", dir.display())))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if SKIPPED.contains(&name.as_ref()) || name.ends_with(".pyc") {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(HarnessError::io(format!("reading {}", path.display())))?;
        if kind.is_dir() {
            collect(root, &path, files)?;
        } else if kind.is_file() {
            files.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

/// Wheels for CPython 3.11 on manylinux x86_64 (the stand-in image's Python), downloaded on
/// this machine once per `requirements.txt` content.
async fn download_wheels(requirements: &Path) -> Result<PathBuf> {
    let text = std::fs::read(requirements).map_err(HarnessError::io(format!("reading {}", requirements.display())))?;
    let key: String = ring::digest::digest(&ring::digest::SHA256, &text).as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
    let cache = std::env::var_os("CLERK_HARNESS_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("clerk-harness")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache").join("clerk-harness")))
        .unwrap_or_else(|| std::env::temp_dir().join("clerk-harness-cache"))
        // Not build.sh's `wheels/`, which it empties when the reference backend's change.
        .join("build-wheels")
        .join(format!("cp311-{key}"));
    if cache.join(".complete").is_file() {
        return Ok(cache);
    }
    // Per process: two test binaries may download the same set at once.
    let partial = cache.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(HarnessError::io(format!("creating {}", partial.display())))?;
    let mut cmd = tokio::process::Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()));
    cmd.args([
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ]);
    for glibc in (17..=36).rev() {
        cmd.args(["--platform", &format!("manylinux_2_{glibc}_x86_64")]);
    }
    cmd.args(["--platform", "manylinux2014_x86_64", "-r"]).arg(requirements).arg("-d").arg(&partial).stdin(Stdio::null()).kill_on_drop(true);
    let output = cmd.output().await.map_err(HarnessError::io("running `python3 -m pip download` on this machine"))?;
    if !output.status.success() {
        return Err(HarnessError::ImageBuild {
            image: String::new(),
            context: requirements.to_path_buf(),
            output: crate::logs::tail_lines(&String::from_utf8_lossy(&output.stderr), 20),
            hint: "the wheels for the image's Python (3.11, manylinux x86_64) could not be downloaded on this machine: is PyPI reachable \
                   (`python3 -m pip download six`), and does every requirement ship a wheel?"
                .into(),
        });
    }
    std::fs::write(partial.join(".complete"), b"").map_err(HarnessError::io("marking the wheel cache complete"))?;
    if let Err(e) = std::fs::rename(&partial, &cache) {
        // Another process finished the same set first: use it, never replace it (a build may
        // be reading it).
        let _ = std::fs::remove_dir_all(&partial);
        if !cache.join(".complete").is_file() {
            return Err(HarnessError::io(format!("moving the wheels to {}", cache.display()))(e));
        }
    }
    Ok(cache)
}

/// Serves a directory of wheels as a pip "find-links" page on the Docker bridge, for the
/// duration of one build.
struct WheelServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl WheelServer {
    async fn start(dir: &Path, docker: &Docker) -> Result<Self> {
        let gateway = crate::docker::bridge_gateway(docker).await?;
        let listener = TcpListener::bind((gateway, 0)).await.map_err(HarnessError::io(format!("listening on {gateway} for the build's wheels")))?;
        let addr = listener.local_addr().map_err(HarnessError::io("reading the wheel server's address"))?;
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(HarnessError::io(format!("listing {}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.ends_with(".whl"))
            .collect();
        names.sort();
        let index: String = names.iter().map(|n| format!("<a href=\"{n}\">{n}</a><br>\n")).collect();
        let shared = Arc::new((dir.to_path_buf(), names, format!("<!DOCTYPE html><html><body>\n{index}</body></html>\n")));
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 2048];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&request);
                    let path = line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_owned();
                    let (dir, names, index) = &*shared;
                    let (status, body) = if path.is_empty() {
                        ("200 OK", index.clone().into_bytes())
                    } else if names.contains(&path) {
                        match tokio::fs::read(dir.join(&path)).await {
                            Ok(bytes) => ("200 OK", bytes),
                            Err(_) => ("404 Not Found", Vec::new()),
                        }
                    } else {
                        ("404 Not Found", Vec::new())
                    };
                    let kind = if path.is_empty() { "text/html" } else { "application/octet-stream" };
                    let head = format!("HTTP/1.0 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(&body).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(Self { addr, task })
    }
}

impl Drop for WheelServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_image_is_the_first_from() {
        assert_eq!(base_image("# x\nFROM python:3.11-slim AS build\nFROM scratch\n").as_deref(), Some("python:3.11-slim"));
        assert_eq!(base_image("from --platform=linux/amd64 python:3.11\n").as_deref(), Some("python:3.11"));
        assert_eq!(base_image("RUN true\n"), None);
    }

    #[test]
    fn the_inputs_hash_follows_contents_and_skips_caches() -> Result<()> {
        let dir = tempfile::tempdir().map_err(HarnessError::io("tempdir"))?;
        let write = |p: &str, s: &str| {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap_or(dir.path())).and_then(|()| std::fs::write(path, s))
        };
        write("Dockerfile", "FROM python:3.11-slim\n").map_err(HarnessError::io("w"))?;
        write("app.py", "print(1)\n").map_err(HarnessError::io("w"))?;
        let first = inputs_hash(dir.path(), "Dockerfile")?;
        write("__pycache__/app.cpython-311.pyc", "junk").map_err(HarnessError::io("w"))?;
        write(".venv/bin/python", "junk").map_err(HarnessError::io("w"))?;
        assert_eq!(inputs_hash(dir.path(), "Dockerfile")?, first, "caches and venvs are not inputs");
        write("app.py", "print(2)\n").map_err(HarnessError::io("w"))?;
        assert_ne!(inputs_hash(dir.path(), "Dockerfile")?, first, "a changed file is a new input");
        Ok(())
    }
}
