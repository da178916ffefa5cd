//! `cargo xtask qemu [SCENARIO]...`: boot the rescue image in QEMU (q35, OVMF, TCG) with a
//! scenario's disks and judge the run by the guest's serial console.
//!
//! A scenario (tests/qemu/NAME.toml) is data: the disks (real sizes, serial numbers, what
//! is on them), an optional script the stick runs instead of the menu, the console lines
//! expected in order, text that must never appear, and which disks must stay untouched.
//! Everything of a run lands in target/qemu/runs/NAME/; the console log stays there.

mod argv;
mod console;
mod fixture;
mod luks_fixture;
mod media;
mod s3;
mod scenario;

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use crate::{image, interrupt, project_root, target_dir};
use console::{Expect, Watcher};
use scenario::Boot;
pub use scenario::Scenario;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Scenario names; empty means all of them.
    pub scenarios: Vec<String>,
    /// Use this image instead of building target/images/lifeboat-rescue.img.
    pub image: Option<PathBuf>,
    /// Echo the guest's console while it runs.
    pub console: bool,
    /// Keep the run's disks and stick copy even when the scenario passes.
    pub keep: bool,
}

/// What a passing run measured.
pub struct Outcome {
    pub name: String,
    pub elapsed: Duration,
    /// QEMU start to the init's LIFEBOAT-MENU-READY line, when the menu came up.
    pub menu_ready: Option<Duration>,
    /// The guest kernel's uptime at that moment.
    pub menu_uptime: Option<f64>,
}

pub fn run(sh: &Shell, options: &Options) -> Result<()> {
    let root = project_root();
    let names = if options.scenarios.is_empty() {
        scenario::names(&root)?
    } else {
        options.scenarios.clone()
    };
    // Every scenario file is read before anything boots: a typo fails in a second.
    let scenarios = names
        .iter()
        .map(|n| Scenario::load(&root, n))
        .collect::<Result<Vec<_>>>()?;
    let image = match &options.image {
        Some(path) => path.clone(),
        None => image::build(sh, &image::Options::default())?.path,
    };
    let mut outcomes = Vec::new();
    for scenario in &scenarios {
        interrupt::check()?;
        outcomes.push(run_scenario(sh, scenario, &image, options)?);
    }
    println!();
    for o in &outcomes {
        let menu = o
            .menu_ready
            .map(|d| format!(", menu after {:.1} s", d.as_secs_f64()))
            .unwrap_or_default();
        println!(
            "qemu: {:<12} passed in {:.1} s{menu}",
            o.name,
            o.elapsed.as_secs_f64()
        );
    }
    Ok(())
}

fn preflight() -> Result<()> {
    for (path, package) in [
        (argv::OVMF_CODE, "ovmf"),
        (argv::OVMF_VARS, "ovmf"),
        (argv::OVMF_CODE_SECBOOT, "ovmf"),
        (argv::OVMF_VARS_MS, "ovmf"),
        ("/usr/bin/qemu-system-x86_64", "qemu-system-x86"),
        ("/usr/bin/qemu-img", "qemu-utils"),
    ] {
        if !Path::new(path).exists() {
            bail!(
                "{path} is missing: install the Debian package {package} (`cargo xtask deps` does)"
            );
        }
    }
    Ok(())
}

