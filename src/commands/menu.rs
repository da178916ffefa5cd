//! `lifeboat menu`: the rescue menu of the live image, [`crate::menu::run`].

use anyhow::Result;

use crate::cli::MenuArgs;

pub fn menu(args: &MenuArgs) -> Result<()> {
    let spec = args
        .spec
        .clone()
        .unwrap_or_else(crate::spec::default_path_here);
    crate::menu::run(&spec)
}
