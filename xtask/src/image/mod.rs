//! `cargo xtask image`: the rescue USB image, built from images/rescue.toml.
//!
//! Steps: package lists per source (cached) → dependency closure → .deb downloads
//! (cached, verified) → staging root (dpkg-deb -x, strip, kernel modules + depmod,
//! rootfs/ overlay, static lifeboat, configs; every module's signature checked) → initramfs
//! (cpio newc + zstd) → GPT + FAT32 image with the signed chain shim → GRUB → kernel,
//! checked by sgdisk and fsck.vfat, renamed into place.

mod apt;
mod config;
pub mod disk;
mod host_apt;
mod initramfs;
pub mod iso;
mod kernel;
pub mod netboot;
mod rootfs;
pub mod signed;
pub mod verify;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use xshell::{cmd, Shell};

use crate::{project_root, run_quiet, target_dir};
use apt::AptRoot;
use config::Rescue;

pub const DEFINITION: &str = "images/rescue.toml";
/// The spec the image carries as /etc/lifeboat/spec.toml.
const IMAGE_SPEC: &str = "configs/atlantis.toml";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Where to write the image; default target/images/<image.file>.
    pub output: Option<PathBuf>,
    /// Fetch new package lists even when cached ones exist.
    pub refresh: bool,
    /// Package lists, downloads and staging here instead of target/image-cache (the
    /// image bench's cold build).
    pub cache: Option<PathBuf>,
}

pub struct Report {
    pub path: PathBuf,
    pub size: u64,
    /// The hybrid ISO beside the image.
    pub iso: PathBuf,
    pub iso_size: u64,
    pub initrd_compressed: u64,
    pub initrd_raw: u64,
    pub sha256: String,
    pub iso_sha256: String,
    /// The netboot (TFTP) directory beside the image.
    pub netboot: PathBuf,
    pub elapsed: Duration,
}

pub fn cache_dir() -> PathBuf {
    target_dir().join("image-cache")
}

/// Where `cargo xtask image` writes the image when not told otherwise.
pub fn default_output() -> Result<PathBuf> {
    let rescue = Rescue::load(&project_root().join(DEFINITION))?;
    Ok(target_dir().join("images").join(&rescue.image.file))
}

pub fn run(sh: &Shell, options: &Options) -> Result<()> {
    let report = build(sh, options)?;
    print_report(&report);
    verify::checked(sh, &report.path)
}

pub fn print_report(r: &Report) {
    println!("image: {}", r.path.display());
    println!(
        "image: size {:.1} MiB, initramfs {:.1} MiB zstd ({:.1} MiB uncompressed), built in {:.1} s",
        mib(r.size),
        mib(r.initrd_compressed),
        mib(r.initrd_raw),
        r.elapsed.as_secs_f64()
    );
    println!("image: sha256 {}", r.sha256);
    println!(
        "image: ISO {} ({:.1} MiB), sha256 {}",
        r.iso.display(),
        mib(r.iso_size),
        r.iso_sha256
    );
    println!("image: netboot directory {}", r.netboot.display());
}

/// Copy the named files and directories of an unpacked firmware package into the live
/// root's /lib/firmware; returns the bytes copied.
fn install_firmware(from: &Path, paths: &[String], live: &Path) -> Result<u64> {
    let to = live.join("lib/firmware");
    let mut bytes = 0;
    for p in paths {
        let (src, dst) = (from.join(p), to.join(p));
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        if src.is_dir() {
            fs::create_dir_all(&dst)?;
            rootfs::overlay(&src, &dst)?;
        } else if src.is_file() {
            fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
        } else {
            bail!("the package has no lib/firmware/{p} (images/rescue.toml [[firmware]])");
        }
        bytes += du(&dst);
    }
    Ok(bytes)
}

