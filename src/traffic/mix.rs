//! The route mix of each target: which share of its completions each route receives, in a
//! baseline (its first [`MIX_BASELINE`] completions) and in the most recent [`MIX_WINDOW`]. A
//! route whose share moved by at least [`MIX_SHIFT`] (absolute) with a two-proportion z above
//! [`MIX_Z`] is a **mix shift**: reported as such (status, `modelwatch_traffic_share`, an info
//! log), never as a quality change — quality is judged per route against the route's own
//! baseline, so a busier route never reads as a worse model. Pure: routes in, shares out.

use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// Completions of a target that make its baseline mix.
pub const MIX_BASELINE: usize = 1000;
/// Most recent completions the current mix is computed over.
pub const MIX_WINDOW: usize = 1000;
/// Smallest change of a route's share (absolute, 0–1) reported as a shift.
pub const MIX_SHIFT: f64 = 0.10;
/// Two-proportion z a change must exceed (two-sided p < 0.001), so that noise in a full window
/// is never reported.
pub const MIX_Z: f64 = 3.29;

/// One target's mix.
#[derive(Debug, Clone, Default)]
pub struct Mix {
    baseline: BTreeMap<String, u64>,
    baseline_total: u64,
    window: VecDeque<String>,
    recent: BTreeMap<String, u64>,
    /// Routes currently shifted.
    shifted: BTreeMap<String, (f64, f64)>,
}

/// A route's share, before and now.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RouteShare {
    pub route: String,
    /// Share in the baseline mix (`None` while it is being recorded).
    pub baseline: Option<f64>,
    /// Share in the most recent completions.
    pub current: f64,
    /// The change is a mix shift.
    pub shifted: bool,
}

/// The `traffic.mix` entry of a target in the status.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MixStatus {
    pub target: String,
    /// Completions in the baseline mix so far (complete at [`MIX_BASELINE`]).
    pub baseline_completions: u64,
    /// Completions the current shares are computed over.
    pub window_completions: usize,
    pub routes: Vec<RouteShare>,
}

/// A route's share that started or stopped being a shift.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftChange {
    pub route: String,
    pub baseline: f64,
    pub current: f64,
    pub started: bool,
}

impl Mix {
    /// Counts one completion on `route`.
    pub fn observe(&mut self, route: &str) {
        if self.baseline_total < MIX_BASELINE as u64 {
            *self.baseline.entry(route.to_string()).or_default() += 1;
            self.baseline_total += 1;
        }
        self.window.push_back(route.to_string());
        *self.recent.entry(route.to_string()).or_default() += 1;
        if self.window.len() > MIX_WINDOW
            && let Some(old) = self.window.pop_front()
            && let Some(n) = self.recent.get_mut(&old)
        {
            *n -= 1;
            if *n == 0 {
                self.recent.remove(&old);
            }
        }
    }

    /// Re-evaluates which routes are shifted; the changes since the last evaluation.
    pub fn evaluate(&mut self) -> Vec<ShiftChange> {
        let mut changes = Vec::new();
        let now: BTreeMap<String, (f64, f64)> = self
            .shares()
            .into_iter()
            .filter_map(|(route, b, c)| {
                let b = b?;
                shifted(b, self.baseline_total, c, self.window.len()).then_some((route, (b, c)))
            })
            .collect();
        for (route, (b, c)) in &now {
            if !self.shifted.contains_key(route) {
                changes.push(ShiftChange {
                    route: route.clone(),
                    baseline: *b,
                    current: *c,
                    started: true,
                });
            }
        }
        for (route, (b, _)) in &self.shifted {
            if !now.contains_key(route) {
                let current = self.share_now(route);
                changes.push(ShiftChange {
                    route: route.clone(),
                    baseline: *b,
                    current,
                    started: false,
                });
            }
        }
        self.shifted = now;
        changes
    }

    fn share_now(&self, route: &str) -> f64 {
        let n = self.window.len().max(1) as f64;
        self.recent.get(route).copied().unwrap_or(0) as f64 / n
    }

