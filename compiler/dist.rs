//! Data-parallel training over MPI, loaded at run time.
//!
//! irc needs no MPI to build or to run: only when it finds itself started
//! by `mpirun` (the launcher's environment, [`launched`]) does it compile
//! `runtime-mpi/irc_mpi.c` with the system's `mpicc` (through
//! [`crate::toolchain::build_helper`], cached like a model's library) and
//! load it. The shim has a plain C ABI of its own, so irc never guesses an
//! MPI implementation's ABI (OpenMPI and MPICH differ in every handle type);
//! `mpicc` brings the implementation's own headers and libraries.
//!
//! What the trainer asks of it ([`World`]): the rank and the number of
//! ranks, an in-place sum of the gradient region in buckets (after the
//! backward, or started during it from the model's gradient hook:
//! [`Overlap`]), small f64
//! reductions (the step's losses and its stop flag, checksums), barriers,
//! and an abort that stops every rank when one fails.

use crate::error::{Error, Result};
use std::ffi::{c_char, c_int, c_void};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// The shim's source, embedded so an installed irc needs no source tree.
pub const SHIM_C: &str = include_str!("../runtime-mpi/irc_mpi.c");
/// The shim ABI this irc speaks (`IRC_MPI_ABI` in the source).
const SHIM_ABI: c_int = 2;

/// Floats per all-reduce bucket: 4 MiB, large enough for the bandwidth
/// of a link, small enough that a bucket's reduction overlaps the next's
/// copy inside MPI. `IRC_MPI_BUCKET_MB` overrides it.
pub const BUCKET_FLOATS: usize = 1 << 20;

/// Variables a launcher sets for each rank: the world size (OpenMPI,
/// MPICH/Hydra and Intel MPI, MVAPICH, Slurm's PMI).
const SIZE_VARS: [&str; 4] = [
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
    "MV2_COMM_WORLD_SIZE",
    "PMIX_SIZE",
];
/// Ranks on this machine (to share its cores between them).
const LOCAL_SIZE_VARS: [&str; 3] = [
    "OMPI_COMM_WORLD_LOCAL_SIZE",
    "MPI_LOCALNRANKS",
    "MV2_COMM_WORLD_LOCAL_SIZE",
];

/// The world size the launcher announced, if irc runs under one.
pub fn launched() -> Option<(&'static str, usize)> {
    SIZE_VARS.iter().find_map(|v| {
        let n = std::env::var(v).ok()?.trim().parse::<usize>().ok()?;
        Some((*v, n))
    })
}

/// Ranks that share this machine (1 when the launcher does not say).
pub fn local_ranks() -> usize {
    LOCAL_SIZE_VARS
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .max(1)
}

type InitFn = unsafe extern "C" fn() -> c_int;
type IntOutFn = unsafe extern "C" fn(*mut c_int) -> c_int;
type SumF32Fn = unsafe extern "C" fn(*mut f32, i64) -> c_int;
type F64Fn = unsafe extern "C" fn(*mut f64, c_int, c_int) -> c_int;
type AbortFn = unsafe extern "C" fn(c_int);
type BeginFn = unsafe extern "C" fn(*mut f32, i64, i64) -> *mut c_void;
type FinishFn = unsafe extern "C" fn(*mut c_void, *mut f64) -> c_int;
type ErrStrFn = unsafe extern "C" fn(c_int, *mut c_char, c_int);

/// How a small f64 reduction combines the ranks' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Sum = 0,
    Max = 1,
    Min = 2,
}

/// This process's place among the ranks of an `mpirun`, and the calls
/// between them.
pub struct World {
    _lib: libloading::Library,
    sum_f32: SumF32Fn,
    overlap_begin: BeginFn,
    overlap_ready: crate::runtime::GradHook,
    overlap_finish: FinishFn,
    reduce_f64: F64Fn,
    barrier: InitFn,
    abort: AbortFn,
    finalize: InitFn,
    error_string: ErrStrFn,
    pub rank: usize,
    pub size: usize,
    /// The shim library that was loaded.
    pub shim: PathBuf,
    bucket: usize,
}

static WORLD: OnceLock<World> = OnceLock::new();
static FINALIZED: AtomicBool = AtomicBool::new(false);

/// The MPI world, once [`init`] has made it.
pub fn world() -> Option<&'static World> {
    WORLD.get()
}

/// True on every process but rank 0 of an MPI run: it trains and writes
/// nothing (rank 0 alone writes metrics, checkpoints and the report).
pub fn is_follower() -> bool {
    world().is_some_and(|w| w.rank != 0)
}

