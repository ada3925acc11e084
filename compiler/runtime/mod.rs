//! Loading a built model library with libloading and calling its C ABI.

pub mod weights;

use crate::codegen::ABI_VERSION;
use crate::error::{Error, Result};
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::path::Path;
use std::sync::Arc;

pub use weights::Weights;

#[repr(C)]
struct ParamInfo {
    name: *const c_char,
    ndim: c_int,
    shape: [i64; 4],
    offset: usize,
    numel: usize,
}

/// A parameter as the library lays it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamEntry {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub numel: usize,
}

type CreateFn = unsafe extern "C" fn(c_int) -> *mut c_void;
type DestroyFn = unsafe extern "C" fn(*mut c_void);
type ErrFn = unsafe extern "C" fn(*const c_void) -> *const c_char;
type ThreadsFn = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;
type ParamsFn = unsafe extern "C" fn(*mut c_void) -> *mut f32;
type ForwardFn = unsafe extern "C" fn(*mut c_void, *const i32, c_int, c_int, *mut f32) -> c_int;
type LossFn = unsafe extern "C" fn(
    *mut c_void,
    *const i32,
    *const i32,
    c_int,
    c_int,
    *mut f32,
    *mut f32,
) -> c_int;
type BackwardFn =
    unsafe extern "C" fn(*mut c_void, *const i32, *const i32, c_int, c_int, *mut f32) -> c_int;
/// `irc_grad_hook`: told that gradient floats `[offset, offset + floats)`
/// are final during a backward (see [`Session::backward_reporting`]).
pub type GradHook = unsafe extern "C" fn(user: *mut c_void, offset: usize, floats: usize);
type SetHookFn = unsafe extern "C" fn(*mut c_void, Option<GradHook>, *mut c_void);
type RegionFn = unsafe extern "C" fn(*mut c_void) -> *mut f32;
type ZeroFn = unsafe extern "C" fn(*mut c_void);
type AdamwFn = unsafe extern "C" fn(*mut c_void, *const AdamwConfig, *mut f32) -> c_int;
type PrefillFn = unsafe extern "C" fn(*mut c_void, *const i32, c_int, *mut f32) -> c_int;
type DecodeFn = unsafe extern "C" fn(*mut c_void, i32, *mut f32) -> c_int;
type CacheLenFn = unsafe extern "C" fn(*const c_void) -> c_int;
type ProfileReadFn = unsafe extern "C" fn(*const c_void, *mut f64);
type ProfileResetFn = unsafe extern "C" fn(*mut c_void);
type PeakFn = unsafe extern "C" fn(c_int) -> f64;

#[repr(C)]
struct ProfileInfo {
    program: *const c_char,
    kernel: c_int,
    function: *const c_char,
    node: *const c_char,
    flops: f64,
}

/// One timed slot of a profile build: a kernel call of one program (with the
/// gradient accumulation after it).
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSlot {
    /// `forward`, `train`, `prefill` or `decode`.
    pub program: String,
    /// The kernel's index in its program.
    pub kernel: usize,
    /// The C function it calls.
    pub function: String,
    /// The graph value it computes (its last op).
    pub node: String,
    /// Floating-point operations per call (matmuls and attention; else 0).
    pub flops: f64,
}

/// The profile symbols of a library built with `[build] profile = true`.
struct Profiler {
    slots: Vec<ProfileSlot>,
    read: ProfileReadFn,
    reset: ProfileResetFn,
    peak: PeakFn,
}

/// One AdamW step's settings (`irc_adamw_config` in the C header).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamwConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Applied to parameters with 2+ dimensions only.
    pub weight_decay: f32,
    /// Multiplies the accumulated gradient first (1 / micro-batches).
    pub grad_scale: f32,
    /// Clip the global gradient norm to this (0: no clipping).
    pub clip: f32,
    /// 1-based step for bias correction.
    pub step: c_int,
}

