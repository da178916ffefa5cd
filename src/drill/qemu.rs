//! Booting the restored disk: the QEMU command line (pure), the verdict from the serial
//! console (pure), and the thin runner that starts QEMU, watches the console file and
//! stops QEMU when the verdict is in or the time is up.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::exec::Cmd;

pub const QEMU: &str = "qemu-system-x86_64";
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// What a boot that went wrong prints; seen, the drill stops waiting.
pub const FAILURE_MARKERS: &[&str] = &["Kernel panic", "end Kernel panic"];

/// How QEMU runs the guest's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// The machine the drill boots: the restored disk alone.
#[derive(Debug, Clone)]
pub struct Machine {
    pub accel: Accel,
    /// The drill's own copy of OVMF_VARS.
    pub vars: PathBuf,
    /// The restored disk (a raw image file).
    pub disk: PathBuf,
    pub console: PathBuf,
    pub memory_mib: u32,
}

/// The QEMU arguments: q35 with OVMF, no network (`-nic none`), no display, the serial
/// console into a file, the disk on virtio as the first boot device, no reboot (a guest
/// that powers off or reboots ends the run).
pub fn argv(m: &Machine) -> Vec<String> {
    let accel = match m.accel {
        Accel::Kvm => "kvm".to_owned(),
        Accel::Tcg => "tcg,thread=multi".to_owned(),
    };
    let mut a: Vec<String> = vec![
        "-machine".into(),
        "q35".into(),
        "-accel".into(),
        accel,
        "-nodefaults".into(),
        "-no-user-config".into(),
        "-nographic".into(),
        "-monitor".into(),
        "none".into(),
        "-serial".into(),
        format!("file:{}", m.console.display()),
        "-nic".into(),
        "none".into(),
        "-no-reboot".into(),
        "-m".into(),
        m.memory_mib.to_string(),
        "-smp".into(),
        "2".into(),
        "-drive".into(),
        format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"),
        "-drive".into(),
        format!("if=pflash,format=raw,unit=1,file={}", m.vars.display()),
        "-drive".into(),
        format!("if=none,id=restored,format=raw,file={}", m.disk.display()),
        "-device".into(),
        "virtio-blk-pci,drive=restored,bootindex=0".into(),
    ];
    a.shrink_to_fit();
    a
}

/// How a boot ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    /// The console showed this expected line.
    Booted {
        line: String,
    },
    /// A line that means failure.
    Failed {
        line: String,
    },
    /// The guest stopped (powered off, QEMU exited) without the expected line.
    Stopped {
        status: String,
    },
    TimedOut {
        secs: u64,
    },
}

impl Verdict {
    pub fn booted(&self) -> bool {
        matches!(self, Verdict::Booted { .. })
    }
}

/// The verdict so far from the console text: the first line holding an expected marker
/// or a failure marker decides; `None` while neither has been seen.
pub fn judge(console: &str, expect: &[String]) -> Option<Verdict> {
    for line in console.lines() {
        let line = line.trim_end_matches('\r');
        if expect.iter().any(|e| line.contains(e.as_str())) {
            return Some(Verdict::Booted {
                line: printable(line),
            });
        }
        if FAILURE_MARKERS.iter().any(|f| line.contains(f)) {
            return Some(Verdict::Failed {
                line: printable(line),
            });
        }
    }
    None
}

/// The console's last `n` lines, control characters (firmware screen codes) dropped.
pub fn tail(console: &str, n: usize) -> Vec<String> {
    tail_to(console, None, n)
}

/// For a boot that failed with a line (a kernel panic): the `n` lines that end a few
/// lines after it, what led to it rather than the backtrace after it. Else [`tail`].
pub fn tail_to(console: &str, failure: Option<&str>, n: usize) -> Vec<String> {
    let lines: Vec<String> = console
        .lines()
        .map(printable)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let end = failure
        .and_then(|f| lines.iter().position(|l| l == f))
        .map_or(lines.len(), |i| (i + 3).min(lines.len()));
    lines[end.saturating_sub(n)..end].to_vec()
}

fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An escape sequence: ESC [ … final byte.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out.trim_end().to_owned()
}

/// A boot that ran: its verdict, how long it took, the console's text.
#[derive(Debug)]
pub struct Boot {
    pub verdict: Verdict,
    pub secs: f64,
    pub console: String,
}

