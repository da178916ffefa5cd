//! A static address as the steps that set it, decided before anything runs: the plan is
//! printed, confirmed, then [`super::apply`] carries out exactly these steps.

use super::input::Static;
use super::resolv;

/// One step of setting a static address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Stop the init's DHCP client on the link (if one runs) and mark the link static, so
    /// that neither a late lease nor net-up run again replaces the address typed.
    StopDhcp { link: String },
    /// busybox `ip` with these arguments.
    Ip(Vec<String>),
    /// The link's name servers (this text as `<link>.resolv` in the state directory), then
    /// /etc/resolv.conf joined from every link's, as the DHCP script joins them.
    Resolv { link: String, text: String },
}

impl Step {
    pub fn describe(&self) -> String {
        match self {
            Step::StopDhcp { link } => {
                format!("stop DHCP on {link} (it would replace the address when a lease comes)")
            }
            Step::Ip(args) => format!("ip {}", args.join(" ")),
            Step::Resolv { link, text } if text.is_empty() => {
                format!(
                    "write {} without name servers from {link}",
                    super::RESOLV_CONF
                )
            }
            Step::Resolv { link, text } => format!(
                "write {} with {link}'s {}",
                super::RESOLV_CONF,
                text.lines().collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// The steps that give `cfg.link` exactly the address, route and name servers asked for.
pub fn plan(cfg: &Static) -> Vec<Step> {
    let link = cfg.link.clone();
    let ip = |args: &[&str]| Step::Ip(args.iter().map(|a| (*a).to_owned()).collect());
    let mut steps = vec![
        Step::StopDhcp { link: link.clone() },
        ip(&["link", "set", &link, "up"]),
        // Whatever DHCP or an earlier static address left goes: the link has one address.
        ip(&["-4", "addr", "flush", "dev", &link]),
        ip(&[
            "addr",
            "add",
            &format!("{}/{}", cfg.address, cfg.prefix),
            "dev",
            &link,
        ]),
    ];
    if let Some(gw) = cfg.gateway {
        steps.push(ip(&[
            "route",
            "replace",
            "default",
            "via",
            &gw.to_string(),
            "dev",
            &link,
        ]));
    }
    steps.push(Step::Resolv {
        link,
        text: resolv::link_text(&cfg.dns),
    });
    steps
}

/// The plan as the lines shown before the confirmation.
pub fn render(cfg: &Static, steps: &[Step]) -> String {
    let mut out = format!(
        "Static address for {}: {}/{}, gateway {}, name servers {}\n",
        cfg.link,
        cfg.address,
        cfg.prefix,
        cfg.gateway
            .map_or_else(|| "none".to_owned(), |g| g.to_string()),
        if cfg.dns.is_empty() {
            "none".to_owned()
        } else {
            cfg.dns
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    for s in steps {
        out.push_str(&format!("  - {}\n", s.describe()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(gateway: Option<&str>, dns: &[&str]) -> Static {
        Static {
            link: "enp3s0".into(),
            address: "192.168.1.20".parse().unwrap(),
            prefix: 24,
            gateway: gateway.map(|g| g.parse().unwrap()),
            dns: dns.iter().map(|d| d.parse().unwrap()).collect(),
        }
    }

    fn ip(line: &str) -> Step {
        Step::Ip(line.split(' ').map(str::to_owned).collect())
    }

    #[test]
    fn the_whole_plan_with_a_gateway_and_name_servers() {
        assert_eq!(
            plan(&cfg(Some("192.168.1.1"), &["192.168.1.1", "9.9.9.9"])),
            vec![
                Step::StopDhcp {
                    link: "enp3s0".into()
                },
                ip("link set enp3s0 up"),
                ip("-4 addr flush dev enp3s0"),
                ip("addr add 192.168.1.20/24 dev enp3s0"),
                ip("route replace default via 192.168.1.1 dev enp3s0"),
                Step::Resolv {
                    link: "enp3s0".into(),
                    text: "nameserver 192.168.1.1\nnameserver 9.9.9.9\n".into()
                },
            ]
        );
    }

    #[test]
    fn no_gateway_no_route() {
        let steps = plan(&cfg(None, &[]));
        assert!(!steps
            .iter()
            .any(|s| matches!(s, Step::Ip(a) if a.first().map(String::as_str) == Some("route"))));
        assert_eq!(
            steps.last(),
            Some(&Step::Resolv {
                link: "enp3s0".into(),
                text: String::new()
            })
        );
    }

    #[test]
    fn the_printed_plan_names_each_step() {
        let c = cfg(Some("192.168.1.1"), &["9.9.9.9"]);
        let text = render(&c, &plan(&c));
        assert_eq!(
            text,
            "Static address for enp3s0: 192.168.1.20/24, gateway 192.168.1.1, name servers 9.9.9.9\n\
             \x20 - stop DHCP on enp3s0 (it would replace the address when a lease comes)\n\
             \x20 - ip link set enp3s0 up\n\
             \x20 - ip -4 addr flush dev enp3s0\n\
             \x20 - ip addr add 192.168.1.20/24 dev enp3s0\n\
             \x20 - ip route replace default via 192.168.1.1 dev enp3s0\n\
             \x20 - write /etc/resolv.conf with enp3s0's nameserver 9.9.9.9\n"
        );
    }
}
