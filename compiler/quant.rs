//! q8_0: llama.cpp's 8-bit block format, in one place.
//!
//! A row of `k` values (`k % 32 == 0`) is cut into blocks of [`QK8_0`] = 32
//! consecutive values; each block stores one f16 scale `d = max|x| / 127`
//! and 32 int8 `q = round(x · (1/d))` (round half away from zero), and
//! stands for `x̂ = q · d` with `d` as stored (f16). This is exactly
//! `quantize_row_q8_0_ref` of llama.cpp's `ggml/src/ggml-quants.c`: the
//! reciprocal is taken of the f32 `d` before it is rounded to f16, the
//! products are rounded with C's `roundf`, and a block of zeros has `d = 0`
//! and `q = 0`. On disk (GGUF, `GGML_TYPE_Q8_0 = 8`) a block is 34 bytes:
//! `d` as little-endian f16 bits, then the 32 `q`s.
//!
//! Error bound, per value: `|x − x̂| ≤ d/2 + 127·|d − f16(d)|` (the rounding
//! of `x/d` to an integer, plus the scale's own f16 rounding carried by
//! `|q| ≤ 127`), up to f32 rounding of the products.
//!
//! A matrix whose rows are not a multiple of 32 long cannot be q8_0: llama.cpp
//! keeps such tensors in a float type (its converter falls back to f16; irc
//! keeps them in f32). [`fits`] says which, and [`Q8Matrix::quantize`]
//! refuses the others by name. Values must be finite, and a block whose
//! scale does not fit an f16 (`max|x| ≥ 127 · 65520`) is refused too, where
//! llama.cpp would store an infinite scale.

use crate::error::{Error, Result};
use serde::Serialize;

/// Values per q8_0 block.
pub const QK8_0: usize = 32;
/// Bytes of one block on disk: an f16 scale and 32 int8 values.
pub const BLOCK_BYTES: usize = 2 + QK8_0;

/// One q8_0 block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// The scale, as f16 bits.
    pub d: u16,
    /// The quantized values.
    pub qs: [i8; QK8_0],
}

impl Block {
    /// `quantize_row_q8_0_ref` of one block of finite values whose scale
    /// fits an f16 (the caller checks; see [`Q8Matrix::quantize`]).
    pub fn quantize(x: &[f32; QK8_0]) -> Block {
        let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut qs = [0i8; QK8_0];
        for (q, &v) in qs.iter_mut().zip(x) {
            // f32::round rounds half away from zero, as C's roundf.
            *q = (v * id).round() as i8;
        }
        Block {
            d: f32_to_f16(d),
            qs,
        }
    }

    /// The scale as f32.
    pub fn scale(&self) -> f32 {
        f16_to_f32(self.d)
    }

    /// `x̂ = q · d`, 32 values.
    pub fn dequantize(&self) -> [f32; QK8_0] {
        let d = self.scale();
        self.qs.map(|q| q as f32 * d)
    }

    /// The 34 bytes llama.cpp stores (`block_q8_0`).
    pub fn to_bytes(&self) -> [u8; BLOCK_BYTES] {
        let mut b = [0u8; BLOCK_BYTES];
        b[..2].copy_from_slice(&self.d.to_le_bytes());
        for (o, &q) in b[2..].iter_mut().zip(&self.qs) {
            *o = q as u8;
        }
        b
    }

    /// A block from its 34 bytes.
    pub fn from_bytes(b: &[u8; BLOCK_BYTES]) -> Block {
        let mut qs = [0i8; QK8_0];
        for (q, &v) in qs.iter_mut().zip(&b[2..]) {
            *q = v as i8;
        }
        Block {
            d: u16::from_le_bytes([b[0], b[1]]),
            qs,
        }
    }
}

/// Whether rows of `k` values can be q8_0 (else they stay in a float type).
pub fn fits(k: usize) -> bool {
    k > 0 && k.is_multiple_of(QK8_0)
}

/// A row-major `[rows, k]` matrix in q8_0: `k / 32` blocks a row, rows one
/// after another (the order of a GGUF tensor with `ne = [k, rows]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Q8Matrix {
    pub rows: usize,
    pub k: usize,
    pub blocks: Vec<Block>,
}

