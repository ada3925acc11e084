//! GGUF: the file llama.cpp loads, written from irc's weights and tokenizer
//! (`irc export --gguf`), and read back (the tests, and anything that wants
//! to look inside one).
//!
//! The conventions are those of llama.cpp's `convert_hf_to_gguf.py`, so a
//! model trained with irc is served by llama.cpp as if it had been converted
//! from the Hugging Face folder `irc export --hf` writes:
//!
//! * GGUF v3, little-endian; `general.alignment` = 32 and every tensor's
//!   data at a multiple of it.
//! * `general.architecture` `gpt2` or `llama` and that architecture's keys
//!   (`<arch>.context_length`, `.embedding_length`, `.block_count`,
//!   `.feed_forward_length`, `.attention.head_count`, and for llama
//!   `.attention.head_count_kv`, `.rope.freq_base`, `.rope.dimension_count`,
//!   `.attention.layer_norm_rms_epsilon`; gpt2's
//!   `.attention.layer_norm_epsilon`); `general.file_type` 0 (all f32) or
//!   7 (mostly q8_0).
//! * Tensor names `token_embd`, `position_embd`, `blk.N.attn_qkv` /
//!   `attn_q`, `attn_k`, `attn_v`, `attn_output`, `attn_norm`, `ffn_norm`,
//!   `ffn_up`, `ffn_gate`, `ffn_down`, `output_norm`, and `output` when the
//!   head is not tied. Shapes in GGML order (`ne[0]` innermost): a matrix
//!   applied as `y = W x` is `ne = [in, out]`. GPT-2's `Conv1D` weights
//!   (stored `[in, out]`) are transposed to that layout.
//! * LLaMA's q and k rows are permuted within each head from the
//!   rotate-half RoPE of transformers (and irc: `compiler/ops/rope.rs`
//!   rotates `x[i]` with `x[i + head_dim/2]`) to the adjacent pairs
//!   `(x[2i], x[2i+1])` llama.cpp's `llama` architecture rotates, as the
//!   converter's `LlamaModel.permute` does; the scores `q·k` are unchanged.
//! * With `--type q8_0`, every matrix whose rows are a multiple of 32 long
//!   is q8_0 ([`crate::quant`]); 1-D tensors (norms, biases) and the
//!   position embedding stay f32, as the converter keeps them, and so does
//!   a matrix with rows of another length.
//! * The tokenizer as `tokenizer.ggml.model = "gpt2"` (byte-level BPE) with
//!   `tokenizer.ggml.pre = "gpt-2"` (GPT-2's regex split):
//!   tokens in id order as tokenizer.json spells them, special tokens as
//!   CONTROL, merges in rank order; ids past the tokenizer up to the
//!   model's vocab as unused `[PAD<id>]` tokens (the converter's padding).
//!   irc starts every generation with `<eos>`, so that token is also the
//!   BOS token llama.cpp adds in front of a prompt.

use crate::error::{Error, Result};
use crate::ops::Act;
use crate::quant::{self, Q8Matrix};
use crate::runtime::Weights;
use crate::spec::{Family, Norm, Position, Spec};
use crate::tokenizer::{bytelevel, Tokenizer};
use std::path::Path;

/// `GGUF` as the first four bytes.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// The version written.
pub const VERSION: u32 = 3;
/// `general.alignment`: llama.cpp's default.
pub const ALIGNMENT: u64 = 32;
/// `general.quantization_version` (ggml's `GGML_QNT_VERSION`).
pub const QUANT_VERSION: u32 = 2;
/// Most dimensions of a tensor (ggml's `GGML_MAX_DIMS`).
const MAX_DIMS: usize = 4;

/// A tensor's ggml type, as far as irc writes and reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Q8_0,
}

impl GgmlType {
    /// The type's number in ggml (`enum ggml_type`).
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q8_0 => 8,
        }
    }

    pub fn from_id(id: u32) -> Option<GgmlType> {
        match id {
            0 => Some(GgmlType::F32),
            1 => Some(GgmlType::F16),
            8 => Some(GgmlType::Q8_0),
            _ => None,
        }
    }

    /// Bytes of `n` values whose rows are `ne0` long (None: not this type's
    /// shape, or too many).
    fn bytes(self, ne0: u64, n: u64) -> Option<u64> {
        match self {
            GgmlType::F32 => n.checked_mul(4),
            GgmlType::F16 => n.checked_mul(2),
            GgmlType::Q8_0 => ne0
                .is_multiple_of(quant::QK8_0 as u64)
                .then(|| (n / quant::QK8_0 as u64).checked_mul(quant::BLOCK_BYTES as u64))
                .flatten(),
        }
    }
}

