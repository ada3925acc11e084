//! The model spec: one TOML file describing a transformer, how to build it,
//! and its training recipe.
//!
//! Parsing is two steps. serde reads the file into `Raw*` structs whose fields
//! keep their source span; `resolve` then applies the family defaults and checks
//! the numbers against each other. Every error, from either step, names the file,
//! line, column and field, and says what was expected.
//!
//! Every section is read here, once, so every command that takes a spec
//! (`irc build` included) rejects a bad section of it: `[model]`, `[build]`
//! and `[train]` ([`TrainSpec`]) resolved field by field, `[generate]` and
//! `[eval]` ([`GenerateConfig`], [`EvalConfig`]) and `[data]` and
//! `[tokenizer]` (whose types belong to their stages) typed by serde.

mod generate;
pub mod range;
mod train;

pub use generate::{EvalConfig, GenerateConfig};
pub use train::{LrSchedule, TrainSpec};

use crate::data::DataConfig;
use crate::tokenizer::TokenizerConfig;

use crate::error::{Error, Result};
pub use crate::quant::WeightFormat;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Architecture family: decides parameter names (Hugging Face layouts) and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// `GPT2LMHeadModel`: LayerNorm, learned positions, GELU MLP, biases, tied head.
    Gpt2,
    /// `LlamaForCausalLM`: RMSNorm, RoPE, SwiGLU MLP, no biases, separate head.
    Llama,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    LayerNorm,
    RmsNorm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    Learned,
    Rope,
}

/// The MLP's activation: an op of `crate::ops` (its spec name there).
pub use crate::ops::Act as Activation;

/// SIMD path of the emitted C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Detect the host: avx512 if present, else avx2, else neon on aarch64, else scalar.
    Native,
    Avx512,
    Avx2,
    Neon,
    Scalar,
}

impl Target {
    pub const ALL: [Target; 5] = [
        Target::Native,
        Target::Avx512,
        Target::Avx2,
        Target::Neon,
        Target::Scalar,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Native => "native",
            Target::Avx512 => "avx512",
            Target::Avx2 => "avx2",
            Target::Neon => "neon",
            Target::Scalar => "scalar",
        }
    }

    /// The concrete path `native` stands for on this host.
    pub fn resolve(self) -> Target {
        if self != Target::Native {
            return self;
        }
        Target::host_best()
    }

    #[allow(unreachable_code)]
    pub fn host_best() -> Target {
        #[cfg(target_arch = "x86_64")]
        {
            if Target::Avx512.host_can_run() {
                return Target::Avx512;
            }
            if Target::Avx2.host_can_run() {
                return Target::Avx2;
            }
            return Target::Scalar;
        }
        #[cfg(target_arch = "aarch64")]
        {
            return Target::Neon;
        }
        Target::Scalar
    }

    /// Whether code built for this path runs on the host CPU.
    pub fn host_can_run(self) -> bool {
        match self {
            Target::Native | Target::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Target::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Target::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "aarch64")]
            Target::Neon => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every concrete path the host can run, scalar first.
    pub fn host_paths() -> Vec<Target> {
        [Target::Scalar, Target::Avx2, Target::Avx512, Target::Neon]
            .into_iter()
            .filter(|t| t.host_can_run())
            .collect()
    }
}

/// Element type of activations and weights in the emitted C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    /// GEMM operands rounded to bfloat16, products summed in f32; everything
    /// else (master weights, AdamW, norms, softmax, the loss) stays f32.
    Bf16,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::Bf16 => "bf16",
        }
    }
}

/// How a bf16 GEMM multiplies (`[build].bf16_dot`). Both give the same bits
/// (runtime-c/irc_gemm_bf16.h), so this is a choice of speed only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bf16Dot {
    /// `native` when the path is avx512 and the building CPU has AVX512-BF16.
    #[default]
    Auto,
    /// `vdpbf16ps` (AVX512-BF16); needs the avx512 path.
    Native,
    /// bf16 values widened to f32 and FMAs, in `vdpbf16ps`'s order.
    Emulated,
}

impl Bf16Dot {
    /// Whether a build for `target` (resolved) runs `vdpbf16ps`.
    pub fn native_on(self, target: Target) -> bool {
        match self {
            Bf16Dot::Native => true,
            Bf16Dot::Emulated => false,
            Bf16Dot::Auto => target == Target::Avx512 && Bf16Dot::host_has_native(),
        }
    }

    /// Whether this CPU has AVX512-BF16.
    pub fn host_has_native() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            Target::Avx512.host_can_run() && std::arch::is_x86_feature_detected!("avx512bf16")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

/// The resolved `[model]` section: every default applied, every check passed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSpec {
    pub name: String,
    pub family: Family,
    pub vocab_size: usize,
    /// Maximum positions (learned position table rows, or the RoPE horizon).
    pub context: usize,
    pub layers: usize,
    pub d_model: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub ffn_hidden: usize,
    pub norm: Norm,
    pub norm_eps: f64,
    pub position: Position,
    pub rope_theta: f64,
    pub activation: Activation,
    pub bias: bool,
    pub tied_embeddings: bool,
    /// Standard deviation of the normal init (HF `initializer_range`).
    pub init_std: f64,
}

