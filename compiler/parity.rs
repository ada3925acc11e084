//! The compiled model against the f64 reference interpreter: the forward
//! over token rows on both, and the one error measure and tolerance every
//! numeric check uses (`irc forward --check`, `irc doctor`'s drift check).

use crate::error::{Error, Result};
use crate::model::Built;
use crate::runtime::Weights;

/// Largest relative error of compiled logits against the interpreter that
/// is not drift.
pub const LOGITS_TOLERANCE: f64 = 1e-4;

/// Run the forward over rows of equal length, in chunks of the compiled batch.
pub fn forward_rows(b: &Built, w: &Weights, rows: &[Vec<i32>], threads: usize) -> Result<Vec<f32>> {
    let t = rows[0].len();
    if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != t) {
        return Err(Error::new(format!(
            "sequence {} has {} tokens but the first has {t}; every sequence must have the same length",
            i + 1,
            r.len()
        )));
    }
    let max_t = b.compiled.program.seq;
    if t > max_t {
        return Err(Error::new(format!(
            "sequences of {t} tokens exceed the compiled seq_len {max_t} ([build].seq_len)"
        )));
    }
    let mut s = b.session(threads)?;
    s.load_weights(w)?;
    let mut logits = Vec::with_capacity(rows.len() * t * b.spec.model.vocab_size);
    for chunk in rows.chunks(b.compiled.program.batch) {
        let flat: Vec<i32> = chunk.iter().flatten().copied().collect();
        logits.extend(s.forward(&flat, chunk.len(), t)?);
    }
    Ok(logits)
}

/// max |a - b| / max |b|, the measure every numeric check in irc uses.
pub fn max_rel_err(a: &[f32], b: &[f64]) -> f64 {
    let num = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - y).abs())
        .fold(0.0, f64::max);
    let den = b.iter().map(|y| y.abs()).fold(0.0, f64::max).max(1e-30);
    num / den
}

/// The reference interpreter (f64) on the same graph, rows padded like the library pads them.
pub fn interpret_rows(b: &Built, w: &Weights, rows: &[Vec<i32>]) -> Result<Vec<f64>> {
    use crate::ir::{interpret, Value};
    let (bs, ts, v) = (
        b.compiled.program.batch,
        b.compiled.program.seq,
        b.spec.model.vocab_size,
    );
    let g = &b.compiled.graph;
    let logits_id = g.output("logits").expect("every program outputs logits");
    let mut out = vec![];
    for chunk in rows.chunks(bs) {
        let t = chunk[0].len();
        let mut tokens = vec![0i32; bs * ts];
        for (r, row) in chunk.iter().enumerate() {
            tokens[r * ts..r * ts + t].copy_from_slice(row);
        }
        let mut feeds: std::collections::BTreeMap<String, Value<f64>> = w
            .cast::<f64>()
            .into_iter()
            .map(|(k, t)| (k, Value::F(t)))
            .collect();
        feeds.insert("tokens".into(), Value::I(tokens));
        feeds.insert("targets".into(), Value::I(vec![-100; bs * ts]));
        let vals = interpret(g, &feeds)?;
        let full = &vals[&logits_id].f().data;
        for r in 0..chunk.len() {
            out.extend_from_slice(&full[r * ts * v..(r * ts + t) * v]);
        }
    }
    Ok(out)
}