/// What `irc export --gguf --type` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileType {
    /// Every tensor f32 (`general.file_type` 0, `LLAMA_FTYPE_ALL_F32`).
    #[default]
    F32,
    /// Matrices q8_0, the rest f32 (`general.file_type` 7, `LLAMA_FTYPE_MOSTLY_Q8_0`).
    Q8_0,
}

impl FileType {
    pub fn name(self) -> &'static str {
        match self {
            FileType::F32 => "f32",
            FileType::Q8_0 => "q8_0",
        }
    }

    /// `general.file_type`.
    pub fn id(self) -> u32 {
        match self {
            FileType::F32 => 0,
            FileType::Q8_0 => 7,
        }
    }
}

impl std::str::FromStr for FileType {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(FileType::F32),
            "q8_0" => Ok(FileType::Q8_0),
            _ => Err(format!("unknown type `{s}`; expected f32 or q8_0")),
        }
    }
}

/// GGUF metadata value types (`enum gguf_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    Str = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        [
            U8, I8, U16, I16, U32, I32, F32, Bool, Str, Array, U64, I64, F64,
        ]
        .get(id as usize)
        .copied()
    }
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    /// Elements all of the one type (given for an empty array too).
    Array(ValueType, Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    pub fn ty(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::Str(_) => ValueType::Str,
            Value::Array(..) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    fn strings(v: impl IntoIterator<Item = String>) -> Value {
        Value::Array(ValueType::Str, v.into_iter().map(Value::Str).collect())
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::U8(v) => out.push(*v),
            Value::I8(v) => out.push(*v as u8),
            Value::U16(v) => out.extend(v.to_le_bytes()),
            Value::I16(v) => out.extend(v.to_le_bytes()),
            Value::U32(v) => out.extend(v.to_le_bytes()),
            Value::I32(v) => out.extend(v.to_le_bytes()),
            Value::F32(v) => out.extend(v.to_le_bytes()),
            Value::Bool(v) => out.push(u8::from(*v)),
            Value::Str(s) => write_str(out, s),
            Value::Array(ty, items) => {
                out.extend((*ty as u32).to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                for it in items {
                    debug_assert_eq!(it.ty(), *ty, "an array holds one type");
                    it.write(out);
                }
            }
            Value::U64(v) => out.extend(v.to_le_bytes()),
            Value::I64(v) => out.extend(v.to_le_bytes()),
            Value::F64(v) => out.extend(v.to_le_bytes()),
        }
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// A tensor's data as written.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    Q8_0(Q8Matrix),
}

impl TensorData {
    pub fn ty(&self) -> GgmlType {
        match self {
            TensorData::F32(_) => GgmlType::F32,
            TensorData::Q8_0(_) => GgmlType::Q8_0,
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        match self {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::Q8_0(m) => m.to_bytes(),
        }
    }
}

/// A tensor to write: its name, `ne` (innermost first) and data.
#[derive(Debug, Clone)]
pub struct Tensor {
    pub name: String,
    pub ne: Vec<u64>,
    pub data: TensorData,
}

/// The bytes of a GGUF v3 file: the metadata in the order given, the
/// tensor infos and data in the order given, each tensor at a multiple of
/// [`ALIGNMENT`] from the start of the data section.
pub fn to_bytes(metadata: &[(String, Value)], tensors: &[Tensor]) -> Vec<u8> {
    let align = |n: u64| n.div_ceil(ALIGNMENT) * ALIGNMENT;
    let mut out = Vec::new();
    out.extend(MAGIC);
    out.extend(VERSION.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend((metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        write_str(&mut out, k);
        out.extend((v.ty() as u32).to_le_bytes());
        v.write(&mut out);
    }
    let datas: Vec<Vec<u8>> = tensors.iter().map(|t| t.data.to_bytes()).collect();
    let mut offset = 0u64;
    for (t, d) in tensors.iter().zip(&datas) {
        write_str(&mut out, &t.name);
        out.extend((t.ne.len() as u32).to_le_bytes());
        for &n in &t.ne {
            out.extend(n.to_le_bytes());
        }
        out.extend(t.data.ty().id().to_le_bytes());
        out.extend(offset.to_le_bytes());
        offset = align(offset + d.len() as u64);
    }
    out.resize(align(out.len() as u64) as usize, 0);
    let start = out.len();
    for d in &datas {
        out.extend(d);
        out.resize(start + align((out.len() - start) as u64) as usize, 0);
    }
    out
}

/// A tensor of a read file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions, innermost first.
    pub ne: Vec<u64>,
    pub ty: GgmlType,
    /// From the start of the data section.
    pub offset: u64,
    /// Bytes of data.
    pub size: u64,
}

/// A GGUF file read whole and checked: every length, type and offset.
#[derive(Debug, Clone)]
pub struct GgufFile {
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Where the data section starts in the file.
    pub data_start: u64,
    bytes: Vec<u8>,
}

/// A cursor over the bytes being parsed; every read is bounds-checked.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: u64, what: &str) -> Result<&[u8]> {
        let left = (self.b.len() - self.at) as u64;
        if n > left {
            return Err(Error::new(format!(
                "{what} at byte {}: needs {n} bytes, the file has {left} left",
                self.at
            )));
        }
        let s = &self.b[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }
    fn str(&mut self, what: &str) -> Result<String> {
        let n = self.u64(what)?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| Error::new(format!("{what}: not UTF-8")))
    }
    fn value(&mut self, ty: ValueType, what: &str) -> Result<Value> {
        let mut n = |k: u64| self.take(k, what).map(|b| b.to_vec());
        Ok(match ty {
            ValueType::U8 => Value::U8(n(1)?[0]),
            ValueType::I8 => Value::I8(n(1)?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(n(2)?.try_into().unwrap())),
            ValueType::I16 => Value::I16(i16::from_le_bytes(n(2)?.try_into().unwrap())),
            ValueType::U32 => Value::U32(u32::from_le_bytes(n(4)?.try_into().unwrap())),
            ValueType::I32 => Value::I32(i32::from_le_bytes(n(4)?.try_into().unwrap())),
            ValueType::F32 => Value::F32(f32::from_le_bytes(n(4)?.try_into().unwrap())),
            ValueType::U64 => Value::U64(u64::from_le_bytes(n(8)?.try_into().unwrap())),
            ValueType::I64 => Value::I64(i64::from_le_bytes(n(8)?.try_into().unwrap())),
            ValueType::F64 => Value::F64(f64::from_le_bytes(n(8)?.try_into().unwrap())),
            ValueType::Bool => match n(1)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => {
                    return Err(Error::new(format!(
                        "{what}: bool byte {b}, expected 0 or 1"
                    )))
                }
            },
            ValueType::Str => Value::Str(self.str(what)?),
            ValueType::Array => {
                let et = self.u32(what)?;
                let et = ValueType::from_id(et)
                    .ok_or_else(|| Error::new(format!("{what}: unknown array type {et}")))?;
                if et == ValueType::Array {
                    return Err(Error::new(format!("{what}: an array of arrays")));
                }
                let count = self.u64(what)?;
                // Every element takes at least a byte: a count past the
                // file is refused before anything is allocated.
                if count > (self.b.len() - self.at) as u64 {
                    return Err(Error::new(format!(
                        "{what}: {count} elements, more than the bytes left"
                    )));
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(et, what)?);
                }
                Value::Array(et, items)
            }
        })
    }
}

