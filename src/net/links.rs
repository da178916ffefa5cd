//! The wired links of this machine and the addresses they have, for the menu's header and
//! its static-address entry.

use std::path::Path;

use crate::exec::Cmd;

/// The wired links under `sys_class_net` (/sys/class/net): those with a device behind them
/// (not `lo`, not a bridge or tunnel) that are not Wi-Fi, by name. The same choice as
/// net-up's, which starts DHCP on exactly these.
pub fn wired(sys_class_net: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(sys_class_net)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let p = e.path();
            p.join("device").exists()
                && !p.join("wireless").exists()
                && !p.join("phy80211").exists()
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// `ip -o -4 addr` lines → (link, address/prefix).
pub fn addresses(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let link = words.get(1)?.trim_end_matches(':');
            let at = words.iter().position(|w| *w == "inet")?;
            Some((link.to_owned(), (*words.get(at + 1)?).to_owned()))
        })
        .collect()
}

/// The addresses of the links that are up, as `ip` shows them now (empty when `ip` fails:
/// the header then says there is no address, which is what a person can act on).
pub fn up_addresses() -> Vec<(String, String)> {
    let text = Cmd::new("ip")
        .args(["-o", "-4", "addr", "show", "scope", "global", "up"])
        .read()
        .unwrap_or_default();
    addresses(&text)
}

/// The menu header's network line.
pub fn header(found: &[(String, String)]) -> String {
    if found.is_empty() {
        return "network: no address (no wired link got a DHCP lease; \"Set a static address\" \
                sets one, the shell has `ip` and `udhcpc`)"
            .into();
    }
    format!(
        "network: {}",
        found
            .iter()
            .map(|(link, addr)| format!("{link} {addr}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_from_ip_oneline() {
        let text = "2: eth0    inet 10.0.2.15/24 brd 10.0.2.255 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                    3: enp3s0    inet 192.168.1.20/24 scope global enp3s0\n";
        assert_eq!(
            addresses(text),
            [
                ("eth0".to_owned(), "10.0.2.15/24".to_owned()),
                ("enp3s0".to_owned(), "192.168.1.20/24".to_owned())
            ]
        );
        assert!(addresses("").is_empty());
    }

    #[test]
    fn the_header_names_each_link() {
        let found = addresses("2: eth0 inet 10.0.2.15/24 scope global eth0\n3: usb0 inet 192.168.1.20/24 scope global usb0\n");
        assert_eq!(
            header(&found),
            "network: eth0 10.0.2.15/24, usb0 192.168.1.20/24"
        );
        assert!(header(&[]).starts_with("network: no address"));
    }

    #[test]
    fn wired_links_have_a_device_and_no_radio() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path();
        for (name, device, wireless) in [
            ("lo", false, false),
            ("eth0", true, false),
            ("enp3s0", true, false),
            ("wlan0", true, true),
            ("br0", false, false),
        ] {
            std::fs::create_dir_all(net.join(name)).unwrap();
            if device {
                std::fs::create_dir_all(net.join(name).join("device")).unwrap();
            }
            if wireless {
                std::fs::create_dir_all(net.join(name).join("wireless")).unwrap();
            }
        }
        assert_eq!(wired(net), ["enp3s0", "eth0"]);
        assert!(wired(&net.join("missing")).is_empty());
    }
}
