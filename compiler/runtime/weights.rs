//! Weights: safetensors files under Hugging Face parameter names, each
//! family's standard initialization, and precise checks on load.

use super::ParamEntry;
use crate::error::{At, Error, Result};
use crate::ir::Tensor;
use crate::spec::{Family, ModelSpec};
use crate::util::{atomic_write, Rng};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::BTreeMap;
use std::path::Path;

/// Named f32 tensors, in a stable (name) order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weights {
    pub tensors: BTreeMap<String, Tensor<f32>>,
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
    /// converted to f32.
    pub fn load(path: &Path) -> Result<Weights> {
        let bytes = std::fs::read(path).at(path.display())?;
        Weights::from_bytes(&bytes).map_err(|e| e.context(path.display()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Weights> {
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| Error::new(format!("not a valid safetensors file: {e}")))?;
        let mut w = Weights::default();
        for (name, view) in st.tensors() {
            let data = to_f32(&view).map_err(|e| Error::new(format!("tensor `{name}`: {e}")))?;
            w.insert(&name, view.shape(), data);
        }
        Ok(w)
    }

    /// Write a safetensors file atomically (tensors in name order).
    pub fn save(&self, path: &Path, metadata: Option<BTreeMap<String, String>>) -> Result<()> {
        let bytes = self.to_bytes(metadata)?;
        atomic_write(path, &bytes)
    }

    pub fn to_bytes(&self, metadata: Option<BTreeMap<String, String>>) -> Result<Vec<u8>> {
        let raw: Vec<(String, Vec<u8>, Vec<usize>)> = self
            .tensors
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    t.data.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    t.shape.clone(),
                )
            })
            .collect();
        let views: Vec<(String, TensorView)> = raw
            .iter()
            .map(|(n, b, s)| {
                (
                    n.clone(),
                    TensorView::new(Dtype::F32, s.clone(), b).expect("sized"),
                )
            })
            .collect();
        let meta = metadata.map(|m| m.into_iter().collect());
        safetensors::serialize(views, meta).map_err(|e| Error::new(format!("safetensors: {e}")))
    }

    /// Every parameter of `table` present with its exact shape; nothing else
    /// but known non-parameter buffers. The message lists every problem.
    pub fn check_against(&self, table: &[ParamEntry]) -> Result<()> {
        let mut wrong = vec![];
        for p in table {
            match self.tensors.get(&p.name) {
                None => wrong.push(format!("missing `{}` {:?}", p.name, p.shape)),
                Some(t) if t.shape != p.shape => wrong.push(format!(
                    "`{}` has shape {:?}, expected {:?}",
                    p.name, t.shape, p.shape
                )),
                _ => {}
            }
        }
        let mut extra = vec![];
        for name in self.tensors.keys() {
            let known = table.iter().any(|p| &p.name == name);
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

fn to_f32(v: &TensorView) -> std::result::Result<Vec<f32>, String> {
    let b = v.data();
    Ok(match v.dtype() {
        Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        Dtype::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        other => return Err(format!("dtype {other:?} is not a float type")),
    })
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as i32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalize.
            let shift = m.leading_zeros() - 21;
            let m = (m << shift) & 0x3ff;
            sign | (((127 - 15 - shift as i32 + 1) as u32) << 23) | (m << 13)
        }
        (31, 0) => sign | 0x7f80_0000,
        (31, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | (((e - 15 + 127) as u32) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Read ids (one or more integers a row, whitespace or comma separated).
pub fn read_token_file(path: &Path) -> Result<Vec<Vec<i32>>> {
    let text = std::fs::read_to_string(path).at(path.display())?;
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
