//! The attributes a real root needs beyond its bytes, made and listed with the usual
//! tools (setfattr, setcap, setfacl, chattr; getfattr, getfacl, lsattr), for the restore
//! tests of every source.

use std::fs;
use std::path::Path;

use super::{run, write};

/// What a real root holds beyond bytes: SELinux labels (Fedora boots enforcing), a file
/// capability (ping's cap_net_raw), POSIX ACLs (access and default), a hard link, a sparse
/// file, an immutable and an append-only file.
pub fn fill(root: &Path) {
    let at = |rel: &str| root.join(rel).to_str().unwrap().to_owned();
    write(&root.join("usr/bin/ping"), &b"\x7fELF ping".repeat(3000));
    run(&["setcap", "cap_net_raw+ep", &at("usr/bin/ping")]);
    let label = |rel: &str, context: &str| {
        run(&[
            "setfattr",
            "-n",
            "security.selinux",
            "-v",
            context,
            &at(rel),
        ]);
    };
    label("usr/bin/ping", "system_u:object_r:ping_exec_t:s0");
    write(&root.join("etc/shadow"), b"root:*:19000::::::\n");
    label("etc/shadow", "system_u:object_r:shadow_t:s0");
    fs::create_dir_all(root.join("srv/shared")).unwrap();
    run(&["setfacl", "-m", "u:1000:rwx,g:100:rx", &at("srv/shared")]);
    run(&["setfacl", "-d", "-m", "u:1000:rwx", &at("srv/shared")]);
    write(&root.join("srv/shared/report.txt"), b"shared");
    run(&["setfacl", "-m", "u:1000:rw", &at("srv/shared/report.txt")]);
    fs::hard_link(root.join("usr/bin/ping"), root.join("usr/bin/ping6")).unwrap();
    fs::create_dir_all(root.join("var/lib")).unwrap();
    fs::File::create(root.join("var/lib/disk.img"))
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    write(&root.join("etc/resolv.conf"), b"nameserver 10.0.0.1\n");
    write(&root.join("var/log/audit.log"), b"type=DAEMON_START\n");
    run(&["chattr", "+i", &at("etc/resolv.conf")]);
    run(&["chattr", "+a", &at("var/log/audit.log")]);
}

/// `lsattr -d` of the fixture's immutable and append-only files.
pub fn lsattr(root: &Path) -> String {
    run(&[
        "lsattr",
        "-d",
        root.join("etc/resolv.conf").to_str().unwrap(),
        root.join("var/log/audit.log").to_str().unwrap(),
    ])
}

/// `getfattr -d -m -` (every namespace: security.*, system.posix_acl_*, user.*) and
/// `getfacl` of each file of `files`, in their order, with paths relative to `root`.
pub fn listing(root: &Path, files: &std::collections::BTreeMap<String, String>) -> String {
    let mut out = String::new();
    // The manifest also has summary entries like "(xattrs)" that name no file.
    for rel in files
        .keys()
        .filter(|rel| root.join(rel).symlink_metadata().is_ok())
    {
        for argv in [
            &["getfattr", "-h", "-d", "-m", "-", "--", rel.as_str()][..],
            &["getfacl", "-p", "-n", "--", rel.as_str()][..],
        ] {
            let o = std::process::Command::new(argv[0])
                .args(&argv[1..])
                .current_dir(root)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{argv:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            out.push_str(&String::from_utf8_lossy(&o.stdout));
        }
    }
    out
}

/// The i and a letters of each line `lsattr` printed, in order.
pub fn flag_letters(lsattr: &str) -> Vec<String> {
    lsattr
        .lines()
        .map(|l| {
            let flags = l.split_whitespace().next().unwrap_or("");
            flags.chars().filter(|c| *c == 'i' || *c == 'a').collect()
        })
        .collect()
}

/// Take the immutable and append-only flags off again, so that the tree can be removed.
pub fn clear_flags(root: &Path) {
    for (flag, rel) in [("-i", "etc/resolv.conf"), ("-a", "var/log/audit.log")] {
        let _ = std::process::Command::new("chattr")
            .arg(flag)
            .arg(root.join(rel))
            .status();
    }
}
