//! `lifeboat drill SPEC`: the flags turned into [`drill::Options`], then [`drill::run`];
//! the record printed and appended to drills.jsonl.

use anyhow::{bail, Context, Result};

use crate::cli::{DrillAccel, DrillArgs, RestoreFrom};
use crate::drill::{self, qemu::Accel, record};
use crate::restore::points;
use crate::restore::select::When;
use crate::restore::source::Kind;
use crate::runlog;
use crate::spec::Spec;

pub fn drill(args: &DrillArgs) -> Result<()> {
    runlog::start("drill").ok();
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
    let record_file = record::path(
        args.record.as_deref(),
        std::env::var_os("LIFEBOAT_STATE_DIR").as_deref(),
    );
    let options = drill::Options {
        from: match args.from {
            RestoreFrom::Usb => Kind::Usb,
            RestoreFrom::Restic => Kind::Restic,
            RestoreFrom::ResticStream => Kind::ResticStream,
        },
        when,
        disks: args.disks.clone(),
        work_dir: args.work_dir.clone(),
        keep: args.keep,
        accel: match args.accel {
            DrillAccel::Tcg => Accel::Tcg,
            DrillAccel::Kvm => Accel::Kvm,
        },
        memory_mib: args.memory,
    };
    let rec = drill::run(&spec, &options)?;
    println!("\n{}", record::render(&rec));
    record::append(&record_file, &rec)?;
    println!("Recorded in {}", record_file.display());
    if args.json {
        println!("{}", serde_json::to_string(&rec)?);
    }
    if !rec.booted() {
        bail!("the drill failed: {}", rec.reason);
    }
    Ok(())
}
