use super::*;

#[test]
fn full_jitter_stays_under_the_growing_cap_and_is_deterministic() {
    let base = Duration::from_millis(100);
    let max = Duration::from_millis(1000);
    let mut a = Rng::new(9);
    let mut b = Rng::new(9);
    for retry in 1..=12 {
        let cap = (base * (1 << (retry - 1).min(20))).min(max);
        let d = full_jitter(&mut a, base, max, retry);
        assert!(d < cap, "retry {retry}: {d:?} >= {cap:?}");
        assert_eq!(d, full_jitter(&mut b, base, max, retry));
    }
    // Jitter spreads the delays: 200 draws at the cap are not all alike.
    let mut r = Rng::new(1);
    let draws: Vec<Duration> = (0..200)
        .map(|_| full_jitter(&mut r, base, max, 8))
        .collect();
    let below_half = draws.iter().filter(|d| **d < max / 2).count();
    assert!((60..140).contains(&below_half), "{below_half}");
}

#[test]
fn error_bodies_are_explained_briefly() {
    let none = Redactor::default();
    assert_eq!(
        explain_error_body(
            br#"{"error":{"message":"model not found","type":"x"}}"#,
            &none
        ),
        "model not found"
    );
    assert_eq!(
        explain_error_body(
            br#"{"error":"model 'x' not found, try pulling it first"}"#,
            &none
        ),
        "model 'x' not found, try pulling it first"
    );
    assert_eq!(explain_error_body(b"Bad\ngateway", &none), "Bad gateway");
    let long = "x".repeat(1000);
    let short = explain_error_body(long.as_bytes(), &none);
    assert_eq!(short.chars().count(), ERROR_SNIPPET_CHARS + 1);
}

#[test]
fn a_secret_crossing_the_cut_is_redacted_before_shortening() {
    let key = "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL";
    let r = Redactor::new([key]);
    for offset in 0..ERROR_SNIPPET_CHARS + 10 {
        let body = format!("{}{key}{}", "x".repeat(offset), "y".repeat(400));
        let short = explain_error_body(body.as_bytes(), &r);
        for w in key.as_bytes().windows(6) {
            let w = std::str::from_utf8(w).unwrap();
            assert!(!short.contains(w), "offset {offset}: {w} kept in {short}");
        }
    }
}

#[test]
fn base_urls_are_checked_and_normalised() {
    assert_eq!(
        parse_base_url("http://127.0.0.1:11434").unwrap().as_str(),
        "http://127.0.0.1:11434/"
    );
    assert_eq!(
        parse_base_url("https://h/proxy/v1?x=1").unwrap().as_str(),
        "https://h/proxy/v1/"
    );
    assert!(matches!(
        parse_base_url("ftp://h"),
        Err(ProviderError::BaseUrl { .. })
    ));
    assert!(matches!(
        parse_base_url("not a url"),
        Err(ProviderError::BaseUrl { .. })
    ));
}

#[tokio::test]
async fn cancel_signal_resolves_only_after_cancel() {
    let (trigger, signal) = CancelSignal::pair();
    assert!(!signal.is_cancelled());
    let waiting = tokio::time::timeout(Duration::from_millis(20), signal.wait()).await;
    assert!(waiting.is_err(), "resolved before cancel");
    trigger.cancel();
    assert!(signal.is_cancelled());
    tokio::time::timeout(Duration::from_millis(200), signal.wait())
        .await
        .expect("resolves after cancel");
}
