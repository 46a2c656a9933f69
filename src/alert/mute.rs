//! Muting: silences (ad hoc, until a time) and maintenance windows (daily, from config).
//! A muted notification is recorded but not delivered; the alert state changes as usual.

use super::AlertKey;
pub use crate::config::MaintenanceWindow;
use serde::{Deserialize, Serialize};

#[cfg(test)]
const DAY_MS: i64 = 86_400_000;

/// An ad-hoc silence of a target (all its alerts, or one metric) until a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: i64,
    pub target: String,
    /// `None`: every alert of the target.
    pub metric: Option<String>,
    pub created_ms: i64,
    pub until_ms: i64,
    pub reason: String,
}

impl Silence {
    pub fn covers(&self, key: &AlertKey, now_ms: i64) -> bool {
        now_ms < self.until_ms
            && self.target == key.target
            && self.metric.as_ref().is_none_or(|m| *m == key.metric)
    }
}

/// Whether notifications of `key` are muted at `now_ms`.
pub fn is_muted(
    key: &AlertKey,
    now_ms: i64,
    silences: &[Silence],
    windows: &[MaintenanceWindow],
) -> bool {
    silences.iter().any(|s| s.covers(key, now_ms))
        || windows.iter().any(|w| w.covers(&key.target, now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silences_cover_their_target_metric_and_time() {
        let s = Silence {
            id: 1,
            target: "a".into(),
            metric: None,
            created_ms: 0,
            until_ms: 100,
            reason: String::new(),
        };
        let key = AlertKey::new("a", "refusal_rate");
        assert!(is_muted(&key, 99, std::slice::from_ref(&s), &[]));
        assert!(!is_muted(&key, 100, std::slice::from_ref(&s), &[]));
        assert!(!is_muted(
            &AlertKey::new("b", "refusal_rate"),
            50,
            std::slice::from_ref(&s),
            &[]
        ));
        let one = Silence {
            metric: Some("empty_rate".into()),
            ..s
        };
        assert!(!is_muted(&key, 50, std::slice::from_ref(&one), &[]));
        assert!(is_muted(&AlertKey::new("a", "empty_rate"), 50, &[one], &[]));
    }

    #[test]
    fn daily_windows_cross_midnight() {
        // 23:30 UTC for one hour.
        let w = MaintenanceWindow {
            start_minute: 23 * 60 + 30,
            duration_ms: 3_600_000,
            targets: vec![],
        };
        let day = 20 * DAY_MS;
        assert!(w.covers("x", day + (23 * 60 + 45) * 60_000));
        assert!(w.covers("x", day + DAY_MS + 15 * 60_000));
        assert!(!w.covers("x", day + DAY_MS + 31 * 60_000));
        assert!(!w.covers("x", day + 12 * 3_600_000));
        let only = MaintenanceWindow {
            targets: vec!["y".into()],
            ..w
        };
        assert!(!only.covers("x", day + (23 * 60 + 45) * 60_000));
        assert!(only.covers("y", day + (23 * 60 + 45) * 60_000));
    }
}
