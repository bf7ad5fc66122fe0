//! Routing by name: makes the backend's resolver send Clerk's hosts to a direct TLS
//! [`Front`] of the mock, for HTTP clients that ignore `HTTPS_PROXY` (Clerk's Python SDK
//! fetches `https://api.clerk.com/v1/jwks` through `httpx.Client(transport=HTTPTransport())`).
//!
//! | runtime | how the Clerk hosts resolve to the front | needs |
//! |---|---|---|
//! | docker | a per-run user-defined network; the front listens on its gateway `:443`, the backend container gets extra hosts `api.clerk.com` / FAPI host → gateway | root (port 443 on the host) |
//! | local | the backend runs in a private mount namespace (`unshare --mount`) with a per-run hosts file bound over `/etc/hosts`; the front listens on a per-run loopback address `127.x.y.z:443` | root, `unshare` and `mount` (util-linux) |
//!
//! Without what a runtime needs, routing is off ([`NameRouting::reason`] says why): clients
//! that honour `HTTPS_PROXY` still reach the mock through the proxy, the others show up in
//! [`crate::TestEnv::outbound_diagnosis`]. `HARNESS_NAME_ROUTING=off` switches it off.
//!
//! Both kinds of client are recorded in the same journal
//! ([`Interceptor::routed_requests`]), whichever way they came.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use mock_clerk::intercept::{Front, InterceptError, Interceptor, RoutedRequest};
use testcontainers::bollard::Docker;

use crate::error::{HarnessError, Result};

/// What to do when the backend's TLS client refuses the per-run CA.
pub const UNTRUSTED_CA_FIX: &str = "make the backend's HTTP client trust the system store or SSL_CERT_FILE, which the harness points \
     at its per-run CA: a client that trusts only its bundled roots ignores it (e.g. reqwest with `rustls-tls` uses webpki-roots: \
     enable `rustls-tls-native-roots`, or a platform verifier such as rustls-platform-verifier; Python's requests/httpx read \
     REQUESTS_CA_BUNDLE/SSL_CERT_FILE unless given verify=certifi.where(); Node reads NODE_EXTRA_CA_CERTS) — or point the SDK at \
     the mock by URL ({api_url}, {jwks_url} in the profile's [env]), where no TLS is needed";

/// The handshake failures since `since` that show the backend's TLS client distrusting the
/// per-run CA (an `unknown_ca`/`bad_certificate`/`certificate_unknown` alert, or a hang-up
/// mid-handshake) on a host of `hosts` that then got no request through (`routed`): a client
/// that once dropped a connection but otherwise works is no evidence. One entry per host:
/// `(host, alert, seconds after since)`.
#[must_use]
pub fn untrusted_tls(
    failures: &[mock_clerk::intercept::HandshakeFailure],
    routed: &[RoutedRequest],
    since: SystemTime,
    hosts: &[String],
) -> Vec<(String, String, f64)> {
    let mut found: Vec<(String, String, f64)> = vec![];
    for f in failures.iter().filter(|f| f.at >= since && hosts.contains(&f.host)) {
        let Some(alert) = f.alert.as_ref().filter(|_| f.untrusted_ca || f.alert.as_deref() == Some("closed during the handshake")) else { continue };
        if routed.iter().any(|r| r.host == f.host && r.at >= since) || found.iter().any(|(h, _, _)| *h == f.host) {
            continue;
        }
        found.push((f.host.clone(), alert.clone(), f.at.duration_since(since).map_or(0.0, |d| d.as_secs_f64())));
    }
    found
}

/// How a backend's resolver reaches the mock's front, for one environment.
#[derive(Debug)]
pub struct NameRouting {
    kind: Kind,
    hosts: Vec<String>,
    reason: String,
    // Dropped after `kind`'s resources are no longer used by anyone.
    front: Option<Front>,
}

#[derive(Debug)]
enum Kind {
    Off,
    Namespace { hosts_file: HostsFile },
    Network(DockerNetwork),
}

impl NameRouting {
    /// No routing by name; `reason` is shown in diagnoses.
    #[must_use]
    pub fn off(hosts: Vec<String>, reason: impl Into<String>) -> Self {
        Self { kind: Kind::Off, hosts, reason: reason.into(), front: None }
    }

