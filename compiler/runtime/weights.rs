//! Weights: safetensors files under Hugging Face parameter names, each
//! family's standard initialization, and precise checks on load.

use super::ParamEntry;
use crate::error::{At, Error, Result};
use crate::ir::Tensor;
use crate::quant::f16_to_f32;
use crate::spec::{Family, ModelSpec};
use crate::util::{atomic_write, hex_digest, sha256_hex, Rng};
use safetensors::tensor::{Dtype, TensorView};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// Metadata key of irc's checksum: the SHA-256 of the whole file as written
/// with this value set to 64 zeros (see [`Weights::to_sealed_bytes`]).
pub const META_SHA256: &str = "irc.sha256";

const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Named f32 tensors, in a stable (name) order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weights {
    pub tensors: BTreeMap<String, Tensor<f32>>,
}

/// A NaN or an infinity in a weight turns every logit into NaN without a
/// word: refuse it at load, naming the tensor and the first bad value.
fn check_finite(name: &str, data: &[f32]) -> Result<()> {
    match data.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::new(format!(
            "tensor `{name}`: value {} at index {i} is not finite; expected finite weights",
            data[i]
        ))),
        None => Ok(()),
    }
}

/// Tensors a checkpoint may carry that are not parameters: Hugging Face
/// buffers, and the AdamW moments of an irc training checkpoint.
fn is_hf_buffer(name: &str) -> bool {
    if name.starts_with("optimizer.") {
        return true;
    }
    name.ends_with(".attn.bias") && name.starts_with("transformer.h.")
        || name.ends_with(".attn.masked_bias")
        || name.ends_with("rotary_emb.inv_freq")
}

impl Weights {
    pub fn insert(&mut self, name: &str, shape: &[usize], data: Vec<f32>) {
        self.tensors
            .insert(name.to_string(), Tensor::new(shape, data));
    }

    pub fn get(&self, name: &str) -> Option<&Tensor<f32>> {
        self.tensors.get(name)
    }

    /// Read a safetensors file. F32 tensors load as they are; F16/BF16/F64 are
    /// converted to f32. The file is checked before it is read
    /// ([`read_safetensors`]).
    pub fn load(path: &Path) -> Result<Weights> {
        let bytes = read_safetensors(path, None)?;
        Weights::from_bytes(&bytes).map_err(|e| e.context(path.display()))
    }

    /// [`Weights::load`] of weights for `table`: the header's names and
    /// shapes are checked against it before the tensors are read.
    pub fn load_for(path: &Path, table: &[ParamEntry]) -> Result<Weights> {
        let bytes = read_safetensors(path, Some(table))?;
        Weights::from_bytes(&bytes).map_err(|e| e.context(path.display()))
    }

