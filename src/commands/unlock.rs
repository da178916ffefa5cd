//! `lifeboat unlock SPEC`: open the spec's LUKS2 containers ([`crate::unlock::run`]).

use anyhow::Result;

use crate::cli::UnlockArgs;
use crate::spec::Spec;

pub fn unlock(args: &UnlockArgs) -> Result<()> {
    crate::unlock::run(&Spec::load(&args.spec)?, &args.disks)
}
