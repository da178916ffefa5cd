//! What the person at the console sees: step progress and confirmation prompts. Works on a
//! serial console too (ASCII bar characters, the plain dialoguer theme).

use std::io::IsTerminal;

use dialoguer::theme::SimpleTheme;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::apply::Progress;

/// Numbered step lines on stderr, with a bar underneath when stderr is a terminal.
pub struct Steps {
    bar: Option<ProgressBar>,
}

impl Steps {
    pub fn new(total: usize) -> Steps {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "[{elapsed_precise}] [{bar:30}] {pos}/{len} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Steps { bar }
    }

    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Steps {
    fn start(&mut self, number: usize, total: usize, disk: &str, what: &str) {
        self.say(&format!("[{number}/{total}] {disk}: {what}"));
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{disk}: {what}"));
        }
    }

    fn done(&mut self, _number: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }
}

/// Whether someone can answer prompts.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Ask the user to type `expected` (a disk's serial); true only on an exact match.
pub fn confirm_by_typing(prompt: &str, expected: &str) -> std::io::Result<bool> {
    let typed: String = dialoguer::Input::with_theme(&SimpleTheme)
        .with_prompt(prompt)
        .allow_empty(true)
        .interact_text()
        .map_err(std::io::Error::other)?;
    Ok(typed.trim() == expected)
}

/// The dead disk's replacement: list the disks that could take spec disk `id`'s place and
/// read the serial of the one to use, at the terminal or as one line of stdin (a script:
/// `echo SERIAL | lifeboat restore …`). `None` when nothing was typed: without a terminal
/// and with nothing on stdin (a timer, stdin closed) nothing is printed either, and the
/// caller's error, which lists the same disks, is the one sentence said.
pub fn pick_replacement(
    spec: &crate::spec::Spec,
    id: &str,
    devices: &[crate::probe::Device],
) -> anyhow::Result<Option<String>> {
    let list = || {
        let rules = spec
            .disk(id)
            .map(crate::plan::bind::describe_rules)
            .unwrap_or_default();
        eprintln!(
            "No disk matches {id} ({rules}). Disks that could replace it (blank, big enough):"
        );
        for d in devices {
            let how = if d.serial.is_some() {
                String::new()
            } else {
                format!(": no serial, name it with --disk {id}={}", d.path.display())
            };
            eprintln!("  {}{how}", crate::plan::bind::describe_device(d));
        }
    };
    let typed = if interactive() {
        list();
        dialoguer::Input::<String>::with_theme(&SimpleTheme)
            .with_prompt(format!(
                "Type the serial of the disk to use as {id} (nothing: stop)"
            ))
            .allow_empty(true)
            .interact_text()?
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if !line.trim().is_empty() {
            list();
            eprintln!(
                "The serial of the disk to use as {id}, read from stdin: {}",
                line.trim()
            );
        }
        line
    };
    let typed = typed.trim();
    Ok((!typed.is_empty()).then(|| typed.to_owned()))
}

/// A yes/no question; no is the default.
pub fn confirm(prompt: &str) -> std::io::Result<bool> {
    dialoguer::Confirm::with_theme(&SimpleTheme)
        .with_prompt(prompt)
        .default(false)
        .interact()
        .map_err(std::io::Error::other)
}

/// Ask for a secret twice (for a new LUKS container).
pub fn new_passphrase(prompt: &str) -> std::io::Result<String> {
    dialoguer::Password::with_theme(&SimpleTheme)
        .with_prompt(prompt)
        .with_confirmation("Repeat it", "The two entries differ")
        .interact()
        .map_err(std::io::Error::other)
}

/// Progress of a long copy in bytes: a bar with rate and ETA when the total is known (a
/// spinner with bytes and rate when not) on a terminal; elsewhere (a log, a pipe) a plain
/// line every ten seconds.
pub struct Bytes {
    bar: Option<ProgressBar>,
    label: String,
    started: std::time::Instant,
    last_line: std::time::Instant,
}

/// Where the lines and byte bars of work done side by side go: on a terminal, one
/// [`MultiProgress`] draws every bar, and a line is printed above them rather than through
/// them; elsewhere, lines as they come.
#[derive(Clone, Default)]
pub struct Shared {
    multi: Option<MultiProgress>,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            multi: std::io::stderr()
                .is_terminal()
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// A line on stdout, above the bars.
    pub fn line(&self, text: &str) {
        match &self.multi {
            Some(multi) => multi.suspend(|| println!("{text}")),
            None => println!("{text}"),
        }
    }

