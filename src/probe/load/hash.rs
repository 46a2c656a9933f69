//! Content hashes of probes and suites: what decides whether a baseline still applies.

use crate::probe::Probe;
use sha2::{Digest, Sha256};

/// Hex sha256 over a canonical JSON of what is sent and judged: id, input, resolved parameters,
/// samples and checks. Description and tags are left out: editing them keeps baselines valid.
pub fn probe_hash(p: &Probe) -> String {
    let expect = crate::probe::Expect {
        margin: None,
        ..p.expect.clone()
    };
    let value = serde_json::json!({
        "id": p.id,
        "input": p.input,
        "params": p.params,
        "samples": p.samples,
        "expect": expect,
    });
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    crate::util::sha256_hex(canonical.as_bytes())
}

/// Hex sha256 over the probe hashes, in order.
pub fn suite_hash(probes: &[Probe]) -> String {
    let mut h = Sha256::new();
    for p in probes {
        h.update(p.hash.as_bytes());
        h.update(b"\n");
    }
    crate::util::hex(&h.finalize())
}

/// JSON with object keys sorted and no whitespace, so equal content hashes equally whatever
/// the order in the file.
fn write_canonical(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
