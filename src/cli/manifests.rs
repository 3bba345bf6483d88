//! Kubernetes manifests for `gate -f` (temporary: waiting for sigil::workloads).

use std::path::PathBuf;

use sigil::gate::Decision;

use super::exit::{ExitCode, Failure};
use super::gate::Found;

pub(super) struct ManifestFile;

impl ManifestFile {
    pub(super) fn found(&self) -> Vec<Found> {
        Vec::new()
    }
}

pub(super) fn read_all(paths: &[PathBuf]) -> Result<Vec<ManifestFile>, Failure> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    Err(Failure::new(ExitCode::Usage, "-f is not ready", "name images"))
}

pub(super) fn pin_all(_: &[ManifestFile], _: &[(Found, Decision)]) -> Result<(), Failure> {
    Ok(())
}
