//! Removing a target's `pin` ends its `unapproved_model` alert: through a reload, and across a
//! restart with the pin gone from the configuration. The resolution keeps the firing's incident
//! key, so a sink closes what it opened.

use crate::sinks_common;

use modelwatch::alert::Status;
use modelwatch::config::Loaded;
use modelwatch::daemon::{self, Options, state::Shared};
use modelwatch::store::Store;
use sinks_common::{fake_clients, loaded, poll, run_daemon};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use tokio::sync::mpsc;

/// The `unapproved_model` alert of target `a` as the daemon shows it: (status, incident).
fn unapproved(shared: &Shared) -> Option<(Status, u64)> {
    shared
        .status()
        .alerts
        .iter()
        .find(|a| a.key.target == "a" && a.key.metric == "unapproved_model")
        .map(|a| (a.status, a.incident))
}

fn options() -> Options {
    Options {
        clients: fake_clients(Arc::new(AtomicUsize::new(0))),
        ..Options::default()
    }
}

/// Runs the daemon on `first` until `a`'s `unapproved_model` alert fires, then reloads `second`
/// and waits for the alert to resolve with the same incident.
async fn fire_then_reload(db: &std::path::Path, first: Loaded, second: Loaded) {
    let shared = Arc::new(Shared::default());
    let (tx, rx) = mpsc::channel(1);
    let s = shared.clone();
    run_daemon(first, db, options(), &shared, rx, async move {
        poll(20, || match unapproved(&s) {
            Some((Status::Firing, 1)) => Ok(()),
            other => Err(format!("waiting for the alert to fire: {other:?}")),
        })
        .await;
        tx.send(daemon::Command::Reload(Box::new(second)))
            .await
            .unwrap();
        poll(20, || match unapproved(&s) {
            Some((Status::Resolved, 1)) => Ok(()),
            other => Err(format!("waiting for the alert to resolve: {other:?}")),
        })
        .await;
    })
    .await;
}

/// Runs the daemon on `first` until `a`'s `unapproved_model` alert fires and stops it.
async fn fire_and_stop(db: &std::path::Path, first: Loaded) {
    let shared = Arc::new(Shared::default());
    let (_tx, rx) = mpsc::channel(1);
    let s = shared.clone();
    run_daemon(first, db, options(), &shared, rx, async move {
        poll(20, || match unapproved(&s) {
            Some((Status::Firing, 1)) => Ok(()),
            other => Err(format!("waiting for the alert to fire: {other:?}")),
        })
        .await;
    })
    .await;
}

/// `a`'s `unapproved_model` alert as stored: (status, incident).
fn stored_unapproved(db: &std::path::Path) -> Option<(Status, u64)> {
    Store::open(db)
        .unwrap()
        .alert_states()
        .unwrap()
        .into_iter()
        .find(|s| s.key.target == "a" && s.key.metric == "unapproved_model")
        .map(|s| (s.status, s.incident))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_pin_by_reload_resolves_the_alert() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let pinned = loaded(dir.path(), &["a"], "", true);
    let unpinned = loaded(dir.path(), &["a"], "", false);
    fire_then_reload(&db, pinned, unpinned).await;
    // Stored as resolved too: a restart does not bring it back.
    assert_eq!(stored_unapproved(&db).map(|s| s.0), Some(Status::Resolved));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_without_the_pin_resolves_the_alert() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    fire_and_stop(&db, loaded(dir.path(), &["a"], "", true)).await;

    let shared = Arc::new(Shared::default());
    let (_tx, rx) = mpsc::channel(1);
    let s = shared.clone();
    run_daemon(
        loaded(dir.path(), &["a"], "", false),
        &db,
        options(),
        &shared,
        rx,
        async move {
            poll(20, || match unapproved(&s) {
                Some((Status::Resolved, 1)) => Ok(()),
                other => Err(format!("waiting for the alert to resolve: {other:?}")),
            })
            .await;
        },
    )
    .await;
    let events = Store::open(&db).unwrap();
    let st = events.alert_states().unwrap();
    assert!(
        st.iter()
            .all(|s| s.key.metric != "unapproved_model" || s.status == Status::Resolved),
        "{st:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_target_by_reload_resolves_its_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let both = loaded(dir.path(), &["a", "b"], "", true);
    let only_b = loaded(dir.path(), &["b"], "", true);
    fire_then_reload(&db, both, only_b).await;
    assert_eq!(stored_unapproved(&db), Some((Status::Resolved, 1)));
    // The resolution was queued for the sinks with the firing's incident, and says why.
    let events = Store::open(&db).unwrap().events(None, 0).unwrap();
    let resolved = events
        .iter()
        .find(|e| e.kind == "alert" && e.payload["kind"] == "resolved" && e.target == "a")
        .unwrap_or_else(|| panic!("no resolved event for a: {events:?}"));
    assert!(
        resolved.payload["evidence"]["summary"]
            .as_str()
            .unwrap()
            .contains("no longer in the configuration"),
        "{resolved:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_without_the_target_resolves_its_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    fire_and_stop(&db, loaded(dir.path(), &["a", "b"], "", true)).await;
    assert_eq!(stored_unapproved(&db), Some((Status::Firing, 1)));
    let shared = Arc::new(Shared::default());
    let (_tx, rx) = mpsc::channel(1);
    run_daemon(
        loaded(dir.path(), &["b"], "", true),
        &db,
        options(),
        &shared,
        rx,
        async {},
    )
    .await;
    assert_eq!(stored_unapproved(&db), Some((Status::Resolved, 1)));
}
