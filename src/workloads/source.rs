//! Where each value of a manifest file is written: the YAML (or JSON) stream read as events
//! with their spans (saphyr-parser), one tree of nodes per document, so that a JSON pointer
//! finds its node's line (for error messages) and, for a scalar, its exact characters (for
//! [`super::pin`]). It never decides what a document means: the values come from
//! serde_yaml_ng and serde_json ([`super::manifests`]); [`super::pin`] re-reads its output
//! with them and checks that the two readings agree.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// The documents of one stream, in order (every document the parser reports, empty ones
/// included, so that numbers match serde_yaml_ng's).
pub(crate) struct Source {
    pub documents: Vec<Tree>,
    /// The first explicit tag (`!!binary`, `!foo`), with its document and line.
    pub first_tag: Option<(usize, usize, String)>,
}

/// One document's nodes; node 0, when present, is the root.
#[derive(Default)]
pub(crate) struct Tree {
    nodes: Vec<Node>,
}

/// A node and where it starts.
struct Node {
    kind: NodeKind,
    line: usize,
}

enum NodeKind {
    Scalar(Scalar),
    Sequence(Vec<usize>),
    /// Entries in order; a key that is not a scalar is `None` (no pointer reaches it).
    Mapping(Vec<(Option<String>, usize)>),
    /// An alias to the anchored node.
    Alias(usize),
}

/// A scalar as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scalar {
    /// Its value once unescaped and folded.
    pub value: String,
    pub style: ScalarStyle,
    /// Its span as the parser reports it, in character indexes (start inclusive, end
    /// exclusive): it may start with the node's anchor and tag, and a quoted scalar's may end
    /// after the blanks and comment that follow it ([`super::pin`] finds the exact extent).
    pub start: usize,
    pub end: usize,
}

/// The stream could not be read as YAML events (serde_yaml_ng accepted it, so this is rare:
/// the two parsers disagree).
#[derive(Debug)]
pub(crate) struct SourceError {
    pub document: usize,
    pub line: usize,
    pub message: String,
}

/// An open collection while the events are read.
struct Frame {
    node: usize,
    /// In a mapping: the key read, waiting for its value.
    key: Option<Option<String>>,
}

impl Source {
    /// Reads the whole stream. Iterative: nesting depth costs heap, not stack.
    pub fn parse(text: &str) -> Result<Source, SourceError> {
        let mut documents = Vec::new();
        let mut tree = Tree::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut anchors: Vec<(usize, usize)> = Vec::new();
        let mut first_tag = None;
        for event in Parser::new_from_str(text) {
            let document = documents.len() + 1;
            let (event, span): (Event, Span) =
                event.map_err(|e| SourceError { document, line: e.marker().line(), message: e.info().to_owned() })?;
            let line = span.start.line();
            if let Event::Scalar(_, _, _, Some(tag))
            | Event::SequenceStart(_, Some(tag))
            | Event::MappingStart(_, Some(tag)) = &event
            {
                first_tag.get_or_insert_with(|| (document, line, tag_text(tag)));
            }
            let (kind, anchor, opens) = match event {
                Event::DocumentStart(_) => {
                    tree = Tree::default();
                    stack.clear();
                    anchors.clear();
                    continue;
                }
                Event::DocumentEnd => {
                    documents.push(std::mem::take(&mut tree));
                    continue;
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    stack.pop();
                    continue;
                }
                Event::Nothing | Event::StreamStart | Event::StreamEnd => continue,
                Event::Scalar(value, style, anchor, _) => (
                    NodeKind::Scalar(Scalar {
                        value: value.into_owned(),
                        style,
                        start: span.start.index(),
                        end: span.end.index(),
                    }),
                    anchor,
                    false,
                ),
                Event::SequenceStart(anchor, _) => (NodeKind::Sequence(Vec::new()), anchor, true),
                Event::MappingStart(anchor, _) => (NodeKind::Mapping(Vec::new()), anchor, true),
                Event::Alias(id) => {
                    let target = anchors.iter().rev().find(|(a, _)| *a == id).map(|(_, n)| *n);
                    let Some(target) = target else {
                        return Err(SourceError { document, line, message: "an alias to an unknown anchor".into() });
                    };
                    (NodeKind::Alias(target), 0, false)
                }
            };
            let id = tree.nodes.len();
            let key_text = match &kind {
                NodeKind::Scalar(s) => Some(s.value.clone()),
                _ => None,
            };
            tree.nodes.push(Node { kind, line });
            if anchor != 0 {
                anchors.push((anchor, id));
            }
            if let Some(frame) = stack.last_mut() {
                let parent = &mut tree.nodes[frame.node].kind;
                match parent {
                    NodeKind::Sequence(items) => items.push(id),
                    NodeKind::Mapping(entries) => match frame.key.take() {
                        None => frame.key = Some(key_text),
                        Some(key) => entries.push((key, id)),
                    },
                    NodeKind::Scalar(_) | NodeKind::Alias(_) => {}
                }
            }
            if opens {
                stack.push(Frame { node: id, key: None });
            }
        }
        Ok(Source { documents, first_tag })
    }

