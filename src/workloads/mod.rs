//! Every container image a Kubernetes workload object would run, and where it is written.
//!
//! Why this module exists: the deploy gate (`sigil gate -f`, the admission webhook) must check
//! every image a workload starts, and never one the API server would not run. So the images
//! are read with the API's own types (k8s-openapi's `PodSpec`, matched case-sensitively as the
//! API server matches them), from the one place each kind keeps its pod spec, and a container
//! without an image, a pod spec that does not parse, or a workload kind at an API version we
//! do not know is an error, never an empty list: a gate must not skip a container.
//! [`images_of`] reads one object as the API server sends it; [`parse_manifests`] reads
//! manifest files (multi-document YAML or JSON, keys never given twice); [`pin`] rewrites
//! chosen image references in such a file and changes no other byte.
//!
//! Pure: values and text in, typed values out; no I/O.

mod manifests;
mod pin;
mod source;

pub use manifests::{parse_manifests, Manifest, ManifestError, Place, MAX_DOCUMENTS, MAX_MANIFEST_BYTES};
pub use pin::{pin, Pin, PinError};

use std::fmt;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec, ReplicationController};
use k8s_openapi::Resource;
use serde::Serialize;

/// Which list of the pod spec a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerClass {
    /// `containers`.
    Container,
    /// `initContainers`.
    InitContainer,
    /// `ephemeralContainers`.
    EphemeralContainer,
    /// `volumes[].image`: an image (or artifact) the kubelet pulls and mounts as a volume; its
    /// `reference` is pulled as a container image is.
    ImageVolume,
}

impl ContainerClass {
    /// The pod spec field holding containers of this class.
    pub fn field(self) -> &'static str {
        match self {
            ContainerClass::Container => "containers",
            ContainerClass::InitContainer => "initContainers",
            ContainerClass::EphemeralContainer => "ephemeralContainers",
            ContainerClass::ImageVolume => "volumes",
        }
    }
}

impl fmt::Display for ContainerClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContainerClass::Container => "container",
            ContainerClass::InitContainer => "init container",
            ContainerClass::EphemeralContainer => "ephemeral container",
            ContainerClass::ImageVolume => "image volume",
        })
    }
}

/// One container's image, as written in the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerImage {
    /// Which list the container is in.
    pub class: ContainerClass,
    /// The container's name.
    pub container: String,
    /// The image reference exactly as written (not normalised, not resolved).
    pub image: String,
    /// RFC 6901 JSON pointer from the object's root to the image value, e.g.
    /// `/spec/template/spec/initContainers/0/image`.
    pub pointer: String,
}

/// Why the images of an object could not be listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadError {
    /// The object is not one of the workload kinds (a Service, a ConfigMap, a custom
    /// resource…): it runs no container. Callers that gate only workloads let it through;
    /// this is the only error that means "nothing to check".
    #[error("{kind} ({api_version}) is not a workload kind: it runs no container")]
    NotAWorkload {
        /// The object's `apiVersion`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
    },
    /// The object has no `apiVersion` or `kind` string (or is not a JSON object).
    #[error("the object has no {field} string: is it a Kubernetes object?")]
    Untyped {
        /// `apiVersion` or `kind`.
        field: &'static str,
    },
    /// A workload kind of a built-in group at a version sigil does not read (e.g.
    /// `apps/v1beta2`, `extensions/v1beta1`): refused rather than passed unchecked.
    #[error("{kind} at {api_version} is not supported (expected {expected}): convert the manifest to {expected}")]
    UnsupportedVersion {
        /// The object's `apiVersion`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
        /// The `apiVersion` sigil reads for this kind.
        expected: &'static str,
    },
    /// The workload has no pod spec object where its kind keeps it.
    #[error("{kind} has no pod spec at {pointer}: the API server would refuse it")]
    NoPodSpec {
        /// The object's `kind`.
        kind: String,
        /// Where the pod spec should be.
        pointer: String,
    },
    /// The pod spec lists no containers (perhaps under a misspelt key).
    #[error("{kind} has no containers at {pointer}/containers: the API server would refuse it")]
    NoContainers {
        /// The object's `kind`.
        kind: String,
        /// Where the pod spec is.
        pointer: String,
    },
    /// The pod spec does not parse as a Kubernetes `PodSpec`.
    #[error("{pointer}: {reason}")]
    BadPodSpec {
        /// Pointer to the offending value (from the object's root).
        pointer: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A container has no image (or an empty one): the gate cannot check what it would run.
    #[error("{class} {container:?} at {pointer} has no image: every container must name one")]
    MissingImage {
        /// Which list the container is in.
        class: ContainerClass,
        /// The container's name.
        container: String,
        /// Pointer to the container (from the object's root).
        pointer: String,
    },
}

