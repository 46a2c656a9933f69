//! Daemon settings of the configuration: `[daemon]`, `[alerts]` (reminders, maintenance
//! windows), and the daemon keys of a `[[target]]` (`pin`, `jitter`,
//! `false_alarm_interval`, `max_requests_per_second`, `round_deadline`, `behaviour_check`).
//!
//! Kept apart from the rest of the configuration so each concern reads its own keys; the
//! format is documented in `docs/daemon.md`.

use super::{duration, positive_duration};
use crate::diag::fields::{Fields, Reader};
use std::time::Duration;
use toml::de::DeValue;

pub(super) const DAEMON_KEYS: &[&str] = &["max_concurrency", "shutdown_grace"];
pub(super) const ALERTS_KEYS: &[&str] = &[
    "reminder",
    "resolve_after",
    "maintenance",
    "webhook",
    "sentry",
];
const WINDOW_KEYS: &[&str] = &["start", "duration", "targets"];
const PIN_KEYS: &[&str] = &[
    "model",
    "approved_by",
    "approved_on",
    "license_reviewed",
    "license",
    "license_sha256",
];

/// `[daemon]`: limits of the whole process.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSettings {
    /// Requests in flight at once across all targets.
    pub max_concurrency: u32,
    /// On SIGTERM, how long in-flight requests may finish before they are abandoned.
    pub shutdown_grace: Duration,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings {
            max_concurrency: 16,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// `[alerts]`: the alert lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Alerts {
    /// Repeat a firing alert this often; `None` (`"0s"`) never.
    pub reminder: Option<Duration>,
    /// Consecutive clear rounds needed to resolve.
    pub resolve_after: u32,
    /// Daily windows (UTC) during which notifications are muted but recorded.
    pub maintenance: Vec<MaintenanceWindow>,
    /// `[alerts.webhook]`.
    pub webhook: Option<super::sinks::Webhook>,
    /// `[alerts.sentry]`.
    pub sentry: Option<super::sinks::Sentry>,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            reminder: Some(Duration::from_secs(4 * 3600)),
            resolve_after: 1,
            maintenance: Vec::new(),
            webhook: None,
            sentry: None,
        }
    }
}

/// The approved model of a target: serving anything else raises an alert at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    /// A digest (as in the fingerprint's `digest`) or a fingerprint id.
    pub model: String,
    pub approved_by: Option<String>,
    /// `YYYY-MM-DD`: the start of the review age (`[policy] review_after`).
    pub approved_on: Option<String>,
    pub license_reviewed: bool,
    /// The license identifier approved with the model (lower case).
    pub license: Option<String>,
    /// SHA-256 (hex, lower case) of the approved license text.
    pub license_sha256: Option<String>,
}

impl Pin {
    /// Whether a served fingerprint (its id and digest) is the approved one.
    pub fn matches(&self, fingerprint_id: &str, digest: Option<&str>) -> bool {
        let want = self.model.trim();
        let strip = |s: &str| s.strip_prefix("sha256:").unwrap_or(s).to_string();
        want == fingerprint_id || digest.is_some_and(|d| strip(d) == strip(want))
    }
}

/// The daemon settings of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetDaemon {
    pub pin: Option<Pin>,
    /// Random delay added to each interval, uniform in [0, jitter]. Default: a tenth of the
    /// interval.
    pub jitter: Duration,
    /// Mean time between false alarms of the continuous monitor, split across metrics.
    pub false_alarm_interval: Duration,
    /// Request rate limit against the target (token bucket); `None`: unlimited.
    pub max_requests_per_second: Option<f64>,
    /// A round still running after this long is cut off. Default: the interval.
    pub round_deadline: Duration,
    /// Shortest time between two behaviour checks (is it still the baseline's model?);
    /// `None`: off. Default: 6 hours.
    pub behaviour_check: Option<Duration>,
}

pub(super) fn read_daemon(r: &mut Reader, top: &Fields) -> Option<DaemonSettings> {
    let mut d = DaemonSettings::default();
    let Some(v) = top.get("daemon") else {
        return Some(d);
    };
    let f = r.table_value(v, "[daemon]", DAEMON_KEYS)?;
    if let Some(n) = r.uint(&f, "max_concurrency", 1, 4096) {
        d.max_concurrency = *n.get_ref() as u32;
    }
    if let Some(g) = positive_duration(r, &f, "shutdown_grace") {
        d.shutdown_grace = g;
    }
    Some(d)
}

