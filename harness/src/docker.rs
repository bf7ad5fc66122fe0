//! Questions to the Docker daemon that decide and prepare the container runtime: does it
//! answer, is an image present, which address do containers reach the host on.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use testcontainers::bollard::Docker;

use crate::error::{HarnessError, Result};
use crate::identity::OWNER_LABEL;

/// How long a ping may take before Docker counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// How containers reach servers on this machine.
pub const HOST_GATEWAY_NAME: &str = "host.docker.internal";

/// The variable that says the Docker test suites were asked for: `scripts/test` and `.ci/run`
/// set `HARNESS_DOCKER_TESTS=1` after building the offline images.
pub const DOCKER_TESTS_VAR: &str = "HARNESS_DOCKER_TESTS";

/// For test suites: the first line of a `#[ignore]`d Docker test. A plain `cargo test` lists
/// such tests as ignored (never as passed); run on purpose (`--run-ignored`) without
/// `HARNESS_DOCKER_TESTS=1` set, the test fails with what to do instead of passing silently.
///
/// # Panics
/// When `HARNESS_DOCKER_TESTS` is not `1`.
pub fn require_docker_tests() {
    assert!(
        std::env::var(DOCKER_TESTS_VAR).is_ok_and(|v| v == "1"),
        "this Docker test was asked for but {DOCKER_TESTS_VAR}=1 is not set: start dockerd, build the images (.ci/images/build.sh all) and set it, or run scripts/test, which does both"
    );
}

/// Where the Docker client looks: `DOCKER_HOST` or the default socket.
#[must_use]
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// A connected Docker client, or [`HarnessError::DockerUnavailable`] saying how to fix it.
///
/// # Errors
/// The daemon does not answer a ping within a few seconds.
pub async fn connect() -> Result<Docker> {
    let unavailable = |reason: String| HarnessError::DockerUnavailable { docker_host: docker_host(), reason };
    let docker = testcontainers::core::client::docker_client_instance().await.map_err(|e| unavailable(e.to_string()))?;
    match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
        Ok(Ok(_)) => Ok(docker),
        Ok(Err(e)) => Err(unavailable(e.to_string())),
        Err(_) => Err(unavailable(format!("no answer to a ping within {PING_TIMEOUT:?}"))),
    }
}

/// Whether `image` (`name:tag`) is in the local image store.
///
/// # Errors
/// The daemon failed in another way than "no such image".
pub async fn image_present(docker: &Docker, image: &str) -> Result<bool> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(testcontainers::bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
        Err(e) => Err(HarnessError::DockerUnavailable { docker_host: docker_host(), reason: format!("inspecting image {image}: {e}") }),
    }
}

/// Fails with [`HarnessError::ImageMissing`] unless `image` is present.
///
/// # Errors
/// The image is missing or Docker failed.
pub async fn require_image(docker: &Docker, image: &str, role: &'static str) -> Result<()> {
    if image_present(docker, image).await? {
        return Ok(());
    }
    let fix = if image.starts_with("clerk-harness/") {
        "Build the project's offline images: .ci/images/build.sh (or run without Docker: HARNESS_RUNTIME=local)".to_owned()
    } else {
        format!("Pull or build it (`docker pull {image}` where a registry is reachable), choose another image, or run without Docker: HARNESS_RUNTIME=local")
    };
    Err(HarnessError::ImageMissing { image: image.to_owned(), role, fix })
}

