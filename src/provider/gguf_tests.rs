use super::*;

/// Builds GGUF headers for tests.
pub(crate) struct Builder {
    pub bytes: Vec<u8>,
    keys: u64,
}

impl Builder {
    pub fn new() -> Self {
        Builder {
            bytes: Vec::new(),
            keys: 0,
        }
    }
    fn raw_str(&mut self, s: &[u8]) {
        self.bytes.extend((s.len() as u64).to_le_bytes());
        self.bytes.extend(s);
    }
    pub fn string(mut self, key: &str, value: &str) -> Self {
        self.raw_str(key.as_bytes());
        self.bytes.extend(8u32.to_le_bytes());
        self.raw_str(value.as_bytes());
        self.keys += 1;
        self
    }
    pub fn u32(mut self, key: &str, value: u32) -> Self {
        self.raw_str(key.as_bytes());
        self.bytes.extend(4u32.to_le_bytes());
        self.bytes.extend(value.to_le_bytes());
        self.keys += 1;
        self
    }
    pub fn strings(mut self, key: &str, values: &[&str]) -> Self {
        self.raw_str(key.as_bytes());
        self.bytes.extend(9u32.to_le_bytes());
        self.bytes.extend(8u32.to_le_bytes());
        self.bytes.extend((values.len() as u64).to_le_bytes());
        for v in values {
            self.raw_str(v.as_bytes());
        }
        self.keys += 1;
        self
    }
    pub fn floats(mut self, key: &str, n: u64) -> Self {
        self.raw_str(key.as_bytes());
        self.bytes.extend(9u32.to_le_bytes());
        self.bytes.extend(6u32.to_le_bytes());
        self.bytes.extend(n.to_le_bytes());
        for i in 0..n {
            self.bytes.extend((i as f32).to_le_bytes());
        }
        self.keys += 1;
        self
    }
    /// The whole file: header fields, then the key/values, then a fake tensor section.
    pub fn finish(self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(272u64.to_le_bytes());
        out.extend(self.keys.to_le_bytes());
        out.extend(self.bytes);
        out
    }
}

/// A header shaped like the SmolLM2 file's: identity keys, a template, a vocabulary.
pub(crate) fn smol_like() -> Vec<u8> {
    let vocab: Vec<String> = (0..300).map(|i| format!("tok{i}")).collect();
    let vocab: Vec<&str> = vocab.iter().map(String::as_str).collect();
    Builder::new()
        .string("general.architecture", "llama")
        .string("general.name", "Smollm2 135M 8k Lc100K Mix1 Ep2")
        .string("general.basename", "smollm2")
        .string("general.size_label", "135M")
        .string("general.license", "apache-2.0")
        .u32("general.file_type", 3)
        .strings("tokenizer.ggml.tokens", &vocab)
        .floats("tokenizer.ggml.scores", 300)
        .string("tokenizer.chat_template", &"{% x %}".repeat(50))
        .finish()
}

