use std::collections::HashMap;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tempfile::TempDir;

use super::error::InterceptError;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A certificate authority that exists for one run of the harness.
///
/// Backends under test must trust whatever answers as `api.clerk.com`, and the only safe way to
/// arrange that is a CA nobody else has: it is generated fresh, its key lives in memory and in
/// a private temporary directory (mode 0700, key file 0600) so a mock in a container can be
/// handed the same CA, and both files are removed when this value is dropped — also while a
/// panicking test unwinds. The PEM bundle holds this CA only, so a client pointed at it trusts
/// nothing but the mock.
///
/// ```
/// # fn main() -> Result<(), mock_clerk::intercept::InterceptError> {
/// let ca = mock_clerk::intercept::CertificateAuthority::new()?;
/// assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
/// let key_file = ca.key_file().to_path_buf();
/// assert!(key_file.exists());
/// drop(ca);
/// assert!(!key_file.exists());
/// # Ok(()) }
/// ```
pub struct CertificateAuthority {
    issuer: Arc<Issuer>,
    ca_file: PathBuf,
    key_file: PathBuf,
    // Last field so it is dropped last; deleting the directory is what removes the key.
    dir: TempDir,
}

impl CertificateAuthority {
    /// Generates a new CA and writes `ca.pem` and `ca-key.pem` to a new private temporary
    /// directory.
    ///
    /// # Errors
    /// [`InterceptError::CaGeneration`] if rcgen fails, [`InterceptError::CaFiles`] if the
    /// temporary directory or files cannot be written.
    pub fn new() -> Result<Self, InterceptError> {
        let key = KeyPair::generate().map_err(InterceptError::CaGeneration)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name("clerk-harness per-run CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        set_validity(&mut params, 365 * DAY);
        let cert = params.self_signed(&key).map_err(InterceptError::CaGeneration)?;

        let dir =
            tempfile::Builder::new().prefix("clerk-harness-ca-").tempdir().map_err(|source| InterceptError::CaFiles { path: std::env::temp_dir(), source })?;
        let in_dir = |source| InterceptError::CaFiles { path: dir.path().to_path_buf(), source };
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).map_err(in_dir)?;
        let key_file = dir.path().join("ca-key.pem");
        write_file(&key_file, key.serialize_pem().as_bytes(), 0o600)?;
        let pem = cert.pem();
        // Readable by others so a container running as a non-root user can read a bind mount
        // of it; the directory itself stays private.
        let ca_file = dir.path().join("ca.pem");
        write_file(&ca_file, pem.as_bytes(), 0o644)?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let issuer = Issuer { ca_der: cert.der().clone(), cert, key, pem, provider, leaves: Mutex::default(), tunnel_configs: Mutex::default() };
        tracing::debug!(dir = %dir.path().display(), "per-run certificate authority created");
        Ok(Self { issuer: Arc::new(issuer), ca_file, key_file, dir })
    }

    /// The CA certificate in PEM, for clients configured in code rather than through files.
    #[must_use]
    pub fn ca_pem(&self) -> &str {
        &self.issuer.pem
    }

    /// The CA certificate in DER.
    #[must_use]
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.issuer.ca_der
    }

    /// A PEM bundle holding only this CA: the value for `SSL_CERT_FILE` and friends.
    #[must_use]
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The CA private key (PKCS#8 PEM, mode 0600), for a mock that must serve TLS from
    /// another process or container with the same CA. Gone once `self` is dropped.
    #[must_use]
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// The private directory holding [`ca_file`](Self::ca_file) and
    /// [`key_file`](Self::key_file).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A rustls server configuration that presents a certificate from this CA for whatever
    /// name the client asks for in SNI, for serving the mock directly on `:443` (for example
    /// behind container host aliases) instead of through the proxy.
    ///
    /// Handshakes without SNI are refused: there is no name to issue a certificate for.
    ///
    /// # Errors
    /// [`InterceptError::Tls`] if rustls rejects the configuration.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, InterceptError> {
        self.issuer.config_for(None)
    }

    /// Issues (or takes from the cache) the leaf certificate for `host` now, so that a bad
    /// name fails at configuration time instead of during a client's handshake.
    ///
    /// # Errors
    /// [`InterceptError::InvalidHost`] or [`InterceptError::LeafCertificate`].
    pub fn issue(&self, host: &str) -> Result<(), InterceptError> {
        let host = normalize_host(host)?;
        self.issuer.certified_key(&host).map(drop)
    }

    pub(crate) fn issuer(&self) -> Arc<Issuer> {
        Arc::clone(&self.issuer)
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority").field("ca_file", &self.ca_file).field("key_file", &self.key_file).finish_non_exhaustive()
    }
}

/// The in-memory half of the CA, shared with the proxy's connection tasks so they can issue
/// certificates without keeping the files (owned by [`CertificateAuthority`]) alive.
pub(crate) struct Issuer {
    cert: rcgen::Certificate,
    key: KeyPair,
    ca_der: CertificateDer<'static>,
    pem: String,
    provider: Arc<CryptoProvider>,
    leaves: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    tunnel_configs: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer").finish_non_exhaustive()
    }
}

