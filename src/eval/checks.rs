//! A probe's checks compiled once at load: the JSON Schema (inline or from a file next to the
//! suite) and the task check with its regexes.

use super::expect::{Expect, JsonExtract, JsonSchemaSpec};
use super::task::CompiledTask;
use std::path::{Path, PathBuf};

/// A check that cannot be compiled. The message names the check and its place in the probe's
/// `expect` table; the caller prefixes the probe id and its `file:line:column`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("check '{kind}' ({at}): invalid regex {pattern:?}: {message}")]
    InvalidRegex {
        kind: &'static str,
        at: String,
        pattern: String,
        message: String,
    },
    #[error("check '{kind}' ({at}): {message}")]
    InvalidCheck {
        kind: &'static str,
        at: String,
        message: String,
    },
    #[error(
        "json_schema ({}): cannot read the schema file: {message}; paths are relative to the suite file's directory",
        path.display()
    )]
    SchemaRead { path: PathBuf, message: String },
    #[error("json_schema ({}): the schema file is not JSON: {message}", path.display())]
    SchemaNotJson { path: PathBuf, message: String },
    #[error("json_schema ({location}): invalid schema: {message}")]
    InvalidSchema { location: String, message: String },
}

/// Compiled form of a probe's [`Expect`].
pub struct CompiledChecks {
    /// `expect.refusal`, kept for the drift layer (a refusal on a benign probe is a failure).
    pub expect_refusal: Option<bool>,
    pub expects_json: bool,
    /// Where the JSON may be (`expect.json.extract`).
    pub json_extract: JsonExtract,
    pub schema: Option<jsonschema::Validator>,
    pub task: Option<CompiledTask>,
}

impl std::fmt::Debug for CompiledChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledChecks")
            .field("expect_refusal", &self.expect_refusal)
            .field("expects_json", &self.expects_json)
            .field("json_extract", &self.json_extract)
            .field("schema", &self.schema.is_some())
            .field("task", &self.task)
            .finish()
    }
}

