//! From configuration to what a round needs: one client per target and its probes with the
//! target's generation parameters applied.

use crate::config::{self, Loaded, Target};
use crate::probe::Probe;
use crate::provider::{self, CancelSignal, ClientConfig, ProviderKind};
use std::sync::Arc;
use std::time::Duration;

/// Client settings for a target. `retry_seed` varies per target so that the jitter of several
/// targets retrying the same host does not align.
pub fn client_config(target: &Target, cancel: Option<CancelSignal>) -> ClientConfig {
    ClientConfig {
        kind: match target.provider {
            config::Provider::Ollama => ProviderKind::Ollama,
            config::Provider::OpenAi => ProviderKind::OpenAi,
        },
        api: match target.api {
            config::Api::Chat => provider::Api::Chat,
            config::Api::Completion => provider::Api::Completion,
        },
        base_url: target.base_url.clone(),
        model: target.model.clone(),
        api_key: target.api_key.as_ref().map(|s| s.expose().to_string()),
        headers: target
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string()))
            .collect(),
        stream: target.stream,
        connect_timeout: target.connect_timeout,
        first_byte_timeout: target.first_byte_timeout,
        total_timeout: target.request_timeout,
        retries: target.retries,
        backoff_base: Duration::from_millis(500),
        backoff_max: Duration::from_secs(30),
        max_response_bytes: usize::try_from(target.max_response_bytes).unwrap_or(usize::MAX),
        retry_seed: crate::rng::hash_str(&target.name),
        cancel,
        tls: target.trust(),
    }
}

/// The probes a target runs, in suite order, optionally restricted to some suite names, with
/// the target's generation parameters and sample override applied.
pub fn target_probes(loaded: &Loaded, target: &Target, only_suites: &[String]) -> Vec<Arc<Probe>> {
    loaded
        .target_suites(target)
        .filter(|s| only_suites.is_empty() || only_suites.contains(&s.name))
        .flat_map(|s| s.probes.iter())
        .map(|p| {
            let mut p = p.clone();
            p.params = target.params_for(&p.params);
            p.samples = target.samples_for(p.samples);
            Arc::new(p)
        })
        .collect()
}

/// The seed sent, plus the sample index, with probes that declare none, by the commands whose
/// samples are later paired (`run`, `baseline record`, the canary): servers that honour `seed`
/// then answer an unchanged model alike on both sides of a pair. The daemon sends none, and
/// moves a probe's own seed on every round ([`with_round_seed`]), so its rounds stay
/// independent draws.
pub const PAIR_SEED: u64 = 20_240_601;

/// `probes` with `seed` set on those that declare none (`None`: unchanged).
pub fn with_pair_seed(probes: Vec<Arc<Probe>>, seed: Option<u64>) -> Vec<Arc<Probe>> {
    let Some(seed) = seed else { return probes };
    probes
        .into_iter()
        .map(|p| {
            if p.params.seed.is_some() {
                return p;
            }
            let mut p = (*p).clone();
            p.params.seed = Some(seed);
            Arc::new(p)
        })
        .collect()
}

/// `probes` for the daemon's round number `round`: a probe that declares a `seed` gets it moved
/// past the seeds of every earlier round (`seed + round × samples`, the round adding the sample
/// index as always). Repeating one round's seeds every round would, on a server that honours
/// `seed`, replay the same answers: the monitor would count one draw again and again as new
/// evidence. Other probes are unchanged (they carry no seed in the daemon).
pub fn with_round_seed(probes: &[Arc<Probe>], round: u64) -> Vec<Arc<Probe>> {
    probes
        .iter()
        .map(|p| match p.params.seed {
            Some(seed) if round > 0 => {
                let mut q = (**p).clone();
                let step = round.wrapping_mul(u64::from(p.samples.max(1)));
                q.params.seed = Some(seed.wrapping_add(step));
                Arc::new(q)
            }
            _ => Arc::clone(p),
        })
        .collect()
}

/// Builds the client for a target (one connection pool per target).
pub fn build_client(
    target: &Target,
) -> Result<Arc<dyn provider::ModelClient>, provider::ProviderError> {
    build_client_with(target, None)
}

/// Builds the client for a target; its fingerprints carry the license evidence of the served
/// model (from the server, or the target's `model_file` / `model_dir`).
pub fn build_client_with(
    target: &Target,
    cancel: Option<CancelSignal>,
) -> Result<Arc<dyn provider::ModelClient>, provider::ProviderError> {
    let client = provider::build_client(client_config(target, cancel))?;
    Ok(provider::license::with_license(
        client,
        target.license_files.clone(),
    ))
}
