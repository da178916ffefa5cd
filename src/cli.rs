//! Command-line arguments (clap derive). No logic here: `commands` does the work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Provision and restore the disks of a multi-boot Linux workstation from a declarative spec (configs/examples/laptop.toml).
///
/// Every command that writes first computes a plan from the spec and what is on the disks now, prints it, and asks for confirmation. `lifeboat plan` shows that plan and writes nothing.
///
/// Typical session:
///   lifeboat disks                                   # which disk is which (serials, sizes)
///   lifeboat plan configs/examples/laptop.toml              # what would be done
///   lifeboat provision configs/examples/laptop.toml         # do it, after typing the disk's serial
///
/// The day disk1 died (docs/restore.md):
///   lifeboat inventory configs/examples/laptop.toml         # the restore points on the USB backup drive
///   lifeboat restore configs/examples/laptop.toml --from usb --latest
// The short about is its own sentence rather than the doc comment's first paragraph,
// which `--help` shows in full; verbatim keeps the example lines as they are.
#[derive(Debug, Parser)]
#[command(
    verbatim_doc_comment,
    about = "Provision and restore the disks of a multi-boot Linux workstation from a spec",
    name = "lifeboat",
    version,
    after_help = "Run logs are written to /var/log/lifeboat (or $LIFEBOAT_LOG_DIR). Spec reference: docs/spec.md."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what `provision` would do to the disks; writes nothing, ever.
    ///
    /// Probe the disks of the spec and print the ordered actions that `provision` would carry
    /// out: the partition table with every partition's start, end, size, type, GUID and name,
    /// each filesystem with its label, each Btrfs subvolume. Writes nothing.
    ///
    /// Preserved disks (like disk0 with Windows) are listed with what was found on them, never
    /// planned.
    Plan(PlanArgs),
    /// Partition and format the disks to the spec, after showing the plan and asking.
    ///
    /// Partition and format the spec's disks: GPT, FAT32 ESPs, ext4, swap, NTFS, Btrfs with its
    /// subvolumes. Without --only, every disk of the spec that is not preserved.
    ///
    /// Safety: a disk is written only when it is bound with --disk or matched by the spec's
    /// rules (serial, WWN, size), fits the layout, and is not in use. A disk holding a
    /// partition table or filesystems that differ from the spec is refused unless --wipe ID (or
    /// `wipe = true` in the spec) allows replacing them. The plan is printed first; then each
    /// disk is written only after you type its serial number (or pass --yes).
    ///
    /// Running it again on a finished disk plans nothing; on a half-finished one it does only
    /// the rest.
    Provision(ProvisionArgs),
    /// List the disks this machine has, with the serials and sizes specs match on.
    Disks(DisksArgs),
    /// Check a spec file and summarise it; reports the first error with file:line:col.
    Check(CheckArgs),
    /// The rescue menu the live image shows on every console.
    ///
    /// The rescue menu: show disks, check the spec, plan and provision, mirror the ESPs, write
    /// the boot entries, list restore points, restore from the USB drive or from restic, set a
    /// static address when there is no DHCP, open a shell, reboot or power off. Every entry
    /// calls the same library function as the matching command; an error is shown and the menu
    /// comes back. Works on a serial console (arrow keys or j/k).
    Menu(MenuArgs),
    /// Make ESP1 an exact copy of ESP0 (new and changed files copied, extras deleted).
    ///
    /// Mirror the first ESP onto the second, as `rsync -a --delete` would: files that are new
    /// or whose content differs are copied, files and directories the source does not have
    /// are deleted. Each file is written under a temporary name and renamed into place once
    /// complete, and the destination is flushed at the end, so an interrupted sync never
    /// leaves a half-written loader.
    ///
    /// By default the two ESPs are the spec's: the one mounted at /boot/efi (ESP0, on the
    /// preserved disk) onto the one at /boot/efi2 (ESP1). --from and --to name other
    /// directories. `lifeboat esp-sync-hook ROOT` runs this sync after every kernel update.
    ///
    /// Refused, with nothing changed: a source or destination that is not a mounted FAT
    /// filesystem, a source that is empty or has no EFI/ directory, and source and
    /// destination on the same filesystem. The changes are printed first; --dry-run stops
    /// there, --yes applies them without asking.
    #[command(
        after_help = "Example: lifeboat esp-sync --dry-run        # what would change on /boot/efi2"
    )]
    EspSync(EspSyncArgs),
    /// Install the kernel-install plugin that runs esp-sync after every kernel update.
    ///
    /// Installs into a distribution's root (mounted at ROOT, or / for the running system)
    /// the kernel-install plugin etc/kernel/install.d/20-sync-esp.install, which runs
    /// `lifeboat esp-sync` after every kernel update, and this lifeboat binary as
    /// usr/local/sbin/lifeboat. The plugin syncs the ESPs that --from/--to or the spec name.
    /// Installing again changes nothing.
    #[command(after_help = "Example: lifeboat esp-sync-hook --spec /etc/lifeboat/spec.toml /")]
    EspSyncHook(EspSyncHookArgs),
    /// Print the /etc/fstab of one root subvolume, with the UUIDs on the disks now.
    ///
    /// Print an /etc/fstab for one root subvolume of the spec (for example @root): the root
    /// itself at / with subvol=, /boot, both ESPs, swap, and every other subvolume and
    /// partition that has a mount point in the spec, each by the UUID found on the disk, with
    /// the spec's mount options. Other roots are not mounted. Partitions of a disk that holds
    /// neither the root pool nor an ESP (the USB backup drive) get nofail, so the machine boots
    /// without it. Writes nothing.
    #[command(after_help = "Example: lifeboat fstab configs/examples/laptop.toml --root @root")]
    Fstab(FstabArgs),
    /// Make one UEFI boot entry per ESP and put them first in BootOrder.
    ///
    /// Write, through efivarfs, one UEFI boot entry (Boot####) per ESP of the spec — "Myhost
    /// ESP0 (disk0)", "Myhost ESP1 (disk1)" — each pointing at the loader on that partition
    /// (by partition number, start, size and GPT partition GUID, as the disks show them now),
    /// and set BootOrder to those two first, then every other entry in its old order (Windows
    /// Boot Manager stays). If ESP0's disk dies, the firmware falls back to ESP1.
    ///
    /// With Secure Boot on, the entries start the signed chain's shim
    /// (\EFI\lifeboat\shimx64.efi) and each distribution's own shim found on an ESP
    /// (EFI/<distro>/shim*.efi) gets an entry per ESP after ours ("Myhost ESP0 (disk0)
    /// fedora").
    ///
    /// Running it again changes nothing and never duplicates entries; an entry of ours whose
    /// partition no longer exists (a replaced disk) is removed or rewritten. Entries it did not
    /// make are never changed. The changes are printed first; --dry-run stops there, --yes
    /// writes without asking. Booted in BIOS mode (no efivarfs), it says so and changes
    /// nothing.
    #[command(after_help = "Check the result with: efibootmgr -v")]
    BootEntries(BootEntriesArgs),
    /// List the restore points on the backup drive, per subvolume, newest first.
    ///
    /// Find the backup drive (the spec's partition with role = "backup", e.g. BACKUP), mount
    /// it read-only, and list every restore point per subvolume, newest first: btrbk snapshots
    /// (@home.20261120T0300, with seconds/UTC offset and _N variants), snapper snapshots
    /// (<subvol>/.snapshots/N/snapshot with info.xml) and raw send-stream files
    /// (raw-snapshots/<host>/<name>.btrfs or .btrfs.zst). For each: time (UTC), age, size where
    /// known, and the point it was made from (the parent chain: parent UUID and received UUID).
    ///
    /// It looks in the host's directory (e.g. myhost/ for host = "myhost"), at the top
    /// level and in the spec's backup_dirs. A subvolume whose newest point is older than 7 days
    /// gets a warning. Writes nothing.
    ///
    /// With --from restic: the snapshots of the restic repository (the spec's [restic] env_file
    /// and password_file; RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE, AWS_* in the environment
    /// override them), per host, newest first, with tags, paths and size where restic records
    /// it. A wrong password, refused credentials, a missing bucket, a missing repository and an
    /// unreachable endpoint each get their own message; the network is tried again before
    /// giving up.
    #[command(
        after_help = "Examples:\n  lifeboat inventory configs/examples/laptop.toml --json\n  \
lifeboat inventory configs/examples/laptop.toml --from restic"
    )]
    Inventory(InventoryArgs),
    /// Bring the machine back from the backup drive or restic: provision disk1, restore the chosen snapshots, /boot and the ESPs, write the boot entries, check the result
    ///
    /// Bare-metal restore from the USB backup drive (the spec's role = "backup" partition, e.g. BACKUP).
    ///
    /// Steps, in this order:
    ///   1. Preflight, before anything is written: the backup drive is read (as `lifeboat inventory` lists it), the point of each subvolume is chosen (--latest, or the newest at or before --at), the head of every stream file of its chain is checked (every stream whole with `btrfs receive --dump` when the target holds data the restore would replace; on a blank target the streams are checked while they are received, so the backup is read once), the target disk is the spec's Linux disk (never the backup drive, never a preserved disk) and has room.
    ///   2. The plan is printed; it runs after you type the disk's serial (or --yes).
    ///   3. disk1 is provisioned as `lifeboat provision` would (same guards). When the backup holds <meta>/boot/filesystems.toml (the role = "meta" subvolume, e.g. myhost-meta) (written by `lifeboat backup-boot`), every filesystem gets its recorded UUID again, so fstab and loader entries stay valid as they are.
    ///   4. Each point is sent through lifeboat (progress with rate and ETA) into `btrfs receive` under @snapshots/ (it stays there read-only, the base for the next backups); then the writable subvolume (@home, @root, …) is made as a snapshot of it.
    ///   5. /boot and the ESPs on the restored disk get their copies from <meta>/boot; a root's /etc/fstab that names filesystems which do not exist is rewritten from the spec (the old one kept as fstab.before-restore); UEFI boot entries are written.
    ///   6. Checks: every restored root mounts, its fstab's UUIDs exist, UID 1000 is the same user in every root.
    ///
    /// --from restic: the same steps from the restic repository of the spec's [restic] section (the provider profile env_file and password_file; RESTIC_* and AWS_* in the environment override them). Each path of [restic.paths] is restored from the newest snapshot of this host and tag that holds it (or --at, or --snapshot ID) by `restic restore --verify` into <subvol>.lifeboat-partial, renamed to <subvol> when restic has finished; the filesystem record is read with `restic dump`.
    ///
    /// Interrupted? Run the same command again: complete points (read-only, with a received UUID: btrfs receive sets both at its end) are kept, a partial one is deleted and received again, nothing is restored twice. Data already in a subvolume that is restored over is renamed to <name>.before-restore-<time>, never deleted.
    // verbatim: the numbered steps keep their lines; each paragraph is one line, wrapped by clap.
    #[command(
        verbatim_doc_comment,
        after_help = "Examples:\n  \
lifeboat inventory configs/examples/laptop.toml\n  \
lifeboat restore configs/examples/laptop.toml --from usb --latest --dry-run\n  \
lifeboat restore configs/examples/laptop.toml --from usb --at '2026-11-20 03:00' --subvol @home\n  \
lifeboat restore configs/examples/laptop.toml --from restic --latest --dry-run"
    )]
    Restore(RestoreArgs),
    /// Copy /boot and the ESPs into <meta>/boot/ (e.g. myhost-meta), with the filesystems'
    /// UUIDs, so that btrbk and restic carry them and a restore can put them back.
    ///
    /// Copy the contents of /boot and of every ESP of the spec into the role = "meta" subvolume
    /// of the pool (e.g. myhost-meta in POOL) (boot/boot/, boot/esp/<LABEL>/), and record
    /// every filesystem's UUID and partition GUID in boot/filesystems.toml. The previous copy
    /// is replaced only once the new one is complete. Run it after kernel updates (before btrbk
    /// or restic runs): `lifeboat restore` brings /boot and the ESPs back from this copy and
    /// gives the filesystems their recorded UUIDs again. Reads the disks; writes only into that
    /// subvolume.
    BackupBoot(BackupBootArgs),
    /// Copy another host's newest Veeam image (or phone backup) out of restic onto a USB
    /// partition, for that system's own recovery tools.
    ///
    /// Copy the newest file matching --match (default *.vbk, a Veeam full backup) from the
    /// newest restic snapshot of --host (or --snapshot ID) onto the spec's partition labelled
    /// --to (WINIMAGES for Windows images, PHONE for a phone's TWRP backup), into
    /// lifeboat-staged/<host>/. The free space is checked first and the plan printed; the copy
    /// is written under a temporary name and renamed when restic has given every byte. NTFS
    /// partitions are mounted with ntfs-3g.
    #[command(
        after_help = "Examples:\n  lifeboat stage configs/examples/laptop.toml --host WIN-DESKTOP --to WINIMAGES\n  \
lifeboat stage configs/examples/laptop.toml --host pixel7 --to PHONE --match '*.win'"
    )]
    Stage(StageArgs),
    /// Restore the newest backup onto a sparse image and boot it in QEMU: proof that the backup
    /// restores and boots.
    ///
    /// A restore drill: the chosen (default: newest) points are restored with the same engine
    /// as `lifeboat restore` onto a sparse image file of the pool disk's real size in a work
    /// directory (through a loop device the drill attaches itself), then the image alone is
    /// booted in QEMU with OVMF. The drill passes when the serial console shows the spec's
    /// [drill] expect line (default: systemd's multi-user target or a login prompt) within its
    /// timeout_secs.
    ///
    /// Safety: the backup drive is found by the spec's match rules (or --disk usb=DEVICE) and
    /// mounted read-only; no other disk is bound or written; the firmware's variables are left
    /// alone; the only changes to what is booted (a serial console on the loader entries, the
    /// fallback loader) are made on the drill's own copy.
    ///
    /// The result is appended as one JSON line to /var/lib/lifeboat/drills.jsonl
    /// ($LIFEBOAT_STATE_DIR/drills.jsonl, or --record FILE). Exit status 0 only when the
    /// restored system booted.
    #[command(
        after_help = "Examples:\n  lifeboat drill configs/examples/laptop.toml\n  \
lifeboat drill configs/examples/laptop.toml --at 2026-11-20 --keep --work-dir /srv/drill"
    )]
    Drill(DrillArgs),
    /// Is the backup healthy? Newest points and their ages, the last drill, the ESPs in sync,
    /// BootOrder, fill levels; one line per finding.
    ///
    /// Check the machine's backup and boot setup, read-only: per subvolume the newest point on
    /// the backup drive (older than [health] usb_max_age_days, default 7, fails) and the newest
    /// restic snapshot when the spec has [restic]; the last drill in drills.jsonl (failed:
    /// fails; older than drill_max_age_days, default 35: warns); ESP1 a mirror of ESP0 (the
    /// esp-sync plan is empty); lifeboat's boot entries first in BootOrder (where efivarfs
    /// exists, else unknown); the backup drive's and the pool's fill level (fill_max_percent,
    /// default 85).
    ///
    /// Exit status 0: healthy, 1: warnings, 2: failures. One line per finding: OK, WARN or
    /// FAIL, what, why.
    Health(HealthArgs),
    /// Install or remove the systemd units of lifeboat's timers in a distro root.
    ///
    /// Write (install) or delete (remove) lifeboat's systemd units under
    /// ROOT/etc/systemd/system: a daily health check (lifeboat-health.timer), a monthly restore
    /// drill (lifeboat-drill.timer, Persistent=true so a missed month runs at the next boot),
    /// lifeboat-backup-boot.service pulled in before btrbk.service, and
    /// lifeboat-alert@.service, which every one of them names in OnFailure= and which runs
    /// `lifeboat alert`. The timers are enabled by their links in timers.target.wants/.
    /// Installing again changes nothing; remove deletes only these files and links.
    Timers(TimersArgs),
    /// Run the spec's [alerts] command about a failed unit, with the health findings.
    ///
    /// What lifeboat-alert@.service runs: `lifeboat health`'s findings are gathered and the
    /// spec's [alerts] command is run with two more arguments, the failed UNIT and the host,
    /// and the environment LIFEBOAT_UNIT, LIFEBOAT_HOST and LIFEBOAT_FINDINGS (one finding per
    /// line). Without an [alerts] section it prints the findings and says so.
    Alert(AlertArgs),
    /// Open the spec's LUKS2 containers with their key file or a passphrase.
    ///
    /// Open every LUKS2 container of the spec (encrypt = "luks2") that is on the disks, as
    /// /dev/mapper/lifeboat-<partition>, with the spec's key_file or else a passphrase asked
    /// for at the console (read from stdin without a terminal). A container that is open
    /// already is left as it is. Afterwards `lifeboat provision` and `lifeboat restore` use the
    /// open containers, and the filesystem inside can be mounted by hand. A key that does not
    /// open a container: one sentence, non-zero exit, nothing written.
    #[command(after_help = "Example: lifeboat unlock configs/examples/laptop.toml")]
    Unlock(UnlockArgs),
}

