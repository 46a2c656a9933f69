//! `[[traffic.route]]`: what a route's answers must be. A route that declares a JSON Schema has
//! every completion received with its text judged like a probe expecting JSON (the probes'
//! extraction, classification and schema check), so its structured-output failure rate is
//! measured and monitored. The schema is compiled here, so a schema that does not compile is a
//! configuration error with its place in the file.

use crate::diag::fields::{Fields, Reader};
use crate::eval::{CheckError, CompiledChecks, Expect, JsonExtract, JsonSchemaSpec};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use toml::de::DeValue;

const ROUTE_KEYS: &[&str] = &["name", "schema", "schema_file", "extract"];

/// Longest route name (as for ingested lines).
const MAX_ROUTE_CHARS: usize = 200;

/// A route's declared JSON Schema, with the checks compiled from it at load (once: the daemon
/// applies these, it never compiles a route's schema again).
#[derive(Debug, Clone)]
pub struct RouteSchema {
    /// The route as completions name it (`/extract`).
    pub route: String,
    /// The schema.
    pub schema: serde_json::Value,
    /// Where the JSON may be in an answer (the probes' `json.extract`).
    pub extract: JsonExtract,
    /// `inline` or the schema file's path, for messages.
    pub origin: String,
    checks: Arc<CompiledChecks>,
}

/// Equal when declared alike: the reload diff compares declarations, not compiled forms.
impl PartialEq for RouteSchema {
    fn eq(&self, other: &RouteSchema) -> bool {
        (&self.route, &self.schema, self.extract, &self.origin)
            == (&other.route, &other.schema, other.extract, &other.origin)
    }
}

impl RouteSchema {
    /// Compiles the probes' checks for a route: JSON expected, valid against the schema.
    pub fn new(
        route: String,
        schema: serde_json::Value,
        extract: JsonExtract,
        origin: String,
    ) -> Result<RouteSchema, CheckError> {
        let expect = Expect {
            json: true,
            json_schema: Some(JsonSchemaSpec::Inline(schema.clone())),
            json_extract: extract,
            ..Expect::default()
        };
        let checks = Arc::new(CompiledChecks::compile(&expect, Path::new("."))?);
        Ok(RouteSchema {
            route,
            schema,
            extract,
            origin,
            checks,
        })
    }

    /// The checks compiled at load.
    pub fn checks(&self) -> &Arc<CompiledChecks> {
        &self.checks
    }

    /// What the outcomes were judged against (the schema and the extraction mode): kept with a
    /// route's baseline so that one judged against another schema is recorded again.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(serde_json::to_string(&self.schema).unwrap_or_default());
        h.update([u8::from(self.extract == JsonExtract::Embedded)]);
        crate::util::hex(&h.finalize()[..8])
    }
}

/// Reads every `[[traffic.route]]`; `None` after an error was reported.
pub(super) fn read_routes(r: &mut Reader, f: &Fields, dir: &Path) -> Option<Vec<RouteSchema>> {
    let Some(items) = r.array(f, "route", "an array of tables ([[traffic.route]])") else {
        return f.get("route").is_none().then(Vec::new);
    };
    let mut routes = Vec::new();
    let mut names = BTreeSet::new();
    let mut ok = true;
    for item in items.iter() {
        let DeValue::Table(t) = item.get_ref() else {
            r.error(
                item.span(),
                "wrong type for a [[traffic.route]] entry: expected a table",
            );
            ok = false;
            continue;
        };
        let rf = r.fields(t, item.span(), "[[traffic.route]]", ROUTE_KEYS);
        match read_route(r, &rf, dir) {
            Some(route) => {
                if !names.insert(route.route.clone()) {
                    let span = rf.get("name").map_or(item.span(), |v| v.span());
                    r.error_help(
                        span,
                        format!(
                            "route `{}` is declared twice in [[traffic.route]]",
                            route.route
                        ),
                        "keep one [[traffic.route]] per route",
                    );
                    ok = false;
                }
                routes.push(route);
            }
            None => ok = false,
        }
    }
    ok.then_some(routes)
}

fn read_route(r: &mut Reader, f: &Fields, dir: &Path) -> Option<RouteSchema> {
    let name = r.nonempty_string(f, "name", true)?;
    let route = name.get_ref().clone();
    if route.chars().count() > MAX_ROUTE_CHARS {
        r.error(
            name.span(),
            format!("`name` in [[traffic.route]] is longer than {MAX_ROUTE_CHARS} characters"),
        );
        return None;
    }
    let extract = read_extract(r, f, &route);
    let schema = read_schema(r, f, dir, &route);
    let (Some(extract), Some((schema, origin, span))) = (extract, schema) else {
        return None;
    };
    match RouteSchema::new(route.clone(), schema, extract, origin.clone()) {
        Ok(declared) => Some(declared),
        Err(e) => {
            let message = match e {
                CheckError::InvalidSchema { message, .. } => message,
                other => other.to_string(),
            };
            r.error_help(
                span,
                format!("the JSON Schema of route {route} ({origin}) does not compile: {message}"),
                "drafts 7 and 2020-12 are supported (from `$schema`, default 2020-12); remote and file `$ref`s are not resolved",
            );
            None
        }
    }
}

