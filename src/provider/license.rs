//! License evidence: which terms the served model carries, and where that was read.
//!
//! Sources, strongest first: Ollama's `/api/show` (the license text and `model_info`), the
//! GGUF header of a llama.cpp model file (`/props` `model_path` when the file is readable on
//! this host, or a configured `model_file`), a Hugging Face style model directory (`LICENSE*`,
//! `README.md` front matter, `config.json`; a configured `model_dir`). Managed APIs publish
//! nothing: the evidence then says so (source `none`) rather than guess.
//!
//! The evidence travels in [`Fingerprint::details`] under [`LICENSE_PREFIX`]; those entries are
//! not part of [`Fingerprint::id`], so a license change is reported as such and reading the
//! terms does not make the model look swapped.

use super::gguf::{self, GgufHeader};
use super::{Fingerprint, ModelClient};
use crate::sample::{Completion, SampleError};
use crate::util::sha256_hex;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Prefix of the [`Fingerprint::details`] keys that hold the license evidence.
pub const LICENSE_PREFIX: &str = "license.";

/// Largest license, README or `config.json` file read from a model directory.
const MAX_DIR_FILE: u64 = 1 << 20;
/// Longest kept identity value.
const MAX_VALUE: usize = 256;

/// What the served model's terms are, as far as anything says.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LicenseEvidence {
    /// License identifier (`apache-2.0`, `gemma`, `llama3.1`, …), lower case.
    pub license: Option<String>,
    /// SHA-256 (hex) of the license text, when there is a text.
    pub sha256: Option<String>,
    /// `ollama_show`, `gguf`, `model_dir` or `none`.
    pub source: String,
    /// The file or directory read (for `gguf`, `model_dir`).
    pub location: Option<String>,
    /// Model identity as the evidence states it.
    pub name: Option<String>,
    pub version: Option<String>,
    pub basename: Option<String>,
    pub size_label: Option<String>,
    pub base_model: Option<String>,
    /// Where the terms are published (`general.license.link`, `license_link`).
    pub link: Option<String>,
    /// Why there is no evidence, or what was odd about it.
    pub note: Option<String>,
}

impl LicenseEvidence {
    /// No evidence, and why.
    pub fn none(note: impl Into<String>) -> Self {
        LicenseEvidence {
            source: "none".into(),
            note: Some(note.into()),
            ..LicenseEvidence::default()
        }
    }

    /// Whether anything identifies the terms (an identifier or a text).
    pub fn identified(&self) -> bool {
        self.license.is_some() || self.sha256.is_some()
    }

    /// `source` with its location, for tables: `gguf /models/x.gguf`.
    pub fn source_label(&self) -> String {
        match &self.location {
            Some(l) => format!("{} {l}", self.source),
            None => self.source.clone(),
        }
    }

