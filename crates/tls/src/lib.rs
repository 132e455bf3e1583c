//! Outbound TLS for every HTTP client Flywheel builds (webhooks, the simulation and bench
//! client, the CLI's requests, tests): rustls with the `ring` provider — not aws-lc, whose
//! C build is the most expensive unit of the tree (see ARCHITECTURE.md).
//!
//! reqwest is built with `rustls-no-provider`, and cargo unifies that feature for every
//! reqwest in the workspace: a `reqwest::Client` built before a process-wide crypto
//! provider is installed panics. So every place that builds a client calls [`install`]
//! first (it is cheap and idempotent), and the webhook client does not rely on it at all:
//! [`client_config`] names its provider.
//!
//! Must not: know HTTP, settings files or webhooks' rules; read anything but the CA file
//! it is given.

use std::path::Path;
use std::sync::{Arc, Once};

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The ring crypto provider. rustls 0.23.48 deprecated `ring::default_provider` because
/// ring has no post-quantum key exchange (aws-lc has); we keep ring for its build cost
/// (CRATES.md: aws-lc-sys is the most expensive unit of the tree) and say so here, once.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs the ring provider as the process's default, once. A provider some other code
/// installed first is kept.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = CryptoProvider::install_default(Arc::unwrap_or_clone(provider()));
    });
}

/// The certificates of a PEM file (a CA bundle): at least one, or an error naming the file.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM file of certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// A client configuration trusting the Mozilla roots of `webpki-roots` (the same on every
/// host, whatever its CA store) and `extra` (an operator's private CAs), on the ring
/// provider, TLS 1.2 and 1.3.
pub fn client_config(extra: &[CertificateDer<'static>]) -> Result<rustls::ClientConfig, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| format!("a CA certificate is not usable as a root: {e}"))?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("the TLS versions are not supported: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_is_idempotent_and_sets_ring() {
        install();
        install();
        assert!(CryptoProvider::get_default().is_some());
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("flywheel-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(read_ca_file(&empty).unwrap_err().contains("no PEM certificate"));
        assert!(
            read_ca_file(&dir.join("missing.pem"))
                .unwrap_err()
                .contains("cannot read")
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(client_config(&[]).is_ok());
    }
}