impl ModelSpec {
    pub fn head_dim(&self) -> usize {
        self.d_model / self.heads
    }

    /// The sizes [`crate::limits`] checks, with the compiled batch shape.
    pub fn dims(&self, build: &BuildSpec) -> crate::limits::Dims {
        let n = |v: usize| v as u64;
        crate::limits::Dims {
            vocab_size: n(self.vocab_size),
            context: n(self.context),
            layers: n(self.layers),
            d_model: n(self.d_model),
            heads: n(self.heads),
            kv_heads: n(self.kv_heads),
            ffn_hidden: n(self.ffn_hidden),
            packed_qkv: self.family == Family::Gpt2,
            learned_positions: self.position == Position::Learned,
            batch: n(build.batch),
            seq_len: n(build.seq_len),
        }
    }
}

/// The resolved `[build]` section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildSpec {
    pub target: Target,
    pub dtype: DType,
    /// How the generation programs hold the linear layers' weights (the
    /// rest of the library is f32). Left out of the build hash when f32, so
    /// other builds do not change.
    #[serde(skip_serializing_if = "WeightFormat::is_f32")]
    pub weights: WeightFormat,
    /// The bf16 GEMM's multiply (with `dtype = "bf16"`).
    #[serde(skip_serializing_if = "is_auto")]
    pub bf16_dot: Bf16Dot,
    /// Default thread count of a new model context (0 = all cores).
    pub threads: usize,
    /// C optimization level, 0..=3.
    pub opt_level: u8,
    /// Compiled batch size: the forward runs on up to `batch` sequences at once.
    pub batch: usize,
    /// Compiled sequence length: up to `seq_len` tokens per sequence.
    pub seq_len: usize,
    /// Time every kernel call (`irc profile`; the ABI's `_profile_*`).
    pub profile: bool,
    /// A training step recomputes its activations and norm outputs in the
    /// backward rather than keeping them from the forward (less memory, a
    /// little more arithmetic). Left out of the build hash when on, the
    /// default.
    #[serde(skip_serializing_if = "is_true")]
    pub recompute: bool,
    /// `irc build --sanitize`: AddressSanitizer and UndefinedBehaviorSanitizer,
    /// with poisoned guard gaps between activation buffers. Not a spec field;
    /// left out of the build hash when off, so other builds do not change.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sanitize: bool,
}

/// A parsed, checked spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spec {
    #[serde(skip)]
    pub path: PathBuf,
    /// The file's text, kept for diagnostics and for the build hash.
    #[serde(skip)]
    pub source: String,
    /// Whether `source` is the file's own text, so errors can give a line
    /// and column in it (not for a sweep variant, which irc re-wrote).
    #[serde(skip)]
    pub located: bool,
    pub model: ModelSpec,
    pub build: BuildSpec,
    /// The training recipe (`[train]`, defaults when absent).
    pub train: TrainSpec,
    /// `[data]`, with relative `source` paths taken from the spec's folder.
    #[serde(skip)]
    pub data: DataConfig,
    /// `[tokenizer]`, with a relative `path` taken from the spec's folder.
    #[serde(skip)]
    pub tokenizer: TokenizerConfig,
    /// `[generate]`: how `irc run` samples.
    #[serde(skip)]
    pub generate: GenerateConfig,
    /// `[eval]`: how many held-out prompts `irc run` scores.
    #[serde(skip)]
    pub eval: EvalConfig,
    /// The later stages' sections as written (`[train]`, `[data]`, `[tokenizer]`,
    /// `[generate]`, `[eval]`), untyped; the typed fields above are what stages read.
    #[serde(skip)]
    pub sections: toml::Table,
}

// ---------------------------------------------------------------------------
// Raw (as written) structs. Every field is optional and remembers its span.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDoc {
    model: Option<Spanned<RawModel>>,
    build: Option<Spanned<RawBuild>>,
    train: Option<toml::Table>,
    data: Option<toml::Table>,
    tokenizer: Option<toml::Table>,
    generate: Option<toml::Table>,
    eval: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: Option<Spanned<String>>,
    family: Option<Spanned<String>>,
    vocab_size: Option<Spanned<i64>>,
    context: Option<Spanned<i64>>,
    layers: Option<Spanned<i64>>,
    d_model: Option<Spanned<i64>>,
    heads: Option<Spanned<i64>>,
    kv_heads: Option<Spanned<i64>>,
    ffn_hidden: Option<Spanned<i64>>,
    norm: Option<Spanned<String>>,
    norm_eps: Option<Spanned<f64>>,
    position: Option<Spanned<String>>,
    rope_theta: Option<Spanned<f64>>,
    activation: Option<Spanned<String>>,
    bias: Option<Spanned<bool>>,
    tied_embeddings: Option<Spanned<bool>>,
    init_std: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    target: Option<Spanned<String>>,
    dtype: Option<Spanned<String>>,
    weights: Option<Spanned<String>>,
    bf16_dot: Option<Spanned<String>>,
    threads: Option<Spanned<i64>>,
    opt_level: Option<Spanned<i64>>,
    batch: Option<Spanned<i64>>,
    seq_len: Option<Spanned<i64>>,
    profile: Option<Spanned<bool>>,
    recompute: Option<Spanned<bool>>,
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_auto(d: &Bf16Dot) -> bool {
    *d == Bf16Dot::Auto
}

