//! Training checkpoints: safetensors files that hold the weights under
//! their Hugging Face names, the AdamW moments as `optimizer.m.<name>` /
//! `optimizer.v.<name>`, and as metadata the step, the batcher's state, the
//! spec's build hash and a checksum.
//!
//! - **Byte-reproducible**: the metadata keys are sorted and the tensors in
//!   name order ([`Weights::to_bytes`]), so the same state gives the same
//!   bytes in every process.
//! - **Checksummed**: `irc.sha256` is the SHA-256 of the whole file as
//!   written with that value set to 64 zeros
//!   ([`Weights::to_sealed_bytes`]); every read of it
//!   ([`Weights::from_bytes`], so also `irc generate` and `irc export`)
//!   recomputes it and refuses a file that differs in any byte.
//! - **Atomic**: written through [`crate::util::atomic_write`]; a kill
//!   leaves at most a temporary file, which [`remove_stale_temporaries`]
//!   deletes at the start of the next training run.
//! - **Resumed from the newest valid one**: [`resume`] tries
//!   `latest.safetensors` and `checkpoints/step-*.safetensors` newest first
//!   and says which it skipped and why.

use crate::data::prep::{Batcher, BatcherState};
use crate::error::{At, Error, Result};
use crate::rundir::RunDir;
use crate::runtime::{ParamEntry, Session, Weights};
use crate::spec::Spec;
use crate::util::{atomic_write, TEMP_PREFIX};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The step the checkpoint was taken after.
pub const META_STEP: &str = "irc.step";
/// The batcher's state (JSON), so the next batch is the one that would have come.
pub const META_BATCHER: &str = "irc.batcher";
/// [`Spec::build_hash`] of the spec that trained it.
pub const META_SPEC: &str = "irc.spec_hash";
pub use crate::runtime::weights::META_SHA256;

/// A checkpoint read and checked, not yet applied to a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub step: usize,
    pub batcher: BatcherState,
    /// Every parameter, and the optimizer tensors.
    pub weights: Weights,
}

/// Write a checkpoint of the session's state (atomically: a reader sees the
/// old file or the new one).
pub fn save(
    s: &mut Session,
    spec: &Spec,
    step: usize,
    batcher: &BatcherState,
    path: &Path,
) -> Result<()> {
    let mut w = s.weights();
    let table = s.library().param_table.clone();
    let n = s.library().num_params;
    let opt = s.opt_state_mut()?.to_vec();
    for p in &table {
        for (i, which) in ["m", "v"].iter().enumerate() {
            let at = i * n + p.offset;
            w.insert(
                &format!("optimizer.{which}.{}", p.name),
                &p.shape,
                opt[at..at + p.numel].to_vec(),
            );
        }
    }
    let mut meta = BTreeMap::new();
    meta.insert(META_STEP.to_string(), step.to_string());
    meta.insert(META_BATCHER.to_string(), serde_json::to_string(batcher)?);
    meta.insert(META_SPEC.to_string(), spec.build_hash());
    atomic_write(path, &w.to_sealed_bytes(meta)?)
}

/// The metadata of a safetensors file.
fn metadata(bytes: &[u8]) -> Result<BTreeMap<String, String>> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::new(format!("not a safetensors checkpoint: {e}")))?;
    Ok(meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect())
}

/// The `irc.step` of a checkpoint's metadata.
fn step_of(meta: &BTreeMap<String, String>) -> Result<usize> {
    let s = get(meta, META_STEP)?;
    s.parse()
        .map_err(|_| Error::new(format!("`{META_STEP}` is not a step number: {s:?}")))
}

fn get<'a>(meta: &'a BTreeMap<String, String>, k: &str) -> Result<&'a str> {
    meta.get(k).map(String::as_str).ok_or_else(|| {
        Error::new(format!(
            "not an irc training checkpoint (no `{k}` metadata)"
        ))
    })
}