/// Under `mpirun`: build and load the shim and join the world (once; later
/// calls return the same world). Not under one: `None`, and nothing loads.
pub fn init() -> Result<Option<&'static World>> {
    if let Some(w) = WORLD.get() {
        return Ok(Some(w));
    }
    let Some((var, n)) = launched() else {
        return Ok(None);
    };
    let why = |e: Error| {
        e.context(format!(
            "started by mpirun ({var}={n}), irc builds its MPI shim with mpicc"
        ))
    };
    let shim = crate::toolchain::build_helper("irc_mpi", SHIM_C, &mpicc(), &[]).map_err(why)?;
    let w = World::open(shim)?;
    Ok(Some(WORLD.get_or_init(|| w)))
}

/// The MPI compiler wrapper: `$IRC_MPICC`, else `$MPICC`, else `mpicc`.
fn mpicc() -> PathBuf {
    ["IRC_MPICC", "MPICC"]
        .iter()
        .find_map(|v| std::env::var_os(v).filter(|s| !s.is_empty()))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("mpicc"))
}

/// dlopen with RTLD_GLOBAL: MPI implementations load their own plugins,
/// which look up libmpi's symbols in the global scope.
#[cfg(unix)]
unsafe fn open_global(
    path: &std::path::Path,
) -> std::result::Result<libloading::Library, libloading::Error> {
    use libloading::os::unix::{Library as Unix, RTLD_GLOBAL, RTLD_NOW};
    Unix::open(Some(path), RTLD_NOW | RTLD_GLOBAL).map(Into::into)
}

#[cfg(not(unix))]
unsafe fn open_global(
    path: &std::path::Path,
) -> std::result::Result<libloading::Library, libloading::Error> {
    libloading::Library::new(path)
}

impl World {
    fn open(shim: PathBuf) -> Result<World> {
        let fail = |what: String| Error::new(format!("{}: {what}", shim.display()));
        // SAFETY: the library is irc's own shim, compiled from SHIM_C; its
        // ABI version is checked before any other call.
        unsafe {
            let lib = open_global(&shim).map_err(|e| fail(format!("cannot load: {e}")))?;
            macro_rules! sym {
                ($name:literal) => {
                    *lib.get(concat!($name, "\0").as_bytes())
                        .map_err(|e| fail(format!("no `{}`: {e}", $name)))?
                };
            }
            let abi: unsafe extern "C" fn() -> c_int = sym!("irc_mpi_abi");
            if abi() != SHIM_ABI {
                return Err(fail(format!(
                    "shim ABI {} where this irc speaks {SHIM_ABI}",
                    abi()
                )));
            }
            let init: InitFn = sym!("irc_mpi_init");
            let rank_fn: IntOutFn = sym!("irc_mpi_rank");
            let size_fn: IntOutFn = sym!("irc_mpi_size");
            let mut w = World {
                sum_f32: sym!("irc_mpi_allreduce_sum_f32"),
                overlap_begin: sym!("irc_mpi_overlap_begin"),
                overlap_ready: sym!("irc_mpi_overlap_ready"),
                overlap_finish: sym!("irc_mpi_overlap_finish"),
                reduce_f64: sym!("irc_mpi_allreduce_f64"),
                barrier: sym!("irc_mpi_barrier"),
                abort: sym!("irc_mpi_abort"),
                finalize: sym!("irc_mpi_finalize"),
                error_string: sym!("irc_mpi_error_string"),
                _lib: lib,
                rank: 0,
                size: 1,
                shim: shim.clone(),
                bucket: bucket_floats()?,
            };
            w.check(init(), "MPI_Init")?;
            let (mut r, mut s) = (0, 0);
            w.check(rank_fn(&mut r), "MPI_Comm_rank")?;
            w.check(size_fn(&mut s), "MPI_Comm_size")?;
            w.rank = r.max(0) as usize;
            w.size = s.max(1) as usize;
            Ok(w)
        }
    }

