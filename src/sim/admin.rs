//! Admin endpoints: read or swap the profile (a model swap), read request stats.
//! Unauthenticated: the simulator is a loopback test tool.

use super::profile::Profile;
use super::server::Shared;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// `GET /admin/profile`: the profile in force (as JSON, `api_key` masked) and its generation.
pub(super) async fn get_profile(State(shared): State<Arc<Shared>>) -> Response {
    let active = shared.active();
    axum::Json(json!({
        "generation": active.generation,
        "profile": *active.profile,
    }))
    .into_response()
}

/// `PUT /admin/profile` with a TOML body: validates, then swaps atomically. A bad profile
/// answers 400 with the located error and keeps the old one.
pub(super) async fn put_profile(State(shared): State<Arc<Shared>>, body: String) -> Response {
    match Profile::from_toml(&body) {
        Ok(profile) => {
            let models = profile.models.clone();
            let generation = shared.set_profile(profile);
            tracing::info!(generation, "simulator profile swapped");
            axum::Json(json!({ "generation": generation, "models": models })).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

/// `GET /admin/stats`: request counts by endpoint and outcome.
pub(super) async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.stats()).into_response()
}