impl Q8Matrix {
    /// Quantize the row-major `[rows, k]` values of tensor `name`. Refused,
    /// naming the tensor: `k % 32 != 0` (keep it in f32), a length other
    /// than `rows · k`, a NaN or infinity, a block whose scale overflows f16.
    pub fn quantize(name: &str, data: &[f32], rows: usize, k: usize) -> Result<Q8Matrix> {
        if !fits(k) {
            return Err(Error::new(format!(
                "tensor `{name}`: rows of {k} values are not a multiple of {QK8_0}, so it cannot be q8_0 (llama.cpp keeps such a tensor in a float type)"
            )));
        }
        if rows.checked_mul(k) != Some(data.len()) {
            return Err(Error::new(format!(
                "tensor `{name}`: {} values, not {rows} rows of {k}",
                data.len()
            )));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::new(format!(
                "tensor `{name}`: value {} at index {i} is not finite; q8_0 needs finite values",
                data[i]
            )));
        }
        let mut blocks = Vec::with_capacity(data.len() / QK8_0);
        for (b, chunk) in data.chunks_exact(QK8_0).enumerate() {
            let block = Block::quantize(chunk.try_into().expect("32 values"));
            if block.scale().is_infinite() {
                let amax = chunk.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                return Err(Error::new(format!(
                    "tensor `{name}`: block {b} (values {} to {}) has max |x| = {amax}, whose q8_0 scale {} is past the largest f16 (65504)",
                    b * QK8_0,
                    b * QK8_0 + QK8_0 - 1,
                    amax / 127.0
                )));
            }
            blocks.push(block);
        }
        Ok(Q8Matrix { rows, k, blocks })
    }

    /// The blocks of row `r`.
    pub fn row(&self, r: usize) -> &[Block] {
        let n = self.k / QK8_0;
        &self.blocks[r * n..(r + 1) * n]
    }

    /// The row-major `[rows, k]` values it stands for.
    pub fn dequantize(&self) -> Vec<f32> {
        self.blocks.iter().flat_map(|b| b.dequantize()).collect()
    }

    /// The bytes of a GGUF / ggml `Q8_0` tensor.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.blocks.iter().flat_map(|b| b.to_bytes()).collect()
    }

    /// A `[rows, k]` matrix from the bytes of a `Q8_0` tensor.
    pub fn from_bytes(bytes: &[u8], rows: usize, k: usize) -> Result<Q8Matrix> {
        if !fits(k) {
            return Err(Error::new(format!(
                "q8_0 rows of {k} values: not a multiple of {QK8_0}"
            )));
        }
        let want = rows
            .checked_mul(k / QK8_0)
            .and_then(|n| n.checked_mul(BLOCK_BYTES));
        if want != Some(bytes.len()) {
            return Err(Error::new(format!(
                "q8_0 [{rows}, {k}]: {} bytes, expected {}",
                bytes.len(),
                want.map_or("more than fits in memory".into(), |n| n.to_string())
            )));
        }
        let blocks = bytes
            .chunks_exact(BLOCK_BYTES)
            .map(|c| Block::from_bytes(c.try_into().expect("34 bytes")))
            .collect();
        Ok(Q8Matrix { rows, k, blocks })
    }
}

/// How the generation programs hold the weights of the linear layers
/// (`[build].weights`): the matmuls whose right operand is a parameter.
/// Training, the forward and the checkpoint stay f32 whatever it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum WeightFormat {
    #[default]
    #[serde(rename = "f32")]
    F32,
    /// q8_0 blocks along K, and each row of activations quantized the same
    /// way when it is multiplied ([`q8_dot`]).
    #[serde(rename = "q8_0")]
    Q8_0,
    /// bf16 (round to nearest even), widened to f32 in the product.
    #[serde(rename = "bf16")]
    Bf16,
}

impl WeightFormat {
    pub const ALL: [WeightFormat; 3] = [WeightFormat::F32, WeightFormat::Q8_0, WeightFormat::Bf16];

    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::Q8_0 => "q8_0",
            WeightFormat::Bf16 => "bf16",
        }
    }

    /// A name as the spec and `--weights` write it.
    pub fn from_name(s: &str) -> std::result::Result<WeightFormat, String> {
        WeightFormat::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| {
                let names: Vec<String> = WeightFormat::ALL
                    .iter()
                    .map(|w| format!("\"{}\"", w.name()))
                    .collect();
                format!(
                    "unknown value \"{s}\", expected one of {}",
                    names.join(", ")
                )
            })
    }

    pub fn is_f32(&self) -> bool {
        *self == WeightFormat::F32
    }
}

