//! One `[[target]]` table: provider, URL, model, credentials, headers, suites, schedule and
//! limits, each checked where it is written.

use super::*;

pub(super) fn read_target(
    r: &mut Reader,
    item: &Spanned<DeValue>,
    dir: &Path,
    probes_dir: &Path,
    suite_refs: &mut Vec<SuiteRef>,
) -> Option<Target> {
    let DeValue::Table(table) = item.get_ref() else {
        return None;
    };
    let f = r.fields_hinted(table, item.span(), "[[target]]", TARGET_KEYS, &|key| {
        GEN_PARAM_KEYS
            .contains(&key)
            .then(|| format!("generation parameters belong in [target.params]; move `{key}` there"))
    });
    let errors_before = r.diags.len();
    let location = r.src.location(&item.span());

    let name = read_name(r, &f);
    let provider = read_provider(r, &f);
    let base_url = read_base_url(r, &f);
    let model = r.nonempty_string(&f, "model", true);
    let api = read_api(r, &f, provider);

    let api_key = read_api_key(r, &f, dir);
    let headers = read_headers(r, &f);
    let ca_file = tls::read_ca_file(r, &f, dir);
    let tls_roots = tls::read_tls_roots(r, &f);
    let suites = read_suite_refs(r, &f, dir, probes_dir, suite_refs);

    let params = read_params(r, &f);
    let samples = read_samples(r, &f);
    let interval = read_interval(r, &f);
    let baseline = r
        .nonempty_string(&f, "baseline", false)
        .map(|b| dir.join(b.get_ref()));
    let request_timeout =
        positive_duration(r, &f, "request_timeout").unwrap_or(Duration::from_secs(120));
    let connect_timeout =
        positive_duration(r, &f, "connect_timeout").unwrap_or(Duration::from_secs(5));
    let first_byte_timeout =
        positive_duration(r, &f, "first_byte_timeout").unwrap_or(request_timeout);
    let retries = r
        .uint(&f, "retries", 0, 10)
        .map(|v| *v.get_ref() as u32)
        .unwrap_or(2);
    let max_concurrency = r
        .uint(&f, "max_concurrency", 1, 1024)
        .map(|v| *v.get_ref() as u32)
        .unwrap_or(4);
    let stream = r.bool(&f, "stream").map(|v| *v.get_ref()).unwrap_or(true);
    let max_response_bytes = read_size(r, &f, "max_response_bytes").unwrap_or(4 << 20);
    let daemon = daemon::read_target_daemon(r, &f, interval);
    let license_files = crate::provider::license::LicenseFiles {
        model_file: r
            .nonempty_string(&f, "model_file", false)
            .map(|s| dir.join(s.get_ref())),
        model_dir: r
            .nonempty_string(&f, "model_dir", false)
            .map(|s| dir.join(s.get_ref())),
    };

    if r.diags.len() > errors_before {
        return None;
    }
    Some(Target {
        name: name?.into_inner(),
        provider: provider?,
        base_url: base_url?,
        model: model?.into_inner(),
        api,
        api_key: api_key?,
        headers: headers?,
        suites: suites?,
        params,
        samples,
        interval,
        baseline,
        request_timeout,
        connect_timeout,
        first_byte_timeout,
        retries,
        max_concurrency,
        stream,
        max_response_bytes,
        daemon: daemon?,
        license_files,
        ca_file: ca_file?,
        tls_roots: tls_roots?,
        location,
    })
}

/// The target's name: it appears in metric labels, alerts and file names.
fn read_name(r: &mut Reader, f: &Fields) -> Option<Spanned<String>> {
    let name = r.nonempty_string(f, "name", true);
    if let Some(n) = &name
        && !n
            .get_ref()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        r.error_help(
            n.span(),
            format!(
                "invalid target name `{}`: expected letters, digits, `-`, `_` or `.`",
                n.get_ref()
            ),
            "the name appears in metrics labels, alerts and file names",
        );
    }
    name
}

fn read_provider(r: &mut Reader, f: &Fields) -> Option<Provider> {
    r.required_string(f, "provider")
        .and_then(|p| match p.get_ref().as_str() {
            "ollama" => Some(Provider::Ollama),
            "openai" => Some(Provider::OpenAi),
            other => {
                r.error_help(
                p.span(),
                format!("unknown provider `{other}`: expected \"ollama\" or \"openai\""),
                "use \"openai\" for any OpenAI-compatible server (vLLM, llama.cpp, TGI, LM Studio)",
            );
                None
            }
        })
}

/// The server's URL, without a trailing `/`.
pub(super) fn read_base_url(r: &mut Reader, f: &Fields) -> Option<String> {
    r.required_string(f, "base_url")
        .and_then(|u| match check_url(u.get_ref()) {
            Ok(()) => Some(u.get_ref().trim_end_matches('/').to_owned()),
            Err(why) => {
                r.error_help(
                    u.span(),
                    format!("invalid `base_url` `{}`: {why}", u.get_ref()),
                    "e.g. \"http://127.0.0.1:11434\" or \"https://api.example.com\"",
                );
                None
            }
        })
}

