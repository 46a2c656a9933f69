//! TLS trust of a target or a sink: `tls_roots` (which root set) and `ca_file` (extra roots),
//! both checked when the configuration is loaded so a broken setting fails there, at its
//! `file:line:column`, and never at the first request. Documented in `docs/configuration.md`.

use crate::diag::fields::{Fields, Reader};
use crate::provider::tls::{self, TlsRoots, Trust};
use std::path::Path;

/// A PEM file of root certificates trusted beside the root set (`ca_file`), read and checked
/// when the configuration is loaded.
#[derive(Clone, PartialEq)]
pub struct CaFile {
    pub path: std::path::PathBuf,
    /// The file's PEM text.
    pub pem: Vec<u8>,
}

impl std::fmt::Debug for CaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaFile({})", self.path.display())
    }
}

/// Largest `ca_file` read (a bundle of a few hundred roots fits).
const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

impl CaFile {
    /// The certificates, each already accepted by the TLS stack.
    pub fn certificates(&self) -> Result<Vec<reqwest::Certificate>, String> {
        tls::pem_certificates(&self.pem)
    }

    /// What a client with these settings trusts.
    pub fn trust(roots: TlsRoots, ca_file: Option<&CaFile>) -> Trust {
        Trust {
            roots,
            extra_pem: ca_file.map(|c| c.pem.clone()),
        }
    }
}

/// `ca_file` of the table `f` (relative to the configuration's directory): `Some(None)` when
/// absent, `None` after an error.
pub(super) fn read_ca_file(r: &mut Reader, f: &Fields, dir: &Path) -> Option<Option<CaFile>> {
    let Some(file) = r.nonempty_string(f, "ca_file", false) else {
        return if f.get("ca_file").is_some() {
            None
        } else {
            Some(None)
        };
    };
    let path = dir.join(file.get_ref());
    let help = "a PEM file of the CA certificates to trust (-----BEGIN CERTIFICATE----- …), \
                relative to the configuration file's directory";
    let pem = match crate::files::read_limited(&path, MAX_CA_FILE_BYTES) {
        Ok(pem) => pem,
        Err(e) => {
            r.error_help(
                file.span(),
                format!(
                    "cannot read ca_file `{}` in {}: {e}",
                    path.display(),
                    f.what
                ),
                help,
            );
            return None;
        }
    };
    let ca = CaFile { path, pem };
    if let Err(e) = ca.certificates() {
        r.error_help(
            file.span(),
            format!("ca_file `{}` in {}: {e}", ca.path.display(), f.what),
            help,
        );
        return None;
    }
    Some(Some(ca))
}

/// `tls_roots` of the table `f` (default `bundled`), `None` after an error. `system` needs a
/// usable system store on this host; `both` does not (the bundled roots remain).
pub(super) fn read_tls_roots(r: &mut Reader, f: &Fields) -> Option<TlsRoots> {
    let Some(s) = r.nonempty_string(f, "tls_roots", false) else {
        return if f.get("tls_roots").is_some() {
            None
        } else {
            Some(TlsRoots::Bundled)
        };
    };
    let Some(roots) = TlsRoots::parse(s.get_ref().trim()) else {
        r.error_help(
            s.span(),
            format!("unknown `tls_roots` `{}` in {}", s.get_ref(), f.what),
            "expected \"bundled\" (the web roots built in), \"system\" (the host's certificate \
             store) or \"both\"",
        );
        return None;
    };
    if roots == TlsRoots::System
        && let Err(e) = tls::system_roots()
    {
        r.error_help(
            s.span(),
            format!("`tls_roots = \"system\"` in {}: {e}", f.what),
            "install the host's CA bundle (e.g. the ca-certificates package), point \
             SSL_CERT_FILE at a PEM bundle, or use tls_roots = \"both\" or a ca_file",
        );
        return None;
    }
    Some(roots)
}
