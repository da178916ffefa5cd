//! `lifeboat health SPEC`: [`health::run`], its findings printed; the exit status is the
//! worst finding's (0 healthy, 1 warnings, 2 failures).

use anyhow::Result;

use crate::cli::HealthArgs;
use crate::drill::record;
use crate::health::{self, evaluate};
use crate::spec::Spec;

pub fn health(args: &HealthArgs) -> Result<()> {
    let spec = Spec::load(&args.spec)?;
    let options = health::Options {
        disks: args.disks.to_vec(),
        drills: record::path(
            args.record.as_deref(),
            std::env::var_os("LIFEBOAT_STATE_DIR").as_deref(),
        ),
    };
    let findings = health::run(&spec, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        print!("{}", health::render(&findings));
    }
    let code = evaluate::worst(&findings).exit_code();
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
