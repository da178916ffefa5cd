//! Command-line arguments of `cargo xtask`. A tiny hand parser: no logic here, the
//! modules named after the subcommands do the work.

use anyhow::{bail, Context, Result};

pub const USAGE: &str = "\
cargo xtask <command>

Commands:
  deps                      install the Debian packages tests and benches need (root)
  test                      deps, then every test phase (cargo test --workspace) (root)
  demo [--keep]             provision the Atlantis layout onto sparse loop devices of the
                            real sizes and show what sgdisk and blkid see (root);
                            --keep leaves the loop devices attached for a look around
  bench provision [--rounds N] [--baseline-only]
                            time `lifeboat plan` and `lifeboat provision` against the same
                            work done with sgdisk and mkfs (default 5 rounds) (root)
  bench restore-usb [--rounds N] [--mib N]
                            `lifeboat restore --from usb` of N MiB of mixed data (default
                            2048) against a bare btrfs send | receive (default 3 rounds) (root)
  bench restore-restic [--rounds N] [--mib N]
                            `lifeboat restore --from restic` of N MiB (default 2048) from a
                            local repository against a bare `restic restore --verify` (root)
  bench image [--rounds N] [--no-cold]
                            image size, cold build (fresh download cache), warm rebuild,
                            reproducibility, and boot-to-menu seconds under QEMU (median of
                            N boots, default 3)
  image [--output PATH] [--refresh]
                            build target/images/lifeboat-rescue.img from images/rescue.toml
                            (no root needed); --refresh fetches new package lists
  qemu [SCENARIO]... [--image PATH] [--console] [--keep]
                            boot the rescue image in QEMU (q35, OVMF, TCG) with the disks of
                            each scenario in tests/qemu/ (all when none is named) and check
                            the guest's console; builds the image first unless --image;
                            --console echoes the guest's console; --keep keeps the run's
                            disks in target/qemu/runs/ (root on the first run: the factory
                            disk0 is made on a loop device)
  help                      this text
";

