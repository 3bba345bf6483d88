//! Manifest files as `kubectl apply -f` reads them: a YAML stream of documents (or JSON), each
//! an object or a `kind: List` of objects, read into values with no key given twice.
//!
//! serde_yaml_ng (and serde_json for JSON) reads the values, through [`UniqueKeys`] with the
//! exact rule: serde keeps one of two equal keys silently, and a gate that read one `image`
//! while the API server applied the other would be bypassed. YAML merge keys (`<<`) are
//! refused for the same reason: Kubernetes' YAML reader merges them, serde_yaml_ng would not;
//! so are explicit tags (`!!binary` is decoded by one, kept as text by the other). YAML is also
//! read as events ([`super::source`]), which must agree on the documents.
//! Errors name the document and, where it can be found, the line.

use std::fmt;

use serde::de::DeserializeSeed;
use serde_json::Value;

use super::source::Source;
use super::{images_of, ContainerImage, WorkloadError};
use crate::json::{KeyRule, UniqueKeys};

/// The largest manifest text read (16 MiB: far above what the API server stores per object,
/// 1.5 MiB, times a generous number of objects).
pub const MAX_MANIFEST_BYTES: usize = 16 << 20;

/// The most documents (and list items) read from one text.
pub const MAX_DOCUMENTS: usize = 10_000;

/// One Kubernetes object of a manifest file and the images it would run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Manifest {
    /// The document's 1-based position in the stream (empty documents count; the items of a
    /// `kind: List` share their list's number).
    pub document: usize,
    /// The object's `apiVersion`.
    pub api_version: String,
    /// The object's `kind`.
    pub kind: String,
    /// `metadata.name` (`None` when the object has none, e.g. it uses `generateName`).
    pub name: Option<String>,
    /// `metadata.namespace`, if set.
    pub namespace: Option<String>,
    /// Its container images (empty for a kind that runs none); pointers start at the
    /// document's root (`/items/N/…` for an item of a list).
    pub images: Vec<ContainerImage>,
}

/// Where in a manifest text something is: the document and, when known, the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// 1-based document number.
    pub document: usize,
    /// 1-based line, when it could be found.
    pub line: Option<usize>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "document {}, line {line}", self.document),
            None => write!(f, "document {}", self.document),
        }
    }
}

/// Why a manifest text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The text is larger than [`MAX_MANIFEST_BYTES`].
    #[error("the manifests are {size} bytes, more than the {max} read: split them into several files")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`MAX_DOCUMENTS`] documents or list items.
    #[error("more than {max} documents or list items: split the manifests into several files")]
    TooManyDocuments {
        /// The limit.
        max: usize,
    },
    /// Not YAML (or JSON), or an object with a key given twice; the message carries the
    /// field path.
    #[error("{at}: {message}")]
    Syntax {
        /// Where.
        at: Place,
        /// What the parser said (with the field path, e.g. `spec.template.spec`).
        message: String,
    },
    /// A YAML merge key (`<<`): Kubernetes would merge it, sigil does not, so it is refused.
    #[error("{at}: {pointer}: YAML merge keys (<<) are not supported: write the merged keys out")]
    MergeKey {
        /// Where.
        at: Place,
        /// The mapping holding it.
        pointer: String,
    },
    /// An explicit YAML tag (`!!binary`, `!!timestamp`, `!custom`): readers disagree on what
    /// tagged values mean, so they are refused.
    #[error("{at}: the YAML tag {tag} is not supported: write the value without a tag")]
    Tag {
        /// Where.
        at: Place,
        /// The tag.
        tag: String,
    },
    /// A document (or list item) that is not a Kubernetes object.
    #[error("{at}: {pointer}: expected a Kubernetes object (a mapping with apiVersion and kind)")]
    NotAnObject {
        /// Where.
        at: Place,
        /// The document (empty) or item (`/items/N`).
        pointer: String,
    },
    /// A `kind: List` without an `items` list.
    #[error("{at}: a List without an items list: give its objects under items")]
    ListWithoutItems {
        /// Where.
        at: Place,
    },
    /// A typed list (`PodList`, `DeploymentList`, …) as the API returns it: its items carry no
    /// kind, so they are refused rather than guessed.
    #[error("{at}: {kind} is not read (its items have no kind): use `kubectl get -o yaml`, which prints a List")]
    TypedList {
        /// Where.
        at: Place,
        /// The list kind.
        kind: String,
    },
    /// A workload whose images could not be listed.
    #[error("{at}: {error}")]
    Workload {
        /// Where (the line of the value the error points at).
        at: Place,
        /// What is wrong.
        #[source]
        error: WorkloadError,
    },
}