impl GgufFile {
    /// Read and check `path` (errors name it).
    pub fn load(path: &Path) -> Result<GgufFile> {
        let bytes = crate::util::read_user_file(path)?;
        GgufFile::parse(bytes).map_err(|e| e.context(path.display()))
    }

    /// Parse a whole file's bytes.
    pub fn parse(bytes: Vec<u8>) -> Result<GgufFile> {
        let mut r = Reader { b: &bytes, at: 0 };
        if r.take(4, "magic")? != MAGIC {
            return Err(Error::new("not a GGUF file (no `GGUF` magic)"));
        }
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(Error::new(format!(
                "GGUF version {version}; irc reads version {VERSION}"
            )));
        }
        let n_tensors = r.u64("tensor count")?;
        let n_kv = r.u64("metadata count")?;
        if n_tensors > bytes.len() as u64 || n_kv > bytes.len() as u64 {
            return Err(Error::new(format!(
                "{n_tensors} tensors and {n_kv} metadata entries cannot fit in {} bytes",
                bytes.len()
            )));
        }
        let mut metadata = Vec::with_capacity(n_kv as usize);
        for i in 0..n_kv {
            let key = r.str(&format!("metadata key {i}"))?;
            let t = r.u32(&key)?;
            let ty = ValueType::from_id(t)
                .ok_or_else(|| Error::new(format!("`{key}`: unknown value type {t}")))?;
            let v = r.value(ty, &format!("`{key}`"))?;
            if metadata.iter().any(|(k, _)| *k == key) {
                return Err(Error::new(format!("`{key}`: given twice")));
            }
            metadata.push((key, v));
        }
        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => ALIGNMENT,
            Some((_, Value::U32(a))) if *a > 0 && a.is_power_of_two() => *a as u64,
            Some((_, v)) => {
                return Err(Error::new(format!(
                    "`general.alignment`: {v:?}; expected a power of two as u32"
                )))
            }
        };
        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let name = r.str(&format!("tensor {i} name"))?;
            let what = format!("tensor `{name}`");
            let nd = r.u32(&what)? as usize;
            if nd == 0 || nd > MAX_DIMS {
                return Err(Error::new(format!(
                    "{what}: {nd} dimensions; expected 1 to {MAX_DIMS}"
                )));
            }
            let mut ne = Vec::with_capacity(nd);
            for _ in 0..nd {
                ne.push(r.u64(&what)?);
            }
            let t = r.u32(&what)?;
            let ty = GgmlType::from_id(t).ok_or_else(|| {
                Error::new(format!(
                    "{what}: ggml type {t}; irc reads f32 (0), f16 (1) and q8_0 (8)"
                ))
            })?;
            let offset = r.u64(&what)?;
            let n = ne
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .ok_or_else(|| Error::new(format!("{what}: shape {ne:?} overflows")))?;
            let size = ty.bytes(ne[0], n).ok_or_else(|| {
                Error::new(format!(
                    "{what}: shape {ne:?} does not fit type {ty:?} (q8_0 rows are a multiple of 32)"
                ))
            })?;
            if offset % alignment != 0 {
                return Err(Error::new(format!(
                    "{what}: offset {offset} is not a multiple of the alignment {alignment}"
                )));
            }
            if tensors.iter().any(|t| t.name == name) {
                return Err(Error::new(format!("{what}: given twice")));
            }
            tensors.push(TensorInfo {
                name,
                ne,
                ty,
                offset,
                size,
            });
        }
        let data_start = (r.at as u64).div_ceil(alignment) * alignment;
        let data_len = (bytes.len() as u64).saturating_sub(data_start);
        for t in &tensors {
            if t.offset
                .checked_add(t.size)
                .is_none_or(|end| end > data_len)
            {
                return Err(Error::new(format!(
                    "tensor `{}`: its {} bytes at offset {} end past the file's {data_len} bytes of data",
                    t.name, t.size, t.offset
                )));
            }
        }
        Ok(GgufFile {
            version,
            metadata,
            tensors,
            alignment,
            data_start,
            bytes,
        })
    }

    /// A metadata value by key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// A tensor's raw bytes.
    pub fn tensor_bytes(&self, t: &TensorInfo) -> &[u8] {
        let at = (self.data_start + t.offset) as usize;
        &self.bytes[at..at + t.size as usize]
    }

    /// A tensor's values as f32 (q8_0 and f16 dequantized), innermost
    /// dimension fastest.
    pub fn tensor_f32(&self, name: &str) -> Result<Vec<f32>> {
        let t = self
            .tensor(name)
            .ok_or_else(|| Error::new(format!("no tensor `{name}`")))?;
        let b = self.tensor_bytes(t);
        Ok(match t.ty {
            GgmlType::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            GgmlType::F16 => b
                .chunks_exact(2)
                .map(|c| quant::f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            GgmlType::Q8_0 => {
                let k = t.ne[0] as usize;
                let rows = t.ne[1..].iter().product::<u64>() as usize;
                Q8Matrix::from_bytes(b, rows, k)
                    .map_err(|e| e.context(format!("tensor `{name}`")))?
                    .dequantize()
            }
        })
    }
}

