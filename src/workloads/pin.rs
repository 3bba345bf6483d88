//! Writing verified digests back into manifest files: each pinned image scalar is replaced
//! where it is written, and every other byte (comments, quoting, key order, indentation, the
//! other documents) stays as it was.
//!
//! The scalar is found with the event parser's spans ([`super::source`]); the result is then
//! read again with [`super::parse_manifests`]' readers and must equal the input with exactly
//! the pinned values replaced, or nothing is returned: a rewrite that changed anything else
//! (an alias that also names the scalar, a parser disagreement, a quoting mistake) fails.

use saphyr_parser::ScalarStyle;
use serde_json::Value;

use super::manifests::{manifests_of, read_documents, Document, ManifestError, Place, Syntax};
use super::source::{Scalar, Source};

/// One image to rewrite: the value at `pointer` in the `document`-th document (as
/// [`super::ContainerImage::pointer`] and [`super::Manifest::document`] give them) becomes `image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// 1-based document number.
    pub document: usize,
    /// RFC 6901 pointer from the document's root to the image value.
    pub pointer: String,
    /// The new image reference (e.g. `registry.example/app@sha256:…`).
    pub image: String,
}

/// Why manifests could not be pinned (nothing is written then).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// The manifests could not be read.
    #[error(transparent)]
    Manifests(#[from] ManifestError),
    /// A pin names no container image of the document.
    #[error("document {document}: {pointer} is not a container image of the manifests: pin only the images listed")]
    NotAnImage {
        /// The document.
        document: usize,
        /// The pointer given.
        pointer: String,
    },
    /// The image's scalar could not be found in the text (the YAML readers disagree).
    #[error("{at}: {pointer}: the image's text could not be found ({reason}); pin this file by hand")]
    NotFound {
        /// Where.
        at: Place,
        /// The pin's pointer.
        pointer: String,
        /// Why.
        reason: String,
    },
    /// The image is written as a block scalar (`|` or `>`).
    #[error("{at}: {pointer}: the image is a block scalar: write it on one line to pin it")]
    BlockScalar {
        /// Where.
        at: Place,
        /// The pin's pointer.
        pointer: String,
    },
    /// Two pins (one through a YAML alias) give one scalar different values.
    #[error(
        "{at}: {pointer}: two pins give this scalar different images (a YAML alias?): pin them alike or write them out"
    )]
    Conflict {
        /// Where.
        at: Place,
        /// The second pin's pointer.
        pointer: String,
    },
    /// The rewritten text does not read as the input with exactly the pins applied.
    #[error("pinning would change more than the pinned images ({reason}): nothing was written; pin this file by hand")]
    Unexpected {
        /// What differs.
        reason: String,
    },
}

/// A replacement of the bytes `start..end` by `text`.
#[derive(Debug, PartialEq, Eq)]
struct Edit {
    start: usize,
    end: usize,
    text: String,
    document: usize,
    pointer: String,
}

