//! The shape of the source tree, checked: modules import only downward in the declared layer
//! order (docs/architecture.md), and files and functions stay within their size limits except
//! for the exceptions listed here, which may only shrink.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer order, bottom first. A module may import only modules of a lower layer.
const LAYERS: &[&[&str]] = &[
    &["util", "time", "rng", "files"],
    &["diag"],
    &["sample"],
    &["stats"],
    &["eval"],
    &["probe"],
    &["provider"],
    &["drift"],
    &["baseline"],
    &["config"],
    &["runner"],
    &["judge"],
    &["alert"],
    &["store"],
    &["report"],
    &["telemetry"],
    &["sim"],
    &["traffic"],
    &["daemon"],
    &["http"],
    &["demo"],
];

const MAX_FILE_LINES: usize = 800;
const MAX_FN_LINES: usize = 120;

/// Files over [`MAX_FILE_LINES`] today (path under `src/`). Remove an entry once it fits.
const LONG_FILES: &[&str] = &[];

/// Functions over [`MAX_FN_LINES`] today (`path::name` under `src/`), tables and test code
/// aside. Remove an entry once it fits.
const LONG_FNS: &[&str] = &[];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Source with comments, string and char literals blanked (same length, newlines kept), so
/// that braces and paths are only those of the code.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |c: u8| if c == b'\n' { b'\n' } else { b' ' };
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend([b' ', b' ']);
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend([b' ', b' ']);
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == b'r' && matches!(b.get(i + 1), Some(b'#') | Some(b'"')) && raw_start(b, i) {
            let mut hashes = 0;
            let mut j = i + 1;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let end = find(b, j + 1, &close).map_or(b.len(), |e| e + close.len());
            out.extend(b[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else if c == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            out.extend(b[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let end = if b.get(i + 1) == Some(&b'\\') {
                find(b, i + 2, b"'").map(|e| e + 1)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 3)
            } else {
                std::str::from_utf8(&b[i + 1..])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .filter(|ch| b.get(i + 1 + ch.len_utf8()) == Some(&b'\''))
                    .map(|ch| i + 2 + ch.len_utf8())
            };
            match end {
                Some(end) => {
                    out.extend(b[i..end].iter().map(|&c| blank(c)));
                    i = end;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the `r` at `i` opens a raw string: `r"`, `r#"`, or a byte one, `br"`, `br#"`.
fn raw_start(b: &[u8], i: usize) -> bool {
    !ident(b, i) || (b[i - 1] == b'b' && !ident(b, i - 1))
}

fn ident(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    (from..hay.len().saturating_sub(needle.len() - 1)).find(|&k| hay[k..].starts_with(needle))
}

/// The code of a file without its unit tests (`#[cfg(test)] mod tests { … }` at the end).
fn without_tests(code: &str) -> &str {
    for marker in [
        "#[cfg(test)]\nmod tests",
        "#[cfg(test)]\npub(crate) mod tests",
    ] {
        if let Some(i) = code.find(marker) {
            return &code[..i];
        }
    }
    code
}

/// Top-level modules named after `crate::` in `code`, with `crate::{a, b::{..}}` groups.
fn crate_imports(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = code.as_bytes();
    let mut from = 0;
    while let Some(k) = code[from..].find("crate::") {
        let at = from + k;
        from = at + 7;
        if ident(b, at) {
            continue;
        }
        if b.get(at + 7) == Some(&b'{') {
            let mut depth = 0;
            let mut segment_start = at + 8;
            for (j, &c) in b.iter().enumerate().skip(at + 7) {
                match c {
                    b'{' => depth += 1,
                    b'}' | b',' if depth == 1 => {
                        out.insert(leading_ident(&code[segment_start..j]));
                        segment_start = j + 1;
                        if c == b'}' {
                            break;
                        }
                    }
                    b'}' => depth -= 1,
                    _ => {}
                }
            }
        } else {
            out.insert(leading_ident(&code[at + 7..]));
        }
    }
    out.remove("");
    out
}

fn leading_ident(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn layer_of() -> BTreeMap<&'static str, usize> {
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().map(move |m| (*m, i)))
        .collect()
}

/// The library's modules (`src/*.rs`, `src/*/`), the binary's `cmd` aside.
fn top_modules() -> BTreeSet<String> {
    std::fs::read_dir(src())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?.to_string();
            (p.is_dir() || p.extension().is_some_and(|e| e == "rs")).then_some(name)
        })
        .filter(|m| !["lib", "main", "cmd"].contains(&m.as_str()))
        .collect()
}

fn relative(path: &Path) -> String {
    path.strip_prefix(src()).unwrap().display().to_string()
}

#[test]
fn every_module_has_a_layer() {
    let layers = layer_of();
    let missing: Vec<String> = top_modules()
        .into_iter()
        .filter(|m| !layers.contains_key(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a layer: {missing:?}; add them to LAYERS here and to docs/architecture.md"
    );
}

#[test]
fn modules_import_only_downward() {
    let layers = layer_of();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut upward = Vec::new();
    for path in files {
        let rel = relative(&path);
        let top = rel.split('/').next().unwrap().trim_end_matches(".rs");
        let Some(&own) = layers.get(top) else {
            continue; // lib.rs, main.rs and the binary's cmd/
        };
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&path).unwrap());
        for import in crate_imports(without_tests(&code)) {
            if import == top {
                continue;
            }
            if let Some(&theirs) = layers.get(import.as_str())
                && theirs >= own
            {
                upward.push(format!("{rel} imports {import} (layer {theirs} >= {own})"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the layer order (move the definition down, or the importer up):\n{}",
        upward.join("\n")
    );
}

/// `(start line, name, lines)` of every function of `code` (blanked by [`code_only`]).
fn functions(code: &str) -> Vec<(usize, String, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        let t = t
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ")
            .trim_start_matches("const ")
            .trim_start_matches("async ");
        let Some(rest) = t.strip_prefix("fn ") else {
            i += 1;
            continue;
        };
        let name = leading_ident(rest);
        let mut depth = 0i32;
        let mut opened = false;
        let mut j = i;
        while j < lines.len() {
            for c in lines[j].chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if (opened && depth <= 0) || (!opened && lines[j].trim_end().ends_with(';')) {
                break;
            }
            j += 1;
        }
        out.push((i + 1, name, j - i + 1));
        i = if opened { j + 1 } else { i + 1 };
    }
    out
}

#[test]
fn files_and_functions_stay_within_their_size_limits() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut over = Vec::new();
    let mut long_files = BTreeSet::new();
    let mut long_fns = BTreeSet::new();
    for path in files {
        let rel = relative(&path);
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if text.lines().count() > MAX_FILE_LINES {
            long_files.insert(rel.clone());
        }
        let code = code_only(&text);
        for (line, name, n) in functions(without_tests(&code)) {
            if n > MAX_FN_LINES {
                long_fns.insert(format!("{rel}::{name}"));
                over.push(format!("{rel}:{line} {name}: {n} lines"));
            }
        }
    }
    let listed_files: BTreeSet<String> = LONG_FILES.iter().map(|s| s.to_string()).collect();
    let listed_fns: BTreeSet<String> = LONG_FNS.iter().map(|s| s.to_string()).collect();
    let new_files: Vec<_> = long_files.difference(&listed_files).collect();
    let new_fns: Vec<_> = long_fns.difference(&listed_fns).collect();
    assert!(
        new_files.is_empty() && new_fns.is_empty(),
        "over the limits ({MAX_FILE_LINES} lines a file, {MAX_FN_LINES} a function): \
         files {new_files:?}, functions {new_fns:?}; split them\n{}",
        over.join("\n")
    );
    let fixed_files: Vec<_> = listed_files.difference(&long_files).collect();
    let fixed_fns: Vec<_> = listed_fns.difference(&long_fns).collect();
    assert!(
        fixed_files.is_empty() && fixed_fns.is_empty(),
        "now within the limits, remove from the exception lists: files {fixed_files:?}, \
         functions {fixed_fns:?}"
    );
}

#[test]
fn the_checker_sees_imports_through_groups_and_past_literals() {
    let code = code_only(
        "use crate::{config::{self, Target}, probe};\nlet s = \"crate::daemon\"; // crate::http\nlet c = '{';\nfn f() { crate::stats::quantile(&[], 0.5); }\n",
    );
    let got = crate_imports(&code);
    let want: BTreeSet<String> = ["config", "probe", "stats"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(got, want);
    let fns = functions(&code);
    assert_eq!(fns, vec![(4, "f".to_string(), 1)]);
}

#[test]
fn the_checker_reads_byte_raw_strings_as_literals() {
    let code = code_only(
        "fn f() -> &'static [u8] {\n    br#\"{\"a\": {\"b\"#\n}\nfn g() {\n    let _ = br\"}\";\n}\n",
    );
    assert_eq!(
        functions(&code),
        vec![(1, "f".to_string(), 3), (4, "g".to_string(), 3)]
    );
}