/// How a parameter is written: its GGUF name, where it goes in llama.cpp's
/// order, and the change of layout.
struct Mapped {
    name: String,
    order: (usize, usize),
    layout: Layout,
}

enum Layout {
    /// As stored (`[out, in]` or 1-D).
    Same,
    /// A `[in, out]` Conv1D weight, transposed.
    Transpose,
    /// Q or K rows of `heads` heads, rotate-half → adjacent pairs.
    Permute(usize),
}

/// The GGUF name of irc's (Hugging Face) parameter `name`.
fn map_name(spec: &Spec, name: &str) -> Option<Mapped> {
    let m = &spec.model;
    let top = |n: &str, order: usize, layout| {
        Some(Mapped {
            name: n.to_string(),
            order: (order, 0),
            layout,
        })
    };
    let (prefix, block_prefix) = match m.family {
        Family::Gpt2 => ("transformer.", "transformer.h."),
        Family::Llama => ("model.", "model.layers."),
    };
    if name == "lm_head.weight" {
        return top("output.weight", 3, Layout::Same);
    }
    if let Some(rest) = name.strip_prefix(block_prefix) {
        let (layer, rest) = rest.split_once('.')?;
        let layer: usize = layer.parse().ok()?;
        let (part, kind) = rest.rsplit_once('.')?;
        use Layout::*;
        let (gg, layout) = match (m.family, part) {
            (Family::Gpt2, "ln_1") => ("attn_norm", Same),
            (Family::Gpt2, "attn.c_attn") => ("attn_qkv", Transpose),
            (Family::Gpt2, "attn.c_proj") => ("attn_output", Transpose),
            (Family::Gpt2, "ln_2") => ("ffn_norm", Same),
            (Family::Gpt2, "mlp.c_fc") => ("ffn_up", Transpose),
            (Family::Gpt2, "mlp.c_proj") => ("ffn_down", Transpose),
            (Family::Llama, "input_layernorm") => ("attn_norm", Same),
            (Family::Llama, "self_attn.q_proj") => ("attn_q", Permute(m.heads)),
            (Family::Llama, "self_attn.k_proj") => ("attn_k", Permute(m.kv_heads)),
            (Family::Llama, "self_attn.v_proj") => ("attn_v", Same),
            (Family::Llama, "self_attn.o_proj") => ("attn_output", Same),
            (Family::Llama, "post_attention_layernorm") => ("ffn_norm", Same),
            (Family::Llama, "mlp.gate_proj") => ("ffn_gate", Same),
            (Family::Llama, "mlp.up_proj") => ("ffn_up", Same),
            (Family::Llama, "mlp.down_proj") => ("ffn_down", Same),
            _ => return None,
        };
        // A bias is 1-D: nothing to transpose.
        let layout = match (kind, layout) {
            ("bias", Transpose) => Same,
            (_, l) => l,
        };
        return Some(Mapped {
            name: format!("blk.{layer}.{gg}.{kind}"),
            order: (1, layer),
            layout,
        });
    }
    let rest = name.strip_prefix(prefix)?;
    match (m.family, rest) {
        (Family::Gpt2, "wte.weight") | (Family::Llama, "embed_tokens.weight") => {
            top("token_embd.weight", 0, Layout::Same)
        }
        (Family::Gpt2, "wpe.weight") => Some(Mapped {
            name: "position_embd.weight".into(),
            order: (0, 1),
            layout: Layout::Same,
        }),
        (Family::Gpt2, "ln_f.weight") | (Family::Llama, "norm.weight") => {
            top("output_norm.weight", 2, Layout::Same)
        }
        (Family::Gpt2, "ln_f.bias") => top("output_norm.bias", 2, Layout::Same),
        _ => None,
    }
}

