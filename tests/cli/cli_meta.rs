//! Shell completions, the man page and `--version` come from the CLI definition itself.

use std::process::Command;

fn modelwatch(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(args)
        .output()
        .expect("run modelwatch");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn completions_cover_every_subcommand_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (ok, out, err) = modelwatch(&["completions", shell]);
        assert!(ok, "{shell}: {err}");
        for sub in ["demo", "init", "canary", "baseline", "check-config", "man"] {
            assert!(out.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let (ok, _, err) = modelwatch(&["completions", "tcsh"]);
    assert!(!ok && err.contains("tcsh"));
}

#[test]
fn man_page_is_roff_with_the_commands() {
    let (ok, out, err) = modelwatch(&["man"]);
    assert!(ok, "{err}");
    assert!(out.contains(".TH modelwatch 1"));
    for sub in ["demo", "init", "canary", "completions"] {
        assert!(out.contains(sub), "man page lacks {sub}");
    }
}

#[test]
fn version_carries_build_information() {
    let (ok, out, _) = modelwatch(&["--version"]);
    assert!(ok);
    let line = out.trim();
    assert!(line.starts_with(&format!(
        "modelwatch {} (commit ",
        env!("CARGO_PKG_VERSION")
    )));
    // The target triple and the profile of this very build.
    assert!(line.contains("-linux-") || line.contains("-apple-") || line.contains("-windows-"));
    assert!(
        line.ends_with(", debug)") || line.ends_with(", release)"),
        "{line}"
    );
}