    /// Whether the Clerk hosts resolve to the front for the backend.
    #[must_use]
    pub fn is_active(&self) -> bool {
        !matches!(self.kind, Kind::Off)
    }

    /// One line: what routes the names, or why nothing does.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The hosts routed (Clerk's Backend API and the instance's FAPI host).
    #[must_use]
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The front's address, when routing is active.
    #[must_use]
    pub fn front_addr(&self) -> Option<SocketAddr> {
        self.front.as_ref().map(Front::local_addr)
    }

    /// The hosts file bound over `/etc/hosts` of a local backend (namespace routing).
    #[must_use]
    pub fn hosts_file(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Namespace { hosts_file, .. } => Some(&hosts_file.path),
            _ => None,
        }
    }

    /// The per-run network and the extra hosts of a backend container (network routing).
    #[must_use]
    pub fn container_network(&self) -> Option<(&str, Vec<(String, IpAddr)>)> {
        match &self.kind {
            Kind::Network(net) => Some((net.name.as_str(), self.hosts.iter().map(|h| (h.clone(), net.gateway)).collect())),
            _ => None,
        }
    }
}

/// Routing for a local backend process: as root, a private mount namespace with a per-run
/// `/etc/hosts`; otherwise off, with the reason.
pub(crate) async fn for_local(interceptor: &Interceptor, hosts: Vec<String>, enabled: bool) -> NameRouting {
    if !enabled {
        return NameRouting::off(hosts, "name routing is switched off (HARNESS_NAME_ROUTING=off or the profile has intercept = false)");
    }
    if !nix::unistd::geteuid().is_root() {
        return NameRouting::off(
            hosts,
            "local runtime without root: the backend's /etc/hosts cannot be replaced (needs a private mount namespace), so only clients that honour HTTPS_PROXY reach the mock",
        );
    }
    if let Err(why) = namespace_works() {
        return NameRouting::off(
            hosts,
            format!("a private mount namespace is not available here ({why}): only clients that honour HTTPS_PROXY reach the mock"),
        );
    }
    let (front, ip) = match loopback_front(interceptor).await {
        Ok(found) => found,
        Err(e) => return NameRouting::off(hosts, format!("no loopback address could take the TLS front on port 443 ({e})")),
    };
    match write_hosts_file(ip, &hosts) {
        Ok(hosts_file) => {
            let reason = format!("local: private /etc/hosts maps {} to the TLS front on {ip}:443", hosts.join(", "));
            tracing::info!(%reason, file = %hosts_file.path.display(), "name routing");
            NameRouting { kind: Kind::Namespace { hosts_file }, hosts, reason, front: Some(front) }
        }
        Err(e) => NameRouting::off(hosts, format!("could not write the per-run hosts file: {e}")),
    }
}

/// Routing for a backend container: a labelled per-run network whose gateway takes the front
/// on `:443`. Off (the network removed again) when port 443 cannot be bound.
///
/// # Errors
/// Docker refused to create or inspect the network.
pub(crate) async fn for_docker(docker: &Docker, interceptor: &Interceptor, hosts: Vec<String>, enabled: bool) -> Result<NameRouting> {
    if !enabled {
        return Ok(NameRouting::off(hosts, "name routing is switched off (HARNESS_NAME_ROUTING=off or the profile has intercept = false)"));
    }
    let net = DockerNetwork::create(docker).await?;
    let addr = SocketAddr::new(net.gateway, 443);
    match interceptor.start_front(addr).await {
        Ok(front) => {
            let reason = format!("docker: network {} maps {} to the TLS front on {addr}", net.name, hosts.join(", "));
            tracing::info!(%reason, "name routing");
            Ok(NameRouting { kind: Kind::Network(net), hosts, reason, front: Some(front) })
        }
        Err(e) => {
            let hint = if matches!(e, InterceptError::Bind { .. }) { " (port 443 needs root or CAP_NET_BIND_SERVICE)" } else { "" };
            Ok(NameRouting::off(hosts, format!("the TLS front could not listen on {addr}: {e}{hint}")))
        }
    }
}

/// Whether `unshare --mount` works here (once per process): root alone is not enough in a
/// container without `CAP_SYS_ADMIN`.
fn namespace_works() -> std::result::Result<(), String> {
    static PROBE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let out = std::process::Command::new("unshare")
                .args(["--mount", "--propagation", "private", "/bin/sh", "-c", "mount --bind /etc/hosts /etc/hosts"])
                .output()
                .map_err(|e| format!("cannot run `unshare`: {e}; install util-linux"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("`unshare --mount` failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
            }
        })
        .clone()
}

