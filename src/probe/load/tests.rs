use super::*;

fn suite(text: &str) -> Suite {
    parse_suite(&Source::new("probes/s.toml", text))
        .unwrap_or_else(|d| panic!("{}", crate::diag::render_all(&d)))
}

const BASE: &str = r#"
suite = "s"
[defaults]
samples = 2
temperature = 0.5
max_tokens = 64

[[probe]]
id = "a"
prompt = "What is 2+2?"
tags = ["math"]
expect.task = { kind = "number", value = 4 }

[[probe]]
id = "b"
messages = [{ role = "user", content = "hi" }]
samples = 5
temperature = 0.0
expect = { refusal = false, json_schema = { type = "object", required = ["x"] } }
"#;

#[test]
fn resolves_defaults_and_locations() {
    let s = suite(BASE);
    assert_eq!(s.name, "s");
    assert_eq!(s.samples, 2);
    let (a, b) = (&s.probes[0], &s.probes[1]);
    assert_eq!((a.samples, b.samples), (2, 5));
    assert_eq!(a.params.temperature, Some(0.5));
    assert_eq!(b.params.temperature, Some(0.0));
    assert_eq!(b.params.max_tokens, Some(64));
    assert_eq!(a.suite, "s");
    assert_eq!((a.location.line, a.location.column), (8, 1));
    assert_eq!(b.location.line, 14);
    assert_eq!(
        a.expect.task,
        Some(TaskCheck::Number {
            value: 4.0,
            abs_tol: None,
            rel_tol: None
        })
    );
    assert_eq!(b.expect.refusal, Some(false));
    assert!(b.expect.expects_json());
    assert!(matches!(b.input, ProbeInput::Messages(ref m) if m[0].role == Role::User));
}

#[test]
fn name_defaults_to_file_stem_and_samples_to_three() {
    let s = suite("[[probe]]\nid = \"x\"\nprompt = \"p\"\n");
    assert_eq!(s.name, "s");
    assert_eq!(s.probes[0].samples, DEFAULT_SAMPLES);
}

#[test]
fn hash_changes_with_content_not_with_formatting() {
    let base = suite(BASE);
    let changed = |from: &str, to: &str| {
        assert!(BASE.contains(from), "{from}");
        suite(&BASE.replacen(from, to, 1))
    };
    // Content changes: prompt, parameter (suite default and probe), check, id, samples.
    for (from, to) in [
        ("What is 2+2?", "What is 2+3?"),
        ("temperature = 0.5", "temperature = 0.6"),
        ("value = 4 }", "value = 5 }"),
        ("id = \"a\"", "id = \"a2\""),
        ("samples = 2", "samples = 3"),
    ] {
        let s = changed(from, to);
        assert_ne!(s.probes[0].hash, base.probes[0].hash, "{from} -> {to}");
        assert_ne!(s.hash, base.hash, "{from} -> {to}");
    }
    // A change in probe b leaves a's hash alone but changes the suite's.
    let s = changed("required = [\"x\"]", "required = [\"y\"]");
    assert_eq!(s.probes[0].hash, base.probes[0].hash);
    assert_ne!(s.probes[1].hash, base.probes[1].hash);
    assert_ne!(s.hash, base.hash);
    // Not content: tags, description, layout, key order, int vs float, comments.
    let reformatted = r#"
# comments and blank lines do not matter
suite = "s"
description = "added"

[defaults]
max_tokens = 64
temperature = 0.50
samples = 2

[[probe]]
tags = ["other"]
prompt = 'What is 2+2?'
id = "a"
description = "added"
[probe.expect.task]
value = 4.0
kind = "number"

[[probe]]
id = "b"
temperature = 0
samples = 5
messages = [
  { content = "hi", role = "user" },
]
[probe.expect]
json_schema = { required = ["x"], type = "object" }
refusal = false
"#;
    let s = suite(reformatted);
    assert_eq!(s.probes[0].hash, base.probes[0].hash);
    assert_eq!(s.probes[1].hash, base.probes[1].hash);
    assert_eq!(s.hash, base.hash);
    assert_eq!(base.hash.len(), 64);
}

