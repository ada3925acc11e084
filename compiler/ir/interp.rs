//! The reference interpreter: the meaning of every op, in plain loops, for
//! f32 and f64. It is the oracle the compiled kernels are checked against, so
//! it favours the obvious over the fast.

use super::ops::IGNORE_INDEX;
use super::{DType, Graph, NodeId, Op};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// The float types the interpreter runs in.
pub trait Real:
    Copy
    + Debug
    + Default
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + AddAssign
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn tanh(self) -> Self;
    fn sqrt(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn powf(self, e: Self) -> Self;
}

macro_rules! real {
    ($t:ty) => {
        impl Real for $t {
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
        }
    };
}
real!(f32);
real!(f64);

/// A dense row-major tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

impl<T: Real> Tensor<T> {
    pub fn new(shape: &[usize], data: Vec<T>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "shape {shape:?}"
        );
        Tensor {
            shape: shape.to_vec(),
            data,
        }
    }

    pub fn cast<U: Real>(&self) -> Tensor<U> {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(|x| U::from_f64(x.to_f64())).collect(),
        }
    }
}

/// A value fed to or produced by the interpreter.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<T> {
    F(Tensor<T>),
    I(Vec<i32>),
}

impl<T: Real> Value<T> {
    pub fn f(&self) -> &Tensor<T> {
        match self {
            Value::F(t) => t,
            Value::I(_) => panic!("expected a float value"),
        }
    }
    fn ids(&self) -> &[i32] {
        match self {
            Value::I(v) => v,
            Value::F(_) => panic!("expected an id value"),
        }
    }
}

fn gelu<T: Real>(x: T) -> T {
    let c = T::from_f64((2.0 / std::f64::consts::PI).sqrt());
    let half = T::from_f64(0.5);
    half * x * (T::from_f64(1.0) + (c * (x + T::from_f64(0.044715) * x * x * x)).tanh())
}

fn silu<T: Real>(x: T) -> T {
    x / (T::from_f64(1.0) + (-x).exp())
}

fn gelu_grad<T: Real>(x: T) -> T {
    let c = T::from_f64((2.0 / std::f64::consts::PI).sqrt());
    let k = T::from_f64(0.044715);
    let (half, one) = (T::from_f64(0.5), T::from_f64(1.0));
    let t = (c * (x + k * x * x * x)).tanh();
    half * (one + t) + half * x * (one - t * t) * c * (one + T::from_f64(3.0) * k * x * x)
}

fn silu_grad<T: Real>(x: T) -> T {
    let one = T::from_f64(1.0);
    let s = one / (one + (-x).exp());
    s * (one + x * (one - s))
}

/// Per row of C: (mean, rstd) of LayerNorm, or (0, 1/rms) of RMSNorm.
fn norm_stats<T: Real>(row: &[T], eps: f64, rms: bool) -> (T, T) {
    let n = T::from_f64(row.len() as f64);
    let mean = if rms {
        T::default()
    } else {
        row.iter().fold(T::default(), |s, &v| s + v) / n
    };
    let var = row
        .iter()
        .fold(T::default(), |s, &v| s + (v - mean) * (v - mean))
        / n;
    (mean, T::from_f64(1.0) / (var + T::from_f64(eps)).sqrt())
}

/// Softmax probabilities of query row `i` over keys `0..=i` (causal).
#[allow(clippy::too_many_arguments)]
fn attention_row<T: Real>(
    q: &[T],
    k: &[T],
    qo: usize,
    i: usize,
    bi: usize,
    t: usize,
    kw: usize,
    ko_h: usize,
    d: usize,
) -> Vec<T> {
    let scale = T::from_f64(1.0 / (d as f64).sqrt());
    let scores: Vec<T> = (0..=i)
        .map(|j| {
            let ko = (bi * t + j) * kw + ko_h;
            (0..d).fold(T::default(), |s, e| s + q[qo + e] * k[ko + e]) * scale
        })
        .collect();
    let mx = scores
        .iter()
        .fold(scores[0], |m, &s| if s > m { s } else { m });
    let e: Vec<T> = scores.iter().map(|&s| (s - mx).exp()).collect();
    let sum = e.iter().fold(T::default(), |s, &x| s + x);
    e.into_iter().map(|x| x / sum).collect()
}