/// The front on a random `127.x.y.z:443` (the whole 127/8 is local on Linux: no alias needed),
/// so parallel runs do not collide.
async fn loopback_front(interceptor: &Interceptor) -> std::result::Result<(Front, Ipv4Addr), InterceptError> {
    let mut last = None;
    for _ in 0..16 {
        let [a, b, c]: [u8; 3] = rand::random();
        let ip = Ipv4Addr::new(127, a.max(1), b, c.clamp(2, 254));
        match interceptor.start_front(SocketAddr::from((ip, 443))).await {
            Ok(front) => return Ok((front, ip)),
            Err(e @ InterceptError::PortInUse { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(InterceptError::PortInUse { addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 443)) }))
}

/// The per-run hosts file, in a registered temp dir with the owner marker (removed by the
/// watchdog or `clerk-harness clean` if the harness is killed).
#[derive(Debug)]
struct HostsFile {
    path: PathBuf,
    _dir: crate::reaper::OwnedDir,
}

fn write_hosts_file(ip: Ipv4Addr, hosts: &[String]) -> crate::error::Result<HostsFile> {
    let original = std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| "127.0.0.1 localhost\n::1 localhost\n".into());
    let dir = crate::reaper::OwnedDir::new("clerk-harness-hosts-", &std::env::temp_dir())?;
    let path = dir.path().join("hosts");
    // Ours first: the resolver takes the first match.
    let text = format!("# clerk-harness: Clerk's hosts go to the mock's TLS front for this run\n{ip} {}\n{original}", hosts.join(" "));
    let io = |what: &str| crate::error::HarnessError::io(format!("{what} {}", path.display()));
    std::fs::write(&path, text).map_err(io("writing"))?;
    // Readable by a backend that drops privileges (the directory too).
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).map_err(io("chmod"))?;
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).map_err(io("chmod the dir of"))?;
    Ok(HostsFile { path, _dir: dir })
}

/// `program args…` wrapped so that it runs with `hosts_file` as its `/etc/hosts`, in a private
/// mount namespace (same pid: `unshare` and `sh` exec the program).
#[must_use]
pub fn wrap_in_namespace(hosts_file: &Path, program: &Path, args: &[String]) -> (PathBuf, Vec<String>) {
    let mut wrapped = vec![
        "--mount".to_owned(),
        "--propagation".to_owned(),
        "private".to_owned(),
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        r#"mount --bind "$0" /etc/hosts && exec "$@""#.to_owned(),
        hosts_file.display().to_string(),
        program.display().to_string(),
    ];
    wrapped.extend(args.iter().cloned());
    (PathBuf::from("unshare"), wrapped)
}

/// A per-run user-defined Docker network, removed on drop.
#[derive(Debug)]
struct DockerNetwork {
    name: String,
    gateway: IpAddr,
}

impl DockerNetwork {
    async fn create(docker: &Docker) -> Result<Self> {
        use testcontainers::bollard::models::NetworkCreateRequest;
        let name = format!("clerk-harness-{}-{}", std::process::id(), crate::identity::random_token(6));
        let failed = |what: &str, e: testcontainers::bollard::errors::Error| HarnessError::DockerUnavailable {
            docker_host: crate::docker::docker_host(),
            reason: format!("{what} network {name}: {e}"),
        };
        let request = NetworkCreateRequest { name: name.clone(), driver: Some("bridge".into()), labels: Some(crate::identity::labels()), ..Default::default() };
        // The watchdog removes the run's networks by label if this process is killed.
        crate::reaper::register(crate::reaper::Resource::Docker);
        docker.create_network(request).await.map_err(|e| failed("creating", e))?;
        // Removed again on drop if anything below fails.
        let mut network = Self { name: name.clone(), gateway: IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
        let inspected = docker.inspect_network(&name, None).await.map_err(|e| failed("inspecting", e))?;
        let config = inspected.ipam.and_then(|ipam| ipam.config).unwrap_or_default();
        let gateway = config.iter().find_map(|c| c.gateway.as_deref().and_then(|g| g.parse::<IpAddr>().ok()).filter(IpAddr::is_ipv4)).or_else(|| {
            // Some engines show only the subnet: the gateway is its first address.
            config.iter().find_map(|c| c.subnet.as_deref().and_then(first_address))
        });
        match gateway {
            Some(gateway) => {
                network.gateway = gateway;
                Ok(network)
            }
            None => Err(HarnessError::DockerUnavailable {
                docker_host: crate::docker::docker_host(),
                reason: format!("network {name} has no IPv4 gateway or subnet (it was removed again)"),
            }),
        }
    }
}

fn first_address(subnet: &str) -> Option<IpAddr> {
    let (base, _) = subnet.split_once('/')?;
    let base: Ipv4Addr = base.parse().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(u32::from(base) + 1)))
}