    /// A byte bar drawn with the others.
    pub fn bytes(&self, label: &str, total: Option<u64>) -> Bytes {
        let mut bytes = Bytes::new(label, total);
        if let (Some(multi), Some(bar)) = (&self.multi, bytes.bar.take()) {
            bytes.bar = Some(multi.add(bar));
        }
        bytes
    }
}

impl Bytes {
    pub fn new(label: &str, total: Option<u64>) -> Bytes {
        let bar = std::io::stderr().is_terminal().then(|| {
            let (bar, template) = match total {
                Some(t) => (
                    ProgressBar::with_draw_target(Some(t.max(1)), ProgressDrawTarget::stderr()),
                    "{msg} [{bar:30}] {bytes}/~{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                ),
                None => (
                    ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
                    "{msg} {spinner} {bytes} {binary_bytes_per_sec} {elapsed}",
                ),
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ")
                    .tick_chars("-\\|/ "),
            );
            bar.set_message(label.to_owned());
            bar
        });
        let now = std::time::Instant::now();
        Bytes {
            bar,
            label: label.to_owned(),
            started: now,
            last_line: now,
        }
    }

    pub fn set(&mut self, bytes: u64) {
        match &self.bar {
            Some(bar) => {
                // An estimate that was too low must not stop the bar at 100 %.
                if bar.length().is_some_and(|len| bytes > len) {
                    bar.set_length(bytes);
                }
                bar.set_position(bytes);
            }
            None if self.last_line.elapsed().as_secs() >= 10 => {
                self.last_line = std::time::Instant::now();
                let secs = self.started.elapsed().as_secs_f64();
                eprintln!(
                    "  {}: {} ({}/s)",
                    self.label,
                    crate::spec::human(bytes),
                    crate::spec::human((bytes as f64 / secs.max(0.001)) as u64)
                );
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Whether printed changes are carried out: asked at the terminal, already confirmed
/// (`--yes`), or not at all (`--dry-run`).
///
/// One enum rather than two bools: `yes` and `dry_run` side by side were passed in a
/// different order by different functions, and a swap compiles and writes when it should
/// only have printed. Two bools also have a fourth case, both set, that every function had
/// to order its checks for; here it is decided once, in the conversion from the command
/// line (`From<&cli::Confirm>`, next to [`crate::cli::Confirm`]): a dry run wins, as it
/// always has. Call sites read as what they mean: `mirror::run(from, to, Confirmation::Yes)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Confirmation {
    /// Print the changes, then ask at the terminal; without a terminal nothing is written.
    #[default]
    Ask,
    /// Print the changes and carry them out without asking (`--yes`, or a caller whose
    /// target is its own, such as a drill's image).
    Yes,
    /// Print the changes and stop: nothing is written (`--dry-run`).
    DryRun,
}

impl Confirmation {
    /// Stop after printing the plan.
    pub fn dry_run(self) -> bool {
        self == Confirmation::DryRun
    }
}

/// After printed changes: `--yes`, or a yes typed at the terminal; without a terminal and
/// without `--yes`, nothing is written. A dry run is refused here too, so that a caller
/// that forgot to stop after its plan still writes nothing.
pub fn confirm_changes(go: Confirmation, question: &str) -> anyhow::Result<()> {
    match go {
        Confirmation::Yes => return Ok(()),
        Confirmation::DryRun => anyhow::bail!("dry run: nothing written"),
        Confirmation::Ask => {}
    }
    if !interactive() {
        anyhow::bail!("not confirmed: pass --yes to apply these changes without a terminal");
    }
    if !confirm(question)? {
        anyhow::bail!("not confirmed; nothing written");
    }
    Ok(())
}

/// `--yes`, or the serial of every disk that will be written typed at the prompt. A dry
/// run is refused, as in [`confirm_changes`].
pub fn confirm_plan(plan: &crate::plan::Plan, go: Confirmation) -> anyhow::Result<()> {
    use crate::runlog;
    match go {
        Confirmation::Yes => {
            runlog::line("confirmed with --yes");
            return Ok(());
        }
        Confirmation::DryRun => anyhow::bail!("dry run: nothing written"),
        Confirmation::Ask => {}
    }
    if !interactive() {
        anyhow::bail!("refusing to write without confirmation: run it on a terminal to confirm by typing each disk's serial, or pass --yes");
    }
    for d in plan.disks.iter().filter(|d| !d.actions.is_empty()) {
        let expected = d
            .serial
            .clone()
            .unwrap_or_else(|| d.device.display().to_string());
        let what = if d.serial.is_some() {
            "serial"
        } else {
            "device path"
        };
        let prompt = format!(
            "To write {} ({}), type its {what} {expected}",
            d.id,
            d.device.display()
        );
        if !confirm_by_typing(&prompt, &expected)? {
            anyhow::bail!("not confirmed for {}: nothing was written", d.id);
        }
        runlog::line(&format!("confirmed {} by typing {what}", d.id));
    }
    Ok(())
}

/// LUKS passphrases asked for at the console (never echoed), or read from stdin one line
/// each when stdin is not a terminal (a script, a test): a new one twice, like typed.
pub struct Prompted;

impl crate::apply::KeySource for Prompted {
    fn new_passphrase(&mut self, partition: &crate::plan::PartRef) -> Result<String, String> {
        let prompt = format!(
            "New passphrase for the LUKS container in partition {} \"{}\"",
            partition.number, partition.name
        );
        if interactive() {
            return new_passphrase(&prompt).map_err(|e| e.to_string());
        }
        let first = stdin_line()?;
        let again = stdin_line()?;
        if first != again {
            return Err("the two passphrases read from stdin differ".into());
        }
        Ok(first)
    }

    fn passphrase(&mut self, partition: &crate::plan::PartRef) -> Result<String, String> {
        let prompt = format!(
            "Passphrase of the LUKS container in partition {} \"{}\"",
            partition.number, partition.name
        );
        if interactive() {
            return passphrase(&prompt).map_err(|e| e.to_string());
        }
        stdin_line()
    }
}

/// Ask for a secret once (to open a container).
pub fn passphrase(prompt: &str) -> std::io::Result<String> {
    dialoguer::Password::with_theme(&SimpleTheme)
        .with_prompt(prompt)
        .interact()
        .map_err(std::io::Error::other)
}

/// One line of stdin without its line end; an empty line or none is no passphrase.
fn stdin_line() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("reading a passphrase from stdin: {e}"))?;
    let line = line.trim_end_matches(['\n', '\r']).to_owned();
    if line.is_empty() {
        return Err("no terminal to ask for a passphrase and no passphrase on stdin".into());
    }
    Ok(line)
}

/// An error and its causes as one sentence, most general first, each cause said once:
/// many errors already quote their cause (`cannot read spec /tmp: Is a directory`), and
/// `{:#}` would repeat it.
pub fn error_sentence(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::Confirmation;
    use crate::cli::Confirm;

    #[test]
    fn the_flags_become_one_confirmation_and_a_dry_run_wins() {
        let go = |yes, dry_run| Confirmation::from(&Confirm { yes, dry_run });
        assert_eq!(go(false, false), Confirmation::Ask);
        assert_eq!(go(true, false), Confirmation::Yes);
        assert_eq!(go(false, true), Confirmation::DryRun);
        assert_eq!(go(true, true), Confirmation::DryRun);
        assert!(go(true, true).dry_run());
        assert!(!go(true, false).dry_run() && !go(false, false).dry_run());
    }

    #[test]
    fn a_dry_run_is_never_confirmed() {
        // Reached only by a caller that forgot to stop after its plan: it must not write.
        let err = super::confirm_changes(Confirmation::DryRun, "Write?").unwrap_err();
        assert_eq!(err.to_string(), "dry run: nothing written");
        let plan = crate::plan::Plan {
            spec: "t.toml".into(),
            disks: Vec::new(),
        };
        assert!(super::confirm_plan(&plan, Confirmation::DryRun).is_err());
        assert!(super::confirm_changes(Confirmation::Yes, "Write?").is_ok());
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = std::fs::read_to_string("/").unwrap_err();
        let said = io.to_string();
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read spec /: {source}")]
        struct Quoting {
            source: std::io::Error,
        }
        let err = Err::<(), _>(Quoting { source: io })
            .context("checking the spec")
            .unwrap_err();
        assert_eq!(
            super::error_sentence(&err),
            format!("checking the spec: cannot read spec /: {said}")
        );
        // Causes that do not quote each other are all kept, in order.
        let err = Err::<(), _>(anyhow::anyhow!("mkfs.ext4 failed"))
            .context("step 3 failed")
            .context("provisioning stopped")
            .unwrap_err();
        assert_eq!(
            super::error_sentence(&err),
            "provisioning stopped: step 3 failed: mkfs.ext4 failed"
        );
    }
}
