//! The TLS backend of outgoing HTTPS (platform calls, webhook deliveries) and of Postgres
//! connections: rustls with *ring*. Not aws-lc-rs, whose C build was the longest step of a
//! cold build (docs/decisions/0019-build-time.md). reqwest is built without a provider of
//! its own and panics when it builds a client before one is installed, so every place that
//! builds a client calls [`install_provider`] first (and `main` does at start-up).

use rustls::crypto::{CryptoProvider, ring};

/// Installs *ring* as the process's rustls provider; a provider already installed is kept.
pub fn install_provider() {
    if CryptoProvider::get_default().is_none() {
        // Losing a race to another thread is fine: a provider is installed either way.
        let _ = ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_can_be_built_once_the_provider_is_installed() {
        install_provider();
        let provider = CryptoProvider::get_default().expect("installed");
        assert!(!provider.cipher_suites.is_empty());
        install_provider(); // idempotent
        reqwest::Client::builder().build().expect("reqwest client with the ring provider");
    }
}