/// dlopen with RTLD_NODELETE: the library (and the OpenMP runtime it pulls
/// in) stays mapped after the last handle closes, because OpenMP worker
/// threads outlive the handle and would otherwise run unmapped code.
#[cfg(unix)]
unsafe fn open_resident(
    path: &Path,
) -> std::result::Result<libloading::Library, libloading::Error> {
    use libloading::os::unix::{Library as Unix, RTLD_NOW};
    const RTLD_NODELETE: std::ffi::c_int = 0x1000;
    Unix::open(Some(path), RTLD_NOW | RTLD_NODELETE).map(Into::into)
}

#[cfg(not(unix))]
unsafe fn open_resident(
    path: &Path,
) -> std::result::Result<libloading::Library, libloading::Error> {
    libloading::Library::new(path)
}

/// A loaded model library: its symbols, checked against this irc.
pub struct Library {
    _lib: libloading::Library,
    create: CreateFn,
    destroy: DestroyFn,
    last_error: ErrFn,
    set_threads: ThreadsFn,
    params: ParamsFn,
    forward: ForwardFn,
    loss: LossFn,
    backward: BackwardFn,
    set_grad_hook: SetHookFn,
    grads: RegionFn,
    opt_state: RegionFn,
    zero_grads: ZeroFn,
    adamw: AdamwFn,
    prefill: PrefillFn,
    decode: DecodeFn,
    cache_len: CacheLenFn,
    profiler: Option<Profiler>,
    pub prefix: String,
    pub target: String,
    pub param_table: Vec<ParamEntry>,
    pub num_params: usize,
    pub max_batch: usize,
    pub max_seq: usize,
    pub vocab: usize,
    /// Positions a generated sequence can reach (0: no generation programs).
    pub context: usize,
}

impl Library {
    /// Open `path`, whose symbols start with `prefix`, and check that its ABI
    /// version is this irc's and that it was built from a spec hashing to
    /// `spec_hash`.
    pub fn open(
        path: &Path,
        prefix: &str,
        spec_hash: &str,
        dims: (usize, usize, usize),
    ) -> Result<Arc<Library>> {
        let fail = |what: String| Error::new(format!("{}: {what}", path.display()));
        // SAFETY: loading runs the library's initializers; it is a library irc
        // emitted (checked below by its ABI version and spec hash).
        let lib = unsafe { open_resident(path) }.map_err(|e| fail(format!("cannot load: {e}")))?;
        let syms = Symbols {
            lib: &lib,
            prefix,
            path,
        };
        // SAFETY: the signatures match templates/model.h.tera for ABI_VERSION.
        unsafe {
            syms.check_identity(spec_hash)?;
            let target: unsafe extern "C" fn() -> *const c_char = syms.get("target")?;
            let target = c_string(target());
            let param_table = syms.param_table()?;
            let context: unsafe extern "C" fn() -> c_int = syms.get("context")?;
            let context = context().max(0) as usize;
            let profiler = syms.profiler()?;
            let num_params: unsafe extern "C" fn() -> usize = syms.get("num_params")?;
            let num_params = num_params();
            Ok(Arc::new(Library {
                create: syms.get("create")?,
                destroy: syms.get("destroy")?,
                last_error: syms.get("last_error")?,
                set_threads: syms.get("set_threads")?,
                params: syms.get("params")?,
                forward: syms.get("forward")?,
                loss: syms.get("loss")?,
                backward: syms.get("backward")?,
                set_grad_hook: syms.get("set_grad_hook")?,
                grads: syms.get("grads")?,
                opt_state: syms.get("opt_state")?,
                zero_grads: syms.get("zero_grads")?,
                adamw: syms.get("adamw_step")?,
                prefill: syms.get("prefill")?,
                decode: syms.get("decode")?,
                cache_len: syms.get("cache_len")?,
                profiler,
                _lib: lib,
                prefix: prefix.to_string(),
                target,
                param_table,
                num_params,
                max_batch: dims.0,
                max_seq: dims.1,
                vocab: dims.2,
                context,
            }))
        }
    }
}

/// A C string the library owns, copied.
///
/// SAFETY: `p` points at a NUL-terminated string.
unsafe fn c_string(p: *const c_char) -> String {
    CStr::from_ptr(p).to_string_lossy().to_string()
}

/// The symbols of a library being opened, each named `<prefix>_<name>`;
/// errors name the library's path.
struct Symbols<'a> {
    lib: &'a libloading::Library,
    prefix: &'a str,
    path: &'a Path,
}

