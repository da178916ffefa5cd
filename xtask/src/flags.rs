//! Command-line arguments of `cargo xtask`, on clap derive: the doc comments are the help
//! (`cargo xtask help`, `cargo xtask bench --help`). No logic here: the modules named after
//! the subcommands do the work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The project's own automation: Debian packages, tests, the demo, the rescue image, QEMU
/// scenarios, benches, the man pages and shell completions.
#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    override_usage = "cargo xtask <COMMAND> [ARGS]",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub task: Option<Task>,
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
pub enum Task {
    /// Install the Debian packages tests and benches need (root)
    Deps,
    /// deps, then every test phase (cargo test --workspace) (root)
    Test,
    /// Provision the Atlantis layout onto sparse loop devices of the real sizes and show
    /// what sgdisk and blkid see (root)
    Demo(Demo),
    /// Measure lifeboat against the same work done with plain tools
    Bench {
        #[command(subcommand)]
        bench: Bench,
    },
    /// Build target/images/lifeboat-rescue.img from images/rescue.toml (no root needed)
    Image(ImageArgs),
    /// Boot the rescue image in QEMU (q35, OVMF, TCG) with the disks of each scenario in
    /// tests/qemu/ (all when none is named) and check the guest's console; builds the image
    /// first unless --image (root on the first run: the factory disk0 is made on a loop
    /// device)
    Qemu(QemuArgs),
    /// Write lifeboat's man pages and shell completions (bash, zsh, fish), generated from
    /// its command-line definitions, into target/docgen/
    Docgen(Docgen),
    /// This text, or a command's (`cargo xtask help bench`)
    Help {
        /// The command (and subcommand) to describe
        command: Vec<String>,
    },
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
pub enum Bench {
    /// Time `lifeboat plan` and `lifeboat provision` against the same work done with sgdisk
    /// and mkfs (root)
    Provision(BenchProvision),
    /// `lifeboat restore --from usb` of N MiB of mixed data against a bare btrfs send |
    /// receive, and both against the devices' raw rates (root)
    RestoreUsb(BenchRestoreUsb),
    /// `lifeboat restore --from restic` of N MiB from a local repository against a bare
    /// `restic restore --verify` (root)
    RestoreRestic(BenchRestore),
    /// Restore time against data size and file count, and `inventory` / `restore
    /// --dry-run` time against the number of restore points, with the cost per unit (root)
    Scale(BenchScale),
    /// Image size, cold build (fresh download cache), warm rebuild, reproducibility, and
    /// boot-to-menu seconds under QEMU (median of N boots)
    Image(BenchImage),
}

#[derive(Debug, PartialEq, Eq, Args)]
pub struct Demo {
    /// Leave the loop devices attached for a look around (and print how to clean up)
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, PartialEq, Eq, Args)]
pub struct BenchProvision {
    /// Rounds to time
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Time only the plain tools
    #[arg(long)]
    pub baseline_only: bool,
}

#[derive(Debug, PartialEq, Eq, Args)]
pub struct BenchRestore {
    /// Rounds to time
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// MiB of data to restore
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..))]
    pub mib: u64,
}

#[derive(Debug, PartialEq, Eq, Args)]
pub struct BenchRestoreUsb {
    /// Rounds to time
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// MiB of data to restore
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..))]
    pub mib: u64,
    /// The backup as a raw stream file on LINBKUP (raw-snapshots/), not a received
    /// subvolume; counts the bytes read from the backup device
    #[arg(long)]
    pub streams: bool,
    /// Only this data set (both by default, one after the other)
    #[arg(long, value_enum)]
    pub set: Option<crate::bench::DataSet>,
    /// Two subvolumes (@home and Atlantis-meta, half the data each): lifeboat receiving
    /// them side by side (--receives 2) against one at a time (--receives 1)
    #[arg(long, conflicts_with = "streams")]
    pub side_by_side: bool,
}