/// A row of any length as q8_0 blocks: the last block is padded with zeros
/// (which change neither its scale nor any dot product), so a row of `k`
/// values is exactly the row padded to a multiple of 32. Finite values only.
pub fn quantize_row(x: &[f32]) -> Vec<Block> {
    x.chunks(QK8_0)
        .map(|c| {
            let mut b = [0.0f32; QK8_0];
            b[..c.len()].copy_from_slice(c);
            Block::quantize(&b)
        })
        .collect()
}

/// The dot product of two q8_0 rows as the kernels compute it (and so the
/// meaning of a q8_0 matmul): per block the exact integer dot `s` of the
/// int8 values, then in f32 and in block order `acc = acc + (da·dw)·s`.
/// `s` is exact in f32 (|s| ≤ 32·127² < 2²⁴), so only the scale product,
/// the term and the sum round, the same on every SIMD path.
pub fn q8_dot(a: &[Block], w: &[Block]) -> f32 {
    let mut acc = 0.0f32;
    for (x, y) in a.iter().zip(w) {
        let s: i32 =
            x.qs.iter()
                .zip(&y.qs)
                .map(|(&p, &q)| p as i32 * q as i32)
                .sum();
        let d = x.scale() * y.scale();
        let t = d * s as f32;
        acc += t;
    }
    acc
}

/// f32 → bf16 → f32: round to nearest, ties to even (a NaN stays a NaN).
pub fn bf16_round(x: f32) -> f32 {
    f32::from_bits((bf16_bits(x) as u32) << 16)
}

/// f32 → bf16 bits, round to nearest even (as `vcvtneps2bf16`).
pub fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// The largest error per value a block with scale `d` (f32, before its f16
/// rounding) may have: `d/2 + 127·|d − f16(d)|`, plus the f32 rounding of
/// the products (a few ulps of `max|x|`).
pub fn error_bound(amax: f32) -> f32 {
    let d = amax / 127.0;
    let d16 = f16_to_f32(f32_to_f16(d));
    d / 2.0 + 127.0 * (d - d16).abs() + 4.0 * f32::EPSILON * amax
}

/// f32 → f16 bits, rounding to nearest, ties to even (as F16C's
/// `_cvtss_sh(x, 0)` and ggml's `GGML_FP32_TO_FP16`); overflow gives an
/// infinity, NaN stays NaN.
pub fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    let round =
        |q: u32, rem: u32, half: u32| q + u32::from(rem > half || (rem == half && q & 1 == 1));
    if e <= 0 {
        // Subnormal (or zero): value = m · 2^(exp − 150) = q · 2^−24.
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let q = round(m >> shift, m & ((1 << shift) - 1), 1 << (shift - 1));
        return sign | q as u16;
    }
    // A carry out of the mantissa rounds into the exponent (up to infinity).
    let q = round(((e as u32) << 10) | (man >> 13), man & 0x1fff, 0x1000);
    sign | q as u16
}