impl Symbols<'_> {
    fn fail(&self, what: String) -> Error {
        Error::new(format!("{}: {what}", self.path.display()))
    }

    /// SAFETY: `T` is the symbol's type.
    unsafe fn get<T: Copy>(&self, name: &str) -> Result<T> {
        let name = format!("{}_{name}", self.prefix);
        self.lib
            .get::<T>(name.as_bytes())
            .map(|s| *s)
            .map_err(|e| self.fail(format!("missing symbol {name}: {e}")))
    }

    /// The library speaks this irc's ABI version and was built from the
    /// spec hashing to `spec_hash`.
    ///
    /// SAFETY: as [`Symbols::get`], for the identity functions.
    unsafe fn check_identity(&self, spec_hash: &str) -> Result<()> {
        let abi: unsafe extern "C" fn() -> c_uint = self.get("abi_version")?;
        if abi() != ABI_VERSION {
            return Err(self.fail(format!(
                "ABI version {} but this irc speaks {ABI_VERSION}; rebuild it",
                abi()
            )));
        }
        let hash: unsafe extern "C" fn() -> *const c_char = self.get("spec_hash")?;
        let got = c_string(hash());
        if got != spec_hash {
            return Err(self.fail(format!(
                "built from a different spec (hash {got}, expected {spec_hash}); rebuild it"
            )));
        }
        Ok(())
    }

    /// Every parameter's name, shape and place, as the library lays them out.
    ///
    /// SAFETY: as [`Symbols::get`], for `param_count` and `param_info`.
    unsafe fn param_table(&self) -> Result<Vec<ParamEntry>> {
        let count: unsafe extern "C" fn() -> c_int = self.get("param_count")?;
        let info: unsafe extern "C" fn(c_int) -> *const ParamInfo = self.get("param_info")?;
        let mut param_table = vec![];
        for i in 0..count() {
            let p = &*info(i);
            param_table.push(ParamEntry {
                name: c_string(p.name),
                shape: p.shape[..p.ndim as usize]
                    .iter()
                    .map(|&d| d as usize)
                    .collect(),
                offset: p.offset,
                numel: p.numel,
            });
        }
        Ok(param_table)
    }

    /// The profiler of a profile build (one with `profile_count`), else none.
    ///
    /// SAFETY: as [`Symbols::get`], for the profiling functions.
    unsafe fn profiler(&self) -> Result<Option<Profiler>> {
        let Ok(count) = self.get::<unsafe extern "C" fn() -> c_int>("profile_count") else {
            return Ok(None);
        };
        let info: unsafe extern "C" fn(c_int) -> *const ProfileInfo = self.get("profile_info")?;
        let slots = (0..count())
            .map(|i| {
                let p = &*info(i);
                ProfileSlot {
                    program: c_string(p.program),
                    kernel: p.kernel as usize,
                    function: c_string(p.function),
                    node: c_string(p.node),
                    flops: p.flops,
                }
            })
            .collect();
        Ok(Some(Profiler {
            slots,
            read: self.get("profile_read")?,
            reset: self.get("profile_reset")?,
            peak: self.get("fma_peak_gflops")?,
        }))
    }
}

impl Library {
    /// The timed slots, when the library is a profile build.
    pub fn profile_slots(&self) -> Option<&[ProfileSlot]> {
        self.profiler.as_ref().map(|p| p.slots.as_slice())
    }

    /// The cores' measured fp32 FMA peak in GFLOP/s for `threads` threads,
    /// with the library's own SIMD path (profile builds only; about 0.1 s).
    pub fn fma_peak_gflops(&self, threads: usize) -> Option<f64> {
        // SAFETY: a pure measurement; no state.
        self.profiler
            .as_ref()
            .map(|p| unsafe { (p.peak)(threads as c_int) })
    }
}

/// One model context inside a loaded library.
pub struct Session {
    lib: Arc<Library>,
    ctx: *mut c_void,
}

// SAFETY: a context is only touched through &mut self (or read-only through
// &self), and the C code keeps no global state.
unsafe impl Send for Session {}