/// serde's wording, in the user's terms rather than Rust's.
fn plain_words(msg: &str) -> String {
    let mut m = msg.to_string();
    if m.contains(" as i128, expected i64") || m.contains(" as u128") {
        return "the number is too large for an integer".to_string();
    }
    for (rust, user) in [
        ("expected i64", "expected an integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected f64", "expected a number"),
        ("expected struct RawModel", "expected a table ([model])"),
        ("expected struct RawBuild", "expected a table ([build])"),
        ("expected struct TrainSpec", "expected a table ([train])"),
        ("expected struct DataConfig", "expected a table ([data])"),
        (
            "expected struct GenerateConfig",
            "expected a table ([generate])",
        ),
        ("expected struct EvalConfig", "expected a table ([eval])"),
        (
            "expected struct TokenizerConfig",
            "expected a table ([tokenizer])",
        ),
    ] {
        m = m.replace(rust, user);
    }
    if let Some(rest) = m.strip_prefix("unknown field `") {
        // At the top level the "fields" are sections.
        if rest.contains("expected one of `model`") {
            let name = rest.split('`').next().unwrap_or("");
            return format!(
                "unknown section [{name}], expected one of [model], [build], [train], [data], [tokenizer], [generate], [eval]"
            );
        }
    }
    m
}

/// Turns byte spans into `file:line:col` diagnostics.
struct Diag<'a> {
    path: &'a Path,
    src: &'a str,
    /// `src` is the file's text: places are `file:line:col`, else `file`.
    located: bool,
}

impl Diag<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let before = &self.src[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        (line, col)
    }

    /// Where `offset` is, as `file:line:col` (or `file` in a text irc made).
    fn place(&self, offset: usize) -> String {
        if !self.located {
            return self.path.display().to_string();
        }
        let (line, col) = self.line_col(offset);
        format!("{}:{line}:{col}", self.path.display())
    }

    fn at(&self, span: std::ops::Range<usize>, field: &str, msg: impl std::fmt::Display) -> Error {
        Error::new(format!("{}: {field}: {msg}", self.place(span.start)))
    }

    /// A serde/toml error: recover the field name from the `key = value` line
    /// the span points into, since toml's message does not always carry it.
    fn toml_error(&self, e: &toml::de::Error) -> Error {
        let msg = plain_words(e.message().trim_end());
        let Some(span) = e.span() else {
            return Error::new(format!("{}: {msg}", self.path.display()));
        };
        let field = self.field_at(span.start);
        let field = field.map(|f| format!("{f}: ")).unwrap_or_default();
        Error::new(format!("{}: {field}{msg}", self.place(span.start)))
    }

    /// `[section].key` for the line containing `offset`, if it is a key line.
    fn field_at(&self, offset: usize) -> Option<String> {
        let offset = offset.min(self.src.len());
        let line_start = self.src[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.src[offset..]
            .find('\n')
            .map_or(self.src.len(), |i| offset + i);
        let line = &self.src[line_start..line_end];
        let section = self.src[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('[') && l.ends_with(']'))
            .map(|l| l.to_string());
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if !key.is_empty() && !key.starts_with('[') && !key.starts_with('#') {
                return Some(match section {
                    Some(s) => format!("{s}.{key}"),
                    None => key.to_string(),
                });
            }
        }
        let t = line.trim();
        (t.starts_with('[') && t.ends_with(']')).then(|| t.to_string())
    }
}

fn choice<T: Copy>(
    d: &Diag,
    field: &str,
    v: &Option<Spanned<String>>,
    options: &[(&str, T)],
) -> Result<Option<T>> {
    let Some(v) = v else { return Ok(None) };
    for (name, val) in options {
        if v.get_ref() == name {
            return Ok(Some(*val));
        }
    }
    let names: Vec<String> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    Err(d.at(
        v.span(),
        field,
        format!(
            "unknown value \"{}\", expected one of {}",
            v.get_ref(),
            names.join(", ")
        ),
    ))
}

