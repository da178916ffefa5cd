//! `lifeboat check SPEC`: validate and summarise a spec.

use anyhow::Result;

use crate::spec::Spec;

pub fn check(path: &std::path::Path) -> Result<()> {
    print!("{}", crate::spec::summary::summary(&Spec::load(path)?));
    Ok(())
}