pub(super) fn read_alerts(r: &mut Reader, top: &Fields, dir: &std::path::Path) -> Option<Alerts> {
    let mut a = Alerts::default();
    let Some(v) = top.get("alerts") else {
        return Some(a);
    };
    let f = r.table_value(v, "[alerts]", ALERTS_KEYS)?;
    if let Some(d) = duration(r, &f, "reminder") {
        a.reminder = (!d.is_zero()).then_some(d);
    }
    if let Some(n) = r.uint(&f, "resolve_after", 1, 1000) {
        a.resolve_after = *n.get_ref() as u32;
    }
    let mut ok = true;
    if let Some(v) = f.get("webhook") {
        a.webhook = super::sinks::read_webhook(r, v, dir);
        ok &= a.webhook.is_some();
    }
    if let Some(v) = f.get("sentry") {
        a.sentry = super::sinks::read_sentry(r, v, dir);
        ok &= a.sentry.is_some();
    }
    if !ok {
        return None;
    }
    if let Some(items) = r.array(&f, "maintenance", "an array of tables") {
        for item in items.iter() {
            let DeValue::Table(t) = item.get_ref() else {
                r.error(
                    item.span(),
                    "wrong type for an [[alerts.maintenance]] entry: expected a table",
                );
                continue;
            };
            let wf = r.fields(t, item.span(), "[[alerts.maintenance]]", WINDOW_KEYS);
            let start = r.required_string(&wf, "start").and_then(|s| {
                let parsed = parse_hhmm(s.get_ref());
                if parsed.is_none() {
                    r.error_help(
                        s.span(),
                        format!("invalid `start` `{}`: expected HH:MM (UTC)", s.get_ref()),
                        "e.g. \"02:30\"; windows repeat daily in UTC",
                    );
                }
                parsed
            });
            let length = match wf.get("duration") {
                None => {
                    r.missing(&wf, "duration", "a duration such as \"1h\"");
                    None
                }
                Some(_) => positive_duration(r, &wf, "duration"),
            };
            let targets = r
                .strings(&wf, "targets")
                .map(|v| v.into_iter().map(|s| s.into_inner()).collect())
                .unwrap_or_default();
            if let (Some(start_minute), Some(length)) = (start, length) {
                a.maintenance.push(MaintenanceWindow {
                    start_minute,
                    duration_ms: length.as_millis().min(i64::MAX as u128) as i64,
                    targets,
                });
            }
        }
    }
    Some(a)
}

pub(super) fn read_target_daemon(
    r: &mut Reader,
    f: &Fields,
    interval: Duration,
) -> Option<TargetDaemon> {
    let before = r.diags.len();
    let pin = match f.get("pin") {
        None => None,
        Some(v) => match v.get_ref() {
            DeValue::String(_) => r.nonempty_string(f, "pin", false).map(|s| Pin {
                model: s.into_inner(),
                approved_by: None,
                approved_on: None,
                license_reviewed: false,
                license: None,
                license_sha256: None,
            }),
            _ => r.table_value(v, "[target.pin]", PIN_KEYS).and_then(|pf| {
                let model = r.nonempty_string(&pf, "model", true)?;
                Some(Pin {
                    model: model.into_inner(),
                    approved_by: r.string(&pf, "approved_by").map(|s| s.into_inner()),
                    approved_on: read_date(r, &pf, "approved_on"),
                    license_reviewed: r
                        .bool(&pf, "license_reviewed")
                        .map(|b| *b.get_ref())
                        .unwrap_or(false),
                    license: r
                        .nonempty_string(&pf, "license", false)
                        .map(|s| s.into_inner().trim().to_lowercase()),
                    license_sha256: read_sha256(r, &pf, "license_sha256"),
                })
            }),
        },
    };
    let jitter = duration(r, f, "jitter").unwrap_or(interval / 10);
    if jitter > interval
        && let Some(v) = f.get("jitter")
    {
        r.error_help(
            v.span(),
            "`jitter` is longer than `interval`: expected at most the interval",
            "jitter spreads rounds out; a tenth of the interval is the default",
        );
    }
    let false_alarm_interval =
        positive_duration(r, f, "false_alarm_interval").unwrap_or(Duration::from_secs(90 * 86_400));
    if false_alarm_interval < interval.saturating_mul(10)
        && let Some(v) = f.get("false_alarm_interval")
    {
        r.error_help(
            v.span(),
            "`false_alarm_interval` is shorter than ten intervals: expected a long horizon such as \"90d\"",
            "this is the mean time between false alarms of the continuous monitor",
        );
    }
    let max_requests_per_second = r
        .number(f, "max_requests_per_second", 0.001, 100_000.0)
        .map(|v| *v.get_ref());
    let round_deadline = positive_duration(r, f, "round_deadline").unwrap_or(interval);
    let behaviour_check = match f.get("behaviour_check") {
        Some(v) if v.get_ref().as_str() == Some("off") => None,
        _ => Some(
            positive_duration(r, f, "behaviour_check").unwrap_or(Duration::from_secs(6 * 3600)),
        ),
    };
    if behaviour_check.is_some_and(|d| d < Duration::from_secs(3 * 3600))
        && let Some(v) = f.get("behaviour_check")
    {
        r.error_help(
            v.span(),
            "`behaviour_check` is shorter than 3h: expected \"off\" or a duration of at least \"3h\"",
            "the 0.5 % false-flag budget of 30 days is split over the checks; more than 240 \
             checks leave each too small a share to test in a few seconds",
        );
    }
    if r.diags.len() > before {
        return None;
    }
    Some(TargetDaemon {
        pin,
        jitter,
        false_alarm_interval,
        max_requests_per_second,
        round_deadline,
        behaviour_check,
    })
}