/// `data` `[rows, cols]` row-major, transposed.
fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// llama.cpp's `LlamaModel.permute`: the rows of each of `heads` heads
/// (`[heads · head_dim, cols]`) reordered so that row `2i` is row `i` and
/// row `2i + 1` is row `i + head_dim/2` of the head.
fn permute(data: &[f32], heads: usize, cols: usize) -> Vec<f32> {
    let rows = data.len() / cols;
    let hd = rows / heads;
    let half = hd / 2;
    let mut out = vec![0.0; data.len()];
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                let from = h * hd + j * half + i;
                let to = h * hd + 2 * i + j;
                out[to * cols..(to + 1) * cols]
                    .copy_from_slice(&data[from * cols..(from + 1) * cols]);
            }
        }
    }
    out
}

/// Why `spec` cannot be served by llama.cpp's architecture for its
/// family, if it cannot.
fn check_exportable(spec: &Spec) -> Result<()> {
    let m = &spec.model;
    let file = spec.path.display();
    let refuse = |what: String| -> Result<()> {
        Err(Error::new(format!(
            "{file}: {what}, so this model cannot be exported as GGUF"
        )))
    };
    match m.family {
        Family::Gpt2 => {
            if !m.bias {
                return refuse(
                    "[model].bias = false: llama.cpp's gpt2 architecture needs every bias".into(),
                );
            }
            if m.activation != Act::GeluTanh {
                return refuse(format!(
                    "[model].activation = \"{}\": llama.cpp's gpt2 architecture computes the tanh GELU (\"gelu_tanh\") only",
                    m.activation.def().spec
                ));
            }
            if m.norm != Norm::LayerNorm || m.position != Position::Learned {
                return refuse("gpt2 needs layernorm and learned positions".into());
            }
        }
        Family::Llama => {
            if m.activation != Act::Silu {
                return refuse(format!(
                    "[model].activation = \"{}\": llama.cpp's llama architecture computes SwiGLU (\"swiglu\") only",
                    m.activation.def().spec
                ));
            }
            if m.norm != Norm::RmsNorm || m.position != Position::Rope {
                return refuse("llama needs rmsnorm and rope".into());
            }
        }
    }
    Ok(())
}

