//! Made-up disks for planner tests.

use std::path::{Path, PathBuf};

use crate::probe::{Bus, Device, Table};
use crate::spec::Spec;

pub fn spec() -> Spec {
    Spec::parse(
        Path::new("configs/atlantis.toml"),
        include_str!("../../configs/atlantis.toml"),
    )
    .expect("configs/atlantis.toml is valid")
}

pub fn blank_device(name: &str, size: u64) -> Device {
    Device {
        path: PathBuf::from(format!("/dev/{name}")),
        kernel_name: name.into(),
        size,
        sector_size: 512,
        bus: Bus::Virtio,
        serial: None,
        wwn: None,
        model: None,
        table: Table::None,
        whole_disk_fs: None,
        orphans: vec![],
        busy: vec![],
        read_only: false,
        kernel_partitions: vec![],
    }
}

/// GUIDs 00000000-0000-4000-8000-000000000001, …2, … in order of asking.
pub fn counter() -> impl FnMut() -> String {
    let mut n = 0u64;
    move || {
        n += 1;
        format!("00000000-0000-4000-8000-{n:012X}")
    }
}
