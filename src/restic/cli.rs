//! restic's command line, in one place: every run of `restic` is built by [`Restic::command`]
//! (the profile's environment, secrets kept out of logs and errors, killed with lifeboat),
//! and each subcommand lifeboat uses is a typed call here. The JSON it prints is read into
//! the serde types of [`super::snapshots`].

use std::ffi::OsStr;
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::snapshots::{self, Node, Snapshot};
use super::{Failure, Restic, ResticError};
use crate::exec::{Cmd, ExecError, Pipe};

/// Why one try of a run failed: restic said so (maybe worth another try), or it could not
/// be run at all.
enum Try {
    Said(String),
    Fatal(ResticError),
}

fn not_run(e: ExecError) -> Try {
    match e {
        ExecError::NotFound { .. } => Try::Fatal(ResticError::NotInstalled),
        ExecError::Failed { stderr, .. } => Try::Said(stderr),
        e => Try::Fatal(ResticError::Output(e.to_string())),
    }
}

impl Restic {
    /// `restic ARGS…`: the one place a restic command line is made.
    fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Cmd {
        let mut cmd = Cmd::new("restic");
        // restic 0.14 knows only the flag; later ones read the variable too.
        if let Some(ca) = self.profile.vars.get("RESTIC_CACERT") {
            cmd = cmd.arg("--cacert").arg(ca);
        }
        let mut cmd = cmd.args(args).die_with_parent();
        for (k, v) in &self.profile.vars {
            cmd = cmd.env(k, v);
        }
        for s in self.profile.secrets() {
            cmd = cmd.secret(s.clone());
        }
        cmd
    }

    /// The error for what restic said when it failed.
    fn failed(&self, stderr: &str) -> ResticError {
        let failure = Failure::of(stderr);
        // Errors from a streamed run come as the last lines joined by " / ".
        let lines = || stderr.lines().flat_map(|l| l.split(" / ")).map(str::trim);
        let said = lines()
            .find(|l| l.starts_with("Fatal:"))
            .or_else(|| lines().find(|l| !l.is_empty()))
            .unwrap_or("nothing on stderr");
        ResticError::Failed {
            failure,
            explained: failure.explain(self.profile.repository()),
            said: self.profile.redact(said),
        }
    }

    /// `once` again after each wait of the backoff while restic cannot reach the
    /// repository; any other failure at once.
    fn retried<T>(&self, mut once: impl FnMut() -> Result<T, Try>) -> Result<T, ResticError> {
        let mut waits = self.backoff.iter();
        loop {
            match once() {
                Ok(v) => return Ok(v),
                Err(Try::Fatal(e)) => return Err(e),
                Err(Try::Said(stderr)) => {
                    let wait = waits.next().filter(|_| Failure::of(&stderr).transient());
                    let Some(wait) = wait else {
                        return Err(self.failed(&stderr));
                    };
                    eprintln!(
                        "restic could not reach {}; trying again in {}",
                        self.profile.repository(),
                        wait_text(*wait)
                    );
                    std::thread::sleep(*wait);
                }
            }
        }
    }

    /// `restic ARGS…` run to its end; stdout.
    fn read(&self, args: &[&str]) -> Result<String, ResticError> {
        // restic 0.17+ retries a certificate it cannot verify for 15 minutes: stopped at
        // its first complaint, the failure is told at once.
        let hopeless = |line: &str| Failure::of(line) == Failure::Certificate;
        self.retried(|| {
            let mut running = self
                .command(args)
                .spawn_watched(Pipe::Stdout, hopeless)
                .map_err(not_run)?;
            let mut stdout = String::new();
            if let Some(mut out) = running.child.stdout.take() {
                let _ = std::io::Read::read_to_string(&mut out, &mut stdout);
            }
            running.finish().map_err(not_run)?;
            Ok(stdout)
        })
    }

    /// `restic ARGS… --json` read into `T`.
    pub fn run_json<T: DeserializeOwned>(&self, args: &[&str]) -> Result<T, ResticError> {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let text = self.read(&with_json)?;
        serde_json::from_str(&text)
            .map_err(|e| ResticError::Output(format!("`restic {}` printed {e}", args.join(" "))))
    }

