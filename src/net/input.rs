//! What a person types for a static address, checked: each mistake is one sentence that
//! names the field and says what is expected, so the menu can show it and ask again.

use std::net::{IpAddr, Ipv4Addr};

/// A static IPv4 configuration for one link, every part checked against the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Static {
    pub link: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// The default route; none on a network that only reaches its own subnet.
    pub gateway: Option<Ipv4Addr>,
    /// Name servers, in the order they are asked.
    pub dns: Vec<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("no link called \"{given}\": the wired links are {known}")]
    UnknownLink { given: String, known: String },
    #[error("\"{0}\" is not an address with its prefix: write it like 192.168.1.20/24")]
    NotAddressPrefix(String),
    #[error(
        "\"{0}\" is not an IPv4 address: write four numbers 0-255 with dots, like 192.168.1.20"
    )]
    NotIpv4(String),
    #[error("the prefix /{0} is not between /1 and /32 (a home network is usually /24)")]
    BadPrefix(String),
    #[error("{0} cannot be this machine's address (it is a loopback, multicast, broadcast or unspecified address)")]
    Reserved(Ipv4Addr),
    #[error("{address} is the network's own address for /{prefix}: pick a host address such as {example}")]
    NetworkAddress {
        address: Ipv4Addr,
        prefix: u8,
        example: Ipv4Addr,
    },
    #[error("{address} is the broadcast address of its /{prefix} network: pick a host address such as {example}")]
    BroadcastAddress {
        address: Ipv4Addr,
        prefix: u8,
        example: Ipv4Addr,
    },
    #[error("the gateway {gateway} is outside {network}/{prefix}: the router must be on this machine's network (or leave it empty)")]
    GatewayOutside {
        gateway: Ipv4Addr,
        network: Ipv4Addr,
        prefix: u8,
    },
    #[error("the gateway {0} is this machine's own address: give the router's address (or leave it empty)")]
    GatewayIsSelf(Ipv4Addr),
    #[error("\"{0}\" is not a name server address: write addresses like 192.168.1.1 or 2001:db8::1, separated by spaces or commas")]
    NotDns(String),
}

/// The link the person typed or chose, one of `known`.
pub fn link(text: &str, known: &[String]) -> Result<String, InputError> {
    let text = text.trim();
    if known.iter().any(|k| k == text) {
        return Ok(text.to_owned());
    }
    Err(InputError::UnknownLink {
        given: text.to_owned(),
        known: if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        },
    })
}

/// `192.168.1.20/24`: a host address of its network.
pub fn address(text: &str) -> Result<(Ipv4Addr, u8), InputError> {
    let text = text.trim();
    let Some((addr, prefix)) = text.split_once('/') else {
        return Err(InputError::NotAddressPrefix(text.to_owned()));
    };
    let address = ipv4(addr)?;
    let prefix = match prefix.trim().parse::<u8>() {
        Ok(p) if (1..=32).contains(&p) => p,
        _ => return Err(InputError::BadPrefix(prefix.trim().to_owned())),
    };
    if address.is_loopback()
        || address.is_multicast()
        || address.is_broadcast()
        || address.is_unspecified()
        || u32::from(address) >= 0xF000_0000
    {
        return Err(InputError::Reserved(address));
    }
    // /31 and /32 have no network or broadcast address of their own (RFC 3021).
    if prefix <= 30 {
        let net = network(address, prefix);
        let bcast = u32::from(net) | !mask(prefix);
        if address == net {
            return Err(InputError::NetworkAddress {
                address,
                prefix,
                example: Ipv4Addr::from(u32::from(net) + 1),
            });
        }
        if u32::from(address) == bcast {
            return Err(InputError::BroadcastAddress {
                address,
                prefix,
                example: Ipv4Addr::from(bcast - 1),
            });
        }
    }
    Ok((address, prefix))
}

/// The router, inside the address's network; empty text is no gateway.
pub fn gateway(text: &str, address: Ipv4Addr, prefix: u8) -> Result<Option<Ipv4Addr>, InputError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let gw = ipv4(text)?;
    if gw == address {
        return Err(InputError::GatewayIsSelf(gw));
    }
    if network(gw, prefix) != network(address, prefix) {
        return Err(InputError::GatewayOutside {
            gateway: gw,
            network: network(address, prefix),
            prefix,
        });
    }
    Ok(Some(gw))
}

/// Name servers separated by spaces or commas; empty text is none.
pub fn dns(text: &str) -> Result<Vec<IpAddr>, InputError> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().map_err(|_| InputError::NotDns(w.to_owned())))
        .collect()
}

