//! An /etc/crypttab for one root (pure): each LUKS2 container its fstab needs, opened as
//! `luks-<UUID>` from the partition with that UUID. The key is typed at boot (`none`):
//! the spec's key file is the rescue system's, not necessarily in the root.

use std::fmt::Write as _;

use crate::spec::Spec;

/// One container the root's fstab names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// The mapping's name, `luks-<UUID>`.
    pub name: String,
    pub uuid: String,
    /// On a disk the machine needs to boot; otherwise the boot goes on without it.
    pub essential: bool,
}

pub fn render(spec: &Spec, root: &str, containers: &[Container]) -> String {
    let mut out = format!(
        "# /etc/crypttab of {root} on {}, written by lifeboat from the machine spec.\n\
         # <name> <device> <key file> <options>\n",
        spec.machine.name
    );
    for c in containers {
        let opts = if c.essential { "luks" } else { "luks,nofail" };
        let _ = writeln!(out, "{}  UUID={}  none  {opts}", c.name, c.uuid);
    }
    out
}