/// What [`export_gguf`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub bytes: u64,
    pub tensors: usize,
    /// How many are q8_0.
    pub quantized: usize,
    /// The largest |x − x̂| over the q8_0 tensors, and that tensor.
    pub max_error: Option<(f32, String)>,
    /// Things the user should know (the tokenizer's pre-split, ...).
    pub notes: Vec<String>,
}

/// The tokenizer's metadata entries for a model of `vocab` ids.
fn tokenizer_metadata(tok: &Tokenizer, vocab: usize, file: &Path) -> Result<Vec<(String, Value)>> {
    let n = tok.vocab_size();
    if n > vocab {
        return Err(Error::new(format!(
            "{}: {n} tokens, more than the model's vocab_size = {vocab}",
            file.display()
        )));
    }
    let mut tokens = Vec::with_capacity(vocab);
    let mut types = Vec::with_capacity(vocab);
    // llama.cpp's token types: 1 normal, 3 control, 5 unused.
    for id in 0..n as u32 {
        let bytes = tok.token_bytes(id).expect("an id below vocab_size");
        if tok.is_special(id) {
            tokens.push(String::from_utf8_lossy(bytes).into_owned());
            types.push(Value::I32(3));
        } else {
            tokens.push(bytelevel::to_chars(bytes));
            types.push(Value::I32(1));
        }
    }
    for id in n..vocab {
        tokens.push(format!("[PAD{id}]"));
        types.push(Value::I32(5));
    }
    let name = |id: u32| tokens[id as usize].clone();
    let merges: Vec<String> = tok
        .merges()
        .iter()
        .map(|&(a, b, _)| format!("{} {}", name(a), name(b)))
        .collect();
    let eos = tok.eos_id().map_err(|e| e.context(file.display()))?;
    let pad = tok.pad_id().map_err(|e| e.context(file.display()))?;
    let kv = |k: &str, v: Value| (k.to_string(), v);
    Ok(vec![
        kv("tokenizer.ggml.model", Value::Str("gpt2".into())),
        // llama.cpp's name of GPT-2's regex split (`llama-vocab.cpp`); an
        // unknown name stops the load.
        kv("tokenizer.ggml.pre", Value::Str("gpt-2".into())),
        kv("tokenizer.ggml.tokens", Value::strings(tokens)),
        kv(
            "tokenizer.ggml.token_type",
            Value::Array(ValueType::I32, types),
        ),
        kv("tokenizer.ggml.merges", Value::strings(merges)),
        kv("tokenizer.ggml.bos_token_id", Value::U32(eos)),
        kv("tokenizer.ggml.eos_token_id", Value::U32(eos)),
        kv("tokenizer.ggml.padding_token_id", Value::U32(pad)),
        kv("tokenizer.ggml.add_bos_token", Value::Bool(true)),
        kv("tokenizer.ggml.add_eos_token", Value::Bool(false)),
    ])
}

/// What a GGUF file holds, before it is made bytes ([`to_bytes`]).
pub struct Contents {
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<Tensor>,
    pub summary: Exported,
}