impl Issuer {
    /// The leaf certificate and key for `host` (already normalised), issued once per run.
    pub(crate) fn certified_key(&self, host: &str) -> Result<Arc<CertifiedKey>, InterceptError> {
        if let Some(found) = lock(&self.leaves).get(host) {
            return Ok(Arc::clone(found));
        }
        let issued = Arc::new(self.issue_leaf(host)?);
        // Two handshakes may race to issue the same host; keep whichever landed first so every
        // connection sees one certificate per host.
        Ok(Arc::clone(lock(&self.leaves).entry(host.to_owned()).or_insert(issued)))
    }

    /// A server configuration for a CONNECT tunnel to `host`: presents `host`'s certificate
    /// when the client sends no SNI and refuses an SNI that names a different host.
    pub(crate) fn tunnel_config(self: &Arc<Self>, host: &str) -> Result<Arc<ServerConfig>, InterceptError> {
        if let Some(found) = lock(&self.tunnel_configs).get(host) {
            return Ok(Arc::clone(found));
        }
        let config = self.config_for(Some(host.to_owned()))?;
        Ok(Arc::clone(lock(&self.tunnel_configs).entry(host.to_owned()).or_insert(config)))
    }

    fn config_for(self: &Arc<Self>, tunnel_host: Option<String>) -> Result<Arc<ServerConfig>, InterceptError> {
        let host_for_error = tunnel_host.clone().unwrap_or_else(|| "any host".to_owned());
        let resolver = LeafResolver { issuer: Arc::clone(self), tunnel_host };
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(|source| InterceptError::Tls { host: host_for_error, source })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        // Only HTTP/1.1 is served; advertising it makes clients that offer h2 fall back
        // instead of failing the handshake.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    fn issue_leaf(&self, host: &str) -> Result<CertifiedKey, InterceptError> {
        let leaf_error = |source| InterceptError::LeafCertificate { host: host.to_owned(), source };
        let key = KeyPair::generate().map_err(leaf_error)?;
        let mut params = CertificateParams::new(vec![host.to_owned()]).map_err(leaf_error)?;
        params.distinguished_name = distinguished_name(host);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        // OpenSSL 3's strict verification (Python 3.13's default context) requires the AKI.
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, 90 * DAY);
        let cert = params.signed_by(&key, &self.cert, &self.key).map_err(leaf_error)?;

        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing_key = self.provider.key_provider.load_private_key(key_der).map_err(|source| InterceptError::Tls { host: host.to_owned(), source })?;
        tracing::debug!(host, "issued leaf certificate");
        Ok(CertifiedKey::new(vec![cert.der().clone(), self.ca_der.clone()], signing_key))
    }
}

#[derive(Debug)]
struct LeafResolver {
    issuer: Arc<Issuer>,
    tunnel_host: Option<String>,
}

impl ResolvesServerCert for LeafResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name().map(|name| name.trim_end_matches('.').to_ascii_lowercase());
        let name = match (sni, &self.tunnel_host) {
            (Some(sni), Some(tunnel)) if sni != *tunnel => {
                tracing::warn!(%sni, %tunnel, "TLS SNI names another host than the CONNECT");
                return None;
            }
            (Some(sni), _) => sni,
            (None, Some(tunnel)) => tunnel.clone(),
            (None, None) => {
                tracing::warn!("TLS client sent no SNI: no certificate to present");
                return None;
            }
        };
        self.issuer.certified_key(&name).map_err(|error| tracing::warn!(%error, "no certificate for the handshake")).ok()
    }
}

/// Lower-cases `host`, strips IPv6 brackets and a trailing dot, and refuses what cannot be a
/// single TLS server name (empty, wildcards, ports, paths).
pub(crate) fn normalize_host(host: &str) -> Result<String, InterceptError> {
    let invalid = |reason| InterceptError::InvalidHost { host: host.to_owned(), reason };
    let trimmed = host.trim();
    let bare = trimmed.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).unwrap_or(trimmed).trim_end_matches('.');
    if bare.is_empty() {
        return Err(invalid("the host name is empty"));
    }
    if bare.contains('*') {
        return Err(invalid("wildcards are not supported: route each host by its full name"));
    }
    if bare.parse::<std::net::IpAddr>().is_err() && bare.contains(':') {
        return Err(invalid("give the host name without a port or scheme"));
    }
    if bare.contains(['/', '@', '?', '#']) || bare.chars().any(char::is_whitespace) {
        return Err(invalid("give a bare host name, not a URL"));
    }
    Ok(bare.to_ascii_lowercase())
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "clerk-harness");
    name.push(DnType::CommonName, common_name);
    name
}

/// A validity window that starts a day ago (clock skew between host and containers) and lasts
/// `length` from now. Written through rcgen's own date type so this crate needs no `time`
/// dependency.
fn set_validity(params: &mut CertificateParams, length: Duration) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    params.not_before = epoch + now.saturating_sub(DAY);
    params.not_after = epoch + now + length;
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), InterceptError> {
    let failed = |source| InterceptError::CaFiles { path: path.to_path_buf(), source };
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(failed)?;
    file.write_all(contents).map_err(failed)?;
    // The mode given to open() is filtered by the umask; set it exactly.
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(failed)
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded maps stay consistent even if a holder panicked: at worst an entry is missing.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
