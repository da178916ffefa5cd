//! The options the target pool is mounted with while a restore writes into it.
//!
//! Data that arrives as plain writes (btrfs send protocol 1, raw stream files sent without
//! `--compressed-data`, restic) is compressed by the kernel only if the mount says so, so
//! the pool is mounted with the compression the installed system uses; otherwise a
//! restored pool holds uncompressed what the spec wants compressed, and stays so.

use crate::spec::Partition;

/// `subvolid=5` (the top, where every subvolume is received), plus the spec's compression
/// option ([`compression`]) when it names one: `subvolid=5,compress=zstd:1`.
pub fn for_receiving(pool: &Partition) -> String {
    match compression(pool) {
        Some(compress) => format!("subvolid=5,{compress}"),
        None => "subvolid=5".to_owned(),
    }
}

/// The `compress[=…]` or `compress-force[=…]` option the installed system writes the pool
/// with, as the spec spells it. Btrfs takes most options, compression among them, from the
/// filesystem's first mount and applies them to every subvolume; at boot that first mount
/// is `/`. So a root subvolume's options decide (the first such root in spec order), else
/// the first other subvolume's, else the partition's own. A subvolume's fstab line carries
/// its own options then the partition's (`boot::fstab`), and of several the kernel keeps
/// the last: the same order is read here.
pub fn compression(pool: &Partition) -> Option<&str> {
    let roots = pool.subvolumes.iter().filter(|s| s.root);
    let others = pool.subvolumes.iter().filter(|s| !s.root);
    roots
        .chain(others)
        .find_map(|sv| last_compression(sv.mount_options.iter().chain(&pool.mount_options)))
        .or_else(|| last_compression(pool.mount_options.iter()))
}

fn last_compression<'a>(options: impl Iterator<Item = &'a String>) -> Option<&'a str> {
    options
        .flat_map(|o| o.split(','))
        .filter(|o| {
            let key = o.split_once('=').map_or(*o, |(key, _)| key);
            key == "compress" || key == "compress-force"
        })
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    /// The pool of configs/atlantis.toml: `compress=zstd:1,noatime` on the partition,
    /// nothing on its subvolumes.
    fn pool() -> Partition {
        let spec = Spec::parse(
            std::path::Path::new("configs/atlantis.toml"),
            include_str!("../../configs/atlantis.toml"),
        )
        .expect("configs/atlantis.toml is valid");
        crate::restore::pool(&spec)
            .expect("atlantis has a pool")
            .part
            .clone()
    }

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|o| (*o).to_owned()).collect()
    }

    #[test]
    fn the_partitions_compression_is_mounted_with() {
        assert_eq!(for_receiving(&pool()), "subvolid=5,compress=zstd:1");
    }

    #[test]
    fn without_a_compression_option_only_the_top_is_named() {
        let mut p = pool();
        p.mount_options = opts(&["noatime", "space_cache=v2"]);
        assert_eq!(compression(&p), None);
        assert_eq!(for_receiving(&p), "subvolid=5");
    }

    #[test]
    fn a_root_subvolumes_option_decides_over_the_others() {
        let mut p = pool();
        p.mount_options = opts(&["noatime"]);
        let home = p.subvolumes.iter().position(|s| !s.root).unwrap();
        let second_root = p.subvolumes.iter().rposition(|s| s.root).unwrap();
        p.subvolumes[home].mount_options = opts(&["compress=zlib:3"]);
        // Only a subvolume that is not a root names one: it is used.
        assert_eq!(compression(&p), Some("compress=zlib:3"));
        // A root names one, though not the first root in spec order: the root's wins.
        p.subvolumes[second_root].mount_options = opts(&["compress-force=zstd:3"]);
        assert_eq!(
            for_receiving(&p),
            "subvolid=5,compress-force=zstd:3",
            "{:?}",
            p.subvolumes
        );
    }

    #[test]
    fn the_partitions_option_comes_last_as_on_the_fstab_line() {
        let mut p = pool();
        let root = p.subvolumes.iter().position(|s| s.root).unwrap();
        p.subvolumes[root].mount_options = opts(&["compress=lzo"]);
        // `subvol=@rootTW,compress=lzo,compress=zstd:1,noatime`: the kernel keeps zstd:1.
        assert_eq!(compression(&p), Some("compress=zstd:1"));
        // Options written together in one string are read one by one.
        p.mount_options = opts(&["noatime,compress,ssd"]);
        assert_eq!(compression(&p), Some("compress"));
        // A look-alike is not a compression option.
        p.mount_options = opts(&["compression=zstd", "nocompress"]);
        p.subvolumes[root].mount_options.clear();
        assert_eq!(compression(&p), None);
    }
}
