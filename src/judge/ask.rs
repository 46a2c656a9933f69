//! Asking the judge model: one chat request per response, over the project's provider client
//! (same timeouts, size caps, redirects refused, secrets redacted), answers cached.

use super::cache::Cache;
use super::{Label, cache_key, parse_reply, prompt};
use crate::config::JudgeSettings;
use crate::probe::{GenParams, Message, ProbeInput, Role};
use crate::provider::{Api, ClientConfig, CompletionRequest, ModelClient, ProviderKind};
use std::sync::Arc;

/// What became of one question.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Asked {
    /// The judge's label, and whether it came from the cache.
    Labelled { label: Label, cached: bool },
    /// The judge answered something that is not one of the three labels (first 80 chars).
    Unparsable { reply: String },
    /// The request failed (timeout, refused connection, HTTP error): the judge is unavailable,
    /// which is never a statement about the response.
    Unavailable { error: String },
    /// Past `max_calls` for this run.
    NotAsked,
}

/// The judge of one run: its client, its cache, its call budget.
pub struct Judge {
    client: Arc<dyn ModelClient>,
    model: String,
    cache: Cache,
    calls_left: u32,
    /// Requests sent in this run.
    pub calls: u32,
}

impl Judge {
    /// Builds the client and reads the cache; an error says which setting to fix.
    pub fn new(settings: &JudgeSettings) -> Result<Judge, String> {
        let cfg = ClientConfig {
            kind: ProviderKind::OpenAi,
            api: Api::Chat,
            base_url: settings.base_url.clone(),
            model: settings.model.clone(),
            api_key: settings.api_key.as_ref().map(|k| k.expose().to_string()),
            stream: false,
            connect_timeout: settings.timeout,
            first_byte_timeout: settings.timeout,
            total_timeout: settings.timeout,
            retries: 1,
            max_response_bytes: 64 * 1024,
            ..ClientConfig::default()
        };
        let client = crate::provider::build_client(cfg).map_err(|e| format!("[judge]: {e}"))?;
        Ok(Judge::with_client(
            client,
            settings,
            Cache::open(&settings.cache)?,
        ))
    }

    /// A judge over any client (tests use a fake).
    pub fn with_client(
        client: Arc<dyn ModelClient>,
        settings: &JudgeSettings,
        cache: Cache,
    ) -> Judge {
        Judge {
            client,
            model: settings.model.clone(),
            cache,
            calls_left: settings.max_calls,
            calls: 0,
        }
    }

    /// The judge's label for `text`, from the cache when it was asked before.
    pub async fn ask(&mut self, text: &str) -> Asked {
        let key = cache_key(&self.model, text);
        if let Some(label) = self.cache.get(&key) {
            return Asked::Labelled {
                label,
                cached: true,
            };
        }
        if self.calls_left == 0 {
            return Asked::NotAsked;
        }
        self.calls_left -= 1;
        self.calls += 1;
        let (system, user) = prompt(text);
        let request = CompletionRequest {
            input: ProbeInput::Messages(vec![
                Message {
                    role: Role::System,
                    content: system,
                },
                Message {
                    role: Role::User,
                    content: user,
                },
            ]),
            params: GenParams {
                temperature: Some(0.0),
                max_tokens: Some(8),
                seed: Some(0),
                ..GenParams::default()
            },
            stream: false,
        };
        match self.client.complete(&request).await {
            Err(e) => Asked::Unavailable {
                error: e.to_string(),
            },
            Ok(c) => match parse_reply(&c.text) {
                Some(label) => {
                    if let Err(e) = self.cache.put(&key, label) {
                        tracing::warn!(error = %e, "the judge's answer is not cached");
                    }
                    Asked::Labelled {
                        label,
                        cached: false,
                    }
                }
                None => Asked::Unparsable {
                    reply: c.text.chars().take(80).collect(),
                },
            },
        }
    }
}