    /// The document at a 1-based position.
    pub fn document(&self, number: usize) -> Option<&Tree> {
        number.checked_sub(1).and_then(|i| self.documents.get(i))
    }
}

/// A tag as written in short form (`!!binary`, `!local`), or its full form.
fn tag_text(tag: &saphyr_parser::Tag) -> String {
    match tag.handle.as_str() {
        "tag:yaml.org,2002:" => format!("!!{}", tag.suffix),
        "!" => format!("!{}", tag.suffix),
        handle => format!("{handle}{}", tag.suffix),
    }
}

impl Tree {
    /// The line (1-based) where the node at `pointer` starts.
    pub fn line_of(&self, pointer: &str) -> Option<usize> {
        self.find(pointer).map(|n| self.nodes[n].line)
    }

    /// The scalar at `pointer` (through aliases: the anchored scalar).
    pub fn scalar_at(&self, pointer: &str) -> Option<&Scalar> {
        let n = self.resolve(self.find(pointer)?)?;
        match &self.nodes[n].kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The node an RFC 6901 pointer names, following aliases on the way.
    fn find(&self, pointer: &str) -> Option<usize> {
        if self.nodes.is_empty() {
            return None;
        }
        let mut node = 0;
        if pointer.is_empty() {
            return Some(node);
        }
        for segment in pointer.strip_prefix('/')?.split('/') {
            let segment = segment.replace("~1", "/").replace("~0", "~");
            node = match &self.nodes[self.resolve(node)?].kind {
                NodeKind::Mapping(entries) => {
                    entries.iter().rev().find(|(k, _)| k.as_deref() == Some(segment.as_str())).map(|(_, v)| *v)?
                }
                NodeKind::Sequence(items) => *items.get(segment.parse::<usize>().ok()?)?,
                NodeKind::Scalar(_) | NodeKind::Alias(_) => return None,
            };
        }
        Some(node)
    }

    /// Follows aliases to the anchored node (bounded: an alias inside its own anchor loops).
    fn resolve(&self, mut node: usize) -> Option<usize> {
        for _ in 0..=self.nodes.len() {
            match self.nodes.get(node)?.kind {
                NodeKind::Alias(target) => node = target,
                _ => return Some(node),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_find_lines_and_spans() {
        let text = "# c\na: 1\n---\nspec:\n  containers:\n  - name: x\n    image: \"reg/x:1\" # pinned?\n";
        let source = Source::parse(text).unwrap();
        assert_eq!(source.documents.len(), 2);
        let doc = source.document(2).unwrap();
        assert_eq!(doc.line_of("/spec/containers/0"), Some(6));
        let s = doc.scalar_at("/spec/containers/0/image").unwrap();
        assert_eq!((s.value.as_str(), s.style), ("reg/x:1", ScalarStyle::DoubleQuoted));
        let chars: Vec<char> = text.chars().collect();
        assert!(chars[s.start..s.end].iter().collect::<String>().starts_with("\"reg/x:1\""));
        assert!(doc.scalar_at("/spec/containers/1/image").is_none());
        assert!(doc.scalar_at("/spec/containers").is_none());
    }

    #[test]
    fn aliases_lead_to_the_anchored_scalar() {
        let text = "a: &img reg/x:1\nb: [*img]\nc: &m {k: v}\nd: *m\n";
        let source = Source::parse(text).unwrap();
        let doc = source.document(1).unwrap();
        assert_eq!(doc.scalar_at("/b/0"), doc.scalar_at("/a"));
        assert_eq!(doc.scalar_at("/d/k").map(|s| s.value.as_str()), Some("v"));
    }

    #[test]
    fn escaped_pointer_segments() {
        let source = Source::parse("{\"a/b\": {\"~\": x}}").unwrap();
        let doc = source.document(1).unwrap();
        assert_eq!(doc.scalar_at("/a~1b/~0").map(|s| s.value.as_str()), Some("x"));
    }
}
