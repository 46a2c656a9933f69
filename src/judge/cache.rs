//! The judge's answers, one JSON object per line (`{"key": "<sha256>", "label": "refusal"}`),
//! read once at start and appended as answers arrive. A line that does not parse is skipped
//! (a crash may leave half a line); the file is read up to [`MAX_BYTES`].

use super::Label;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Larger cache files are refused: about two million answers.
pub const MAX_BYTES: u64 = 256 * 1024 * 1024;

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    key: String,
    label: Label,
}

/// The cache file and what it held.
#[derive(Debug)]
pub struct Cache {
    path: PathBuf,
    answers: HashMap<String, Label>,
    /// Lines skipped when reading.
    pub skipped: usize,
}

impl Cache {
    /// Reads `path` (a missing file is an empty cache).
    pub fn open(path: &Path) -> Result<Cache, String> {
        let text = match crate::files::read_text_limited(path, MAX_BYTES) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(format!(
                    "cannot read the judge cache {}: {e}; move it away to start an empty one",
                    path.display()
                ));
            }
        };
        let mut answers = HashMap::new();
        let mut skipped = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Entry>(line) {
                Ok(e) => {
                    answers.insert(e.key, e.label);
                }
                Err(_) => skipped += 1,
            }
        }
        Ok(Cache {
            path: path.to_path_buf(),
            answers,
            skipped,
        })
    }

    pub fn get(&self, key: &str) -> Option<Label> {
        self.answers.get(key).copied()
    }

    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// Remembers an answer and appends it to the file (one write per line, so a crash loses
    /// at most that line).
    pub fn put(&mut self, key: &str, label: Label) -> Result<(), String> {
        let line = serde_json::to_string(&Entry {
            key: key.to_string(),
            label,
        })
        .map_err(|e| e.to_string())?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("cannot write the judge cache {}: {e}", self.path.display()))?;
        f.write_all(format!("{line}\n").as_bytes())
            .map_err(|e| format!("cannot write the judge cache {}: {e}", self.path.display()))?;
        self.answers.insert(key.to_string(), label);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_survive_a_reopen_and_broken_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/judge-cache.jsonl");
        let mut c = Cache::open(&path).unwrap();
        assert!(c.is_empty());
        c.put("k1", Label::Refusal).unwrap();
        c.put("k2", Label::Answer).unwrap();
        // A crash mid-line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"key\": \"k3\", \"lab")
            .unwrap();
        let c = Cache::open(&path).unwrap();
        assert_eq!(c.get("k1"), Some(Label::Refusal));
        assert_eq!(c.get("k2"), Some(Label::Answer));
        assert_eq!(c.get("k3"), None);
        assert_eq!((c.len(), c.skipped), (2, 1));
    }

    #[test]
    fn an_unreadable_cache_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let e = Cache::open(dir.path()).unwrap_err();
        assert!(e.contains("move it away"), "{e}");
    }
}