/// A `YYYY-MM-DD` date, checked.
fn read_date(r: &mut Reader, f: &Fields, key: &str) -> Option<String> {
    let s = r.string(f, key)?;
    if super::policy::parse_date(s.get_ref().trim()).is_none() {
        r.error_help(
            s.span(),
            format!(
                "invalid `{key}` `{}`: expected a date YYYY-MM-DD",
                s.get_ref()
            ),
            "e.g. \"2026-11-01\"; the review age counts from it",
        );
        return None;
    }
    Some(s.get_ref().trim().to_string())
}

/// 64 hex digits (a SHA-256), lower-cased.
fn read_sha256(r: &mut Reader, f: &Fields, key: &str) -> Option<String> {
    let s = r.string(f, key)?;
    let v = s.get_ref().trim().to_lowercase();
    if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        r.error_help(
            s.span(),
            format!("invalid `{key}`: expected 64 hex digits (a SHA-256 of the license text)"),
            "`modelwatch inventory --format json` shows the served text's hash as license_sha256",
        );
        return None;
    }
    Some(v)
}

/// `"HH:MM"` → minutes after midnight.
fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

const DAY_MS: i64 = 86_400_000;

/// A daily maintenance window in UTC: `start` minutes after midnight, lasting `duration_ms`
/// (may cross midnight), for some targets (empty: all).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MaintenanceWindow {
    pub start_minute: u32,
    pub duration_ms: i64,
    pub targets: Vec<String>,
}

impl MaintenanceWindow {
    pub fn covers(&self, target: &str, now_ms: i64) -> bool {
        if !self.targets.is_empty() && !self.targets.iter().any(|t| t == target) {
            return false;
        }
        let start = i64::from(self.start_minute) * 60_000;
        let into_day = now_ms.rem_euclid(DAY_MS);
        // Time since the most recent start (today's or yesterday's).
        let since = (into_day - start).rem_euclid(DAY_MS);
        since < self.duration_ms.min(DAY_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hhmm() {
        assert_eq!(parse_hhmm("02:30"), Some(150));
        assert_eq!(parse_hhmm("23:59"), Some(1439));
        assert_eq!(parse_hhmm("24:00"), None);
        assert_eq!(parse_hhmm("2:30"), None);
    }

    #[test]
    fn pins_match_digest_or_fingerprint() {
        let p = Pin {
            model: "sha256:abc".into(),
            approved_by: None,
            approved_on: None,
            license_reviewed: true,
            license: None,
            license_sha256: None,
        };
        assert!(p.matches("ffff", Some("abc")));
        assert!(p.matches("ffff", Some("sha256:abc")));
        assert!(!p.matches("ffff", Some("abd")));
        assert!(!p.matches("ffff", None));
        let id = Pin {
            model: "0123456789abcdef".into(),
            ..p
        };
        assert!(id.matches("0123456789abcdef", None));
    }
}
