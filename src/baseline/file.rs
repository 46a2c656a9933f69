//! Reading and writing baseline files: clear errors on load, atomic replace on save, and a
//! diff-friendly layout (sorted keys, indented top levels, one sample per line).

use super::{Baseline, SUPPORTED_VERSIONS};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What can go wrong with a baseline file.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    // The I/O error is part of the message, not a `source`, so error chains do not print it
    // twice.
    #[error("cannot read baseline {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot write baseline {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}:{line}:{column}: not valid JSON: {message}")]
    NotJson {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{path} is not a modelwatch baseline (no `format_version` and `probes` at the top \
         level); record one with `modelwatch baseline record`"
    )]
    Foreign { path: PathBuf },
    #[error(
        "{path} has baseline format version {found}, this modelwatch reads version(s) \
         {supported}; re-record the baseline or use a matching modelwatch"
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: String,
        supported: String,
    },
    #[error("{path}:{line}:{column}: invalid baseline: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "baseline was recorded for suites [{}] but the target now uses [{}]; record a new \
         baseline for this suite set",
        baseline.join(", "),
        current.join(", ")
    )]
    SuiteSetMismatch {
        baseline: Vec<String>,
        current: Vec<String>,
    },
    #[error(
        "probe id `{id}` appears in suites `{first}` and `{second}`; probe ids must be unique \
         across a target's suites to record a baseline"
    )]
    DuplicateProbe {
        id: String,
        first: String,
        second: String,
    },
    #[error(
        "{failed} of {total} requests failed ({kinds}), above the {limit_percent:.0}% limit; \
         fix the model server (see `modelwatch run` output) or pass --force to record anyway"
    )]
    TooManyErrors {
        failed: usize,
        total: usize,
        kinds: String,
        limit_percent: f64,
    },
    #[error("no samples were recorded; check that the target's suites have probes")]
    NothingRecorded,
    #[error("sample for probe {suite}/{id}, which is not in the target's suites")]
    UnknownProbe { suite: String, id: String },
    #[error(
        "samples of probe {suite}/{id} were taken with a different version of the probe; \
         record again with the current suites"
    )]
    HashMismatch { suite: String, id: String },
}

impl Baseline {
    /// Reads and validates a baseline file.
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let read_error = |error| BaselineError::Read {
            path: path.to_path_buf(),
            error,
        };
        let bytes = crate::files::read_limited(path, crate::files::MAX_BASELINE_BYTES)
            .map_err(read_error)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let what = match e.as_bytes().get(..2) {
                Some([0xff, 0xfe] | [0xfe, 0xff]) => {
                    "the file is UTF-16 (it starts with a byte order mark)".to_string()
                }
                _ => format!(
                    "the file is not UTF-8 (first invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
            };
            read_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{what}; a baseline is UTF-8 JSON written by `modelwatch baseline record`"),
            ))
        })?;
        Baseline::parse(path, &text)
    }

    /// Parses baseline text; `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Baseline, BaselineError> {
        // A valid file of a supported version goes straight into the struct: a `Value` tree
        // of the whole file first costs several times its size in small allocations, which
        // the daemon's heap keeps after they are freed. Only an object (serde would read the
        // struct from an array too). Anything else is read again below to say precisely what
        // is wrong.
        if text.trim_start().starts_with('{')
            && let Ok(b) = serde_json::from_str::<Baseline>(text)
            && SUPPORTED_VERSIONS.contains(&b.format_version)
        {
            return Ok(b);
        }
        let value: Value = serde_json::from_str(text).map_err(|e| BaselineError::NotJson {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column().max(1),
            message: strip_position(&e),
        })?;
        let Some(obj) = value.as_object() else {
            return Err(BaselineError::Foreign {
                path: path.to_path_buf(),
            });
        };
        let (Some(version), true) = (obj.get("format_version"), obj.contains_key("probes")) else {
            return Err(BaselineError::Foreign {
                path: path.to_path_buf(),
            });
        };
        let supported = version
            .as_u64()
            .is_some_and(|v| SUPPORTED_VERSIONS.iter().any(|&s| u64::from(s) == v));
        if !supported {
            return Err(BaselineError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version.to_string(),
                supported: SUPPORTED_VERSIONS
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        serde_json::from_str(text).map_err(|e| BaselineError::Invalid {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column().max(1),
            message: strip_position(&e),
        })
    }

    /// The file's text: sorted keys, two-space indent down to each probe, one sample per line.
    pub fn to_json(&self) -> String {
        // Serializing a derived struct into a Value cannot fail (string keys, no maps of
        // non-string keys); fall back to an empty object rather than panic.
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        let mut out = String::new();
        write_value(&mut out, &value, 0, false);
        out.push('\n');
        out
    }

    /// Writes the file atomically: a temporary file in the same directory, synced, then
    /// renamed over `path`. The file is owner-only (0600), a created directory 0700: a
    /// baseline holds answer excerpts.
    pub fn save(&self, path: &Path) -> Result<(), BaselineError> {
        let err = |error| BaselineError::Write {
            path: path.to_path_buf(),
            error,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        crate::files::create_private_dir_all(&dir).map_err(err)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "baseline.json".into());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let result = (|| {
            let mut f = crate::files::create_private(&tmp)?;
            f.write_all(self.to_json().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(err)
    }
}

/// serde_json appends " at line L column C"; the error variants carry those separately.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Pretty-prints objects; arrays under a `samples` key get one compact element per line.
fn write_value(out: &mut String, v: &Value, depth: usize, one_per_line: bool) {
    let pad = |out: &mut String, d: usize| out.extend(std::iter::repeat_n("  ", d));
    match v {
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            for (i, (k, child)) in map.iter().enumerate() {
                pad(out, depth + 1);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_value(out, child, depth + 1, k == "samples");
                if i + 1 < map.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            pad(out, depth);
            out.push('}');
        }
        Value::Array(items) if one_per_line && !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                pad(out, depth + 1);
                out.push_str(&item.to_string());
                if i + 1 < items.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            pad(out, depth);
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