impl WorkloadError {
    /// The pointer (from the object's root) of the value the error is about, if any.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            WorkloadError::NoPodSpec { pointer, .. }
            | WorkloadError::NoContainers { pointer, .. }
            | WorkloadError::BadPodSpec { pointer, .. }
            | WorkloadError::MissingImage { pointer, .. } => Some(pointer),
            WorkloadError::NotAWorkload { .. }
            | WorkloadError::Untyped { .. }
            | WorkloadError::UnsupportedVersion { .. } => None,
        }
    }

    /// The same error about an object found at `prefix` (a list item: `/items/3`).
    fn under(mut self, prefix: &str) -> Self {
        match &mut self {
            WorkloadError::NoPodSpec { pointer, .. }
            | WorkloadError::NoContainers { pointer, .. }
            | WorkloadError::BadPodSpec { pointer, .. }
            | WorkloadError::MissingImage { pointer, .. } => pointer.insert_str(0, prefix),
            WorkloadError::NotAWorkload { .. }
            | WorkloadError::Untyped { .. }
            | WorkloadError::UnsupportedVersion { .. } => {}
        }
        self
    }
}

/// A workload kind and where its objects keep the pod spec.
struct WorkloadKind {
    group: &'static str,
    api_version: &'static str,
    kind: &'static str,
    pod_spec: &'static str,
}

const fn kind<R: Resource>(pod_spec: &'static str) -> WorkloadKind {
    WorkloadKind { group: R::GROUP, api_version: R::API_VERSION, kind: R::KIND, pod_spec }
}

/// The one table of workload kinds. ReplicationController (core v1) is here too: it starts
/// pods like a ReplicaSet, and a gate that ignored it would be bypassed through it.
const WORKLOADS: &[WorkloadKind] = &[
    kind::<Pod>("/spec"),
    kind::<Deployment>("/spec/template/spec"),
    kind::<ReplicaSet>("/spec/template/spec"),
    kind::<StatefulSet>("/spec/template/spec"),
    kind::<DaemonSet>("/spec/template/spec"),
    kind::<ReplicationController>("/spec/template/spec"),
    kind::<Job>("/spec/template/spec"),
    kind::<CronJob>("/spec/jobTemplate/spec/template/spec"),
];

/// Built-in API groups that serve (or once served) workload kinds; a workload kind in one of
/// them at another version is [`WorkloadError::UnsupportedVersion`], not "not a workload".
const WORKLOAD_GROUPS: &[&str] = &["", "apps", "batch", "extensions"];

