//! `lifeboat plan` and `lifeboat provision`: the flags turned into a
//! [`provision::Request`], then [`provision::preview`] or [`provision::run`].

use anyhow::Result;

use crate::cli::{PlanArgs, ProvisionArgs, Selection};
use crate::provision::{self, Request};
use crate::runlog;
use crate::spec::Spec;

/// `lifeboat plan`: print what provision would do. Writes nothing.
pub fn plan(args: &PlanArgs) -> Result<()> {
    let spec = Spec::load(&args.selection.spec)?;
    let (plan, boot) = provision::preview(&spec, &request(&args.selection))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", provision::render(&plan, &boot));
    }
    Ok(())
}

/// `lifeboat provision`: the plan, a confirmation, then the writes.
pub fn provision(args: &ProvisionArgs) -> Result<()> {
    let log = runlog::start("provision").ok();
    let spec = Spec::load(&args.selection.spec)?;
    let done = provision::run(&spec, &request(&args.selection), (&args.confirm).into());
    if let Some(path) = log {
        println!("Log: {}", path.display());
    }
    done
}

fn request(sel: &Selection) -> Request {
    Request {
        disks: sel.disks.to_vec(),
        only: sel.only.clone(),
        wipe: sel.wipe.clone(),
    }
}
