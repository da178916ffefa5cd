//! Provisioning, the whole of it: bind and probe the spec's disks, plan the disks and the
//! boot setup, show both, confirm, apply the disks' steps, then the boot setup. `lifeboat
//! plan`, `lifeboat provision` and the rescue menu call [`preview`] and [`run`].

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::apply;
use crate::boot::setup::Setup;
use crate::boot::setup_apply as boot;
use crate::disklock::DiskLocks;
use crate::plan::{self, Binding, Plan, Scope};
use crate::spec::Spec;
use crate::{runlog, ui};

/// Which disks, as the command line's `--disk`, `--only` and `--wipe` say.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `--disk ID=DEVICE`: the rest are found by the spec's match rules.
    pub disks: Vec<(String, PathBuf)>,
    /// Only these disk ids (all of the spec's when empty).
    pub only: Vec<String>,
    /// Disks whose foreign contents may be replaced.
    pub wipe: Vec<String>,
}

/// What provision would do: the disks' plan and the boot setup after it. Writes nothing.
pub fn preview(spec: &Spec, req: &Request) -> Result<(Plan, Setup)> {
    let (bindings, plan, _) = make_plan(spec, req, false)?;
    let setup = boot::plan(spec, &bindings, &plan, &req.only);
    Ok((plan, setup))
}

/// The disks' steps, then the boot setup's, then one line summing up both.
pub fn render(plan: &Plan, boot: &Setup) -> String {
    let mut out = plan.render_disks();
    out.push_str(&boot::render(boot));
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

/// Provision: the plan, a confirmation (`Confirmation::Yes` skips it), then the writes and
/// the boot setup. A dry run stops after the plan.
pub fn run(spec: &Spec, req: &Request, go: ui::Confirmation) -> Result<()> {
    let (bindings, plan, _locks) = make_plan(spec, req, true)?;
    let setup = boot::plan(spec, &bindings, &plan, &req.only);
    print!("{}", render(&plan, &setup));
    if (plan.is_empty() && setup.steps.is_empty()) || go.dry_run() {
        return Ok(());
    }
    if plan.is_empty() {
        ui::confirm_changes(go, "Carry out the boot setup?")?;
    } else {
        ui::confirm_plan(&plan, go)?;
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
    boot::run(
        spec,
        &crate::machine::named_disks(&req.disks, &bindings),
        &req.only,
    )
}

/// The plan; when it is to be written, on disks locked against other runs (every bound disk:
/// the boot setup may write the preserved disk's ESP too).
fn make_plan(spec: &Spec, req: &Request, write: bool) -> Result<(Vec<Binding>, Plan, DiskLocks)> {
    runlog::line(&format!("spec {}", spec.file.display()));
    let scope = Scope {
        only: req.only.clone(),
        wipe: req.wipe.clone(),
    };
    let targets = scope.targets(spec)?;
    // Look at the machine's other disks only when a disk to be written is still unbound.
    let (bindings, locks) = if write {
        crate::machine::bind_for_writing(
            spec,
            &req.disks,
            &targets,
            crate::machine::Scan::WhenRequiredUnbound,
            None,
        )?
    } else {
        let bindings = crate::machine::bind_disks(
            spec,
            &req.disks,
            &targets,
            crate::machine::Scan::WhenRequiredUnbound,
        )?;
        (bindings, DiskLocks::default())
    };
    let plan = plan::plan(spec, &bindings, &scope, &mut || {
        uuid::Uuid::new_v4().to_string().to_uppercase()
    })?;
    Ok((bindings, plan, locks))
}
