//! Hostile backups: send streams on LINBKUP written by hand (tests/common/send_stream.rs)
//! that would make `btrfs receive` write outside the subvolume, a stream whose subvolume
//! name is an absolute path, names on the drive that are not one path component, and a
//! spec whose host climbs out. Each hostile stream aims at a directory this test owns; what
//! is checked is what independent tools see: the files there (absent), the blank disk1's
//! bytes (unchanged), `btrfs subvolume list` of an unrelated Btrfs (its subvolume still
//! there), and the exit status with the file and command named.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::send_stream::SendStream;
use common::{fingerprint, lifeboat, run, Image, Loop, Mount};

const DISK0: u64 = 512_000_000_000;
const DISK1: u64 = 2_000_000_000_000;
const USB: u64 = 4_500_000_000_000;

fn spec() -> String {
    common::spec_path().display().to_string()
}

/// disk0 (factory Windows), a blank disk1, and the usb drive provisioned by lifeboat: an
/// empty LINBKUP, to be given hostile content.
struct Drive {
    dir: tempfile::TempDir,
    disk1_img: PathBuf,
    disk0: Loop,
    disk1: Loop,
    usb: Loop,
}

impl Drive {
    fn new() -> Drive {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-hostile-")
            .tempdir()
            .unwrap();
        let disk0_img = Image::sparse(dir.path(), "disk0.img", DISK0).path;
        let disk0 = common::factory_windows(&disk0_img);
        let disk1_img = Image::sparse(dir.path(), "disk1.img", DISK1).path;
        let usb_img = Image::sparse(dir.path(), "usb.img", USB).path;
        let disk1 = Loop::attach(&disk1_img);
        let usb = Loop::attach(&usb_img);
        let d = Drive {
            dir,
            disk1_img,
            disk0,
            disk1,
            usb,
        };
        let spec = spec();
        let disks = d.disk_args();
        let mut args = vec!["provision", spec.as_str(), "--only", "usb", "--yes"];
        args.extend(disks.iter().map(String::as_str));
        let out = lifeboat(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        d
    }

    /// `--disk ID=DEVICE` for all three disks.
    fn disk_args(&self) -> Vec<String> {
        [
            ("disk0", &self.disk0),
            ("disk1", &self.disk1),
            ("usb", &self.usb),
        ]
        .into_iter()
        .flat_map(|(id, l)| ["--disk".to_owned(), format!("{id}={}", l.dev.display())])
        .collect()
    }

    fn linbkup(&self) -> Mount {
        Mount::new(Path::new(&format!("{}p3", self.usb.dev.display())), "btrfs")
    }

    /// A stream file in raw-snapshots/atlantis/ on LINBKUP.
    fn put_stream(&self, file: &str, bytes: &[u8]) {
        let m = self.linbkup();
        common::write(&m.path().join("raw-snapshots/atlantis").join(file), bytes);
    }

    /// A directory of this test's own, for hostile streams to aim at.
    fn outside(&self) -> PathBuf {
        let p = self.dir.path().join("outside");
        fs::create_dir_all(&p).unwrap();
        p
    }

    fn restore(&self, extra: &[&str]) -> std::process::Output {
        let spec = spec();
        let disks = self.disk_args();
        let mut args = vec!["restore", spec.as_str(), "--from", "usb"];
        args.extend(disks.iter().map(String::as_str));
        args.extend_from_slice(extra);
        lifeboat(&args)
    }

    /// The restore of @home from the stream put there: refused, disk1 not written, and
    /// stderr names the file and what is wrong with it.
    fn refused(&self, file: &str, says: &[&str]) {
        let before = fingerprint(&self.disk1_img);
        let out = self.restore(&["--latest", "--subvol", "@home", "--yes"]);
        self.was_refused(&out, &before, file, says);
    }

    fn was_refused(&self, out: &std::process::Output, before: &str, file: &str, says: &[&str]) {
        let err = String::from_utf8_lossy(&out.stderr);
        let text = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
        assert!(!out.status.success(), "the restore succeeded:\n{text}");
        let named = format!("raw-snapshots/atlantis/{file}: ");
        assert!(err.contains(&named), "{named} not in:\n{text}");
        for s in says {
            assert!(err.contains(s), "{s:?} not in:\n{text}");
        }
        assert!(err.contains("nothing was written"), "{text}");
        assert_eq!(
            fingerprint(&self.disk1_img),
            before,
            "a refused restore wrote to disk1"
        );
    }
}

/// Every entry under `dir`, for "nothing arrived there".
fn entries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            out.push(e.path().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

const UUID: [u8; 16] = [0x5a; 16];

#[test]
fn the_stream_writer_makes_streams_btrfs_receive_reads() {
    // Without this, a hostile stream could be refused for a bad CRC instead of for what
    // it does, and the tests below would prove nothing.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain.btrfs");
    let bytes = SendStream::subvol("@home.20261121T0300", UUID)
        .mkdir("alice")
        .file("alice/notes.txt", b"hello")
        .symlink("alice/link", "/etc/passwd")
        .end();
    fs::write(&file, &bytes).unwrap();
    let dump = run(&["btrfs", "receive", "--dump", "-f", file.to_str().unwrap()]);
    assert!(dump.contains("symlink"), "{dump}");
    assert!(dump.contains("alice/notes.txt"), "{dump}");
}

#[test]
fn a_stream_that_writes_through_its_own_symlink_is_refused() {
    let d = Drive::new();
    let outside = d.outside();
    let file = "@home.20261121T0300.btrfs";
    d.put_stream(
        file,
        &SendStream::subvol("@home.20261121T0300", UUID)
            .symlink("escape", outside.to_str().unwrap())
            .file("escape/owned", b"written through a symlink")
            .end(),
    );
    d.refused(
        file,
        &["command 3 (mkfile) goes through the symlink escape that command 2 made: escape/owned"],
    );
    assert_eq!(entries(&outside), Vec::<String>::new());
}

#[test]
fn a_stream_whose_paths_climb_out_is_refused() {
    let d = Drive::new();
    let outside = d.outside();
    // From <mount>/@snapshots/<subvol>/ up to / (extra .. stay at /), then down to ours.
    let climb = format!(
        "{}{}/owned",
        "../".repeat(12),
        &outside.to_str().unwrap()[1..]
    );
    let file = "@home.20261121T0300.btrfs";
    d.put_stream(
        file,
        &SendStream::subvol("@home.20261121T0300", UUID)
            .mkdir("alice")
            .file(&climb, b"climbed out")
            .end(),
    );
    d.refused(
        file,
        &[&format!(
            "command 3 (mkfile) climbs out of the subvolume: {climb}"
        )],
    );
    assert_eq!(entries(&outside), Vec::<String>::new());
    // A symlink made inside and then renamed over a directory's place is still followed
    // nowhere: the same stream, the link moved before the write.
    let file2 = "@home.20261122T0300.btrfs";
    d.put_stream(
        file2,
        &SendStream::subvol("@home.20261122T0300", UUID)
            .symlink("o300-1-0", outside.to_str().unwrap())
            .rename("o300-1-0", "alice")
            .file("alice/owned", b"written through a renamed symlink")
            .end(),
    );
    d.refused(
        file2,
        &["command 4 (mkfile) goes through the symlink alice that command 2 made: alice/owned"],
    );
    assert_eq!(entries(&outside), Vec::<String>::new());
}

#[test]
fn an_absolute_subvolume_name_deletes_nothing_elsewhere() {
    let d = Drive::new();
    // An unrelated Btrfs with a writable subvolume where the stream's name points.
    let other_img = Image::sparse(d.dir.path(), "other.img", 1 << 30).path;
    let other = Loop::attach(&other_img);
    run(&["mkfs.btrfs", "-q", "-L", "UNRELATED", other.path()]);
    let mnt = Mount::new(&other.dev, "btrfs");
    let victim = mnt.path().join("victim");
    run(&["btrfs", "subvolume", "create", victim.to_str().unwrap()]);
    common::write(&victim.join("keep.txt"), b"not yours");
    let file = "@home.20261121T0300.btrfs";
    d.put_stream(
        file,
        &SendStream::subvol(victim.to_str().unwrap(), UUID)
            .file("x", b"x")
            .end(),
    );
    let before = fingerprint(&d.disk1_img);
    let out = d.restore(&["--latest", "--subvol", "@home", "--yes"]);
    let list = run(&["btrfs", "subvolume", "list", mnt.path().to_str().unwrap()]);
    assert!(
        list.contains("path victim\n"),
        "the subvolume is gone:\n{list}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(fs::read(victim.join("keep.txt")).unwrap(), b"not yours");
    d.was_refused(
        &out,
        &before,
        file,
        &[&format!(
            "command 1 (subvol) names its subvolume \"{}\", which cannot contain '/'",
            victim.display()
        )],
    );
}

#[test]
fn names_on_the_drive_that_are_not_one_component_are_passed_over() {
    let d = Drive::new();
    {
        let m = d.linbkup();
        let host = m.path().join("atlantis");
        fs::create_dir_all(&host).unwrap();
        // btrbk names whose subvolume part is "." and "..".
        for name in ["..20261120T0300", "...20261120T0300"] {
            run(&[
                "btrfs",
                "subvolume",
                "create",
                host.join(name).to_str().unwrap(),
            ]);
        }
        common::write(
            &m.path()
                .join("raw-snapshots/atlantis/...20261121T0300.btrfs"),
            &SendStream::subvol("x", UUID).end(),
        );
    }
    let spec = spec();
    let mut args = vec!["inventory", spec.as_str(), "--from", "usb", "--json"];
    let usb = format!("usb={}", d.usb.dev.display());
    args.extend(["--disk", &usb]);
    let out = lifeboat(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inv: serde_json::Value = serde_json::from_str(&text).unwrap();
    let subvols: Vec<&str> = inv["subvols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subvol"].as_str().unwrap())
        .collect();
    assert!(
        !subvols.contains(&".") && !subvols.contains(&".."),
        "{subvols:?}"
    );
    let warnings = inv["warnings"].to_string();
    for (path, name) in [
        ("atlantis/..20261120T0300", "."),
        ("atlantis/...20261120T0300", ".."),
        ("raw-snapshots/atlantis/...20261121T0300.btrfs", ".."),
    ] {
        let w =
            format!("{path} is not used as a restore point: the name \\\"{name}\\\" is not a name");
        assert!(warnings.contains(&w), "{w} not in {warnings}");
    }
}

#[test]
fn a_host_that_is_not_one_directory_name_is_a_spec_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(common::spec_path()).unwrap();
    assert!(text.contains("host = \"atlantis\""));
    let bad = dir.path().join("atlantis.toml");
    fs::write(
        &bad,
        text.replace("host = \"atlantis\"", "host = \"../../x\""),
    )
    .unwrap();
    let line = text.lines().position(|l| l.starts_with("host = ")).unwrap() + 1;
    let out = lifeboat(&["check", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "{}:{line}:8: host \"../../x\" cannot contain '/'",
            bad.display()
        )),
        "{err}"
    );
}

/// The UUID of a subvolume, from `btrfs subvolume show`.
fn uuid_of(subvol: &Path) -> [u8; 16] {
    let show = run(&["btrfs", "subvolume", "show", subvol.to_str().unwrap()]);
    let line = show
        .lines()
        .find(|l| l.trim_start().starts_with("UUID:"))
        .unwrap();
    let hex: String = line
        .split_once(':')
        .unwrap()
        .1
        .trim()
        .chars()
        .filter(|c| *c != '-')
        .collect();
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// `btrfs subvolume show` says: read-only, and a received UUID (what a complete receive
/// leaves).
fn complete(subvol: &Path) -> bool {
    let show = run(&["btrfs", "subvolume", "show", subvol.to_str().unwrap()]);
    let readonly = show
        .lines()
        .any(|l| l.trim().starts_with("Flags:") && l.contains("readonly"));
    let received = show
        .lines()
        .any(|l| l.trim().starts_with("Received UUID:") && !l.trim().ends_with('-'));
    readonly && received
}

#[test]
fn the_receive_pipe_checks_as_it_goes_and_receive_is_confined_to_its_directory() {
    use lifeboat::restore::pipe::{self, PipeError, StreamOrigin};
    let dir = tempfile::Builder::new()
        .prefix("lifeboat-hostile-")
        .tempdir()
        .unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let img = Image::sparse(dir.path(), "pool.img", 1 << 30).path;
    let dev = Loop::attach(&img);
    run(&["mkfs.btrfs", "-q", "-L", "POOL", dev.path()]);
    let pool = Mount::new(&dev.dev, "btrfs");
    let snaps = pool.path().join("@snapshots");
    fs::create_dir(&snaps).unwrap();
    let receive = |bytes: &[u8], sink: &lifeboat::exec::Cmd| {
        let file = dir.path().join("stream.btrfs");
        fs::write(&file, bytes).unwrap();
        pipe::stream(StreamOrigin::File(&file), sink, &mut |_| {})
    };

    // Checked while it flows into `btrfs receive` (no preflight): stopped at the command,
    // and receive killed rather than given EOF, so its subvolume is not marked complete.
    let hostile = SendStream::subvol("@home.20261121T0300", UUID)
        .symlink("escape", outside.to_str().unwrap())
        .file("escape/owned", b"written through a symlink")
        .end();
    match receive(&hostile, &pipe::receive_into(&snaps)) {
        Err(PipeError::Refused(r)) => assert_eq!(
            r.to_string(),
            "command 3 (mkfile) goes through the symlink escape that command 2 made: \
             escape/owned"
        ),
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(entries(&outside), Vec::<String>::new());
    let partial = snaps.join("@home.20261121T0300");
    if partial.exists() {
        assert!(!complete(&partial), "the refused receive looks complete");
    }

    // A symlink in the parent of an incremental stream is not the stream's own: the check
    // cannot know it, `--chroot` keeps its target inside the receive directory.
    let src = pool.path().join("src");
    run(&["btrfs", "subvolume", "create", src.to_str().unwrap()]);
    std::os::unix::fs::symlink(&outside, src.join("lnk")).unwrap();
    let parent = snaps.join("parent");
    run(&[
        "btrfs",
        "subvolume",
        "snapshot",
        "-r",
        src.to_str().unwrap(),
        parent.to_str().unwrap(),
    ]);
    let through_parent = |name: &str| {
        SendStream::snapshot(name, [0x6b; 16], uuid_of(&parent))
            .file("lnk/owned", b"written through the parent's symlink")
            .end()
    };
    // Unconfined (as before), the write lands outside: the stream is a real threat.
    let unconfined = lifeboat::exec::Cmd::new("btrfs")
        .args(["receive", "-q"])
        .arg(&snaps);
    let _ = receive(&through_parent("unconfined"), &unconfined);
    assert!(
        outside.join("owned").exists(),
        "the control stream did not escape"
    );
    fs::remove_file(outside.join("owned")).unwrap();
    let confined = receive(&through_parent("confined"), &pipe::receive_into(&snaps));
    assert!(
        matches!(confined, Err(PipeError::Receive { .. })),
        "{confined:?}"
    );
    assert_eq!(entries(&outside), Vec::<String>::new());
}

/// A stream cut short at a command boundary (its end command missing: an interrupted
/// `btrfs send -f`, a file copied half) is not received as complete. btrfs-progs 6.2 says
/// "unexpected EOF in stream" there itself; the pipe does not rely on the receiver's
/// version: it knows from its own check that the end command is missing, kills the
/// receiver instead of giving it EOF, and names the stream as incomplete.
#[test]
fn a_stream_cut_short_at_a_command_boundary_is_never_marked_complete() {
    use lifeboat::restore::pipe::{self, PipeError, StreamOrigin};
    let dir = tempfile::Builder::new()
        .prefix("lifeboat-truncated-")
        .tempdir()
        .unwrap();
    let img = Image::sparse(dir.path(), "pool.img", 1 << 30).path;
    let dev = Loop::attach(&img);
    run(&["mkfs.btrfs", "-q", "-L", "POOL", dev.path()]);
    let pool = Mount::new(&dev.dev, "btrfs");
    let snaps = pool.path().join("@snapshots");
    fs::create_dir(&snaps).unwrap();

    // A real stream of a real subvolume, less its last command (END: a 10-byte header).
    let src = pool.path().join("src");
    run(&["btrfs", "subvolume", "create", src.to_str().unwrap()]);
    for i in 0..20 {
        fs::write(src.join(format!("f{i}")), vec![i as u8; 5000]).unwrap();
    }
    let snap = pool.path().join("@home.20261121T0300");
    run(&[
        "btrfs",
        "subvolume",
        "snapshot",
        "-r",
        src.to_str().unwrap(),
        snap.to_str().unwrap(),
    ]);
    let whole = dir.path().join("whole.btrfs");
    run(&[
        "btrfs",
        "send",
        "-q",
        "-f",
        whole.to_str().unwrap(),
        snap.to_str().unwrap(),
    ]);
    let bytes = fs::read(&whole).unwrap();
    let end = &bytes[bytes.len() - 10..];
    assert_eq!(u32::from_le_bytes(end[..4].try_into().unwrap()), 0);
    assert_eq!(u16::from_le_bytes(end[4..6].try_into().unwrap()), 21, "END");
    let cut = dir.path().join("cut.btrfs");
    fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();

    let through = snaps.join("through");
    fs::create_dir(&through).unwrap();
    let got = pipe::stream(
        StreamOrigin::File(&cut),
        &pipe::receive_into(&through),
        &mut |_| {},
    );
    match got {
        Err(e @ PipeError::Truncated { .. }) => assert!(
            e.to_string().contains("without the stream's end command"),
            "{e}"
        ),
        other => panic!("the cut stream was not called incomplete: {other:?}"),
    }
    let partial = through.join("@home.20261121T0300");
    if partial.exists() {
        assert!(
            !complete(&partial),
            "the cut stream's subvolume looks complete"
        );
    }

    // The whole stream still goes through.
    let ok = snaps.join("ok");
    fs::create_dir(&ok).unwrap();
    pipe::stream(
        StreamOrigin::File(&whole),
        &pipe::receive_into(&ok),
        &mut |_| {},
    )
    .unwrap();
    assert!(complete(&ok.join("@home.20261121T0300")));
}

/// On a blank disk1 the preflight reads only the head of a large stream (the backup is read
/// once, during the receive): a hostile command beyond the head is refused by the check in
/// the pipe, nothing arrives outside, and nothing under @snapshots becomes a restore point
/// (`btrfs subvolume list -r` of the provisioned pool lists none; the partial one, if it
/// is there, is not read-only with a received UUID).
#[test]
fn on_a_blank_target_a_hostile_command_late_in_a_stream_is_refused_while_received() {
    let d = Drive::new();
    let outside = d.outside();
    let file = "@home.20261121T0300.btrfs";
    let mut s = SendStream::subvol("@home.20261121T0300", UUID);
    s.mkdir("alice");
    // Past the preflight's head check (lifeboat::restore::preflight::HEAD_CHECK).
    let filler = vec![0x42u8; 60_000];
    let mut written = 0u64;
    let mut n = 0;
    while written < lifeboat::restore::preflight::HEAD_CHECK + (4 << 20) {
        s.file(&format!("alice/f{n}"), &filler);
        written += filler.len() as u64;
        n += 1;
    }
    // subvol, mkdir, then mkfile and write per file: the symlink and the write through it.
    let (symlink, through) = (2 * n + 3, 2 * n + 4);
    let bytes = s
        .symlink("escape", outside.to_str().unwrap())
        .file("escape/owned", b"written through a symlink")
        .end();
    d.put_stream(file, &bytes);
    let out = d.restore(&["--latest", "--subvol", "@home", "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let text = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
    assert!(!out.status.success(), "the restore succeeded:\n{text}");
    assert!(
        text.contains("Stream files: checked as they are received"),
        "{text}"
    );
    let said = format!(
        "raw-snapshots/atlantis/{file}: command {} (mkfile) goes through the symlink escape \
         that command {} made: escape/owned",
        through, symlink
    );
    assert!(err.contains(&said), "{said:?} not in:\n{text}");
    assert!(
        err.contains("stopped the receive before that command"),
        "{text}"
    );
    assert_eq!(entries(&outside), Vec::<String>::new());

    let pool = Mount::new(Path::new(&format!("{}p4", d.disk1.dev.display())), "btrfs");
    let readonly = run(&[
        "btrfs",
        "subvolume",
        "list",
        "-r",
        pool.path().to_str().unwrap(),
    ]);
    assert!(
        !readonly.contains("@snapshots/"),
        "a restore point was made:\n{readonly}"
    );
    let partial = pool.path().join("@snapshots/@home.20261121T0300");
    if partial.exists() {
        assert!(!complete(&partial), "the refused receive looks complete");
    }
    // @home is as provisioning made it: empty.
    assert_eq!(entries(&pool.path().join("@home")), Vec::<String>::new());
}
