use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong while setting up interception.
///
/// Each message names the thing involved and, where the caller can fix it, what to do next:
/// these errors end up in front of someone wiring a backend to the harness, not a Clerk expert.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InterceptError {
    /// The per-run CA certificate or key could not be generated.
    #[error("could not generate the per-run certificate authority: {0}")]
    CaGeneration(#[source] rcgen::Error),

    /// The CA files could not be written to their temporary directory.
    #[error("could not write the certificate authority files under {path}: {source}")]
    CaFiles {
        /// The file or directory that could not be written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },

    /// A route or certificate was asked for a name that cannot be a TLS server name.
    #[error("'{host}' cannot be intercepted: {reason}")]
    InvalidHost {
        /// The name as given.
        host: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// Signing a leaf certificate for a host failed.
    #[error("could not issue a certificate for '{host}': {source}")]
    LeafCertificate {
        /// The host the certificate was for.
        host: String,
        /// The underlying rcgen error.
        #[source]
        source: rcgen::Error,
    },

    /// rustls refused the generated key or configuration.
    #[error("could not build the TLS configuration for '{host}': {source}")]
    Tls {
        /// The host the configuration was for.
        host: String,
        /// The underlying rustls error.
        #[source]
        source: rustls::Error,
    },

    /// The proxy's port is taken.
    #[error("port {} on {} is already in use: choose another or use port 0", addr.port(), addr.ip())]
    PortInUse {
        /// The address that was asked for.
        addr: SocketAddr,
    },

    /// The proxy was asked to listen on an address this machine does not have.
    #[error(
        "{} is not an address of this machine: for containers bind the docker bridge gateway \
         (usually 172.17.0.1, see `ip -4 addr show docker0`) or 0.0.0.0",
        addr.ip()
    )]
    AddressNotAvailable {
        /// The address that was asked for.
        addr: SocketAddr,
    },

    /// Any other failure to listen.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
}

impl InterceptError {
    pub(crate) fn bind(addr: SocketAddr, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::AddrInUse => Self::PortInUse { addr },
            io::ErrorKind::AddrNotAvailable => Self::AddressNotAvailable { addr },
            _ => Self::Bind { addr, source },
        }
    }
}