/// Rewrites the image at each pin (YAML or JSON text, as [`super::parse_manifests`] reads
/// it) and returns the new text; no other byte changes. Pins may share a scalar through a YAML
/// alias when they give it the same image. A JSON text must hold one object (several in a
/// row are read by [`super::parse_manifests`] but cannot be pinned). Fails closed: see
/// [`PinError`].
pub fn pin(text: &str, pins: &[Pin]) -> Result<String, PinError> {
    let before = read_documents(text)?;
    let manifests = manifests_of(text, &before)?;
    let syntax = Syntax::of(text);
    let source = Source::parse(text);
    let mut edits = Vec::with_capacity(pins.len());
    let mut found: Vec<(&Scalar, Place)> = Vec::with_capacity(pins.len());
    for pin in pins {
        let is_image =
            manifests.iter().any(|m| m.document == pin.document && m.images.iter().any(|i| i.pointer == pin.pointer));
        if !is_image {
            return Err(PinError::NotAnImage { document: pin.document, pointer: pin.pointer.clone() });
        }
        let at = Place { document: pin.document, line: None };
        let not_found =
            |at: Place, reason: &str| PinError::NotFound { at, pointer: pin.pointer.clone(), reason: reason.into() };
        let source =
            source.as_ref().map_err(|e| not_found(Place { document: e.document, line: Some(e.line) }, &e.message))?;
        let tree = source.document(pin.document).ok_or_else(|| not_found(at, "no such document"))?;
        let at = Place { line: tree.line_of(&pin.pointer), ..at };
        let scalar = tree.scalar_at(&pin.pointer).ok_or_else(|| not_found(at, "not a scalar"))?;
        let current = before
            .get(pin.document.wrapping_sub(1))
            .and_then(|d| d.value.pointer(&pin.pointer))
            .and_then(Value::as_str);
        if current != Some(scalar.value.as_str()) {
            return Err(not_found(at, "the readers disagree on its value"));
        }
        let text = match (syntax, scalar.style) {
            (_, ScalarStyle::Literal | ScalarStyle::Folded) => {
                return Err(PinError::BlockScalar { at, pointer: pin.pointer.clone() })
            }
            (Syntax::Json, _) => json_string(&pin.image),
            (Syntax::Yaml, ScalarStyle::Plain) if plain_safe(&pin.image) => pin.image.clone(),
            (Syntax::Yaml, ScalarStyle::SingleQuoted) if printable(&pin.image) => {
                format!("'{}'", pin.image.replace('\'', "''"))
            }
            (Syntax::Yaml, _) => yaml_double_quoted(&pin.image),
        };
        found.push((scalar, at));
        edits.push(Edit { start: 0, end: 0, text, document: pin.document, pointer: pin.pointer.clone() });
    }
    // Spans are in characters: to bytes (one pass), then to each scalar's exact extent.
    let offsets = byte_offsets(text, found.iter().flat_map(|(s, _)| [s.start, s.end]));
    for (edit, (scalar, at)) in edits.iter_mut().zip(&found) {
        let span = offsets.get(&scalar.start).zip(offsets.get(&scalar.end));
        let Some((start, end)) = span.and_then(|(&s, &e)| extent(text, s, e, scalar)) else {
            return Err(PinError::NotFound {
                at: *at,
                pointer: edit.pointer.clone(),
                reason: "its span is not the scalar".into(),
            });
        };
        (edit.start, edit.end) = (start, end);
    }
    let out = apply(text, edits)?;
    check(&before, pins, &out)?;
    Ok(out)
}

/// The edits applied (sorted; the same edit twice, through an alias, once).
fn apply(text: &str, mut edits: Vec<Edit>) -> Result<String, PinError> {
    edits.sort_by_key(|e| (e.start, e.end));
    let mut kept: Vec<Edit> = Vec::with_capacity(edits.len());
    for edit in edits {
        match kept.last() {
            Some(last) if last.start == edit.start && last.end == edit.end && last.text == edit.text => {}
            Some(last) if edit.start < last.end => {
                return Err(PinError::Conflict {
                    at: Place { document: edit.document, line: None },
                    pointer: edit.pointer,
                })
            }
            _ => kept.push(edit),
        }
    }
    let mut out = String::with_capacity(text.len() + kept.iter().map(|e| e.text.len()).sum::<usize>());
    let mut done = 0;
    for edit in &kept {
        if edit.start < done {
            return Err(PinError::Conflict {
                at: Place { document: edit.document, line: None },
                pointer: edit.pointer.clone(),
            });
        }
        let Some(before) = text.get(done..edit.start) else {
            return Err(PinError::Unexpected { reason: format!("{} is not on character boundaries", edit.pointer) });
        };
        out.push_str(before);
        out.push_str(&edit.text);
        done = edit.end;
    }
    out.push_str(text.get(done..).unwrap_or_default());
    Ok(out)
}

/// The exact bytes of a scalar within the parser's span (`start..end`, bytes): its anchor,
/// tag and any blank or comment between them skipped at the start; a quoted scalar ends at its
/// closing quote (the span may run on over blanks and a comment), a plain one where the span
/// ends, less trailing blanks. `None` when what is found is not the scalar.
fn extent(text: &str, start: usize, end: usize, scalar: &Scalar) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let blank = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let mut i = start;
    loop {
        while i < end && blank(bytes[i]) {
            i += 1;
        }
        match bytes.get(i) {
            Some(b'&' | b'!') => {
                while i < end && !blank(bytes[i]) && !matches!(bytes[i], b',' | b'[' | b']' | b'{' | b'}') {
                    i += 1;
                }
            }
            Some(b'#') => {
                while i < end && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            _ => break,
        }
    }
    let stop = match scalar.style {
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
            let quote = if scalar.style == ScalarStyle::SingleQuoted { b'\'' } else { b'"' };
            if bytes.get(i) != Some(&quote) {
                return None;
            }
            let mut j = i + 1;
            loop {
                match (bytes.get(j)?, bytes.get(j + 1)) {
                    (b'\\', _) if quote == b'"' => j += 2,
                    (b'\'', Some(b'\'')) if quote == b'\'' => j += 2,
                    (&b, _) if b == quote => break j + 1,
                    _ => j += 1,
                }
            }
        }
        ScalarStyle::Plain => {
            let mut j = end;
            while j > i && blank(bytes[j - 1]) {
                j -= 1;
            }
            // A plain scalar reads as its words joined (folded lines): anything else in the
            // span (a comment) means the span is not the scalar's.
            if !text.get(i..j)?.split_whitespace().eq(scalar.value.split_whitespace()) {
                return None;
            }
            j
        }
        ScalarStyle::Literal | ScalarStyle::Folded => return None,
    };
    (stop <= end && i < stop).then_some((i, stop))
}