#[derive(Debug, Args)]
pub struct TimersArgs {
    /// install: write the units and enable the timers (again: nothing changes); remove:
    /// delete the units and links that install wrote.
    #[arg(value_enum)]
    pub action: TimersAction,
    /// The root of the installed system (/ for this one).
    pub root: PathBuf,
    /// The spec, as the installed system sees it (install).
    #[arg(long, value_name = "PATH", default_value = "/etc/lifeboat/spec.toml")]
    pub spec: PathBuf,
    /// The lifeboat binary, as the installed system sees it (install).
    #[arg(long, value_name = "PATH", default_value = "/usr/local/bin/lifeboat")]
    pub lifeboat: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimersAction {
    Install,
    Remove,
}

#[derive(Debug, Args)]
pub struct AlertArgs {
    /// The machine spec (TOML): its [alerts] command.
    pub spec: PathBuf,
    /// The unit that failed (systemd passes %n).
    pub unit: String,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The machine spec (TOML).
    pub spec: PathBuf,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub disks: DiskBindings,
    /// The drill records to read instead of drills.jsonl in the state directory.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// The machine spec (TOML).
    pub spec: PathBuf,
    /// Where the backups are.
    #[arg(long, value_enum, default_value = "usb")]
    pub from: RestoreFrom,
    /// The newest points at or before this time (UTC): 2026-11-20, '2026-11-20 03:00',
    /// 20261120T0300. Default: the newest.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Print the record as one JSON line (the last line of the output).
    #[arg(long)]
    pub json: bool,
    /// Keep the work directory: the restored image, OVMF_VARS.fd and console.log.
    #[arg(long)]
    pub keep: bool,
    /// The work directory (new or empty). Default: /var/tmp/lifeboat-drill-<time>-<pid>.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// The backup drive: use DEVICE as the spec's backup disk (usb=/dev/sdX). No other disk
    /// can be named.
    #[arg(long = "disk", value_name = "ID=DEVICE", value_parser = parse_binding)]
    pub disks: Vec<(String, PathBuf)>,
    /// Append the record to FILE instead of drills.jsonl in the state directory.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// QEMU's accelerator. KVM hangs on some hosts (nested virtualisation): TCG is the
    /// default, which always works and is slower.
    #[arg(long, value_enum, default_value = "tcg")]
    pub accel: DrillAccel,
    /// The guest's memory in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub memory: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DrillAccel {
    Tcg,
    Kvm,
}

#[derive(Debug, Args)]
pub struct StageArgs {
    /// The machine spec (TOML): its [restic] section and the target partition.
    pub spec: PathBuf,
    /// The restic host whose backup is staged (WIN-DESKTOP, a phone's name).
    #[arg(long)]
    pub host: String,
    /// The label of the partition it goes to (WINIMAGES, PHONE).
    #[arg(long, value_name = "LABEL")]
    pub to: String,
    /// Which file: the newest whose name matches (`*` and `?`).
    #[arg(long = "match", value_name = "GLOB", default_value = "*.vbk")]
    pub pattern: String,
    /// This restic snapshot (its id or the start of it) instead of the newest of the host.
    #[arg(long, value_name = "ID")]
    pub snapshot: Option<String>,
    #[command(flatten)]
    pub disks: DiskBindings,
    #[command(flatten)]
    pub confirm: Confirm,
}

/// Where a restore reads the machine from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RestoreFrom {
    /// The btrbk/snapper snapshots and stream files on the backup drive (role = "backup", e.g. BACKUP).
    Usb,
    /// The restic repository of the spec's [restic] section (the off-site copy).
    Restic,
    /// Raw `btrfs send` stream files kept in that restic repository
    /// (raw-snapshots/<host>/), received as from the backup drive.
    ResticStream,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("when").required(true).args(["at", "latest", "snapshot"]))]