#[test]
fn reads_the_identity_of_a_synthetic_header() {
    let mut bytes = smol_like();
    let header_len = bytes.len() as u64;
    bytes.extend(vec![0xAB; 10_000]); // tensor infos and data: never read
    let h = read_header(bytes.as_slice(), &Limits::default()).unwrap();
    assert_eq!((h.version, h.tensor_count), (3, 272));
    assert_eq!(h.bytes_read, header_len, "stops at the end of the metadata");
    assert_eq!(h.text("general.license").as_deref(), Some("apache-2.0"));
    assert_eq!(h.text("general.basename").as_deref(), Some("smollm2"));
    assert_eq!(h.metadata["general.file_type"], GgufValue::Uint(3));
    match &h.metadata["tokenizer.ggml.tokens"] {
        GgufValue::Array { len, items } => {
            assert_eq!(*len, 300);
            assert_eq!(items.len(), Limits::default().keep_array);
            assert_eq!(items[1], GgufValue::Str("tok1".into()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.text("general.missing"), None);
}

#[test]
fn kept_strings_are_cut_but_the_rest_is_still_read() {
    let bytes = Builder::new()
        .string("a", &"x".repeat(5000))
        .string("b", "after")
        .finish();
    let limits = Limits {
        keep_string: 10,
        ..Limits::default()
    };
    let h = read_header(bytes.as_slice(), &limits).unwrap();
    assert_eq!(h.metadata["a"], GgufValue::Str("x".repeat(10)));
    assert_eq!(h.text("b").as_deref(), Some("after"));
}

/// Reads `bytes` and returns the outcome and how many bytes were consumed.
fn consumed(bytes: &[u8], limits: &Limits) -> (Result<GgufHeader>, u64) {
    let mut slice = bytes;
    let out = read_header(&mut slice, limits);
    (out, (bytes.len() - slice.len()) as u64)
}

#[test]
fn truncated_at_every_offset_is_a_truncation_error() {
    let bytes = smol_like();
    let limits = Limits::default();
    for cut in 0..bytes.len() {
        let (out, read) = consumed(&bytes[..cut], &limits);
        let err = out.expect_err("a truncated header is an error");
        assert!(read <= cut as u64);
        match err {
            GgufError::Truncated { at, .. } => assert!(at <= cut as u64, "{cut}: {at}"),
            // Cut inside the magic: what is there is not "GGUF".
            GgufError::BadMagic { .. } if cut < 4 => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

/// Overwrites the u64 at `at`.
fn set_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn hostile_headers_are_classified_within_the_byte_bound() {
    let limits = Limits {
        max_bytes: 1 << 20,
        ..Limits::default()
    };
    let good = smol_like();
    // Offsets: 24 = first key length; key "general.architecture" (20) then type at 52, value
    // length at 56.
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    let mut b = good.clone();
    b[..4].copy_from_slice(b"GGML");
    cases.push(("wrong magic", b, "bad_magic"));
    let mut b = good.clone();
    b[4..8].copy_from_slice(&1u32.to_le_bytes());
    cases.push(("version 1", b, "version"));
    let mut b = good.clone();
    set_u64(&mut b, 16, u64::MAX);
    cases.push(("key count u64::MAX", b, "too_many_keys"));
    let mut b = good.clone();
    set_u64(&mut b, 16, 1_000_000);
    cases.push(("a million keys", b, "too_many_keys"));
    let mut b = good.clone();
    set_u64(&mut b, 24, u64::MAX);
    cases.push(("key length u64::MAX", b, "string_too_long"));
    let mut b = good.clone();
    set_u64(&mut b, 56, 1 << 40);
    cases.push(("value string of a terabyte", b, "string_too_long"));
    let mut b = good.clone();
    b[52..56].copy_from_slice(&99u32.to_le_bytes());
    cases.push(("unknown value type", b, "bad_type"));
    // A huge array of u64 elements within the element cap but past the byte cap.
    let huge = Builder::new()
        .string("general.license", "mit")
        .floats("x", 0)
        .finish();
    let mut b = huge.clone();
    let count_at = b.len() - 8;
    b[count_at - 4..count_at].copy_from_slice(&10u32.to_le_bytes());
    set_u64(&mut b, count_at, 4 << 20);
    cases.push(("32 MiB array past the byte cap", b, "too_large"));
    let mut b = huge.clone();
    set_u64(&mut b, count_at, u64::MAX);
    cases.push(("array count u64::MAX", b, "array_too_long"));
    let mut b = huge;
    b[count_at - 4..count_at].copy_from_slice(&77u32.to_le_bytes());
    cases.push(("unknown element type", b, "bad_type"));
    // Arrays nested three deep.
    let mut nested = b"GGUF".to_vec();
    nested.extend(3u32.to_le_bytes());
    nested.extend(0u64.to_le_bytes());
    nested.extend(1u64.to_le_bytes());
    nested.extend(1u64.to_le_bytes());
    nested.push(b'k');
    nested.extend(9u32.to_le_bytes());
    for _ in 0..3 {
        nested.extend(9u32.to_le_bytes());
        nested.extend(1u64.to_le_bytes());
    }
    cases.push(("arrays nested three deep", nested, "nested"));
    let mut bad_key = Builder::new().string("k", "v").finish();
    bad_key[32] = 0xFF;
    cases.push(("key not UTF-8", bad_key, "key_not_utf8"));

    for (name, bytes, class) in cases {
        let (out, read) = consumed(&bytes, &limits);
        let err = out.expect_err(name);
        assert_eq!(err.class(), class, "{name}: {err}");
        assert!(read <= limits.max_bytes, "{name}: read {read}");
        assert!(read <= bytes.len() as u64, "{name}: read {read}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn a_string_array_cannot_make_the_reader_allocate_or_read_without_bound() {
    // Many long strings: each within the string cap, together past the byte cap.
    let limits = Limits {
        max_bytes: 64 << 10,
        max_string: 8 << 10,
        ..Limits::default()
    };
    let big = "y".repeat(8 << 10);
    let strings: Vec<&str> = (0..16).map(|_| big.as_str()).collect();
    let bytes = Builder::new().strings("s", &strings).finish();
    let (out, read) = consumed(&bytes, &limits);
    assert_eq!(out.unwrap_err().class(), "too_large");
    assert!(read <= limits.max_bytes);
}

#[test]
fn a_missing_file_is_an_io_error_that_says_what_to_check() {
    let err = read_file(Path::new("/nonexistent/model.gguf"), &Limits::default()).unwrap_err();
    assert_eq!(err.class(), "io");
    assert!(err.to_string().contains("check the path"), "{err}");
}
