//! Build information for `modelwatch --version`: the git commit (when built from a checkout
//! with git available), the target triple and the profile.
//!
//! Only `HEAD` and the ref it points to are watched, so a commit or a checkout rebuilds the
//! version string while `git add` or `git status` (which rewrite `.git/index`) rebuild nothing.
//! Uncommitted changes are therefore not marked in the version: not worth a full rebuild.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if let Some(path) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={path}");
    }
    if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
        // A ref may live loose (refs/heads/main) or in packed-refs; watch whichever exists.
        for p in [head.as_str(), "packed-refs"] {
            if let Some(path) = git(&["rev-parse", "--git-path", p])
                && std::path::Path::new(&path).exists()
            {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=MODELWATCH_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=MODELWATCH_TARGET={target}");
    println!("cargo:rustc-env=MODELWATCH_PROFILE={profile}");
}
