//! Resolves a [`HarnessConfig`] and a profile into a [`Choice`] of providers, probing Docker
//! only when it matters.

use testcontainers::bollard::Docker;

use crate::config::{BackendMode, Choice, HarnessConfig, PostgresMode, Runtime, DEFAULT_POSTGRES_IMAGES};
use crate::docker;
use crate::error::{HarnessError, Result};
use crate::profile::Profile;

/// Decides the providers. `auto` prints one line to stderr saying what it chose and why.
///
/// # Errors
/// Docker is required (explicitly) but unreachable, or a piece has no way to run: e.g. the
/// backend is `url` without `HARNESS_BACKEND_URL`, or `local` for a profile without `[process]`.
pub async fn choose(config: &HarnessConfig, profile: &Profile) -> Result<Choice> {
    let pg_explicit = config.postgres.or(match config.runtime {
        Runtime::Docker => Some(PostgresMode::Docker),
        Runtime::Local => Some(PostgresMode::Local),
        Runtime::Auto => None,
    });
    let backend_explicit = config.backend.or(match config.runtime {
        Runtime::Docker => Some(BackendMode::Docker),
        Runtime::Local => Some(BackendMode::Local),
        Runtime::Auto => config.backend_url.as_ref().map(|_| BackendMode::Url),
    });
    check_explicit(config, profile, pg_explicit, backend_explicit)?;

    let needs_docker = pg_explicit == Some(PostgresMode::Docker) || backend_explicit == Some(BackendMode::Docker);
    let probe_docker = needs_docker || pg_explicit.is_none() || backend_explicit.is_none();
    let docker = if probe_docker {
        match docker::connect().await {
            Ok(d) => Ok(d),
            Err(e) if needs_docker => return Err(e),
            Err(e) => Err(e.to_string()),
        }
    } else {
        Err(String::new())
    };

    let mut why = Vec::new();
    let (postgres, postgres_image) = match pg_explicit {
        Some(PostgresMode::Docker) => {
            let d = docker.as_ref().map_err(|_| unreachable_docker())?;
            (PostgresMode::Docker, Some(postgres_image(config, d, true).await?.unwrap_or_default()))
        }
        Some(mode) => (mode, None),
        None => match &docker {
            Ok(d) => match postgres_image(config, d, false).await? {
                Some(image) => {
                    why.push(format!("postgres: docker ({image} present)"));
                    (PostgresMode::Docker, Some(image))
                }
                None => {
                    let wanted = config.postgres_image.clone().unwrap_or_else(|| DEFAULT_POSTGRES_IMAGES.join(" or "));
                    why.push(format!("postgres: local binaries (image {wanted} not present)"));
                    (PostgresMode::Local, None)
                }
            },
            Err(reason) => {
                why.push(format!("postgres: local binaries (Docker unreachable: {})", first_line(reason)));
                (PostgresMode::Local, None)
            }
        },
    };
    let backend = match backend_explicit {
        Some(mode) => mode,
        None => {
            let image = config.backend_image(profile);
            match (&docker, image) {
                (Ok(d), Some(image)) if docker::image_present(d, image).await? => {
                    why.push(format!("backend: container ({image} present)"));
                    BackendMode::Docker
                }
                (Ok(_), Some(image)) if config.backend_image.is_none() && profile.build_context().is_some() => {
                    why.push(format!("backend: container ({image} built from the backend's Dockerfile)"));
                    BackendMode::Docker
                }
                _ if profile.process.is_none() => {
                    return Err(HarnessError::Missing {
                        what: format!("profile {} can only run as a container and Docker or its image is not available", profile.name),
                        fix: "build the image and start Docker, or add a [process] section to the profile".into(),
                    })
                }
                (Ok(_), Some(image)) => {
                    why.push(format!("backend: local process (image {image} not present)"));
                    BackendMode::Local
                }
                (Ok(_), None) => {
                    why.push("backend: local process (the profile has no [container])".into());
                    BackendMode::Local
                }
                (Err(_), _) => {
                    why.push("backend: local process (Docker unreachable)".into());
                    BackendMode::Local
                }
            }
        }
    };
    if backend == BackendMode::Docker {
        let d = docker.as_ref().map_err(|_| unreachable_docker())?;
        let image = config.backend_image(profile).unwrap_or_default();
        // An image built from the profile's Dockerfile is built (or reused) at the start.
        if config.backend_image.is_some() || profile.build_context().is_none() {
            docker::require_image(d, image, "the backend under test").await?;
        }
    }
    let reason = if why.is_empty() {
        format!("clerk-harness: postgres={postgres:?}, backend={backend:?} (as configured)")
    } else {
        let line = format!("clerk-harness: HARNESS_RUNTIME=auto chose {}", why.join("; "));
        eprintln!("{line}");
        line
    };
    tracing::info!(%reason, "runtime chosen");
    Ok(Choice { postgres, postgres_image, backend, reason })
}