/// `extract`: where the JSON may be in an answer (default `whole`).
fn read_extract(r: &mut Reader, f: &Fields, route: &str) -> Option<JsonExtract> {
    let Some(s) = r.string(f, "extract") else {
        return f.get("extract").is_none().then_some(JsonExtract::Whole);
    };
    match s.get_ref().as_str() {
        "whole" => Some(JsonExtract::Whole),
        "embedded" => Some(JsonExtract::Embedded),
        other => {
            r.error_help(
                s.span(),
                format!("unknown value \"{other}\" for `extract` in [[traffic.route]] {route}"),
                "expected \"whole\" (the answer is the JSON) or \"embedded\" (JSON inside prose)",
            );
            None
        }
    }
}

/// The schema from `schema` (JSON text) or `schema_file` (exactly one), its origin and the
/// span to point at.
fn read_schema(
    r: &mut Reader,
    f: &Fields,
    dir: &Path,
    route: &str,
) -> Option<(serde_json::Value, String, std::ops::Range<usize>)> {
    let inline = r.string(f, "schema");
    let file = r.nonempty_string(f, "schema_file", false);
    let (text, origin, span) = match (inline, file) {
        (Some(_), Some(file)) => {
            r.error_help(
                file.span(),
                format!("both `schema` and `schema_file` are set for route {route}: expected one"),
                "keep one: `schema_file` for a schema kept in its own file",
            );
            return None;
        }
        (Some(s), None) => (s.get_ref().clone(), "inline".to_string(), s.span()),
        (None, Some(file)) => {
            let path = dir.join(file.get_ref());
            match crate::files::read_text_limited(&path, crate::files::MAX_TEXT_BYTES) {
                Ok(text) => (text, path.display().to_string(), file.span()),
                Err(e) => {
                    r.error_help(
                        file.span(),
                        format!(
                            "cannot read schema_file `{}` of route {route}: {e}",
                            path.display()
                        ),
                        "relative paths are resolved against the configuration file's directory",
                    );
                    return None;
                }
            }
        }
        (None, None) => {
            if f.get("schema").is_none() {
                r.missing(
                    f,
                    "schema_file",
                    "the path of the JSON Schema the route's answers must satisfy (or `schema` with the schema's JSON text)",
                );
            }
            return None;
        }
    };
    match serde_json::from_str(&text) {
        Ok(v) => Some((v, origin, span)),
        Err(e) => {
            r.error_help(
                span,
                format!("the JSON Schema of route {route} ({origin}) is not JSON: {e}"),
                "a JSON Schema is a JSON object, e.g. {\"type\": \"object\", \"required\": [\"name\"]}",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::diag::Source;

    fn load(routes: &str) -> Result<Vec<super::RouteSchema>, String> {
        let text = format!(
            "[[target]]\nname = \"a\"\nprovider = \"ollama\"\nbase_url = \"http://127.0.0.1:1\"\nmodel = \"m\"\nsuites = [\"core\"]\n[traffic]\ntoken = \"${{INGEST}}\"\n{routes}"
        );
        let src = Source::new("conf/modelwatch.toml", text);
        let env = |k: &str| (k == "INGEST").then(|| "0123456789abcdef0123".to_string());
        parse(src, &env)
            .map(|c| c.traffic.map(|t| t.routes).unwrap_or_default())
            .map_err(|d| crate::diag::render_all(&d))
    }

    #[test]
    fn a_route_declares_an_inline_schema_and_how_to_find_the_json() {
        let routes = load(
            "[[traffic.route]]\nname = \"/extract\"\nschema = '{\"type\": \"object\", \"required\": [\"name\"]}'\nextract = \"embedded\"\n",
        )
        .unwrap();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].route, "/extract");
        assert_eq!(routes[0].extract, crate::eval::JsonExtract::Embedded);
        let checks = routes[0].checks();
        assert!(checks.expects_json);
        let v = checks.schema.as_ref().unwrap();
        assert!(v.is_valid(&serde_json::json!({"name": "x"})));
        assert!(!v.is_valid(&serde_json::json!({})));
        assert!(load("").unwrap().is_empty());
    }

    #[test]
    fn bad_routes_are_refused_with_the_place_and_the_pointer() {
        let e = load("[[traffic.route]]\nname = \"/x\"\nschema = '{\"type\": 12}'\n").unwrap_err();
        assert!(
            e.contains("the JSON Schema of route /x (inline) does not compile: at /type: "),
            "{e}"
        );
        assert!(e.contains("conf/modelwatch.toml:11:10"), "{e}");
        let e = load("[[traffic.route]]\nname = \"/x\"\nschema = '{nope'\n").unwrap_err();
        assert!(
            e.contains("(inline) is not JSON: key must be a string"),
            "{e}"
        );
        let e = load("[[traffic.route]]\nname = \"/x\"\n").unwrap_err();
        assert!(
            e.contains("missing key `schema_file` in [[traffic.route]]"),
            "{e}"
        );
        let e =
            load("[[traffic.route]]\nname = \"/x\"\nschema_file = \"none.json\"\n").unwrap_err();
        assert!(
            e.contains("cannot read schema_file `conf/none.json` of route /x"),
            "{e}"
        );
        let e = load(
            "[[traffic.route]]\nname = \"/x\"\nschema = '{}'\n[[traffic.route]]\nname = \"/x\"\nschema = '{}'\n",
        )
        .unwrap_err();
        assert!(e.contains("route `/x` is declared twice"), "{e}");
        let e = load(
            "[[traffic.route]]\nname = \"/x\"\nschema = '{}'\nextract = \"prose\"\nshema = 1\n",
        )
        .unwrap_err();
        assert!(e.contains("unknown value \"prose\" for `extract`"), "{e}");
        assert!(
            e.contains("unknown key `shema` in [[traffic.route]]"),
            "{e}"
        );
    }
}