    fn fields(&self) -> [(&'static str, &Option<String>); 10] {
        [
            ("id", &self.license),
            ("sha256", &self.sha256),
            ("location", &self.location),
            ("name", &self.name),
            ("version", &self.version),
            ("basename", &self.basename),
            ("size_label", &self.size_label),
            ("base_model", &self.base_model),
            ("link", &self.link),
            ("note", &self.note),
        ]
    }

    /// Writes the evidence into fingerprint details (replacing any earlier evidence).
    pub fn insert_into(&self, details: &mut BTreeMap<String, String>) {
        details.retain(|k, _| !k.starts_with(LICENSE_PREFIX));
        details.insert(format!("{LICENSE_PREFIX}source"), self.source.clone());
        for (k, v) in self.fields() {
            if let Some(v) = v {
                let v: String = v.chars().take(MAX_VALUE).collect();
                details.insert(format!("{LICENSE_PREFIX}{k}"), v);
            }
        }
    }

    /// The evidence in fingerprint details, if any was recorded.
    pub fn from_details(details: &BTreeMap<String, String>) -> Option<Self> {
        let get = |k: &str| details.get(&format!("{LICENSE_PREFIX}{k}")).cloned();
        Some(LicenseEvidence {
            source: get("source")?,
            license: get("id"),
            sha256: get("sha256"),
            location: get("location"),
            name: get("name"),
            version: get("version"),
            basename: get("basename"),
            size_label: get("size_label"),
            base_model: get("base_model"),
            link: get("link"),
            note: get("note"),
        })
    }
}

impl Fingerprint {
    /// The license evidence read with this fingerprint (`None`: none was looked for).
    pub fn license(&self) -> Option<LicenseEvidence> {
        LicenseEvidence::from_details(&self.details)
    }
}

fn clean(s: &str) -> Option<String> {
    let s = s.trim().trim_matches(['"', '\'']).trim();
    (!s.is_empty()).then(|| s.chars().take(MAX_VALUE).collect())
}

/// A license identifier from well-known license texts, for sources that give a text but no
/// identifier. Only unambiguous markers; anything else stays unidentified (the hash still
/// tells texts apart).
pub fn identify_text(text: &str) -> Option<String> {
    let t = text.to_lowercase();
    let id = if t.contains("apache license") && t.contains("version 2.0") {
        "apache-2.0"
    } else if t.contains("gemma terms of use") {
        "gemma"
    } else if t.contains("llama 3.3 community license") {
        "llama3.3"
    } else if t.contains("llama 3.2 community license") {
        "llama3.2"
    } else if t.contains("llama 3.1 community license") {
        "llama3.1"
    } else if t.contains("meta llama 3 community license") {
        "llama3"
    } else if t.contains("llama 2 community license") {
        "llama2"
    } else if t.contains("mit license")
        || t.contains("permission is hereby granted, free of charge")
    {
        "mit"
    } else {
        return None;
    };
    Some(id.into())
}

/// Evidence from an Ollama `/api/show` answer: `license` (a text, or a list of texts) and
/// `model_info` (`general.license`, `general.name`, …).
pub fn from_ollama_show(show: &Value) -> LicenseEvidence {
    let text = match show.get("license") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        _ => None,
    }
    .filter(|t| !t.trim().is_empty());
    let info = show.get("model_info");
    let field = |k: &str| {
        info.and_then(|i| i.get(k)).and_then(|v| match v {
            Value::String(s) => clean(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let mut ev = LicenseEvidence {
        license: field("general.license").map(|s| s.to_lowercase()),
        sha256: text.as_deref().map(|t| sha256_hex(t.as_bytes())),
        source: "ollama_show".into(),
        name: field("general.name"),
        version: field("general.version"),
        basename: field("general.basename"),
        size_label: field("general.size_label"),
        base_model: field("general.base_model.0.name"),
        link: field("general.license.link"),
        ..LicenseEvidence::default()
    };
    if ev.license.is_none() {
        ev.license = text.as_deref().and_then(identify_text);
    }
    if !ev.identified() {
        ev.note = Some("the server's /api/show carries no license".into());
    }
    ev
}

/// Evidence from a GGUF header.
pub fn from_gguf(header: &GgufHeader, path: &Path) -> LicenseEvidence {
    let mut ev = LicenseEvidence {
        license: header.text("general.license").map(|s| s.to_lowercase()),
        source: "gguf".into(),
        location: Some(path.display().to_string()),
        name: header.text("general.name"),
        version: header.text("general.version"),
        basename: header.text("general.basename"),
        size_label: header.text("general.size_label"),
        base_model: header.text("general.base_model.0.name"),
        link: header.text("general.license.link"),
        ..LicenseEvidence::default()
    };
    if !ev.identified() {
        ev.note = Some("the GGUF header has no general.license".into());
    }
    ev
}

/// Reads the GGUF header at `path` (bounded, header only) into evidence; an unreadable or
/// hostile file is evidence `none` with the reason.
pub fn read_gguf(path: &Path) -> LicenseEvidence {
    match gguf::read_file(path, &gguf::Limits::default()) {
        Ok(h) => from_gguf(&h, path),
        Err(e) => LicenseEvidence {
            location: Some(path.display().to_string()),
            ..LicenseEvidence::none(format!("model file not read: {e}"))
        },
    }
}

/// The last GGUF evidence read per file, kept while the file's size and modification time stay
/// the same: a fingerprint is read every round, and a model file's header is megabytes
/// (6.5 MB for Gemma 3 270M) that only change when the file does.
#[derive(Debug, Default)]
pub struct GgufCache {
    last: std::sync::Mutex<BTreeMap<PathBuf, (u64, std::time::SystemTime, LicenseEvidence)>>,
}

impl GgufCache {
    /// [`read_gguf`], or the evidence read before from the same unchanged file.
    pub fn read(&self, path: &Path) -> LicenseEvidence {
        let stamp = std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.len(), m.modified().ok()?)));
        let Some((len, modified)) = stamp else {
            return read_gguf(path);
        };
        if let Ok(last) = self.last.lock()
            && let Some((l, m, ev)) = last.get(path)
            && (*l, *m) == (len, modified)
        {
            return ev.clone();
        }
        let ev = read_gguf(path);
        if let Ok(mut last) = self.last.lock() {
            last.insert(path.to_path_buf(), (len, modified, ev.clone()));
        }
        ev
    }
}

/// Evidence from a Hugging Face style model directory: the first `LICENSE*`/`LICENCE*` file
/// (text hash, identifier from the text), `README.md` front matter (`license`,
/// `license_name`, `license_link`, `base_model`), `config.json` (`_name_or_path`,
/// `model_type`).
pub fn read_model_dir(dir: &Path) -> LicenseEvidence {
    let mut ev = LicenseEvidence {
        source: "model_dir".into(),
        location: Some(dir.display().to_string()),
        ..LicenseEvidence::default()
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            return LicenseEvidence {
                location: ev.location,
                ..LicenseEvidence::none(format!("model directory not readable: {e}"))
            };
        }
    };
    let mut licenses: Vec<PathBuf> = entries
        .take(10_000)
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .map(|n| n.to_uppercase())
                .is_some_and(|n| n.starts_with("LICENSE") || n.starts_with("LICENCE"))
        })
        .collect();
    licenses.sort();
    let mut text_id = None;
    if let Some(bytes) = licenses
        .iter()
        .find_map(|p| crate::files::read_limited(p, MAX_DIR_FILE).ok())
    {
        ev.sha256 = Some(sha256_hex(&bytes));
        text_id = identify_text(&String::from_utf8_lossy(&bytes));
    }
    if let Ok(readme) = crate::files::read_text_limited(&dir.join("README.md"), MAX_DIR_FILE) {
        let front = front_matter(&readme);
        let id = match front.get("license").map(String::as_str) {
            Some("other") => front.get("license_name").cloned(),
            Some(id) => Some(id.to_string()),
            None => None,
        };
        ev.license = id.map(|s| s.to_lowercase());
        ev.link = front.get("license_link").cloned();
        ev.base_model = front.get("base_model").cloned();
    }
    if ev.license.is_none() {
        ev.license = text_id;
    }
    if let Ok(cfg) = crate::files::read_limited(&dir.join("config.json"), MAX_DIR_FILE)
        && let Ok(cfg) = serde_json::from_slice::<Value>(&cfg)
    {
        ev.name = cfg
            .get("_name_or_path")
            .and_then(Value::as_str)
            .and_then(clean);
        ev.basename = cfg
            .get("model_type")
            .and_then(Value::as_str)
            .and_then(clean);
    }
    if !ev.identified() {
        ev.note = Some("no LICENSE file and no `license:` in README.md front matter".into());
    }
    ev
}