fn check_explicit(config: &HarnessConfig, profile: &Profile, pg: Option<PostgresMode>, backend: Option<BackendMode>) -> Result<()> {
    if pg == Some(PostgresMode::Url) && config.database_url.is_none() {
        return Err(HarnessError::Missing {
            what: "HARNESS_POSTGRES=url but no database URL is given".into(),
            fix: "set HARNESS_DATABASE_URL (or DATABASE_URL) to a superuser URL of an existing server, e.g. postgresql://postgres:pw@127.0.0.1:5432/postgres"
                .into(),
        });
    }
    match backend {
        Some(BackendMode::Url) if config.backend_url.is_none() => Err(HarnessError::Missing {
            what: "HARNESS_BACKEND=url but no backend URL is given".into(),
            fix: "set HARNESS_BACKEND_URL to the running backend, e.g. http://127.0.0.1:8000".into(),
        }),
        Some(BackendMode::Local) if profile.process.is_none() => Err(HarnessError::Missing {
            what: format!("profile {} has no [process] section, so it cannot run as a local process", profile.name),
            fix: "use HARNESS_BACKEND=docker, or add [process] with command and cwd to the profile".into(),
        }),
        Some(BackendMode::InProcess) if config.launcher.is_none() => Err(HarnessError::Missing {
            what: "HARNESS_BACKEND=in-process but no launcher is given".into(),
            fix: "build the configuration with HarnessConfig::in_process(launcher)".into(),
        }),
        Some(BackendMode::Docker) if config.backend_image(profile).is_none() => Err(HarnessError::Missing {
            what: format!("profile {} has no [container] section, so it cannot run as a container", profile.name),
            fix: "use HARNESS_BACKEND=local, set HARNESS_BACKEND_IMAGE, or add [container] with image and port".into(),
        }),
        _ => Ok(()),
    }
}

/// The configured Postgres image, or the first default present. With `require`, a missing
/// configured image is an error; without, `None`.
async fn postgres_image(config: &HarnessConfig, docker: &Docker, require: bool) -> Result<Option<String>> {
    if let Some(image) = &config.postgres_image {
        if require {
            docker::require_image(docker, image, "Postgres").await?;
            return Ok(Some(image.clone()));
        }
        return Ok(docker::image_present(docker, image).await?.then(|| image.clone()));
    }
    for image in DEFAULT_POSTGRES_IMAGES {
        if docker::image_present(docker, image).await? {
            return Ok(Some(image.to_owned()));
        }
    }
    if require {
        return Err(HarnessError::ImageMissing {
            image: DEFAULT_POSTGRES_IMAGES.join(" or "),
            role: "Postgres",
            fix: "Build the offline image with .ci/images/build.sh, set HARNESS_POSTGRES_IMAGE, or use HARNESS_POSTGRES=local".into(),
        });
    }
    Ok(None)
}

fn unreachable_docker() -> HarnessError {
    HarnessError::DockerUnavailable { docker_host: docker::docker_host(), reason: "no connection".into() }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
