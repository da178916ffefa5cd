//! The rescue system's network. DHCP is the init's (rootfs/usr/lib/lifeboat/net-up): busybox
//! `udhcpc` on every wired link, whose event script keeps one `<link>.resolv` per link under
//! [`STATE_DIR`] and joins them into /etc/resolv.conf. Here: the links and their addresses
//! as the menu shows them ([`links`]), a static address typed at the menu when no DHCP
//! answers, checked ([`input`]), planned as `ip` commands ([`plan`]) and applied
//! ([`apply`]), and /etc/resolv.conf written the way the DHCP script writes it
//! ([`resolv`]).

pub mod apply;
pub mod input;
pub mod links;
pub mod plan;
pub mod resolv;

/// Where the init's DHCP keeps each link's state (`<link>.pid`, `.addr`, `.resolv`) and a
/// static address leaves `<link>.static`, so that net-up does not start DHCP there again.
pub const STATE_DIR: &str = "/run/lifeboat/net";

/// The resolver configuration every program of the rescue system reads.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