impl Session {
    pub fn new(lib: &Arc<Library>, threads: usize) -> Result<Session> {
        // SAFETY: create() returns an owned context or NULL.
        let ctx = unsafe { (lib.create)(threads as c_int) };
        if ctx.is_null() {
            return Err(Error::new("model context: out of memory"));
        }
        Ok(Session {
            lib: lib.clone(),
            ctx,
        })
    }

    pub fn library(&self) -> &Library {
        &self.lib
    }

    /// Seconds spent in each profile slot (see [`Library::profile_slots`])
    /// since the last [`Session::profile_reset`]; `None` unless the library
    /// is a profile build.
    pub fn profile(&self) -> Option<Vec<f64>> {
        let p = self.lib.profiler.as_ref()?;
        let mut secs = vec![0.0; p.slots.len()];
        // SAFETY: the buffer holds profile_count() doubles.
        unsafe { (p.read)(self.ctx, secs.as_mut_ptr()) };
        Some(secs)
    }

    /// Zero the profile counters (a no-op unless a profile build).
    pub fn profile_reset(&mut self) {
        if let Some(p) = &self.lib.profiler {
            // SAFETY: ctx is this session's live context.
            unsafe { (p.reset)(self.ctx) };
        }
    }

    fn check(&self, status: c_int) -> Result<()> {
        if status == 0 {
            return Ok(());
        }
        Err(self.last_error())
    }

    /// What the context's last failing call said.
    fn last_error(&self) -> Error {
        // SAFETY: last_error returns a NUL-terminated string owned by the context.
        let msg = unsafe { CStr::from_ptr((self.lib.last_error)(self.ctx)) };
        Error::new(msg.to_string_lossy().to_string())
    }

    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        // SAFETY: valid context.
        let st = unsafe { (self.lib.set_threads)(self.ctx, threads as c_int) };
        self.check(st)
    }

    /// The parameter region.
    pub fn params_mut(&mut self) -> &mut [f32] {
        // SAFETY: the region holds num_params floats for the context's life.
        unsafe { std::slice::from_raw_parts_mut((self.lib.params)(self.ctx), self.lib.num_params) }
    }

    pub fn params(&self) -> &[f32] {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts((self.lib.params)(self.ctx), self.lib.num_params) }
    }

    /// Copy weights in, checking every name and shape against the table.
    pub fn load_weights(&mut self, w: &Weights) -> Result<()> {
        let table = self.lib.param_table.clone();
        w.check_against(&table)?;
        let region = self.params_mut();
        for p in &table {
            let t = w.get(&p.name).expect("checked");
            region[p.offset..p.offset + p.numel].copy_from_slice(&t.data);
        }
        Ok(())
    }

    /// Load the parameters from a safetensors file straight into the
    /// context, a chunk at a time ([`weights::load_into`]: the checks of
    /// [`Weights::load_for`]), so the process never holds the file or a
    /// second copy of the weights. Errors name the file.
    pub fn load_weights_file(&mut self, path: &std::path::Path) -> Result<()> {
        let table = self.lib.param_table.clone();
        weights::load_into(path, &table, self.params_mut())
    }

    /// Read the parameters back out.
    pub fn weights(&self) -> Weights {
        self.named(self.params())
    }

    /// A region with the parameter layout, as named tensors.
    fn named(&self, region: &[f32]) -> Weights {
        let mut w = Weights::default();
        for p in &self.lib.param_table {
            w.insert(
                &p.name,
                &p.shape,
                region[p.offset..p.offset + p.numel].to_vec(),
            );
        }
        w
    }

    fn check_dims(&self, tokens: &[i32], b: usize, t: usize) -> Result<()> {
        if tokens.len() != b * t {
            return Err(Error::new(format!(
                "{} tokens given for a {b} x {t} batch",
                tokens.len()
            )));
        }
        Ok(())
    }

    /// Logits (b, t, V) for tokens (b, t).
    pub fn forward(&mut self, tokens: &[i32], b: usize, t: usize) -> Result<Vec<f32>> {
        self.check_dims(tokens, b, t)?;
        let mut logits = vec![0f32; b * t * self.lib.vocab];
        // SAFETY: buffers sized as the ABI requires; the C side checks b, t, ids.
        let st = unsafe {
            (self.lib.forward)(
                self.ctx,
                tokens.as_ptr(),
                b as c_int,
                t as c_int,
                logits.as_mut_ptr(),
            )
        };
        self.check(st)?;
        Ok(logits)
    }

    /// Mean cross-entropy (and the logits) for tokens and targets (b, t).
    pub fn loss(
        &mut self,
        tokens: &[i32],
        targets: &[i32],
        b: usize,
        t: usize,
    ) -> Result<(f32, Vec<f32>)> {
        self.check_dims(tokens, b, t)?;
        self.check_dims(targets, b, t)?;
        let mut logits = vec![0f32; b * t * self.lib.vocab];
        let mut loss = 0f32;
        // SAFETY: as in forward.
        let st = unsafe {
            (self.lib.loss)(
                self.ctx,
                tokens.as_ptr(),
                targets.as_ptr(),
                b as c_int,
                t as c_int,
                &mut loss,
                logits.as_mut_ptr(),
            )
        };
        self.check(st)?;
        Ok((loss, logits))
    }
}