/// A positive integer field (≥ `min`), or `default` when absent.
fn count(
    d: &Diag,
    field: &str,
    v: &Option<Spanned<i64>>,
    min: i64,
    default: Option<usize>,
    section_span: std::ops::Range<usize>,
) -> Result<usize> {
    match v {
        Some(v) if *v.get_ref() < min => Err(d.at(
            v.span(),
            field,
            format!("must be at least {min}, found {}", v.get_ref()),
        )),
        Some(v) if *v.get_ref() > (1 << 40) => Err(d.at(
            v.span(),
            field,
            format!("{} is too large; expected at most 2^40", v.get_ref()),
        )),
        Some(v) => Ok(*v.get_ref() as usize),
        None => default.ok_or_else(|| {
            d.at(
                section_span,
                field,
                "missing; expected a positive integer".to_string(),
            )
        }),
    }
}

fn positive_f64(d: &Diag, field: &str, v: &Option<Spanned<f64>>, default: f64) -> Result<f64> {
    match v {
        Some(v) if !(v.get_ref().is_finite() && *v.get_ref() > 0.0) => Err(d.at(
            v.span(),
            field,
            format!("must be a positive finite number, found {}", v.get_ref()),
        )),
        Some(v) => Ok(*v.get_ref()),
        None => Ok(default),
    }
}

impl Spec {
    /// Read and check a spec file.
    pub fn load(path: &Path) -> Result<Spec> {
        let src = crate::util::user_file_text(path)
            .map_err(|why| Error::new(format!("{}: cannot read spec: {why}", path.display())))?;
        Spec::parse(path, &src)
    }

    /// Parse spec text; `path` is only used in messages.
    pub fn parse(path: &Path, src: &str) -> Result<Spec> {
        Spec::parse_text(path, src, true)
    }

    /// [`Spec::parse`] of a text irc wrote for the spec at `path` (a sweep
    /// variant): its errors name the file but no line, which would be the
    /// re-written text's.
    pub fn parse_rewritten(path: &Path, src: &str) -> Result<Spec> {
        Spec::parse_text(path, src, false)
    }

    fn parse_text(path: &Path, src: &str, located: bool) -> Result<Spec> {
        let d = Diag { path, src, located };
        let raw: RawDoc = toml::from_str(src).map_err(|e| d.toml_error(&e))?;
        let Some(model) = raw.model else {
            return Err(d.at(
                0..0,
                "[model]",
                "missing section; every spec needs a [model] table with at least `family`",
            ));
        };
        let model = resolve_model(&d, model)?;
        let train = resolve_train(&d, src)?;
        let build = resolve_build(&d, raw.build, &model, &train)?;
        check_limits(&d, &model, &build)?;
        let stages = resolve_stage_sections(&d, src, model.vocab_size)?;
        let mut sections = toml::Table::new();
        for (k, v) in [
            ("train", raw.train),
            ("data", raw.data),
            ("tokenizer", raw.tokenizer),
            ("generate", raw.generate),
            ("eval", raw.eval),
        ] {
            if let Some(v) = v {
                sections.insert(k.to_string(), toml::Value::Table(v));
            }
        }
        Ok(Spec {
            path: path.to_path_buf(),
            source: src.to_string(),
            located,
            model,
            build,
            train,
            data: stages.data,
            tokenizer: stages.tokenizer,
            generate: stages.generate,
            eval: stages.eval,
            sections,
        })
    }

    /// A serde error from reading another section of this spec's text, as
    /// `file:line:col: [section].field: message`.
    pub fn toml_error(&self, e: &toml::de::Error) -> Error {
        Diag {
            path: &self.path,
            src: &self.source,
            located: self.located,
        }
        .toml_error(e)
    }

    /// An error about `[section].key` found after parsing (the memory a
    /// build needs), at the field's place in the file as a parse error
    /// would be: `file:line:col: [section].key: message`.
    pub fn field_error(&self, section: &str, key: &str, msg: impl std::fmt::Display) -> Error {
        let d = Diag {
            path: &self.path,
            src: &self.source,
            located: self.located,
        };
        let (at, field) = field_place(&self.source, section, key);
        d.at(at..at, &field, msg)
    }

    /// Hash of everything that decides the emitted code.
    pub fn build_hash(&self) -> String {
        let key = serde_json::json!({ "model": self.model, "build": self.build, "irc": env!("CARGO_PKG_VERSION") });
        crate::util::sha256_hex(key.to_string().as_bytes())[..16].to_string()
    }
}

/// The activations a family's MLP takes (plain for GPT-2, gated for
/// Llama), as `"a"` or `"a", "b" or "c"`.
fn activation_names(gpt2: bool) -> String {
    let v: Vec<String> = Activation::ALL
        .iter()
        .filter(|a| a.def().gated != gpt2)
        .map(|a| format!("\"{}\"", a.def().spec))
        .collect();
    match v.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => v.join(""),
    }
}