    /// Every route seen: its baseline share (once the baseline is complete) and current share.
    fn shares(&self) -> Vec<(String, Option<f64>, f64)> {
        let complete = self.baseline_total >= MIX_BASELINE as u64;
        let mut routes: Vec<&String> = self.baseline.keys().chain(self.recent.keys()).collect();
        routes.sort();
        routes.dedup();
        routes
            .into_iter()
            .map(|r| {
                let b = complete.then(|| {
                    self.baseline.get(r).copied().unwrap_or(0) as f64 / self.baseline_total as f64
                });
                (r.clone(), b, self.share_now(r))
            })
            .collect()
    }

    pub fn status(&self, target: &str) -> MixStatus {
        MixStatus {
            target: target.to_string(),
            baseline_completions: self.baseline_total,
            window_completions: self.window.len(),
            routes: self
                .shares()
                .into_iter()
                .map(|(route, baseline, current)| RouteShare {
                    shifted: self.shifted.contains_key(&route),
                    route,
                    baseline,
                    current,
                })
                .collect(),
        }
    }
}

/// A share that moved from `b` (over `nb` completions) to `c` (over `nc`) by at least
/// [`MIX_SHIFT`] with a pooled two-proportion z above [`MIX_Z`].
fn shifted(b: f64, nb: u64, c: f64, nc: usize) -> bool {
    if (c - b).abs() < MIX_SHIFT || nb == 0 || nc == 0 {
        return false;
    }
    let (nb, nc) = (nb as f64, nc as f64);
    let p = (b * nb + c * nc) / (nb + nc);
    let se = (p * (1.0 - p) * (1.0 / nb + 1.0 / nc)).sqrt();
    se > 0.0 && ((c - b).abs() / se) > MIX_Z
}

/// "the share of route /search of chat moved 50 % → 90 % of its traffic".
pub fn describe(target: &str, c: &ShiftChange) -> String {
    if c.started {
        format!(
            "traffic mix shift: route {} of {target} went from {:.0} % to {:.0} % of the target's completions (a change of what users ask, not of the model; each route keeps its own baseline)",
            c.route,
            c.baseline * 100.0,
            c.current * 100.0
        )
    } else {
        format!(
            "traffic mix: route {} of {target} is back near its baseline share ({:.0} %, now {:.0} %)",
            c.route,
            c.baseline * 100.0,
            c.current * 100.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn feed(mix: &mut Mix, rng: &mut Rng, n: usize, search_share: f64) {
        for _ in 0..n {
            mix.observe(if rng.f64() < search_share {
                "/search"
            } else {
                "/support"
            });
        }
    }

    #[test]
    fn a_steady_mix_is_never_a_shift_and_a_moved_share_is() {
        let mut rng = Rng::new(11);
        let mut mix = Mix::default();
        for _ in 0..50 {
            feed(&mut mix, &mut rng, 200, 0.5);
            assert!(mix.evaluate().is_empty());
        }
        let st = mix.status("chat");
        assert_eq!(st.baseline_completions, MIX_BASELINE as u64);
        assert!(st.routes.iter().all(|r| !r.shifted));
        feed(&mut mix, &mut rng, MIX_WINDOW, 0.9);
        let changes = mix.evaluate();
        assert_eq!(changes.len(), 2, "{changes:?}");
        let search = changes.iter().find(|c| c.route == "/search").unwrap();
        assert!(search.started && (search.current - 0.9).abs() < 0.05);
        assert!((search.baseline - 0.5).abs() < 0.05, "{search:?}");
        let text = describe("chat", search);
        assert!(
            text.starts_with("traffic mix shift: route /search of chat went from ")
                && text.contains("not of the model"),
            "{text}"
        );
        assert!(mix.evaluate().is_empty(), "a shift is reported once");
        feed(&mut mix, &mut rng, MIX_WINDOW, 0.5);
        let back = mix.evaluate();
        assert!(back.iter().all(|c| !c.started) && back.len() == 2);
    }

    #[test]
    fn a_small_or_noisy_move_is_not_a_shift() {
        assert!(!shifted(0.50, 1000, 0.55, 1000), "below the 10-point floor");
        assert!(!shifted(0.50, 1000, 0.62, 20), "too few recent completions");
        assert!(shifted(0.50, 1000, 0.62, 1000));
    }
}
