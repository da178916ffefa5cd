//! `lifeboat esp-sync`: mirror ESP0 onto ESP1, after the guards and a printed plan.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::boot::mirror;
use crate::cli::{EspPair, EspSyncArgs, EspSyncHookArgs};
use crate::spec::Spec;

pub fn esp_sync(args: &EspSyncArgs) -> Result<()> {
    let (from, to) = endpoints(&args.esps)?;
    mirror::run(&from, &to, (&args.confirm).into())
}

/// `lifeboat esp-sync-hook ROOT`: the kernel-install plugin that runs esp-sync.
pub fn esp_sync_hook(args: &EspSyncHookArgs) -> Result<()> {
    let (from, to) = endpoints(&args.esps)?;
    mirror::install_hook(&args.root, &from, &to)
}

/// `--from`/`--to`, or the mount points of the spec's first two ESPs.
fn endpoints(args: &EspPair) -> Result<(PathBuf, PathBuf)> {
    if let (Some(from), Some(to)) = (&args.from, &args.to) {
        return Ok((from.clone(), to.clone()));
    }
    let path = args
        .spec
        .clone()
        .unwrap_or_else(crate::spec::default_path_here);
    let spec = Spec::load(&path)?;
    let esps = mirror::esp_mounts(&spec);
    let [first, second, ..] = esps.as_slice() else {
        bail!(
            "{} names {} ESP{} with a mount point; esp-sync needs two (or --from and --to)",
            path.display(),
            esps.len(),
            if esps.len() == 1 { "" } else { "s" }
        );
    };
    Ok((
        args.from.clone().unwrap_or_else(|| first.clone()),
        args.to.clone().unwrap_or_else(|| second.clone()),
    ))
}
