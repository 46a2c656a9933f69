//! Routes that declare a JSON Schema (`[[traffic.route]]`): their compiled checks, looked up
//! for every completion measured, and replaced at a reload. A route whose schema changed starts
//! its baseline again (through [`super::Watch::route_changed`]), so outcomes judged against two
//! schemas are never compared.

use super::Traffic;
use crate::config::traffic::RouteSchema;
use crate::eval::CompiledChecks;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Per route: what was declared and its compiled checks.
pub type RouteChecks = BTreeMap<String, (RouteSchema, Arc<CompiledChecks>)>;

/// The declared routes by name, with the checks the configuration compiled at load.
pub fn by_route(routes: &[RouteSchema]) -> RouteChecks {
    routes
        .iter()
        .map(|r| (r.route.clone(), (r.clone(), r.checks().clone())))
        .collect()
}

/// The routes declared in `old` or `new` whose declaration differs (added, removed, changed).
fn changed(old: &RouteChecks, new: &RouteChecks) -> Vec<String> {
    let mut out: Vec<String> = old
        .iter()
        .filter(|(route, (decl, _))| new.get(*route).is_none_or(|(d, _)| d != decl))
        .map(|(route, _)| route.clone())
        .collect();
    out.extend(
        new.keys()
            .filter(|route| !old.contains_key(*route))
            .cloned(),
    );
    out
}

impl Traffic {
    /// The checks of `route`, when it declares a schema.
    pub(super) fn route_checks(&self, route: &str) -> Option<Arc<CompiledChecks>> {
        let routes = self.routes.read().ok()?;
        routes.get(route).map(|(_, c)| c.clone())
    }

    /// Applies the routes of a reloaded configuration; the routes whose declaration changed
    /// start their baselines again. Returns those routes.
    pub fn set_routes(&self, routes: &[RouteSchema]) -> Result<Vec<String>, String> {
        let new = by_route(routes);
        let new_digests: BTreeMap<String, String> = routes
            .iter()
            .map(|r| (r.route.clone(), r.digest()))
            .collect();
        let changed = match self.routes.write() {
            Ok(mut current) => {
                let changed = changed(&current, &new);
                *current = new;
                changed
            }
            Err(_) => return Err("the traffic routes are unavailable".into()),
        };
        if !changed.is_empty()
            && let Ok(mut w) = self.watch.lock()
            && let Some(w) = w.as_mut()
        {
            for route in &changed {
                let digest = new_digests.get(route).map(String::as_str);
                w.route_changed(route, digest);
            }
        }
        Ok(changed)
    }

    /// The routes that declare a schema.
    pub fn schema_routes(&self) -> Vec<String> {
        self.routes
            .read()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Each declaring route's [`RouteSchema::digest`].
    pub fn schema_digests(&self) -> BTreeMap<String, String> {
        self.routes
            .read()
            .map(|r| {
                r.iter()
                    .map(|(k, (d, _))| (k.clone(), d.digest()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::JsonExtract;

    fn route(name: &str, schema: serde_json::Value) -> RouteSchema {
        RouteSchema::new(name.into(), schema, JsonExtract::Whole, "inline".into()).unwrap()
    }

    #[test]
    fn changed_names_added_removed_and_edited_routes() {
        let a = by_route(&[
            route("/a", serde_json::json!({"type": "object"})),
            route("/b", serde_json::json!({})),
        ]);
        let b = by_route(&[
            route("/a", serde_json::json!({"type": "array"})),
            route("/c", serde_json::json!({})),
        ]);
        assert_eq!(changed(&a, &b), vec!["/a", "/b", "/c"]);
        assert!(changed(&a, &a.clone()).is_empty());
        let e = RouteSchema::new(
            "/x".into(),
            serde_json::json!({"type": 12}),
            JsonExtract::Whole,
            "inline".into(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("json_schema (inline): invalid schema: at /type"),
            "{e}"
        );
    }
}