/// Boot `m` and wait for the verdict at most `timeout`. QEMU dies with lifeboat
/// (PR_SET_PDEATHSIG) and is stopped once the verdict is in.
pub fn boot(m: &Machine, expect: &[String], timeout: Duration) -> Result<Boot> {
    std::fs::copy(OVMF_VARS, &m.vars)
        .with_context(|| format!("copying {OVMF_VARS} to {}", m.vars.display()))?;
    std::fs::write(&m.console, b"").with_context(|| format!("creating {}", m.console.display()))?;
    let start = Instant::now();
    let mut qemu = Cmd::new(QEMU)
        .args(argv(m))
        .die_with_parent()
        .spawn(crate::exec::Pipe::Neither)
        .context("starting QEMU")?;
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let verdict = loop {
        std::thread::sleep(Duration::from_millis(250));
        let console = read(&m.console);
        if let Some(v) = judge(&console, expect) {
            break v;
        }
        match qemu.child.try_wait() {
            Ok(Some(status)) => {
                // The last lines may have come with the exit.
                let console = read(&m.console);
                break judge(&console, expect).unwrap_or(Verdict::Stopped {
                    status: format!("QEMU exited ({status})"),
                });
            }
            Ok(None) => {}
            Err(e) => {
                break Verdict::Stopped {
                    status: format!("QEMU cannot be waited for: {e}"),
                }
            }
        }
        if start.elapsed() >= timeout {
            break Verdict::TimedOut {
                secs: timeout.as_secs(),
            };
        }
    };
    let secs = start.elapsed().as_secs_f64();
    qemu.kill();
    Ok(Boot {
        verdict,
        secs,
        console: read(&m.console),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine {
            accel: Accel::Tcg,
            vars: "/w/OVMF_VARS.fd".into(),
            disk: "/w/disk1.img".into(),
            console: "/w/console.log".into(),
            memory_mib: 1024,
        }
    }

    #[test]
    fn the_restored_disk_alone_without_network() {
        let a = argv(&machine()).join(" ");
        assert!(a.contains("-machine q35 -accel tcg,thread=multi"), "{a}");
        assert!(a.contains("-nic none"), "{a}");
        assert!(a.contains("-serial file:/w/console.log"), "{a}");
        assert!(
            a.contains("unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd"),
            "{a}"
        );
        assert!(a.contains("unit=1,file=/w/OVMF_VARS.fd"), "{a}");
        assert!(a.contains("file=/w/disk1.img"), "{a}");
        assert_eq!(a.matches("-drive").count(), 3, "{a}");
        assert!(!a.contains("-netdev") && !a.contains("user,"), "{a}");
        let mut m = machine();
        m.accel = Accel::Kvm;
        assert!(argv(&m).join(" ").contains("-accel kvm "));
    }

    #[test]
    fn the_first_marker_decides() {
        let expect = vec![
            "Reached target multi-user.target".to_owned(),
            "login:".to_owned(),
        ];
        assert_eq!(
            judge("BdsDxe: loading\nsystemd[1]: Started\n", &expect),
            None
        );
        assert_eq!(
            judge("x\n\u{1b}[0;32m[  OK  ]\u{1b}[0m Reached target multi-user.target - Multi-User System.\r\n", &expect),
            Some(Verdict::Booted {
                line: "[  OK  ] Reached target multi-user.target - Multi-User System.".into()
            })
        );
        assert_eq!(
            judge(
                "[ 1.0] Kernel panic - not syncing: VFS\natlantis login:\n",
                &expect
            ),
            Some(Verdict::Failed {
                line: "[ 1.0] Kernel panic - not syncing: VFS".into()
            })
        );
    }

    #[test]
    fn a_panics_tail_ends_just_after_it() {
        let console = "a\nb\nroot mounted\nKernel panic - x\nc1\nc2\nc3\nc4\n";
        assert_eq!(
            tail_to(console, Some("Kernel panic - x"), 3),
            vec!["Kernel panic - x", "c1", "c2"]
        );
        assert_eq!(tail_to(console, None, 2), vec!["c3", "c4"]);
        assert_eq!(tail_to(console, Some("not there"), 1), vec!["c4"]);
    }

    #[test]
    fn the_tail_is_the_last_printable_lines() {
        let t = tail("a\n\n\u{1b}[2Jb\r\nc\n", 2);
        assert_eq!(t, vec!["b".to_owned(), "c".to_owned()]);
        assert_eq!(tail("", 5), Vec::<String>::new());
    }
}