    /// `restic ARGS…`, each line of stdout given to `each` as it comes (a listing of a
    /// whole root is too big to hold as text). A try that fails starts from `init` again.
    fn fold_lines<T: Clone>(
        &self,
        args: &[&str],
        init: T,
        each: &mut dyn FnMut(&mut T, &str),
    ) -> Result<T, ResticError> {
        self.retried(|| {
            let mut acc = init.clone();
            let mut running = self.command(args).spawn(Pipe::Stdout).map_err(not_run)?;
            if let Some(out) = running.child.stdout.take() {
                let mut out = std::io::BufReader::new(out);
                let mut line = Vec::new();
                while out.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                    each(&mut acc, &String::from_utf8_lossy(&line));
                    line.clear();
                }
            }
            running.finish().map_err(not_run)?;
            Ok(acc)
        })
    }

    /// Every snapshot of every host, newest first.
    ///
    /// Without a lock: a list is read once and checked again by the restore that uses it
    /// (which locks), and the lock file restic would write and delete costs 0.2 of the
    /// 0.7 s the listing takes here (restic 0.18, a local repository), on S3 two more
    /// round trips; a read-only key can list too.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>, ResticError> {
        let raw: Vec<snapshots::Raw> = self.run_json(&["snapshots", "--no-lock"])?;
        snapshots::from_raw(raw)
            .map_err(|e| ResticError::Output(format!("restic's snapshot list: {e}")))
    }

    /// The files and directories of a snapshot that `keep` wants (`restic ls --json`).
    pub fn ls(&self, id: &str, keep: &dyn Fn(&Node) -> bool) -> Result<Vec<Node>, ResticError> {
        self.fold_lines(&["ls", "--json", id], Vec::new(), &mut |kept, line| {
            kept.extend(snapshots::node(line).filter(|n| keep(n)));
        })
    }

    /// How many bytes of files restoring `path` of a snapshot writes, without the paths in
    /// `exclude` (`restic ls --json --recursive ID PATH`, summed: `restic stats` counts a
    /// whole snapshot, 0.14 to 0.18).
    pub fn restore_size(
        &self,
        id: &str,
        path: &str,
        exclude: &[String],
    ) -> Result<u64, ResticError> {
        self.fold_lines(
            &["ls", "--json", "--recursive", id, path],
            0u64,
            &mut |total, line| {
                if let Some(n) = snapshots::node(line) {
                    *total += snapshots::restored_bytes(&n, path, exclude);
                }
            },
        )
    }

    /// One small file of a snapshot, as text (`restic dump`).
    pub fn dump_text(&self, id: &str, path: &str) -> Result<String, ResticError> {
        self.read(&["dump", id, path])
    }

    /// `restic dump ID PATH` to stream a file's bytes (start it with `spawn`); it dies with
    /// lifeboat.
    pub fn dump(&self, id: &str, path: &str) -> Cmd {
        self.command(&["dump", id, path])
    }

    /// Whether this restic's `restore` takes `--sparse` (0.14 does not: it writes the holes
    /// of sparse files as zeros).
    pub fn restores_sparse(&self) -> bool {
        self.read(&["restore", "--help"])
            .is_ok_and(|help| help.contains("--sparse"))
    }

    /// `restic restore ID --target TARGET --verify [--sparse]` of `path` only: with `--exclude` for the
    /// nested paths of other subvolumes when `path` is `/`, else `--include PATH` (restic
    /// before 0.16 takes one or the other, not both; nested paths are removed afterwards).
    /// `tick` is called about twice a second while it runs. Not retried: the caller knows
    /// whether starting over is safe.
    pub fn restore(
        &self,
        id: &str,
        path: &str,
        exclude: &[String],
        target: &Path,
        sparse: bool,
        tick: &mut dyn FnMut(),
    ) -> Result<(), ResticError> {
        let mut args: Vec<String> = vec![
            "restore".into(),
            id.into(),
            "--target".into(),
            target.display().to_string(),
            "--verify".into(),
        ];
        if sparse {
            args.push("--sparse".into());
        }
        if let Some(repo) = self.profile.vars.get("RESTIC_REPOSITORY") {
            args.extend(restore_options(repo));
        }
        if path == "/" {
            for x in exclude {
                args.extend(["--exclude".into(), x.clone()]);
            }
        } else {
            args.extend(["--include".into(), path.into()]);
        }
        let mut running =
            self.command(&args)
                .spawn(Pipe::Neither)
                .map_err(|e| match not_run(e) {
                    Try::Fatal(e) => e,
                    Try::Said(s) => self.failed(&s),
                })?;
        // Checked often so that the end is seen at once; the bar is fed twice a second.
        let mut last = Instant::now();
        while running.child.try_wait().ok().flatten().is_none() {
            if last.elapsed() >= Duration::from_millis(500) {
                tick();
                last = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tick();
        match running.finish() {
            Ok(_) => Ok(()),
            Err(ExecError::Failed { stderr, .. }) => Err(self.failed(&stderr)),
            Err(e) => Err(ResticError::Output(e.to_string())),
        }
    }
}

/// Backend options of `restic restore` for the repository `repo` (pure). A local
/// repository (a path, or `local:`) gets four concurrent operations instead of restic's
/// two: the restore then keeps both cores busy (about 7 % faster here, 603 MiB with
/// `--verify`, 3.2 s against 3.0 s, medians of 6); S3 and the others keep restic's
/// defaults (s3: 5).
fn restore_options(repo: &str) -> Vec<String> {
    let scheme = repo.split_once(':').map(|(s, _)| s);
    let local = match scheme {
        None => true,
        Some("local") => true,
        // A path with a colon in it, not a backend.
        Some(s) => s.contains('/'),
    };
    if local {
        vec!["-o".into(), "local.connections=4".into()]
    } else {
        Vec::new()
    }
}

/// A wait as a person reads it: whole seconds, or tenths below ten seconds when the wait
/// has a fraction (a backoff of 0.2 s must not read "0 s").
fn wait_text(wait: Duration) -> String {
    let secs = wait.as_secs_f64();
    if secs < 10.0 && wait.subsec_millis() != 0 {
        format!("{secs:.1} s")
    } else {
        format!("{} s", wait.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::{restore_options, wait_text};
    use std::time::Duration;

    #[test]
    fn a_local_repository_restores_with_four_connections_others_with_their_defaults() {
        let four = vec!["-o".to_owned(), "local.connections=4".to_owned()];
        assert_eq!(restore_options("/mnt/usb/restic"), four);
        assert_eq!(restore_options("local:/srv/restic"), four);
        assert_eq!(restore_options("/srv/odd:name/restic"), four);
        assert!(restore_options("s3:https://127.0.0.1:8333/bucket").is_empty());
        assert!(restore_options("sftp:user@host:/srv/restic").is_empty());
        assert!(restore_options("rest:https://host/").is_empty());
    }

    #[test]
    fn waits_read_as_a_person_counts_them() {
        assert_eq!(wait_text(Duration::from_millis(200)), "0.2 s");
        assert_eq!(wait_text(Duration::from_millis(2500)), "2.5 s");
        assert_eq!(wait_text(Duration::from_secs(5)), "5 s");
        assert_eq!(wait_text(Duration::from_secs(120)), "120 s");
    }
}