impl Session {
    /// The gradient region (parameter layout). The training state is made
    /// on first use: this fails only when it cannot be allocated.
    pub fn grads(&self) -> Result<&[f32]> {
        // SAFETY: valid context.
        let p = unsafe { (self.lib.grads)(self.ctx) };
        if p.is_null() {
            return Err(self.last_error());
        }
        // SAFETY: the region holds num_params floats for the context's life.
        Ok(unsafe { std::slice::from_raw_parts(p, self.lib.num_params) })
    }

    /// The gradient region, writable (an MPI all-reduce sums it in place).
    pub fn grads_mut(&mut self) -> Result<&mut [f32]> {
        // SAFETY: valid context.
        let p = unsafe { (self.lib.grads)(self.ctx) };
        if p.is_null() {
            return Err(self.last_error());
        }
        // SAFETY: the region holds num_params floats for the context's
        // life, and `&mut self` borrows it exclusively.
        Ok(unsafe { std::slice::from_raw_parts_mut(p, self.lib.num_params) })
    }

    /// Gradients by parameter name.
    pub fn grad_weights(&self) -> Result<Weights> {
        Ok(self.named(self.grads()?))
    }

    /// AdamW moments (first, then second): 2 × num_params floats, made on
    /// first use like the gradients.
    pub fn opt_state_mut(&mut self) -> Result<&mut [f32]> {
        // SAFETY: valid context.
        let p = unsafe { (self.lib.opt_state)(self.ctx) };
        if p.is_null() {
            return Err(self.last_error());
        }
        // SAFETY: the region holds 2·num_params floats for the context's life.
        Ok(unsafe { std::slice::from_raw_parts_mut(p, 2 * self.lib.num_params) })
    }

    pub fn zero_grads(&mut self) {
        // SAFETY: valid context.
        unsafe { (self.lib.zero_grads)(self.ctx) }
    }

    /// Forward + backward on one micro-batch: returns its mean loss and adds
    /// its gradient into the gradient region.
    pub fn backward(&mut self, tokens: &[i32], targets: &[i32], b: usize, t: usize) -> Result<f32> {
        self.check_dims(tokens, b, t)?;
        self.check_dims(targets, b, t)?;
        let mut loss = 0f32;
        // SAFETY: buffers sized as the ABI requires; the C side checks b, t, ids.
        let st = unsafe {
            (self.lib.backward)(
                self.ctx,
                tokens.as_ptr(),
                targets.as_ptr(),
                b as c_int,
                t as c_int,
                &mut loss,
            )
        };
        self.check(st)?;
        Ok(loss)
    }

    /// [`Session::backward`] that calls `hook(user, offset, floats)` from
    /// this thread as each parameter's gradient becomes final (once per
    /// parameter, the ranges tiling the gradient region), so a caller can
    /// start reducing them while the backward goes on.
    ///
    /// # Safety
    ///
    /// `hook` may be called with `user` at any time during the
    /// call; what `user` points at must stay valid for that.
    pub unsafe fn backward_reporting(
        &mut self,
        tokens: &[i32],
        targets: &[i32],
        b: usize,
        t: usize,
        hook: GradHook,
        user: *mut c_void,
    ) -> Result<f32> {
        (self.lib.set_grad_hook)(self.ctx, Some(hook), user);
        let r = self.backward(tokens, targets, b, t);
        (self.lib.set_grad_hook)(self.ctx, None, std::ptr::null_mut());
        r
    }

