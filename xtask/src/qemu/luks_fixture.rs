//! The encrypted laptop's boot, for tests/qemu/luks.toml (`luks_fixture = true`): files the
//! harness puts on the stick under `lifeboat/fixture/`, which the scenario's run script
//! installs on the provisioned laptop as a distribution's installer would:
//!
//! - `pool.key`: 64 random bytes made for the run. The run script gives it to the spec
//!   (`key_file`), so the LUKS2 container is made with it.
//! - `initrd-luks.img`: a second initramfs archive (after the stick's, whose kernel modules,
//!   busybox and cryptsetup it uses) whose `/init` opens the container that `/etc/crypttab`
//!   names (`UUID=…`; the run script puts the root's crypttab into a third archive, as
//!   update-initramfs copies it) with that same key, mounts the root subvolume
//!   (`root=UUID=… rootflags=subvol=…` on the command line) and switches to it. A real
//!   distribution asks for the passphrase here; the harness gives the key instead.
//! - `root-init`: the root's `/sbin/init`: mounts /home as the root's /etc/fstab says
//!   (`/dev/mapper/luks-<UUID>`), prints `LARK-HOME-SHA256 <sum>` (sha256 of the
//!   `sha256sum` lines of every file under /home, as the run script computed it before the
//!   wipe) and the user with UID 1000, then powers off.

use std::io::Read;

use anyhow::{Context, Result};

/// Where the files are on the stick's ESP (in the guest under /run/lifeboat/boot/).
pub const DIR: &str = "lifeboat/fixture";

/// Where the key is inside the fixture's initramfs.
const KEY_IN_INITRD: &str = "etc/fixture/pool.key";

/// Fixed time of the archive's entries (2026-01-01).
const MTIME: u32 = 1_767_225_600;

/// The initramfs' init: the container named by crypttab, unlocked with the harness's key.
const INITRD_INIT: &str = r#"#!/bin/busybox sh
# The encrypted laptop fixture's initramfs (tests/qemu/luks.toml, xtask/src/qemu/luks_fixture.rs).
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
fail() {
    echo "LARK-INITRAMFS failed: $*"
    echo "LIFEBOAT-RUN-EXIT 1"
    poweroff -f
}
echo "LARK-INITRAMFS"
# aesni_intel fails quietly under TCG: aes_generic is built in.
for mod in virtio_pci virtio_blk dm_crypt xts ecb algif_skcipher aesni_intel btrfs; do
    modprobe -q "$mod" 2>/dev/null
