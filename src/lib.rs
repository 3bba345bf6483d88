//! sigil: sign and verify container images and their supply-chain attestations,
//! byte-compatible with cosign.
//!
//! Layering (dependencies point down):
//! - `cli` — argument parsing, output, exit codes (binary only).
//! - [`sign`], [`verify`] — the flows, generic over [`oci::Store`]; [`reconcile`] keeps an
//!   entry listed at a tag when writers run at once.
//! - pure core: [`digest`], [`reference`], [`payload`], [`keys`], [`oci::manifest`], [`oci::challenge`],
//!   [`workloads`].
//! - edges: [`oci::registry`], [`oci::layout`], [`oci::auth`], [`tuf`], [`trust::resolve`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod attachments;
pub mod bundle;
pub mod copy;
pub mod digest;
pub mod dsse;
pub mod fulcio;
pub mod fuzzing;
pub mod gate;
pub mod http;
pub mod identity;
pub mod inspect;
pub mod intoto;
pub mod json;
pub mod keys;
pub mod oci;
pub mod oidc;
pub mod payload;
pub mod policy;
pub mod predicates;
pub mod reconcile;
pub mod reference;
pub mod rekor;
pub mod report;
pub mod sign;
pub mod signing_config;
pub mod trust;
pub mod tsa;
pub mod tuf;
pub mod verify;
pub mod vulns;
pub mod workloads;