impl Drop for DockerNetwork {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        let name = std::mem::take(&mut self.name);
        // The backend's container is removed just before (asynchronously by testcontainers):
        // retry while the network still has endpoints, up to a deadline.
        let remove = async move {
            let Ok(docker) = crate::docker::connect().await else { return };
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match docker.remove_network(&name).await {
                    Ok(()) => return tracing::debug!(%name, "per-run network removed"),
                    Err(testcontainers::bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return,
                    Err(e) if Instant::now() > deadline => return tracing::warn!(%name, error = %e, "could not remove the per-run network"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        };
        let worker = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(remove);
            }
        });
        let _ = worker.join();
    }
}

/// "The backend tried to reach `host` and the mock never saw the call": what
/// [`crate::TestEnv::outbound_diagnosis`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreached {
    /// The host the backend tried to reach (named in its log, or inferred: see `inferred`).
    pub host: String,
    /// True when the log names no host and `host` was inferred (Clerk's SDK in a traceback
    /// means `api.clerk.com`).
    pub inferred: bool,
    /// The log line that shows the failed connection.
    pub evidence_line: String,
    /// Whether routing by name was active (then the backend resolves the host some other way,
    /// e.g. its own DNS client, or calls a host the harness does not mock).
    pub name_routing_active: bool,
    /// Why routing by name is off, or how it routes.
    pub routing: String,
}

impl Unreached {
    /// What the user can do about it, in one paragraph.
    #[must_use]
    pub fn fix(&self) -> String {
        if self.name_routing_active {
            format!(
                "{} is not served by the mock, or the backend resolves it without /etc/hosts: point the backend at a Clerk host the harness serves, \
                 or verify tokens networklessly (CLERK_JWT_KEY = \"{{pem_public_key}}\" in the profile's [env])",
                self.host
            )
        } else {
            format!(
                "the backend's HTTP client ignores HTTPS_PROXY and Clerk's host names are not routed to the mock ({}). Run it in the container runtime (--runtime docker, \
                 which routes Clerk's hosts by name), run the harness as root in the local runtime, or verify tokens networklessly \
                 (CLERK_JWT_KEY = \"{{pem_public_key}}\" in the profile's [env])",
                self.routing
            )
        }
    }
}

impl std::fmt::Display for Unreached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inferred = if self.inferred { " (inferred: the log names Clerk's SDK but no host)" } else { "" };
        write!(f, "the backend tried to reach {}{inferred} and the mock never saw the call; its log says: {}", self.host, self.evidence_line.trim())
    }
}

/// Fragments (lower case) of the messages HTTP stacks log when a connection fails before any
/// response: name resolution, refused, unreachable, timed out.
const CONNECTION_ERRORS: [&str; 15] = [
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "no address associated with hostname",
    "enotfound",
    "eai_again",
    "connection refused",
    "econnrefused",
    "network is unreachable",
    "no route to host",
    "connecterror",
    "connecttimeout",
    "connect timeout",
    "failed to establish a new connection",
    "max retries exceeded",
];

