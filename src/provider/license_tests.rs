use super::*;
use serde_json::json;

const APACHE: &str = "                                 Apache License\n                           Version 2.0, January 2004\n";

#[test]
fn ollama_show_gives_text_hash_identifier_and_identity() {
    let show = json!({
        "license": APACHE,
        "model_info": {
            "general.license": "Apache-2.0",
            "general.name": "Smollm2 135M",
            "general.basename": "smollm2",
            "general.size_label": "135M",
            "general.base_model.0.name": "SmolLM2 135M",
            "general.parameter_count": 134515008
        }
    });
    let ev = from_ollama_show(&show);
    assert_eq!(ev.license.as_deref(), Some("apache-2.0"));
    assert_eq!(
        ev.sha256.as_deref(),
        Some(sha256_hex(APACHE.as_bytes()).as_str())
    );
    assert_eq!(ev.source, "ollama_show");
    assert_eq!(ev.basename.as_deref(), Some("smollm2"));
    assert_eq!(ev.base_model.as_deref(), Some("SmolLM2 135M"));
    assert!(ev.note.is_none());

    // No model_info: the identifier comes from the text; a list of texts is joined.
    let ev =
        from_ollama_show(&json!({"license": ["Gemma Terms of Use\n...", "Prohibited Use Policy"]}));
    assert_eq!(ev.license.as_deref(), Some("gemma"));
    assert!(ev.sha256.is_some());
    // Nothing at all: not identified, and the note says why.
    let ev = from_ollama_show(&json!({"modelfile": "FROM x"}));
    assert!(!ev.identified());
    assert!(ev.note.unwrap().contains("no license"));
}

#[test]
fn different_texts_under_the_same_identifier_have_different_hashes() {
    let a = from_ollama_show(&json!({"license": "Gemma Terms of Use v1"}));
    let b = from_ollama_show(&json!({"license": "Gemma Terms of Use v2"}));
    assert_eq!(a.license, b.license);
    assert_ne!(a.sha256, b.sha256);
}

#[test]
fn gguf_headers_give_the_identifier_and_identity() {
    let bytes = crate::provider::gguf::tests::smol_like();
    let h = gguf::read_header(bytes.as_slice(), &gguf::Limits::default()).unwrap();
    let ev = from_gguf(&h, Path::new("/models/smol.gguf"));
    assert_eq!(ev.license.as_deref(), Some("apache-2.0"));
    assert_eq!(ev.sha256, None, "a GGUF header carries no license text");
    assert_eq!(ev.source_label(), "gguf /models/smol.gguf");
    assert_eq!(ev.size_label.as_deref(), Some("135M"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(read_gguf(&path).license.as_deref(), Some("apache-2.0"));
    std::fs::write(&path, b"GGML not a gguf").unwrap();
    let bad = read_gguf(&path);
    assert_eq!(bad.source, "none");
    assert!(bad.note.unwrap().contains("not a GGUF file"));
}

#[test]
fn a_gguf_file_is_read_again_only_when_it_changes() {
    let bytes = crate::provider::gguf::tests::smol_like();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, &bytes).unwrap();
    let cache = GgufCache::default();
    assert_eq!(cache.read(&path).license.as_deref(), Some("apache-2.0"));
    // Same size and modification time: the earlier evidence, without reading the file.
    let stamp = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, vec![0u8; bytes.len()]).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(stamp).unwrap();
    assert_eq!(cache.read(&path).license.as_deref(), Some("apache-2.0"));
    // A new modification time: read again (now not a GGUF file).
    f.set_modified(stamp + std::time::Duration::from_secs(1))
        .unwrap();
    assert_eq!(cache.read(&path).source, "none");
}

#[test]
fn model_directories_give_license_file_front_matter_and_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("LICENSE"), APACHE).unwrap();
    std::fs::write(
        dir.path().join("README.md"),
        "---\nlicense: other\nlicense_name: qwen-research\nlicense_link: https://example.org/LICENSE\nbase_model:\n- Qwen/Qwen2.5-7B\ntags:\n  - chat\n---\n# Model\nlicense: not this\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"_name_or_path": "Qwen/Qwen2.5-7B-Instruct", "model_type": "qwen2"}"#,
    )
    .unwrap();
    let ev = read_model_dir(dir.path());
    assert_eq!(
        ev.license.as_deref(),
        Some("qwen-research"),
        "front matter wins"
    );
    assert_eq!(
        ev.sha256.as_deref(),
        Some(sha256_hex(APACHE.as_bytes()).as_str())
    );
    assert_eq!(ev.link.as_deref(), Some("https://example.org/LICENSE"));
    assert_eq!(ev.base_model.as_deref(), Some("Qwen/Qwen2.5-7B"));
    assert_eq!(ev.name.as_deref(), Some("Qwen/Qwen2.5-7B-Instruct"));
    assert_eq!(ev.basename.as_deref(), Some("qwen2"));

    // Only a license file: the identifier comes from its text.
    std::fs::remove_file(dir.path().join("README.md")).unwrap();
    assert_eq!(
        read_model_dir(dir.path()).license.as_deref(),
        Some("apache-2.0")
    );
    // Nothing readable.
    let none = read_model_dir(&dir.path().join("missing"));
    assert_eq!(none.source, "none");
    assert!(none.note.unwrap().contains("not readable"));
}

#[test]
fn evidence_round_trips_through_details_without_changing_the_model_identity() {
    let mut fp = Fingerprint {
        provider: "openai".into(),
        model: "smol".into(),
        digest: Some("smol.gguf (Q4_1)".into()),
        details: BTreeMap::new(),
    };
    let id = fp.id();
    assert_eq!(fp.license(), None);
    let ev = LicenseEvidence {
        license: Some("apache-2.0".into()),
        source: "gguf".into(),
        location: Some("/m/smol.gguf".into()),
        name: Some("x".repeat(1000)),
        ..LicenseEvidence::default()
    };
    ev.insert_into(&mut fp.details);
    assert_eq!(fp.id(), id, "terms are not the model identity");
    let back = fp.license().unwrap();
    assert_eq!(back.license.as_deref(), Some("apache-2.0"));
    assert_eq!(back.name.unwrap().len(), MAX_VALUE, "values are bounded");
    // Replacing evidence drops the old entries.
    LicenseEvidence::none("gone").insert_into(&mut fp.details);
    let back = fp.license().unwrap();
    assert_eq!((back.source.as_str(), back.license), ("none", None));
}
