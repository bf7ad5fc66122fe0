//! Postgres in a container (testcontainers-modules' `Postgres`), from a configurable image with
//! the official image's contract. Removed on drop by testcontainers.

use std::net::IpAddr;

use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ImageExt};
use testcontainers_modules::postgres::Postgres;

use crate::docker::split_image;
use crate::error::{HarnessError, Result};

/// Password of the container's superuser (the container is reachable only from this machine).
const PASSWORD: &str = "postgres";

/// A running Postgres container.
pub struct DockerPostgres {
    container: Option<ContainerAsync<Postgres>>,
    host_port: u16,
    bridge_ip: IpAddr,
}

impl std::fmt::Debug for DockerPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerPostgres").field("id", &self.id()).field("host_port", &self.host_port).field("bridge_ip", &self.bridge_ip).finish()
    }
}

impl DockerPostgres {
    /// Starts `image` (`name:tag`) and waits for its "ready to accept connections" lines.
    ///
    /// # Errors
    /// The container does not start or expose its port.
    pub async fn start(image: &str) -> Result<Self> {
        let (name, tag) = split_image(image);
        let container = Postgres::default()
            .with_password(PASSWORD)
            .with_name(name)
            .with_tag(tag)
            .with_cmd(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "wal_init_zero=off", "-c", "max_connections=300"])
            .with_labels(crate::identity::labels())
            .with_startup_timeout(std::time::Duration::from_secs(60))
            .start()
            .await
            .map_err(HarnessError::container(format!("starting Postgres container {image}")))?;
        let host_port = container.get_host_port_ipv4(5432).await.map_err(HarnessError::container(format!("reading the published port of {image}")))?;
        let bridge_ip = container_ip(container.id()).await?;
        tracing::info!(id = container.id(), host_port, %bridge_ip, "postgres container ready");
        Ok(Self { container: Some(container), host_port, bridge_ip })
    }

    /// Superuser URL of database `db` from this machine.
    #[must_use]
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres:{PASSWORD}@127.0.0.1:{}/{db}", self.host_port)
    }

    /// Superuser URL of database `db` from a container: through the published port on
    /// `host.docker.internal`, which every backend container gets, so that a backend on a
    /// per-run network (name routing) reaches it as well as one on the default bridge
    /// (Docker isolates bridge networks from each other).
    #[must_use]
    pub fn container_url(&self, db: &str) -> String {
        format!("postgresql://postgres:{PASSWORD}@{}:{}/{db}", crate::docker::HOST_GATEWAY_NAME, self.host_port)
    }

    /// The container id.
    #[must_use]
    pub fn id(&self) -> &str {
        self.container.as_ref().map_or("", |c| c.id())
    }
}

impl Drop for DockerPostgres {
    fn drop(&mut self) {
        if let Some(container) = self.container.take() {
            crate::docker::drop_container(container);
        }
    }
}

/// The container's address on the default bridge. Read from the inspect data directly:
/// testcontainers' own lookup asks for a network named after the container's network mode,
/// which older engines (20.10) report as `default`.
async fn container_ip(id: &str) -> Result<IpAddr> {
    let docker = crate::docker::connect().await?;
    let info = docker
        .inspect_container(id, None)
        .await
        .map_err(|e| HarnessError::DockerUnavailable { docker_host: crate::docker::docker_host(), reason: format!("inspecting container {id}: {e}") })?;
    let settings = info.network_settings.unwrap_or_default();
    let from_networks = settings.networks.unwrap_or_default().into_values().filter_map(|n| n.ip_address).find(|ip| !ip.is_empty());
    from_networks.and_then(|ip| ip.parse().ok()).ok_or_else(|| HarnessError::Missing {
        what: format!("container {id} has no address on a Docker network"),
        fix: "check that the container runs on the default bridge network (docker network inspect bridge)".into(),
    })
}