fn ipv4(text: &str) -> Result<Ipv4Addr, InputError> {
    text.trim()
        .parse()
        .map_err(|_| InputError::NotIpv4(text.trim().to_owned()))
}

fn mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

/// The network address of `address`/`prefix`.
pub fn network(address: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(address) & mask(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_with_its_prefix() {
        assert_eq!(address(" 192.168.1.20/24 "), Ok((v4("192.168.1.20"), 24)));
        assert_eq!(address("10.0.0.1/8"), Ok((v4("10.0.0.1"), 8)));
        // Point-to-point and host routes have no network or broadcast address to avoid.
        assert_eq!(address("10.1.1.0/31"), Ok((v4("10.1.1.0"), 31)));
        assert_eq!(address("10.1.1.255/32"), Ok((v4("10.1.1.255"), 32)));
    }

    #[test]
    fn address_mistakes_are_named() {
        assert_eq!(
            address("192.168.1.20"),
            Err(InputError::NotAddressPrefix("192.168.1.20".into()))
        );
        assert_eq!(
            address("192.168.1.256/24"),
            Err(InputError::NotIpv4("192.168.1.256".into()))
        );
        assert_eq!(address("eth0/24"), Err(InputError::NotIpv4("eth0".into())));
        assert_eq!(
            address("192.168.1.20/33"),
            Err(InputError::BadPrefix("33".into()))
        );
        assert_eq!(
            address("192.168.1.20/0"),
            Err(InputError::BadPrefix("0".into()))
        );
        assert_eq!(
            address("192.168.1.20/"),
            Err(InputError::BadPrefix("".into()))
        );
        assert_eq!(
            address("127.0.0.1/8"),
            Err(InputError::Reserved(v4("127.0.0.1")))
        );
        assert_eq!(
            address("224.0.0.5/24"),
            Err(InputError::Reserved(v4("224.0.0.5")))
        );
        assert_eq!(
            address("0.0.0.0/24"),
            Err(InputError::Reserved(v4("0.0.0.0")))
        );
        assert_eq!(
            address("192.168.1.0/24"),
            Err(InputError::NetworkAddress {
                address: v4("192.168.1.0"),
                prefix: 24,
                example: v4("192.168.1.1")
            })
        );
        assert_eq!(
            address("192.168.1.255/24"),
            Err(InputError::BroadcastAddress {
                address: v4("192.168.1.255"),
                prefix: 24,
                example: v4("192.168.1.254")
            })
        );
        // Every message is one sentence that names what was typed.
        let e = address("192.168.1.0/24").unwrap_err().to_string();
        assert!(
            e.starts_with("192.168.1.0 is the network's own address"),
            "{e}"
        );
        assert_eq!(e.matches(". ").count(), 0, "{e}");
    }

    #[test]
    fn a_gateway_on_the_same_network() {
        let a = v4("192.168.1.20");
        assert_eq!(gateway("", a, 24), Ok(None));
        assert_eq!(gateway(" 192.168.1.1 ", a, 24), Ok(Some(v4("192.168.1.1"))));
        assert_eq!(gateway("192.168.0.1", a, 16), Ok(Some(v4("192.168.0.1"))));
        assert_eq!(
            gateway("192.168.2.1", a, 24),
            Err(InputError::GatewayOutside {
                gateway: v4("192.168.2.1"),
                network: v4("192.168.1.0"),
                prefix: 24
            })
        );
        assert_eq!(
            gateway("192.168.1.20", a, 24),
            Err(InputError::GatewayIsSelf(a))
        );
        assert_eq!(
            gateway("router", a, 24),
            Err(InputError::NotIpv4("router".into()))
        );
    }

    #[test]
    fn name_servers_by_spaces_or_commas() {
        assert_eq!(dns(""), Ok(vec![]));
        assert_eq!(
            dns("1.1.1.1, 9.9.9.9  2001:db8::53"),
            Ok(vec![
                "1.1.1.1".parse().unwrap(),
                "9.9.9.9".parse().unwrap(),
                "2001:db8::53".parse().unwrap()
            ])
        );
        assert_eq!(
            dns("1.1.1.1 dns.example"),
            Err(InputError::NotDns("dns.example".into()))
        );
    }

    #[test]
    fn a_link_of_this_machine() {
        let known = vec!["eth0".to_owned(), "enp3s0".to_owned()];
        assert_eq!(link(" enp3s0", &known), Ok("enp3s0".into()));
        assert_eq!(
            link("eth1", &known).unwrap_err().to_string(),
            "no link called \"eth1\": the wired links are eth0, enp3s0"
        );
        assert_eq!(
            link("eth0", &[]).unwrap_err().to_string(),
            "no link called \"eth0\": the wired links are none"
        );
    }
}