pub fn run_scenario(
    sh: &Shell,
    scenario: &Scenario,
    image: &Path,
    options: &Options,
) -> Result<Outcome> {
    preflight()?;
    let name = &scenario.name;
    println!("\n== qemu scenario {name}: {}", scenario.description.trim());
    let dir = target_dir().join("qemu").join("runs").join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir)
            .with_context(|| format!("removing the last run, {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let vars = dir.join("OVMF_VARS.fd");
    fs::copy(argv::vars_template(scenario.secure_boot), &vars)
        .context("copying the OVMF variable store")?;
    let mut disks = Vec::new();
    let mut home_sha256 = None;
    for disk in &scenario.disks {
        let base = if disk.content == scenario::Content::AtlantisFixture {
            println!(
                "qemu: making the fixture Atlantis on {} ({} bytes)",
                disk.id, disk.bytes
            );
            let made = fixture::atlantis(sh, image, disk.bytes, &dir)?;
            home_sha256 = Some(made.home_sha256);
            made.disk1
        } else {
            media::base(sh, disk.content, disk.bytes)
                .with_context(|| format!("disk `{}`", disk.id))?
        };
        let file = dir.join(format!("{}.qcow2", disk.id));
        media::overlay(sh, &base, &file)?;
        disks.push((disk.clone(), base, file));
    }

    // Kept for the whole run, every boot: stopped when this goes.
    let s3 = if scenario.s3_buckets.is_empty() {
        None
    } else {
        let tls = if scenario.s3_tls {
            s3::make_ca(&dir, "s3-ca", Some(scenario::S3_TLS_HOST))?;
            Some(dir.join("s3-ca.pem"))
        } else {
            None
        };
        let server = match &tls {
            Some(_) => s3::S3::start_with(
                &dir,
                &scenario.s3_buckets,
                Some(s3::Tls {
                    cert: &dir.join("s3-ca-server.pem"),
                    key: &dir.join("s3-ca-server.key"),
                }),
            )?,
            None => s3::S3::start(&dir, &scenario.s3_buckets)?,
        };
        Some((server, tls))
    };

    // One key for the whole run: the container made in boot 1 opens with it in every boot.
    let luks_files = if scenario.luks_fixture {
        Some(luks_fixture::stick_files(&luks_fixture::new_key()?)?)
    } else {
        None
    };

    let stick = dir.join("stick.img");
    let netboot = dir.join("netboot");
    let mut outcome = Outcome {
        name: name.clone(),
        elapsed: Duration::ZERO,
        menu_ready: None,
        menu_uptime: None,
    };
    let boots = scenario.boots.len();
    let mut captures = console::Captures::new();
    for (n, boot) in scenario.boots.iter().enumerate() {
        interrupt::check()?;
        for id in &boot.replace {
            for (disk, base, file) in disks.iter_mut().filter(|(d, _, _)| &d.id == id) {
                println!(
                    "qemu: {id} replaced by a blank disk of {} bytes",
                    disk.bytes
                );
                *base = media::base(sh, scenario::Content::Blank, disk.bytes)?;
                media::overlay(sh, base, file)?;
            }
        }
        for new in &boot.replace_with {
            for (disk, base, file) in disks.iter_mut().filter(|(d, _, _)| d.id == new.id) {
                println!(
                    "qemu: {} replaced by a blank disk of {} bytes with serial {} (was {} bytes, serial {})",
                    new.id, new.bytes, new.serial, disk.bytes, disk.serial
                );
                disk.bytes = new.bytes;
                disk.serial = new.serial.clone();
                disk.content = scenario::Content::Blank;
                *base = media::base(sh, scenario::Content::Blank, disk.bytes)?;
                media::overlay(sh, base, file)?;
            }
        }
        let mut boot = boot.clone();
        if let Some(sum) = &home_sha256 {
            for e in boot.expect.iter_mut().flat_map(Expect::lines_mut) {
                *e = e.replace(scenario::HOME_SHA256, sum);
            }
        }
        let boot = &boot;
        let which = if boots == 1 {
            String::new()
        } else {
            format!("boot {} of {boots}", n + 1)
        };
        if boot.stick {
            // A fresh copy each boot: the run file is this boot's.
            let from = match boot.medium {
                scenario::Medium::Usb => image.to_path_buf(),
                scenario::Medium::Cdrom | scenario::Medium::IsoUsb => image::iso_path(image),
                scenario::Medium::Netboot => image::netboot::dir_for(image),
            };
            if boot.medium == scenario::Medium::Netboot {
                image::netboot::copy(&from, &netboot)?;
                if let Some(script) = &boot.run {
                    fs::create_dir_all(netboot.join("lifeboat"))?;
                    fs::write(netboot.join("lifeboat/run"), script)
                        .context("writing lifeboat/run into the netboot directory")?;
                }
            } else {
                fs::copy(&from, &stick)
                    .with_context(|| format!("copying the rescue image {}", from.display()))?;
            }
            if let (Some(script), scenario::Medium::Usb) = (&boot.run, boot.medium) {
                image::write_run_file(&stick, script, 1_767_225_600)?;
            }
            if let (Some(files), scenario::Medium::Usb) = (&luks_files, boot.medium) {
                image::write_esp_files(&stick, files, 1_767_225_600)?;
            }
            if boot.stick_loader == scenario::StickLoader::Unsigned {
                image::unsign_loader(&stick, 1_767_225_600)?;
            }
            if let (Some((_, Some(ca))), scenario::Medium::Usb) = (&s3, boot.medium) {
                let pem = fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
                image::write_stick_file(&stick, "lifeboat/s3-ca.pem", &pem, 1_767_225_600)?;
            }
        }
        let monitor = disks
            .iter()
            .any(|(d, _, _)| d.hotplug)
            .then(|| dir.join("monitor.sock"));
        if let Some(sock) = &monitor {
            let _ = fs::remove_file(sock);
        }
        let machine = argv::Machine {
            vars: &vars,
            stick: (boot.stick && boot.medium != scenario::Medium::Netboot)
                .then_some(stick.as_path()),
            medium: boot.medium,
            tftp: (boot.stick && boot.medium == scenario::Medium::Netboot)
                .then_some(netboot.as_path()),
            disks: disks
                .iter()
                .map(|(d, _, f)| argv::Drive {
                    id: d.id.as_str(),
                    file: f.as_path(),
                    serial: d.serial.as_str(),
                    block_size: d.logical_block_size,
                    bus: d.bus,
                    hotplug: d.hotplug,
                })
                .collect(),
            memory_mib: scenario.memory_mib,
            // One vCPU: with two, the guest's efibootmgr (EFI variable reads and writes
            // through OVMF's pflash) hung now and then under TCG (twice in six runs of
            // boot-entries); one vCPU boots the scenarios as fast.
            cpus: 1,
            s3_port: s3.as_ref().map(|(s, _)| s.port),
            secure_boot: scenario.secure_boot,
            nic: scenario.nic.as_deref(),
            s3_tls: scenario.s3_tls,
            monitor: monitor.as_deref(),
        };
        let args = argv::argv(&machine);
        let plugs: Vec<(String, String)> = machine
            .disks
            .iter()
            .filter(|d| d.hotplug)
            .map(|d| (d.id.to_owned(), argv::plug_command(d)))
            .collect();
        let log_path = if boots == 1 {
            dir.join("console.log")
        } else {
            dir.join(format!("console-{}.log", n + 1))
        };
        println!(
            "qemu: {which}{}{} disk(s), stick {}{}, timeout {} s; console log {}",
            if which.is_empty() { "" } else { ": " },
            disks.len(),
            match (boot.stick, boot.stick_loader) {
                (false, _) => "pulled",
                (true, _) if boot.medium == scenario::Medium::Cdrom => "the ISO in the CD drive",
                (true, _) if boot.medium == scenario::Medium::IsoUsb => "in (the ISO dd'd onto it)",
                (true, _) if boot.medium == scenario::Medium::Netboot => {
                    "pulled, booting from the network (TFTP)"
                }
                (true, scenario::StickLoader::Signed) => "in",
                (true, scenario::StickLoader::Unsigned) => "in (its shim unsigned)",
            },
            if scenario.secure_boot {
                ", Secure Boot enforcing"
            } else {
                ""
            },
            boot.timeout_secs,
            log_path.display()
        );
        let label = if boots == 1 {
            name.clone()
        } else {
            format!("{name} ({which})")
        };
        let this = boot_and_watch(
            &label,
            scenario,
            boot,
            &args,
            &dir,
            (&log_path, &captures),
            Plugs {
                echo: options.console,
                monitor: monitor.as_deref(),
                plugs: &plugs,
            },
        )?;
        captures = this.captures;
        outcome.elapsed += this.elapsed;
        if outcome.menu_ready.is_none() {
            outcome.menu_ready = this.menu_ready;
            outcome.menu_uptime = this.menu_uptime;
        }
    }

    for (disk, base, file) in &disks {
        if disk.unchanged {
            if !media::identical(sh, file, base)? {
                bail!(
                    "scenario {name}: the guest changed disk `{}`, which must stay byte-identical (qemu-img compare {} {})",
                    disk.id,
                    file.display(),
                    base.display()
                );
            }
            println!(
                "qemu: disk `{}` is byte-identical to before the run (qemu-img compare)",
                disk.id
            );
        }
        for number in &disk.unchanged_partitions {
            let range = media::partition_range(sh, base, *number)?;
            if !media::range_identical(sh, file, base, range)? {
                bail!(
                    "scenario {name}: the guest changed partition {number} of disk `{}` (bytes {}..{}), which must stay byte-identical",
                    disk.id,
                    range.0,
                    range.0 + range.1
                );
            }
            println!(
                "qemu: partition {number} of disk `{}` is byte-identical to before the run (the clusters the guest wrote, compared)",
                disk.id
            );
        }
    }
    if !options.keep {
        for (_, _, file) in &disks {
            let _ = fs::remove_file(file);
        }
        let _ = fs::remove_file(&stick);
    }
    Ok(outcome)
}

/// Kills QEMU when dropped, so no error path leaves a guest running.
struct Guest(Child);

impl Drop for Guest {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

struct Watched {
    elapsed: Duration,
    menu_ready: Option<Duration>,
    menu_uptime: Option<f64>,
    /// `{sha256:NAME}` values known after this boot.
    captures: console::Captures,
}

/// A guest line `LIFEBOAT-PLUG <id>` plugs that hotplug disk in.
const PLUG_MARKER: &str = "LIFEBOAT-PLUG ";

/// What the harness does while a boot runs: echo the console (`--console`), plug disks in
/// when the guest asks, through the monitor.
struct Plugs<'a> {
    echo: bool,
    monitor: Option<&'a Path>,
    /// (disk id, monitor command).
    plugs: &'a [(String, String)],
}

impl Plugs<'_> {
    fn plug(&self, id: &str) -> Result<()> {
        use std::io::Read;
        let (_, command) = self.plugs.iter().find(|(d, _)| d == id).with_context(|| {
            format!("the guest asked to plug in `{id}`, which is no hotplug disk")
        })?;
        let sock = self.monitor.context("no QEMU monitor")?;
        let mut conn = std::os::unix::net::UnixStream::connect(sock)
            .with_context(|| format!("connecting to QEMU's monitor {}", sock.display()))?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        writeln!(conn, "{command}")?;
        // The monitor echoes the command and prints the next prompt (or an error) after it.
        let mut said = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            said.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&said);
            if text.matches("(qemu)").count() >= 2 {
                break;
            }
        }
        let text = String::from_utf8_lossy(&said);
        if let Some(err) = text
            .lines()
            .find(|l| l.contains("Error") || l.contains("error"))
        {
            bail!("QEMU's monitor refused `{command}`: {}", err.trim());
        }
        Ok(())
    }
}