    fn check(&self, rc: c_int, what: &str) -> Result<()> {
        if rc == 0 {
            return Ok(());
        }
        let mut buf = [0 as c_char; 512];
        // SAFETY: the buffer is 512 bytes and the shim NUL-terminates it.
        let msg = unsafe {
            (self.error_string)(rc, buf.as_mut_ptr(), buf.len() as c_int);
            std::ffi::CStr::from_ptr(buf.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        Err(Error::new(format!(
            "{what} failed on rank {}: {msg} (MPI error {rc})",
            self.rank
        )))
    }

    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// Sum `buf` over the ranks, in place, one bucket at a time. Returns
    /// the seconds it took.
    pub fn allreduce_sum(&self, buf: &mut [f32]) -> Result<f64> {
        let t = Instant::now();
        for chunk in buf.chunks_mut(self.bucket) {
            // SAFETY: the chunk is a valid, exclusively borrowed f32 slice.
            let rc = unsafe { (self.sum_f32)(chunk.as_mut_ptr(), chunk.len() as i64) };
            self.check(rc, "MPI_Allreduce")?;
        }
        Ok(t.elapsed().as_secs_f64())
    }

    /// A sum of the gradient region `grads` (`floats` long) over the ranks
    /// that starts, bucket by bucket, as the backward reports its ranges
    /// final (through [`Overlap::hook`]); [`Overlap::finish`] waits for it.
    ///
    /// # Safety
    ///
    /// `grads` stays valid, and nothing but the reduction writes a
    /// reported range, until `finish` returns.
    pub unsafe fn overlap(&self, grads: *mut f32, floats: usize) -> Result<Overlap<'_>> {
        let state = (self.overlap_begin)(grads, floats as i64, self.bucket as i64);
        if state.is_null() {
            return Err(Error::new(format!(
                "rank {}: out of memory for the overlapped all-reduce",
                self.rank
            )));
        }
        Ok(Overlap { world: self, state })
    }

    /// Reduce a few f64 values over the ranks, in place.
    pub fn reduce(&self, buf: &mut [f64], op: Op) -> Result<()> {
        // SAFETY: a valid, exclusively borrowed f64 slice of len ≤ c_int.
        let rc = unsafe { (self.reduce_f64)(buf.as_mut_ptr(), buf.len() as c_int, op as c_int) };
        self.check(rc, "MPI_Allreduce")
    }

    /// Rank 0's `values` on every rank (the others pass theirs, ignored).
    pub fn broadcast_from_root(&self, values: &mut [f64]) -> Result<()> {
        if !self.is_root() {
            values.iter_mut().for_each(|v| *v = 0.0);
        }
        self.reduce(values, Op::Sum)
    }

    /// Fails on every rank, with the same message, unless every rank
    /// passes the same `value` (names `what` it is).
    pub fn agree(&self, value: f64, what: &str) -> Result<()> {
        let mut hi = [value];
        let mut lo = [value];
        self.reduce(&mut hi, Op::Max)?;
        self.reduce(&mut lo, Op::Min)?;
        if hi[0] != lo[0] {
            return Err(Error::new(format!(
                "the {} ranks disagree on {what} (from {} to {}); expected the same on every rank",
                self.size, lo[0], hi[0]
            )));
        }
        Ok(())
    }

    pub fn barrier(&self) -> Result<()> {
        // SAFETY: no arguments.
        let rc = unsafe { (self.barrier)() };
        self.check(rc, "MPI_Barrier")
    }

    /// Stop every rank with `code` (one rank's error would leave the others
    /// waiting in a collective call forever).
    pub fn abort(&self, code: i32) -> ! {
        // SAFETY: no pointers; MPI_Abort does not return.
        unsafe { (self.abort)(code) };
        std::process::exit(code)
    }
}

/// A gradient all-reduce under way while the backward runs (see
/// [`World::overlap`]): hand [`Overlap::hook`] to the backward of the
/// step's last micro-batch, then [`Overlap::finish`].
pub struct Overlap<'w> {
    world: &'w World,
    state: *mut c_void,
}

impl Overlap<'_> {
    /// The gradient hook and its argument, for
    /// [`crate::runtime::Session::backward_reporting`].
    pub fn hook(&self) -> (crate::runtime::GradHook, *mut c_void) {
        (self.world.overlap_ready, self.state)
    }

    /// Start what is left, wait until every bucket is summed. Returns the
    /// seconds spent inside the hook during the backward. (An overlap
    /// dropped unfinished, by an error, is left alone: the error aborts
    /// the job, and waiting could hang a rank whose peers stopped.)
    pub fn finish(self) -> Result<f64> {
        let mut busy = 0.0;
        // SAFETY: the state came from overlap_begin; finish frees it.
        let rc = unsafe { (self.world.overlap_finish)(self.state, &mut busy) };
        self.world.check(rc, "MPI_Iallreduce")?;
        Ok(busy)
    }
}

