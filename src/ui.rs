//! What the person at the console sees: step progress and confirmation prompts. Works on a
//! serial console too (ASCII bar characters, the plain dialoguer theme).

use std::io::IsTerminal;

use dialoguer::theme::SimpleTheme;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