/// The `general.*` and architecture keys of the GGUF file for `spec`.
fn model_metadata(spec: &Spec, ty: FileType) -> Vec<(String, Value)> {
    let m = &spec.model;
    let arch = match m.family {
        Family::Gpt2 => "gpt2",
        Family::Llama => "llama",
    };
    let kv = |k: &str, v: Value| (k.to_string(), v);
    let a = |k: &str, v: Value| (format!("{arch}.{k}"), v);
    let u32_of = |n: usize| Value::U32(n as u32);
    let mut meta = vec![
        kv("general.architecture", Value::Str(arch.into())),
        kv("general.type", Value::Str("model".into())),
        kv("general.name", Value::Str(m.name.clone())),
        kv("general.alignment", Value::U32(ALIGNMENT as u32)),
        kv("general.file_type", Value::U32(ty.id())),
        kv("general.quantization_version", Value::U32(QUANT_VERSION)),
        a("vocab_size", u32_of(m.vocab_size)),
        a("context_length", u32_of(m.context)),
        a("embedding_length", u32_of(m.d_model)),
        a("block_count", u32_of(m.layers)),
        a("feed_forward_length", u32_of(m.ffn_hidden)),
        a("attention.head_count", u32_of(m.heads)),
    ];
    match m.family {
        Family::Gpt2 => meta.push(a(
            "attention.layer_norm_epsilon",
            Value::F32(m.norm_eps as f32),
        )),
        Family::Llama => meta.extend([
            a("attention.head_count_kv", u32_of(m.kv_heads)),
            a("rope.freq_base", Value::F32(m.rope_theta as f32)),
            a("rope.dimension_count", u32_of(m.head_dim())),
            a(
                "attention.layer_norm_rms_epsilon",
                Value::F32(m.norm_eps as f32),
            ),
        ]),
    }
    meta
}

/// Parameter `name` of `weights` as llama.cpp's tensor `to`: its layout,
/// quantized in a q8_0 file where its rows allow; `out` notes what was done.
fn tensor(
    weights: &Weights,
    name: &str,
    to: Mapped,
    ty: FileType,
    out: &mut Exported,
) -> Result<Tensor> {
    let t = weights.get(name).expect("checked against the table");
    if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
        return Err(Error::new(format!(
            "export --gguf: tensor `{}`: value {} at index {i} is not finite; expected finite weights",
            name, t.data[i]
        )));
    }
    let (data, shape) = match (to.layout, t.shape.as_slice()) {
        (Layout::Transpose, &[r, c]) => (transpose(&t.data, r, c), vec![c, r]),
        (Layout::Permute(heads), &[r, c]) => (permute(&t.data, heads, c), vec![r, c]),
        (Layout::Permute(heads), &[r]) => (permute(&t.data, heads, 1), vec![r]),
        (_, s) => (t.data.clone(), s.to_vec()),
    };
    let ne: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
    let quantize = ty == FileType::Q8_0
        && shape.len() == 2
        && to.name != "position_embd.weight"
        && quant::fits(shape[1]);
    let data = if quantize {
        let q = Q8Matrix::quantize(&to.name, &data, shape[0], shape[1])
            .map_err(|e| e.context("export --gguf"))?;
        let err = data
            .iter()
            .zip(q.dequantize())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        if out.max_error.as_ref().is_none_or(|(e, _)| err > *e) {
            out.max_error = Some((err, to.name.clone()));
        }
        out.quantized += 1;
        TensorData::Q8_0(q)
    } else {
        if ty == FileType::Q8_0 && shape.len() == 2 && to.name != "position_embd.weight" {
            out.notes.push(format!(
                "`{}` stays f32: its rows of {} values are not a multiple of 32",
                to.name, shape[1]
            ));
        }
        TensorData::F32(data)
    };
    Ok(Tensor {
        name: to.name,
        ne,
        data,
    })
}

