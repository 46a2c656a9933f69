//! Which certificates an outbound HTTPS client trusts: the web roots compiled into the binary
//! (`bundled`, the Mozilla set of `webpki-roots`), the system's (`system`: the operating
//! system's store, honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`), or both; plus the extra roots
//! of a PEM file (`ca_file`) for a server behind an internal CA. Every variant runs on the one
//! rustls stack (ring provider) the project uses.

/// The root set a client starts from (`tls_roots`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsRoots {
    /// The web roots bundled into the binary: the same on every host.
    #[default]
    Bundled,
    /// The operating system's store (what `curl` trusts on the host), so a CA installed with
    /// `update-ca-certificates` is trusted without copying it into the configuration.
    System,
    /// Both of the above.
    Both,
}

impl TlsRoots {
    /// The configuration spellings, in documentation order.
    pub const NAMES: [&'static str; 3] = ["bundled", "system", "both"];

    pub fn parse(s: &str) -> Option<TlsRoots> {
        match s {
            "bundled" => Some(TlsRoots::Bundled),
            "system" => Some(TlsRoots::System),
            "both" => Some(TlsRoots::Both),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TlsRoots::Bundled => "bundled",
            TlsRoots::System => "system",
            TlsRoots::Both => "both",
        }
    }

    fn bundled(self) -> bool {
        matches!(self, TlsRoots::Bundled | TlsRoots::Both)
    }

    fn system(self) -> bool {
        matches!(self, TlsRoots::System | TlsRoots::Both)
    }
}

/// What one client trusts: a root set and extra roots. The default is the bundled roots alone.
#[derive(Clone, Default, PartialEq)]
pub struct Trust {
    pub roots: TlsRoots,
    /// PEM text of extra roots (a `ca_file`), already checked by [`pem_certificates`] when the
    /// configuration was loaded.
    pub extra_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("roots", &self.roots)
            .field("extra_pem", &self.extra_pem.as_ref().map(Vec::len))
            .finish()
    }
}

impl Trust {
    /// Sets the roots of a client under construction (from
    /// [`super::http::outbound_client`], which starts from the bundled roots alone).
    pub fn apply(&self, b: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, String> {
        let mut b = b
            .tls_built_in_webpki_certs(self.roots.bundled())
            .tls_built_in_native_certs(self.roots.system());
        if let Some(pem) = &self.extra_pem {
            for c in pem_certificates(pem)? {
                b = b.add_root_certificate(c);
            }
        }
        Ok(b)
    }
}

/// The certificates of a PEM bundle, each already accepted by the TLS stack.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, String> {
    let certs = reqwest::Certificate::from_pem_bundle(pem)
        .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    // The TLS stack parses each root when a client is built: a broken one fails here.
    let mut b = super::http::outbound_client();
    for c in &certs {
        b = b.add_root_certificate(c.clone());
    }
    b.build()
        .map_err(|e| format!("a certificate is not valid: {e}"))?;
    Ok(certs)
}

/// How many root certificates the system's store holds, or why none can be used. Read when
/// the configuration is loaded, so `tls_roots = "system"` on a host without a store fails there
/// and not at the first request.
pub fn system_roots() -> Result<usize, String> {
    let found = rustls_native_certs::load_native_certs();
    if !found.certs.is_empty() {
        return Ok(found.certs.len());
    }
    let why: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
    Err(if why.is_empty() {
        "the system's certificate store is empty or absent (looked at $SSL_CERT_FILE, \
         $SSL_CERT_DIR and the usual /etc/ssl locations)"
            .into()
    } else {
        format!(
            "the system's certificate store cannot be read: {}",
            why.join("; ")
        )
    })
}

/// The TLS failure in an error's chain, if that is what ended the request: rustls's own error,
/// which reqwest hands on inside an `io::Error`.
///
/// Whether it is the certificate that is not trusted: [`untrusted_certificate`].
pub fn tls_failure<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        // reqwest wraps the handshake's `io::Error` in another one; an `io::Error` does not
        // list its inner error as a source, so each is opened by hand.
        let mut inner = err;
        loop {
            if let Some(t) = inner.downcast_ref::<rustls::Error>() {
                return Some(t);
            }
            match inner
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(i) => inner = i,
                None => break,
            }
        }
        next = err.source();
    }
    None
}

/// True for a failure a trust setting can fix: the server's certificate was not accepted.
pub fn untrusted_certificate(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
    )
}

/// What to do about an untrusted certificate, for every message that reports one.
pub const UNTRUSTED_HELP: &str = "the server's certificate is not trusted: set `ca_file` to the \
     PEM of the CA that issued it, or `tls_roots = \"system\"` when the host's store trusts it";

/// Why an outbound request failed before any answer, without the URL (it may carry a token):
/// `request failed: …` with the error's causes, and for a refused certificate what to set.
pub fn request_failure(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        source = s.source();
    }
    match tls_failure(&e) {
        Some(t) if untrusted_certificate(t) => {
            format!("request failed: TLS handshake failed: {text}; {UNTRUSTED_HELP}")
        }
        Some(_) => format!("request failed: TLS handshake failed: {text}"),
        None => format!("request failed: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in TlsRoots::NAMES {
            assert_eq!(TlsRoots::parse(n).unwrap().as_str(), n);
        }
        assert_eq!(TlsRoots::parse("native"), None);
        assert_eq!(TlsRoots::default(), TlsRoots::Bundled);
    }

    #[test]
    fn every_root_set_builds_a_client() {
        for roots in [TlsRoots::Bundled, TlsRoots::System, TlsRoots::Both] {
            let trust = Trust {
                roots,
                extra_pem: None,
            };
            trust
                .apply(super::super::http::outbound_client())
                .unwrap()
                .build()
                .unwrap_or_else(|e| panic!("{roots:?}: {e}"));
        }
    }

    #[test]
    fn a_tls_error_is_found_inside_an_io_error() {
        let io = std::io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        assert!(tls_failure(&io).is_some());
        // As reqwest hands it on: one `io::Error` inside another.
        let twice = std::io::Error::other(io);
        assert!(tls_failure(&twice).is_some());
        assert!(tls_failure(&std::io::Error::other("refused")).is_none());
    }
}