/// Looks for a failed outbound connection in `lines` (the backend's log since a mark) that no
/// request in `routed` (the mock's journal) answers. `clerk_hosts` are the hosts the mock
/// serves; `since` is when the window began.
#[must_use]
pub fn diagnose(lines: &[String], routed: &[RoutedRequest], since: SystemTime, clerk_hosts: &[String], routing: &NameRouting) -> Option<Unreached> {
    let failed = |line: &String| {
        let lower = line.to_ascii_lowercase();
        CONNECTION_ERRORS.iter().any(|fragment| lower.contains(fragment))
    };
    // Best evidence: a failure line that names its host ("could not fetch https://…: …").
    let (host, inferred, line) = match lines.iter().filter(|l| failed(l)).find_map(|l| named_host(l, clerk_hosts).map(|h| (h, l))) {
        Some((host, line)) => (host, false, line),
        None => {
            // Else the first failure line, with a host named near it (a traceback), or
            // inferred from Clerk's SDK in the traceback.
            let index = lines.iter().position(failed)?;
            let window = &lines[index.saturating_sub(40)..(index + 40).min(lines.len())];
            match window.iter().find_map(|l| named_host(l, clerk_hosts)) {
                Some(host) => (host, false, &lines[index]),
                None if window.iter().any(|l| l.to_ascii_lowercase().contains("clerk")) => ("api.clerk.com".to_owned(), true, &lines[index]),
                None => return None,
            }
        }
    };
    if routed.iter().any(|r| r.at >= since && r.host == host) {
        return None;
    }
    Some(Unreached { host, inferred, evidence_line: line.clone(), name_routing_active: routing.is_active(), routing: routing.reason().to_owned() })
}

/// After a request to the backend timed out: when name routing is off and the mock saw no
/// call for Clerk's hosts in the window, the likeliest cause is a client that ignores the
/// proxy, still retrying (Clerk's Python SDK retries a failed connection for minutes before it
/// logs anything). `None` when routing is active or the mock did see calls.
#[must_use]
pub fn diagnose_silence(routed: &[RoutedRequest], since: SystemTime, routing: &NameRouting) -> Option<Unreached> {
    if routing.is_active() || routed.iter().any(|r| r.at >= since && routing.hosts().contains(&r.host)) {
        return None;
    }
    Some(Unreached {
        host: routing.hosts().first().cloned().unwrap_or_else(|| "api.clerk.com".into()),
        inferred: true,
        evidence_line: "(no log line yet) the request to the backend timed out and the mock saw no call to a Clerk host meanwhile".into(),
        name_routing_active: false,
        routing: routing.reason().to_owned(),
    })
}

