use clap::Parser;

use lifeboat::cli::{Cli, Command};
use lifeboat::commands;

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Plan(args) => commands::plan(args),
        Command::Provision(args) => commands::provision(args),
        Command::Disks(args) => commands::disks(args),
        Command::Check(args) => commands::check(&args.spec),
        Command::Menu(args) => commands::menu(args),
        Command::EspSync(args) => commands::esp_sync(args),
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
