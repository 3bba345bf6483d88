//! Signed JSON read the way every peer reads it: no object key twice, not even in another case.
//!
//! Why this module exists: cosign, skopeo and the other Go verifiers read signed documents
//! with Go's `encoding/json`, which matches object keys to struct fields case-insensitively
//! and lets the last of several matching keys win. serde matches exactly, and keeps the last
//! duplicate in a map. A document holding both `"critical"` and `"Critical"` (or a key twice)
//! can therefore say one thing to sigil and another to a Go verifier, under one signature. Such
//! a document has no single meaning, so it is refused before it is interpreted at all, at any
//! depth (payload, `optional` annotations, statement, predicate).
//!
//! Keys are compared as Go compares them ([`go_fold`]: `K`, `k` and the Kelvin sign fold
//! together, as do `s`, `S` and the long s, `i` and `İ`). Documents that are not signed but
//! that Go tools decode into known structs (an OCI layout's `index.json`) are checked with
//! [`misread_fields`]: a key Go would match to a field must be spelled as serde expects it.
//! Kubernetes objects are compared exactly instead ([`KeyRule::Exact`]): the API server decodes
//! them case-sensitively, but an object with a key twice still has no single meaning (which
//! `image` does the gate read, which one the API server apply?). [`UniqueKeys`] is the one
//! reader for both rules.
//! Pure: bytes in, a verdict out; the parsers' own recursion limits (serde_json's, serde_yaml_ng's)
//! bound the depth.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Two keys of one JSON object that a case-insensitive reader takes for the same key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AmbiguousKeys(String);

/// Refuses JSON in which any object has two keys equal under case folding (exact duplicates
/// included). Syntax errors are reported too (the caller's typed parse would reject them anyway).
pub fn reject_ambiguous_keys(bytes: &[u8]) -> Result<(), AmbiguousKeys> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    UniqueKeys(KeyRule::GoFolded).deserialize(&mut de).and_then(|_| de.end()).map_err(|e| AmbiguousKeys(e.to_string()))
}

/// When two keys of one object are the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRule {
    /// Equal under Go's case folding ([`go_fold`]): how `encoding/json` matches keys to struct
    /// fields (cosign, skopeo and the other Go verifiers of signed documents).
    GoFolded,
    /// Equal byte for byte: how Kubernetes decodes objects (`sigs.k8s.io/json` matches field
    /// names case-sensitively; label keys such as `app` and `App` are distinct).
    Exact,
}

impl KeyRule {
    fn same_key(self, key: &str) -> String {
        match self {
            KeyRule::GoFolded => go_fold(key),
            KeyRule::Exact => key.to_owned(),
        }
    }
}

/// Reads one value of any self-describing format (JSON, YAML through serde_yaml_ng) into a
/// `serde_json::Value`, refusing any object, at any depth, that has a key twice under the
/// rule. A map keeps only one of two equal keys, so the check must happen while reading.
/// Non-string keys are read as strings (a YAML `1:` is the key `"1"`, as Kubernetes reads it).
#[derive(Debug, Clone, Copy)]
pub struct UniqueKeys(pub KeyRule);

impl<'de> de::DeserializeSeed<'de> for UniqueKeys {
    type Value = serde_json::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<serde_json::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A key as Go's `encoding/json` folds it to match struct fields (its `foldName`: each
/// character lowercased, then uppercased, with Unicode's one-to-one mappings). Two keys with
/// the same fold are the same key to cosign, skopeo and every Go verifier. Rust's mappings are
/// the full ones; where one yields several characters, the one-to-one mapping is its first
/// character (lowercase: `İ` gives `i`) or none (uppercase: `ß` stays `ß`).
pub fn go_fold(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        let lower = c.to_lowercase().next().unwrap_or(c);
        let mut upper = lower.to_uppercase();
        match (upper.next(), upper.next()) {
            (Some(u), None) => out.push(u),
            _ => out.push(lower),
        }
    }
    out
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(i), _) => Ok(Value::from(i)),
            (_, Ok(u)) => Ok(Value::from(u)),
            _ => Err(E::custom(format_args!("integer {v} is out of range"))),
        }
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        u64::try_from(v).map(Value::from).map_err(|_| E::custom(format_args!("integer {v} is out of range")))
    }
    /// As serde_json reads it: a float that JSON cannot hold (NaN, infinity) is null.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(self.0.same_key(&key)) {
                return Err(de::Error::custom(match self.0 {
                    KeyRule::GoFolded => format!(
                        "object key {key:?} appears twice (keys that differ only in case count as the same key, \
                         as Go's encoding/json reads them)"
                    ),
                    KeyRule::Exact => format!("object key {key:?} appears twice: which one counts is unclear"),
                }));
            }
            let value = map.next_value_seed(self)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// The fields of a Go struct as `encoding/json` decodes it, for [`misread_fields`]: its field
/// names, and the fields whose value is an array of objects of another such struct.
#[derive(Debug)]
pub struct GoStruct {
    /// The JSON names of the struct's fields.
    pub fields: &'static [&'static str],
    /// Fields holding an array of objects, with the struct each object decodes into.
    pub arrays: &'static [(&'static str, &'static GoStruct)],
}

