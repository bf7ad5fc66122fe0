use std::collections::btree_map;
use std::collections::BTreeMap;

/// Environment variables that route an unmodified client process through the interceptor.
///
/// Each HTTP stack reads different names (curl and Go read lower case first, Python reads
/// both, Node reads only `NODE_EXTRA_CA_CERTS`), so every common spelling is set. Pass it
/// straight to a process builder:
///
/// ```no_run
/// # async fn demo(interceptor: &mock_clerk::intercept::Interceptor) -> std::io::Result<()> {
/// let status = tokio::process::Command::new("python3")
///     .arg("backend.py")
///     .envs(&interceptor.env_block())
///     .status()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvBlock {
    vars: BTreeMap<String, String>,
}

/// Names that point a client at the proxy.
pub const PROXY_VARS: [&str; 4] = ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"];
/// Names that list hosts the client must reach directly.
pub const NO_PROXY_VARS: [&str; 2] = ["NO_PROXY", "no_proxy"];
/// Names that point a client at the CA bundle: OpenSSL and Python's `ssl`/httpx, requests,
/// curl, and Node (which adds it to its built-in roots).
pub const CA_VARS: [&str; 4] = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"];
/// Hosts that never go through the proxy: the backend's own health checks and anything the
/// harness itself serves on loopback.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl EnvBlock {
    pub(crate) fn new(proxy_url: &str, ca_file: &str, bypass: &[String]) -> Self {
        let no_proxy = LOOPBACK_HOSTS.iter().copied().chain(bypass.iter().map(String::as_str)).collect::<Vec<_>>().join(",");
        let mut vars = BTreeMap::new();
        for name in PROXY_VARS {
            vars.insert(name.to_owned(), proxy_url.to_owned());
        }
        for name in NO_PROXY_VARS {
            vars.insert(name.to_owned(), no_proxy.clone());
        }
        for name in CA_VARS {
            vars.insert(name.to_owned(), ca_file.to_owned());
        }
        // Node ignores the proxy variables unless asked to honour them (Node >= 22.21 / 24.5);
        // older versions ignore this variable too, so it never hurts.
        vars.insert("NODE_USE_ENV_PROXY".to_owned(), "1".to_owned());
        Self { vars }
    }

    /// The value of one variable, if the block sets it.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Every variable, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The block as `NAME=value` lines, for a `.env` file or `docker run --env-file`.
    #[must_use]
    pub fn to_env_file(&self) -> String {
        let mut file = String::new();
        for (name, value) in self.iter() {
            file.push_str(name);
            file.push('=');
            file.push_str(value);
            file.push('\n');
        }
        file
    }
}

impl<'a> IntoIterator for &'a EnvBlock {
    type Item = (&'a String, &'a String);
    type IntoIter = btree_map::Iter<'a, String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.vars.iter()
    }
}

impl IntoIterator for EnvBlock {
    type Item = (String, String);
    type IntoIter = btree_map::IntoIter<String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.vars.into_iter()
    }
}