/// Byte offsets of the given character indexes (one pass over the text).
fn byte_offsets(text: &str, indexes: impl Iterator<Item = usize>) -> std::collections::HashMap<usize, usize> {
    let mut wanted: Vec<usize> = indexes.collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = std::collections::HashMap::with_capacity(wanted.len());
    let mut next = wanted.iter().peekable();
    for (i, (byte, _)) in text.char_indices().chain([(text.len(), ' ')]).enumerate() {
        while let Some(&&w) = next.peek() {
            if w != i {
                break;
            }
            found.insert(w, byte);
            next.next();
        }
        if next.peek().is_none() {
            break;
        }
    }
    found
}

/// The new text must read as the old with exactly the pinned values replaced.
fn check(before: &[Document], pins: &[Pin], out: &str) -> Result<(), PinError> {
    let unexpected = |reason: String| PinError::Unexpected { reason };
    let after = read_documents(out).map_err(|e| unexpected(format!("the result does not read: {e}")))?;
    manifests_of(out, &after).map_err(|e| unexpected(format!("the result does not read: {e}")))?;
    if after.len() != before.len() {
        return Err(unexpected(format!("{} documents became {}", before.len(), after.len())));
    }
    let mut expected: Vec<Value> = before.iter().map(|d| d.value.clone()).collect();
    for pin in pins {
        if let Some(v) = expected.get_mut(pin.document.wrapping_sub(1)).and_then(|d| d.pointer_mut(&pin.pointer)) {
            *v = Value::String(pin.image.clone());
        }
    }
    for (document, (want, got)) in expected.iter().zip(&after).enumerate() {
        if let Some(pointer) = first_difference(want, &got.value) {
            return Err(unexpected(format!("document {}: {pointer} would change too", document + 1)));
        }
    }
    Ok(())
}

/// The pointer of the first value that differs between two values (walked without recursion).
fn first_difference(a: &Value, b: &Value) -> Option<String> {
    let mut stack = vec![(String::new(), a, b)];
    while let Some((pointer, a, b)) = stack.pop() {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) if x.len() == y.len() => {
                for (k, va) in x {
                    let at = format!("{pointer}/{}", super::manifests::escape(k));
                    match y.get(k) {
                        Some(vb) => stack.push((at, va, vb)),
                        None => return Some(at),
                    }
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                stack.extend(x.iter().zip(y).enumerate().map(|(i, (va, vb))| (format!("{pointer}/{i}"), va, vb)));
            }
            _ if a == b => {}
            _ => return Some(if pointer.is_empty() { "the document".into() } else { pointer }),
        }
    }
    None
}

/// A plain YAML scalar that reads back as this string in YAML 1.1 and 1.2 (kubectl's reader
/// and serde_yaml_ng), in block and flow context: the characters of image references, starting
/// with a letter or digit, not ending with `:`, and with a `/` or `@` so that it cannot be a
/// number, boolean, null or timestamp.
fn plain_safe(value: &str) -> bool {
    value.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "._-/:@+".contains(c))
        && !value.ends_with(':')
        && value.contains(['/', '@'])
}

/// No character that a quoted YAML scalar would fold or that needs an escape.
fn printable(value: &str) -> bool {
    !value.chars().any(needs_escape)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// A JSON string literal.
fn json_string(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| yaml_double_quoted(value))
}

