//! Generation, evaluation and the report for a training run directory.
//!
//! Generation runs the library's KV-cached programs: the prompt is prefilled
//! once into the key/value cache, then each new token is one decode step
//! (batch 1, one position), so a token costs the same early and late in the
//! sequence. The session comes from a batch-1 build (`RUN/build-gen`), which
//! keeps the context's arena small.

use crate::data::{read_rows, Row};
use crate::error::{Error, Result};
use crate::eval::{evaluate_with, EvalResult, Generation};
use crate::model::{self, Built};
use crate::report::{write_report, GallerySample};
use crate::runtime::{Session, Weights};
use crate::sample::{generate, Generated, Sampler, SamplingConfig, Stop};
use crate::spec::Spec;
use crate::tokenizer::Tokenizer;
use crate::util::atomic_write;
use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A trained model from a run directory, ready to generate.
pub struct RunModel {
    pub run: PathBuf,
    pub spec: Spec,
    pub built: Built,
    pub session: Session,
    pub tokenizer: Tokenizer,
}

/// Open `RUN` (written by `irc train`): its spec, its latest checkpoint and
/// its tokenizer.
pub fn open_run(run: &Path, threads: usize) -> Result<RunModel> {
    let spec_path = run.join("build").join("spec.toml");
    if !spec_path.exists() {
        return Err(Error::new(format!(
            "{}: not a run directory (no build/spec.toml); give the folder `irc train` wrote",
            run.display()
        )));
    }
    let spec = Spec::load(&spec_path)?;
    let built = generation_build(&spec, &run.join("build-gen"))?;
    let mut session = built.session(threads)?;
    let ckpt = crate::train::resolve_checkpoint(run);
    // A training checkpoint: its optimizer.* tensors are skipped.
    session
        .load_weights(&Weights::load(&ckpt)?)
        .map_err(|e| e.context(ckpt.display()))?;
    let tokenizer = Tokenizer::load(&run.join("data").join("tokenizer.json"))?;
    Ok(RunModel {
        run: run.to_path_buf(),
        spec,
        built,
        session,
        tokenizer,
    })
}

impl RunModel {
    /// Generate from `prompt`; `on_text` receives each new piece of text as
    /// soon as it is decided (nothing past the first stop string).
    pub fn generate(
        &mut self,
        prompt: &str,
        cfg: &SamplingConfig,
        max_new: usize,
        on_text: impl FnMut(&str),
    ) -> Result<Generated> {
        generate_with(
            &mut self.session,
            &self.tokenizer,
            prompt,
            cfg,
            max_new,
            on_text,
        )
    }
}

/// Generate with a session's KV-cached programs, up to the model's context.
pub fn generate_with(
    session: &mut Session,
    tok: &Tokenizer,
    prompt: &str,
    cfg: &SamplingConfig,
    max_new: usize,
    on_text: impl FnMut(&str),
) -> Result<Generated> {
    // Samples follow an <eos> in training, so one starts the context: an
    // empty prompt then means "a new sample".
    let eos = tok.eos_id()? as i32;
    let mut ids = vec![eos];
    ids.extend(tok.encode(prompt.as_bytes())?.into_iter().map(|i| i as i32));
    let context = session.library().context;
    if context == 0 {
        return Err(Error::new(
            "this library has no generation programs; rebuild it with `irc build`",
        ));
    }
    let stop = Stop {
        eos: Some(eos),
        max_new_tokens: max_new,
        context,
        ..Stop::default()
    };
    let mut sampler = Sampler::new(cfg.clone());
    let mut cached = 0usize; // tokens of this generation in the session's cache
    let printed = Cell::new(0usize);
    let on_text = std::cell::RefCell::new(on_text);
    generate(
        &ids,
        &mut sampler,
        &stop,
        |seq| {
            // The first call prefills the prompt; each later one brings one
            // new token to decode.
            let logits = if cached > 0 && seq.len() == cached + 1 {
                session.decode(seq[seq.len() - 1])
            } else {
                session.prefill(seq)
            };
            cached = seq.len();
            logits
        },
        |out| {
            let ids: Vec<u32> = out.iter().map(|&i| i as u32).collect();
            let bytes = tok.decode(&ids).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes).to_string();
            let end = stop.cut(&text);
            let from = printed.get();
            if end > from && text.is_char_boundary(from) && text.is_char_boundary(end) {
                (on_text.borrow_mut())(&text[from..end]);
                printed.set(end);
            }
            text
        },
    )
}