/// `IRC_MPI_BUCKET_MB` (MiB of floats per bucket, a fraction allowed),
/// else [`BUCKET_FLOATS`].
fn bucket_floats() -> Result<usize> {
    match std::env::var("IRC_MPI_BUCKET_MB") {
        Err(_) => Ok(BUCKET_FLOATS),
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(mb) if mb > 0.0 && mb <= 1024.0 => {
                Ok(((mb * (1 << 20) as f64 / 4.0) as usize).max(1))
            }
            _ => Err(Error::new(format!(
                "IRC_MPI_BUCKET_MB={v}: expected MiB above 0 and up to 1024 (0.25 is 64Ki floats)"
            ))),
        },
    }
}

/// Leave the MPI world (once) at the end of a command that joined it.
pub fn finalize() {
    if let Some(w) = WORLD.get() {
        if !FINALIZED.swap(true, Ordering::SeqCst) {
            // SAFETY: no arguments; called once.
            unsafe { (w.finalize)() };
        }
    }
}

/// A setting every rank refuses alike (the micro-batches cannot be shared
/// out): rank 0 prints it, and every rank leaves MPI cleanly with exit 1
/// instead of aborting the job.
static COLLECTIVE: AtomicBool = AtomicBool::new(false);

/// Mark `e` as an error every rank returns at the same point.
pub fn collective(e: Error) -> Error {
    COLLECTIVE.store(true, Ordering::SeqCst);
    e
}

/// How the binary ends a command under MPI: `Ok` leaves the world; an
/// error every rank shares is printed once (rank 0) and leaves it too; any
/// other error is printed with its rank and aborts the job. Returns the
/// exit code.
pub fn finish(result: &Result<()>) -> i32 {
    let Some(w) = world() else {
        if let Err(e) = result {
            eprintln!("error: {e}");
            return 1;
        }
        return 0;
    };
    match result {
        Ok(()) => {
            finalize();
            0
        }
        Err(e) if COLLECTIVE.load(Ordering::SeqCst) => {
            if w.is_root() {
                eprintln!("error: {e}");
            }
            finalize();
            1
        }
        Err(e) => {
            eprintln!("error (rank {} of {}): {e}", w.rank, w.size);
            w.abort(1)
        }
    }
}

/// How the optimizer step's micro-batches are shared out: rank `r` of `n`
/// runs micro-batches `r·A/n .. (r+1)·A/n` of the `A = grad_accum` every
/// step has. `[train].grad_accum` is the whole step's count, so the recipe
/// (effective batch, schedule, steps per epoch) is the same for any number
/// of ranks and a run resumes under any rank count that divides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub rank: usize,
    pub ranks: usize,
    pub grad_accum: usize,
}

impl Shard {
    /// The shard of `world` (one rank of one without MPI), or an error
    /// every rank gives when `grad_accum` is no multiple of the ranks.
    pub fn new(spec_path: &std::path::Path, grad_accum: usize) -> Result<Shard> {
        let (rank, ranks) = world().map_or((0, 1), |w| (w.rank, w.size));
        if !grad_accum.is_multiple_of(ranks) {
            let ups: Vec<String> = (1..=3).map(|k| (k * ranks).to_string()).collect();
            return Err(collective(Error::new(format!(
                "{}: [train].grad_accum = {grad_accum} cannot be shared out over {ranks} ranks: each rank runs grad_accum / ranks of the step's micro-batches of [train].batch sequences; expected a multiple of {ranks} ({}, ...), or -np a divisor of {grad_accum}",
                spec_path.display(),
                ups.join(", ")
            ))));
        }
        Ok(Shard {
            rank,
            ranks,
            grad_accum,
        })
    }

    /// The step's micro-batch indices this rank runs.
    pub fn mine(&self) -> std::ops::Range<usize> {
        let per = self.grad_accum / self.ranks;
        self.rank * per..(self.rank + 1) * per
    }
}

/// Training threads for a rank when the spec leaves them to the build
/// (`threads = 0`): the machine's cores shared among the ranks on it.
pub fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / local_ranks()).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micro_batches_are_shared_out_in_order() {
        let s = |rank, ranks| Shard {
            rank,
            ranks,
            grad_accum: 6,
        };
        assert_eq!(s(0, 1).mine(), 0..6);
        assert_eq!(s(0, 2).mine(), 0..3);
        assert_eq!(s(1, 2).mine(), 3..6);
        assert_eq!(s(2, 3).mine(), 4..6);
    }
}
