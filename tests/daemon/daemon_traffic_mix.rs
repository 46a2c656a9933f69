//! A change of the route mix alone, through the real daemon: the busier route's share is
//! reported as a mix shift (status, `/metrics`), while every route keeps its own refusal rate,
//! so the pooled rate rises but no quality breach or alert is raised.

use crate::daemon_traffic::{TOKEN, env};
use daemon_proc::wait_until;

use crate::daemon_proc;

/// `n` completions, `search_share_tenths` in ten on /search and the others on /support; each
/// route refuses at a fixed rate of its own: /search every 10th, /support every 50th.
fn lines(counts: &mut [u64; 2], n: usize, search_share_tenths: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let search = i % 10 < search_share_tenths;
        let (route, k, every) = if search {
            ("/search", 0, 10)
        } else {
            ("/support", 1, 50)
        };
        counts[k] += 1;
        let text = if counts[k].is_multiple_of(every) {
            "I'm sorry, but I can't help with that request."
        } else {
            "Restart the router, wait a minute, then try again."
        };
        out += &serde_json::json!({"target": "chat", "route": route, "output": text,
            "finish_reason": "stop"})
        .to_string();
        out.push('\n');
    }
    out
}

#[test]
fn a_route_mix_change_alone_is_a_mix_shift_and_no_quality_alert() {
    let env = env("");
    let mut child = env.start();
    let mut counts = [0u64; 2];
    let mut sent = 0;
    // 2,000 completions half and half, then 1,000 with nine in ten on /search.
    for (n, tenths) in [(500, 5), (500, 5), (500, 5), (500, 5), (500, 9), (500, 9)] {
        let (code, _, reply) = env.post(Some(TOKEN), lines(&mut counts, n, tenths));
        assert_eq!(code, 200, "{reply}");
        sent += n;
        wait_until("the batch to be processed", 20, || {
            env.status()["traffic"]["processed"] == sent
        });
    }
    let status = env.status();
    let mix = &status["traffic"]["mix"][0];
    assert_eq!(mix["target"], "chat", "{mix}");
    let route = |name: &str| {
        mix["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["route"] == name)
            .unwrap_or_else(|| panic!("{mix}"))
            .clone()
    };
    let search = route("/search");
    assert_eq!(search["shifted"], true, "{mix}");
    assert_eq!(search["baseline"], 0.5, "{mix}");
    assert!(search["current"].as_f64().unwrap() > 0.85, "{mix}");
    assert_eq!(route("/support")["shifted"], true, "{mix}");

    // The pooled refusal rate went up (more of the 10 % route), no route's own rate did.
    let watch = &status["traffic"]["watch"]["targets"]["chat"]["routes"];
    for r in ["/search", "/support"] {
        assert_eq!(watch[r]["monitored"], true, "{watch}");
        assert_eq!(watch[r]["breaches"], serde_json::json!([]), "{watch}");
    }
    let metrics = env.get("/metrics").1;
    assert!(
        metrics.contains("modelwatch_traffic_mix_shifted{target=\"chat\",route=\"/search\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("modelwatch_traffic_share{target=\"chat\",route=\"/search\"} 0.9"));
    // A round after the shift steps the traffic alerts: none.
    let rounds = daemon_proc::total_rounds(&env.get("/api/v1/status").1);
    wait_until("a round after the shift", 30, || {
        daemon_proc::total_rounds(&env.get("/api/v1/status").1) > rounds
    });
    let status = env.status();
    let traffic_alerts: Vec<&serde_json::Value> = status["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|a| a.to_string().contains("traffic:"))
                .collect()
        })
        .unwrap_or_default();
    assert!(traffic_alerts.is_empty(), "{traffic_alerts:?}");
    let _ = child.kill();
    let _ = child.wait();
}