/// Parse and check a checkpoint's bytes against a parameter table (`n`
/// parameters in all): the checksum, the metadata, every parameter and
/// both AdamW moments of each with its exact shape. Messages do not name
/// the file; [`read`] adds it.
pub fn from_bytes(bytes: &[u8], table: &[ParamEntry]) -> Result<Checkpoint> {
    // Checks the checksum first, so a damaged byte anywhere is named so.
    let weights = Weights::from_bytes(bytes)?;
    let meta = metadata(bytes)?;
    let step = step_of(&meta)?;
    let batcher: BatcherState = serde_json::from_str(get(&meta, META_BATCHER)?)
        .map_err(|e| Error::new(format!("`{META_BATCHER}`: {e}")))?;
    weights.check_against(table)?;
    for p in table {
        for which in ["m", "v"] {
            let name = format!("optimizer.{which}.{}", p.name);
            match weights.get(&name) {
                None => return Err(Error::new(format!("missing `{name}`"))),
                Some(t) if t.shape != p.shape => {
                    return Err(Error::new(format!(
                        "`{name}` has shape {:?}, expected {:?}",
                        t.shape, p.shape
                    )))
                }
                _ => {}
            }
        }
    }
    Ok(Checkpoint {
        step,
        batcher,
        weights,
    })
}

/// Read and check a checkpoint file (see [`from_bytes`]); errors name it.
pub fn read(path: &Path, table: &[ParamEntry]) -> Result<Checkpoint> {
    let bytes = crate::runtime::weights::read_safetensors(path, None)?;
    from_bytes(&bytes, table).map_err(|e| e.context(path.display()))
}

/// Copy a checked checkpoint's weights and AdamW moments into a session.
pub fn apply(s: &mut Session, c: &Checkpoint) -> Result<()> {
    // load_weights skips the optimizer.* tensors; they are copied below.
    s.load_weights(&c.weights)?;
    let table = s.library().param_table.clone();
    let n = s.library().num_params;
    let opt = s.opt_state_mut()?;
    for p in &table {
        for (i, which) in ["m", "v"].iter().enumerate() {
            let t = c
                .weights
                .get(&format!("optimizer.{which}.{}", p.name))
                .expect("from_bytes checked every moment");
            opt[i * n + p.offset..i * n + p.offset + p.numel].copy_from_slice(&t.data);
        }
    }
    Ok(())
}

/// Load one checkpoint file into a session; returns (step, batcher state).
pub fn load(s: &mut Session, path: &Path) -> Result<(usize, BatcherState)> {
    let c = read(path, &s.library().param_table.clone())?;
    apply(s, &c).map_err(|e| e.context(path.display()))?;
    Ok((c.step, c.batcher))
}

/// The checkpoints a resume may take (see [`candidates`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidates {
    /// (step, file), newest first.
    pub newest_first: Vec<(usize, PathBuf)>,
    /// Files whose header could not be read, with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// The checkpoints to resume from, newest first: a file is itself; a run
/// directory offers `latest.safetensors` and every
/// `checkpoints/step-*.safetensors`, ordered by the step in their header
/// (`latest` first among equals).
pub fn candidates(from: &Path) -> Candidates {
    let mut c = Candidates::default();
    if !from.is_dir() {
        c.newest_first
            .push((0, crate::rundir::resolve_checkpoint(from)));
        return c;
    }
    let dir = RunDir::new(from);
    let mut files = vec![dir.latest()];
    if let Ok(rd) = std::fs::read_dir(dir.checkpoints()) {
        let mut steps: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("step-") && n.ends_with(".safetensors"))
            })
            .collect();
        steps.sort();
        files.extend(steps);
    }
    for (i, f) in files.into_iter().enumerate() {
        if i == 0 && !f.exists() {
            continue;
        }
        match header_step(&f) {
            Ok(step) => c.newest_first.push((step, f)),
            Err(e) => c.unreadable.push((f, e.to_string())),
        }
    }
    // Stable: among equal steps, latest (listed first) stays first.
    c.newest_first
        .sort_by_key(|(step, _)| std::cmp::Reverse(*step));
    c
}

/// The step of the checkpoint a resume from `from` would try first, from
/// its header alone (`None` when a run folder offers none): what training
/// checks before it builds anything. A file's errors name it.
pub fn newest_step(from: &Path) -> Result<Option<usize>> {
    if from.is_dir() {
        return Ok(candidates(from).newest_first.first().map(|(s, _)| *s));
    }
    let p = crate::rundir::resolve_checkpoint(from);
    file_step(&p).map(Some).map_err(|e| e.context(p.display()))
}

/// The step in a checkpoint's header, reading only the header.
fn header_step(path: &Path) -> Result<usize> {
    step_of(&header(path)?.0)
}

