//! /etc/resolv.conf of the rescue system: every link's name servers, joined in the order of
//! the links' names, exactly as the DHCP event script (rootfs/usr/lib/lifeboat/udhcpc-script)
//! joins them, so that a static address on one link and a lease on another both count.

use std::io;
use std::net::IpAddr;
use std::path::Path;

/// One link's part: a `nameserver` line per server.
pub fn link_text(servers: &[IpAddr]) -> String {
    servers
        .iter()
        .map(|s| format!("nameserver {s}\n"))
        .collect()
}

/// The links' parts (file name, text) as one file, by file name.
pub fn join(mut parts: Vec<(String, String)>) -> String {
    parts.sort();
    let mut out = String::new();
    for (_, text) in parts {
        out.push_str(&text);
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Keep `text` as `link`'s part in `state_dir` and write `resolv_conf` from every part.
/// Both are written to a temporary name and renamed, so a program that resolves a name
/// meanwhile reads the old file or the new one, never half of one.
pub fn write(state_dir: &Path, link: &str, text: &str, resolv_conf: &Path) -> io::Result<()> {
    crate::boot::loader::write_renamed(&state_dir.join(format!("{link}.resolv")), text.as_bytes())?;
    let mut parts = Vec::new();
    for entry in std::fs::read_dir(state_dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".resolv") {
            parts.push((name, std::fs::read_to_string(entry.path())?));
        }
    }
    crate::boot::loader::write_renamed(resolv_conf, join(parts).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_server() {
        let servers = [
            "192.168.1.1".parse().unwrap(),
            "2001:db8::53".parse().unwrap(),
        ];
        assert_eq!(
            link_text(&servers),
            "nameserver 192.168.1.1\nnameserver 2001:db8::53\n"
        );
        assert_eq!(link_text(&[]), "");
    }

    #[test]
    fn parts_by_link_name() {
        assert_eq!(
            join(vec![
                ("eth0.resolv".into(), "nameserver 10.0.2.3\n".into()),
                ("enp3s0.resolv".into(), "nameserver 9.9.9.9".into()),
                ("usb0.resolv".into(), String::new()),
            ]),
            "nameserver 9.9.9.9\nnameserver 10.0.2.3\n"
        );
    }

    #[test]
    fn a_static_link_joins_the_leases_of_others() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("run/lifeboat/net");
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::create_dir_all(&etc).unwrap();
        // What udhcpc-script left for a lease on eth0, and its pid file (not a part).
        std::fs::write(
            state.join("eth0.resolv"),
            "search lan\nnameserver 10.0.2.3\n",
        )
        .unwrap();
        std::fs::write(state.join("eth0.pid"), "123\n").unwrap();
        std::fs::write(etc.join("resolv.conf"), "nameserver 10.0.2.3\n").unwrap();
        let conf = etc.join("resolv.conf");
        write(&state, "enp3s0", "nameserver 9.9.9.9\n", &conf).unwrap();
        assert_eq!(
            std::fs::read_to_string(&conf).unwrap(),
            "nameserver 9.9.9.9\nsearch lan\nnameserver 10.0.2.3\n"
        );
        assert_eq!(
            std::fs::read_to_string(state.join("enp3s0.resolv")).unwrap(),
            "nameserver 9.9.9.9\n"
        );
        // Again, now without name servers: the link's part is emptied, nothing left behind.
        write(&state, "enp3s0", "", &conf).unwrap();
        assert_eq!(
            std::fs::read_to_string(&conf).unwrap(),
            "search lan\nnameserver 10.0.2.3\n"
        );
        let mut names: Vec<String> = std::fs::read_dir(&etc)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["resolv.conf"]);
    }
}
