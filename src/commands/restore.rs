//! `lifeboat restore SPEC --from usb|restic|restic-stream`: the flags turned into
//! [`restore::Options`], then [`restore::run`].

use anyhow::{Context, Result};

use crate::cli::{RestoreArgs, RestoreFrom};
use crate::restore::select::When;
use crate::restore::source::Kind;
use crate::restore::{self, points};
use crate::runlog;
use crate::spec::Spec;

pub fn restore(args: &RestoreArgs) -> Result<()> {
    runlog::start("restore").ok();
    let spec = Spec::load(&args.spec)?;
    let when = match &args.at {
        Some(text) => When::At(points::parse_at(text).with_context(|| {
            format!(
                "--at \"{text}\" is not a time: write 2026-11-20, '2026-11-20 03:00' or \
                 20261120T0300 (UTC)"
            )
        })?),
        None => When::Latest,
    };
    let options = restore::Options {
        from: match args.from {
            RestoreFrom::Usb => Kind::Usb,
            RestoreFrom::Restic => Kind::Restic,
            RestoreFrom::ResticStream => Kind::ResticStream,
        },
        when,
        snapshot: args.snapshot.clone(),
        subvols: args.subvols.clone(),
        disks: args.disks.to_vec(),
        wipe: args.wipe.clone(),
        confirmation: (&args.confirm).into(),
        firmware: true,
        room: None,
        new_uuid_when_taken: false,
        receives: args.receives.map(usize::from),
    };
    restore::run(&spec, &options).map(|_| ())
}