    /// Parse safetensors bytes; a file with irc's checksum
    /// ([`META_SHA256`]) must match it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Weights> {
        let bad = |e| Error::new(format!("not a valid safetensors file: {e}"));
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(bad)?;
        if let Some(want) = header.metadata().as_ref().and_then(|m| m.get(META_SHA256)) {
            verify_checksum(bytes, want)?;
        }
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(bad)?;
        let mut w = Weights::default();
        for (name, view) in st.tensors() {
            let data = to_f32(&view).map_err(|e| Error::new(format!("tensor `{name}`: {e}")))?;
            w.insert(&name, view.shape(), data);
        }
        w.check_finite()?;
        Ok(w)
    }

    fn check_finite(&self) -> Result<()> {
        for (name, t) in &self.tensors {
            check_finite(name, &t.data)?;
        }
        Ok(())
    }

    /// Write a safetensors file atomically (tensors in name order).
    pub fn save(&self, path: &Path, metadata: Option<BTreeMap<String, String>>) -> Result<()> {
        let bytes = self.to_bytes(metadata)?;
        atomic_write(path, &bytes)
    }

    /// The safetensors bytes: the header lists `__metadata__` first (its
    /// keys sorted), then the tensors in name order, so the same weights and
    /// metadata give the same bytes in every process. (The `safetensors`
    /// crate takes metadata as a `HashMap` and writes it in that map's
    /// order, which changes from process to process.)
    pub fn to_bytes(&self, metadata: Option<BTreeMap<String, String>>) -> Result<Vec<u8>> {
        use std::fmt::Write as _;
        let json = |s: &str| serde_json::to_string(s).expect("a string serializes");
        let mut header = String::from("{");
        if let Some(meta) = &metadata {
            header.push_str("\"__metadata__\":{");
            for (i, (k, v)) in meta.iter().enumerate() {
                let comma = if i > 0 { "," } else { "" };
                let _ = write!(header, "{comma}{}:{}", json(k), json(v));
            }
            header.push('}');
        }
        let mut offset = 0usize;
        for (i, (name, t)) in self.tensors.iter().enumerate() {
            let numel: usize = t.shape.iter().product();
            if numel != t.data.len() {
                return Err(Error::new(format!(
                    "tensor `{name}`: shape {:?} holds {numel} values, the data {}",
                    t.shape,
                    t.data.len()
                )));
            }
            let shape: Vec<String> = t.shape.iter().map(usize::to_string).collect();
            let end = offset + 4 * numel;
            let comma = if i > 0 || metadata.is_some() { "," } else { "" };
            let _ = write!(
                header,
                "{comma}{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
                json(name),
                shape.join(",")
            );
            offset = end;
        }
        header.push('}');
        // Pad with spaces to a multiple of 8, as the reference writer does.
        while header.len() % 8 != 0 {
            header.push(' ');
        }
        let mut out = Vec::with_capacity(8 + header.len() + offset);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for t in self.tensors.values() {
            out.extend(t.data.iter().flat_map(|x| x.to_le_bytes()));
        }
        Ok(out)
    }

    /// [`Weights::to_bytes`] with `meta` and irc's checksum of the result
    /// ([`META_SHA256`]).
    pub fn to_sealed_bytes(&self, mut meta: BTreeMap<String, String>) -> Result<Vec<u8>> {
        meta.insert(META_SHA256.to_string(), ZEROS.to_string());
        let mut bytes = self.to_bytes(Some(meta))?;
        let at = checksum_at(&bytes, ZEROS).expect("the placeholder was just written");
        let sum = sha256_hex(&bytes);
        bytes[at..at + 64].copy_from_slice(sum.as_bytes());
        Ok(bytes)
    }

    /// Every parameter of `table` present with its exact shape; nothing else
    /// but known non-parameter buffers. The message lists every problem.
    pub fn check_against(&self, table: &[ParamEntry]) -> Result<()> {
        let shapes: BTreeMap<&str, &[usize]> = self
            .tensors
            .iter()
            .map(|(n, t)| (n.as_str(), t.shape.as_slice()))
            .collect();
        check_shapes(&shapes, table)
    }

    /// The family's standard initialization (as Hugging Face `_init_weights`):
    /// matrices and embeddings ~ N(0, init_std), biases 0, norm weights 1; GPT-2
    /// also scales residual projections by 1/√(2·layers).
    pub fn init(m: &ModelSpec, table: &[(String, Vec<usize>)], seed: u64) -> Weights {
        let mut rng = Rng::new(seed);
        let mut w = Weights::default();
        for (name, shape) in table {
            let n: usize = shape.iter().product();
            let is_norm =
                name.contains("ln_") || name.contains("layernorm") || name.ends_with("norm.weight");
            let data = if name.ends_with(".bias") && !is_norm {
                vec![0.0; n]
            } else if is_norm {
                vec![if name.ends_with(".weight") { 1.0 } else { 0.0 }; n]
            } else {
                let residual = m.family == Family::Gpt2 && name.ends_with("c_proj.weight");
                let std = if residual {
                    m.init_std / (2.0 * m.layers as f64).sqrt()
                } else {
                    m.init_std
                };
                (0..n).map(|_| (rng.normal() * std) as f32).collect()
            };
            w.insert(name, shape, data);
        }
        w
    }

    /// As f64 feeds for the interpreter.
    pub fn cast<T: crate::ir::Real>(&self) -> BTreeMap<String, Tensor<T>> {
        self.tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.cast()))
            .collect()
    }
}

