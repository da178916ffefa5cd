//! Checks of a restored root (pure): the UUIDs its /etc/fstab names, and who the main
//! user is in its /etc/passwd.

/// `UUID=…` and `PARTUUID=…` sources in an fstab (comments and other sources skipped), as
/// (kind, value): `("UUID", "0b9e…")`.
pub fn fstab_ids(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|source| {
            let (kind, value) = source.split_once('=')?;
            matches!(kind, "UUID" | "PARTUUID")
                .then(|| (kind.to_owned(), value.trim_matches('"').to_owned()))
        })
        .collect()
}

/// The name of the user with this UID in an /etc/passwd.
pub fn user_with_uid(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let id: u32 = fields.next()?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstab_sources() {
        let text = "# <file system> <mount point>\n\
                    UUID=0b9e0ee4 / btrfs subvol=@rootTW 0 0\n\
                    \n  PARTUUID=\"8d4c\" /boot/efi vfat umask=0077 0 2\n\
                    LABEL=BOOT /boot ext4 defaults 0 2\n\
                    tmpfs /tmp tmpfs defaults 0 0\n";
        assert_eq!(
            fstab_ids(text),
            [
                ("UUID".to_owned(), "0b9e0ee4".to_owned()),
                ("PARTUUID".to_owned(), "8d4c".to_owned())
            ]
        );
    }

    #[test]
    fn main_user() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n";
        assert_eq!(user_with_uid(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(user_with_uid(passwd, 1001), None);
        assert_eq!(user_with_uid("garbage\n", 1000), None);
    }
}
