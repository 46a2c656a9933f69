//! Checks on configured values that end up in HTTP requests or URLs: whether the HTTP client
//! can send a value as a header (so `check-config` rejects what `run` would), and whether a URL
//! is itself a credential (so the file-permission warning covers it).

/// Upper bound of `max_response_bytes`: one answer of a target, read into memory (times its
/// `max_concurrency`).
pub(super) const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// A webhook URL whose path or query is the credential: Slack (`hooks.slack.com/services/…`),
/// Discord, Microsoft Teams, or a token in the query or the user information.
pub(super) fn secret_url(url: &str) -> bool {
    let u = url.to_ascii_lowercase();
    [
        "hooks.slack.com/services/",
        "hooks.slack.com/workflows/",
        "hooks.slack.com/triggers/",
        "discord.com/api/webhooks/",
        "discordapp.com/api/webhooks/",
        ".webhook.office.com/",
        "token=",
        "key=",
        "sig=",
    ]
    .iter()
    .any(|p| u.contains(p))
        || u.split_once("://")
            .and_then(|(_, rest)| rest.split('/').next())
            .is_some_and(|authority| authority.contains('@'))
}

/// Why `value` (sent as `Bearer <value>`) is not a valid HTTP header value, if it is not:
/// the HTTP client refuses anything but visible ASCII, space and tab.
pub(super) fn header_problem(value: &str) -> Option<String> {
    let bad = value
        .trim()
        .char_indices()
        .find(|(_, c)| !(*c == ' ' || *c == '\t' || c.is_ascii_graphic()))?;
    Some(format!(
        "character {} (U+{:04X}) at offset {} is not allowed (only visible ASCII)",
        if bad.1.is_control() {
            "control".to_string()
        } else {
            format!("'{}'", bad.1)
        },
        bad.1 as u32,
        bad.0
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_the_http_client_refuses_are_named() {
        assert_eq!(header_problem("sk-abc 123\t"), None);
        assert!(header_problem("a\nb").unwrap().contains("control"));
        assert!(header_problem("équipe").unwrap().contains("U+00E9"));
    }

    #[test]
    fn credential_urls_are_recognised() {
        assert!(secret_url("https://hooks.slack.com/services/T0/B0/x"));
        assert!(secret_url("https://discord.com/api/webhooks/1/abc"));
        assert!(secret_url("https://user:pw@hooks.example.com/x"));
        assert!(secret_url("https://h.example.com/hook?token=abc"));
        assert!(!secret_url("https://hooks.example.com/modelwatch"));
    }
}