fn resolve_model(d: &Diag, raw: Spanned<RawModel>) -> Result<ModelSpec> {
    let span = raw.span();
    let m = raw.into_inner();
    let family = choice(
        d,
        "[model].family",
        &m.family,
        &[("gpt2", Family::Gpt2), ("llama", Family::Llama)],
    )?
    .ok_or_else(|| {
        d.at(
            span.clone(),
            "[model].family",
            "missing; expected \"gpt2\" or \"llama\"",
        )
    })?;
    let gpt2 = family == Family::Gpt2;
    let Dims {
        vocab_size,
        context,
        layers,
        d_model,
        heads,
        kv_heads,
    } = model_dims(d, &m, span.clone())?;
    let default_ffn = if gpt2 {
        4 * d_model
    } else {
        // Llama's rule of thumb: 2/3 of 4·d, rounded up to a multiple of 32.
        (8 * d_model / 3).div_ceil(32) * 32
    };
    let ffn_hidden = count(
        d,
        "[model].ffn_hidden",
        &m.ffn_hidden,
        1,
        Some(default_ffn),
        span.clone(),
    )?;
    let norm = choice(
        d,
        "[model].norm",
        &m.norm,
        &[("layernorm", Norm::LayerNorm), ("rmsnorm", Norm::RmsNorm)],
    )?
    .unwrap_or(if gpt2 { Norm::LayerNorm } else { Norm::RmsNorm });
    let norm_eps = positive_f64(
        d,
        "[model].norm_eps",
        &m.norm_eps,
        if gpt2 { 1e-5 } else { 1e-6 },
    )?;
    let position = choice(
        d,
        "[model].position",
        &m.position,
        &[("learned", Position::Learned), ("rope", Position::Rope)],
    )?
    .unwrap_or(if gpt2 {
        Position::Learned
    } else {
        Position::Rope
    });
    let rope_theta = positive_f64(d, "[model].rope_theta", &m.rope_theta, 10000.0)?;
    let head_dim = d_model / heads;
    if position == Position::Rope && head_dim % 2 != 0 {
        let s = m.heads.as_ref().map_or(span.clone(), |h| h.span());
        return Err(d.at(
            s,
            "[model].heads",
            format!("rope needs an even head dimension, but d_model / heads = {head_dim}"),
        ));
    }
    let names: Vec<(&str, Activation)> =
        Activation::ALL.iter().map(|a| (a.def().spec, *a)).collect();
    let activation = choice(d, "[model].activation", &m.activation, &names)?.unwrap_or(if gpt2 {
        Activation::GeluTanh
    } else {
        Activation::Silu
    });
    let bias = m.bias.as_ref().map_or(gpt2, |b| *b.get_ref());
    let tied_embeddings = m.tied_embeddings.as_ref().map_or(gpt2, |b| *b.get_ref());
    let init_std = positive_f64(d, "[model].init_std", &m.init_std, 0.02)?;
    check_family_layout(
        d,
        &m,
        span.clone(),
        gpt2,
        (norm, position, activation),
        (heads, kv_heads),
    )?;
    let name = model_name(d, &m.name)?;
    Ok(ModelSpec {
        name,
        family,
        vocab_size,
        context,
        layers,
        d_model,
        heads,
        kv_heads,
        ffn_hidden,
        norm,
        norm_eps,
        position,
        rope_theta,
        activation,
        bias,
        tied_embeddings,
        init_std,
    })
}

/// `[model]`'s sizes, with heads dividing d_model and kv_heads dividing heads.
struct Dims {
    vocab_size: usize,
    context: usize,
    layers: usize,
    d_model: usize,
    heads: usize,
    kv_heads: usize,
}

fn model_dims(d: &Diag, m: &RawModel, span: std::ops::Range<usize>) -> Result<Dims> {
    let vocab_size = count(
        d,
        "[model].vocab_size",
        &m.vocab_size,
        2,
        None,
        span.clone(),
    )?;
    let context = count(d, "[model].context", &m.context, 1, None, span.clone())?;
    let layers = count(d, "[model].layers", &m.layers, 1, None, span.clone())?;
    let d_model = count(d, "[model].d_model", &m.d_model, 1, None, span.clone())?;
    let heads = count(d, "[model].heads", &m.heads, 1, None, span.clone())?;
    divides(d, &m.heads, "heads", heads, ("d_model", d_model))?;
    let kv_heads = count(
        d,
        "[model].kv_heads",
        &m.kv_heads,
        1,
        Some(heads),
        span.clone(),
    )?;
    divides(d, &m.kv_heads, "kv_heads", kv_heads, ("heads", heads))?;
    Ok(Dims {
        vocab_size,
        context,
        layers,
        d_model,
        heads,
        kv_heads,
    })
}

/// `[model].<field>` = `n` (given in the spec, at `raw`) divides `of`.
fn divides(
    d: &Diag,
    raw: &Option<Spanned<i64>>,
    field: &str,
    n: usize,
    (of_name, of): (&str, usize),
) -> Result<()> {
    match raw {
        Some(v) if of % n != 0 => Err(d.at(
            v.span(),
            &format!("[model].{field}"),
            format!("{n} {field} do not divide {of_name} = {of}; expected a divisor of {of_name}"),
        )),
        _ => Ok(()),
    }
}