/// A key that a Go decoder of a [`GoStruct`] reads otherwise than serde.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldProblem {
    /// A key that Go matches to `field` although it is spelled differently (serde ignores it).
    Misspelled {
        /// The key as written.
        key: String,
        /// The field Go reads it as.
        field: &'static str,
    },
    /// The same key twice in one object (Go keeps the last; serde refuses or keeps another).
    Repeated {
        /// The key.
        key: String,
    },
}

/// Checks a document that Go decodes into `schema` (and serde into a struct of the same field
/// names): every key that folds to a field name must be spelled exactly, and no key may repeat,
/// in the top object and in the objects of its `arrays`. Other keys (a map's, an unknown
/// field's) are not compared: Go does not fold them either. `Ok(Some(_))` names the first
/// problem; `Err` is a syntax error.
pub fn misread_fields(bytes: &[u8], schema: &'static GoStruct) -> Result<Option<FieldProblem>, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let found = FieldsOf(schema).deserialize(&mut de)?;
    de.end()?;
    Ok(found)
}

/// One object decoded into a [`GoStruct`]: yields its first problem (the whole object is still
/// consumed).
struct FieldsOf(&'static GoStruct);

impl<'de> de::DeserializeSeed<'de> for FieldsOf {
    type Value = Option<FieldProblem>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldsOf {
    type Value = Option<FieldProblem>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut problem = None;
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let folded = go_fold(&key);
            let misspelled = self.0.fields.iter().find(|f| **f != key && go_fold(f) == folded);
            let nested = match self.0.arrays.iter().find(|(name, _)| *name == key) {
                Some((_, inner)) => map.next_value_seed(ArrayOf(inner))?,
                None => {
                    map.next_value::<de::IgnoredAny>()?;
                    None
                }
            };
            if problem.is_none() {
                problem = match misspelled {
                    Some(field) => Some(FieldProblem::Misspelled { key, field }),
                    None if seen.contains(&key) => Some(FieldProblem::Repeated { key }),
                    None => {
                        seen.insert(key);
                        nested
                    }
                };
            }
        }
        Ok(problem)
    }
}

/// An array of objects decoded into a [`GoStruct`].
struct ArrayOf(&'static GoStruct);

impl<'de> de::DeserializeSeed<'de> for ArrayOf {
    type Value = Option<FieldProblem>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArrayOf {
    type Value = Option<FieldProblem>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut problem = None;
        while let Some(p) = seq.next_element_seed(FieldsOf(self.0))? {
            problem = problem.or(p);
        }
        Ok(problem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_keys_pass() {
        assert!(reject_ambiguous_keys(br#"{"a":1,"b":{"c":[{"d":1,"e":2}]},"A1":null}"#).is_ok());
        assert!(reject_ambiguous_keys(b"[1,\"x\",true,null,1.5]").is_ok());
    }

    #[test]
    fn exact_duplicates_are_refused_at_any_depth() {
        assert!(reject_ambiguous_keys(br#"{"a":1,"a":2}"#).is_err());
        assert!(reject_ambiguous_keys(br#"{"x":[{"y":{"k":1,"k":1}}]}"#).is_err());
    }

    #[test]
    fn keys_differing_only_in_case_are_refused() {
        // see: issue 8 §6
        let e = reject_ambiguous_keys(br#"{"critical":{},"Critical":{}}"#).unwrap_err();
        assert!(e.to_string().contains("Critical"), "{e}");
        assert!(reject_ambiguous_keys(br#"{"o":{"Docker-Reference":1,"docker-reference":2}}"#).is_err());
    }

    #[test]
    fn unicode_folding_covers_gos_special_cases() {
        // U+212A KELVIN SIGN folds with k; U+017F LATIN SMALL LETTER LONG S with s.
        assert!(reject_ambiguous_keys("{\"kind\":1,\"\u{212A}ind\":2}".as_bytes()).is_err());
        assert!(reject_ambiguous_keys("{\"subject\":1,\"\u{17F}ubject\":2}".as_bytes()).is_err());
        assert!(reject_ambiguous_keys("{\"\u{3C3}\":1,\"\u{3A3}\":2}".as_bytes()).is_err());
        assert!(reject_ambiguous_keys("{\"digest\":1,\"d\u{130}gest\":2}".as_bytes()).is_err());
        // Different letters stay different.
        assert!(reject_ambiguous_keys("{\"stra\u{DF}e\":1,\"strasse\":2}".as_bytes()).is_ok());
        assert_eq!(go_fold("annotation\u{17F}"), go_fold("ANNOTATIONS"));
    }

    #[test]
    fn escaped_keys_are_compared_unescaped() {
        assert!(reject_ambiguous_keys(br#"{"critical":1,"\u0043ritical":2}"#).is_err());
    }

    #[test]
    fn exact_rule_keeps_case_variants_and_refuses_duplicates() {
        use serde::de::DeserializeSeed;
        let read = |text: &str| UniqueKeys(KeyRule::Exact).deserialize(&mut serde_json::Deserializer::from_str(text));
        let v = read(r#"{"labels":{"app":"a","App":"b"},"n":[1,-2,1.5,null,true]}"#).unwrap();
        assert_eq!(v, serde_json::json!({"labels":{"app":"a","App":"b"},"n":[1,-2,1.5,null,true]}));
        let e = read(r#"{"c":[{"image":"a","image":"b"}]}"#).unwrap_err();
        assert!(e.to_string().contains("\"image\" appears twice"), "{e}");
    }

    #[test]
    fn not_json_is_an_error() {
        assert!(reject_ambiguous_keys(b"{").is_err());
    }
}