fn du(path: &Path) -> u64 {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::read_dir(path)
            .map(|es| es.flatten().map(|e| du(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) if m.is_file() => m.len(),
        _ => 0,
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// The restic the rescue image carries (from the package set of images/rescue.toml that
/// names it), unpacked under the image cache: the benches run the same version the
/// rescue system does. Returns the binary's path.
pub fn restic_binary(sh: &Shell) -> Result<PathBuf> {
    let rescue = Rescue::load(&project_root().join(DEFINITION))?;
    let set = rescue
        .packages
        .iter()
        .find(|set| set.names.iter().any(|n| n == "restic"))
        .context("images/rescue.toml has no package set with restic")?;
    let cache = cache_dir();
    let source = &rescue.sources[&set.source];
    let root = AptRoot::new(&cache, &set.source);
    let host = host_apt::read_host();
    let lines = source
        .suites
        .iter()
        .map(|suite| host_apt::line_for(&host, suite, &source.components))
        .collect::<Result<Vec<_>>>()?;
    root.prepare(sh, &lines, false)?;
    let deb = root.fetch(sh, &["restic".to_owned()], &cache.join("debs"))?;
    let dir = cache.join("work").join("restic");
    let _ = fs::remove_dir_all(&dir);
    rootfs::extract(sh, &deb, &dir)?;
    let bin = dir.join("usr/bin/restic");
    if !bin.is_file() {
        bail!("the restic package has no usr/bin/restic");
    }
    Ok(bin)
}

pub fn build(sh: &Shell, options: &Options) -> Result<Report> {
    let start = Instant::now();
    let root_dir = project_root();
    let rescue = Rescue::load(&root_dir.join(DEFINITION))?;
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH `{v}` is not a number of seconds"))?,
        Err(_) => rescue.image.source_date_epoch,
    };
    let output = match &options.output {
        Some(p) => p.clone(),
        None => default_output()?,
    };
    let cache = options.cache.clone().unwrap_or_else(cache_dir);
    let work = cache.join("work");
    let debs = cache.join("debs");

    // Package lists, one private apt state per source.
    let mut roots = std::collections::BTreeMap::new();
    for (name, source) in &rescue.sources {
        let root = AptRoot::new(&cache, name);
        let host = host_apt::read_host();
        let lines = source
            .suites
            .iter()
            .map(|suite| host_apt::line_for(&host, suite, &source.components))
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("images/rescue.toml [sources.{name}]"))?;
        root.prepare(sh, &lines, options.refresh)?;
        roots.insert(name.clone(), root);
    }
    let exclude: BTreeSet<String> = rescue.exclude.names.iter().cloned().collect();

    // The live root's packages: the first set, then each further set with what earlier
    // sets chose counting as provided.
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    let mut live_debs = Vec::new();
    for set in &rescue.packages {
        let root = &roots[&set.source];
        let closure = root.resolve(sh, &set.names, &chosen, &exclude)?;
        let names: Vec<String> = closure.iter().cloned().collect();
        live_debs.extend(root.fetch(sh, &names, &debs)?);
        chosen.extend(closure);
    }
    println!(
        "image: {} packages in the live root ({:.1} s)",
        chosen.len(),
        start.elapsed().as_secs_f64()
    );

    // The kernel: the metapackage's linux-image-<version> dependency.
    let kroot = &roots[&rescue.kernel.source];
    let kpkg = kernel_package(sh, kroot, &rescue.kernel.package)?;
    let kdeb = kroot.fetch(sh, &[kpkg], &debs)?;
    let kdir = work.join("kernel");
    // The kernel package unpacks to ~400 MB of modules: keep the unpacked tree while the
    // package is the same one (the stamp is written only after a complete unpack).
    let stamp = work.join("kernel.from");
    let from = kdeb[0].display().to_string();
    if fs::read_to_string(&stamp).ok().as_deref() != Some(from.as_str()) {
        let _ = fs::remove_file(&stamp);
        rootfs::extract(sh, &kdeb, &kdir)?;
        kernel::Kernel::find(sh, &kdir)?;
        fs::write(&stamp, &from).with_context(|| format!("writing {}", stamp.display()))?;
    }
    let kernel = kernel::Kernel::find(sh, &kdir)?;
    if !kernel.has_config("CONFIG_RD_ZSTD") {
        bail!(
            "kernel {} cannot unpack a zstd initramfs (no CONFIG_RD_ZSTD)",
            kernel.version
        );
    }

    // The signed boot chain, each file out of its Debian package.
    let broot = &roots[&rescue.boot.source];
    let mut unpacked = BTreeSet::new();
    let mut signed_from = |root: &AptRoot, package: &String, from: &str| -> Result<Vec<u8>> {
        let dir = work.join("boot").join(package);
        if unpacked.insert(package.clone()) {
            let deb = root.fetch(sh, std::slice::from_ref(package), &debs)?;
            rootfs::extract(sh, &deb, &dir)?;
        }
        let bytes =
            fs::read(dir.join(from)).with_context(|| format!("package {package} has no {from}"))?;
        signed::check_pe_signed(&bytes)
            .with_context(|| format!("{from} from package {package}"))?;
        Ok(bytes)
    };
    let mut loaders = Vec::new();
    for file in &rescue.boot.files {
        loaders.push((
            file.to.clone(),
            signed_from(broot, &file.package, &file.from)?,
        ));
    }
    let net = &rescue.boot.netboot;
    let netgrub = signed_from(broot, &net.package, &net.from)?;
    let mut machine_chain = Vec::new();
    for file in &rescue.boot.machine {
        let root = roots.get(&file.source).with_context(|| {
            format!(
                "images/rescue.toml [[boot.machine]] names no source `{}`",
                file.source
            )
        })?;
        machine_chain.push((
            file.to.clone(),
            signed_from(root, &file.package, &file.from)?,
        ));
    }

    // The static lifeboat first: a compile error should not wait for the staging.
    let lifeboat = build_static_lifeboat(sh)?;
    println!(
        "image: static lifeboat built ({:.1} s)",
        start.elapsed().as_secs_f64()
    );

    // The staging root.
    let live = work.join("root");
    rootfs::extract(sh, &live_debs, &live)?;
    rootfs::strip(&live)?;
    let modules =
        kernel.install_modules(sh, &rescue.kernel.modules, &rescue.kernel.trees, &live)?;
    for t in &modules.trees {
        println!(
            "image: kernel tree {}: {} modules, {:.1} MiB uncompressed",
            t.name,
            t.modules,
            mib(t.bytes)
        );
    }
    println!("image: {} kernel modules in all", modules.modules);
    let load = modules.load;
    for fw in &rescue.firmware {
        let deb = roots[&fw.source].fetch(sh, std::slice::from_ref(&fw.package), &debs)?;
        let dir = work.join("firmware").join(&fw.package);
        rootfs::extract(sh, &deb, &dir)?;
        let bytes = install_firmware(&dir.join("lib/firmware"), &fw.paths, &live)
            .with_context(|| format!("firmware from {}", fw.package))?;
        println!(
            "image: firmware {} ({}): {:.1} MiB uncompressed",
            fw.package,
            fw.paths.join(", "),
            mib(bytes)
        );
    }
    // Under Secure Boot the kernel locks down and loads only signed modules: a module that
    // lost its appended signature on the way (stripped, recompressed) would be refused.
    let modules = signed::check_modules_signed(&live.join("lib/modules").join(&kernel.version))?;
    rootfs::overlay(&root_dir.join(&rescue.rootfs.overlay), &live)?;
    rootfs::fixups(&live)?;
    fs::create_dir_all(live.join("etc/lifeboat"))?;
    fs::write(live.join("etc/lifeboat/modules"), load.join("\n") + "\n")?;
    rootfs::overlay(&root_dir.join("configs"), &live.join("etc/lifeboat"))?;
    // The spec `lifeboat menu` and `esp-sync` use when given none (LIFEBOAT_SPEC and
    // lifeboat/spec.toml on the stick come first).
    fs::copy(
        root_dir.join(IMAGE_SPEC),
        live.join("etc/lifeboat/spec.toml"),
    )
    .with_context(|| format!("copying {IMAGE_SPEC} to /etc/lifeboat/spec.toml"))?;
    fs::copy(&lifeboat, live.join("usr/bin/lifeboat")).context("copying lifeboat")?;
    for (to, bytes) in &machine_chain {
        let path = live.join(to);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    for needed in ["init", "bin/busybox", "usr/bin/lifeboat"] {
        if !live.join(needed).exists() {
            bail!("the live root has no /{needed}");
        }
    }

    println!(
        "image: live root staged, {modules} kernel modules all signed ({:.1} s)",
        start.elapsed().as_secs_f64()
    );
    let initrd = initramfs::build(&live, epoch, rescue.image.zstd_level)?;
    println!(
        "image: initramfs of {} entries, {:.1} MiB compressed ({:.1} s)",
        initrd.entries,
        mib(initrd.compressed.len() as u64),
        start.elapsed().as_secs_f64()
    );

    let vmlinuz = fs::read(&kernel.vmlinuz)
        .with_context(|| format!("reading {}", kernel.vmlinuz.display()))?;
    signed::check_pe_signed(&vmlinuz)
        .with_context(|| format!("kernel {}", kernel.vmlinuz.display()))?;
    let iso = iso_path(&output);
    iso::write(
        sh,
        &iso,
        &work.join("iso"),
        &iso::Inputs {
            loaders: &loaders,
            config: &rescue.boot.config,
            cmdline: &rescue.image.cmdline,
            vmlinuz: &vmlinuz,
            initrd: &initrd.compressed,
            label: &rescue.image.label,
            volume_id: rescue.image.fat_volume_id,
            epoch,
        },
    )?;
    let iso_bytes = fs::read(&iso).with_context(|| format!("reading {}", iso.display()))?;
    let netboot_dir = netboot::dir_for(&output);
    netboot::write(
        &netboot_dir,
        &netboot::files(
            &loaders,
            &netgrub,
            &net.config,
            &rescue.image.cmdline,
            &vmlinuz,
            &initrd.compressed,
        ),
    )?;
    let files = esp_files(&rescue, loaders, vmlinuz, initrd.compressed.clone());
    let content: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    let layout = disk::layout(
        content,
        rescue.image.free_mib << 20,
        rescue.image.max_size_mib << 20,
    )?;
    let id = disk::Identity {
        label: &rescue.image.label,
        volume_id: rescue.image.fat_volume_id,
        disk_guid: &rescue.image.disk_guid,
        esp_guid: &rescue.image.esp_guid,
        mtime: epoch,
    };
    disk::write(sh, &output, layout, &id, &files)?;

    let bytes = fs::read(&output).with_context(|| format!("reading {}", output.display()))?;
    Ok(Report {
        size: bytes.len() as u64,
        sha256: apt::hex(&Sha256::digest(&bytes)),
        path: output,
        iso,
        iso_size: iso_bytes.len() as u64,
        iso_sha256: apt::hex(&Sha256::digest(&iso_bytes)),
        netboot: netboot_dir,
        initrd_compressed: initrd.compressed.len() as u64,
        initrd_raw: initrd.raw_len,
        elapsed: start.elapsed(),
    })
}

/// The hybrid ISO is written beside the raw image: `lifeboat-rescue.img` → `.iso`.
pub fn iso_path(image: &Path) -> PathBuf {
    image.with_extension("iso")
}

/// linux-image-amd64 depends on exactly the versioned package that holds the kernel.
fn kernel_package(sh: &Shell, root: &AptRoot, meta: &str) -> Result<String> {
    root.require(sh, &[meta.to_owned()])?;
    let closure = root.resolve(sh, &[meta.to_owned()], &BTreeSet::new(), &BTreeSet::new())?;
    let versioned: Vec<&String> = closure
        .iter()
        .filter(|p| p.starts_with("linux-image-") && p.as_str() != meta)
        .collect();
    match versioned.as_slice() {
        [one] => Ok((*one).clone()),
        _ => bail!("`{meta}` does not lead to exactly one linux-image-<version> package"),
    }
}

/// The ESP's files: the signed loaders, GRUB's configuration, kernel, initramfs, the
/// `lifeboat/` folder.
fn esp_files(
    rescue: &Rescue,
    loaders: Vec<(String, Vec<u8>)>,
    vmlinuz: Vec<u8>,
    initrd: Vec<u8>,
) -> Vec<(String, Vec<u8>)> {
    // A systemd-boot configuration for the rescue system, unused by the stick itself: with
    // vmlinuz and initrd.img, copied onto a machine's ESP that has systemd-boot, it starts
    // the rescue system from that disk (the QEMU scenarios esp-failover and esp-4kn do).
    let loader_conf = "timeout 0\ndefault lifeboat.conf\neditor no\n";
    let entry = format!(
        "title lifeboat rescue\nlinux /vmlinuz\ninitrd /initrd.img\noptions {}\n",
        rescue.image.cmdline
    );
    let mut files = loaders;
    files.extend([
        (
            rescue.boot.config.clone(),
            grub_cfg(&rescue.image.cmdline).into(),
        ),
        ("loader/loader.conf".to_owned(), loader_conf.into()),
        ("loader/entries/lifeboat.conf".to_owned(), entry.into()),
        ("vmlinuz".to_owned(), vmlinuz),
        ("initrd.img".to_owned(), initrd),
        (
            "lifeboat/README.txt".to_owned(),
            RUN_README.replace('\n', "\r\n").into(),
        ),
    ]);
    files
}

/// The kernel command line parameter that names the partition GRUB started from.
pub const BOOT_PARTUUID_PARAM: &str = "lifeboat.boot_partuuid";

/// GRUB's configuration: no menu, straight into the kernel. systemd-boot told the init
/// which partition it came from (LoaderDevicePartUUID); GRUB sets no such variable, so the
/// partition's GPT GUID goes on the command line (`$root` is the partition GRUB itself was
/// loaded from). Should `probe` find nothing the parameter is empty and the init falls
/// back to the FAT label.
pub fn grub_cfg(cmdline: &str) -> String {
    format!(
        "# The lifeboat rescue stick (written by `cargo xtask image`; docs/rescue-image.md).\n\
         set timeout=0\n\
         set default=0\n\
         probe --set=lifeboat_part --part-uuid ($root)\n\
         export lifeboat_part\n\
         menuentry \"lifeboat rescue\" {{\n\
         \tlinux /vmlinuz {cmdline} {BOOT_PARTUUID_PARAM}=$lifeboat_part\n\
         \tinitrd /initrd.img\n\
         }}\n"
    )
}

const RUN_README: &str = "\
lifeboat rescue stick
=====================

Put a file named `run` into this folder to make the stick work on its own: at boot,
instead of the rescue menu, the live system prints LIFEBOAT-RUN-START, runs the file
with `sh -e` (its output goes to the screen and the serial port), prints
LIFEBOAT-RUN-EXIT <status> and powers the machine off. Delete the file to get the menu
back. This folder is mounted read-only at /run/lifeboat/boot while the script runs.

Example `run` (Unix line endings):

    lifeboat provision /etc/lifeboat/atlantis.toml --yes
";

/// `cargo build --release` of lifeboat, statically linked (DESIGN.md: crt-static needs an
/// explicit --target, or proc-macros break).
fn build_static_lifeboat(sh: &Shell) -> Result<PathBuf> {
    let triple = "x86_64-unknown-linux-gnu";
    let built = cmd!(
        sh,
        "cargo build --release --target {triple} --package lifeboat --bin lifeboat"
    )
    // getrandom (uuid's source of random GUIDs) finds glibc's getrandom() with dlsym,
    // which a static binary cannot do; it then waits in poll() on /dev/random for the
    // entropy pool, which on a fresh boot without RDRAND (QEMU's default CPU) takes
    // minutes. The linux_getrandom backend calls getrandom(2) directly, and a blocking
    // getrandom(2) makes the kernel gather jitter entropy in about a second.
    .env(
        "RUSTFLAGS",
        "-C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\"",
    )
    .quiet()
    .run();
    if built.is_err() {
        bail!("could not build the static lifeboat (cargo's errors are above)");
    }
    let bin = target_dir().join(triple).join("release/lifeboat");
    let said = run_quiet(cmd!(sh, "file -b {bin}"))?;
    if !said.contains("statically linked") && !said.contains("static-pie linked") {
        bail!(
            "{} is not statically linked: file says {}",
            bin.display(),
            said.trim()
        );
    }
    Ok(bin)
}

/// Write `lifeboat/run` onto the ESP of a copy of an image: how the QEMU harness (and a
/// user) makes the stick run a script instead of the menu.
pub fn write_run_file(image: &Path, script: &str, mtime: u64) -> Result<()> {
    write_esp_files(
        image,
        &[("lifeboat/run".to_owned(), script.as_bytes().to_vec())],
        mtime,
    )
}

/// Write (or overwrite) files on the ESP of an image this module made.
pub fn write_esp_files(image: &Path, files: &[(String, Vec<u8>)], mtime: u64) -> Result<()> {
    let (offset, len) = disk::find_esp(image)?;
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .with_context(|| format!("opening {}", image.display()))?;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    lifeboat::apply::fat::write_files(&mut file, offset, len, files, mtime)
        .with_context(|| format!("writing {} into {}", names.join(", "), image.display()))
}

/// A file from the ESP of an image this module made.
pub fn read_esp_file(image: &Path, path: &str) -> Result<Vec<u8>> {
    let (offset, len) = disk::find_esp(image)?;
    let mut file = fs::File::open(image).with_context(|| format!("opening {}", image.display()))?;
    lifeboat::apply::fat::read_file(&mut file, offset, len, path)
        .with_context(|| format!("reading {path} from {}", image.display()))
}

/// Replace the stick's `EFI/BOOT/BOOTX64.EFI` (shim) by the same binary without its
/// signature: what firmware with Secure Boot on must refuse.
pub fn unsign_loader(image: &Path, mtime: u64) -> Result<()> {
    let loader = "EFI/BOOT/BOOTX64.EFI";
    let signed = read_esp_file(image, loader)?;
    let plain = signed::strip_signature(&signed).context(loader)?;
    write_esp_files(image, &[(loader.to_owned(), plain)], mtime)
}

/// Put one more file onto a copy of the image's ESP (the QEMU harness: a test CA).
pub fn write_stick_file(image: &Path, name: &str, bytes: &[u8], mtime: u64) -> Result<()> {
    let (offset, len) = disk::find_esp(image)?;
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .with_context(|| format!("opening {}", image.display()))?;
    lifeboat::apply::fat::write_files(
        &mut file,
        offset,
        len,
        &[(name.to_owned(), bytes.to_vec())],
        mtime,
    )
    .with_context(|| format!("writing {name} into {}", image.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small image through the real writer (checked by sgdisk and fsck.vfat inside
    /// `disk::write`), then a run file added and read back by an independent tool.
    #[test]
    fn an_image_takes_a_run_file() {
        let sh = Shell::new().unwrap();
        let dir = std::env::temp_dir().join(format!("xtask-image-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let out = dir.join("small.img");
        let layout = disk::layout(1 << 20, 0, 128 << 20).unwrap();
        let id = disk::Identity {
            label: "LIFEBOAT",
            volume_id: 0x1234_5678,
            disk_guid: "6C696665-626F-6174-0000-726573637565",
            esp_guid: "6C696665-626F-6174-0001-726573637565",
            mtime: 1_767_225_600,
        };
        let files = vec![("lifeboat/README.txt".to_owned(), b"read me".to_vec())];
        disk::write(&sh, &out, layout, &id, &files).unwrap();
        let first = fs::read(&out).unwrap();
        disk::write(&sh, &out, layout, &id, &files).unwrap();
        assert_eq!(first, fs::read(&out).unwrap(), "same inputs, same bytes");
        assert!(!dir.join(".small.img.tmp").exists());

        write_run_file(&out, "echo hi\n", 1_767_225_600).unwrap();
        let spec = format!("{}@@1M", out.display());
        let listed = run_quiet(cmd!(sh, "mdir -b -i {spec} ::lifeboat")).unwrap();
        assert!(listed.contains("RUN") || listed.contains("run"), "{listed}");
        let (offset, len) = disk::find_esp(&out).unwrap();
        let mut file = fs::File::open(&out).unwrap();
        let back = lifeboat::apply::fat::read_file(&mut file, offset, len, "lifeboat/run").unwrap();
        assert_eq!(back, b"echo hi\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_output_is_one_clear_error() {
        let sh = Shell::new().unwrap();
        let layout = disk::layout(1 << 20, 0, 128 << 20).unwrap();
        let id = disk::Identity {
            label: "LIFEBOAT",
            volume_id: 1,
            disk_guid: "6C696665-626F-6174-0000-726573637565",
            esp_guid: "6C696665-626F-6174-0001-726573637565",
            mtime: 0,
        };
        // /proc refuses new files even to root.
        let err = disk::write(&sh, Path::new("/proc/lifeboat.img"), layout, &id, &[]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("cannot write the image in /proc"), "{msg}");
        assert!(!Path::new("/proc/lifeboat.img").exists());
    }
}