/// The API (chat unless given); the completion API needs an OpenAI-compatible server.
fn read_api(r: &mut Reader, f: &Fields, provider: Option<Provider>) -> Api {
    let Some(a) = r.string(f, "api") else {
        return Api::Chat;
    };
    match a.get_ref().as_str() {
        "chat" => Api::Chat,
        "completion" => {
            if provider == Some(Provider::Ollama) {
                r.error_help(
                    a.span(),
                    "api = \"completion\" needs provider = \"openai\": Ollama targets use the chat API",
                    "remove `api`, or use provider = \"openai\" with a server offering /v1/completions",
                );
            }
            Api::Completion
        }
        other => {
            r.error(
                a.span(),
                format!("unknown api `{other}`: expected \"chat\" or \"completion\""),
            );
            Api::Chat
        }
    }
}

/// `[target.params]`: the generation parameters, the suites' defaults where absent.
fn read_params(r: &mut Reader, f: &Fields) -> GenParams {
    match f.get("params") {
        Some(v) => match r.table_value(v, "[target.params]", &GEN_PARAM_KEYS) {
            Some(pf) => read_gen_params(r, &pf),
            None => GenParams::default(),
        },
        None => GenParams::default(),
    }
}

fn read_samples(r: &mut Reader, f: &Fields) -> Option<u32> {
    r.u32(f, "samples", 0).and_then(|s| {
        if *s.get_ref() == 0 {
            r.error(s.span(), "`samples` in [[target]] must be at least 1");
            None
        } else {
            Some(*s.get_ref())
        }
    })
}

/// The time between rounds: 10 minutes unless given, never under [`MIN_INTERVAL`].
fn read_interval(r: &mut Reader, f: &Fields) -> Duration {
    let interval = duration(r, f, "interval").unwrap_or(Duration::from_secs(600));
    if interval < MIN_INTERVAL
        && let Some(v) = f.get("interval")
    {
        r.error_help(
            v.span(),
            format!(
                "`interval` {} is too short: expected at least {}",
                format_duration(interval),
                format_duration(MIN_INTERVAL)
            ),
            "shorter intervals measure the server's load rather than the model",
        );
    }
    interval
}

/// `http` or `https`, a host, an optional numeric port, no whitespace.
pub(super) fn check_url(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("expected an http:// or https:// URL".into());
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "scheme `{scheme}` is not supported: expected http or https"
        ));
    }
    if url.chars().any(char::is_whitespace) {
        return Err("URLs cannot contain whitespace".into());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err("unterminated IPv6 address: expected `]`".into()),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("expected a host name after the scheme".into());
    }
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return Err(format!("port `{p}` is not a number from 0 to 65535"));
    }
    if rest.contains(['?', '#']) {
        return Err("expected a base URL without query or fragment".into());
    }
    Ok(())
}

pub(super) fn read_size(r: &mut Reader, f: &Fields, key: &str) -> Option<u64> {
    let v = f.get(key)?;
    let n = match v.get_ref() {
        DeValue::Integer(_) => r.uint(f, key, 1, u64::MAX).map(|n| *n.get_ref()),
        DeValue::String(_) => {
            let s = r.string(f, key)?;
            match parse_size(s.get_ref()) {
                Some(n) => Some(n),
                None => {
                    r.error(
                        s.span(),
                        format!(
                            "invalid size `{}` for `{key}`: {SIZE_EXPECTED}",
                            s.get_ref()
                        ),
                    );
                    return None;
                }
            }
        }
        other => {
            r.error(
                v.span(),
                format!(
                    "wrong type for `{key}` in {}: expected a size (integer or string), found {}",
                    f.what,
                    fields::article(other)
                ),
            );
            return None;
        }
    }?;
    if n < 1024 {
        r.error(v.span(), format!("`{key}` must be at least 1KiB"));
        return None;
    }
    if n > MAX_RESPONSE_BYTES {
        r.error_help(
            v.span(),
            format!("`{key}` must be at most 64MiB"),
            "an answer larger than that is a fault to report, not to read: keep the default 4MiB",
        );
        return None;
    }
    Some(n)
}

