//! A bounded reader of GGUF file headers: the metadata key/value section only, never the tensor
//! infos or tensor data. A model file is the operator's to choose and may be hostile or damaged,
//! so every count and length is checked against [`Limits`] before anything is allocated, the
//! total number of bytes read is capped, and every failure is a classified [`GgufError`].
//!
//! Layout (versions 2 and 3): magic `GGUF`, u32 version, u64 tensor count, u64 key count, then
//! per key a string (u64 length + bytes), a u32 value type and the value (types 0–12; 8 is a
//! string, 9 an array: u32 element type, u64 count, elements). All little-endian.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Caps on what one header may make the reader do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Metadata keys in the header.
    pub max_keys: u64,
    /// Bytes of one key or string value.
    pub max_string: u64,
    /// Elements of one array (tokenizer vocabularies reach a few hundred thousand).
    pub max_array: u64,
    /// Bytes read in total, header included.
    pub max_bytes: u64,
    /// Bytes of a string value kept in [`GgufHeader::metadata`] (longer ones are cut).
    pub keep_string: usize,
    /// Array elements kept (the count is always reported).
    pub keep_array: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_keys: 4096,
            max_string: 1 << 20,
            max_array: 4 << 20,
            max_bytes: 64 << 20,
            keep_string: 4096,
            keep_array: 32,
        }
    }
}

/// One metadata value, as far as it is kept.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    Uint(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Lossy UTF-8, cut to [`Limits::keep_string`] bytes.
    Str(String),
    /// The element count and the first [`Limits::keep_array`] elements.
    Array {
        len: u64,
        items: Vec<GgufValue>,
    },
}

impl GgufValue {
    /// Scalars as text (what the license evidence needs); arrays as their kept items joined.
    pub fn to_text(&self) -> String {
        match self {
            GgufValue::Uint(v) => v.to_string(),
            GgufValue::Int(v) => v.to_string(),
            GgufValue::Float(v) => v.to_string(),
            GgufValue::Bool(v) => v.to_string(),
            GgufValue::Str(s) => s.clone(),
            GgufValue::Array { items, .. } => items
                .iter()
                .map(GgufValue::to_text)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// What the header says.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufHeader {
    pub version: u32,
    pub tensor_count: u64,
    pub metadata: BTreeMap<String, GgufValue>,
    /// Bytes consumed from the reader.
    pub bytes_read: u64,
}

impl GgufHeader {
    /// A metadata value as text, when present and not empty.
    pub fn text(&self, key: &str) -> Option<String> {
        let t = self.metadata.get(key)?.to_text();
        (!t.trim().is_empty()).then(|| t.trim().to_string())
    }
}

/// Why a header could not be read. `at` is the byte offset where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GgufError {
    #[error("cannot read the model file: {0}; check the path and that this user may read it")]
    Io(String),
    #[error("not a GGUF file (magic {found:?}, expected \"GGUF\"); point at the .gguf file itself")]
    BadMagic { found: String },
    #[error(
        "GGUF version {0} is not supported (2 and 3 are); re-convert the model with a current llama.cpp"
    )]
    Version(u32),
    #[error("the GGUF header ends early at byte {at} while reading {what}; the file is truncated")]
    Truncated { at: u64, what: &'static str },
    #[error("the GGUF header declares {count} metadata keys at byte {at}; at most {max} are read")]
    TooManyKeys { at: u64, count: u64, max: u64 },
    #[error("a GGUF string at byte {at} is {len} bytes long; at most {max} are read")]
    StringTooLong { at: u64, len: u64, max: u64 },
    #[error("a GGUF array at byte {at} has {len} elements; at most {max} are read")]
    ArrayTooLong { at: u64, len: u64, max: u64 },
    #[error(
        "unknown GGUF value type {ty} at byte {at}; the file is damaged or newer than this reader"
    )]
    BadType { at: u64, ty: u32 },
    #[error("a GGUF array of arrays at byte {at} nests deeper than one level")]
    Nested { at: u64 },
    #[error("a GGUF metadata key at byte {at} is not UTF-8")]
    KeyNotUtf8 { at: u64 },
    #[error("the GGUF header is larger than {max} bytes; the file is damaged or hostile")]
    TooLarge { max: u64 },
}