#[derive(Debug, PartialEq, Eq)]
pub enum Xtask {
    Help,
    Deps,
    Test,
    Demo(Demo),
    BenchProvision(BenchProvision),
    BenchImage(BenchImage),
    BenchRestoreUsb(BenchRestore),
    BenchRestoreRestic(BenchRestore),
    Image(crate::image::Options),
    Qemu(crate::qemu::Options),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Demo {
    pub keep: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub struct BenchProvision {
    pub rounds: u32,
    pub baseline_only: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub struct BenchRestore {
    pub rounds: u32,
    pub mib: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct BenchImage {
    pub rounds: u32,
    pub no_cold: bool,
}

impl Xtask {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Xtask> {
        let mut args = args.into_iter();
        let Some(command) = args.next() else {
            return Ok(Xtask::Help);
        };
        let rest: Vec<String> = args.collect();
        let task = match command.as_str() {
            "help" | "-h" | "--help" => Xtask::Help,
            "deps" => {
                no_more(&command, &rest)?;
                Xtask::Deps
            }
            "test" => {
                no_more(&command, &rest)?;
                Xtask::Test
            }
            "demo" => {
                let mut demo = Demo { keep: false };
                for arg in &rest {
                    match arg.as_str() {
                        "--keep" => demo.keep = true,
                        _ => bail!("unknown argument `{arg}` for `demo`; see `cargo xtask help`"),
                    }
                }
                Xtask::Demo(demo)
            }
            "image" => Xtask::Image(parse_image(&rest)?),
            "qemu" => Xtask::Qemu(parse_qemu(&rest)?),
            "bench" => match rest.split_first() {
                Some((what, rest)) if what == "provision" => {
                    Xtask::BenchProvision(parse_bench_provision(rest)?)
                }
                Some((what, rest)) if what == "image" => {
                    Xtask::BenchImage(parse_bench_image(rest)?)
                }
                Some((what, rest)) if what == "restore-usb" => {
                    Xtask::BenchRestoreUsb(parse_bench_restore_usb(rest)?)
                }
                Some((what, rest)) if what == "restore-restic" => {
                    Xtask::BenchRestoreRestic(parse_bench_restore_usb(rest)?)
                }
                Some((what, _)) => {
                    bail!("unknown bench `{what}`; there are `bench provision`, `bench restore-usb`, `bench restore-restic` and `bench image`")
                }
                None => bail!(
                    "`bench` needs what to measure: `cargo xtask bench provision`, `bench restore-usb` or `bench image`"
                ),
            },
            _ => bail!("unknown command `{command}`; see `cargo xtask help`"),
        };
        Ok(task)
    }
}

fn parse_bench_provision(args: &[String]) -> Result<BenchProvision> {
    let mut bench = BenchProvision {
        rounds: 5,
        baseline_only: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let rounds = match arg.as_str() {
            "--baseline-only" => {
                bench.baseline_only = true;
                continue;
            }
            "--rounds" => args.next().context("`--rounds` needs a number")?.as_str(),
            _ => match arg.strip_prefix("--rounds=") {
                Some(value) => value,
                None => {
                    bail!("unknown argument `{arg}` for `bench provision`; see `cargo xtask help`")
                }
            },
        };
        bench.rounds = match rounds.parse() {
            Ok(n) if n > 0 => n,
            _ => bail!("`--rounds` needs a whole number of at least 1, got `{rounds}`"),
        };
    }
    Ok(bench)
}

fn parse_bench_restore_usb(args: &[String]) -> Result<BenchRestore> {
    let mut bench = BenchRestore {
        rounds: 3,
        mib: 2048,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = |name: &str, args: &mut std::slice::Iter<String>| -> Result<u64> {
            let v = args
                .next()
                .with_context(|| format!("`{name}` needs a number"))?;
            match v.parse() {
                Ok(n) if n > 0 => Ok(n),
                _ => bail!("`{name}` needs a whole number of at least 1, got `{v}`"),
            }
        };
        match arg.as_str() {
            "--rounds" => bench.rounds = value("--rounds", &mut args)? as u32,
            "--mib" => bench.mib = value("--mib", &mut args)?,
            _ => bail!("unknown argument `{arg}` for `bench restore-usb`; see `cargo xtask help`"),
        }
    }
    Ok(bench)
}

fn parse_bench_image(args: &[String]) -> Result<BenchImage> {
    let mut bench = BenchImage {
        rounds: 3,
        no_cold: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-cold" => bench.no_cold = true,
            "--rounds" => {
                let n = args.next().context("`--rounds` needs a number")?;
                bench.rounds = match n.parse() {
                    Ok(n) if n > 0 => n,
                    _ => bail!("`--rounds` needs a whole number of at least 1, got `{n}`"),
                };
            }
            _ => bail!("unknown argument `{arg}` for `bench image`; see `cargo xtask help`"),
        }
    }
    Ok(bench)
}

fn parse_image(args: &[String]) -> Result<crate::image::Options> {
    let mut options = crate::image::Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--refresh" => options.refresh = true,
            "--output" => {
                let path = args.next().context("`--output` needs a path")?;
                options.output = Some(path.into());
            }
            _ => bail!("unknown argument `{arg}` for `image`; see `cargo xtask help`"),
        }
    }
    Ok(options)
}

fn parse_qemu(args: &[String]) -> Result<crate::qemu::Options> {
    let mut options = crate::qemu::Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--console" => options.console = true,
            "--keep" => options.keep = true,
            "--image" => {
                let path = args.next().context("`--image` needs a path")?;
                options.image = Some(path.into());
            }
            _ if arg.starts_with('-') => {
                bail!("unknown argument `{arg}` for `qemu`; see `cargo xtask help`")
            }
            _ => options.scenarios.push(arg.clone()),
        }
    }
    Ok(options)
}

fn no_more(command: &str, rest: &[String]) -> Result<()> {
    match rest.first() {
        Some(arg) => bail!("`{command}` takes no arguments, got `{arg}`"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Xtask> {
        Xtask::parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse("").unwrap(), Xtask::Help);
        assert_eq!(parse("deps").unwrap(), Xtask::Deps);
        assert_eq!(parse("test").unwrap(), Xtask::Test);
        assert_eq!(
            parse("demo --keep").unwrap(),
            Xtask::Demo(Demo { keep: true })
        );
        assert_eq!(
            parse("bench provision").unwrap(),
            Xtask::BenchProvision(BenchProvision {
                rounds: 5,
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
            "image --output",
            "image --fast",
            "qemu --image",
            "bench image --rounds 0",
            "bench image --warm",
            "qemu boot --fast",
        ] {
            assert!(parse(line).is_err(), "{line} parsed");
        }
    }
}
