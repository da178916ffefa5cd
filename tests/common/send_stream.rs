//! A writer of `btrfs send` streams, command by command, for tests that need streams no
//! kernel would send (paths that climb out, symlinks written through, absolute subvolume
//! names). The format is btrfs-progs' `kernel-shared/send.h`: the magic `btrfs-stream\0`
//! and a u32 version, then commands: u32 payload length, u16 command, u32 CRC-32C of the
//! whole command computed with the CRC field zero, then TLV attributes (u16 type, u16
//! length, data). `btrfs receive` checks every CRC, so these streams pass `--dump`.

pub const SUBVOL: u16 = 1;
pub const SNAPSHOT: u16 = 2;
pub const MKFILE: u16 = 3;
pub const MKDIR: u16 = 4;
pub const SYMLINK: u16 = 8;
pub const RENAME: u16 = 9;
pub const WRITE: u16 = 15;
pub const END: u16 = 21;

pub const A_UUID: u16 = 1;
pub const A_CTRANSID: u16 = 2;
pub const A_INO: u16 = 3;
pub const A_PATH: u16 = 15;
pub const A_PATH_TO: u16 = 16;
pub const A_PATH_LINK: u16 = 17;
pub const A_FILE_OFFSET: u16 = 18;
pub const A_DATA: u16 = 19;
pub const A_CLONE_UUID: u16 = 20;
pub const A_CLONE_CTRANSID: u16 = 21;

/// btrfs' crc32c(0, …): the Castagnoli polynomial, reflected, seed 0 and no final xor
/// (not the usual ~0 seed).
const BTRFS_CRC32C: crc::Algorithm<u32> = crc::Algorithm {
    width: 32,
    poly: 0x1edc_6f41,
    init: 0,
    refin: true,
    refout: true,
    xorout: 0,
    check: 0,
    residue: 0,
};

pub struct SendStream {
    bytes: Vec<u8>,
    next_ino: u64,
}

impl SendStream {
    /// A version-1 stream whose first command makes the subvolume `name`.
    pub fn subvol(name: &str, uuid: [u8; 16]) -> SendStream {
        let mut s = SendStream::header();
        s.command(
            SUBVOL,
            &[
                (A_PATH, name.as_bytes()),
                (A_UUID, &uuid),
                (A_CTRANSID, &7u64.to_le_bytes()),
            ],
        );
        s
    }

    /// A version-1 incremental stream: `name` made as a snapshot of the subvolume whose
    /// UUID (or received UUID) is `parent`.
    pub fn snapshot(name: &str, uuid: [u8; 16], parent: [u8; 16]) -> SendStream {
        let mut s = SendStream::header();
        s.command(
            SNAPSHOT,
            &[
                (A_PATH, name.as_bytes()),
                (A_UUID, &uuid),
                (A_CTRANSID, &9u64.to_le_bytes()),
                (A_CLONE_UUID, &parent),
                (A_CLONE_CTRANSID, &7u64.to_le_bytes()),
            ],
        );
        s
    }

    fn header() -> SendStream {
        let mut bytes = b"btrfs-stream\0".to_vec();
        bytes.extend(1u32.to_le_bytes());
        SendStream {
            bytes,
            next_ino: 257,
        }
    }

    pub fn command(&mut self, cmd: u16, attrs: &[(u16, &[u8])]) -> &mut SendStream {
        let mut payload = Vec::new();
        for (ty, data) in attrs {
            payload.extend(ty.to_le_bytes());
            payload.extend(u16::try_from(data.len()).unwrap().to_le_bytes());
            payload.extend(*data);
        }
        let mut cmd_bytes = Vec::with_capacity(10 + payload.len());
        cmd_bytes.extend(u32::try_from(payload.len()).unwrap().to_le_bytes());
        cmd_bytes.extend(cmd.to_le_bytes());
        cmd_bytes.extend(0u32.to_le_bytes());
        cmd_bytes.extend(payload);
        let crc = crc::Crc::<u32>::new(&BTRFS_CRC32C).checksum(&cmd_bytes);
        cmd_bytes[6..10].copy_from_slice(&crc.to_le_bytes());
        self.bytes.extend(cmd_bytes);
        self
    }

    fn ino(&mut self) -> [u8; 8] {
        self.next_ino += 1;
        (self.next_ino - 1).to_le_bytes()
    }

    pub fn mkdir(&mut self, path: &str) -> &mut SendStream {
        let ino = self.ino();
        self.command(MKDIR, &[(A_PATH, path.as_bytes()), (A_INO, &ino)])
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut SendStream {
        let ino = self.ino();
        self.command(
            SYMLINK,
            &[
                (A_PATH, path.as_bytes()),
                (A_INO, &ino),
                (A_PATH_LINK, target.as_bytes()),
            ],
        )
    }

    pub fn rename(&mut self, from: &str, to: &str) -> &mut SendStream {
        self.command(
            RENAME,
            &[(A_PATH, from.as_bytes()), (A_PATH_TO, to.as_bytes())],
        )
    }

    /// mkfile, then one write of `data` at offset 0.
    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut SendStream {
        let ino = self.ino();
        self.command(MKFILE, &[(A_PATH, path.as_bytes()), (A_INO, &ino)]);
        self.command(
            WRITE,
            &[
                (A_PATH, path.as_bytes()),
                (A_FILE_OFFSET, &0u64.to_le_bytes()),
                (A_DATA, data),
            ],
        )
    }

    pub fn end(&mut self) -> Vec<u8> {
        self.command(END, &[]);
        self.bytes.clone()
    }
}