/// [`Weights::check_against`] over tensor names and shapes (read from the
/// tensors, or from a file's header before its tensors are read).
fn check_shapes(shapes: &BTreeMap<&str, &[usize]>, table: &[ParamEntry]) -> Result<()> {
    let mut wrong = vec![];
    for p in table {
        match shapes.get(p.name.as_str()) {
            None => wrong.push(format!("missing `{}` {:?}", p.name, p.shape)),
            Some(&shape) if shape != p.shape.as_slice() => wrong.push(format!(
                "`{}` has shape {:?}, expected {:?}",
                p.name, shape, p.shape
            )),
            _ => {}
        }
    }
    let mut extra = vec![];
    for &name in shapes.keys() {
        let known = table.iter().any(|p| p.name == name);
        let tied_head = name == "lm_head.weight"; // HF may store the tied head too
        if !known && !tied_head && !is_hf_buffer(name) {
            extra.push(format!(
                "unexpected tensor `{name}` (not a parameter of this model)"
            ));
        }
    }
    if wrong.is_empty() && extra.is_empty() {
        return Ok(());
    }
    let n = wrong.len() + extra.len();
    let mut lines = vec![];
    for list in [wrong, extra] {
        let k = list.len();
        lines.extend(list.into_iter().take(8));
        if k > 8 {
            lines.push(format!("... and {} more like it", k - 8));
        }
    }
    Err(Error::new(format!(
        "weights do not fit the model ({n} problems):\n  {}",
        lines.join("\n  ")
    )))
}

/// The most header bytes a safetensors file may have: the `safetensors`
/// crate's own limit, so a damaged length is refused before it is read.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// A safetensors file's bytes, checked before they are read: a regular file
/// (a device or a FIFO could be read forever), a header length within
/// [`MAX_HEADER_BYTES`] and the file, tensors that end where the file ends,
/// with `table` the names and shapes of its parameters, and a size that
/// fits in memory (the bytes and the tensors made of them). Errors name
/// the file.
pub fn read_safetensors(path: &Path, table: Option<&[ParamEntry]>) -> Result<Vec<u8>> {
    use std::io::Read;
    let (mut f, len, _) = open_checked(path, table)?;
    crate::limits::fits_in_memory(len.saturating_mul(2), "reading these weights")
        .map_err(|m| Error::new(format!("{}: {m}", path.display())))?;
    let mut bytes = Vec::with_capacity(len as usize);
    std::io::Seek::rewind(&mut f).at(path.display())?;
    f.take(len).read_to_end(&mut bytes).at(path.display())?;
    Ok(bytes)
}

/// A safetensors file opened and its header read and checked (see
/// [`read_safetensors`]), its tensors not read: the file, its length and
/// the header. Errors name the file.
fn open_checked(path: &Path, table: Option<&[ParamEntry]>) -> Result<(std::fs::File, u64, Header)> {
    // Before the open: opening a FIFO blocks, and a device never ends.
    if crate::util::user_path(path)? == crate::util::PathKind::Folder {
        return Err(Error::new(format!(
            "{}: a folder; expected a file",
            path.display()
        )));
    }
    let mut f = std::fs::File::open(path).at(path.display())?;
    let len = f.metadata().at(path.display())?.len();
    let header = read_header(&mut f, len).map_err(|e| e.context(path.display()))?;
    if let Some(table) = table {
        let tensors = header.meta.tensors();
        let shapes = tensors
            .iter()
            .map(|(n, t)| (n.as_str(), t.shape.as_slice()))
            .collect();
        check_shapes(&shapes, table).map_err(|e| e.context(path.display()))?;
    }
    Ok((f, len, header))
}