#[derive(Debug, PartialEq, Eq, Args)]
pub struct BenchScale {
    /// Rounds to time per row
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Smaller data rows for a trial (64 MiB to 1 GiB, 1 k to 100 k files; the points
    /// rows stay 10, 100 and 1,000)
    #[arg(long)]
    pub quick: bool,
}

#[derive(Debug, PartialEq, Eq, Args)]
pub struct BenchImage {
    /// Boots to time (and builds to compare)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Skip the cold build (from an empty package cache, downloads included)
    #[arg(long)]
    pub no_cold: bool,
}

#[derive(Debug, PartialEq, Eq, Args)]
pub struct ImageArgs {
    /// Where to write the image (default target/images/lifeboat-rescue.img)
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Fetch new package lists even when cached ones exist
    #[arg(long)]
    pub refresh: bool,
}

#[derive(Debug, PartialEq, Eq, Args)]
pub struct QemuArgs {
    /// Scenario names (tests/qemu/NAME.toml); all when none is named
    pub scenarios: Vec<String>,
    /// Use this image instead of building target/images/lifeboat-rescue.img
    #[arg(long, value_name = "PATH")]
    pub image: Option<PathBuf>,
    /// Echo the guest's console while it runs
    #[arg(long)]
    pub console: bool,
    /// Keep the run's disks in target/qemu/runs/ even when the scenario passes
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, PartialEq, Eq, Args)]
pub struct Docgen {
    /// Write here instead of target/docgen/
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// What to do, the arguments parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Xtask {
    /// The help text to print.
    Help(String),
    Deps,
    Test,
    Demo(Demo),
    BenchProvision(BenchProvision),
    BenchImage(BenchImage),
    BenchRestoreUsb(BenchRestoreUsb),
    BenchRestoreRestic(BenchRestore),
    BenchScale(BenchScale),
    Image(crate::image::Options),
    Qemu(crate::qemu::Options),
    Docgen(Docgen),
}