/// Run `g` on `feeds` (inputs and parameters by name). Returns every node's
/// value, so tests can compare intermediate tensors too.
pub fn interpret<T: Real>(
    g: &Graph,
    feeds: &BTreeMap<String, Value<T>>,
) -> Result<HashMap<NodeId, Value<T>>> {
    let mut vals: HashMap<NodeId, Value<T>> = HashMap::new();
    for id in g.ids() {
        let node = g.node(id);
        let arg = |i: usize| &vals[&node.inputs[i]];
        let shape = &node.ty.shape;
        let out: Value<T> = match &node.op {
            Op::Input { name } | Op::Param { name } | Op::State { name } => {
                let v = feeds
                    .get(name)
                    .ok_or_else(|| Error::new(format!("interpreter: no value fed for `{name}`")))?;
                let n = match v {
                    Value::F(t) => t.data.len(),
                    Value::I(d) => d.len(),
                };
                let want_int = node.ty.dtype == DType::I32;
                if n != node.ty.numel() || matches!(v, Value::I(_)) != want_int {
                    return Err(Error::new(format!(
                        "interpreter: `{name}` expects {}, got {n} elements",
                        node.ty
                    )));
                }
                match v {
                    Value::F(t) => Value::F(Tensor::new(shape, t.data.clone())),
                    Value::I(d) => Value::I(d.clone()),
                }
            }
            Op::Embedding => {
                let table = arg(0).f();
                let ids = arg(1).ids();
                let (v, c) = (table.shape[0], table.shape[1]);
                let mut data = Vec::with_capacity(ids.len() * c);
                for &t in ids {
                    if t < 0 || t as usize >= v {
                        return Err(Error::new(format!(
                            "token id {t} outside the vocabulary 0..{v}"
                        )));
                    }
                    data.extend_from_slice(&table.data[t as usize * c..(t as usize + 1) * c]);
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::MatMul { ta, tb } => {
                let (a, b) = (arg(0).f(), arg(1).f());
                let (m, n) = (shape[shape.len() - 2], shape[shape.len() - 1]);
                let k = if *ta {
                    a.shape[a.shape.len() - 2]
                } else {
                    a.shape[a.shape.len() - 1]
                };
                let batch: usize = shape[..shape.len() - 2].iter().product();
                let b_batched = b.shape.len() > 2;
                let mut data = vec![T::default(); batch * m * n];
                for bi in 0..batch {
                    let ao = bi * m * k;
                    let bo = if b_batched { bi * k * n } else { 0 };
                    for i in 0..m {
                        for j in 0..n {
                            let mut acc = T::default();
                            for p in 0..k {
                                let av = if *ta {
                                    a.data[ao + p * m + i]
                                } else {
                                    a.data[ao + i * k + p]
                                };
                                let bv = if *tb {
                                    b.data[bo + j * k + p]
                                } else {
                                    b.data[bo + p * n + j]
                                };
                                acc += av * bv;
                            }
                            data[bi * m * n + i * n + j] = acc;
                        }
                    }
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::Add | Op::Mul => {
                let (a, b) = (arg(0).f(), arg(1).f());
                let nb = b.data.len();
                let add = matches!(node.op, Op::Add);
                let data = a
                    .data
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| {
                        if add {
                            x + b.data[i % nb]
                        } else {
                            x * b.data[i % nb]
                        }
                    })
                    .collect();
                Value::F(Tensor::new(shape, data))
            }
            Op::Scale { by } => {
                let s = T::from_f64(*by);
                Value::F(Tensor::new(
                    shape,
                    arg(0).f().data.iter().map(|&x| x * s).collect(),
                ))
            }
            Op::Gelu => Value::F(Tensor::new(
                shape,
                arg(0).f().data.iter().map(|&x| gelu(x)).collect(),
            )),
            Op::Silu => Value::F(Tensor::new(
                shape,
                arg(0).f().data.iter().map(|&x| silu(x)).collect(),
            )),
            Op::LayerNorm { eps } | Op::RmsNorm { eps } => {
                let x = arg(0).f();
                let w = &arg(1).f().data;
                let bias = (node.inputs.len() == 3).then(|| &arg(2).f().data);
                let layer = matches!(node.op, Op::LayerNorm { .. });
                let c = node.ty.last();
                let nf = T::from_f64(c as f64);
                let mut data = Vec::with_capacity(x.data.len());
                for row in x.data.chunks(c) {
                    let mean = if layer {
                        row.iter().fold(T::default(), |s, &v| s + v) / nf
                    } else {
                        T::default()
                    };
                    let var = row
                        .iter()
                        .fold(T::default(), |s, &v| s + (v - mean) * (v - mean))
                        / nf;
                    let rstd = T::from_f64(1.0) / (var + T::from_f64(*eps)).sqrt();
                    for (j, &v) in row.iter().enumerate() {
                        let y = (v - mean) * rstd * w[j];
                        data.push(match bias {
                            Some(b) => y + b[j],
                            None => y,
                        });
                    }
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::Softmax => {
                let x = arg(0).f();
                let c = node.ty.last();
                let mut data = Vec::with_capacity(x.data.len());
                for row in x.data.chunks(c) {
                    let mx = row.iter().fold(row[0], |m, &v| if v > m { v } else { m });
                    let e: Vec<T> = row.iter().map(|&v| (v - mx).exp()).collect();
                    let s = e.iter().fold(T::default(), |s, &v| s + v);
                    data.extend(e.iter().map(|&v| v / s));
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::Rope {
                head_dim,
                theta,
                inverse,
            } => {
                let x = arg(0).f();
                let (b, t, hd) = (shape[0], shape[1], shape[2]);
                let positions = (node.inputs.len() == 2).then(|| arg(1).ids());
                let half = head_dim / 2;
                let mut data = x.data.clone();
                for bi in 0..b {
                    for ti in 0..t {
                        let pos = positions.map_or(ti as f64, |p| p[bi * t + ti] as f64);
                        let pos_row = bi * t + ti;
                        for h in 0..hd / head_dim {
                            let o = pos_row * hd + h * head_dim;
                            for i in 0..half {
                                let inv = T::from_f64(1.0)
                                    / T::from_f64(*theta)
                                        .powf(T::from_f64((2 * i) as f64 / *head_dim as f64));
                                let ang = T::from_f64(pos) * inv;
                                let (c, s) =
                                    (ang.cos(), if *inverse { -ang.sin() } else { ang.sin() });
                                let (x1, x2) = (x.data[o + i], x.data[o + i + half]);
                                data[o + i] = x1 * c - x2 * s;
                                data[o + i + half] = x2 * c + x1 * s;
                            }
                        }
                    }
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::Attention {
                heads,
                kv_heads,
                head_dim,
            } => {
                let (q, k, v) = (arg(0).f(), arg(1).f(), arg(2).f());
                let (b, t) = (shape[0], shape[1]);
                let d = *head_dim;
                let (qw, kw) = (heads * d, kv_heads * d);
                let group = heads / kv_heads;
                let mut data = vec![T::default(); q.data.len()];
                for bi in 0..b {
                    for h in 0..*heads {
                        let kh = h / group;
                        for i in 0..t {
                            let qo = (bi * t + i) * qw + h * d;
                            let p = attention_row(&q.data, &k.data, qo, i, bi, t, kw, kh * d, d);
                            for (j, &pj) in p.iter().enumerate() {
                                let vo = (bi * t + j) * kw + kh * d;
                                for c in 0..d {
                                    data[qo + c] += pj * v.data[vo + c];
                                }
                            }
                        }
                    }
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::CacheWrite => {
                let (cache, new, pos) = (arg(0).f(), arg(1).f(), arg(2).ids());
                let (s, n) = (cache.shape[0], cache.shape[1]);
                let mut data = cache.data.clone();
                for (i, &p) in pos.iter().enumerate() {
                    if p < 0 || p as usize >= s {
                        return Err(Error::new(format!(
                            "cache position {p} outside the cache's {s} rows"
                        )));
                    }
                    let p = p as usize;
                    data[p * n..(p + 1) * n].copy_from_slice(&new.data[i * n..(i + 1) * n]);
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::CachedAttention {
                heads,
                kv_heads,
                head_dim,
            } => {
                let (q, k, v, pos) = (arg(0).f(), arg(1).f(), arg(2).f(), arg(3).ids());
                let s = k.shape[0];
                let d = *head_dim;
                let (qw, kw) = (heads * d, kv_heads * d);
                let group = heads / kv_heads;
                let mut data = vec![T::default(); q.data.len()];
                for (i, &p) in pos.iter().enumerate() {
                    if p < 0 || p as usize >= s {
                        return Err(Error::new(format!(
                            "cache position {p} outside the cache's {s} rows"
                        )));
                    }
                    for h in 0..*heads {
                        let kh = h / group;
                        let qo = i * qw + h * d;
                        // Batch 0 of a (1, S) key tensor is the cache itself.
                        let pr =
                            attention_row(&q.data, &k.data, qo, p as usize, 0, s, kw, kh * d, d);
                        for (j, &pj) in pr.iter().enumerate() {
                            let vo = j * kw + kh * d;
                            for c in 0..d {
                                data[qo + c] += pj * v.data[vo + c];
                            }
                        }
                    }
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::CrossEntropy => {
                let (x, tg) = (arg(0).f(), arg(1).ids());
                let v = x.shape[x.shape.len() - 1];
                let mut total = T::default();
                let mut count = 0usize;
                for (row, &t) in x.data.chunks(v).zip(tg) {
                    if t == IGNORE_INDEX {
                        continue;
                    }
                    if t < 0 || t as usize >= v {
                        return Err(Error::new(format!(
                            "target {t} outside the vocabulary 0..{v}"
                        )));
                    }
                    let mx = row.iter().fold(row[0], |m, &s| if s > m { s } else { m });
                    let lse = row
                        .iter()
                        .fold(T::default(), |s, &r| s + (r - mx).exp())
                        .ln()
                        + mx;
                    total += lse - row[t as usize];
                    count += 1;
                }
                // All targets ignored: the loss is defined as 0 (PyTorch gives NaN).
                let loss = if count == 0 {
                    T::default()
                } else {
                    total / T::from_f64(count as f64)
                };
                Value::F(Tensor::new(&[1], vec![loss]))
            }
            Op::Narrow { start, len } => {
                let x = arg(0).f();
                let n = x.shape[x.shape.len() - 1];
                let data = x
                    .data
                    .chunks(n)
                    .flat_map(|r| r[*start..start + len].iter().copied())
                    .collect();
                Value::F(Tensor::new(shape, data))
            }
            Op::ReduceTo { .. } => {
                let n = node.ty.numel();
                let mut data = vec![T::default(); n];
                for (i, &x) in arg(0).f().data.iter().enumerate() {
                    data[i % n] += x;
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::Pad { start, total } => {
                let x = arg(0).f();
                let len = x.shape[x.shape.len() - 1];
                let mut data = vec![T::default(); node.ty.numel()];
                for (r, row) in x.data.chunks(len).enumerate() {
                    data[r * total + start..r * total + start + len].copy_from_slice(row);
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::PadRows { start, .. } => {
                let x = arg(0).f();
                let row: usize = shape[1..].iter().product();
                let mut data = vec![T::default(); node.ty.numel()];
                data[start * row..start * row + x.data.len()].copy_from_slice(&x.data);
                Value::F(Tensor::new(shape, data))
            }
            Op::GeluGrad | Op::SiluGrad => {
                let (dy, x) = (arg(0).f(), arg(1).f());
                let f = if matches!(node.op, Op::GeluGrad) {
                    gelu_grad::<T>
                } else {
                    silu_grad::<T>
                };
                Value::F(Tensor::new(
                    shape,
                    dy.data
                        .iter()
                        .zip(&x.data)
                        .map(|(&g, &v)| g * f(v))
                        .collect(),
                ))
            }
            Op::SoftmaxGrad => {
                let (dy, y) = (arg(0).f(), arg(1).f());
                let c = node.ty.last();
                let mut data = Vec::with_capacity(y.data.len());
                for (gr, yr) in dy.data.chunks(c).zip(y.data.chunks(c)) {
                    let dot = gr
                        .iter()
                        .zip(yr)
                        .fold(T::default(), |s, (&g, &p)| s + g * p);
                    data.extend(gr.iter().zip(yr).map(|(&g, &p)| p * (g - dot)));
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::NormGradX { eps, rms } => {
                let (dy, x, w) = (arg(0).f(), arg(1).f(), &arg(2).f().data);
                let c = x.shape[x.shape.len() - 1];
                let nf = T::from_f64(c as f64);
                let mut data = Vec::with_capacity(x.data.len());
                for (gr, xr) in dy.data.chunks(c).zip(x.data.chunks(c)) {
                    let (mean, rstd) = norm_stats(xr, *eps, *rms);
                    let xhat: Vec<T> = xr.iter().map(|&v| (v - mean) * rstd).collect();
                    let dxhat: Vec<T> = gr.iter().zip(w).map(|(&g, &wv)| g * wv).collect();
                    let m1 = if *rms {
                        T::default()
                    } else {
                        dxhat.iter().fold(T::default(), |s, &v| s + v) / nf
                    };
                    let m2 = dxhat
                        .iter()
                        .zip(&xhat)
                        .fold(T::default(), |s, (&a, &b)| s + a * b)
                        / nf;
                    data.extend(
                        dxhat
                            .iter()
                            .zip(&xhat)
                            .map(|(&a, &h)| rstd * (a - m1 - h * m2)),
                    );
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::NormGradW { eps, rms } => {
                let (dy, x) = (arg(0).f(), arg(1).f());
                let c = node.ty.last();
                let mut data = vec![T::default(); c];
                for (gr, xr) in dy.data.chunks(c).zip(x.data.chunks(c)) {
                    let (mean, rstd) = norm_stats(xr, *eps, *rms);
                    for j in 0..c {
                        data[j] += gr[j] * (xr[j] - mean) * rstd;
                    }
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::AttentionGrad {
                heads,
                kv_heads,
                head_dim,
                wrt,
            } => {
                let (dout, q, k, v) = (arg(0).f(), arg(1).f(), arg(2).f(), arg(3).f());
                let (b, t) = (q.shape[0], q.shape[1]);
                let d = *head_dim;
                let (qw, kw) = (heads * d, kv_heads * d);
                let group = heads / kv_heads;
                let scale = T::from_f64(1.0 / (d as f64).sqrt());
                let mut data = vec![T::default(); node.ty.numel()];
                for bi in 0..b {
                    for h in 0..*heads {
                        let kh = h / group;
                        for i in 0..t {
                            let qo = (bi * t + i) * qw + h * d;
                            let p = attention_row(&q.data, &k.data, qo, i, bi, t, kw, kh * d, d);
                            let dp: Vec<T> = (0..=i)
                                .map(|j| {
                                    let vo = (bi * t + j) * kw + kh * d;
                                    (0..d).fold(T::default(), |s, e| {
                                        s + dout.data[qo + e] * v.data[vo + e]
                                    })
                                })
                                .collect();
                            let pdp = p
                                .iter()
                                .zip(&dp)
                                .fold(T::default(), |s, (&a, &b)| s + a * b);
                            for j in 0..=i {
                                let o = (bi * t + j) * kw + kh * d;
                                let ds = p[j] * (dp[j] - pdp) * scale;
                                for e in 0..d {
                                    match wrt {
                                        0 => data[qo + e] += ds * k.data[o + e],
                                        1 => data[o + e] += ds * q.data[qo + e],
                                        _ => data[o + e] += p[j] * dout.data[qo + e],
                                    }
                                }
                            }
                        }
                    }
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::EmbeddingGrad { vocab } => {
                let (dy, ids) = (arg(0).f(), arg(1).ids());
                let c = node.ty.last();
                let mut data = vec![T::default(); vocab * c];
                for (row, &id) in dy.data.chunks(c).zip(ids) {
                    if id < 0 || id as usize >= *vocab {
                        return Err(Error::new(format!(
                            "token id {id} outside the vocabulary 0..{vocab}"
                        )));
                    }
                    for j in 0..c {
                        data[id as usize * c + j] += row[j];
                    }
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::CrossEntropyGrad => {
                let (x, tg) = (arg(0).f(), arg(1).ids());
                let v = node.ty.last();
                let count = tg.iter().filter(|&&t| t != IGNORE_INDEX).count().max(1);
                let inv = T::from_f64(1.0 / count as f64);
                let mut data = vec![T::default(); x.data.len()];
                for (r, (row, &t)) in x.data.chunks(v).zip(tg).enumerate() {
                    if t == IGNORE_INDEX {
                        continue;
                    }
                    if t < 0 || t as usize >= v {
                        return Err(Error::new(format!(
                            "target {t} outside the vocabulary 0..{v}"
                        )));
                    }
                    let mx = row.iter().fold(row[0], |m, &s| if s > m { s } else { m });
                    let sum = row.iter().fold(T::default(), |s, &r| s + (r - mx).exp());
                    for j in 0..v {
                        let p = (row[j] - mx).exp() / sum;
                        let y = if j == t as usize {
                            T::from_f64(1.0)
                        } else {
                            T::default()
                        };
                        data[r * v + j] = (p - y) * inv;
                    }
                }
                Value::F(Tensor::new(shape, data))
            }
            Op::Slice { start, len } => {
                let row: usize = node.ty.shape[1..].iter().product();
                match arg(0) {
                    Value::F(x) => Value::F(Tensor::new(
                        shape,
                        x.data[start * row..(start + len) * row].to_vec(),
                    )),
                    Value::I(x) => Value::I(x[start * row..(start + len) * row].to_vec()),
                }
            }
            Op::Reshape { .. } => match arg(0) {
                Value::F(x) => Value::F(Tensor::new(shape, x.data.clone())),
                Value::I(x) => Value::I(x.clone()),
            },
        };
        vals.insert(id, out);
    }
    Ok(vals)
}