/// The scalar keys of a README's YAML front matter (`---` … `---` at the top); a list value
/// (`base_model:` followed by `- x`) keeps its first item.
fn front_matter(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines().take(2000);
    if lines.next().map(str::trim) != Some("---") {
        return out;
    }
    let mut open_list: Option<String> = None;
    for line in lines {
        if line.trim() == "---" {
            break;
        }
        if let Some(key) = &open_list
            && let Some(item) = line.trim().strip_prefix("- ")
        {
            if let Some(v) = clean(item) {
                out.entry(key.clone()).or_insert(v);
            }
            continue;
        }
        open_list = None;
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            let k = k.trim().to_string();
            match clean(v) {
                Some(v) => {
                    out.insert(k, v);
                }
                None => open_list = Some(k),
            }
        }
    }
    out
}

/// Where a target's license evidence may be read on this host, from its configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicenseFiles {
    /// A GGUF file (llama.cpp served elsewhere, or to override `/props`).
    pub model_file: Option<PathBuf>,
    /// A Hugging Face style directory (vLLM, TGI).
    pub model_dir: Option<PathBuf>,
}

/// A client whose fingerprints carry license evidence: the configured files first, then what
/// the server said, else an explicit `none`.
struct WithLicense {
    inner: Arc<dyn ModelClient>,
    files: LicenseFiles,
    gguf: Arc<GgufCache>,
}

/// Wraps a client so that every fingerprint carries [`LicenseEvidence`].
pub fn with_license(inner: Arc<dyn ModelClient>, files: LicenseFiles) -> Arc<dyn ModelClient> {
    Arc::new(WithLicense {
        inner,
        files,
        gguf: Arc::default(),
    })
}

impl ModelClient for WithLicense {
    fn complete<'a>(
        &'a self,
        request: &'a super::CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        self.inner.complete(request)
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        Box::pin(async move {
            let mut fp = self.inner.fingerprint().await?;
            let files = self.files.clone();
            let gguf = self.gguf.clone();
            let configured = if files.model_file.is_some() || files.model_dir.is_some() {
                tokio::task::spawn_blocking(move || {
                    files
                        .model_file
                        .as_deref()
                        .map(|p| gguf.read(p))
                        .or_else(|| files.model_dir.as_deref().map(read_model_dir))
                })
                .await
                .ok()
                .flatten()
            } else {
                None
            };
            match configured {
                Some(ev) => ev.insert_into(&mut fp.details),
                None if fp.license().is_none() => LicenseEvidence::none(
                    "the server publishes no license; set model_file or model_dir to read it",
                )
                .insert_into(&mut fp.details),
                None => {}
            }
            Ok(fp)
        })
    }
}

#[cfg(test)]
#[path = "license_tests.rs"]
mod tests;