/// Every container image of one Kubernetes object (JSON as the API server sends it, e.g. an
/// AdmissionReview's `request.object`), in pod spec order: `containers`, then
/// `initContainers`, then `ephemeralContainers`.
///
/// Kinds read: Pod and ReplicationController (`v1`), Deployment, ReplicaSet, StatefulSet and
/// DaemonSet (`apps/v1`), Job and CronJob (`batch/v1`). Any other object is
/// `Err(WorkloadError::NotAWorkload)`, so a caller can tell "runs nothing" from "runs these";
/// every other error means the object could not be checked and must not be admitted.
///
/// Duplicate keys cannot be seen in a `serde_json::Value`: text is read with
/// [`parse_manifests`], which refuses them.
pub fn images_of(object: &serde_json::Value) -> Result<Vec<ContainerImage>, WorkloadError> {
    let api_version = type_field(object, "apiVersion")?;
    let kind = type_field(object, "kind")?;
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let known = |w: &&WorkloadKind| w.kind == kind && (w.group == group || WORKLOAD_GROUPS.contains(&group));
    let Some(workload) = WORKLOADS.iter().find(known) else {
        return Err(WorkloadError::NotAWorkload { api_version: api_version.to_owned(), kind: kind.to_owned() });
    };
    if workload.api_version != api_version {
        return Err(WorkloadError::UnsupportedVersion {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            expected: workload.api_version,
        });
    }
    let spec = pod_spec(object, workload)?;
    if spec.containers.is_empty() {
        return Err(WorkloadError::NoContainers { kind: kind.to_owned(), pointer: workload.pod_spec.to_owned() });
    }
    let mut images = Vec::new();
    let lists = [
        (ContainerClass::Container, spec.containers.iter().map(|c| (&c.name, &c.image)).collect::<Vec<_>>()),
        (ContainerClass::InitContainer, spec.init_containers.iter().flatten().map(|c| (&c.name, &c.image)).collect()),
        (
            ContainerClass::EphemeralContainer,
            spec.ephemeral_containers.iter().flatten().map(|c| (&c.name, &c.image)).collect(),
        ),
    ];
    for (class, containers) in lists {
        for (i, (name, image)) in containers.into_iter().enumerate() {
            let at = format!("{}/{}/{i}", workload.pod_spec, class.field());
            match image.as_deref() {
                Some(image) if !image.is_empty() => images.push(ContainerImage {
                    class,
                    container: name.clone(),
                    image: image.to_owned(),
                    pointer: format!("{at}/image"),
                }),
                _ => return Err(WorkloadError::MissingImage { class, container: name.clone(), pointer: at }),
            }
        }
    }
    // Image volumes: the kubelet pulls `reference` like a container image.
    for (i, volume) in spec.volumes.iter().flatten().enumerate() {
        let Some(source) = &volume.image else { continue };
        let at = format!("{}/volumes/{i}/image", workload.pod_spec);
        match source.reference.as_deref() {
            Some(image) if !image.is_empty() => images.push(ContainerImage {
                class: ContainerClass::ImageVolume,
                container: volume.name.clone(),
                image: image.to_owned(),
                pointer: format!("{at}/reference"),
            }),
            _ => {
                return Err(WorkloadError::MissingImage {
                    class: ContainerClass::ImageVolume,
                    container: volume.name.clone(),
                    pointer: at,
                })
            }
        }
    }
    Ok(images)
}

/// The object's `apiVersion` or `kind`.
fn type_field<'a>(object: &'a serde_json::Value, field: &'static str) -> Result<&'a str, WorkloadError> {
    object.get(field).and_then(serde_json::Value::as_str).ok_or(WorkloadError::Untyped { field })
}

/// The workload's pod spec, read with k8s-openapi's `PodSpec`; an error points at the value.
fn pod_spec(object: &serde_json::Value, workload: &WorkloadKind) -> Result<PodSpec, WorkloadError> {
    let Some(value) = object.pointer(workload.pod_spec).filter(|v| v.is_object()) else {
        return Err(WorkloadError::NoPodSpec { kind: workload.kind.to_owned(), pointer: workload.pod_spec.to_owned() });
    };
    serde_path_to_error::deserialize::<_, PodSpec>(value).map_err(|e| WorkloadError::BadPodSpec {
        pointer: pointer_of(workload.pod_spec, e.path()),
        reason: e.inner().to_string(),
    })
}