/// The syntax of a manifest text: JSON if its first non-blank character is `{` (as kubectl
/// decides), YAML otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    Yaml,
    Json,
}

impl Syntax {
    pub fn of(text: &str) -> Syntax {
        match text.trim_start().starts_with('{') {
            true => Syntax::Json,
            false => Syntax::Yaml,
        }
    }
}

/// One document of a stream, read, with its 1-based position (`Value::Null` when empty).
pub(crate) struct Document {
    pub number: usize,
    pub value: Value,
}

/// Reads every Kubernetes object of a manifest text (multi-document YAML, or JSON: one object
/// or several in a row) and lists the images of each workload. Empty documents are skipped; a
/// `kind: List` (`v1`) gives its items, each with pointers from the document's root
/// (`/items/N/…`). Kinds that run nothing (Service, ConfigMap, …) appear with no images.
///
/// Refused: texts over [`MAX_MANIFEST_BYTES`] or [`MAX_DOCUMENTS`]; a key given twice in any
/// object; YAML merge keys and explicit tags; a document that is not an object; every
/// [`WorkloadError`] but `NotAWorkload`.
pub fn parse_manifests(text: &str) -> Result<Vec<Manifest>, ManifestError> {
    manifests_of(text, &read_documents(text)?)
}

/// The objects of documents read from `text` (which locates errors).
pub(crate) fn manifests_of(text: &str, documents: &[Document]) -> Result<Vec<Manifest>, ManifestError> {
    let mut manifests = Vec::new();
    for document in documents {
        objects_of(text, document, &mut manifests)?;
    }
    Ok(manifests)
}

/// Every document of the text as a value (bounded, keys unique, merge keys refused).
pub(crate) fn read_documents(text: &str) -> Result<Vec<Document>, ManifestError> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge { size: text.len(), max: MAX_MANIFEST_BYTES });
    }
    let mut documents: Vec<Document> = Vec::new();
    match Syntax::of(text) {
        Syntax::Json => {
            for value in serde_json::Deserializer::from_str(text).into_iter::<ExactKeys>() {
                let at = Place { document: documents.len() + 1, line: None };
                let value = value.map_err(|e| {
                    let line = Some(e.line());
                    let suffix = format!(" at line {} column {}", e.line(), e.column());
                    let message = e.to_string();
                    let message = message.strip_suffix(&suffix).unwrap_or(&message).to_owned();
                    ManifestError::Syntax { at: Place { line, ..at }, message }
                })?;
                push(&mut documents, value.0)?;
            }
        }
        Syntax::Yaml => {
            for document in serde_yaml_ng::Deserializer::from_str(text) {
                let at = Place { document: documents.len() + 1, line: None };
                let value = UniqueKeys(KeyRule::Exact).deserialize(document).map_err(|e| yaml_error(text, at, &e))?;
                if let Some(pointer) = merge_key(&value) {
                    return Err(locate(text, ManifestError::MergeKey { at, pointer: pointer.clone() }, &pointer));
                }
                push(&mut documents, value)?;
            }
            agree(text, &documents)?;
        }
    }
    Ok(documents)
}

