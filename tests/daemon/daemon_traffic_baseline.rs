//! Traffic baselines through the real daemon: a recorded baseline is kept in the store and
//! monitored again right after a restart; `[traffic] baseline_file` gives the routes it names
//! their baseline at start; a baseline file that cannot serve stops the start with a message
//! naming the file, the line and what to do.

use crate::daemon_traffic::{TOKEN, env};
use daemon_proc::{start_piped, wait_until};

use crate::daemon_proc;

/// `n` completions of `route` with text, every 50th a refusal, as JSON lines.
fn lines(route: &str, n: usize) -> String {
    (1..=n)
        .map(|i| {
            let text = if i.is_multiple_of(50) {
                "I'm sorry, but I can't help with that request."
            } else {
                "Restart the router, wait a minute, then try again."
            };
            serde_json::json!({"target": "chat", "route": route, "output": text,
                "finish_reason": "stop"})
            .to_string()
                + "\n"
        })
        .collect()
}

fn route_watch(env: &crate::daemon_traffic::Env, route: &str) -> serde_json::Value {
    env.status()["traffic"]["watch"]["targets"]["chat"]["routes"][route].clone()
}

#[test]
fn a_recorded_baseline_survives_a_restart() {
    let env = env("");
    let mut child = env.start();
    let (code, _, reply) = env.post(Some(TOKEN), lines("/support", 200));
    assert_eq!(code, 200, "{reply}");
    wait_until("the baseline to be recorded and kept", 20, || {
        let route = route_watch(&env, "/support");
        route["monitored"] == true && route["baseline_kept"] == true
    });
    let _ = child.kill();
    let _ = child.wait();

    let mut child = env.start();
    let route = route_watch(&env, "/support");
    let log = env.log();
    assert_eq!(route["monitored"], true, "{route}\n{log}");
    assert_eq!(route["baseline"], 200, "{route}\n{log}");
    assert_eq!(route["baseline_source"], "recorded", "{route}\n{log}");
    // Monitored at once: the next completions are checked, not recorded.
    let (code, _, _) = env.post(Some(TOKEN), lines("/support", 20));
    assert_eq!(code, 200);
    wait_until("the completions to be processed", 20, || {
        env.status()["traffic"]["processed"] == 20
    });
    let route = route_watch(&env, "/support");
    assert_eq!(route["baseline"], 200, "{route}");
    assert!(
        route["readings"].as_array().is_some_and(|r| !r.is_empty()),
        "{route}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_baseline_file_serves_its_routes_from_the_start_and_a_bad_one_stops_the_start() {
    let env = env("baseline_file = \"baseline.jsonl\"");
    std::fs::write(env.dir.path().join("baseline.jsonl"), lines("/faq", 40)).unwrap();
    let mut child = env.start();
    let route = route_watch(&env, "/faq");
    assert_eq!(route["monitored"], true, "{route}");
    assert_eq!(route["baseline"], 40, "{route}");
    assert_eq!(route["baseline_source"], "file", "{route}");
    let _ = child.kill();
    let _ = child.wait();

    // Too few completions for a route, and a line without text.
    let bad = lines("/faq", 40)
        + &lines("/rare", 3)
        + "{\"target\":\"chat\",\"route\":\"/faq\",\"output_chars\":12}\n";
    std::fs::write(env.dir.path().join("baseline.jsonl"), bad).unwrap();
    let (mut child, log) = start_piped(&env.cfg);
    let mut exited = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let Some(status) = exited else {
        let _ = child.kill();
        panic!("the daemon started with a bad baseline file");
    };
    assert!(!status.success());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = log.lock().unwrap().clone();
    assert!(log.contains("[traffic] baseline_file"), "{log}");
    assert!(
        log.contains("line 44: /output: missing: a baseline needs the completion's text"),
        "{log}"
    );
    assert!(
        log.contains("route /rare of chat has 3 completions; at least 30 are needed"),
        "{log}"
    );
}