/// `[model].name`, or the spec file's stem made into a name.
fn model_name(d: &Diag, name: &Option<Spanned<String>>) -> Result<String> {
    Ok(match name {
        Some(n) => {
            let v = n.get_ref();
            let ok = !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                && !v.starts_with(|c: char| c.is_ascii_digit());
            if !ok {
                return Err(d.at(
                    n.span(),
                    "[model].name",
                    format!("\"{v}\" is not a valid name; expected letters, digits, '_' or '-', not starting with a digit"),
                ));
            }
            v.clone()
        }
        None => d
            .path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(sanitize_name)
            .unwrap_or_else(|| "model".into()),
    })
}

/// The Hugging Face layouts fix some choices per family; say so rather than
/// emit weights no other tool can read.
fn check_family_layout(
    d: &Diag,
    m: &RawModel,
    span: std::ops::Range<usize>,
    gpt2: bool,
    (norm, position, activation): (Norm, Position, Activation),
    (heads, kv_heads): (usize, usize),
) -> Result<()> {
    let fixed: [(&str, bool, Option<std::ops::Range<usize>>); 3] = [
        (
            "norm",
            (norm == Norm::LayerNorm) == gpt2,
            m.norm.as_ref().map(|v| v.span()),
        ),
        (
            "position",
            (position == Position::Learned) == gpt2,
            m.position.as_ref().map(|v| v.span()),
        ),
        (
            "activation",
            activation.def().gated != gpt2,
            m.activation.as_ref().map(|v| v.span()),
        ),
    ];
    for (field, ok, s) in fixed {
        if !ok {
            let want = match (field, gpt2) {
                ("norm", true) => "\"layernorm\"".to_string(),
                ("norm", false) => "\"rmsnorm\"".to_string(),
                ("position", true) => "\"learned\"".to_string(),
                ("position", false) => "\"rope\"".to_string(),
                _ => activation_names(gpt2),
            };
            return Err(d.at(
                s.unwrap_or(span.clone()),
                &format!("[model].{field}"),
                format!(
                    "family \"{}\" uses {field} = {want} (its Hugging Face layout has no other)",
                    if gpt2 { "gpt2" } else { "llama" }
                ),
            ));
        }
    }
    if gpt2 && kv_heads != heads {
        let s = m.kv_heads.as_ref().unwrap().span();
        return Err(d.at(
            s,
            "[model].kv_heads",
            format!("family \"gpt2\" has no grouped-query attention; expected kv_heads = heads = {heads}"),
        ));
    }
    Ok(())
}

/// A file stem as an identifier-friendly model name.
pub fn sanitize_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'm');
    }
    out
}

/// `[train]`, typed; type errors carry their own span, range errors point at
/// the field's line.
fn resolve_train(d: &Diag, src: &str) -> Result<TrainSpec> {
    #[derive(Deserialize)]
    struct Doc {
        train: Option<Spanned<TrainSpec>>,
    }
    let doc: Doc = toml::from_str(src).map_err(|e| d.toml_error(&e))?;
    let Some(t) = doc.train else {
        return Ok(TrainSpec::default());
    };
    let span = t.span();
    let t = t.into_inner();
    if let Some((field, msg)) = t.problems() {
        let at = key_offset(src, span, field);
        return Err(d.at(at..at, &format!("[train].{field}"), msg));
    }
    Ok(t)
}

/// Where the `[train]` table's header line starts.
fn train_table_start(src: &str) -> Option<usize> {
    table_start(src, "train")
}

/// Where the `[name]` table's header line starts.
fn table_start(src: &str, name: &str) -> Option<usize> {
    let header = format!("[{name}]");
    let mut at = 0;
    for line in src.split_inclusive('\n') {
        if line.trim_start().starts_with(&header) {
            return Some(at + line.len() - line.trim_start().len());
        }
        at += line.len();
    }
    None
}

/// Where the value of `key = value` in the `[section]` table starts, if the
/// key is written there.
fn value_offset(src: &str, section: &str, key: &str) -> Option<usize> {
    let table = table_start(src, section)?;
    let line = key_offset(src, table..src.len(), key);
    let rest = &src[line..];
    let (k, v) = rest.split_once('=')?;
    if line == table || k.trim() != key {
        return None;
    }
    Some(line + k.len() + 1 + (v.len() - v.trim_start().len()))
}

/// `[section].key`'s place for a message about it: its value where it is
/// written; a compiled batch shape given only in `[train]` there; else the
/// section's header (or the file's start). Returns the field as named there.
fn field_place(src: &str, section: &str, key: &str) -> (usize, String) {
    if let Some(at) = value_offset(src, section, key) {
        return (at, format!("[{section}].{key}"));
    }
    if section == "build" && matches!(key, "batch" | "seq_len") {
        if let Some(at) = value_offset(src, "train", key) {
            return (at, format!("[train].{key}"));
        }
    }
    let at = table_start(src, section)
        .or_else(|| table_start(src, "model"))
        .unwrap_or(0);
    (at, format!("[{section}].{key}"))
}

