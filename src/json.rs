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
//! Pure: bytes in, a verdict out; serde_json's own recursion limit bounds the depth.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Two keys of one JSON object that a case-insensitive reader takes for the same key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AmbiguousKeys(String);

/// Refuses JSON in which any object has two keys equal under case folding (exact duplicates
/// included). Syntax errors are reported too (the caller's typed parse would reject them anyway).
pub fn reject_ambiguous_keys(bytes: &[u8]) -> Result<(), AmbiguousKeys> {
    serde_json::from_slice::<Checked>(bytes).map(|_| ()).map_err(|e| AmbiguousKeys(e.to_string()))
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

/// A JSON value walked only to check its objects' keys.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(go_fold(&key)) {
                return Err(de::Error::custom(format_args!(
                    "object key {key:?} appears twice (keys that differ only in case count as the same key, \
                     as Go's encoding/json reads them)"
                )));
            }
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
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
    fn not_json_is_an_error() {
        assert!(reject_ambiguous_keys(b"{").is_err());
    }
}