impl CompiledChecks {
    /// Compiles `expect`. A schema given by path is read relative to `suite_dir`; its draft is
    /// detected from `$schema` (default 2020-12; drafts 7 and 2020-12 supported). Remote and
    /// file `$ref`s are not resolved.
    pub fn compile(expect: &Expect, suite_dir: &Path) -> Result<Self, CheckError> {
        let schema = match &expect.json_schema {
            None => None,
            Some(JsonSchemaSpec::Inline(value)) => Some(compile_schema(value, "inline")?),
            Some(JsonSchemaSpec::Path(rel)) => {
                let path = suite_dir.join(rel);
                let text = crate::files::read_text_limited(&path, crate::files::MAX_TEXT_BYTES)
                    .map_err(|e| CheckError::SchemaRead {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                let value: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| CheckError::SchemaNotJson {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                Some(compile_schema(&value, &path.display().to_string())?)
            }
        };
        let task = expect
            .task
            .as_ref()
            .map(|t| CompiledTask::compile(t, "task"))
            .transpose()?;
        Ok(CompiledChecks {
            expect_refusal: expect.refusal,
            expects_json: expect.expects_json(),
            json_extract: expect.json_extract,
            schema,
            task,
        })
    }

    /// Whether evaluation must look for JSON (a JSON probe, or a `json_*` task check).
    pub fn needs_json(&self) -> bool {
        self.expects_json || self.task.as_ref().is_some_and(CompiledTask::needs_json)
    }
}

fn compile_schema(
    value: &serde_json::Value,
    location: &str,
) -> Result<jsonschema::Validator, CheckError> {
    jsonschema::validator_for(value).map_err(|e| {
        let at = e.instance_path().as_str();
        let message = if at.is_empty() {
            e.to_string()
        } else {
            format!("at {at}: {e}")
        };
        CheckError::InvalidSchema {
            location: location.to_string(),
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::compile_suite;
    use serde_json::json;

    fn expect(src: &str) -> Expect {
        toml::from_str(src).unwrap()
    }

    #[test]
    fn compiles_inline_and_file_schemas() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("schemas")).unwrap();
        std::fs::write(
            dir.path().join("schemas/inv.json"),
            r#"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "required": ["total"]}"#,
        )
        .unwrap();
        let c = CompiledChecks::compile(&expect("json_schema = 'schemas/inv.json'"), dir.path())
            .unwrap();
        let v = c.schema.as_ref().unwrap();
        assert!(v.is_valid(&json!({"total": 1})));
        assert!(!v.is_valid(&json!({})));
        assert!(c.needs_json());

        let inline = CompiledChecks::compile(
            &expect("json_schema = { type = 'object', required = ['vendor'] }"),
            dir.path(),
        )
        .unwrap();
        assert!(!inline.schema.unwrap().is_valid(&json!({"total": 1})));
    }

    #[test]
    fn schema_errors_name_the_schema_location() {
        let dir = tempfile::tempdir().unwrap();
        let err = CompiledChecks::compile(&expect("json_schema = { type = 12 }"), dir.path())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "json_schema (inline): invalid schema: at /type: 12 is not valid under any of the schemas listed in the 'anyOf' keyword"
        );
        let missing =
            CompiledChecks::compile(&expect("json_schema = 'nope.json'"), dir.path()).unwrap_err();
        assert!(matches!(missing, CheckError::SchemaRead { .. }));
        assert!(missing.to_string().contains("nope.json"));
        assert!(
            missing
                .to_string()
                .ends_with("paths are relative to the suite file's directory")
        );
        std::fs::write(dir.path().join("bad.json"), "{ nope").unwrap();
        let not_json =
            CompiledChecks::compile(&expect("json_schema = 'bad.json'"), dir.path()).unwrap_err();
        assert!(
            matches!(not_json, CheckError::SchemaNotJson { .. }),
            "{not_json}"
        );
    }

    #[test]
    fn draft_is_detected_from_dollar_schema() {
        // Tuple `items` is draft 7; under 2020-12 (the default) it must be `prefixItems`.
        let dir = tempfile::tempdir().unwrap();
        let d7 = CompiledChecks::compile(
            &expect("json_schema = { '$schema' = 'http://json-schema.org/draft-07/schema#', items = [{ type = 'string' }] }"),
            dir.path(),
        )
        .unwrap();
        let v = d7.schema.unwrap();
        assert!(v.is_valid(&json!(["a", 1])));
        assert!(!v.is_valid(&json!([1])));
        let d2020 = CompiledChecks::compile(
            &expect("json_schema = { prefixItems = [{ type = 'string' }], items = false }"),
            dir.path(),
        )
        .unwrap();
        let v = d2020.schema.unwrap();
        assert!(v.is_valid(&json!(["a"])));
        assert!(!v.is_valid(&json!(["a", 1])));
        assert!(
            CompiledChecks::compile(
                &expect("json_schema = { items = [{ type = 'string' }] }"),
                dir.path()
            )
            .is_err()
        );
    }

    #[test]
    fn task_errors_propagate() {
        let dir = tempfile::tempdir().unwrap();
        let err = CompiledChecks::compile(
            &expect("task = { kind = 'regex', pattern = '[a-' }"),
            dir.path(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "check 'regex' (task): invalid regex \"[a-\": unclosed character class"
        );
    }

    #[test]
    fn json_extract_key_is_read_from_suites() {
        use crate::diag::{Source, render_all};
        use JsonExtract;
        let parse = |expect: &str| {
            let text = format!("suite = \"s\"\n[[probe]]\nid = \"p\"\nprompt = \"x\"\n{expect}\n");
            crate::probe::load::parse_suite(&Source::new("s.toml", text))
        };
        let suite = parse("expect.json.extract = \"embedded\"").unwrap();
        let c = compile_suite(&suite).unwrap();
        assert!(c["p"].expects_json);
        assert_eq!(c["p"].json_extract, JsonExtract::Embedded);
        // The default is left out of the probe hash: `json = true` and `extract = "whole"` agree.
        let plain = parse("expect.json = true").unwrap();
        let whole = parse("expect.json = { extract = \"whole\" }").unwrap();
        assert_eq!(plain.probes[0].hash, whole.probes[0].hash);
        assert_ne!(plain.probes[0].hash, suite.probes[0].hash);
        assert_eq!(
            compile_suite(&plain).unwrap()["p"].json_extract,
            JsonExtract::Whole
        );
        let err = render_all(&parse("expect.json.extract = \"prose\"").unwrap_err());
        assert!(
            err.contains("unknown value \"prose\" for `extract` in `expect.json`"),
            "{err}"
        );
        let err = render_all(&parse("expect.json.mode = \"x\"").unwrap_err());
        assert!(err.contains("unknown key `mode`"), "{err}");
    }
}