/// A checkpoint's metadata and the length its header says the file has.
fn header(path: &Path) -> Result<(BTreeMap<String, String>, u64)> {
    use std::io::Read;
    crate::util::path_kind(path).map_err(Error::new)?;
    let mut f = std::fs::File::open(path).map_err(|e| Error::new(e.to_string()))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| Error::new("truncated: shorter than the 8-byte header length"))?;
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 {
        return Err(Error::new(format!(
            "a header of {n} bytes is not a checkpoint's"
        )));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)
        .map_err(|_| Error::new(format!("truncated: the header says {n} bytes")))?;
    let v: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| Error::new(format!("the header is not JSON: {e}")))?;
    let meta: BTreeMap<String, String> = v
        .get("__metadata__")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default();
    let data_end = v
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, t)| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    Ok((meta, 8 + n + data_end))
}

/// The step of a checkpoint file, from its header, and the file as long as
/// the header says (a truncated file is refused before anything is built).
fn file_step(path: &Path) -> Result<usize> {
    let (meta, want) = header(path)?;
    let have = std::fs::metadata(path)
        .map_err(|e| Error::new(e.to_string()))?
        .len();
    if have != want {
        return Err(Error::new(format!(
            "truncated or padded: {have} bytes, the header describes {want}"
        )));
    }
    step_of(&meta)
}

/// Restore the session and batcher from the newest valid checkpoint of
/// `from` (a checkpoint file, or a run directory: see [`candidates`]);
/// returns its step. Each checkpoint passed over is reported on stderr with
/// the reason; when none is valid the error lists them all.
pub fn resume(s: &mut Session, batcher: &mut Batcher, from: &Path) -> Result<usize> {
    let table = s.library().param_table.clone();
    let Candidates {
        newest_first,
        unreadable: mut skipped,
    } = candidates(from);
    for (f, why) in &skipped {
        eprintln!("resume: skipped {}: {why}", f.display());
    }
    for (_, path) in newest_first {
        let tried = read(&path, &table).and_then(|c| {
            batcher
                .restore(&c.batcher)
                .map_err(|e| e.context(path.display()))?;
            Ok(c)
        });
        match tried {
            Ok(c) => {
                apply(s, &c).map_err(|e| e.context(path.display()))?;
                return Ok(c.step);
            }
            Err(e) if from.is_dir() => {
                let why = e.to_string();
                let why = why
                    .strip_prefix(&format!("{}: ", path.display()))
                    .unwrap_or(&why)
                    .to_string();
                eprintln!("resume: skipped {}: {why}", path.display());
                skipped.push((path, why));
            }
            Err(e) => return Err(e),
        }
    }
    let list: Vec<String> = skipped
        .iter()
        .map(|(f, why)| format!("\n  {}: {why}", f.display()))
        .collect();
    Err(Error::new(format!(
        "{}: no valid checkpoint to resume from{}",
        from.display(),
        if list.is_empty() {
            " (no latest.safetensors, nothing in checkpoints/)".to_string()
        } else {
            list.concat()
        }
    )))
}

/// Delete the temporaries that interrupted atomic writes left in a run
/// directory, its `checkpoints/`, `data/`, `build/` and `build-gen/`: files named
/// `<TEMP_PREFIX>*` (see [`atomic_write`]), the `.latest.tmp` copy, and in
/// `checkpoints/` also `.tmp*` (the names of the writes of earlier irc
/// versions). Returns what it removed.
pub fn remove_stale_temporaries(dir: &RunDir) -> Result<Vec<PathBuf>> {
    let mut removed = vec![];
    let folders = [
        (dir.path().to_path_buf(), false),
        (dir.checkpoints(), true),
        (dir.data().path().to_path_buf(), false),
        (dir.build(), false),
        (dir.generation_build(), false),
    ];
    for (folder, legacy) in folders {
        let Ok(rd) = std::fs::read_dir(&folder) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            let stale = name.starts_with(TEMP_PREFIX)
                || (legacy && name.starts_with(".tmp"))
                || e.path() == dir.latest_tmp();
            if stale && e.file_type().is_ok_and(|t| t.is_file()) {
                std::fs::remove_file(e.path()).at(e.path().display())?;
                removed.push(e.path());
            }
        }
    }
    Ok(removed)
}