impl Xtask {
    /// The arguments after `cargo xtask`. A mistake is clap's error, which names the
    /// command it belongs to and prints the usage (`Error::exit`).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Xtask, clap::Error> {
        use clap::CommandFactory;
        let cli = Cli::try_parse_from(std::iter::once("xtask".to_owned()).chain(args))?;
        Ok(match cli.task {
            None => Xtask::Help(Cli::command().render_long_help().to_string()),
            Some(Task::Help { command }) => {
                let mut cmd = Cli::command();
                for name in &command {
                    cmd = match cmd.find_subcommand(name) {
                        Some(sub) => sub.clone(),
                        None => {
                            return Err(cmd.error(
                                clap::error::ErrorKind::InvalidSubcommand,
                                format!("no command `{name}`; see `cargo xtask help`"),
                            ))
                        }
                    };
                }
                // Subcommands print their full name in their usage line.
                let mut cmd = cmd.bin_name(format!("cargo xtask {}", command.join(" ")));
                Xtask::Help(cmd.render_long_help().to_string())
            }
            Some(Task::Deps) => Xtask::Deps,
            Some(Task::Test) => Xtask::Test,
            Some(Task::Demo(d)) => Xtask::Demo(d),
            Some(Task::Bench { bench }) => match bench {
                Bench::Provision(b) => Xtask::BenchProvision(b),
                Bench::RestoreUsb(b) => Xtask::BenchRestoreUsb(b),
                Bench::RestoreRestic(b) => Xtask::BenchRestoreRestic(b),
                Bench::Image(b) => Xtask::BenchImage(b),
                Bench::Scale(b) => Xtask::BenchScale(b),
            },
            Some(Task::Image(i)) => Xtask::Image(crate::image::Options {
                output: i.output,
                refresh: i.refresh,
                cache: None,
            }),
            Some(Task::Qemu(q)) => Xtask::Qemu(crate::qemu::Options {
                scenarios: q.scenarios,
                image: q.image,
                console: q.console,
                keep: q.keep,
            }),
            Some(Task::Docgen(d)) => Xtask::Docgen(d),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Xtask, clap::Error> {
        Xtask::parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn the_definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn commands_parse() {
        assert!(matches!(parse("").unwrap(), Xtask::Help(h) if h.contains("bench")));
        assert!(
            matches!(parse("help").unwrap(), Xtask::Help(h) if h.contains("restore-restic") || h.contains("bench"))
        );
        assert!(
            matches!(parse("help bench").unwrap(), Xtask::Help(h) if h.contains("restore-restic"))
        );
        assert!(
            matches!(parse("help bench restore-restic").unwrap(), Xtask::Help(h) if h.contains("--mib"))
        );
        assert_eq!(parse("deps").unwrap(), Xtask::Deps);
        assert_eq!(parse("test").unwrap(), Xtask::Test);
        assert_eq!(
            parse("demo --keep").unwrap(),
            Xtask::Demo(Demo { keep: true })
        );
        assert_eq!(
            parse("bench provision").unwrap(),
            Xtask::BenchProvision(BenchProvision {
                rounds: 3,
                baseline_only: false
            })
        );
        assert_eq!(
            parse("bench provision --rounds 2 --baseline-only").unwrap(),
            Xtask::BenchProvision(BenchProvision {
                rounds: 2,
                baseline_only: true
            })
        );
        assert_eq!(
            parse("image --output /tmp/x.img --refresh").unwrap(),
            Xtask::Image(crate::image::Options {
                output: Some("/tmp/x.img".into()),
                refresh: true,
                cache: None,
            })
        );
        assert_eq!(
            parse("qemu boot provision --console --image x.img").unwrap(),
            Xtask::Qemu(crate::qemu::Options {
                scenarios: vec!["boot".into(), "provision".into()],
                image: Some("x.img".into()),
                console: true,
                keep: false,
            })
        );
        assert_eq!(
            parse("bench image --rounds 2 --no-cold").unwrap(),
            Xtask::BenchImage(BenchImage {
                rounds: 2,
                no_cold: true
            })
        );
        assert_eq!(
            parse("qemu --keep").unwrap(),
            Xtask::Qemu(crate::qemu::Options {
                keep: true,
                ..Default::default()
            })
        );
        assert_eq!(
            parse("bench provision --rounds=3").unwrap(),
            Xtask::BenchProvision(BenchProvision {
                rounds: 3,
                baseline_only: false
            })
        );
        // `--rounds=N` for every bench, not one.
        assert_eq!(
            parse("bench restore-usb --rounds=2 --mib=64").unwrap(),
            Xtask::BenchRestoreUsb(BenchRestoreUsb {
                rounds: 2,
                mib: 64,
                streams: false,
                set: None,
                side_by_side: false,
            })
        );
        assert_eq!(
            parse("bench restore-restic --rounds=4").unwrap(),
            Xtask::BenchRestoreRestic(BenchRestore {
                rounds: 4,
                mib: 2048
            })
        );
        assert_eq!(
            parse("bench scale --quick --rounds=1").unwrap(),
            Xtask::BenchScale(BenchScale {
                rounds: 1,
                quick: true
            })
        );
        assert_eq!(
            parse("bench restore-usb --set compressible").unwrap(),
            Xtask::BenchRestoreUsb(BenchRestoreUsb {
                rounds: 3,
                mib: 2048,
                streams: false,
                set: Some(crate::bench::DataSet::Compressible),
                side_by_side: false,
            })
        );
        assert_eq!(
            parse("bench image --rounds=1").unwrap(),
            Xtask::BenchImage(BenchImage {
                rounds: 1,
                no_cold: false
            })
        );
        assert_eq!(
            parse("docgen --out /tmp/d").unwrap(),
            Xtask::Docgen(Docgen {
                out: Some("/tmp/d".into())
            })
        );
    }

    #[test]
    fn mistakes_are_refused() {
        for line in [
            "frobnicate",
            "deps --force",
            "demo --kep",
            "bench",
            "bench plan",
            "bench provision --rounds",
            "bench provision --rounds 0",
            "bench provision --rounds x",
            "bench restore-usb --mib 0",
            "image --output",
            "image --fast",
            "qemu --image",
            "bench image --rounds 0",
            "bench image --warm",
            "bench restore-usb --set zip",
            "bench scale --rounds 0",
            "qemu boot --fast",
            "help frobnicate",
        ] {
            assert!(parse(line).is_err(), "{line} parsed");
        }
    }

    /// A mistake in one bench is named as that bench's (the hand parser said `restore-usb`
    /// for both restore benches).
    #[test]
    fn errors_name_their_command() {
        let err = parse("bench restore-restic --fast")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cargo xtask bench restore-restic"), "{err}");
        assert!(!err.contains("restore-usb"), "{err}");
    }
}