/// A safetensors file's first bytes (the 8-byte length and the JSON) and
/// what they say.
struct Header {
    bytes: Vec<u8>,
    meta: safetensors::tensor::Metadata,
}

/// The header of a safetensors file of `len` bytes, read and validated
/// (offsets in order, each tensor's bytes its shape's) without its tensors.
fn read_header(f: &mut std::fs::File, len: u64) -> Result<Header> {
    use std::io::Read;
    let bad = |m: String| Error::new(format!("not a valid safetensors file: {m}"));
    let mut n = [0u8; 8];
    f.read_exact(&mut n).map_err(|_| {
        bad(format!(
            "{len} bytes, shorter than the 8-byte header length"
        ))
    })?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER_BYTES || n > len - 8 {
        return Err(bad(format!(
            "the header length {n} is past the file's {} bytes after it or irc's limit of {MAX_HEADER_BYTES}",
            len - 8
        )));
    }
    let mut bytes = vec![0u8; 8 + n as usize];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    f.read_exact(&mut bytes[8..])
        .map_err(|e| bad(e.to_string()))?;
    let meta: safetensors::tensor::Metadata =
        serde_json::from_slice(&bytes[8..]).map_err(|e| bad(format!("header: {e}")))?;
    let data = meta.data_len() as u64;
    if 8 + n + data != len {
        return Err(bad(format!(
            "its tensors take {data} bytes but the file has {} after the header",
            len - 8 - n
        )));
    }
    Ok(Header { bytes, meta })
}

/// Where the 64 hex digits of `"irc.sha256":"<value>"` sit in the header:
/// the one place the pattern can occur, since a `"` inside a JSON string is
/// always escaped.
fn checksum_at(bytes: &[u8], value: &str) -> Option<usize> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let header = bytes.get(8..8usize.checked_add(usize::try_from(n).ok()?)?)?;
    let pattern = format!("\"{META_SHA256}\":\"{value}\"");
    let pat = pattern.as_bytes();
    let mut hits = header
        .windows(pat.len())
        .enumerate()
        .filter(|(_, w)| *w == pat)
        .map(|(i, _)| i);
    let first = hits.next()?;
    if hits.next().is_some() {
        return None;
    }
    Some(8 + first + pattern.len() - 65)
}

/// The file's checksum is `want` (see [`META_SHA256`]).
fn verify_checksum(bytes: &[u8], want: &str) -> Result<()> {
    verify_checksum_with(bytes, want, |_| Ok(()))
}

/// [`verify_checksum`] of a file whose first bytes (its header at least)
/// are `head`; `rest` feeds the hasher the bytes after them.
fn verify_checksum_with(
    head: &[u8],
    want: &str,
    rest: impl FnOnce(&mut Sha256) -> Result<()>,
) -> Result<()> {
    let bytes = head;
    if want.len() != 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::new(format!(
            "`{META_SHA256}` is not a SHA-256 in hex: {want:?}"
        )));
    }
    let at = checksum_at(bytes, want).ok_or_else(|| {
        Error::new(format!(
            "`{META_SHA256}` is not written as irc writes it (was the file rewritten by another tool?)"
        ))
    })?;
    let mut h = Sha256::new();
    for part in [&bytes[..at], ZEROS.as_bytes(), &bytes[at + 64..]] {
        h.update(part);
    }
    rest(&mut h)?;
    let got = hex_digest(h);
    if !got.eq_ignore_ascii_case(want) {
        return Err(Error::new(format!(
            "checksum mismatch: the file's SHA-256 is {got} but its `{META_SHA256}` says {want} (the file is damaged)"
        )));
    }
    Ok(())
}

fn to_f32(v: &TensorView) -> std::result::Result<Vec<f32>, String> {
    let size = float_bytes(v.dtype())?;
    let mut out = vec![0f32; v.data().len() / size];
    decode_f32(v.dtype(), v.data(), &mut out);
    Ok(out)
}

