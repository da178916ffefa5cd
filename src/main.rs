use clap::Parser;

use lifeboat::cli::{Cli, Command};
use lifeboat::commands;

/// Exit status of a program ended by SIGPIPE (128 + 13), as the shell reports it.
const BROKEN_PIPE_STATUS: i32 = 141;

fn main() {
    quiet_on_broken_pipe();
    if let Err(payload) = std::panic::catch_unwind(run) {
        if is_broken_pipe(payload.as_ref()) {
            lifeboat::runlog::line("output closed by its reader (broken pipe): stopped");
            std::process::exit(BROKEN_PIPE_STATUS);
        }
        std::panic::resume_unwind(payload);
    }
}

fn run() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Plan(args) => commands::plan(args),
        Command::Provision(args) => commands::provision(args),
        Command::Disks(args) => commands::disks(args),
        Command::Check(args) => commands::check(&args.spec),
        Command::Menu(args) => commands::menu(args),
        Command::EspSync(args) => commands::esp_sync(args),
        Command::EspSyncHook(args) => commands::esp_sync_hook(args),
        Command::Fstab(args) => commands::fstab(args),
        Command::BootEntries(args) => commands::boot_entries(args),
        Command::Inventory(args) => commands::inventory(args),
        Command::Restore(args) => commands::restore(args),
        Command::BackupBoot(args) => commands::backup_boot(args),
        Command::Stage(args) => commands::stage(args),
        Command::Drill(args) => commands::drill(args),
        Command::Health(args) => commands::health(args),
        Command::Timers(args) => commands::timers(args),
        Command::Alert(args) => commands::alert(args),
        Command::Unlock(args) => commands::unlock(args),
    };
    if let Err(err) = result {
        // One sentence: the context chain joined, most general first.
        let said = lifeboat::ui::error_sentence(&err);
        eprintln!("lifeboat: {said}");
        lifeboat::runlog::line(&format!("error: {said}"));
        if let Some(log) = lifeboat::runlog::path() {
            eprintln!("lifeboat: log: {}", log.display());
        }
        std::process::exit(1);
    }
}

/// `lifeboat plan SPEC | head -1`: once the reader is gone, `println!` panics on EPIPE (Rust
/// ignores SIGPIPE, so the write fails instead of ending the process). That is the reader's
/// choice, not a crash: no panic message is printed, the panic unwinds so the guards still
/// unmount and unlock, and [`main`] exits with SIGPIPE's status, which a script with
/// `pipefail` sees as output cut short. Any other panic is reported as before.
fn quiet_on_broken_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_broken_pipe(info.payload()) {
            report(info);
        }
    }));
}

/// The panic of `println!`/`eprintln!` on a closed pipe ("failed printing to stdout: Broken
/// pipe (os error 32)"); the errno is matched, as the words before it come from the libc.
fn is_broken_pipe(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    message.starts_with("failed printing to std")
        && message.ends_with(&format!("(os error {})", libc::EPIPE))
}
