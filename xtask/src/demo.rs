//! `cargo xtask demo`: the whole Atlantis layout provisioned by lifeboat onto sparse loop
//! devices of the real sizes, then shown through independent tools (sgdisk, blkid, btrfs).

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::disks::{Lab, Mount};
use crate::flags::Demo;
use crate::{deps, lifeboat_bin, require_root};

pub fn run(sh: &Shell, flags: &Demo) -> Result<()> {
    require_root("demo")?;
    deps::ensure(sh)?;
    let bin = lifeboat_bin::build(sh)?;

    println!("\n== the machine: three sparse images of the real sizes on loop devices");
    let lab = Lab::create(sh, "demo")?;
    for disk in lab.disks() {
        println!(
            "  {:<6} {:>17} bytes  {}  {}",
            disk.id,
            disk.bytes,
            disk.dev().display(),
            disk.image.display()
        );
    }
    println!(
        "  disk0 has a factory layout: ESP0 (FAT32) and Windows (NTFS); lifeboat must not touch it"
    );

    let log_dir = lab.dir().join("logs");
    let bindings = lab.bindings();
    println!("\n== lifeboat plan (writes nothing)");
    lifeboat_bin::run_shown(
        sh,
        &bin,
        &lifeboat_bin::args("plan", &bindings, &[]),
        &log_dir,
    )?;
    println!("\n== lifeboat provision --yes");
    lifeboat_bin::run_shown(
        sh,
        &bin,
        &lifeboat_bin::args("provision", &bindings, &["--yes"]),
        &log_dir,
    )?;

    println!("\n== what independent tools see");
    for disk in lab.disks() {
        let dev = disk.dev();
        println!("\n-- {} ({})", disk.id, dev.display());
        cmd!(sh, "sgdisk -p {dev}").run()?;
        let parts = disk.kernel_partitions()?;
        if !parts.is_empty() {
            cmd!(sh, "blkid -p -o full {parts...}").run()?;
        }
    }
    show_subvolumes(sh, &lab).context("listing LINPOOL's subvolumes")?;

    if flags.keep {
        let devs: Vec<String> = lab
            .disks()
            .iter()
            .map(|d| d.dev().display().to_string())
            .collect();
        println!("\nkept (--keep): {}", devs.join(" "));
        println!(
            "clean up with:\n  for d in {}; do partx -d $d; losetup -d $d; done; rm -r {}",
            devs.join(" "),
            lab.dir().display()
        );
        lab.keep();
    } else {
        lab.close()?;
        println!("\ndone; loop devices detached and images removed (`--keep` leaves them)");
    }
    Ok(())
}

fn show_subvolumes(sh: &Shell, lab: &Lab) -> Result<()> {
    let pool = lab.disk1.part(4);
    println!(
        "\n-- LINPOOL ({}) subvolumes, mounted read-only",
        pool.display()
    );
    let mnt = Mount::new(sh, &pool, &lab.dir().join("linpool"), &["ro"])?;
    let path = mnt.path();
    cmd!(sh, "btrfs subvolume list {path}").run()?;
    mnt.unmount()
}