/// Where `field = ...` starts in the table beginning at `span` (up to the
/// next table header; the table's start when the field is not written
/// there), so a range error points at its line.
fn key_offset(src: &str, span: std::ops::Range<usize>, field: &str) -> usize {
    src[span.start..]
        .lines()
        .enumerate()
        .take_while(|(i, l)| *i == 0 || !l.trim_start().starts_with('['))
        .map(|(_, l)| l)
        .scan(span.start, |off, l| {
            let here = *off;
            *off += l.len() + 1;
            Some((here, l))
        })
        .find(|(_, l)| l.trim_start().starts_with(field) && l.contains('='))
        .map(|(o, l)| o + (l.len() - l.trim_start().len()))
        .unwrap_or(span.start)
}

/// The sections later stages read, typed: serde's errors carry their span,
/// and the range checks of `[generate]` and `[eval]` run as they are read.
#[derive(Deserialize)]
struct RawStageSections {
    data: Option<Spanned<DataConfig>>,
    tokenizer: Option<Spanned<TokenizerConfig>>,
    #[serde(default)]
    generate: GenerateConfig,
    #[serde(default)]
    eval: EvalConfig,
}

struct StageSections {
    data: DataConfig,
    tokenizer: TokenizerConfig,
    generate: GenerateConfig,
    eval: EvalConfig,
}