/// The event reader (which [`super::pin`] and error lines use) must read the YAML too, with
/// as many documents, and no document may carry an explicit tag: serde_yaml_ng reads
/// `!!binary cmVn` as the text `cmVn` and `!!timestamp` as written, where Kubernetes' reader
/// decodes them, so the gate would check another image than the one that runs.
fn agree(text: &str, documents: &[Document]) -> Result<(), ManifestError> {
    let source = Source::parse(text).map_err(|e| ManifestError::Syntax {
        at: Place { document: e.document, line: Some(e.line) },
        message: format!("{} (the YAML event reader refuses what serde_yaml_ng read: simplify the YAML)", e.message),
    })?;
    if let Some((document, line, tag)) = source.first_tag {
        return Err(ManifestError::Tag { at: Place { document, line: Some(line) }, tag });
    }
    // An empty text is one empty document to serde_yaml_ng and none to the event reader.
    let empty = documents.iter().all(|d| d.value.is_null()) && source.documents.is_empty();
    if documents.len() != source.documents.len() && !empty {
        return Err(ManifestError::Syntax {
            at: Place { document: documents.len().min(source.documents.len()) + 1, line: None },
            message: format!(
                "the YAML readers count {} and {} documents: separate documents with `---` lines",
                documents.len(),
                source.documents.len()
            ),
        });
    }
    Ok(())
}

fn push(documents: &mut Vec<Document>, value: Value) -> Result<(), ManifestError> {
    if documents.len() >= MAX_DOCUMENTS {
        return Err(ManifestError::TooManyDocuments { max: MAX_DOCUMENTS });
    }
    documents.push(Document { number: documents.len() + 1, value });
    Ok(())
}

/// A JSON value read with the exact duplicate-key rule (for serde_json's stream reader).
struct ExactKeys(Value);

impl<'de> serde::Deserialize<'de> for ExactKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        UniqueKeys(KeyRule::Exact).deserialize(d).map(ExactKeys)
    }
}

/// serde_yaml_ng's error as "document N, line L: path: message"; or, when a tag in this
/// document or an earlier one is the cause (serde_yaml_ng refuses custom tags as "invalid type:
/// enum"), the tag.
fn yaml_error(text: &str, at: Place, e: &serde_yaml_ng::Error) -> ManifestError {
    if let Some((document, line, tag)) = Source::parse(text).ok().and_then(|s| s.first_tag) {
        if document <= at.document {
            return ManifestError::Tag { at: Place { document, line: Some(line) }, tag };
        }
    }
    let message = e.to_string();
    let Some(location) = e.location() else { return ManifestError::Syntax { at, message } };
    let suffix = format!(" at line {} column {}", location.line(), location.column());
    let message = message.strip_suffix(&suffix).unwrap_or(&message).to_owned();
    ManifestError::Syntax { at: Place { line: Some(location.line()), ..at }, message }
}

/// The pointer of the first mapping that has a `<<` key (walked without recursion).
fn merge_key(value: &Value) -> Option<String> {
    let mut stack = vec![(String::new(), value)];
    while let Some((pointer, value)) = stack.pop() {
        match value {
            Value::Object(map) => {
                if map.contains_key("<<") {
                    return Some(pointer);
                }
                stack.extend(map.iter().map(|(k, v)| (format!("{pointer}/{}", escape(k)), v)));
            }
            Value::Array(items) => stack.extend(items.iter().enumerate().map(|(i, v)| (format!("{pointer}/{i}"), v))),
            _ => {}
        }
    }
    None
}