/// f16 bits → f32 (exact).
pub fn f16_to_f32(h: u16) -> f32 {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn block(f: impl Fn(usize) -> f32) -> [f32; QK8_0] {
        std::array::from_fn(f)
    }

    #[test]
    fn f16_round_trips_every_value_and_rounds_ties_to_even() {
        for h in 0..=u16::MAX {
            let x = f16_to_f32(h);
            if x.is_nan() {
                assert!(f16_to_f32(f32_to_f16(x)).is_nan());
                continue;
            }
            assert_eq!(f32_to_f16(x), h, "{h:#06x} = {x}");
        }
        // Midpoints between neighbours (positive, finite) go to the even one;
        // just above or below, to the nearer.
        for h in 0..0x7bffu16 {
            let (a, b) = (f16_to_f32(h), f16_to_f32(h + 1));
            let mid = ((a as f64 + b as f64) / 2.0) as f32;
            assert_eq!(mid as f64, (a as f64 + b as f64) / 2.0, "exact midpoint");
            let even = if h % 2 == 0 { h } else { h + 1 };
            assert_eq!(f32_to_f16(mid), even, "tie at {mid}");
            assert_eq!(f32_to_f16(f32::from_bits(mid.to_bits() - 1)), h);
            assert_eq!(f32_to_f16(f32::from_bits(mid.to_bits() + 1)), h + 1);
            assert_eq!(f32_to_f16(-mid), 0x8000 | even);
        }
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(65519.99), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00, "rounds to infinity");
        assert_eq!(f32_to_f16(1e-9), 0, "below half the smallest subnormal");
        assert_eq!(f32_to_f16(f32::NEG_INFINITY), 0xfc00);
    }

    /// Blocks computed by hand with `quantize_row_q8_0_ref`'s steps.
    #[test]
    fn hand_computed_blocks_match_the_reference_bit_for_bit() {
        // max 127: d = 1 (f16 0x3c00), 1/d = 1, q = round(x), halves away
        // from zero (2.5 → 3, not the even 2).
        let mut x = [0.0f32; QK8_0];
        x[..8].copy_from_slice(&[127.0, -127.0, 63.5, -63.5, 0.5, -0.5, 2.5, 1.49]);
        let b = Block::quantize(&x);
        assert_eq!(b.d, 0x3c00);
        assert_eq!(&b.qs[..8], &[127, -127, 64, -64, 1, -1, 3, 1]);
        assert!(b.qs[8..].iter().all(|&q| q == 0));
        // max 254: d = 2, 1/d = 0.5: 3 → 1.5 → 2, 5 → 3, -5 → -3, 1 → 1.
        let x = block(|i| [254.0, 3.0, 5.0, -5.0, 1.0, -1.0, 0.9, 253.0][i % 8]);
        let b = Block::quantize(&x);
        assert_eq!(b.d, 0x4000);
        assert_eq!(&b.qs[..8], &[127, 2, 3, -3, 1, -1, 0, 127]);
        assert_eq!(b.to_bytes()[..4], [0x00, 0x40, 127, 2]);
        // A subnormal f16 scale: max 127·2^-20 → d = 2^-20 = 16·2^-24.
        let s = 2f32.powi(-20);
        let x = block(|i| (i as f32 - 16.0) * 4.0 * s);
        let mut y = x;
        y[0] = -127.0 * s;
        let b = Block::quantize(&y);
        assert_eq!(b.d, 0x0010);
        assert_eq!(b.qs[0], -127);
        assert_eq!(b.qs[1], -60);
        assert_eq!(b.qs[31], 60);
        assert_eq!(b.dequantize()[1], -60.0 * s);
        // The scale rounded to f16: max 1 → d = 1/127 = 0.007874016 → f16
        // 0x2008 (2^-7 · (1 + 8/1024)); q comes from the f32 d: 1 · (1/d) → 127.
        let b = Block::quantize(&block(|i| if i == 5 { -1.0 } else { 0.0 }));
        assert_eq!(b.d, 0x2008);
        assert_eq!(b.qs[5], -127);
        assert_eq!(b.dequantize()[5], -127.0 * f16_to_f32(0x2008));
    }

    #[test]
    fn all_zero_blocks_have_a_zero_scale() {
        let b = Block::quantize(&[0.0; QK8_0]);
        assert_eq!(b, Block { d: 0, qs: [0; 32] });
        assert_eq!(b.dequantize(), [0.0; QK8_0]);
        // -0.0 too.
        assert_eq!(Block::quantize(&[-0.0; QK8_0]).dequantize(), [0.0; QK8_0]);
    }

    #[test]
    fn one_huge_value_flattens_the_rest_within_the_bound() {
        let x = block(|i| {
            if i == 7 {
                1.0e6
            } else {
                (i as f32 - 15.0) * 1e-3
            }
        });
        let b = Block::quantize(&x);
        assert_eq!(b.qs[7], 127);
        assert!(b.qs.iter().enumerate().all(|(i, &q)| i == 7 || q == 0));
        let y = b.dequantize();
        let bound = error_bound(1.0e6);
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() <= bound, "{a} vs {b}, bound {bound}");
        }
        // f16's largest scale holds it; 127 · 65520 does not.
        let err = Q8Matrix::quantize(
            "w",
            &block(|i| if i == 0 { 127.0 * 65520.0 } else { 0.0 }),
            1,
            32,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("tensor `w`: block 0") && err.contains("65504"),
            "{err}"
        );
        assert!(Q8Matrix::quantize(
            "w",
            &block(|i| if i == 0 { 127.0 * 65500.0 } else { 0.0 }),
            1,
            32
        )
        .is_ok());
    }

    #[test]
    fn quantize_dequantize_stays_within_the_bound() {
        let mut rng = crate::util::Rng::new(5);
        let (rows, k) = (7, 96);
        for scale in [1e-7f32, 1e-3, 0.02, 1.0, 300.0, 1e5] {
            let data: Vec<f32> = (0..rows * k)
                .map(|_| (rng.normal() as f32) * scale)
                .collect();
            let m = Q8Matrix::quantize("w", &data, rows, k).unwrap();
            assert_eq!(m.blocks.len(), rows * k / 32);
            assert_eq!(m.row(3).len(), 3);
            let y = m.dequantize();
            let mut worst = 0.0f32;
            for (bx, by) in data.chunks(32).zip(y.chunks(32)) {
                let amax = bx.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let bound = error_bound(amax);
                for (a, b) in bx.iter().zip(by) {
                    assert!(
                        (a - b).abs() <= bound,
                        "scale {scale}: {a} vs {b} (bound {bound})"
                    );
                    worst = worst.max((a - b).abs() / amax);
                }
            }
            // Rounding to 1/127 of the block's max: at most half a step, and
            // the f16 scale's relative rounding (2^-11) while it is normal.
            if scale >= 0.02 {
                assert!(worst <= 0.5 / 127.0 + 5e-4, "scale {scale}: {worst}");
            }
            let bytes = m.to_bytes();
            assert_eq!(bytes.len(), rows * k / 32 * BLOCK_BYTES);
            assert_eq!(Q8Matrix::from_bytes(&bytes, rows, k).unwrap(), m);
        }
    }

    #[test]
    fn bad_inputs_are_refused_by_tensor_name() {
        let err = |data: &[f32], rows, k| {
            Q8Matrix::quantize("blk.0.ffn_up.weight", data, rows, k)
                .unwrap_err()
                .to_string()
        };
        let mut v = vec![0.5f32; 64];
        v[40] = f32::NAN;
        let e = err(&v, 2, 32);
        assert!(
            e.contains("`blk.0.ffn_up.weight`") && e.contains("NaN at index 40"),
            "{e}"
        );
        v[40] = f32::INFINITY;
        assert!(err(&v, 2, 32).contains("inf at index 40"));
        let e = err(&[0.0; 48], 2, 24);
        assert!(e.contains("24 values are not a multiple of 32"), "{e}");
        assert!(err(&[0.0; 48], 2, 32).contains("48 values, not 2 rows of 32"));
        assert!(!fits(0) && !fits(48) && fits(64));
        assert!(Q8Matrix::from_bytes(&[0; 33], 1, 32).is_err());
    }
    #[test]
    fn padded_rows_quantize_like_the_zero_padded_row() {
        let mut rng = crate::util::Rng::new(9);
        for k in [1usize, 5, 31, 33, 45, 64, 97] {
            let x: Vec<f32> = (0..k).map(|_| rng.normal() as f32).collect();
            let blocks = quantize_row(&x);
            assert_eq!(blocks.len(), k.div_ceil(QK8_0));
            let mut padded = x.clone();
            padded.resize(blocks.len() * QK8_0, 0.0);
            let whole = Q8Matrix::quantize("x", &padded, 1, padded.len()).unwrap();
            assert_eq!(blocks, whole.blocks);
            // Quantize -> dequantize within the bound, and zeros in the tail.
            let y: Vec<f32> = blocks.iter().flat_map(|b| b.dequantize()).collect();
            for (bx, by) in padded.chunks(32).zip(y.chunks(32)) {
                let amax = bx.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for (a, b) in bx.iter().zip(by) {
                    assert!((a - b).abs() <= error_bound(amax), "k {k}: {a} vs {b}");
                }
            }
            assert!(y[k..].iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn q8_dot_is_the_integer_dot_times_the_scales() {
        let a = quantize_row(&[1.0, -2.0, 0.5]);
        let w = quantize_row(&[3.0, 1.0, -1.0]);
        let s: i32 = a[0]
            .qs
            .iter()
            .zip(&w[0].qs)
            .map(|(&p, &q)| p as i32 * q as i32)
            .sum();
        assert_eq!(q8_dot(&a, &w), a[0].scale() * w[0].scale() * s as f32);
        // Close to the float dot: 3 - 2 - 0.5.
        assert!((q8_dot(&a, &w) - 0.5).abs() < 0.05);
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(bf16_round(1.0), 1.0);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1).
        assert_eq!(bf16_round(1.0 + 1.0 / 256.0), 1.0);
        assert_eq!(bf16_round(1.0 + 3.0 / 256.0), 1.0 + 1.0 / 64.0);
        assert_eq!(bf16_round(-1.0 - 1.5 / 256.0), -1.0 - 1.0 / 128.0);
        assert!(bf16_round(f32::NAN).is_nan());
        assert_eq!(bf16_round(f32::MAX), f32::INFINITY);
        let mut rng = crate::util::Rng::new(3);
        for _ in 0..1000 {
            let x = rng.normal() as f32 * 10.0;
            assert!((bf16_round(x) - x).abs() <= x.abs() / 256.0);
        }
    }
}