/// A host named in `line`: one of Clerk's, else `https://host`, `host='…'` (urllib3).
fn named_host(line: &str, clerk_hosts: &[String]) -> Option<String> {
    let lower = line.to_ascii_lowercase();
    if let Some(host) = clerk_hosts.iter().find(|h| lower.contains(h.as_str())) {
        return Some(host.clone());
    }
    let after = |marker: &str| lower.find(marker).map(|i| &lower[i + marker.len()..]);
    let candidate = after("https://").or_else(|| after("host='")).or_else(|| after("host=\""))?;
    let host: String = candidate.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-')).collect();
    (host.contains('.') && !host.starts_with("127.") && host != "localhost").then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::{Method, StatusCode};

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn only_a_distrusting_client_that_never_got_through_is_reported() {
        use mock_clerk::intercept::HandshakeFailure;
        let since = SystemTime::now();
        let later = since + Duration::from_millis(300);
        let failure = |host: &str, untrusted_ca, alert: Option<&str>| HandshakeFailure {
            host: host.into(),
            untrusted_ca,
            error: "x".into(),
            alert: alert.map(str::to_owned),
            at: later,
        };
        let hosts = vec!["api.clerk.com".to_owned(), "a.clerk.accounts.dev".to_owned()];
        let failures = vec![
            failure("a.clerk.accounts.dev", true, Some("unknown_ca")),
            failure("a.clerk.accounts.dev", true, Some("unknown_ca")),
            failure("api.clerk.com", false, Some("closed during the handshake")),
            failure("api.clerk.com", false, Some("DecodeError")),
            failure("other.example.com", true, Some("bad_certificate")),
        ];
        let found = untrusted_tls(&failures, &[], since, &hosts);
        let named: Vec<(&str, &str)> = found.iter().map(|(h, a, _)| (h.as_str(), a.as_str())).collect();
        assert_eq!(named, [("a.clerk.accounts.dev", "unknown_ca"), ("api.clerk.com", "closed during the handshake")], "one per host, Clerk hosts only");
        // A host that got a request through: the client works, a dropped handshake is no evidence.
        let routed = vec![RoutedRequest {
            host: "api.clerk.com".into(),
            method: Method::GET,
            path: "/v1/jwks".into(),
            status: StatusCode::OK,
            at: later,
            via_front: false,
        }];
        let found = untrusted_tls(&failures, &routed, since, &hosts);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(untrusted_tls(&failures, &[], later + Duration::from_secs(1), &hosts).is_empty(), "failures before `since` are not this bring-up's");
    }

    fn hosts() -> Vec<String> {
        vec!["api.clerk.com".into(), "brave-otter-1.clerk.accounts.dev".into()]
    }

    #[test]
    fn an_sdk_traceback_without_a_host_is_inferred_as_the_backend_api() {
        let log = lines(
            "INFO:     127.0.0.1:5000 - \"GET /me HTTP/1.1\" 500\n  File \"/venv/lib/python3.11/site-packages/clerk_backend_api/security/verifytoken.py\", line 150, in _fetch_jwks\nhttpx.ConnectError: [Errno -2] Name or service not known",
        );
        let routing = NameRouting::off(hosts(), "switched off");
        let found = diagnose(&log, &[], SystemTime::now(), &hosts(), &routing).expect("a connection error");
        assert_eq!((found.host.as_str(), found.inferred), ("api.clerk.com", true));
        assert!(found.evidence_line.contains("Name or service not known"));
        assert!(found.fix().contains("--runtime docker") && found.fix().contains("{pem_public_key}"), "{}", found.fix());
    }

    #[test]
    fn a_named_host_wins_and_a_call_the_mock_saw_is_no_diagnosis() {
        let log = lines("urllib3: HTTPSConnectionPool(host='brave-otter-1.clerk.accounts.dev', port=443): Max retries exceeded (Connection refused)");
        let routing = NameRouting::off(hosts(), "off");
        let since = SystemTime::now();
        let found = diagnose(&log, &[], since, &hosts(), &routing).expect("refused");
        assert_eq!((found.host.as_str(), found.inferred), ("brave-otter-1.clerk.accounts.dev", false));
        let seen = RoutedRequest {
            host: found.host.clone(),
            method: Method::GET,
            path: "/.well-known/jwks.json".into(),
            status: StatusCode::OK,
            at: SystemTime::now(),
            via_front: true,
        };
        assert_eq!(diagnose(&log, &[seen], since, &hosts(), &routing), None);
    }

    #[test]
    fn other_hosts_are_named_and_plain_errors_without_a_host_are_not_diagnosed() {
        let routing = NameRouting::off(hosts(), "off");
        let found = diagnose(&lines("GET https://telemetry.example.com/v1 failed: connection refused"), &[], SystemTime::now(), &hosts(), &routing);
        assert_eq!(found.map(|u| u.host), Some("telemetry.example.com".to_owned()));
        assert_eq!(diagnose(&lines("db: connection refused"), &[], SystemTime::now(), &hosts(), &routing), None);
        assert_eq!(diagnose(&lines("all good: 200 from https://api.clerk.com/v1/jwks"), &[], SystemTime::now(), &hosts(), &routing), None);
    }

    #[test]
    fn silence_is_diagnosed_only_without_routing_and_without_calls() {
        let since = SystemTime::now();
        let off = NameRouting::off(hosts(), "off for the test");
        let found = diagnose_silence(&[], since, &off).expect("silence without routing");
        assert_eq!((found.host.as_str(), found.inferred, found.name_routing_active), ("api.clerk.com", true, false));
        assert!(found.fix().contains("off for the test"), "{}", found.fix());
        let call = RoutedRequest {
            host: "api.clerk.com".into(),
            method: Method::GET,
            path: "/v1/jwks".into(),
            status: StatusCode::OK,
            at: SystemTime::now(),
            via_front: false,
        };
        assert_eq!(diagnose_silence(&[call], since, &off), None, "the mock saw a call");
    }

    #[test]
    fn the_namespace_wrapper_keeps_the_program_and_its_arguments() {
        let (program, args) = wrap_in_namespace(Path::new("/tmp/h"), Path::new("/usr/bin/python3"), &["-m".into(), "uvicorn".into()]);
        assert_eq!(program, PathBuf::from("unshare"));
        assert_eq!(&args[args.len() - 4..], ["/tmp/h", "/usr/bin/python3", "-m", "uvicorn"]);
    }
}