/// One boot, judged by its console: written to `log_path`, matched against the boot's
/// `expect` with the `{sha256:NAME}` values earlier boots took (`captures`).
fn boot_and_watch(
    name: &str,
    scenario: &Scenario,
    boot: &Boot,
    args: &[String],
    dir: &Path,
    (log_path, captures): (&Path, &console::Captures),
    plugs: Plugs<'_>,
) -> Result<Watched> {
    let echo = plugs.echo;
    // One line per boot of the scenario.
    let append = |file: &str| {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(file))
            .with_context(|| format!("opening {}", dir.join(file).display()))
    };
    writeln!(append("qemu.cmdline")?, "{} {}", argv::QEMU, args.join(" "))?;
    let stderr = append("qemu.stderr")?;
    let start = Instant::now();
    let mut guest = Guest(
        Command::new(argv::QEMU)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", argv::QEMU))?,
    );
    let stdout = guest.0.stdout.take().context("QEMU's stdout")?;
    let mut log = File::create(log_path)?;
    let (tx, rx) = mpsc::channel::<(Duration, String)>();
    let reader = std::thread::spawn(move || -> std::io::Result<()> {
        let mut stdout = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if stdout.read_until(b'\n', &mut buf)? == 0 {
                return Ok(());
            }
            log.write_all(&buf)?;
            let line = String::from_utf8_lossy(&buf).into_owned();
            if tx.send((start.elapsed(), line)).is_err() {
                return Ok(());
            }
        }
    });

    let mut forbid = scenario.forbid.clone();
    forbid.extend(boot.forbid.iter().cloned());
    if boot.refused {
        forbid.extend(scenario::STARTED.iter().map(|s| s.to_string()));
    }
    let mut watcher = Watcher::with_captures(&boot.expect, &forbid, captures.clone());
    let deadline = start + Duration::from_secs(boot.timeout_secs);
    let fail = |why: String, watcher: &Watcher| -> anyhow::Error {
        anyhow::anyhow!(
            "scenario {name}: {why}\n  last lines of the console:\n{}\n  whole console log: {}",
            watcher.tail(),
            log_path.display()
        )
    };
    let menu_only = boot.ends_when_expected();
    loop {
        if let Err(err) = interrupt::check() {
            return Err(err.context(format!("scenario {name} stopped")));
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok((at, line)) => {
                if echo {
                    print!("  | {line}");
                }
                if let Some(id) = line.trim().strip_prefix(PLUG_MARKER) {
                    plugs
                        .plug(id.trim())
                        .map_err(|e| fail(format!("{e:#}"), &watcher))?;
                    println!(
                        "qemu: [{:>6.1} s] plugged in `{}`",
                        at.as_secs_f64(),
                        id.trim()
                    );
                }
                let before = watcher.reached.len();
                if let Err(why) = watcher.feed(&line, at) {
                    return Err(fail(why, &watcher));
                }
                for (text, at) in &watcher.reached[before..] {
                    println!("qemu: [{:>6.1} s] saw `{text}`", at.as_secs_f64());
                }
                if menu_only && watcher.all_expected() {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if Instant::now() > deadline {
                    let waiting = watcher
                        .waiting_for()
                        .unwrap_or_else(|| "the guest to power off".to_owned());
                    return Err(fail(
                        format!(
                            "timed out after {} s waiting for {waiting}",
                            boot.timeout_secs
                        ),
                        &watcher,
                    ));
                }
            }
            // QEMU closed its stdout: it has exited.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let elapsed = start.elapsed();
    // The menu runs until it is told otherwise: its scenario ends by stopping QEMU.
    drop(guest);
    let _ = reader.join();

    if let Some(status) = watcher.run_exit {
        if status != 0 {
            return Err(fail(
                format!("the guest's run script failed (LIFEBOAT-RUN-EXIT {status})"),
                &watcher,
            ));
        }
    } else if !menu_only {
        return Err(fail(
            "QEMU stopped before a run script finished (no LIFEBOAT-RUN-EXIT line)".into(),
            &watcher,
        ));
    }
    if let Some(waiting) = watcher.waiting_for() {
        return Err(fail(
            format!("the guest stopped without printing {waiting}"),
            &watcher,
        ));
    }
    Ok(Watched {
        elapsed,
        menu_ready: watcher.menu_ready,
        menu_uptime: watcher.menu_uptime,
        captures: watcher.captures,
    })
}