/// Bytes of one value of a float dtype irc reads as f32.
fn float_bytes(d: Dtype) -> std::result::Result<usize, String> {
    match d {
        Dtype::F32 => Ok(4),
        Dtype::F64 => Ok(8),
        Dtype::BF16 | Dtype::F16 => Ok(2),
        other => Err(format!("dtype {other:?} is not a float type")),
    }
}

/// Little-endian values of dtype `d` (one of [`float_bytes`]'s) as f32, one
/// per slot of `out`.
fn decode_f32(d: Dtype, b: &[u8], out: &mut [f32]) {
    let size = float_bytes(d).expect("a float dtype");
    for (o, c) in out.iter_mut().zip(b.chunks_exact(size)) {
        *o = match d {
            Dtype::F32 => f32::from_le_bytes(c.try_into().unwrap()),
            Dtype::F64 => f64::from_le_bytes(c.try_into().unwrap()) as f32,
            Dtype::BF16 => f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16),
            _ => f16_to_f32(u16::from_le_bytes([c[0], c[1]])),
        };
    }
}

/// Bytes read at a time by [`load_into`] (a multiple of every dtype's size).
const CHUNK: usize = 1 << 16;

/// Read the parameters of `table` from the safetensors file at `path`
/// straight into `region` (laid out as `table` says), a chunk at a time, so
/// the process never holds the file: the checks of [`Weights::load_for`],
/// irc's checksum when the file has one (hashed as it streams past), every
/// value finite, F16/BF16/F64 converted. Tensors that are not parameters
/// (AdamW moments, Hugging Face buffers) are not read. On an error the
/// region may be partly written. Errors name the file.
pub fn load_into(path: &Path, table: &[ParamEntry], region: &mut [f32]) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let (mut f, _, header) = open_checked(path, Some(table))?;
    let mut buf = vec![0u8; CHUNK];
    let read = |f: &mut std::fs::File, b: &mut [u8]| f.read_exact(b).at(path.display());
    if let Some(want) = header
        .meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_SHA256))
    {
        verify_checksum_with(&header.bytes, want, |h| loop {
            let k = f.read(&mut buf).at(path.display())?;
            if k == 0 {
                return Ok(());
            }
            h.update(&buf[..k]);
        })
        .map_err(|e| e.context(path.display()))?;
    }
    let data_at = header.bytes.len() as u64;
    for p in table {
        let info = header
            .meta
            .info(&p.name)
            .expect("open_checked checked every name");
        let size = float_bytes(info.dtype)
            .map_err(|e| Error::new(format!("{}: tensor `{}`: {e}", path.display(), p.name)))?;
        f.seek(SeekFrom::Start(data_at + info.data_offsets.0 as u64))
            .at(path.display())?;
        let out = &mut region[p.offset..p.offset + p.numel];
        for part in out.chunks_mut(CHUNK / size) {
            let b = &mut buf[..part.len() * size];
            read(&mut f, b)?;
            decode_f32(info.dtype, b, part);
        }
        check_finite(&p.name, out).map_err(|e| e.context(path.display()))?;
    }
    Ok(())
}

/// Read ids (one or more integers a row, whitespace or comma separated).
pub fn read_token_file(path: &Path) -> Result<Vec<Vec<i32>>> {
    let text = crate::util::read_user_text(path)?;
    let mut rows = vec![];
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let row: std::result::Result<Vec<i32>, _> = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<i32>().map_err(|_| s.to_string()))
            .collect();
        match row {
            Ok(r) => rows.push(r),
            Err(bad) => {
                return Err(Error::new(format!(
                    "{}:{}: `{bad}` is not a token id (expected integers separated by spaces or commas)",
                    path.display(),
                    i + 1
                )))
            }
        }
    }
    if rows.is_empty() {
        return Err(Error::new(format!("{}: no token ids", path.display())));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }
}
