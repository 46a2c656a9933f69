//! Redaction of the traffic texts that are stored (`[traffic] store_text = true`). Texts are
//! measured as received; only the copy written to `traffic_texts` is redacted, so the readings
//! never depend on it. Two layers:
//!
//! - the daemon's own secrets (the targets' API keys, header values and URL passwords, the
//!   ingest and server tokens), replaced by the provider's [`Redactor`], which also catches a
//!   secret's beginning left before a `…` cut;
//! - credentials users paste and models repeat, by shape ([`PATTERNS`]): provider API keys
//!   (`sk-…`), AWS access keys, GitHub, GitLab and Slack tokens, JSON web tokens, bearer
//!   credentials, passwords in URLs and PEM private keys.
//!
//! Both replace with `[redacted]`.

use crate::provider::redact::{REDACTED, Redactor};
use regex::Regex;

/// Credential shapes redacted from stored traffic texts (see the module documentation).
pub const PATTERNS: &[&str] = &[
    // Provider API keys: OpenAI / Anthropic style, and generic `sk_live_` keys.
    r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}",
    r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",
    // AWS access key ids.
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    // GitHub, GitLab and Slack tokens.
    r"\bgh[pousr]_[A-Za-z0-9]{30,}",
    r"\bgithub_pat_[A-Za-z0-9_]{30,}",
    r"\bglpat-[A-Za-z0-9_-]{20,}",
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    // JSON web tokens.
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    // Bearer credentials.
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*",
    // Passwords in URLs (`scheme://user:password@host`): the password only.
    r"(?i)(?:[a-z][a-z0-9+.-]*://[^\s:/@]+:)([^\s@/]+)@",
    // PEM private keys, whole.
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
];

/// Stored instead of a text when the redactor is unavailable.
pub const REDACTED_TEXT: &str = REDACTED;

/// Redacts stored traffic texts.
#[derive(Debug, Clone)]
pub struct TextRedactor {
    known: Redactor,
    patterns: Vec<Regex>,
}

impl TextRedactor {
    /// With the daemon's secret `values` (shorter than three characters are ignored).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> TextRedactor {
        TextRedactor {
            known: Redactor::new(values),
            patterns: PATTERNS.iter().filter_map(|p| Regex::new(p).ok()).collect(),
        }
    }

    /// `text` with the known secrets and every credential shape replaced by `[redacted]`.
    pub fn apply(&self, text: &str) -> String {
        let mut out = self.known.apply(text);
        for re in &self.patterns {
            if !re.is_match(&out) {
                continue;
            }
            out = re
                .replace_all(&out, |c: &regex::Captures<'_>| match c.get(1) {
                    // Only the password of a URL: keep the scheme, user and host readable.
                    Some(password) => {
                        let whole = c.get(0).map_or("", |m| m.as_str());
                        let start = password.start() - c.get(0).map_or(0, |m| m.start());
                        format!(
                            "{}{REDACTED}{}",
                            &whole[..start],
                            &whole[start + password.as_str().len()..]
                        )
                    }
                    None => REDACTED.to_string(),
                })
                .into_owned();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_secrets_and_credential_shapes_are_redacted() {
        let r = TextRedactor::new(["gw-internal-token-77", "ab"]);
        let cases = [
            ("use sk-proj-abcdefghijklmnop1234 now", "use [redacted] now"),
            ("key AKIAIOSFODNN7EXAMPLE ok", "key [redacted] ok"),
            ("ghp_0123456789abcdefghijklmnopqrstuvwxyz", "[redacted]"),
            (
                "Authorization: Bearer abcdefghijklmnop.qrstuv",
                "Authorization: [redacted]",
            ),
            (
                "postgres://app:hunter2secret@db.internal:5432/x",
                "postgres://app:[redacted]@db.internal:5432/x",
            ),
            (
                "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
                "token [redacted] end",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
                "[redacted]",
            ),
            (
                "the gateway uses gw-internal-token-77",
                "the gateway uses [redacted]",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(r.apply(text), want, "{text}");
        }
    }

    #[test]
    fn ordinary_text_is_kept() {
        let r = TextRedactor::new(["ab"]);
        for text in [
            "Restart the router, then wait a minute (about 60 s).",
            "The sk-learn library and a task-list are fine; so is https://example.com/a:b.",
            "I'm sorry, but I can't help with that.",
        ] {
            assert_eq!(r.apply(text), text);
        }
    }
}
