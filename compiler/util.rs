//! Small shared pieces: reading the paths a user names, atomic file
//! writes, a seeded RNG, content hashing.

use crate::error::{At, Error, Result};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// How the temporary files of [`atomic_write`] begin (`.irc-tmp-XXXXXX`),
/// so that a later run can tell the ones a kill left behind from anything
/// else in a folder (see `train::checkpoint::remove_stale_temporaries`).
pub const TEMP_PREFIX: &str = ".irc-tmp-";

/// Write `bytes` to `path` atomically: write a temporary file in the same
/// directory, fsync it, then rename over the target. A reader (or a crash)
/// never sees a half-written file, and the old file survives a failed write
/// (a kill leaves the temporary, named [`TEMP_PREFIX`]`XXXXXX`).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).at(dir.display())?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .at(dir.display())?;
    tmp.write_all(bytes).at(path.display())?;
    // A temporary file is private (0600); the result should look like any
    // other file the user writes: keep the old file's mode, else 0644.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .at(path.display())?;
    }
    tmp.as_file().sync_all().at(path.display())?;
    tmp.persist(path).map_err(|e| e.error).at(path.display())?;
    Ok(())
}

/// What a path a user named turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    File,
    Folder,
}

/// Check a path a user named (or one found in a folder they named) before
/// reading it: it exists, and is a regular file or a folder (through any
/// symbolic links). A FIFO, socket or device is refused because reading it
/// blocks or never ends (`/dev/zero`); a symbolic link loop because it
/// leads nowhere. Every reader of user input goes through here.
pub fn user_path(p: &Path) -> Result<PathKind> {
    path_kind(p).map_err(|why| Error::new(format!("{}: {why}", p.display())))
}

/// Whether anything is at `p` (a symbolic link loop or a FIFO is, and is
/// refused by [`user_path`] when read), where [`Path::exists`] would call a
/// loop "missing".
pub fn is_there(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// [`user_path`]'s check, the reason without the path.
pub fn path_kind(p: &Path) -> std::result::Result<PathKind, String> {
    let meta = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("no such file or folder".into())
        }
        Err(e) if e.raw_os_error() == Some(ELOOP) => {
            return Err("a symbolic link loop; expected a file or folder".into())
        }
        Err(e) => return Err(e.to_string()),
    };
    let t = meta.file_type();
    if t.is_dir() {
        Ok(PathKind::Folder)
    } else if t.is_file() {
        Ok(PathKind::File)
    } else {
        Err(format!(
            "{}, not a regular file; expected a file",
            special_kind(&t)
        ))
    }
}

/// `ELOOP`, too many levels of symbolic links (std has no stable
/// `ErrorKind` for it yet).
#[cfg(target_os = "linux")]
const ELOOP: i32 = 40;
#[cfg(not(target_os = "linux"))]
const ELOOP: i32 = 62;

fn special_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    let _ = t;
    "a special file"
}

/// The bytes of a file a user named, checked by [`user_path`] first; a
/// folder is refused.
pub fn read_user_file(p: &Path) -> Result<Vec<u8>> {
    user_file_bytes(p).map_err(|why| Error::new(format!("{}: {why}", p.display())))
}

/// The text of a file a user named ([`read_user_file`]), which must be UTF-8.
pub fn read_user_text(p: &Path) -> Result<String> {
    user_file_text(p).map_err(|why| Error::new(format!("{}: {why}", p.display())))
}