/// One RFC 6901 pointer segment.
pub(crate) fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The objects of one document (a `kind: List`'s items, nested lists included), appended.
fn objects_of(text: &str, document: &Document, out: &mut Vec<Manifest>) -> Result<(), ManifestError> {
    let at = Place { document: document.number, line: None };
    if document.value.is_null() {
        return Ok(());
    }
    let mut pending = vec![(String::new(), &document.value)];
    while let Some((prefix, value)) = pending.pop() {
        let Some(object) = value.as_object() else {
            return Err(locate(text, ManifestError::NotAnObject { at, pointer: prefix.clone() }, &prefix));
        };
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        if kind == "List" {
            let Some(items) = object.get("items").and_then(Value::as_array) else {
                return Err(locate(text, ManifestError::ListWithoutItems { at }, &prefix));
            };
            // Reversed onto the stack, so items come out in order.
            pending.extend(items.iter().enumerate().rev().map(|(i, item)| (format!("{prefix}/items/{i}"), item)));
            continue;
        }
        if kind.ends_with("List") && object.get("items").is_some_and(Value::is_array) {
            return Err(locate(text, ManifestError::TypedList { at, kind: kind.to_owned() }, &prefix));
        }
        let images = match images_of(value) {
            Ok(images) => images,
            Err(WorkloadError::NotAWorkload { .. }) => Vec::new(),
            Err(error) => {
                let error = error.under(&prefix);
                let pointer = error.pointer().unwrap_or(&prefix).to_owned();
                return Err(locate(text, ManifestError::Workload { at, error }, &pointer));
            }
        };
        if out.len() >= MAX_DOCUMENTS {
            return Err(ManifestError::TooManyDocuments { max: MAX_DOCUMENTS });
        }
        let text_at = |path: &str| value.pointer(path).and_then(Value::as_str).map(str::to_owned);
        out.push(Manifest {
            document: document.number,
            api_version: text_at("/apiVersion").unwrap_or_default(),
            kind: kind.to_owned(),
            name: text_at("/metadata/name"),
            namespace: text_at("/metadata/namespace"),
            images: images
                .into_iter()
                .map(|i| ContainerImage { pointer: format!("{prefix}{}", i.pointer), ..i })
                .collect(),
        });
    }
    Ok(())
}

/// The error with the line of the node at `pointer` in its document, when it can be found
/// (errors only: the text is read a second time, as events).
fn locate(text: &str, mut error: ManifestError, pointer: &str) -> ManifestError {
    let Some(at) = error.place_mut() else { return error };
    if let Ok(source) = Source::parse(text) {
        at.line = source.document(at.document).and_then(|tree| tree.line_of(pointer));
    }
    error
}

impl ManifestError {
    fn place_mut(&mut self) -> Option<&mut Place> {
        match self {
            ManifestError::Syntax { at, .. }
            | ManifestError::MergeKey { at, .. }
            | ManifestError::Tag { at, .. }
            | ManifestError::NotAnObject { at, .. }
            | ManifestError::ListWithoutItems { at }
            | ManifestError::TypedList { at, .. }
            | ManifestError::Workload { at, .. } => Some(at),
            ManifestError::TooLarge { .. } | ManifestError::TooManyDocuments { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::ContainerClass;

    /// The images of a single-object fixture, as (class, container, image, pointer).
    fn images(text: &str) -> Vec<(ContainerClass, String, String, String)> {
        let manifests = parse_manifests(text).unwrap();
        assert_eq!(manifests.len(), 1);
        manifests[0].images.iter().map(|i| (i.class, i.container.clone(), i.image.clone(), i.pointer.clone())).collect()
    }

    /// Every kind's fixture: two containers, one init and one ephemeral container, each at
    /// its pointer, in pod spec order (containers, init, ephemeral) whatever the file's order.
    fn expect_kind(text: &str, kind: &str, prefix: &str, base: &str) {
        let manifest = &parse_manifests(text).unwrap()[0];
        assert_eq!((manifest.document, manifest.kind.as_str()), (1, kind));
        let d = "sha256:4c3e3b0fa1f8ed5a4d7bbb7f2b0c8cc5cf1e0e6f0e4a0f5d0a5b1c2d3e4f5a6b";
        let want = [
            (ContainerClass::Container, "app", format!("registry.example/{prefix}/app:1.0"), "containers/0"),
            (ContainerClass::Container, "sidecar", format!("registry.example/{prefix}/sidecar@{d}"), "containers/1"),
            (ContainerClass::InitContainer, "init", format!("registry.example/{prefix}/init:1.0"), "initContainers/0"),
            (
                ContainerClass::EphemeralContainer,
                "debug",
                format!("registry.example/{prefix}/debug:latest"),
                "ephemeralContainers/0",
            ),
        ]
        .map(|(class, name, image, at)| (class, format!("{prefix}-{name}"), image, format!("{base}/{at}/image")));
        assert_eq!(images(text), want);
    }

    #[test]
    fn pod_fixture() {
        let text = include_str!("../../testdata/workloads/pod.yaml");
        expect_kind(text, "Pod", "pod", "/spec");
        let m = &parse_manifests(text).unwrap()[0];
        assert_eq!(
            (m.name.as_deref(), m.namespace.as_deref(), m.api_version.as_str()),
            (Some("web"), Some("shop"), "v1")
        );
    }

    #[test]
    fn deployment_fixture() {
        expect_kind(
            include_str!("../../testdata/workloads/deployment.yaml"),
            "Deployment",
            "deployment",
            "/spec/template/spec",
        );
    }

    #[test]
    fn replicaset_fixture() {
        expect_kind(
            include_str!("../../testdata/workloads/replicaset.yaml"),
            "ReplicaSet",
            "replicaset",
            "/spec/template/spec",
        );
    }

    #[test]
    fn statefulset_fixture() {
        expect_kind(
            include_str!("../../testdata/workloads/statefulset.yaml"),
            "StatefulSet",
            "statefulset",
            "/spec/template/spec",
        );
    }

    #[test]
    fn daemonset_fixture() {
        expect_kind(
            include_str!("../../testdata/workloads/daemonset.yaml"),
            "DaemonSet",
            "daemonset",
            "/spec/template/spec",
        );
    }

    #[test]
    fn replicationcontroller_fixture() {
        let text = include_str!("../../testdata/workloads/replicationcontroller.yaml");
        expect_kind(text, "ReplicationController", "replicationcontroller", "/spec/template/spec");
    }

    #[test]
    fn job_fixture() {
        expect_kind(include_str!("../../testdata/workloads/job.yaml"), "Job", "job", "/spec/template/spec");
    }

    #[test]
    fn cronjob_fixture() {
        let text = include_str!("../../testdata/workloads/cronjob.yaml");
        expect_kind(text, "CronJob", "cronjob", "/spec/jobTemplate/spec/template/spec");
    }

    #[test]
    fn multi_document_fixture() {
        let manifests = parse_manifests(include_str!("../../testdata/workloads/multi.yaml")).unwrap();
        let summary: Vec<_> =
            manifests.iter().map(|m| (m.document, m.kind.as_str(), m.name.as_deref(), m.images.len())).collect();
        // Document 3 is empty: skipped, but counted.
        assert_eq!(
            summary,
            [(1, "Deployment", Some("shop"), 3), (2, "Service", Some("shop"), 0), (4, "Job", Some("migrate"), 1)]
        );
        let pointers: Vec<_> = manifests[0].images.iter().map(|i| (i.image.as_str(), i.pointer.as_str())).collect();
        assert_eq!(
            pointers,
            [
                ("registry.example/shop/app:2.1", "/spec/template/spec/containers/0/image"),
                ("registry.example/shop/proxy:1.25", "/spec/template/spec/containers/1/image"),
                ("registry.example/shop/migrate:2.1", "/spec/template/spec/initContainers/0/image"),
            ]
        );
    }

    #[test]
    fn list_items_are_flattened() {
        let manifests = parse_manifests(include_str!("../../testdata/workloads/list.yaml")).unwrap();
        let summary: Vec<_> = manifests.iter().map(|m| (m.document, m.kind.as_str(), m.images.len())).collect();
        assert_eq!(summary, [(1, "ConfigMap", 0), (1, "Deployment", 2), (1, "Pod", 2)]);
        assert_eq!(manifests[1].images[1].pointer, "/items/1/spec/template/spec/initContainers/0/image");
        assert_eq!(manifests[2].images[1].pointer, "/items/2/spec/ephemeralContainers/0/image");
        assert_eq!(manifests[2].images[1].class, ContainerClass::EphemeralContainer);
    }

    #[test]
    fn json_manifest_is_read() {
        let manifests = parse_manifests(include_str!("../../testdata/workloads/deployment.json")).unwrap();
        let images: Vec<_> = manifests[0].images.iter().map(|i| (i.class, i.image.as_str())).collect();
        assert_eq!(
            images,
            [
                (ContainerClass::Container, "registry.example/shop/app:2.1"),
                (ContainerClass::InitContainer, "registry.example/shop/migrate:2.1"),
                (ContainerClass::EphemeralContainer, "registry.example/tools/debug:1"),
            ]
        );
        // Several JSON objects in a row are several documents.
        let two = r#"{"apiVersion":"v1","kind":"Service"} {"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"a","image":"x/y"}]}}"#;
        let manifests = parse_manifests(two).unwrap();
        assert_eq!(manifests.iter().map(|m| m.document).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn duplicate_image_key_is_refused() {
        // see: issue 11
        for text in [
            include_str!("../../testdata/workloads/duplicate-image.yaml"),
            include_str!("../../testdata/workloads/duplicate-image.json"),
        ] {
            let e = parse_manifests(text).unwrap_err();
            let ManifestError::Syntax { at, message } = &e else { panic!("{e:?}") };
            assert_eq!(at.document, 1, "{e}");
            assert!(at.line.is_some(), "{e}");
            assert!(message.contains("\"image\" appears twice"), "{e}");
        }
        // In a later document, and anywhere in the object (here in metadata).
        let e = parse_manifests("kind: Service\napiVersion: v1\n---\nkind: Pod\nmetadata: {name: a, name: b}\n")
            .unwrap_err();
        assert!(e.to_string().starts_with("document 2, line 5: metadata: object key \"name\" appears twice"), "{e}");
        // Case variants are distinct keys to Kubernetes (label keys are case-sensitive).
        let ok = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {app: x, App: y}}\n";
        assert_eq!(parse_manifests(ok).unwrap().len(), 1);
    }

    #[test]
    fn yaml_merge_keys_are_refused() {
        // see: issue 11
        let text = "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{name: a, image: x/y}]\n  <<: {initContainers: [{name: b, image: evil/z}]}\n";
        let e = parse_manifests(text).unwrap_err();
        assert_eq!(e, ManifestError::MergeKey { at: Place { document: 1, line: Some(4) }, pointer: "/spec".into() });
    }

    #[test]
    fn yaml_tags_are_refused() {
        // see: issue 11
        // Kubernetes decodes `!!binary` (this one reads "reg/evil"); serde_yaml_ng would keep the text.
        for (value, tag) in [
            ("!!binary cmVnL2V2aWw=", "!!binary"),
            ("!<tag:yaml.org,2002:binary> cmVnL2V2aWw=", "tag:yaml.org,2002:binary"),
            ("!!timestamp 2001-12-14", "!!timestamp"),
            ("!!str reg/a", "!!str"),
            ("!custom reg/a", "!custom"),
        ] {
            let text = format!("apiVersion: v1\nkind: Service\n---\napiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    image: {value}\n");
            let e = parse_manifests(&text).unwrap_err();
            assert_eq!(e, ManifestError::Tag { at: Place { document: 2, line: Some(9) }, tag: tag.into() }, "{value}");
        }
        let e = parse_manifests("apiVersion: v1\nkind: Pod\nspec: !!map {containers: []}\n").unwrap_err();
        assert!(matches!(e, ManifestError::Tag { .. }), "{e:?}");
    }

    #[test]
    fn syntax_errors_name_document_and_line() {
        let e = parse_manifests("kind: Service\n---\nkind: [\n").unwrap_err();
        assert!(matches!(&e, ManifestError::Syntax { at: Place { document: 2, line: Some(_) }, .. }), "{e:?}");
        let e = parse_manifests("{\"kind\": }").unwrap_err();
        assert!(e.to_string().starts_with("document 1, line 1: "), "{e}");
    }

    #[test]
    fn workload_errors_name_document_and_line() {
        let text = "apiVersion: v1\nkind: Service\n---\napiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        image: x/y\n      - name: b\n        imagePullPolicy: Always\n";
        let e = parse_manifests(text).unwrap_err();
        let ManifestError::Workload { at, error } = &e else { panic!("{e:?}") };
        assert_eq!(*at, Place { document: 2, line: Some(12) });
        assert!(matches!(error, WorkloadError::MissingImage { .. }), "{e}");
        assert!(
            e.to_string().starts_with("document 2, line 12: container \"b\" at /spec/template/spec/containers/1"),
            "{e}"
        );
        let e = parse_manifests("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    image: [x]\n")
            .unwrap_err();
        assert!(e.to_string().starts_with("document 1, line 6: /spec/containers/0/image: invalid type"), "{e}");
    }

    #[test]
    fn list_item_errors_point_into_the_list() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  spec:\n    containers:\n    - name: a\n";
        let e = parse_manifests(text).unwrap_err();
        let ManifestError::Workload { at, error } = &e else { panic!("{e:?}") };
        assert_eq!(at.line, Some(8), "{e}");
        assert_eq!(error.pointer(), Some("/items/0/spec/containers/0"));
        let e = parse_manifests("apiVersion: v1\nkind: List\n").unwrap_err();
        assert!(matches!(e, ManifestError::ListWithoutItems { .. }), "{e:?}");
        let e = parse_manifests("apiVersion: v1\nkind: List\nitems: [3]\n").unwrap_err();
        assert!(matches!(&e, ManifestError::NotAnObject { pointer, .. } if pointer == "/items/0"), "{e:?}");
    }

    #[test]
    fn typed_lists_are_refused() {
        let e = parse_manifests("apiVersion: apps/v1\nkind: DeploymentList\nitems: [{spec: {}}]\n").unwrap_err();
        assert!(matches!(&e, ManifestError::TypedList { kind, .. } if kind == "DeploymentList"), "{e:?}");
    }

    #[test]
    fn documents_that_are_not_objects_are_refused() {
        let e = parse_manifests("apiVersion: v1\nkind: Service\n---\n- a\n- b\n").unwrap_err();
        assert!(matches!(&e, ManifestError::NotAnObject { at: Place { document: 2, .. }, .. }), "{e:?}");
        let e = parse_manifests("just text\n").unwrap_err();
        assert!(matches!(e, ManifestError::NotAnObject { .. }), "{e:?}");
        let e = parse_manifests("metadata: {name: x}\n").unwrap_err();
        assert!(matches!(e, ManifestError::Workload { error: WorkloadError::Untyped { .. }, .. }), "{e:?}");
    }

    #[test]
    fn empty_input_has_no_manifests() {
        assert_eq!(parse_manifests("").unwrap(), []);
        assert_eq!(parse_manifests("# nothing\n---\n---\n...\n").unwrap(), []);
    }

    #[test]
    fn input_is_bounded() {
        let big = " ".repeat(MAX_MANIFEST_BYTES + 1);
        assert_eq!(
            parse_manifests(&big),
            Err(ManifestError::TooLarge { size: MAX_MANIFEST_BYTES + 1, max: MAX_MANIFEST_BYTES })
        );
        let many = "---\napiVersion: v1\nkind: Service\n".repeat(MAX_DOCUMENTS + 1);
        assert_eq!(parse_manifests(&many), Err(ManifestError::TooManyDocuments { max: MAX_DOCUMENTS }));
        let items = format!(
            "apiVersion: v1\nkind: List\nitems:\n{}",
            "- {apiVersion: v1, kind: Service}\n".repeat(MAX_DOCUMENTS + 1)
        );
        assert_eq!(parse_manifests(&items), Err(ManifestError::TooManyDocuments { max: MAX_DOCUMENTS }));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse_manifests(&text).unwrap_err();
        assert!(matches!(e, ManifestError::Syntax { .. }), "{e:?}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(parse_manifests(&text), Err(ManifestError::Syntax { .. })));
        let text = format!("{}{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
        assert!(matches!(parse_manifests(&text), Err(ManifestError::Syntax { .. })));
    }
}
