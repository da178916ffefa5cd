//! `lifeboat inventory --from restic` against a real S3 server (SeaweedFS on 127.0.0.1) and
//! the restic of this machine: the snapshots restic itself lists, the provider profile under
//! the environment, refusals of profiles others can read, and one distinct message each for
//! a wrong password, refused credentials, a missing bucket, a missing repository and an
//! unreachable endpoint — with the secrets nowhere in what is printed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::s3::{private_file, ACCESS_KEY, S3, SECRET_KEY};

const PASSWORD: &str = "correct horse battery";

struct Setup {
    s3: S3,
    dir: tempfile::TempDir,
    spec: PathBuf,
    env_file: PathBuf,
    password_file: PathBuf,
}

/// restic with these variables and nothing else of the test's environment.
fn restic(vars: &[(&str, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new("restic");
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.env(
        "RESTIC_CACHE_DIR",
        std::env::temp_dir().join("lifeboat-test-restic-cache"),
    );
    let out = cmd.output().expect("run restic");
    assert!(
        out.status.success(),
        "restic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// lifeboat with only these restic variables in its environment (and short retries).
fn lifeboat_cmd(vars: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env(
            "LIFEBOAT_LOG_DIR",
            std::env::temp_dir().join("lifeboat-test-logs"),
        )
        .env(
            "RESTIC_CACHE_DIR",
            std::env::temp_dir().join("lifeboat-test-restic-cache"),
        )
        .env("LIFEBOAT_RESTIC_BACKOFF", "0.1,0.1")
        .stdin(Stdio::null());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

fn lifeboat(vars: &[(&str, &str)], args: &[&str]) -> Output {
    lifeboat_cmd(vars, args).output().expect("run lifeboat")
}

fn setup() -> Setup {
    let s3 = S3::start("atlantis,second-provider");
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("restic.env");
    let password_file = dir.path().join("restic.pw");
    private_file(
        &env_file,
        &format!(
            "# SeaweedFS on this machine\nRESTIC_REPOSITORY={}\nAWS_ACCESS_KEY_ID={ACCESS_KEY}\n\
             AWS_SECRET_ACCESS_KEY={SECRET_KEY}\n",
            s3.repository("atlantis", "restic-repo")
        ),
    );
    private_file(&password_file, &format!("{PASSWORD}\n"));
    let spec = dir.path().join("atlantis.toml");
    let text = std::fs::read_to_string(common::spec_path())
        .unwrap()
        .replace("/etc/lifeboat/restic.env", env_file.to_str().unwrap())
        .replace("/etc/lifeboat/restic.pw", password_file.to_str().unwrap());
    std::fs::write(&spec, text).unwrap();
    Setup {
        s3,
        dir,
        spec,
        env_file,
        password_file,
    }
}

impl Setup {
    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "RESTIC_REPOSITORY",
                self.s3.repository("atlantis", "restic-repo"),
            ),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            (
                "RESTIC_PASSWORD_FILE",
                self.password_file.display().to_string(),
            ),
        ]
    }

    /// `restic init` (SeaweedFS may need a moment for the bucket), then two backups.
    fn backups(&self) -> Vec<String> {
        let mut tries = 0;
        loop {
            let mut cmd = Command::new("restic");
            cmd.arg("init")
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap());
            for (k, v) in self.vars() {
                cmd.env(k, v);
            }
            let out = cmd.output().unwrap();
            if out.status.success() {
                break;
            }
            tries += 1;
            assert!(
                tries < 60,
                "restic init: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.s3.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let data = self.dir.path().join("data");
        common::write(&data.join("home/alice/notes.txt"), b"monday");
        common::write(&data.join("Backups/desktop.vbk"), &[7u8; 4096]);
        let d = data.display().to_string();
        restic(
            &self.vars(),
            &[
                "backup",
                "-q",
                "--host",
                "atlantis",
                "--tag",
                "LINUX",
                &format!("{d}/home"),
            ],
        );
        restic(
            &self.vars(),
            &[
                "backup",
                "-q",
                "--host",
                "WIN-DESKTOP",
                &format!("{d}/Backups"),
            ],
        );
        let out = restic(&self.vars(), &["snapshots", "--json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn inventory_from_restic_on_s3_and_each_failure_named() {
    let s = setup();
    let ids = s.backups();
    let spec = s.spec.to_str().unwrap();

    // The spec's profile alone: the snapshots restic lists, by host.
    let out = lifeboat(&[], &["inventory", spec, "--from", "restic", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut got: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let mut want = ids.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let out = lifeboat(&[], &["inventory", spec, "--from", "restic"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("atlantis (this machine) — 1 snapshot"),
        "{text}"
    );
    assert!(text.contains("WIN-DESKTOP — 1 snapshot"), "{text}");
    assert!(text.contains("[LINUX]"), "{text}");

    // The environment wins over the profile: another path in the bucket has no repository.
    let elsewhere = s.s3.repository("atlantis", "elsewhere");
    let out = lifeboat(
        &[("RESTIC_REPOSITORY", &elsewhere)],
        &["inventory", spec, "--from", "restic"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("there is no restic repository at {elsewhere}")),
        "{}",
        stderr(&out)
    );

    // A wrong password.
    let wrong_pw = s.dir.path().join("wrong.pw");
    private_file(&wrong_pw, "not the password\n");
    let out = lifeboat(
        &[("RESTIC_PASSWORD_FILE", wrong_pw.to_str().unwrap())],
        &["inventory", spec, "--from", "restic"],
    );
    assert!(
        stderr(&out).contains("the restic password does not open"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("not the password"),
        "{}",
        stderr(&out)
    );

    // Refused credentials; the secret is not printed.
    let out = lifeboat(
        &[("AWS_SECRET_ACCESS_KEY", "wrong-secret-4567")],
        &["inventory", spec, "--from", "restic"],
    );
    let err = stderr(&out);
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(
        !err.contains("wrong-secret-4567") && !err.contains(SECRET_KEY),
        "{err}"
    );

    // A bucket that does not exist.
    let out = lifeboat(
        &[(
            "RESTIC_REPOSITORY",
            &s.s3.repository("nobucket", "restic-repo"),
        )],
        &["inventory", spec, "--from", "restic"],
    );
    assert!(
        stderr(&out).contains("does not exist at that provider"),
        "{}",
        stderr(&out)
    );

    // Nobody listening: tried again, then a sentence saying so.
    let out = lifeboat(
        &[(
            "RESTIC_REPOSITORY",
            "s3:http://127.0.0.1:1/atlantis/restic-repo",
        )],
        &["inventory", spec, "--from", "restic"],
    );
    let err = stderr(&out);
    assert!(err.contains("trying again"), "{err}");
    assert!(err.contains("cannot be reached"), "{err}");

    // A profile others can read is refused before restic runs.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&s.env_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = lifeboat(&[], &["inventory", spec, "--from", "restic"]);
    assert!(
        stderr(&out).contains("can be read by group or others (mode 644)")
            && stderr(&out).contains("chmod 600"),
        "{}",
        stderr(&out)
    );
    assert!(Path::new(&s.env_file).exists());

    // Another provider is another profile, and nothing else: a second bucket with its own
    // repository, named by a second env file; the spec changes only in env_file.
    let other = s.dir.path().join("second.env");
    let repo2 = s.s3.repository("second-provider", "restic-repo");
    private_file(
        &other,
        &format!(
            "RESTIC_REPOSITORY={repo2}\nAWS_ACCESS_KEY_ID={ACCESS_KEY}\nAWS_SECRET_ACCESS_KEY={SECRET_KEY}\n"
        ),
    );
    let mut vars2 = s.vars();
    vars2[0].1 = repo2.clone();
    let mut tries = 0;
    while !Command::new("restic")
        .arg("init")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .envs(vars2.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap()
        .status
        .success()
    {
        tries += 1;
        assert!(tries < 60, "restic init on the second bucket");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let data = s.dir.path().join("data");
    restic(
        &vars2,
        &[
            "backup",
            "-q",
            "--host",
            "atlantis",
            "--tag",
            "LINUX",
            data.join("home").to_str().unwrap(),
        ],
    );
    let spec2 = s.dir.path().join("atlantis-second.toml");
    let text = std::fs::read_to_string(&s.spec).unwrap();
    let text2 = text.replace(s.env_file.to_str().unwrap(), other.to_str().unwrap());
    let changed: Vec<(&str, &str)> = text
        .lines()
        .zip(text2.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].0.starts_with("env_file"), "{changed:?}");
    std::fs::write(&spec2, text2).unwrap();
    let out = lifeboat(
        &[],
        &["inventory", spec2.to_str().unwrap(), "--from", "restic"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains(&format!("restic repository {repo2}")),
        "{text}"
    );
    assert!(
        text.contains("atlantis (this machine) — 1 snapshot"),
        "{text}"
    );
    assert!(!text.contains("WIN-DESKTOP"), "{text}");
}

/// disk0 (factory) and a blank 2 TB disk1 on loop devices.
struct Disks {
    _dir: tempfile::TempDir,
    disk1_img: PathBuf,
    disk0: common::Loop,
    disk1: common::Loop,
}

fn disks() -> Disks {
    let dir = tempfile::tempdir().unwrap();
    let i0 = common::Image::sparse(dir.path(), "disk0.img", 512_000_000_000);
    let i1 = common::Image::sparse(dir.path(), "disk1.img", 2_000_000_000_000);
    let disk0 = common::factory_windows(&i0.path);
    let disk1 = common::Loop::attach(&i1.path);
    Disks {
        _dir: dir,
        disk1_img: i1.path.clone(),
        disk0,
        disk1,
    }
}

/// A machine's trees as restic backs them up: a root with /home inside it (another
/// subvolume), and Atlantis-meta with a /boot copy.
fn fill(src: &Path, day: &str) {
    let root = src.join("root");
    common::write(
        &root.join("etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
    );
    common::write(
        &root.join("etc/fstab"),
        b"UUID=00000000-dead-beef-0000-000000000000 / btrfs subvol=@rootTW 0 0\n",
    );
    fill_home(&root.join("home/alice"), day);
    common::write(&src.join("meta/boot/boot/vmlinuz-6.1"), &[9u8; 100_000]);
}

/// alice's home: small files, a large one, a hard link, a symlink, owned by UID 1000.
fn fill_home(home: &Path, day: &str) {
    for i in 0..120u32 {
        common::write(
            &home.join(format!("notes/{:02}/n{i}.txt", i % 7)),
            format!("{day} {i}\n")
                .repeat(1 + i as usize % 50)
                .as_bytes(),
        );
    }
    common::write(&home.join("big.bin"), &vec![b'x'; 3 << 20]);
    let _ = std::fs::remove_file(home.join("big-link.bin"));
    std::fs::hard_link(home.join("big.bin"), home.join("big-link.bin")).unwrap();
    let _ = std::fs::remove_file(home.join("first"));
    std::os::unix::fs::symlink("notes/00/n0.txt", home.join("first")).unwrap();
    common::run(&["chown", "-R", "1000:1000", home.to_str().unwrap()]);
}

fn pool_mount(d: &Disks) -> common::Mount {
    common::Mount::new(Path::new(&format!("{}p4", d.disk1.dev.display())), "btrfs")
}

/// The pids of the `restic` processes whose parent is `parent` (from /proc).
fn restic_children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let ppid = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
        if head.ends_with("(restic") && ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

/// Running (a zombie that init has yet to reap is not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, r)| !r.starts_with('Z'))
    })
}

#[test]
fn restore_from_restic_onto_a_blank_disk_then_an_older_snapshot_and_a_rerun_after_a_kill() {
    let s = setup();
    let src = s.dir.path().join("src");
    fill(&src, "monday");
    // The spec maps what this test backs up (paths as restic recorded them).
    let root = src.join("root").display().to_string();
    let spec_text = std::fs::read_to_string(&s.spec)
        .unwrap()
        .replace("\"/\" = \"@rootTW\"", &format!("\"{root}\" = \"@rootTW\""))
        .replace(
            "\"/home\" = \"@home\"",
            &format!("\"{root}/home\" = \"@home\""),
        )
        .replace(
            "\"/mnt/Atlantis-meta\" = \"Atlantis-meta\"",
            &format!("\"{}\" = \"Atlantis-meta\"", src.join("meta").display()),
        );
    std::fs::write(&s.spec, spec_text).unwrap();
    let spec = s.spec.to_str().unwrap();
    s.backups(); // init (+ two unrelated snapshots)
    let backup = || {
        restic(
            &s.vars(),
            &[
                "backup",
                "-q",
                "--host",
                "atlantis",
                "--tag",
                "LINUX",
                &root,
                src.join("meta").to_str().unwrap(),
            ],
        )
    };
    backup();
    let monday = common::manifest(&src.join("root/home"));
    std::thread::sleep(std::time::Duration::from_secs(2));
    fill(&src, "tuesday");
    std::fs::remove_file(src.join("root/home/alice/notes/01/n1.txt")).unwrap();
    backup();
    let tuesday = common::manifest(&src.join("root/home"));
    assert_ne!(monday, tuesday);

    let d = disks();
    let (d0, d1) = (
        format!("disk0={}", d.disk0.dev.display()),
        format!("disk1={}", d.disk1.dev.display()),
    );
    let restore = |extra: &[&str]| {
        let mut args = vec![
            "restore", spec, "--from", "restic", "--disk", &d0, "--disk", &d1,
        ];
        args.extend_from_slice(extra);
        lifeboat(&[], &args)
    };

    // Killed while @home is being restored: the partial subvolume is all that is left.
    let mut child = lifeboat_cmd(
        &[],
        &[
            "restore", spec, "--from", "restic", "--latest", "--disk", &d0, "--disk", &d1, "--yes",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let watch = tempfile::tempdir().unwrap();
    let node = format!("{}p4", d.disk1.dev.display());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut killed = false;
    while std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        let mounted = Command::new("mount")
            .args(["-o", "ro", "-t", "btrfs", &node])
            .arg(watch.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if mounted {
            let busy = watch.path().join("@home.lifeboat-partial").exists();
            common::run(&["umount", watch.path().to_str().unwrap()]);
            // restic stopped, so that it cannot finish on its own: only its parent's death
            // can end it (SIGKILL reaches a stopped process).
            let restics = restic_children(child.id());
            if busy && !restics.is_empty() {
                for pid in &restics {
                    common::run(&["kill", "-STOP", &pid.to_string()]);
                }
                child.kill().unwrap();
                killed = true;
                let gone = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while restics.iter().any(|p| alive(*p)) && std::time::Instant::now() < gone {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                let left: Vec<u32> = restics.iter().copied().filter(|p| alive(*p)).collect();
                for pid in &left {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
                assert!(
                    left.is_empty(),
                    "restic {left:?} outlived the killed lifeboat"
                );
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.wait();
    assert!(killed, "the restore was not caught restoring @home");
    std::thread::sleep(std::time::Duration::from_secs(1));

    // Run again: it finishes.
    let out = restore(&["--latest", "--yes"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("removing the incomplete @home.lifeboat-partial"),
        "{text}"
    );
    assert!(text.contains("verified"), "{text}");
    assert!(text.contains("UID 1000 is alice"), "{text}");
    assert!(text.contains("rewritten from the spec"), "{text}");
    {
        let pool = pool_mount(&d);
        let p = pool.path();
        let d = common::diff(&tuesday, &common::manifest(&p.join("@home")));
        assert!(
            d.is_empty(),
            "@home differs from the newest snapshot: {d:#?}"
        );
        // @rootTW holds the root without /home's contents (they are @home's), the mount
        // point stays.
        assert!(p.join("@rootTW/etc/passwd").is_file());
        assert_eq!(
            std::fs::read_dir(p.join("@rootTW/home")).unwrap().count(),
            0
        );
        assert!(p.join("@rootTW/etc/fstab.before-restore").is_file());
        assert!(p.join("Atlantis-meta/boot/boot/vmlinuz-6.1").is_file());
        let list = common::run(&["btrfs", "subvolume", "list", p.to_str().unwrap()]);
        assert!(!list.contains("lifeboat-partial"), "{list}");
    }
    {
        let boot = common::Mount::new(Path::new(&format!("{}p2", d.disk1.dev.display())), "ext4");
        assert_eq!(
            std::fs::read(boot.path().join("vmlinuz-6.1")).unwrap(),
            vec![9u8; 100_000]
        );
    }

    // Nothing left to do on a third run.
    let out = restore(&["--latest", "--yes"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(text.matches("already restored from").count(), 3, "{text}");

    // Monday's @home by its snapshot id: Tuesday's is kept under another name.
    let list: serde_json::Value = serde_json::from_slice(
        &restic(&s.vars(), &["snapshots", "--json", "--host", "atlantis"]).stdout,
    )
    .unwrap();
    let mut ours: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["paths"].as_array().unwrap().len() == 2)
        .map(|x| (x["time"].as_str().unwrap(), x["id"].as_str().unwrap()))
        .collect();
    ours.sort();
    let monday_id = &ours[0].1[..10];
    let out = restore(&["--snapshot", monday_id, "--subvol", "@home", "--yes"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains("rename the existing @home to @home.before-restore-"),
        "{text}"
    );
    let pool = pool_mount(&d);
    let d = common::diff(&monday, &common::manifest(&pool.path().join("@home")));
    assert!(d.is_empty(), "@home differs from Monday's snapshot: {d:#?}");
}

/// A snapshot that holds /home and Atlantis-meta beside a big directory no subvolume
/// takes, and no snapshot of /: the restore leaves @rootTW out and says so (as from the
/// backup drive), and counts only what it restores against a pool too small for the whole
/// snapshot. A path mapped onto the big directory is refused for room, before any write.
#[test]
fn restore_from_restic_skips_a_path_no_snapshot_holds_and_counts_only_restored_paths() {
    let s = setup();
    let src = s.dir.path().join("src");
    fill(&src, "monday");
    let root = src.join("root").display().to_string();
    let big = src.join("big");
    std::fs::create_dir_all(&big).unwrap();
    // 400 MiB of zeros (sparse, and one chunk in restic): more than the pool below holds.
    std::fs::File::create(big.join("disk.img"))
        .unwrap()
        .set_len(400 << 20)
        .unwrap();
    let spec_text = std::fs::read_to_string(&s.spec)
        .unwrap()
        .replace("\"/\" = \"@rootTW\"", &format!("\"{root}\" = \"@rootTW\""))
        .replace(
            "\"/home\" = \"@home\"",
            &format!("\"{root}/home\" = \"@home\""),
        )
        .replace(
            "\"/mnt/Atlantis-meta\" = \"Atlantis-meta\"",
            &format!("\"{}\" = \"Atlantis-meta\"", src.join("meta").display()),
        )
        // A pool of about 300 MiB on the 2 TB disk: the swap takes the rest.
        .replace("size = \"64GiB\"", "size = \"1905500MiB\"")
        .replace("min_size = \"1900GB\"", "min_size = \"2000GB\"");
    std::fs::write(&s.spec, &spec_text).unwrap();
    let spec = s.spec.to_str().unwrap();
    s.backups(); // init (+ two unrelated snapshots)
    restic(
        &s.vars(),
        &[
            "backup",
            "-q",
            "--host",
            "atlantis",
            "--tag",
            "LINUX",
            &format!("{root}/home"),
            src.join("meta").to_str().unwrap(),
            big.to_str().unwrap(),
        ],
    );
    let home = common::manifest(&src.join("root/home"));

    let d = disks();
    let (d0, d1) = (
        format!("disk0={}", d.disk0.dev.display()),
        format!("disk1={}", d.disk1.dev.display()),
    );
    let out = lifeboat(
        &[],
        &[
            "restore", spec, "--from", "restic", "--latest", "--disk", &d0, "--disk", &d1, "--yes",
        ],
    );
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "@rootTW: no snapshot holds {root}; it stays as provisioning makes it (empty)"
        )),
        "{text}"
    );
    // @home and Atlantis-meta, two restic restores at once, said in the plan first.
    let planned = text
        .find("up to 2 subvolumes at a time: --receives 1 for one at a time")
        .expect(&text);
    let restoring = text.find("restoring 2 subvolumes at a time").expect(&text);
    assert!(planned < restoring, "{text}");
    {
        let pool = pool_mount(&d);
        let p = pool.path();
        let diff = common::diff(&home, &common::manifest(&p.join("@home")));
        assert!(
            diff.is_empty(),
            "@home differs from the snapshot: {diff:#?}"
        );
        assert!(p.join("Atlantis-meta/boot/boot/vmlinuz-6.1").is_file());
        // @rootTW as provisioning made it: there, and empty.
        let list = common::run(&["btrfs", "subvolume", "list", p.to_str().unwrap()]);
        assert!(list.contains("path @rootTW\n"), "{list}");
        assert_eq!(std::fs::read_dir(p.join("@rootTW")).unwrap().count(), 0);
    }

    // The big directory mapped onto a subvolume: it does not fit, and nothing is written.
    let before = common::run(&["sha256sum", &format!("{}p4", d.disk1.dev.display())]);
    let spec_big = s.dir.path().join("atlantis-big.toml");
    std::fs::write(
        &spec_big,
        spec_text.replace(
            "[restic.paths]\n",
            &format!("[restic.paths]\n\"{}\" = \"@rootF41\"\n", big.display()),
        ),
    )
    .unwrap();
    let out = lifeboat(
        &[],
        &[
            "restore",
            spec_big.to_str().unwrap(),
            "--from",
            "restic",
            "--latest",
            "--subvol",
            "@rootF41",
            "--disk",
            &d0,
            "--disk",
            &d1,
            "--yes",
        ],
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("hold about 400 MiB") && err.contains("not enough room"),
        "{err}"
    );
    let after = common::run(&["sha256sum", &format!("{}p4", d.disk1.dev.display())]);
    assert_eq!(before, after, "the pool was written");
}

#[test]
fn restore_raw_send_streams_kept_in_restic() {
    let s = setup();
    s.backups(); // init
                 // A machine's @home with two points, sent as files the way btrbk's raw target keeps
                 // them: a full stream (zstd) and an incremental one.
    let img = common::Image::sparse(s.dir.path(), "pool.img", 1 << 30);
    common::run(&["mkfs.btrfs", "-q", img.path.to_str().unwrap()]);
    let lo = common::Loop::attach(&img.path);
    let pool = common::Mount::new(&lo.dev, "btrfs");
    let p = pool.path();
    common::run(&[
        "btrfs",
        "subvolume",
        "create",
        p.join("@home").to_str().unwrap(),
    ]);
    fill_home(&p.join("@home/alice"), "monday");
    let snap = |name: &str| {
        let to = p.join(name);
        common::run(&[
            "btrfs",
            "subvolume",
            "snapshot",
            "-r",
            p.join("@home").to_str().unwrap(),
            to.to_str().unwrap(),
        ]);
        to
    };
    let s1 = snap("@home.20261119T0300");
    common::write(&p.join("@home/alice/tuesday.txt"), b"tuesday");
    common::run(&[
        "chown",
        "1000:1000",
        p.join("@home/alice/tuesday.txt").to_str().unwrap(),
    ]);
    let s2 = snap("@home.20261120T0300");
    let want = common::manifest(&s2);
    let bk = s.dir.path().join("bk/raw-snapshots/atlantis");
    std::fs::create_dir_all(&bk).unwrap();
    let full = bk.join("@home.20261119T0300.btrfs");
    common::run(&[
        "btrfs",
        "send",
        "-q",
        "-f",
        full.to_str().unwrap(),
        s1.to_str().unwrap(),
    ]);
    common::run(&["zstd", "-q", "--rm", full.to_str().unwrap()]);
    let incr = bk.join("@home.20261120T0300.btrfs");
    common::run(&[
        "btrfs",
        "send",
        "-q",
        "-p",
        s1.to_str().unwrap(),
        "-f",
        incr.to_str().unwrap(),
        s2.to_str().unwrap(),
    ]);
    drop(pool);
    drop(lo);
    restic(
        &s.vars(),
        &[
            "backup",
            "-q",
            "--host",
            "atlantis",
            "--tag",
            "LINUX",
            s.dir.path().join("bk").to_str().unwrap(),
        ],
    );

    let spec = s.spec.to_str().unwrap();
    let out = lifeboat(&[], &["inventory", spec, "--from", "restic"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("raw send streams in snapshot"), "{text}");
    assert!(
        text.contains("raw-snapshots/atlantis/@home.20261120T0300.btrfs"),
        "{text}"
    );

    let d = disks();
    let (d0, d1) = (
        format!("disk0={}", d.disk0.dev.display()),
        format!("disk1={}", d.disk1.dev.display()),
    );
    let out = lifeboat(
        &[],
        &[
            "restore",
            spec,
            "--from",
            "restic-stream",
            "--latest",
            "--subvol",
            "@home",
            "--disk",
            &d0,
            "--disk",
            &d1,
            "--yes",
        ],
    );
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("2 stream files"), "{text}");
    assert!(
        text.contains("incremental on @home.20261119T0300"),
        "{text}"
    );
    let pool = pool_mount(&d);
    let diff = common::diff(&want, &common::manifest(&pool.path().join("@home")));
    assert!(
        diff.is_empty(),
        "@home differs from the newest stream: {diff:#?}"
    );
    let list = common::run(&["btrfs", "subvolume", "list", pool.path().to_str().unwrap()]);
    assert!(
        list.contains("path @snapshots/@home.20261120T0300\n"),
        "{list}"
    );
}

#[test]
fn stage_a_windows_image_from_restic_onto_winbkup() {
    let s = setup();
    s.backups(); // WIN-DESKTOP's Backups/desktop.vbk among them
    let spec = s.spec.to_str().unwrap();
    let usb_img = common::Image::sparse(s.dir.path(), "usb.img", 4_500_000_000_000);
    let usb = common::Loop::attach(&usb_img.path);
    let u = format!("usb={}", usb.dev.display());
    let out = lifeboat(
        &[],
        &["provision", spec, "--only", "usb", "--disk", &u, "--yes"],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let out = lifeboat(
        &[],
        &[
            "stage", spec, "--host", "NOPE", "--to", "WINBKUP", "--disk", &u, "--yes",
        ],
    );
    assert!(
        stderr(&out).contains(
            "no restic snapshot of host NOPE (the repository has: WIN-DESKTOP, atlantis)"
        ),
        "{}",
        stderr(&out)
    );

    let out = lifeboat(
        &[],
        &[
            "stage",
            spec,
            "--host",
            "WIN-DESKTOP",
            "--to",
            "WINBKUP",
            "--disk",
            &u,
            "--yes",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{}", text, stderr(&out));
    assert!(
        text.contains("Staged: lifeboat-staged/WIN-DESKTOP/desktop.vbk"),
        "{text}"
    );

    // What ntfs-3g reads back.
    let winbkup = common::Mount::new(Path::new(&format!("{}p1", usb.dev.display())), "ntfs-3g");
    let staged = winbkup.path().join("lifeboat-staged/WIN-DESKTOP");
    assert_eq!(
        std::fs::read(staged.join("desktop.vbk")).unwrap(),
        vec![7u8; 4096]
    );
    let names: Vec<String> = std::fs::read_dir(&staged)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["desktop.vbk"]);
}

#[test]
fn a_hostile_stream_in_restic_is_stopped_as_it_is_received() {
    // restic-stream reads only the first command before the receive; the rest is checked
    // as it flows into `btrfs receive`.
    let s = setup();
    s.backups(); // init
    let outside = s.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let bk = s.dir.path().join("bk/raw-snapshots/atlantis");
    let file = "@home.20261121T0300.btrfs";
    common::write(
        &bk.join(file),
        &common::send_stream::SendStream::subvol("@home.20261121T0300", [0x5a; 16])
            .symlink("escape", outside.to_str().unwrap())
            .file("escape/owned", b"written through a symlink")
            .end(),
    );
    restic(
        &s.vars(),
        &[
            "backup",
            "-q",
            "--host",
            "atlantis",
            "--tag",
            "LINUX",
            s.dir.path().join("bk").to_str().unwrap(),
        ],
    );
    let spec = s.spec.to_str().unwrap();
    let d = disks();
    let (d0, d1) = (
        format!("disk0={}", d.disk0.dev.display()),
        format!("disk1={}", d.disk1.dev.display()),
    );
    let out = lifeboat(
        &[],
        &[
            "restore",
            spec,
            "--from",
            "restic-stream",
            "--latest",
            "--subvol",
            "@home",
            "--disk",
            &d0,
            "--disk",
            &d1,
            "--yes",
        ],
    );
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!out.status.success(), "{text}");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("raw-snapshots/atlantis/{file}")),
        "{text}"
    );
    assert!(
        err.contains(
            "command 3 (mkfile) goes through the symlink escape that command 2 made: escape/owned"
        ),
        "{text}"
    );
    let arrived: Vec<_> = std::fs::read_dir(&outside).unwrap().collect();
    assert!(arrived.is_empty(), "written outside: {arrived:?}");
    // What receive had begun is not complete (a re-run deletes it); @home is untouched.
    let pool = pool_mount(&d);
    let partial = pool.path().join("@snapshots/@home.20261121T0300");
    if partial.exists() {
        let show = common::run(&["btrfs", "subvolume", "show", partial.to_str().unwrap()]);
        assert!(!show.contains("readonly"), "{show}");
    }
    assert_eq!(
        std::fs::read_dir(pool.path().join("@home"))
            .unwrap()
            .count(),
        0
    );
    drop(pool);

    // A newer stream whose subvolume name is an absolute path, aimed at a subvolume of an
    // unrelated Btrfs: refused from its first command, before anything is written.
    let img = common::Image::sparse(s.dir.path(), "other.img", 1 << 30);
    let lo = common::Loop::attach(&img.path);
    common::run(&["mkfs.btrfs", "-q", lo.path()]);
    let other = common::Mount::new(&lo.dev, "btrfs");
    let victim = other.path().join("victim");
    common::run(&["btrfs", "subvolume", "create", victim.to_str().unwrap()]);
    let file2 = "@home.20261122T0300.btrfs";
    common::write(
        &bk.join(file2),
        &common::send_stream::SendStream::subvol(victim.to_str().unwrap(), [0x5b; 16]).end(),
    );
    restic(
        &s.vars(),
        &[
            "backup",
            "-q",
            "--host",
            "atlantis",
            "--tag",
            "LINUX",
            s.dir.path().join("bk").to_str().unwrap(),
        ],
    );
    let before = common::fingerprint(&d.disk1_img);
    let out = lifeboat(
        &[],
        &[
            "restore",
            spec,
            "--from",
            "restic-stream",
            "--latest",
            "--subvol",
            "@home",
            "--disk",
            &d0,
            "--disk",
            &d1,
            "--yes",
        ],
    );
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!out.status.success(), "{text}");
    let list = common::run(&["btrfs", "subvolume", "list", other.path().to_str().unwrap()]);
    assert!(list.contains("path victim\n"), "{list}\n{text}");
    assert!(
        stderr(&out).contains(&format!(
            "raw-snapshots/atlantis/{file2}: command 1 (subvol) names its subvolume \"{}\", \
             which cannot contain '/'",
            victim.display()
        )),
        "{text}"
    );
    assert!(stderr(&out).contains("nothing was written"), "{text}");
    assert_eq!(
        common::fingerprint(&d.disk1_img),
        before,
        "disk1 was written"
    );
}

/// What a real root needs beyond its bytes, through restic: SELinux labels, file
/// capabilities, POSIX ACLs and hard links come back as getfattr and getfacl saw them;
/// chattr +i/+a cannot (restic keeps no inode flags) and the restore says so by name; a
/// sparse file keeps its holes where restic has `restore --sparse`, and where it has not
/// (0.14) the restore says so.
#[test]
fn restore_from_restic_keeps_labels_capabilities_and_acls_and_names_what_it_cannot() {
    struct Unflag(PathBuf);
    impl Drop for Unflag {
        fn drop(&mut self) {
            common::attrs::clear_flags(&self.0);
        }
    }
    let s = setup();
    let src = s.dir.path().join("src");
    let root = src.join("root");
    common::write(
        &root.join("etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
    );
    common::write(
        &root.join("etc/fstab"),
        b"UUID=00000000-dead-beef-0000-000000000000 / btrfs subvol=@rootTW 0 0\n",
    );
    common::attrs::fill(&root);
    let _unflag = Unflag(root.clone());
    common::write(&src.join("meta/boot/boot/vmlinuz-6.1"), &[9u8; 10_000]);
    let rootp = root.display().to_string();
    let spec_text = std::fs::read_to_string(&s.spec)
        .unwrap()
        .replace("\"/\" = \"@rootTW\"", &format!("\"{rootp}\" = \"@rootTW\""))
        // This root has no /home of its own.
        .replace("\"/home\" = \"@home\"\n", "")
        .replace(
            "\"/mnt/Atlantis-meta\" = \"Atlantis-meta\"",
            &format!("\"{}\" = \"Atlantis-meta\"", src.join("meta").display()),
        );
    std::fs::write(&s.spec, spec_text).unwrap();
    s.backups(); // init (+ two unrelated snapshots)
    restic(
        &s.vars(),
        &[
            "backup",
            "-q",
            "--host",
            "atlantis",
            "--tag",
            "LINUX",
            &rootp,
            src.join("meta").to_str().unwrap(),
        ],
    );
    let mut files = common::manifest(&root);
    // getfattr -R lists in directory order, which differs between filesystems; the
    // listing below has every file's xattrs in name order.
    files.remove("(xattrs)");
    // The restore rewrites an fstab that names filesystems which are not there.
    files.retain(|k, _| !k.starts_with("etc/fstab"));
    let before = common::attrs::listing(&root, &files);
    assert_eq!(
        common::attrs::flag_letters(&common::attrs::lsattr(&root)),
        ["i", "a"]
    );

    let d = disks();
    let (d0, d1) = (
        format!("disk0={}", d.disk0.dev.display()),
        format!("disk1={}", d.disk1.dev.display()),
    );
    let out = lifeboat(
        &[],
        &[
            "restore",
            s.spec.to_str().unwrap(),
            "--from",
            "restic",
            "--latest",
            "--disk",
            &d0,
            "--disk",
            &d1,
            "--yes",
        ],
    );
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(
            "Note: not carried by restic: the immutable and append-only attributes (chattr +i, chattr +a)"
        ),
        "{text}"
    );
    let help = restic(&[], &["restore", "--help"]);
    let sparse = String::from_utf8_lossy(&help.stdout).contains("--sparse");
    let pool = pool_mount(&d);
    let got = pool.path().join("@rootTW");
    let mut after_files = common::manifest(&got);
    after_files.remove("(xattrs)");
    after_files.retain(|k, _| !k.starts_with("etc/fstab"));
    let diff = common::diff(&files, &after_files);
    assert!(diff.is_empty(), "@rootTW differs from the tree: {diff:#?}");
    let after = common::attrs::listing(&got, &files);
    for want in [
        "security.capability=",
        "security.selinux=\"system_u:object_r:shadow_t:s0\"",
        "default:user:1000:rwx",
    ] {
        assert!(after.contains(want), "{want} not in\n{after}");
    }
    assert_eq!(after, before, "getfattr/getfacl differ after the restore");
    assert_eq!(
        common::attrs::flag_letters(&common::attrs::lsattr(&got)),
        ["", ""],
        "restic cannot carry chattr flags"
    );
    let disk = std::fs::metadata(got.join("var/lib/disk.img")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(disk.len(), 256 << 20);
    if sparse {
        assert!(disk.blocks() * 512 < 1 << 20, "disk.img stayed sparse");
        assert!(!text.contains("sparse files"), "{text}");
    } else {
        assert!(
            text.contains(
                "Note: not carried by this restic (its restore has no --sparse): sparse files"
            ),
            "{text}"
        );
    }
}
