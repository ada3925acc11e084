//! `irc eval`: a finished run's held-out prompts generated from and scored,
//! its validation loss, `eval.json` and `samples.json`. Apart from both
//! training (which it reads the results of) and generation (which it uses).

use crate::error::Result;
use crate::eval::{evaluate_with, EvalResult, Generation};
use crate::generate::{held_out, open_run_spec, run_spec, training_icons};
use crate::model;
use crate::quant::WeightFormat;
use crate::report::GallerySample;
use crate::rundir::{resolve_checkpoint, RunDir};
use crate::sample::SamplingConfig;
use crate::spec::Spec;
use crate::util::atomic_write;
use std::path::Path;
use std::time::Instant;

/// `irc eval`: validation loss and generations for up to `n` held-out
/// prompts; writes `RUN/eval.json` and `RUN/samples.json`.
pub fn eval_run(
    run: &Path,
    n: usize,
    cfg: &SamplingConfig,
    max_new: usize,
    threads: usize,
) -> Result<EvalResult> {
    eval_run_with(run, &run_spec(run)?, n, cfg, max_new, threads, None)
}

/// [`eval_run`] generating with the linear layers' weights in `weights`
/// (`--weights`; the validation loss is the f32 training build's); `spec` is
/// the run's ([`run_spec`]).
pub fn eval_run_with(
    run: &Path,
    spec: &Spec,
    n: usize,
    cfg: &SamplingConfig,
    max_new: usize,
    threads: usize,
    weights: Option<WeightFormat>,
) -> Result<EvalResult> {
    let mut m = open_run_spec(run, spec.clone(), threads, weights)?;
    let rows = held_out(run)?;
    let mut gens = vec![];
    let started = Instant::now();
    for row in rows.iter().take(n) {
        let prompt = row.prompt.clone().unwrap_or_default();
        let g = m.generate(&prompt, cfg, max_new, |_| {})?;
        gens.push(Generation {
            prompt,
            text: g.text,
            reference: Some(row.text.clone()),
        });
    }
    let training = training_icons(run);
    let mut result = evaluate_with(&gens, training.as_ref());
    let secs = started.elapsed().as_secs_f64();
    // Every candidate's tokens: the speed of the model, not of the choice.
    if m.tokens_drawn > 0 {
        result.gen_tokens_per_s = Some(m.tokens_drawn as f64 / secs.max(1e-9));
    }
    // The validation loss from the training build (its batch shape).
    let dir = RunDir::new(run);
    let train_built = model::build(spec, &dir.build())?;
    let mut s = train_built.session(threads)?;
    let ckpt = resolve_checkpoint(run);
    s.load_weights_file(&ckpt)?;
    let (data, _) = crate::train::data_configs(spec)?;
    let val = crate::train::val_loss(
        &mut s,
        &train_built,
        &dir.data().val_tokens(),
        0,
        data.mask_prompt,
        data.packing,
    )?;
    result.val_loss = val;
    result.write_json(&dir.eval())?;
    let samples: Vec<GallerySample> = gens
        .iter()
        .zip(&result.samples)
        .map(|(g, e)| {
            let row = |i: Option<usize>| Some(training.as_ref()?.svg(i?).to_string());
            GallerySample {
                prompt: g.prompt.clone(),
                generated: g.text.clone(),
                reference: g.reference.clone(),
                baseline: e.visual.as_ref().and_then(|v| row(v.rows.0)),
                nearest: e.visual.as_ref().and_then(|v| row(v.rows.1)),
                visual: e.visual.clone(),
            }
        })
        .collect();
    atomic_write(
        &dir.samples(),
        serde_json::to_string_pretty(&samples)?.as_bytes(),
    )?;
    Ok(result)
}