#[test]
fn margins_per_probe_and_per_suite_stay_out_of_the_hash() {
    let plain = suite("[[probe]]\nid = \"a\"\nprompt = \"x\"\n");
    let with = suite(
        "[defaults]\nmargin = 0.2\n[[probe]]\nid = \"a\"\nprompt = \"x\"\n\
             [[probe]]\nid = \"b\"\nprompt = \"y\"\nexpect = { margin = 0.05 }\n",
    );
    assert_eq!(with.probes[0].expect.margin, Some(0.2));
    assert_eq!(with.probes[1].expect.margin, Some(0.05));
    assert_eq!(plain.probes[0].hash, with.probes[0].hash);
    let bad = parse_suite(&Source::new(
        "s.toml",
        "[[probe]]\nid = \"a\"\nprompt = \"x\"\nexpect = { margin = 5 }\n",
    ))
    .unwrap_err();
    assert!(format!("{bad:?}").contains("margin"), "{bad:?}");
}

#[test]
fn probe_order_is_part_of_the_suite_hash() {
    let one = "[[probe]]\nid = \"x\"\nprompt = \"p\"\n";
    let two = "[[probe]]\nid = \"y\"\nprompt = \"q\"\n";
    let ab = suite(&format!("{one}{two}"));
    let ba = suite(&format!("{two}{one}"));
    assert_ne!(ab.hash, ba.hash);
}

#[test]
fn nested_checks_parse() {
    let s = suite(
        r#"
[[probe]]
id = "x"
prompt = "p"
expect.task = { kind = "any", checks = [{ kind = "contains", values = ["a", "b"], mode = "all" }, { kind = "json_equals", pointer = "/a/0", value = { k = [1, true] } }] }
"#,
    );
    let TaskCheck::Any { checks } = s.probes[0].expect.task.clone().unwrap() else {
        panic!("not any");
    };
    assert_eq!(checks[0].kind(), "contains");
    assert!(matches!(
        &checks[0],
        TaskCheck::Contains {
            mode: MatchMode::All,
            ..
        }
    ));
    assert_eq!(
        checks[1],
        TaskCheck::JsonEquals {
            pointer: "/a/0".into(),
            value: serde_json::json!({ "k": [1, true] })
        }
    );
}

#[test]
fn starter_suites_load() {
    for (name, sizes) in [
        ("core", 35..=50),
        ("json", 15..=25),
        ("tasks", 35..=50),
        ("format", 10..=25),
        ("multilingual", 8..=20),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("probes/{name}.toml"));
        let s = load_suite(&path).unwrap_or_else(|d| panic!("{}", crate::diag::render_all(&d)));
        assert_eq!(s.name, name);
        assert!(
            sizes.contains(&s.probes.len()),
            "{name}: {}",
            s.probes.len()
        );
    }
}

#[test]
fn a_json_or_yaml_suite_is_one_error_that_says_suites_are_toml() {
    let yaml = "suite: s\nprobes:\n  - id: a\n    prompt: hi\n";
    let json = "{\"suite\": \"s\", \"probes\": [{\"id\": \"a\"}]}";
    for (path, text) in [("probes/s.yaml", yaml), ("probes/s.json", json)] {
        let d = parse_suite(&Source::new(path, text)).unwrap_err();
        assert_eq!(d.len(), 1, "{}", crate::diag::render_all(&d));
        let help = d[0].help.as_deref().unwrap_or_default();
        assert!(help.contains("suite files are TOML"), "{help}");
    }
    // A .toml file keeps every syntax error and the TOML hint.
    let d = parse_suite(&Source::new("probes/s.toml", yaml)).unwrap_err();
    assert!(d[0].help.as_deref().unwrap_or_default().contains("toml.io"));
}
