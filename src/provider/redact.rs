//! Keeps a target's secrets (API key, header values, URL password) out of everything a model
//! server's answer can reach: error messages, answer texts, fingerprints, and so the store,
//! baseline files, reports and notifications built from them.
//!
//! A server may echo the `Authorization` header in an error or even in a successful answer, so
//! every client built by [`super::build_client`] is wrapped in [`Redacting`]. Redaction happens
//! before any shortening; text that was shortened anyway (marked by a trailing `…`) also loses
//! a secret's beginning left just before the cut.

use super::{ClientConfig, CompletionRequest, Fingerprint, ModelClient};
use crate::sample::{Completion, SampleError};
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// What a secret is replaced by.
pub(crate) const REDACTED: &str = "[redacted]";

/// The mark [`super::http::shorten`] leaves where it cut a text.
const CUT: char = '…';

/// Replaces secret values in texts.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// Values shorter than three characters are not treated as secrets: redacting them would
    /// shred every message while protecting nothing.
    pub(crate) fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut secrets: Vec<String> = values
            .into_iter()
            .map(str::trim)
            .filter(|v| v.chars().count() >= 3)
            .map(str::to_string)
            .collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// The secrets of one target: its API key, its header values and its URL's password.
    pub(crate) fn for_config(cfg: &ClientConfig) -> Self {
        let password = reqwest::Url::parse(cfg.base_url.trim())
            .ok()
            .and_then(|u| u.password().map(str::to_string));
        let mut values: Vec<&str> = cfg.headers.iter().map(|(_, v)| v.as_str()).collect();
        values.extend(cfg.api_key.as_deref());
        values.extend(password.as_deref());
        Redactor::new(values)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every secret replaced by `[redacted]`, and the beginning of a secret (three
    /// characters or more) that ends right before a `…` cut mark replaced too.
    pub(crate) fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        if out.contains(CUT) {
            out = self.cut_prefixes(&out);
        }
        out
    }

    /// Replaces a secret's beginning left just before each `…`.
    fn cut_prefixes(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for (i, piece) in text.split(CUT).enumerate() {
            if i > 0 {
                out.push(CUT);
            }
            let longest = self
                .secrets
                .iter()
                .filter_map(|s| {
                    // Longest proper prefix of `s` that ends `piece`, at least 3 characters.
                    s.char_indices()
                        .map(|(at, _)| at)
                        .skip(3)
                        .filter(|&at| piece.ends_with(&s[..at]))
                        .max()
                })
                .max();
            match longest {
                Some(n) => {
                    out.push_str(&piece[..piece.len() - n]);
                    out.push_str(REDACTED);
                }
                None => out.push_str(piece),
            }
        }
        out
    }
}

/// A client whose answers, errors and fingerprints pass through the target's [`Redactor`].
pub(crate) struct Redacting {
    inner: Arc<dyn ModelClient>,
    redactor: Redactor,
}

impl Redacting {
    /// Wraps `inner` unless `cfg` holds no secret.
    pub(crate) fn wrap(inner: Arc<dyn ModelClient>, cfg: &ClientConfig) -> Arc<dyn ModelClient> {
        let redactor = Redactor::for_config(cfg);
        if redactor.is_empty() {
            return inner;
        }
        Arc::new(Redacting { inner, redactor })
    }

    fn completion(&self, mut c: Completion) -> Completion {
        let r = &self.redactor;
        c.text = r.apply(&c.text);
        for field in [
            &mut c.refusal,
            &mut c.response_model,
            &mut c.system_fingerprint,
        ] {
            if let Some(v) = field.as_mut() {
                *v = r.apply(v);
            }
        }
        c
    }

    fn error(&self, mut e: SampleError) -> SampleError {
        e.message = self.redactor.apply(&e.message);
        e
    }
}

impl ModelClient for Redacting {
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        Box::pin(async move {
            match self.inner.complete(request).await {
                Ok(c) => Ok(self.completion(c)),
                Err(e) => Err(self.error(e)),
            }
        })
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        Box::pin(async move {
            let r = &self.redactor;
            match self.inner.fingerprint().await {
                Ok(mut f) => {
                    f.model = r.apply(&f.model);
                    f.digest = f.digest.map(|d| r.apply(&d));
                    for v in f.details.values_mut() {
                        *v = r.apply(v);
                    }
                    Ok(f)
                }
                Err(e) => Err(self.error(e)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redactor_replaces_every_secret_and_keeps_the_rest() {
        let r = Redactor::new(["sk-secret-123", "tok", "ab", "  "]);
        let m = r.apply("key sk-secret-123 and tok here, ab stays");
        assert_eq!(m, "key [redacted] and [redacted] here, ab stays");
    }

    #[test]
    fn redactor_prefers_the_longest_overlapping_secret() {
        let r = Redactor::new(["abc", "abcdef"]);
        assert_eq!(r.apply("xabcdefx"), "x[redacted]x");
    }

    #[test]
    fn a_secret_cut_by_shortening_loses_its_beginning_too() {
        let key = "sk-0123456789abcdef";
        let r = Redactor::new([key]);
        for n in 3..key.len() {
            let text = format!("error: {}…", &key[..n]);
            assert_eq!(r.apply(&text), "error: [redacted]…", "prefix of {n}");
        }
        // Two characters are not treated as a secret's beginning; a cut elsewhere is kept.
        assert_eq!(r.apply("error: sk…"), "error: sk…");
        assert_eq!(r.apply("a… b"), "a… b");
        assert_eq!(r.apply("no cut sk-0123"), "no cut sk-0123");
    }

    #[test]
    fn the_secrets_of_a_target_are_its_key_headers_and_password() {
        let cfg = ClientConfig {
            base_url: "http://user:url-password@127.0.0.1:1".into(),
            api_key: Some("sk-the-key".into()),
            headers: vec![("x-gateway".into(), "gw-token".into())],
            ..ClientConfig::default()
        };
        let r = Redactor::for_config(&cfg);
        assert_eq!(
            r.apply("sk-the-key gw-token url-password user"),
            "[redacted] [redacted] [redacted] user"
        );
        assert!(Redactor::for_config(&ClientConfig::default()).is_empty());
    }
}