/// A YAML double-quoted scalar: `"` and `\` escaped, and every character a YAML 1.1 reader
/// could take for a line break or that is not printable as `\uXXXX`.
fn yaml_double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::parse_manifests;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    /// Pins every image of `text` whose repository has a digest in `digests` to that digest.
    fn pins_for(text: &str, digests: &[(&str, &str)]) -> Vec<Pin> {
        let mut pins = Vec::new();
        for m in parse_manifests(text).unwrap() {
            for image in &m.images {
                let repo = image.image.rsplit_once(':').map_or(image.image.as_str(), |(r, _)| r);
                if let Some((_, d)) = digests.iter().find(|(r, _)| *r == repo) {
                    pins.push(Pin {
                        document: m.document,
                        pointer: image.pointer.clone(),
                        image: format!("{repo}@{d}"),
                    });
                }
            }
        }
        pins
    }

    fn one(pointer: &str, image: &str) -> Vec<Pin> {
        vec![Pin { document: 1, pointer: pointer.into(), image: image.into() }]
    }

    #[test]
    fn pin_multi_document_fixture_byte_for_byte() {
        let text = include_str!("../../testdata/workloads/multi.yaml");
        let pins = pins_for(
            text,
            &[
                ("registry.example/shop/migrate", D1),
                ("registry.example/shop/app", D2),
                ("registry.example/shop/proxy", D3),
            ],
        );
        assert_eq!(pins.len(), 4);
        assert_eq!(pin(text, &pins).unwrap(), include_str!("../../testdata/workloads/multi.pinned.yaml"));
    }

    #[test]
    fn pin_list_fixture_byte_for_byte() {
        let text = include_str!("../../testdata/workloads/list.yaml");
        let pins = pins_for(text, &[("registry.example/shop/app", D2)]);
        assert_eq!(
            pins.iter().map(|p| p.pointer.as_str()).collect::<Vec<_>>(),
            ["/items/1/spec/template/spec/containers/0/image", "/items/2/spec/containers/0/image"]
        );
        assert_eq!(pin(text, &pins).unwrap(), include_str!("../../testdata/workloads/list.pinned.yaml"));
    }

    #[test]
    fn pin_json_fixture_byte_for_byte() {
        let text = include_str!("../../testdata/workloads/deployment.json");
        let pins = pins_for(text, &[("registry.example/shop/migrate", D1), ("registry.example/shop/app", D2)]);
        assert_eq!(pin(text, &pins).unwrap(), include_str!("../../testdata/workloads/deployment.pinned.json"));
    }

    #[test]
    fn pin_every_kind_fixture() {
        for text in [
            include_str!("../../testdata/workloads/pod.yaml"),
            include_str!("../../testdata/workloads/deployment.yaml"),
            include_str!("../../testdata/workloads/replicaset.yaml"),
            include_str!("../../testdata/workloads/statefulset.yaml"),
            include_str!("../../testdata/workloads/daemonset.yaml"),
            include_str!("../../testdata/workloads/replicationcontroller.yaml"),
            include_str!("../../testdata/workloads/job.yaml"),
            include_str!("../../testdata/workloads/cronjob.yaml"),
        ] {
            let manifest = &parse_manifests(text).unwrap()[0];
            let pins: Vec<Pin> = manifest
                .images
                .iter()
                .map(|i| Pin { document: 1, pointer: i.pointer.clone(), image: format!("pinned.example/x@{D1}") })
                .collect();
            let out = pin(text, &pins).unwrap();
            let after = &parse_manifests(&out).unwrap()[0];
            assert!(after.images.iter().all(|i| i.image == format!("pinned.example/x@{D1}")));
            // Only the image lines changed.
            let changed = text.lines().zip(out.lines()).filter(|(a, b)| a != b).count();
            assert_eq!((changed, text.lines().count()), (manifest.images.len(), out.lines().count()));
        }
    }

    #[test]
    fn no_pins_leave_the_text_alone() {
        let text = include_str!("../../testdata/workloads/multi.yaml");
        assert_eq!(pin(text, &[]).unwrap(), text);
    }

    const POD: &str = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    image: reg/a:1\n";

    #[test]
    fn values_yaml_would_misread_are_quoted() {
        for (image, written) in [
            ("true", "\"true\""),
            ("1.5", "\"1.5\""),
            ("reg/a:1 # not a comment", "\"reg/a:1 # not a comment\""),
            ("reg/a:", "\"reg/a:\""),
            ("-reg/a", "\"-reg/a\""),
            ("reg/\"a\"\n", "\"reg/\\\"a\\\"\\u000A\""),
            ("reg/a\u{2028}", "\"reg/a\\u2028\""),
        ] {
            let out = pin(POD, &one("/spec/containers/0/image", image)).unwrap();
            assert_eq!(out, POD.replace("reg/a:1", written), "{image:?}");
        }
        let quoted = POD.replace("reg/a:1", "'reg/a:1'");
        let out = pin(&quoted, &one("/spec/containers/0/image", "reg/it's@sha256:1")).unwrap();
        assert!(out.contains("image: 'reg/it''s@sha256:1'\n"), "{out}");
    }

    #[test]
    fn anchors_and_comments_around_the_scalar_are_kept() {
        let text = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    image: &img \"reg/a:1\"   # the app\n  - name: b\n    image: &b\n      reg/b:1 # b\n";
        let pins = [
            Pin { document: 1, pointer: "/spec/containers/0/image".into(), image: format!("reg/a@{D1}") },
            Pin { document: 1, pointer: "/spec/containers/1/image".into(), image: format!("reg/b@{D2}") },
        ];
        let out = pin(text, &pins).unwrap();
        let want = text.replace("\"reg/a:1\"", &format!("\"reg/a@{D1}\"")).replace("reg/b:1", &format!("reg/b@{D2}"));
        assert_eq!(out, want);
    }

    #[test]
    fn aliased_images_pin_together_or_not_at_all() {
        // see: issue 11
        let text = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    image: &img reg/a:1\n  - name: b\n    image: *img\n";
        let both = [
            Pin { document: 1, pointer: "/spec/containers/0/image".into(), image: format!("reg/a@{D1}") },
            Pin { document: 1, pointer: "/spec/containers/1/image".into(), image: format!("reg/a@{D1}") },
        ];
        assert_eq!(pin(text, &both).unwrap(), text.replace("&img reg/a:1", &format!("&img reg/a@{D1}")));
        // One pin would change the other container too: refused.
        let e = pin(text, &both[..1]).unwrap_err();
        assert!(
            matches!(&e, PinError::Unexpected { reason } if reason.contains("/spec/containers/1/image would change too")),
            "{e:?}"
        );
        let mut differ = both.clone();
        differ[1].image = format!("reg/a@{D2}");
        assert!(matches!(pin(text, &differ), Err(PinError::Conflict { .. })));
    }

    #[test]
    fn multi_line_plain_and_non_ascii_text() {
        let text = "# café ünïcödé\napiVersion: v1\nkind: Pod\nmetadata: {name: é}\nspec:\n  containers:\n  - name: a\n    image: reg/a\n      :1\n    # trailing ü\n";
        let out = pin(text, &one("/spec/containers/0/image", &format!("reg/a@{D1}"))).unwrap();
        assert_eq!(out, text.replace("reg/a\n      :1", &format!("reg/a@{D1}")));
        let crlf = POD.replace('\n', "\r\n");
        assert_eq!(
            pin(&crlf, &one("/spec/containers/0/image", "reg/b@x")).unwrap(),
            crlf.replace("reg/a:1", "reg/b@x")
        );
    }

    #[test]
    fn block_scalar_images_are_refused() {
        let text = POD.replace("image: reg/a:1", "image: |-\n      reg/a:1");
        let e = pin(&text, &one("/spec/containers/0/image", "reg/b@x")).unwrap_err();
        assert!(matches!(e, PinError::BlockScalar { at: Place { document: 1, line: Some(_) }, .. }), "{e:?}");
    }

    #[test]
    fn pins_that_name_no_image_are_refused() {
        for (document, pointer) in [
            (1, "/metadata/name"),
            (1, "/spec/containers/0/name"),
            (0, "/spec/containers/0/image"),
            (2, "/spec/containers/0/image"),
        ] {
            let pins = [Pin { document, pointer: pointer.into(), image: "x/y".into() }];
            assert!(matches!(pin(POD, &pins), Err(PinError::NotAnImage { .. })), "{document} {pointer}");
        }
    }

    #[test]
    fn pin_to_an_empty_image_is_refused() {
        let e = pin(POD, &one("/spec/containers/0/image", "")).unwrap_err();
        assert!(matches!(&e, PinError::Unexpected { reason } if reason.contains("has no image")), "{e:?}");
    }

    #[test]
    fn unreadable_manifests_are_refused() {
        let text = include_str!("../../testdata/workloads/duplicate-image.yaml");
        assert!(matches!(pin(text, &[]), Err(PinError::Manifests(ManifestError::Syntax { .. }))));
    }

    #[test]
    fn json_streams_of_several_objects_are_not_pinned() {
        let text = format!("{{\"apiVersion\":\"v1\",\"kind\":\"Service\"}}\n{}", POD_JSON);
        assert!(matches!(pin(&text, &[]), Ok(ref t) if *t == text));
        let e = pin(&text, &[Pin { document: 2, pointer: "/spec/containers/0/image".into(), image: "reg/b@x".into() }]);
        assert!(matches!(e, Err(PinError::NotFound { .. })), "{e:?}");
    }

    const POD_JSON: &str = r#"{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"a","image":"reg/a:1"}]}}"#;

    #[test]
    fn json_escapes_are_replaced_whole() {
        let text = r#"{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"a","image":"reg\/a:\u0031"}]}}"#;
        let out = pin(text, &one("/spec/containers/0/image", "reg/a@x")).unwrap();
        assert_eq!(out, text.replace(r#""reg\/a:\u0031""#, r#""reg/a@x""#));
    }
}
