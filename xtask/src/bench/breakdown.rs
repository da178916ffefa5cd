//! Where one restore's time went, read from lifeboat's run log (src/runlog.rs stamps each
//! line `[   1.234] …` with seconds since the run started). Each line's time runs until the
//! next line's stamp and counts for the phase the run was in at that line.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Probing the disks, the lock, the source's listing and checks, up to confirmation.
    Preflight,
    /// The partition table, file systems and subvolumes of the target.
    Provisioning,
    /// `btrfs send | receive` (or `receive -f`, `restic restore`) into @snapshots, and the
    /// sync that puts each point on the disk before anything builds on it.
    Transfer,
    /// The writable subvolumes made from the received points.
    Snapshot,
    /// Everything after: /boot, the ESPs, boot entries, the final probe and checks.
    Checks,
}

pub const PHASES: [Phase; 5] = [
    Phase::Preflight,
    Phase::Provisioning,
    Phase::Transfer,
    Phase::Snapshot,
    Phase::Checks,
];

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Preflight => "preflight (probe, lock, source checks)",
            Phase::Provisioning => "provisioning",
            Phase::Transfer => "transfer (receive into @snapshots)",
            Phase::Snapshot => "snapshot (the writable subvolumes)",
            Phase::Checks => "checks (boot, final probe, report)",
        }
    }
}

/// Seconds per phase, in [`PHASES`] order, and the seconds of the last stamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown {
    pub phases: [f64; 5],
    pub logged: f64,
}

/// What a logged command does for the breakdown, if it marks a phase.
fn command_phase(text: &str) -> Option<Phase> {
    let cmd = text.strip_prefix("$ ")?;
    let transfer = [
        "btrfs send",
        "btrfs receive",
        "restic restore",
        "restic dump",
        // What was received, written to the disk before anything builds on it.
        "btrfs filesystem sync",
    ];
    if transfer.iter().any(|t| cmd.starts_with(t)) && !cmd.contains("--dump") {
        return Some(Phase::Transfer);
    }
    let snapshot = [
        "btrfs subvolume snapshot",
        "btrfs subvolume delete",
        "btrfs property set",
    ];
    snapshot
        .iter()
        .any(|t| cmd.starts_with(t))
        .then_some(Phase::Snapshot)
}

/// `(seconds, text)` of a log line, `None` for a line without a stamp.
fn stamped(line: &str) -> Option<(f64, &str)> {
    let rest = line.strip_prefix('[')?;
    let (secs, text) = rest.split_once("] ")?;
    Some((secs.trim().parse().ok()?, text))
}

/// The breakdown of a restore's run log. Before the confirmation everything is preflight;
/// from it to the first transfer, provisioning; then transfer and snapshot as their
/// commands say; from the first other command after the last of those on, checks.
pub fn parse(log: &str) -> Option<Breakdown> {
    let lines: Vec<(f64, &str)> = log.lines().filter_map(stamped).collect();
    let last_marked = lines
        .iter()
        .rposition(|(_, text)| command_phase(text).is_some())?;
    let mut phases = [0.0; 5];
    let mut phase = Phase::Preflight;
    for (i, (at, text)) in lines.iter().enumerate() {
        if text.starts_with("confirmed") && phase == Phase::Preflight {
            phase = Phase::Provisioning;
        }
        if let Some(p) = command_phase(text) {
            phase = p;
        } else if i > last_marked && text.starts_with("$ ") {
            phase = Phase::Checks;
        }
        let until = lines.get(i + 1).map_or(*at, |(next, _)| *next);
        let slot = PHASES.iter().position(|p| *p == phase).unwrap_or(0);
        phases[slot] += (until - at).max(0.0);
    }
    Some(Breakdown {
        phases,
        logged: lines.last().map_or(0.0, |(at, _)| *at),
    })
}

/// The table printed under a restore bench's figures; `wall` is the run's wall time
/// (the rest is process start-up and exit, outside the log).
pub fn table(b: &Breakdown, wall: Duration) -> String {
    let wall = wall.as_secs_f64();
    let mut out = String::new();
    for (phase, secs) in PHASES.iter().zip(b.phases) {
        out += &format!(
            "    {:<40} {secs:>7.2} s  {:>5.1} %\n",
            phase.name(),
            100.0 * secs / wall.max(1e-9)
        );
    }
    let rest = (wall - b.logged).max(0.0);
    out += &format!(
        "    {:<40} {rest:>7.2} s  {:>5.1} %\n",
        "outside the log (start-up, exit)",
        100.0 * rest / wall.max(1e-9)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a real `restore --from usb --subvol @home` log, shortened.
    const LOG: &str = "\
[   0.000] lifeboat 0.1.0 restore, started 20261201T233845 UTC
[   0.027] $ blkid -p -o export /dev/loop10
[   1.220] locked disk1 (/dev/loop13)
[   1.348] $ btrfs subvolume list -u -q -R /tmp/m
[   1.395] $ btrfs receive --dump (streaming)
[   1.447] confirmed with --yes
[   1.447] step 1/11 disk1: write a new GPT with 4 partitions on /dev/loop13
[   1.591] $ mkfs.btrfs -f -q -L LINPOOL /dev/loop13p4
[   2.263] $ btrfs send -q /tmp/b/atlantis/@home.20261120T0300 (streaming)
[   2.263] $ btrfs receive -q --chroot /tmp/m/@snapshots (streaming)
[   4.900]   stderr: Chroot to /tmp/m/@snapshots
[   4.900] $ btrfs filesystem sync /tmp/m/@snapshots
[   5.185] $ btrfs subvolume delete /tmp/m/@home
[   5.187] $ btrfs subvolume snapshot /tmp/m/@snapshots/@home.20261120T0300 /tmp/m/@home
[   5.475] $ blkid -p -o export --offset 1048576 --size 536870912 /dev/loop0
unstamped continuation of a long stderr
[   6.000] restored
";

    #[test]
    fn each_line_counts_until_the_next_for_the_phase_it_is_in() {
        let b = parse(LOG).unwrap();
        let near = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let [pre, prov, xfer, snap, checks] = b.phases;
        assert!(near(pre, 1.447), "{pre}");
        assert!(near(prov, 2.263 - 1.447), "{prov}");
        assert!(near(xfer, 5.185 - 2.263), "{xfer}");
        assert!(near(snap, 5.475 - 5.185), "{snap}");
        assert!(near(checks, 6.0 - 5.475), "{checks}");
        assert!(near(b.logged, 6.0));
        let text = table(&b, Duration::from_secs(8));
        assert!(text.contains("outside the log (start-up, exit)"), "{text}");
        assert!(text.contains("   2.00 s   25.0 %"), "{text}");
    }

    #[test]
    fn a_log_without_a_transfer_has_no_breakdown() {
        assert_eq!(
            parse("[   0.000] lifeboat restore\n[   0.100] $ blkid\n"),
            None
        );
        assert_eq!(parse(""), None);
    }
}