/// `base` followed by a serde path as RFC 6901 pointer segments (`~` and `/` escaped).
fn pointer_of(base: &str, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = base.to_owned();
    for segment in path.iter() {
        out.push('/');
        match segment {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } => out.push_str(&manifests::escape(key)),
            Segment::Enum { variant } => out.push_str(variant),
            Segment::Unknown => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod_spec() -> serde_json::Value {
        json!({
            "containers": [{"name": "app", "image": "registry.example/app:1"}],
            "initContainers": [{"name": "init", "image": "registry.example/init:1"}],
            "ephemeralContainers": [{"name": "debug", "image": "registry.example/debug:1"}],
        })
    }

    fn pointers(images: &[ContainerImage]) -> Vec<(ContainerClass, &str, &str, &str)> {
        images.iter().map(|i| (i.class, i.container.as_str(), i.image.as_str(), i.pointer.as_str())).collect()
    }

    fn expect_all(object: serde_json::Value, base: &str) {
        let images = images_of(&object).unwrap();
        assert_eq!(
            pointers(&images),
            [
                (
                    ContainerClass::Container,
                    "app",
                    "registry.example/app:1",
                    format!("{base}/containers/0/image").as_str()
                ),
                (
                    ContainerClass::InitContainer,
                    "init",
                    "registry.example/init:1",
                    &format!("{base}/initContainers/0/image")
                ),
                (
                    ContainerClass::EphemeralContainer,
                    "debug",
                    "registry.example/debug:1",
                    &format!("{base}/ephemeralContainers/0/image")
                ),
            ]
        );
        for image in &images {
            assert_eq!(object.pointer(&image.pointer).and_then(|v| v.as_str()), Some(image.image.as_str()));
        }
    }

    fn templated(api_version: &str, kind: &str) -> serde_json::Value {
        json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"},
               "spec": {"template": {"spec": pod_spec()}}})
    }

    #[test]
    fn pod_images() {
        expect_all(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": pod_spec()}), "/spec");
    }

    // see: issue 11
    #[test]
    fn image_volumes_are_images_too() {
        let mut spec = pod_spec();
        spec["volumes"] = json!([
            {"name": "cache", "emptyDir": {}},
            {"name": "models", "image": {"reference": "registry.example/models/llm:7b", "pullPolicy": "IfNotPresent"}}
        ]);
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec});
        let images = images_of(&pod).unwrap();
        let v = images.iter().find(|i| i.class == ContainerClass::ImageVolume).expect("the image volume");
        assert_eq!((v.container.as_str(), v.image.as_str()), ("models", "registry.example/models/llm:7b"));
        assert_eq!(v.pointer, "/spec/volumes/1/image/reference");
        let mut spec = pod_spec();
        spec["volumes"] = json!([{"name": "models", "image": {"pullPolicy": "Always"}}]);
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec});
        assert!(matches!(images_of(&pod), Err(WorkloadError::MissingImage { class: ContainerClass::ImageVolume, .. })));
    }

    #[test]
    fn deployment_images() {
        expect_all(templated("apps/v1", "Deployment"), "/spec/template/spec");
    }

    #[test]
    fn replicaset_images() {
        expect_all(templated("apps/v1", "ReplicaSet"), "/spec/template/spec");
    }

    #[test]
    fn statefulset_images() {
        expect_all(templated("apps/v1", "StatefulSet"), "/spec/template/spec");
    }

    #[test]
    fn daemonset_images() {
        expect_all(templated("apps/v1", "DaemonSet"), "/spec/template/spec");
    }

    #[test]
    fn replicationcontroller_images() {
        expect_all(templated("v1", "ReplicationController"), "/spec/template/spec");
    }

    #[test]
    fn job_images() {
        expect_all(templated("batch/v1", "Job"), "/spec/template/spec");
    }

    #[test]
    fn cronjob_images() {
        let object = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": pod_spec()}}}}});
        expect_all(object, "/spec/jobTemplate/spec/template/spec");
    }

    #[test]
    fn other_kinds_are_not_workloads() {
        for (v, k) in [("v1", "Service"), ("v1", "ConfigMap"), ("example.com/v1", "Deployment"), ("v1", "PodTemplate")]
        {
            let e = images_of(&json!({"apiVersion": v, "kind": k, "spec": {"template": {"spec": pod_spec()}}}));
            assert_eq!(e, Err(WorkloadError::NotAWorkload { api_version: v.into(), kind: k.into() }));
        }
    }

    #[test]
    fn old_workload_versions_are_refused() {
        for (v, k, expected) in [
            ("extensions/v1beta1", "Deployment", "apps/v1"),
            ("apps/v1beta2", "DaemonSet", "apps/v1"),
            ("batch/v1beta1", "CronJob", "batch/v1"),
        ] {
            let e = images_of(&templated(v, k)).unwrap_err();
            assert_eq!(e, WorkloadError::UnsupportedVersion { api_version: v.into(), kind: k.into(), expected });
        }
    }

    #[test]
    fn untyped_objects_are_refused() {
        assert_eq!(images_of(&json!({"kind": "Pod"})), Err(WorkloadError::Untyped { field: "apiVersion" }));
        assert_eq!(images_of(&json!({"apiVersion": "v1", "kind": 3})), Err(WorkloadError::Untyped { field: "kind" }));
        assert_eq!(images_of(&json!([1])), Err(WorkloadError::Untyped { field: "apiVersion" }));
    }

    #[test]
    fn workload_without_pod_spec_is_refused() {
        let e = images_of(&json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}})).unwrap_err();
        assert_eq!(e, WorkloadError::NoPodSpec { kind: "Deployment".into(), pointer: "/spec/template/spec".into() });
        let e = images_of(&json!({"apiVersion": "v1", "kind": "Pod", "spec": []})).unwrap_err();
        assert!(matches!(&e, WorkloadError::NoPodSpec { pointer, .. } if pointer == "/spec"), "{e:?}");
    }

    #[test]
    fn container_without_image_is_refused() {
        // see: issue 11
        let mut spec = pod_spec();
        spec["initContainers"] = json!([{"name": "a", "image": "x"}, {"name": "b"}]);
        let e = images_of(&json!({"apiVersion": "v1", "kind": "Pod", "spec": spec})).unwrap_err();
        assert_eq!(
            e,
            WorkloadError::MissingImage {
                class: ContainerClass::InitContainer,
                container: "b".into(),
                pointer: "/spec/initContainers/1".into()
            }
        );
        spec["initContainers"] = json!([{"name": "a", "image": ""}]);
        let e = images_of(&json!({"apiVersion": "v1", "kind": "Pod", "spec": spec})).unwrap_err();
        assert!(matches!(e, WorkloadError::MissingImage { .. }), "{e:?}");
    }

    #[test]
    fn malformed_pod_spec_names_the_field() {
        let mut spec = pod_spec();
        spec["containers"][0]["image"] = json!(7);
        let e = images_of(&templated_with("apps/v1", "Deployment", spec.clone())).unwrap_err();
        assert!(
            matches!(&e, WorkloadError::BadPodSpec { pointer, .. } if pointer == "/spec/template/spec/containers/0/image"),
            "{e:?}"
        );
        spec["containers"][0]["image"] = json!("x");
        spec["initContainers"] = json!({"name": "x"});
        let e = images_of(&templated_with("apps/v1", "Deployment", spec)).unwrap_err();
        assert!(
            matches!(&e, WorkloadError::BadPodSpec { pointer, .. } if pointer == "/spec/template/spec/initContainers"),
            "{e:?}"
        );
    }

    #[test]
    fn pod_spec_without_containers_is_refused() {
        let e = images_of(&json!({"apiVersion": "v1", "kind": "Pod", "spec": {"Containers": []}})).unwrap_err();
        assert_eq!(e, WorkloadError::NoContainers { kind: "Pod".into(), pointer: "/spec".into() });
    }

    #[test]
    fn field_names_are_case_sensitive() {
        // `Image` is not `image` to the API server (it decodes case-sensitively): the
        // container has no image.
        let spec = json!({"containers": [{"name": "a", "Image": "x"}]});
        let e = images_of(&json!({"apiVersion": "v1", "kind": "Pod", "spec": spec})).unwrap_err();
        assert!(matches!(e, WorkloadError::MissingImage { .. }), "{e:?}");
    }

    fn templated_with(api_version: &str, kind: &str, spec: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": api_version, "kind": kind, "spec": {"template": {"spec": spec}}})
    }
}