/// The default bridge's gateway: the host address containers reach as `host.docker.internal`
/// (`host-gateway`), where servers for containers must listen.
///
/// # Errors
/// Docker failed; a bridge without a gateway falls back to 172.17.0.1.
pub async fn bridge_gateway(docker: &Docker) -> Result<IpAddr> {
    let network = docker
        .inspect_network("bridge", None)
        .await
        .map_err(|e| HarnessError::DockerUnavailable { docker_host: docker_host(), reason: format!("inspecting the bridge network: {e}") })?;
    let gateway = network
        .ipam
        .and_then(|ipam| ipam.config)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.gateway)
        .find_map(|g| g.parse::<IpAddr>().ok().filter(IpAddr::is_ipv4));
    let gateway = gateway.unwrap_or(IpAddr::V4(Ipv4Addr::new(172, 17, 0, 1)));
    // The mock and the proxy must listen there; a bridge interface that vanished (deleted by
    // hand, a network reset) shows up here instead of as a bind error deep inside the mock.
    if let Err(e) = std::net::TcpListener::bind((gateway, 0)) {
        return Err(HarnessError::Missing {
            what: format!("the Docker bridge gateway {gateway} is not an address of this machine ({e}), so containers cannot reach the mock"),
            fix: format!(
                "restart the Docker daemon (it recreates docker0), or recreate the bridge: `ip link add docker0 type bridge && \
                 ip addr add {gateway}/16 dev docker0 && ip link set docker0 up`; or run without Docker: HARNESS_RUNTIME=local"
            ),
        });
    }
    Ok(gateway)
}

/// Drops a container from any context. testcontainers removes containers in `Drop` with the
/// current Tokio runtime; outside one (an environment dropped after its runtime), the removal
/// runs on a thread with a runtime of its own instead of panicking.
pub(crate) fn drop_container<I: testcontainers::Image + 'static>(container: testcontainers::ContainerAsync<I>)
where
    testcontainers::ContainerAsync<I>: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        drop(container);
        return;
    }
    let worker = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            rt.block_on(async move { drop(container) });
        }
    });
    let _ = worker.join();
}

/// Splits `name:tag` (default tag `latest`; a registry port is not a tag).
#[must_use]
pub fn split_image(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_owned(), tag.to_owned()),
        _ => (image.to_owned(), "latest".to_owned()),
    }
}

/// Ids of containers labelled as started by process `pid` (running or not).
///
/// # Errors
/// Docker failed.
pub async fn containers_of(docker: &Docker, pid: u32) -> Result<Vec<String>> {
    use std::collections::HashMap;
    let filters = HashMap::from([("label".to_owned(), vec![format!("{OWNER_LABEL}={pid}")])]);
    let options = testcontainers::bollard::query_parameters::ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let list = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| HarnessError::DockerUnavailable { docker_host: docker_host(), reason: format!("listing containers: {e}") })?;
    Ok(list.into_iter().filter_map(|c| c.id).collect())
}

/// Containers and networks with a label matching `filter` (`key` or `key=value`), with
/// their labels.
///
/// # Errors
/// Docker failed.
pub async fn labelled(docker: &Docker, filter: &str) -> Result<(Labelled, Labelled)> {
    use std::collections::HashMap;
    use testcontainers::bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};
    let failed =
        |what: &str, e: testcontainers::bollard::errors::Error| HarnessError::DockerUnavailable { docker_host: docker_host(), reason: format!("{what}: {e}") };
    let filters = HashMap::from([("label".to_owned(), vec![filter.to_owned()])]);
    let containers = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await
        .map_err(|e| failed("listing containers", e))?
        .into_iter()
        .filter_map(|c| Some((c.id?, c.labels.unwrap_or_default())))
        .collect();
    let networks = docker
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(|e| failed("listing networks", e))?
        .into_iter()
        .filter_map(|n| Some((n.id?, n.labels.unwrap_or_default())))
        .collect();
    Ok((containers, networks))
}

/// Ids with their labels.
pub type Labelled = Vec<(String, std::collections::HashMap<String, String>)>;

/// Removes a container (running or not) and its anonymous volumes; gone already is fine.
///
/// # Errors
/// Docker failed.
pub async fn remove_container(docker: &Docker, id: &str) -> Result<()> {
    let options = testcontainers::bollard::query_parameters::RemoveContainerOptionsBuilder::new().force(true).v(true).build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) | Err(testcontainers::bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
        Err(e) => Err(HarnessError::DockerUnavailable { docker_host: docker_host(), reason: format!("removing container {id}: {e}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::split_image;

    #[test]
    fn splits_name_and_tag() {
        assert_eq!(split_image("clerk-harness/postgres:15"), ("clerk-harness/postgres".into(), "15".into()));
        assert_eq!(split_image("postgres"), ("postgres".into(), "latest".into()));
        assert_eq!(split_image("localhost:5000/pg"), ("localhost:5000/pg".into(), "latest".into()));
    }
}
