//! `lifeboat unlock SPEC`: open the spec's LUKS2 containers ([`crate::unlock::open_all`]).

use anyhow::Result;

use crate::cli::UnlockArgs;
use crate::spec::Spec;

pub fn unlock(args: &UnlockArgs) -> Result<()> {
    let spec = Spec::load(&args.spec)?;
    let bindings = super::bind_disks(&spec, &args.disks, &[], true)?;
    let opened = crate::unlock::open_all(&spec, &bindings, &mut crate::ui::Prompted)?;
    if opened.is_empty() {
        anyhow::bail!(
            "{} has no partition with encrypt = \"luks2\": nothing to unlock",
            spec.file.display()
        );
    }
    for (disk, number, o) in opened {
        let how = if o.opened_here() {
            "opened"
        } else {
            "open already"
        };
        println!("{disk} partition {number}: {how} as {}", o.keep().display());
    }
    Ok(())
}