/// A build of `spec` for generation, in `dir`: its prefill and decode
/// programs are the same at any batch shape, so the forward and training
/// programs are compiled as small as they go (batch 1, one prefill chunk),
/// which keeps the context's arena small.
pub fn generation_build(spec: &Spec, dir: &Path) -> Result<Built> {
    let mut spec = spec.clone();
    spec.build.batch = 1;
    spec.build.seq_len = model::PREFILL_CHUNK.min(spec.model.context);
    model::build(&spec, dir)
}

/// Held-out rows of a run (`RUN/data/val.jsonl`), prompts first.
pub fn held_out(run: &Path) -> Result<Vec<Row>> {
    let mut rows = read_rows(&run.join("data").join("val.jsonl"))?;
    rows.sort_by_key(|r| r.prompt.is_none());
    Ok(rows)
}

/// The training icons of a run (`RUN/data/train.jsonl`, rows with a
/// prompt), rendered once for the visual metric; `None` when the file is
/// missing or unreadable.
pub fn training_icons(run: &Path) -> Option<crate::eval::Training> {
    let rows = read_rows(&run.join("data").join("train.jsonl")).ok()?;
    Some(crate::eval::Training::new(rows.iter().filter_map(|r| {
        r.prompt.as_deref().map(|p| (p, r.text.as_str()))
    })))
}

/// `irc eval`: validation loss and generations for up to `n` held-out
/// prompts; writes `RUN/eval.json` and `RUN/samples.json`.
pub fn eval_run(
    run: &Path,
    n: usize,
    cfg: &SamplingConfig,
    max_new: usize,
    threads: usize,
) -> Result<EvalResult> {
    let mut m = open_run(run, threads)?;
    let rows = held_out(run)?;
    let mut gens = vec![];
    let started = Instant::now();
    let mut tokens = 0usize;
    for row in rows.iter().take(n) {
        let prompt = row.prompt.clone().unwrap_or_default();
        let g = m.generate(&prompt, cfg, max_new, |_| {})?;
        tokens += g.tokens.len();
        gens.push(Generation {
            prompt,
            text: g.text,
            reference: Some(row.text.clone()),
        });
    }
    let training = training_icons(run);
    let mut result = evaluate_with(&gens, training.as_ref());
    let secs = started.elapsed().as_secs_f64();
    if tokens > 0 {
        result.gen_tokens_per_s = Some(tokens as f64 / secs.max(1e-9));
    }
    // The validation loss from the training build (its batch shape).
    let spec = Spec::load(&run.join("build").join("spec.toml"))?;
    let train_built = model::build(&spec, &run.join("build"))?;
    let mut s = train_built.session(threads)?;
    let ckpt = crate::train::resolve_checkpoint(run);
    s.load_weights(&Weights::load(&ckpt)?)
        .map_err(|e| e.context(ckpt.display()))?;
    let (data, _) = crate::train::data_configs(&spec)?;
    let val = crate::train::val_loss(
        &mut s,
        &train_built,
        &run.join("data").join("val.tok"),
        0,
        data.mask_prompt,
        data.packing,
    )?;
    result.val_loss = val;
    result.write_json(&run.join("eval.json"))?;
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
        &run.join("samples.json"),
        serde_json::to_string_pretty(&samples)?.as_bytes(),
    )?;
    Ok(result)
}

/// `irc report`: the HTML report of a run.
pub fn report_run(run: &Path, out: &Path) -> Result<()> {
    let eval = EvalResult::read_json(&run.join("eval.json")).ok();
    let samples: Vec<GallerySample> = std::fs::read_to_string(run.join("samples.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    write_report(run, eval.as_ref(), &samples, out)
}

/// Print to stdout as text arrives.
pub fn print_stream(piece: &str) {
    print!("{piece}");
    let _ = std::io::stdout().flush();
}
