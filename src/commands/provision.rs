//! `lifeboat plan` and `lifeboat provision`: probe, plan, show, confirm, apply.

use anyhow::{Context, Result};

use crate::apply;
use crate::boot::setup::Setup;
use crate::cli::{PlanArgs, ProvisionArgs, Selection};
use crate::disklock::DiskLocks;
use crate::plan::{self, Binding, Plan, Scope};
use crate::spec::Spec;
use crate::{runlog, ui};

use crate::boot::setup_apply as provision_boot;

/// `lifeboat plan`: print what provision would do. Writes nothing.
pub fn plan(args: &PlanArgs) -> Result<()> {
    let (spec, bindings, plan, _) = make_plan(&args.selection, false)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        let boot = provision_boot::plan(&spec, &bindings, &plan, &args.selection.only);
        print!("{}", show(&plan, &boot));
    }
    Ok(())
}

/// The disks' steps, then the boot setup's, then one line summing up both.
fn show(plan: &Plan, boot: &Setup) -> String {
    let mut out = plan.render_disks();
    out.push_str(&provision_boot::render(boot));
    if plan.is_empty() && boot.steps.is_empty() {
        out.push_str(
            "\nNothing to do: every selected disk already matches the spec and the boot setup \
             is done.\n",
        );
    } else if plan.is_empty() {
        out.push_str(&format!(
            "\nThe disks already match the spec; the boot setup has {} step{} left.\n",
            boot.steps.len(),
            if boot.steps.len() == 1 { "" } else { "s" }
        ));
    } else {
        let n = plan.action_count();
        out.push_str(&format!(
            "\n{n} step{} on {}{}.\n",
            if n == 1 { "" } else { "s" },
            plan.disks
                .iter()
                .filter(|d| !d.actions.is_empty())
                .map(|d| format!("{} ({})", d.id, d.device.display()))
                .collect::<Vec<_>>()
                .join(" and "),
            if boot.steps.is_empty() {
                String::new()
            } else {
                format!(", then {} for the boot setup", boot.steps.len())
            }
        ));
    }
    out
}

/// `lifeboat provision`: the plan, a confirmation, then the writes.
pub fn provision(args: &ProvisionArgs) -> Result<()> {
    let log = runlog::start("provision").ok();
    let (spec, bindings, plan, _locks) = make_plan(&args.selection, true)?;
    let boot = provision_boot::plan(&spec, &bindings, &plan, &args.selection.only);
    print!("{}", show(&plan, &boot));
    if (plan.is_empty() && boot.steps.is_empty()) || args.dry_run {
        return Ok(());
    }
    if plan.is_empty() {
        ui::confirm_changes(args.yes, "Carry out the boot setup?")?;
    } else {
        ui::confirm_plan(&plan, args.yes)?;
        let mut steps = ui::Steps::new(plan.action_count());
        let result = apply::apply(&plan, &mut steps, &mut ui::Prompted);
        steps.finish();
        result.context("provisioning stopped; running the same command again finishes the rest")?;
        println!(
            "\nDone: {} step{} on {}.",
            plan.action_count(),
            if plan.action_count() == 1 { "" } else { "s" },
            plan.disks
                .iter()
                .filter(|d| !d.actions.is_empty())
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let booted = provision_boot::run(&spec, &args.selection.disks, &args.selection.only);
    if let Some(path) = log {
        println!("Log: {}", path.display());
    }
    booted
}

/// The plan; when it is to be written, on disks locked against other runs (every bound disk:
/// the boot setup may write the preserved disk's ESP too).
fn make_plan(sel: &Selection, write: bool) -> Result<(Spec, Vec<Binding>, Plan, DiskLocks)> {
    let spec = Spec::load(&sel.spec)?;
    runlog::line(&format!("spec {}", sel.spec.display()));
    let scope = Scope {
        only: sel.only.clone(),
        wipe: sel.wipe.clone(),
    };
    let targets = scope.targets(&spec)?;
    // Look at the machine's other disks only when a disk to be written is still unbound.
    let (bindings, locks) = if write {
        super::bind_for_writing(&spec, &sel.disks, &targets, false, None)?
    } else {
        let bindings = super::bind_disks(&spec, &sel.disks, &targets, false)?;
        (bindings, DiskLocks::default())
    };
    let plan = plan::plan(&spec, &bindings, &scope, &mut || {
        uuid::Uuid::new_v4().to_string().to_uppercase()
    })?;
    Ok((spec, bindings, plan, locks))
}
