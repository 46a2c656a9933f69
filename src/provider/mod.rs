//! Model server clients behind one trait, [`ModelClient`]: Ollama's native API and the
//! OpenAI-compatible API (vLLM, llama.cpp server, TGI, LM Studio, OpenAI itself).
//!
//! Clients turn every failure into a classified [`SampleError`]; they never judge quality.

use crate::probe::{GenParams, ProbeInput};
use crate::sample::{Completion, SampleError};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One generation request.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    pub input: ProbeInput,
    pub params: GenParams,
    /// Stream the response (needed for time to first token).
    pub stream: bool,
}

/// What is actually being served. A change of [`Fingerprint::id`] between rounds is a swap.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Fingerprint {
    /// `ollama` or `openai`.
    pub provider: String,
    /// The model name as configured.
    pub model: String,
    /// The strongest identity the server offers (Ollama digest, llama.cpp model path + type,
    /// vLLM root), when it offers one.
    pub digest: Option<String>,
    /// Everything else read from the server that identifies the model (family, quantization,
    /// template hash, context size, server version, …). Sorted for a stable hash.
    pub details: BTreeMap<String, String>,
}

impl Fingerprint {
    /// Short stable identity: the first 16 hex digits of sha256 over provider, model, digest and
    /// details. Volatile facts (server version, build info) are excluded by the clients so that an
    /// upgrade of the server alone is not reported as a swap unless it changes what is served.
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.provider.as_bytes());
        h.update([0]);
        h.update(self.model.as_bytes());
        h.update([0]);
        h.update(self.digest.as_deref().unwrap_or("").as_bytes());
        for (k, v) in &self.details {
            h.update([0]);
            h.update(k.as_bytes());
            h.update([1]);
            h.update(v.as_bytes());
        }
        crate::hex(&h.finalize()[..8])
    }
}

/// A client for one target's model server.
///
/// Implementations: [`ollama::OllamaClient`], [`openai::OpenAiClient`]; tests may use fakes.
pub trait ModelClient: Send + Sync {
    /// Generates one response. Retries, timeouts and size caps are the client's job; the error
    /// says which infrastructure failure ended it.
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>>;

    /// Reads what the server is serving; cheap enough to call every round.
    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_id_is_stable_and_sensitive() {
        let mut a = Fingerprint {
            provider: "ollama".into(),
            model: "m".into(),
            digest: Some("abc".into()),
            details: BTreeMap::new(),
        };
        let id = a.id();
        assert_eq!(id.len(), 16);
        assert_eq!(id, a.clone().id());
        a.details.insert("quantization".into(), "Q4_K_M".into());
        assert_ne!(id, a.id());
    }
}