    /// One optimizer step: zero the gradient, run forward + backward on each
    /// micro-batch `(tokens, targets)` of shape (b, t), then AdamW with the
    /// gradient averaged over them. Returns (mean loss, gradient norm).
    pub fn train_step(
        &mut self,
        micro: &[(Vec<i32>, Vec<i32>)],
        b: usize,
        t: usize,
        cfg: &AdamwConfig,
    ) -> Result<(f32, f32)> {
        if micro.is_empty() {
            return Err(Error::new("train_step needs at least one micro-batch"));
        }
        self.zero_grads();
        let mut total = 0.0f64;
        for (tokens, targets) in micro {
            total += self.backward(tokens, targets, b, t)? as f64;
        }
        let cfg = AdamwConfig {
            grad_scale: 1.0 / micro.len() as f32,
            ..*cfg
        };
        let norm = self.adamw_step(&cfg)?;
        Ok(((total / micro.len() as f64) as f32, norm))
    }

    /// One AdamW step from the accumulated gradient; returns the gradient norm.
    pub fn adamw_step(&mut self, cfg: &AdamwConfig) -> Result<f32> {
        let mut norm = 0f32;
        // SAFETY: valid context and config.
        let st = unsafe { (self.lib.adamw)(self.ctx, cfg, &mut norm) };
        self.check(st)?;
        Ok(norm)
    }
}

/// Generation over the key/value cache.
impl Session {
    /// Start a new sequence with `tokens` (each computed once, into the
    /// cache); the logits (V) of the last one.
    pub fn prefill(&mut self, tokens: &[i32]) -> Result<Vec<f32>> {
        let mut logits = vec![0f32; self.lib.vocab];
        // SAFETY: a logits buffer of V floats; the C side checks the length and ids.
        let st = unsafe {
            (self.lib.prefill)(
                self.ctx,
                tokens.as_ptr(),
                tokens.len().min(c_int::MAX as usize) as c_int,
                logits.as_mut_ptr(),
            )
        };
        self.check(st)?;
        Ok(logits)
    }

    /// Append one token to the sequence in the cache; its logits (V).
    pub fn decode(&mut self, token: i32) -> Result<Vec<f32>> {
        let mut logits = vec![0f32; self.lib.vocab];
        // SAFETY: as in prefill.
        let st = unsafe { (self.lib.decode)(self.ctx, token, logits.as_mut_ptr()) };
        self.check(st)?;
        Ok(logits)
    }

    /// Tokens in the cache.
    pub fn cache_len(&self) -> usize {
        // SAFETY: valid context.
        unsafe { (self.lib.cache_len)(self.ctx) as usize }
    }

    /// Sample up to `max_new` tokens after `prompt` through the cache,
    /// stopping early at `eos` (not returned) or when the context is full;
    /// the new tokens. Text-level stops (`</svg>`) are
    /// [`crate::generate::generate_with`]'s.
    pub fn generate(
        &mut self,
        prompt: &[i32],
        cfg: &crate::sample::SamplingConfig,
        max_new: usize,
        eos: Option<i32>,
    ) -> Result<Vec<i32>> {
        cfg.validate()?;
        let mut sampler = crate::sample::Sampler::new(cfg.clone());
        let mut seq = prompt.to_vec();
        let mut logits = self.prefill(prompt)?;
        let context = self.lib.context;
        let room = |seq: &[i32], new: usize| new < max_new && seq.len() < context;
        while room(&seq, seq.len() - prompt.len()) {
            let t = sampler.next(&logits, &seq);
            if Some(t) == eos {
                break;
            }
            seq.push(t);
            if room(&seq, seq.len() - prompt.len()) {
                logits = self.decode(t)?;
            }
        }
        Ok(seq.split_off(prompt.len()))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: the context came from create() and is destroyed once.
        unsafe { (self.lib.destroy)(self.ctx) }
    }
}