pub struct RestoreArgs {
    /// The machine spec (TOML).
    pub spec: PathBuf,
    /// Where the backups are.
    #[arg(long, value_enum)]
    pub from: RestoreFrom,
    /// The newest point at or before this time (UTC): 2026-11-20, '2026-11-20 03:00',
    /// 20261120T0300.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// The newest point of each subvolume.
    #[arg(long)]
    pub latest: bool,
    /// With --from restic or restic-stream: this snapshot (its id or the start of it).
    #[arg(long, value_name = "ID")]
    pub snapshot: Option<String>,
    /// Only this subvolume (repeatable). Default: every subvolume of the spec with points.
    #[arg(long = "subvol", value_name = "NAME")]
    pub subvols: Vec<String>,
    #[command(flatten)]
    pub disks: DiskBindings,
    /// Allow replacing the partition table and filesystems on this disk (repeatable).
    #[arg(long = "wipe", value_name = "ID")]
    pub wipe: Vec<String>,
    /// Receive this many subvolumes side by side (--from usb, restic-stream). Default: 2,
    /// or 1 when the backup drive is a spinning disk (two reads at once would seek).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=8))]
    pub receives: Option<u8>,
    #[command(flatten)]
    pub confirm: Confirm,
}

#[derive(Debug, Args)]
pub struct BackupBootArgs {
    /// The machine spec (TOML).
    pub spec: PathBuf,
    #[command(flatten)]
    pub disks: DiskBindings,
}