/// The metadata and tensors of the GGUF file for `spec` with `weights`
/// and the tokenizer `tok` (read from `tok_file`).
pub fn gguf_contents(
    spec: &Spec,
    weights: &Weights,
    tok: &Tokenizer,
    tok_file: &Path,
    ty: FileType,
) -> Result<Contents> {
    check_exportable(spec)?;
    let m = &spec.model;
    let table = crate::hf::param_table(spec)?;
    weights
        .check_against(&table)
        .map_err(|e| e.context("export --gguf"))?;
    let mut meta = model_metadata(spec, ty);
    meta.extend(tokenizer_metadata(tok, m.vocab_size, tok_file)?);

    let mut mapped = vec![];
    for (i, p) in table.iter().enumerate() {
        let Some(to) = map_name(spec, &p.name) else {
            return Err(Error::new(format!(
                "export --gguf: parameter `{}` has no llama.cpp tensor name",
                p.name
            )));
        };
        mapped.push((to.order, i, p, to));
    }
    mapped.sort_by_key(|(order, i, _, _)| (*order, *i));
    let mut tensors = vec![];
    let mut out = Exported {
        bytes: 0,
        tensors: 0,
        quantized: 0,
        max_error: None,
        notes: vec![],
    };
    for (_, _, p, to) in mapped {
        tensors.push(tensor(weights, &p.name, to, ty, &mut out)?);
    }
    out.tensors = tensors.len();
    if tok.split() != crate::tokenizer::PreSplit::Gpt2 {
        out.notes.push(format!(
            "{}: pre_split `numbers` has no llama.cpp pre-tokenizer; written as GPT-2's (`gpt-2`), so llama.cpp may cut a text prompt into other ids than irc (token ids decode to the same text)",
            tok_file.display()
        ));
    }
    Ok(Contents {
        metadata: meta,
        tensors,
        summary: out,
    })
}

/// Write the GGUF file for `spec` with `weights` and the tokenizer at
/// `tokenizer` to `out`, atomically.
pub fn export_gguf(
    spec: &Spec,
    weights: &Weights,
    tokenizer: &Path,
    out: &Path,
    ty: FileType,
) -> Result<Exported> {
    let tok = Tokenizer::load(tokenizer)?;
    let Contents {
        metadata,
        tensors,
        mut summary,
    } = gguf_contents(spec, weights, &tok, tokenizer, ty)?;
    let bytes = to_bytes(&metadata, &tensors);
    summary.bytes = bytes.len() as u64;
    crate::util::atomic_write(out, &bytes)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_pairs_the_halves_of_each_head() {
        // 2 heads of head_dim 4, one column: rows h0: a0 a1 b0 b1 → a0 b0 a1 b1.
        let x: Vec<f32> = (0..8).map(|i| i as f32).collect();
        assert_eq!(permute(&x, 2, 1), vec![0., 2., 1., 3., 4., 6., 5., 7.]);
        let x: Vec<f32> = (0..12).map(|i| i as f32).collect();
        assert_eq!(transpose(&x, 3, 4)[..4], [0., 4., 8., 1.]);
    }

    #[test]
    fn values_and_tensors_read_back() {
        let meta = vec![
            ("a.u8".to_string(), Value::U8(7)),
            ("a.i64".into(), Value::I64(-3)),
            ("a.f64".into(), Value::F64(0.25)),
            ("a.b".into(), Value::Bool(true)),
            ("a.s".into(), Value::Str("héllo".into())),
            ("a.e".into(), Value::Array(ValueType::U32, vec![])),
            (
                "a.arr".into(),
                Value::Array(ValueType::I16, vec![Value::I16(-1), Value::I16(2)]),
            ),
        ];
        let q =
            Q8Matrix::quantize("q", &(0..64).map(|i| i as f32).collect::<Vec<_>>(), 2, 32).unwrap();
        let tensors = vec![
            Tensor {
                name: "x".into(),
                ne: vec![3],
                data: TensorData::F32(vec![1.0, 2.0, 3.0]),
            },
            Tensor {
                name: "q".into(),
                ne: vec![32, 2],
                data: TensorData::Q8_0(q.clone()),
            },
        ];
        let bytes = to_bytes(&meta, &tensors);
        let f = GgufFile::parse(bytes.clone()).unwrap();
        assert_eq!(f.metadata, meta);
        assert_eq!(f.data_start % ALIGNMENT, 0);
        assert_eq!(f.tensor("x").unwrap().offset, 0);
        assert_eq!(f.tensor("q").unwrap().offset, 32, "12 bytes padded to 32");
        assert_eq!(f.tensor_f32("x").unwrap(), vec![1.0, 2.0, 3.0]);
        assert_eq!(f.tensor_f32("q").unwrap(), q.dequantize());
        // Cut anywhere, it is refused, never a panic.
        let end = f.data_start as usize + 32 + 68;
        for n in [0, 3, 10, 30, bytes.len() / 2, end - 1] {
            assert!(GgufFile::parse(bytes[..n].to_vec()).is_err(), "cut at {n}");
        }
    }
}
