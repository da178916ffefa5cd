//! `lifeboat timers install|remove ROOT` ([`crate::timers`]) and `lifeboat alert SPEC UNIT`,
//! what the alert unit runs.

use anyhow::{Context, Result};

use crate::cli::{AlertArgs, TimersAction, TimersArgs};
use crate::drill::record;
use crate::exec::Cmd;
use crate::health;
use crate::spec::Spec;
use crate::timers::{self, Settings};

pub fn timers(args: &TimersArgs) -> Result<()> {
    let root = &args.root;
    timers::check_root(root)?;
    let items = timers::units(&Settings {
        lifeboat: args.lifeboat.clone(),
        spec: args.spec.clone(),
    });
    // The paths do not depend on the settings, so remove finds what any install wrote.
    let changes = match args.action {
        TimersAction::Install => timers::plan(&items, &|p| timers::look(root, p)),
        TimersAction::Remove => timers::plan_remove(&items, &|p| timers::look(root, p)),
    };
    for line in timers::apply(root, &changes)? {
        println!("{line}");
    }
    if changes.is_empty() {
        println!(
            "nothing of lifeboat's timers is installed in {}",
            root.display()
        );
    }
    Ok(())
}

pub fn alert(args: &AlertArgs) -> Result<()> {
    let spec = Spec::load(&args.spec)?;
    let options = health::Options {
        disks: Vec::new(),
        drills: record::path(None, std::env::var_os("LIFEBOAT_STATE_DIR").as_deref()),
    };
    // The alert must go out even when the findings cannot be gathered.
    let findings = match health::run(&spec, &options) {
        Ok(f) => health::render(&f),
        Err(e) => format!("FAIL health: the findings cannot be gathered: {e:#}\n"),
    };
    let Some((program, first)) = spec.alerts.split_first() else {
        print!("{findings}");
        println!(
            "{} has no [alerts] command: {} failed on {}; nobody was told",
            spec.file.display(),
            args.unit,
            spec.machine.host
        );
        return Ok(());
    };
    Cmd::new(program)
        .args(first)
        .arg(&args.unit)
        .arg(&spec.machine.host)
        .env("LIFEBOAT_UNIT", &args.unit)
        .env("LIFEBOAT_HOST", &spec.machine.host)
        .env("LIFEBOAT_FINDINGS", &findings)
        .run()
        .with_context(|| format!("running the [alerts] command of {}", spec.file.display()))?;
    println!("alerted: {} failed on {}", args.unit, spec.machine.host);
    Ok(())
}