impl GgufError {
    /// A short stable name of the class (for logs and tests).
    pub fn class(&self) -> &'static str {
        match self {
            GgufError::Io(_) => "io",
            GgufError::BadMagic { .. } => "bad_magic",
            GgufError::Version(_) => "version",
            GgufError::Truncated { .. } => "truncated",
            GgufError::TooManyKeys { .. } => "too_many_keys",
            GgufError::StringTooLong { .. } => "string_too_long",
            GgufError::ArrayTooLong { .. } => "array_too_long",
            GgufError::BadType { .. } => "bad_type",
            GgufError::Nested { .. } => "nested",
            GgufError::KeyNotUtf8 { .. } => "key_not_utf8",
            GgufError::TooLarge { .. } => "too_large",
        }
    }
}

type Result<T> = std::result::Result<T, GgufError>;

/// Reads the header of the GGUF file at `path` (buffered; only the header is read).
pub fn read_file(path: &Path, limits: &Limits) -> Result<GgufHeader> {
    let file = std::fs::File::open(path).map_err(|e| GgufError::Io(e.to_string()))?;
    read_header(std::io::BufReader::with_capacity(64 * 1024, file), limits)
}

/// Reads a GGUF header from `input`, consuming no more than the header and never more than
/// [`Limits::max_bytes`].
pub fn read_header<R: Read>(input: R, limits: &Limits) -> Result<GgufHeader> {
    let mut r = Counted {
        inner: input,
        at: 0,
        limits: *limits,
    };
    let magic = r.array::<4>("the magic")?;
    if &magic != b"GGUF" {
        return Err(GgufError::BadMagic {
            found: String::from_utf8_lossy(&magic).into_owned(),
        });
    }
    let version = r.u32("the version")?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::Version(version));
    }
    let tensor_count = r.u64("the tensor count")?;
    let at = r.at;
    let keys = r.u64("the key count")?;
    if keys > limits.max_keys {
        return Err(GgufError::TooManyKeys {
            at,
            count: keys,
            max: limits.max_keys,
        });
    }
    let mut metadata = BTreeMap::new();
    for _ in 0..keys {
        let at = r.at;
        let key = r.string("a key", usize::MAX)?;
        let key = String::from_utf8(key).map_err(|_| GgufError::KeyNotUtf8 { at })?;
        let ty = r.u32("a value type")?;
        let value = r.value(ty, 0)?;
        metadata.insert(key, value);
    }
    Ok(GgufHeader {
        version,
        tensor_count,
        metadata,
        bytes_read: r.at,
    })
}

/// A reader that counts what it consumed and refuses to go past the byte cap.
struct Counted<R> {
    inner: R,
    at: u64,
    limits: Limits,
}