/// Where `inventory` looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InventoryFrom {
    /// The backup drive (role = "backup", e.g. BACKUP): btrbk and snapper snapshots, raw send streams.
    Usb,
    /// The restic repository of the spec's [restic] section (or RESTIC_REPOSITORY).
    Restic,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// The machine spec (TOML).
    pub spec: PathBuf,
    /// Where to look.
    #[arg(long, value_enum, default_value = "usb")]
    pub from: InventoryFrom,
    #[command(flatten)]
    pub disks: DiskBindings,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct Selection {
    /// The machine spec (TOML), e.g. configs/examples/laptop.toml.
    pub spec: PathBuf,
    #[command(flatten)]
    pub disks: DiskBindings,
    /// Only these disks of the spec (repeatable). Default: every disk that is not preserved.
    #[arg(long = "only", value_name = "ID")]
    pub only: Vec<String>,
    /// Allow replacing the partition table and filesystems on this disk (repeatable).
    #[arg(long = "wipe", value_name = "ID")]
    pub wipe: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Print the plan as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub confirm: Confirm,
}

#[derive(Debug, Args)]
pub struct DisksArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The machine spec (TOML).
    pub spec: PathBuf,
}

#[derive(Debug, Args)]
pub struct MenuArgs {
    /// The machine spec the menu works with [default: $LIFEBOAT_SPEC, else
    /// /run/lifeboat/boot/lifeboat/spec.toml on the stick if it exists, else
    /// /etc/lifeboat/spec.toml].
    #[arg(long)]
    pub spec: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BootEntriesArgs {
    /// The machine spec (TOML).
    pub spec: PathBuf,
    #[command(flatten)]
    pub disks: DiskBindings,
    /// The loader on each ESP the entries start; `auto`: Debian's shim of the signed chain
    /// (\EFI\lifeboat\shimx64.efi) when Secure Boot is on, else systemd-boot
    /// (\EFI\systemd\systemd-bootx64.efi).
    #[arg(long, default_value = DEFAULT_LOADER)]
    pub loader: String,
    #[command(flatten)]
    pub confirm: Confirm,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The machine spec (TOML).
    pub spec: PathBuf,
    #[command(flatten)]
    pub disks: DiskBindings,
}

#[derive(Debug, Args)]
pub struct FstabArgs {
    /// The machine spec (TOML).
    pub spec: PathBuf,
    /// The root subvolume the fstab is for (a subvolume with `root = true`).
    #[arg(long, value_name = "SUBVOLUME")]
    pub root: String,
    #[command(flatten)]
    pub disks: DiskBindings,
}

/// The two ESPs of esp-sync and its hook: named, or the spec's first two.
#[derive(Debug, Args)]
pub struct EspPair {
    /// The ESP to copy from (default: the spec's ESP mounted at /boot/efi).
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// The ESP to make a copy (default: the spec's second ESP, /boot/efi2).
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// The machine spec that names the ESPs' mount points [default: $LIFEBOAT_SPEC, else
    /// /run/lifeboat/boot/lifeboat/spec.toml if it exists, else /etc/lifeboat/spec.toml].
    #[arg(long)]
    pub spec: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EspSyncArgs {
    #[command(flatten)]
    pub esps: EspPair,
    #[command(flatten)]
    pub confirm: Confirm,
}

#[derive(Debug, Args)]
pub struct EspSyncHookArgs {
    /// The system root to install into (/ for the running system).
    #[arg(value_name = "ROOT")]
    pub root: PathBuf,
    #[command(flatten)]
    pub esps: EspPair,
}

/// `--disk ID=DEVICE` (repeatable): the disks named on the command line rather than
/// found by the spec's match rules. Derefs to the pairs, in the order given.
#[derive(Debug, Clone, Default, Args)]
pub struct DiskBindings {
    /// Use DEVICE as the spec's disk ID instead of finding it by its match rules.
    #[arg(long = "disk", value_name = "ID=DEVICE", value_parser = parse_binding)]
    pub disks: Vec<(String, PathBuf)>,
}

impl std::ops::Deref for DiskBindings {
    type Target = [(String, PathBuf)];
    fn deref(&self) -> &Self::Target {
        &self.disks
    }
}

/// `--yes` and `--dry-run` of every command that changes something after printing what
/// it will change.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct Confirm {
    /// Do not ask: the printed plan is confirmed.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the plan and stop; nothing is written.
    #[arg(long)]
    pub dry_run: bool,
}

/// The one place the two flags become the library's [`Confirmation`](crate::ui::Confirmation)
/// (here, not in `ui`, which sits below the command line).
impl From<&Confirm> for crate::ui::Confirmation {
    /// `--dry-run` wins over `--yes`: with both, the plan is printed and nothing written
    /// (the safer reading, and what each command did before this type existed).
    fn from(flags: &Confirm) -> Self {
        use crate::ui::Confirmation;
        match (flags.dry_run, flags.yes) {
            (true, _) => Confirmation::DryRun,
            (false, true) => Confirmation::Yes,
            (false, false) => Confirmation::Ask,
        }
    }
}

/// The loader provisioning installs on both ESPs: `auto` is `\EFI\lifeboat\shimx64.efi`
/// (the signed chain) when the firmware enforces Secure Boot, else
/// `\EFI\systemd\systemd-bootx64.efi`.
pub const DEFAULT_LOADER: &str = crate::boot::loader::AUTO;

fn parse_binding(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((id, dev)) if !id.is_empty() && !dev.is_empty() => {
            Ok((id.to_owned(), PathBuf::from(dev)))
        }
        _ => Err(format!(
            "expected ID=DEVICE (for example disk1=/dev/sdb), got \"{s}\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bindings_parse() {
        assert_eq!(
            parse_binding("disk1=/dev/loop3").unwrap(),
            ("disk1".to_owned(), PathBuf::from("/dev/loop3"))
        );
        assert!(parse_binding("disk1").is_err());
        assert!(parse_binding("=/dev/x").is_err());
    }
}