fn resolve_stage_sections(d: &Diag, src: &str, model_vocab: usize) -> Result<StageSections> {
    let raw: RawStageSections = toml::from_str(src).map_err(|e| d.toml_error(&e))?;
    let data = match raw.data {
        Some(t) => {
            let span = t.span();
            let data = t.into_inner();
            if let Some((field, msg)) = data_problems(&data) {
                let at = key_offset(src, span, field);
                return Err(d.at(at..at, &format!("[data].{field}"), msg));
            }
            data
        }
        None => DataConfig::default(),
    };
    let tokenizer = match raw.tokenizer {
        Some(t) => {
            let span = t.span();
            let tokenizer = t.into_inner();
            if let Some((field, msg)) = tokenizer_problems(&tokenizer, model_vocab) {
                let at = key_offset(src, span, field);
                return Err(d.at(at..at, &format!("[tokenizer].{field}"), msg));
            }
            tokenizer
        }
        None => TokenizerConfig::default(),
    };
    let mut s = StageSections {
        data,
        tokenizer,
        generate: raw.generate,
        eval: raw.eval,
    };
    // Data paths are written relative to the spec, not to the working folder.
    let base = d.path.parent().unwrap_or(Path::new(""));
    for p in s.data.source.iter_mut() {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    if let Some(p) = s.tokenizer.path.as_mut() {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    Ok(s)
}

/// The `[data]` numbers serde cannot check by type alone (the ingest
/// would reject them later, without a place); `irc data ingest`'s flags
/// check the same [`range`]s.
fn data_problems(d: &DataConfig) -> Option<(&'static str, String)> {
    first_problem([
        ("val_ratio", range::fraction(d.val_ratio).err()),
        ("near_threshold", range::similarity(d.near_threshold).err()),
        ("max_len", range::at_least_one(d.max_len).err()),
        ("synthetic", range::rows(d.synthetic).err()),
        ("synth_count", range::rows(d.synth_count).err()),
    ])
}

/// The `[tokenizer]` numbers, as `irc tokenizer train`'s flags check them.
fn tokenizer_problems(t: &TokenizerConfig, model_vocab: usize) -> Option<(&'static str, String)> {
    let trained = t.path.is_none();
    first_problem([
        ("min_frequency", range::at_least_one(t.min_frequency).err()),
        (
            "vocab_size",
            (trained && t.vocab_size > model_vocab).then(|| {
                format!(
                    "{} exceeds [model].vocab_size = {model_vocab}; expected at most the model's vocabulary",
                    t.vocab_size
                )
            }),
        ),
    ])
    .or_else(|| crate::tokenizer::train::config_problem(t).filter(|_| trained))
}

fn first_problem<const N: usize>(
    checks: [(&'static str, Option<String>); N],
) -> Option<(&'static str, String)> {
    checks
        .into_iter()
        .find_map(|(field, e)| e.map(|msg| (field, msg)))
}

/// The model's sizes within what the emitted C indexes
/// ([`crate::limits::check_dims`]), checked before anything is lowered.
fn check_limits(d: &Diag, model: &ModelSpec, build: &BuildSpec) -> Result<()> {
    crate::limits::check_dims(&model.dims(build)).map_err(|b| {
        let (at, field) = field_place(d.src, b.section, b.key);
        d.at(at..at, &field, b.message)
    })
}

fn resolve_build(
    d: &Diag,
    raw: Option<Spanned<RawBuild>>,
    model: &ModelSpec,
    train: &TrainSpec,
) -> Result<BuildSpec> {
    let (span, b) = match raw {
        Some(r) => (r.span(), r.into_inner()),
        None => (
            0..0,
            RawBuild {
                target: None,
                dtype: None,
                weights: None,
                bf16_dot: None,
                threads: None,
                opt_level: None,
                batch: None,
                seq_len: None,
                profile: None,
                recompute: None,
            },
        ),
    };
    let target = choice(
        d,
        "[build].target",
        &b.target,
        &Target::ALL.map(|t| (t.name(), t)),
    )?
    .unwrap_or(Target::Native);
    let weights = choice(
        d,
        "[build].weights",
        &b.weights,
        &WeightFormat::ALL.map(|w| (w.name(), w)),
    )?
    .unwrap_or_default();
    let dtype = choice(
        d,
        "[build].dtype",
        &b.dtype,
        &[DType::F32, DType::Bf16].map(|t| (t.name(), t)),
    )?
    .unwrap_or(DType::F32);
    let bf16_dot = choice(
        d,
        "[build].bf16_dot",
        &b.bf16_dot,
        &[
            ("auto", Bf16Dot::Auto),
            ("native", Bf16Dot::Native),
            ("emulated", Bf16Dot::Emulated),
        ],
    )?
    .unwrap_or_default();
    if let Some(v) = &b.bf16_dot {
        if dtype != DType::Bf16 {
            return Err(d.at(
                v.span(),
                "[build].bf16_dot",
                "applies to bf16 GEMMs only; set [build].dtype = \"bf16\" too",
            ));
        }
        if bf16_dot == Bf16Dot::Native && !matches!(target, Target::Avx512 | Target::Native) {
            return Err(d.at(
                v.span(),
                "[build].bf16_dot",
                format!(
                    "\"native\" (vdpbf16ps) needs [build].target = \"avx512\", found \"{}\"",
                    target.name()
                ),
            ));
        }
    }
    let threads = count(d, "[build].threads", &b.threads, 0, Some(0), span.clone())?;
    if let Err(msg) = range::threads(threads) {
        let s = b.threads.as_ref().map_or(span.clone(), |t| t.span());
        return Err(d.at(s, "[build].threads", msg));
    }
    let opt_level = count(
        d,
        "[build].opt_level",
        &b.opt_level,
        0,
        Some(3),
        span.clone(),
    )?;
    if opt_level > 3 {
        let s = b.opt_level.as_ref().unwrap().span();
        return Err(d.at(
            s,
            "[build].opt_level",
            format!("expected 0, 1, 2 or 3, found {opt_level}"),
        ));
    }
    // The training recipe's batch shape is compiled in, unless [build] says otherwise.
    let batch = count(
        d,
        "[build].batch",
        &b.batch,
        1,
        Some(train.batch.unwrap_or(1)),
        span.clone(),
    )?;
    let seq_len = count(
        d,
        "[build].seq_len",
        &b.seq_len,
        1,
        Some(train.seq_len.unwrap_or(model.context)),
        span.clone(),
    )?;
    for (field, built, wanted) in [
        ("batch", batch, train.batch),
        ("seq_len", seq_len, train.seq_len),
    ] {
        if let Some(w) = wanted.filter(|&w| w != built) {
            return Err(d.at(
                span.clone(),
                &format!("[build].{field}"),
                format!(
                    "{built} differs from [train].{field} = {w}; set one of them, or both the same"
                ),
            ));
        }
    }
    if seq_len > model.context {
        // The length comes from [build], or else from [train].
        let (s, field) = match &b.seq_len {
            Some(v) => (v.span(), "[build].seq_len"),
            None => {
                let at = train_table_start(d.src)
                    .map_or(0, |t| key_offset(d.src, t..d.src.len(), "seq_len"));
                (at..at, "[train].seq_len")
            }
        };
        return Err(d.at(
            s,
            field,
            format!(
                "{seq_len} exceeds [model].context = {}; expected at most the context",
                model.context
            ),
        ));
    }
    Ok(BuildSpec {
        target,
        dtype,
        weights,
        bf16_dot,
        threads,
        opt_level: opt_level as u8,
        batch,
        seq_len,
        profile: b.profile.is_some_and(|p| *p.get_ref()),
        recompute: b.recompute.is_none_or(|r| *r.get_ref()),
        sanitize: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_is_one_based() {
        let d = Diag {
            path: Path::new("x.toml"),
            src: "a = 1\nbc = 2\n",
            located: true,
        };
        assert_eq!(d.line_col(0), (1, 1));
        assert_eq!(d.line_col(6), (2, 1));
        assert_eq!(d.line_col(11), (2, 6));
    }

    #[test]
    fn defaults_follow_family() {
        let s = Spec::parse(
            Path::new("m.toml"),
            "[model]\nfamily='llama'\nvocab_size=10\ncontext=8\nlayers=1\nd_model=64\nheads=4\n",
        )
        .unwrap();
        assert_eq!(s.model.norm, Norm::RmsNorm);
        assert_eq!(s.model.ffn_hidden, 192);
        assert!(!s.model.bias && !s.model.tied_embeddings);
        assert_eq!(s.build.seq_len, 8);
        assert_eq!(s.model.name, "m");
    }
}