/// [`read_user_text`], the reason of a failure without the path.
pub fn user_file_text(p: &Path) -> std::result::Result<String, String> {
    String::from_utf8(user_file_bytes(p)?)
        .map_err(|e| format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
}

fn user_file_bytes(p: &Path) -> std::result::Result<Vec<u8>, String> {
    if path_kind(p)? == PathKind::Folder {
        return Err("a folder; expected a file".into());
    }
    std::fs::read(p).map_err(|e| e.to_string())
}

/// Random characters ending a [`StagedDir`]'s name.
const STAGED_SUFFIX: usize = 6;

/// A folder written whole or not at all: everything goes into a temporary
/// sibling (`.irc-tmp-<name>-XXXXXX`), which [`StagedDir::replace`] swaps in
/// for the target only when it is complete. Dropped before that, the
/// temporary is removed and the target is untouched.
pub struct StagedDir {
    tmp: tempfile::TempDir,
    target: std::path::PathBuf,
}

impl StagedDir {
    /// A fresh temporary beside `target`, after [`recover_dir`] of what an
    /// earlier, killed replacement left.
    pub fn new(target: &Path) -> Result<StagedDir> {
        // A file (or FIFO, device) in the folder's place is the user's: it
        // is refused, never moved aside.
        if is_there(target) && user_path(target)? != PathKind::Folder {
            return Err(Error::new(format!(
                "{}: a file; expected a folder to write into",
                target.display()
            )));
        }
        let (parent, name) = split_dir(target)?;
        std::fs::create_dir_all(&parent).at(parent.display())?;
        recover_dir(target)?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{name}-"))
            .rand_bytes(STAGED_SUFFIX)
            .tempdir_in(&parent)
            .at(parent.display())?;
        Ok(StagedDir {
            tmp,
            target: target.to_path_buf(),
        })
    }

    /// Where to write the folder's files.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Put the complete folder in the target's place: the old folder is
    /// renamed aside (`.irc-tmp-<name>.old`), the new one renamed in, the old
    /// one removed. A kill between the two renames leaves the old folder
    /// aside, which the next [`StagedDir::new`] puts back.
    ///
    /// An old folder holding an entry the new one lacks (a file the user put
    /// there), other than those `droppable` names, is not replaced: that is
    /// an error naming it, and nothing changes.
    pub fn replace(self, droppable: impl Fn(&str) -> bool) -> Result<()> {
        let foreign = self.foreign_entries(&droppable)?;
        if let Some(first) = foreign.first() {
            return Err(crate::Error::new(format!(
                "{}: holds `{first}`{}, which a build does not write; a build replaces the whole folder, so move {} out or build into another folder",
                self.target.display(),
                if foreign.len() > 1 { format!(" and {} more", foreign.len() - 1) } else { String::new() },
                if foreign.len() > 1 { "them" } else { "it" },
            )));
        }
        let aside = aside_path(&self.target)?;
        let had_old = self.target.exists();
        if had_old {
            std::fs::rename(&self.target, &aside).at(self.target.display())?;
        }
        let staged = self.tmp.keep();
        // A temporary folder is private (0700); the build folder should look
        // like any other the user makes.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(&staged, mode).at(staged.display())?;
        }
        if let Err(e) = std::fs::rename(&staged, &self.target) {
            // Undo: the old folder back, the new one gone.
            if had_old {
                let _ = std::fs::rename(&aside, &self.target);
            }
            let _ = std::fs::remove_dir_all(&staged);
            return Err(e).at(self.target.display());
        }
        if had_old {
            std::fs::remove_dir_all(&aside).at(aside.display())?;
        }
        Ok(())
    }
}

impl StagedDir {
    /// Names in the target folder that are neither in the staged one nor
    /// `droppable`, sorted.
    fn foreign_entries(&self, droppable: &impl Fn(&str) -> bool) -> Result<Vec<String>> {
        let Ok(rd) = std::fs::read_dir(&self.target) else {
            return Ok(vec![]);
        };
        let mut v = vec![];
        for e in rd {
            let name = e.at(self.target.display())?.file_name();
            let name = name.to_string_lossy().to_string();
            if !self.path().join(&name).exists() && !droppable(&name) {
                v.push(name);
            }
        }
        v.sort();
        Ok(v)
    }
}

/// `dir`'s parent (`.` for a bare name) and its name.
fn split_dir(dir: &Path) -> Result<(std::path::PathBuf, String)> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| crate::Error::new(format!("{}: not a folder name", dir.display())))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    Ok((parent, name.to_string()))
}

/// Where [`StagedDir::replace`] puts the old folder while it swaps.
fn aside_path(dir: &Path) -> Result<std::path::PathBuf> {
    let (parent, name) = split_dir(dir)?;
    Ok(parent.join(format!("{TEMP_PREFIX}{name}.old")))
}

/// Undo what a kill during a [`StagedDir`]'s life left beside `dir`: the old
/// folder renamed aside goes back if `dir` is missing (else it is removed),
/// and unfinished temporaries are removed. Returns what it removed.
pub fn recover_dir(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let (parent, name) = split_dir(dir)?;
    let aside = aside_path(dir)?;
    if aside.is_dir() && !dir.exists() {
        std::fs::rename(&aside, dir).at(dir.display())?;
    }
    let mut removed = vec![];
    let Ok(rd) = std::fs::read_dir(&parent) else {
        return Ok(removed);
    };
    // `.irc-tmp-<name>-XXXXXX` exactly: not the temporaries of a sibling
    // whose name starts with this one's (`build-gen` beside `build`).
    let staged = format!("{TEMP_PREFIX}{name}-");
    for e in rd.flatten() {
        let file = e.file_name();
        let Some(file) = file.to_str() else { continue };
        let of_this = file.strip_prefix(&staged).is_some_and(|suffix| {
            suffix.len() == STAGED_SUFFIX && suffix.chars().all(|c| c.is_ascii_alphanumeric())
        });
        let ours = of_this || e.path() == aside;
        if ours && e.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(e.path()).at(e.path().display())?;
            removed.push(e.path());
        }
    }
    Ok(removed)
}

/// Hex SHA-256 of a byte string (build cache keys, data manifests).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    hex_digest(h)
}

/// The hex SHA-256 of what `h` was fed (a file hashed as it streams past).
pub fn hex_digest(h: Sha256) -> String {
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A small, fast, seedable RNG (SplitMix64 seeding a xoshiro256**).
/// Deterministic across platforms, so a seed reproduces runs exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The full state, for checkpoints.
    pub fn state(&self) -> [u64; 4] {
        self.s
    }

    pub fn from_state(s: [u64; 4]) -> Self {
        Rng { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}