done
[ -r /etc/crypttab ] || fail "no /etc/crypttab in the initramfs"
set -- $(awk '!/^#/ && NF { print $1, $2; exit }' /etc/crypttab)
name=$1
uuid=${2#UUID=}
[ -n "$name" ] && [ -n "$uuid" ] && [ "$uuid" != "$2" ] || fail "/etc/crypttab names no UUID=: $(cat /etc/crypttab)"
echo "LARK-CRYPTTAB $name UUID=$uuid"
dev=""
tries=0
while [ -z "$dev" ] && [ "$tries" -lt 50 ]; do
    for d in /dev/vd?[0-9]* /dev/nvme*n*p*; do
        [ -b "$d" ] || continue
        [ "$(cryptsetup luksUUID "$d" 2>/dev/null)" = "$uuid" ] && { dev=$d; break; }
    done
    [ -z "$dev" ] && { tries=$((tries + 1)); sleep 0.2; }
done
[ -n "$dev" ] || fail "no LUKS container with UUID $uuid"
cryptsetup open --key-file /etc/fixture/pool.key "$dev" "$name" || fail "cryptsetup cannot open $dev"
echo "LARK-UNLOCKED $dev as /dev/mapper/$name"
root=$(sed -n 's/.*root=UUID=\([^ ]*\).*/\1/p' /proc/cmdline)
flags=$(sed -n 's/.*rootflags=\([^ ]*\).*/\1/p' /proc/cmdline)
inner=$(blkid -p -o value -s UUID "/dev/mapper/$name")
[ "$inner" = "$root" ] || fail "the container holds UUID $inner, the command line wants root=UUID=$root"
mkdir -p /newroot
mount -t btrfs -o "$flags" "/dev/mapper/$name" /newroot || fail "cannot mount the root ($flags)"
echo "LARK-ROOT /dev/mapper/$name UUID=$root $flags"
umount /proc /sys
# /dev/mapper/<name> is the root's /home source too: the devtmpfs moves along.
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
"#;

/// The root's init.
const ROOT_INIT: &str = r#"#!/bin/busybox sh
# The encrypted laptop fixture's root init (tests/qemu/luks.toml): a restored root that boots.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
exec </dev/console >/dev/console 2>&1
echo "LARK-BOOTED $(cat /etc/hostname) root=$(awk '$2=="/"{print $1}' /proc/mounts)"
set -- $(awk '$2=="/home" { print $1, $4 }' /etc/fstab)
home=$1
opts=$2
if [ -n "$home" ] && mount -t btrfs -o "$opts" "$home" /home; then
    echo "LARK-HOME mounted from $home ($opts)"
    sum=$(cd /home && find . -type f | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
    echo "LARK-HOME-SHA256 $sum"
    echo "LARK-UID1000 $(awk -F: '$3==1000{print $1}' /etc/passwd)"
    echo "LIFEBOAT-RUN-EXIT 0"
else
    echo "LARK-HOME not mounted (fstab: '$home' '$opts')"
    cat /etc/fstab
    ls -l /dev/mapper
    echo "LIFEBOAT-RUN-EXIT 1"
fi
sync
poweroff -f
"#;

/// A key for the run: 64 bytes from the kernel's random source.
pub fn new_key() -> Result<Vec<u8>> {
    let mut key = vec![0u8; 64];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .context("reading 64 bytes from /dev/urandom for the fixture's LUKS key")?;
    Ok(key)
}

/// The files for the stick, paths relative to its ESP.
pub fn stick_files(key: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    Ok(vec![
        (format!("{DIR}/pool.key"), key.to_vec()),
        (format!("{DIR}/initrd-luks.img"), initrd(key)?),
        (format!("{DIR}/root-init"), ROOT_INIT.as_bytes().to_vec()),
    ])
}

/// A newc archive with `/init` and the key, zstd-compressed (after the stick's archive the
/// kernel finds compressed data at any offset, see fixture.rs).
fn initrd(key: &[u8]) -> Result<Vec<u8>> {
    super::fixture::zstd_newc(
        &[
            ("init", 0o100_755, INITRD_INIT.as_bytes()),
            ("etc", 0o040_755, b""),
            ("etc/fixture", 0o040_700, b""),
            (KEY_IN_INITRD, 0o100_400, key),
        ],
        MTIME,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initrd_holds_the_init_and_the_key_the_stick_carries() {
        let key = new_key().unwrap();
        assert_ne!(key, new_key().unwrap(), "a key per run");
        let files = stick_files(&key).unwrap();
        let on_stick = |name: &str| {
            files
                .iter()
                .find(|(p, _)| p == &format!("{DIR}/{name}"))
                .map(|(_, b)| b.clone())
                .unwrap()
        };
        assert_eq!(on_stick("pool.key"), key);
        let bytes = zstd::decode_all(&on_stick("initrd-luks.img")[..]).unwrap();
        let mut input = &bytes[..];
        let mut found = Vec::new();
        loop {
            let mut entry = cpio::newc::Reader::new(input).unwrap();
            if entry.entry().is_trailer() {
                break;
            }
            let (name, mode) = (entry.entry().name().to_owned(), entry.entry().mode());
            let mut body = Vec::new();
            entry.read_to_end(&mut body).unwrap();
            found.push((name, mode, body));
            input = entry.finish().unwrap();
        }
        assert_eq!(found[0].0, "init");
        assert_eq!(found[0].1, 0o100_755);
        assert!(String::from_utf8_lossy(&found[0].2).contains("/etc/fixture/pool.key"));
        let k = found.iter().find(|(n, _, _)| n == KEY_IN_INITRD).unwrap();
        assert_eq!((k.1, &k.2), (0o100_400, &key));
    }
}
