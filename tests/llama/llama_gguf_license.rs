//! The GGUF header reader on the two installed real model files: Gemma 3 270M carries
//! `general.license = gemma`, SmolLM2-135M-Instruct `apache-2.0`; the header is read without
//! touching the tensors.

use crate::llama_support::{installed, installed_second};
use modelwatch::provider::gguf::{Limits, read_file};
use modelwatch::provider::license::read_gguf;

#[test]
#[ignore = "needs the installed model files (scripts/llama/install.sh)"]
fn real_model_files_carry_their_licenses_in_the_header() {
    let Some((_, gemma)) = installed() else {
        return;
    };
    let Some(smol) = installed_second() else {
        return;
    };
    let limits = Limits::default();
    for (path, license, basename) in [
        (&gemma, "gemma", "gemma-3"),
        (&smol, "apache-2.0", "smollm2"),
    ] {
        let h = read_file(path, &limits).unwrap();
        assert_eq!(h.text("general.license").as_deref(), Some(license));
        assert_eq!(h.text("general.basename").as_deref(), Some(basename));
        let size = std::fs::metadata(path).unwrap().len();
        eprintln!(
            "{}: {} metadata keys, header {} bytes of {size}",
            path.display(),
            h.metadata.len(),
            h.bytes_read
        );
        assert!(
            h.bytes_read < size / 4 && h.bytes_read <= limits.max_bytes,
            "{}: read {} of {size} bytes",
            path.display(),
            h.bytes_read
        );
        let ev = read_gguf(path);
        assert_eq!(ev.license.as_deref(), Some(license));
        assert_eq!(ev.source, "gguf");
    }
}