/// `api_key` or `api_key_file`. `Some(None)`: no key; `None`: an error was reported.
pub(super) fn read_api_key(r: &mut Reader, f: &Fields, dir: &Path) -> Option<Option<Secret>> {
    let key = r.string(f, "api_key");
    let file = r.nonempty_string(f, "api_key_file", false);
    if f.get("api_key").is_some() && key.is_none()
        || f.get("api_key_file").is_some() && file.is_none()
    {
        return None;
    }
    match (key, file) {
        (Some(_), Some(file)) => {
            r.error_help(
                file.span(),
                "both `api_key` and `api_key_file` are set: expected at most one",
                "keep `api_key_file` (the key stays out of the config) and remove `api_key`",
            );
            None
        }
        (Some(k), None) => {
            if k.get_ref().trim().is_empty() {
                r.error_help(
                    k.span(),
                    "`api_key` is empty: expected a key",
                    "remove `api_key` for servers without authentication",
                );
                return None;
            }
            if let Some(why) = header_problem(k.get_ref()) {
                r.error(
                    k.span(),
                    format!("`api_key` cannot be sent as an HTTP header: {why}"),
                );
                return None;
            }
            Some(Some(Secret::new(k.into_inner())))
        }
        (None, Some(file)) => {
            let path = resolve_credential(file.get_ref(), dir, r);
            match files::read_text_limited(&path, files::MAX_CREDENTIAL_BYTES) {
                Ok(s) if !s.trim().is_empty() => {
                    let key = s.trim_end_matches(['\n', '\r']);
                    if let Some(why) = header_problem(key) {
                        r.error_help(
                            file.span(),
                            format!(
                                "api_key_file `{}` cannot be sent as an HTTP header: {why}",
                                path.display()
                            ),
                            "the file should hold the key alone, on one line",
                        );
                        return None;
                    }
                    Some(Some(Secret::new(key)))
                }
                Ok(_) => {
                    r.error(
                        file.span(),
                        format!(
                            "api_key_file `{}` is empty: expected the key",
                            path.display()
                        ),
                    );
                    None
                }
                Err(e) => {
                    r.error_help(
                        file.span(),
                        format!("cannot read api_key_file `{}`: {e}", path.display()),
                        "relative paths are resolved against $CREDENTIALS_DIRECTORY when set, else the configuration file's directory",
                    );
                    None
                }
            }
        }
        (None, None) => Some(None),
    }
}

/// A relative credential path: under `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`) when
/// that is set, else under the configuration directory.
pub(super) fn resolve_credential(file: &str, dir: &Path, r: &Reader) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match r.env("CREDENTIALS_DIRECTORY") {
        Some(creds) if !creds.is_empty() => Path::new(&creds).join(p),
        _ => dir.join(p),
    }
}

pub(super) fn read_headers(r: &mut Reader, f: &Fields) -> Option<Vec<(String, Secret)>> {
    let Some(v) = f.get("headers") else {
        return Some(Vec::new());
    };
    let DeValue::Table(t) = v.get_ref() else {
        r.error(
            v.span(),
            format!(
                "wrong type for `headers` in [[target]]: expected a table of strings, found {}",
                fields::article(v.get_ref())
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (k, val) in t.iter() {
        let name = k.get_ref().as_ref();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            r.error(
                k.span(),
                format!("invalid header name `{name}`: expected letters, digits and `-`"),
            );
            ok = false;
            continue;
        }
        let DeValue::String(s) = val.get_ref() else {
            r.error(
                val.span(),
                format!(
                    "wrong type for header `{name}`: expected a string, found {}",
                    fields::article(val.get_ref())
                ),
            );
            ok = false;
            continue;
        };
        match r.expand(s, val.span()) {
            Some(s) if header_problem(&s).is_some() => {
                let why = header_problem(&s).unwrap_or_default();
                r.error(
                    val.span(),
                    format!("header `{name}` cannot be sent as an HTTP header value: {why}; expected printable text"),
                );
                ok = false;
            }
            Some(s) => out.push((name.to_owned(), Secret::new(s))),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

pub(super) fn read_suite_refs(
    r: &mut Reader,
    f: &Fields,
    dir: &Path,
    probes_dir: &Path,
    suite_refs: &mut Vec<SuiteRef>,
) -> Option<Vec<SuiteRef>> {
    let Some(list) = r.strings(f, "suites") else {
        if f.get("suites").is_none() {
            r.missing(f, "suites", "an array of suite names, e.g. [\"core\"]");
        }
        return None;
    };
    if list.is_empty() {
        let span = f.get("suites").map(|v| v.span()).unwrap_or(0..0);
        r.error(span, "`suites` is empty: expected at least one suite name");
        return None;
    }
    let mut out: Vec<SuiteRef> = Vec::new();
    let mut ok = true;
    for s in list {
        let reference = s.get_ref().clone();
        let path = if reference.ends_with(".toml") {
            dir.join(&reference)
        } else if !reference.is_empty()
            && reference
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            probes_dir.join(format!("{reference}.toml"))
        } else {
            r.error_help(
                s.span(),
                format!("invalid suite reference `{reference}`: expected a suite name or a path ending in .toml"),
                format!("a name `x` means {}", probes_dir.join("x.toml").display()),
            );
            ok = false;
            continue;
        };
        if out.iter().any(|o| o.path == path) {
            r.error(
                s.span(),
                format!("suite `{reference}` is listed twice: expected each suite once"),
            );
            ok = false;
            continue;
        }
        let suite_ref = SuiteRef {
            reference,
            location: r.src.location(&s.span()),
            span: s.span(),
            path,
        };
        suite_refs.push(suite_ref.clone());
        out.push(suite_ref);
    }
    ok.then_some(out)
}

/// Suite names in the probes directory, sorted.
pub(super) fn available_suites(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".toml").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}
