//! `modelwatch init`: writes a commented starter `modelwatch.toml` for a model server found on
//! this machine (Ollama, or an OpenAI-compatible server such as vLLM or llama.cpp), falling back
//! to the built-in simulator. Never overwrites without `--force`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Where local servers usually listen, tried in this order.
const DEFAULT_CANDIDATES: [&str; 3] = [
    "http://127.0.0.1:11434",
    "http://127.0.0.1:8000",
    "http://127.0.0.1:8080",
];

/// Each probe of a local address gets this long: a server that is there answers at once.
const PROBE_TIMEOUT: Duration = Duration::from_millis(700);

/// Where the simulator listens by default (`modelwatch sim`).
const SIM_URL: &str = "http://127.0.0.1:11435";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Overwrite an existing configuration file.
    #[arg(long)]
    pub force: bool,
    /// Try these base URLs instead of the usual local ports (repeatable).
    #[arg(long = "detect", value_name = "URL", hide = true)]
    pub detect: Vec<String>,
}

/// A server found, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Ollama { base_url: String, model: String },
    OpenAi { base_url: String, model: String },
    Nothing,
}

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let path = &global.config;
    if path.exists() && !args.force {
        eprintln!(
            "error: {} already exists; not overwriting it (pass --force to replace it, or \
             --config OTHER.toml to write elsewhere)",
            path.display()
        );
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let candidates: Vec<String> = if args.detect.is_empty() {
        DEFAULT_CANDIDATES.iter().map(|s| s.to_string()).collect()
    } else {
        args.detect.clone()
    };
    let found = super::live::runtime()?.block_on(detect(&candidates));
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let probes = dir.join("probes");
    let wrote_probes = if probes.join("core.toml").is_file() {
        false
    } else {
        modelwatch::demo::write_starter_probes(&probes).map_err(|e| {
            anyhow::anyhow!(
                "cannot write the starter probes to {}: {e}",
                probes.display()
            )
        })?;
        true
    };
    std::fs::write(path, render(&found))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    match &found {
        Found::Ollama { base_url, model } => {
            println!("found Ollama at {base_url} serving {model}")
        }
        Found::OpenAi { base_url, model } => {
            println!("found an OpenAI-compatible server at {base_url} serving {model}")
        }
        Found::Nothing => println!(
            "no local model server found (tried {}); the configuration points at the built-in \
             simulator: start it with `modelwatch sim` in another terminal",
            candidates.join(", ")
        ),
    }
    if wrote_probes {
        println!("wrote the starter probes to {}", probes.display());
    }
    println!(
        "wrote {}; next: `modelwatch check-config`, then `modelwatch run`",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The first candidate that answers as Ollama (`/api/tags`) or OpenAI-compatible
/// (`/v1/models`) with at least one model.
pub async fn detect(candidates: &[String]) -> Found {
    let Ok(client) = modelwatch::provider::http::outbound_client()
        .timeout(PROBE_TIMEOUT)
        .connect_timeout(PROBE_TIMEOUT)
        .build()
    else {
        return Found::Nothing;
    };
    for base in candidates {
        let base = base.trim_end_matches('/');
        if let Some(model) =
            first_model(&client, &format!("{base}/api/tags"), "models", "name").await
        {
            return Found::Ollama {
                base_url: base.to_string(),
                model,
            };
        }
        if let Some(model) = first_model(&client, &format!("{base}/v1/models"), "data", "id").await
        {
            return Found::OpenAi {
                base_url: format!("{base}/v1"),
                model,
            };
        }
    }
    Found::Nothing
}

/// A model list larger than this is not read further (every read is bounded): no server
/// worth detecting lists megabytes of models.
const MAX_LIST_BYTES: usize = 1 << 20;

async fn first_model(client: &reqwest::Client, url: &str, list: &str, key: &str) -> Option<String> {
    let mut resp = client.get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let mut bytes = Vec::new();
    while let Some(c) = resp.chunk().await.ok()? {
        bytes.extend_from_slice(&c);
        if bytes.len() > MAX_LIST_BYTES {
            return None;
        }
    }
    let body: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    body.get(list)?
        .as_array()?
        .iter()
        .find_map(|m| m.get(key)?.as_str().map(str::to_string))
}

/// A TOML basic string: JSON's string escapes are valid TOML.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The starter configuration for what was found. Pure.
pub fn render(found: &Found) -> String {
    let (intro, provider, base_url, model, extra) = match found {
        Found::Ollama { base_url, model } => (
            format!("# Found Ollama at {base_url}."),
            "ollama",
            base_url.as_str(),
            model.as_str(),
            "",
        ),
        Found::OpenAi { base_url, model } => (
            format!(
                "# Found an OpenAI-compatible server (vLLM, llama.cpp, TGI, LM Studio, …) at \
                 {base_url}."
            ),
            "openai",
            base_url.as_str(),
            model.as_str(),
            "# api_key = \"${OPENAI_API_KEY:-}\"    # if the server wants a key (never commit it)\n\
             # api = \"completion\"                 # /v1/completions, for base models without a chat template\n",
        ),
        Found::Nothing => (
            format!(
                "# No local model server was found, so this points at the built-in simulator.\n\
                 # Start it in another terminal with:  modelwatch sim   (listens on {SIM_URL})\n\
                 # Then replace the target with your own server (docs/integrations.md)."
            ),
            "ollama",
            SIM_URL,
            "sim-7b",
            "",
        ),
    };
    format!(
        r#"# modelwatch configuration, written by `modelwatch init`.
{intro}
# Every key: docs/configuration.md. Check it with `modelwatch check-config`.

# Where a suite named "core" is found: probes/core.toml (the starter probes; edit freely).
probes_dir = "probes"

[storage]
# Every sample of every round goes here (SQLite).
path = "modelwatch.db"

# One [[target]] per served model endpoint you want to watch.
[[target]]
name = "local"
provider = "{provider}"                # "ollama", or "openai" for OpenAI-compatible servers
base_url = {base_url}
model = {model}
# Starter suites: over-refusal, structured output, tasks with verifiable answers.
suites = ["core", "json", "tasks"]
{extra}# max_concurrency = 4                 # requests in flight at once against this server
# baseline = "baselines/local.json"   # default: baselines/<name>.json

# Next steps:
#   modelwatch run                              one round, stored and summarised
#   modelwatch baseline record --target local   freeze the current model as known-good
#   modelwatch compare --target local           recent samples against that baseline
"#,
        base_url = quote(base_url),
        model = quote(model),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelwatch::config;

    /// Every rendering is a valid configuration (with the starter probes next to it).
    #[test]
    fn every_starter_config_loads() {
        let dir = tempfile::tempdir().unwrap();
        modelwatch::demo::write_starter_probes(&dir.path().join("probes")).unwrap();
        for found in [
            Found::Nothing,
            Found::Ollama {
                base_url: "http://127.0.0.1:11434".into(),
                model: "qwen2.5:7b-instruct".into(),
            },
            Found::OpenAi {
                base_url: "http://127.0.0.1:8000/v1".into(),
                model: "Qwen/Qwen2.5-7B-Instruct \"quoted\"".into(),
            },
        ] {
            let path = dir.path().join("modelwatch.toml");
            std::fs::write(&path, render(&found)).unwrap();
            let env = |_: &str| None;
            let loaded = config::load_with_suites(&path, &env)
                .unwrap_or_else(|d| panic!("{found:?}:\n{}", modelwatch::diag::render_all(&d)));
            let t = &loaded.config.targets[0];
            match &found {
                Found::Nothing => assert_eq!(t.model, "sim-7b"),
                Found::Ollama { model, .. } | Found::OpenAi { model, .. } => {
                    assert_eq!(&t.model, model)
                }
            }
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// A closed port: bind, note the address, drop the listener.
    fn closed_url() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        drop(l);
        url
    }

    #[test]
    fn detects_ollama_on_the_simulator_after_a_closed_port() {
        rt().block_on(async {
            let sim = modelwatch::sim::spawn_on_free_port(
                modelwatch::sim::Profile::builtin("healthy").unwrap(),
                1,
            )
            .unwrap();
            let found = detect(&[closed_url(), sim.base_url()]).await;
            assert_eq!(
                found,
                Found::Ollama {
                    base_url: sim.base_url(),
                    model: "sim-7b:latest".into()
                }
            );
            sim.shutdown().await;
        });
    }

    #[test]
    fn detects_an_openai_only_server_and_falls_back_to_nothing() {
        rt().block_on(async {
            let app = axum::Router::new().route(
                "/v1/models",
                axum::routing::get(|| async {
                    axum::Json(serde_json::json!({"data": [{"id": "Qwen/Qwen2.5-7B-Instruct"}]}))
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
            assert_eq!(
                detect(std::slice::from_ref(&base)).await,
                Found::OpenAi {
                    base_url: format!("{base}/v1"),
                    model: "Qwen/Qwen2.5-7B-Instruct".into()
                }
            );
            assert_eq!(detect(&[closed_url()]).await, Found::Nothing);
        });
    }
}
