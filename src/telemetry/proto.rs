//! A minimal protobuf writer for the few OTLP messages modelwatch sends (field numbers from
//! `opentelemetry/proto/{common,resource,metrics,trace}/v1/*.proto`). Hand-written instead of
//! generated: no build script, no protoc, no new dependency; the receiver tests decode the
//! output with the official definitions.

/// An encoded message under construction.
#[derive(Debug, Default, Clone)]
pub struct Msg(pub Vec<u8>);

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

impl Msg {
    pub fn new() -> Msg {
        Msg(Vec::new())
    }
    fn key(&mut self, field: u32, wire: u8) {
        varint(&mut self.0, (u64::from(field) << 3) | u64::from(wire));
    }
    pub fn uint(&mut self, field: u32, v: u64) -> &mut Msg {
        self.key(field, 0);
        varint(&mut self.0, v);
        self
    }
    pub fn boolean(&mut self, field: u32, v: bool) -> &mut Msg {
        self.uint(field, u64::from(v))
    }
    pub fn fixed64(&mut self, field: u32, v: u64) -> &mut Msg {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn double(&mut self, field: u32, v: f64) -> &mut Msg {
        self.fixed64(field, v.to_bits())
    }
    pub fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Msg {
        self.key(field, 2);
        varint(&mut self.0, v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }
    pub fn string(&mut self, field: u32, v: &str) -> &mut Msg {
        self.bytes(field, v.as_bytes())
    }
    pub fn msg(&mut self, field: u32, m: &Msg) -> &mut Msg {
        self.bytes(field, &m.0)
    }
    /// A packed repeated fixed64 / double field.
    pub fn packed_fixed64(&mut self, field: u32, vs: impl Iterator<Item = u64>) -> &mut Msg {
        let mut b = Vec::new();
        for v in vs {
            b.extend_from_slice(&v.to_le_bytes());
        }
        self.bytes(field, &b)
    }
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    /// An array of strings (`gen_ai.response.finish_reasons`).
    StrArray(Vec<String>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

/// `KeyValue { key = 1; AnyValue value = 2 }`, `AnyValue { string 1, bool 2, int 3, double 4,
/// array 5 }`.
pub fn key_value(key: &str, v: &Value) -> Msg {
    let mut any = Msg::new();
    match v {
        Value::Str(s) => any.string(1, s),
        Value::Bool(b) => any.boolean(2, *b),
        Value::Int(i) => any.uint(3, *i as u64),
        Value::Double(d) => any.double(4, *d),
        Value::StrArray(items) => {
            // ArrayValue { repeated AnyValue values = 1 }
            let mut array = Msg::new();
            for item in items {
                let mut v = Msg::new();
                v.string(1, item);
                array.msg(1, &v);
            }
            any.msg(5, &array)
        }
    };
    let mut kv = Msg::new();
    kv.string(1, key).msg(2, &any);
    kv
}

/// Appends attributes as repeated `KeyValue` at `field`.
pub fn attributes(m: &mut Msg, field: u32, attrs: &[(String, Value)]) {
    for (k, v) in attrs {
        m.msg(field, &key_value(k, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_protobuf_reference() {
        // Examples from the protobuf encoding guide: field 1 = 150 → 08 96 01;
        // field 2 = "testing" → 12 07 74 65 73 74 69 6e 67.
        assert_eq!(Msg::new().uint(1, 150).0, [0x08, 0x96, 0x01]);
        assert_eq!(
            Msg::new().string(2, "testing").0,
            [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']
        );
        assert_eq!(Msg::new().fixed64(3, 1).0, [0x19, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Msg::new().uint(1, u64::MAX).0.len(), 11);
    }
}