impl<R: Read> Counted<R> {
    fn fill(&mut self, buf: &mut [u8], what: &'static str) -> Result<()> {
        let end = self.at.saturating_add(buf.len() as u64);
        if end > self.limits.max_bytes {
            return Err(GgufError::TooLarge {
                max: self.limits.max_bytes,
            });
        }
        let mut done = 0;
        while done < buf.len() {
            match self.inner.read(&mut buf[done..]) {
                Ok(0) => {
                    self.at += done as u64;
                    return Err(GgufError::Truncated { at: self.at, what });
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(GgufError::Io(e.to_string())),
            }
        }
        self.at = end;
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.fill(&mut b, what)?;
        Ok(b)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Skips `n` bytes (already checked against the caps by the caller's counts).
    fn skip(&mut self, mut n: u64, what: &'static str) -> Result<()> {
        if self.at.saturating_add(n) > self.limits.max_bytes {
            return Err(GgufError::TooLarge {
                max: self.limits.max_bytes,
            });
        }
        let mut buf = [0u8; 8192];
        while n > 0 {
            let chunk = n.min(buf.len() as u64) as usize;
            self.fill(&mut buf[..chunk], what)?;
            n -= chunk as u64;
        }
        Ok(())
    }

    /// A length-prefixed string; the first `keep` bytes are returned, the rest skipped.
    fn string(&mut self, what: &'static str, keep: usize) -> Result<Vec<u8>> {
        let at = self.at;
        let len = self.u64(what)?;
        if len > self.limits.max_string {
            return Err(GgufError::StringTooLong {
                at,
                len,
                max: self.limits.max_string,
            });
        }
        let kept = len.min(keep as u64) as usize;
        let mut out = vec![0u8; kept];
        self.fill(&mut out, what)?;
        self.skip(len - kept as u64, what)?;
        Ok(out)
    }

    fn value(&mut self, ty: u32, depth: u32) -> Result<GgufValue> {
        let what = "a value";
        Ok(match ty {
            0 => GgufValue::Uint(u64::from(self.array::<1>(what)?[0])),
            1 => GgufValue::Int(i64::from(self.array::<1>(what)?[0] as i8)),
            2 => GgufValue::Uint(u64::from(u16::from_le_bytes(self.array(what)?))),
            3 => GgufValue::Int(i64::from(i16::from_le_bytes(self.array(what)?))),
            4 => GgufValue::Uint(u64::from(self.u32(what)?)),
            5 => GgufValue::Int(i64::from(i32::from_le_bytes(self.array(what)?))),
            6 => GgufValue::Float(f64::from(f32::from_le_bytes(self.array(what)?))),
            7 => GgufValue::Bool(self.array::<1>(what)?[0] != 0),
            8 => {
                let keep = self.limits.keep_string;
                let bytes = self.string(what, keep)?;
                GgufValue::Str(String::from_utf8_lossy(&bytes).into_owned())
            }
            9 => self.array_value(depth)?,
            10 => GgufValue::Uint(self.u64(what)?),
            11 => GgufValue::Int(i64::from_le_bytes(self.array(what)?)),
            12 => GgufValue::Float(f64::from_le_bytes(self.array(what)?)),
            ty => {
                return Err(GgufError::BadType {
                    at: self.at.saturating_sub(4),
                    ty,
                });
            }
        })
    }

    fn array_value(&mut self, depth: u32) -> Result<GgufValue> {
        let at = self.at;
        if depth >= 2 {
            return Err(GgufError::Nested { at });
        }
        let ty = self.u32("an array element type")?;
        let len = self.u64("an array length")?;
        if len > self.limits.max_array {
            return Err(GgufError::ArrayTooLong {
                at,
                len,
                max: self.limits.max_array,
            });
        }
        let width = match ty {
            0 | 1 | 7 => Some(1),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            8 | 9 => None,
            ty => return Err(GgufError::BadType { at: at + 4, ty }),
        };
        // Fixed-width elements past the byte cap: refused before reading any of them.
        if let Some(w) = width
            && self.at.saturating_add(len.saturating_mul(w)) > self.limits.max_bytes
        {
            return Err(GgufError::TooLarge {
                max: self.limits.max_bytes,
            });
        }
        let keep = (len as usize).min(self.limits.keep_array);
        let mut items = Vec::with_capacity(keep);
        for _ in 0..keep {
            items.push(self.value(ty, depth + 1)?);
        }
        let rest = len - keep as u64;
        match width {
            // Fixed-width elements: skipped in bulk (the byte cap bounds the work).
            Some(w) => self.skip(rest.saturating_mul(w), "array elements")?,
            None => {
                for _ in 0..rest {
                    if ty == 8 {
                        self.string("an array string", 0)?;
                    } else {
                        self.value(ty, depth + 1)?;
                    }
                }
            }
        }
        Ok(GgufValue::Array { len, items })
    }
}

#[cfg(test)]
#[path = "gguf_tests.rs"]
pub(crate) mod tests;
