//! Generation from a training run directory.
//!
//! Generation runs the library's KV-cached programs: the prompt is prefilled
//! once into the key/value cache, then each new token is one decode step
//! (batch 1, one position), so a token costs the same early and late in the
//! sequence. The session comes from a batch-1 build (`RUN/build-gen`), which
//! keeps the context's arena small.

use crate::data::retrieval::Exemplars;
use crate::data::{read_rows, Row};
use crate::error::{Error, Result};
use crate::model::{self, Built};
use crate::quant::WeightFormat;
use crate::rundir::{resolve_checkpoint, RunDir};
use crate::runtime::Session;
use crate::sample::{generate, Generated, Sampler, SamplingConfig, Stop};
use crate::spec::Spec;
use crate::tokenizer::Tokenizer;
use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A trained model from a run directory, ready to generate.
pub struct RunModel {
    pub run: PathBuf,
    pub spec: Spec,
    pub built: Built,
    pub session: Session,
    pub tokenizer: Tokenizer,
    /// The run's training rows, when it was trained on prompts conditioned
    /// on them (`[data] exemplars`).
    pub exemplars: Option<Exemplars>,
    /// Tokens sampled so far, every candidate's included: what generation
    /// speed is measured on.
    pub tokens_drawn: usize,
}

/// Open `RUN` (written by `irc train`): its spec, its latest checkpoint and
/// its tokenizer.
pub fn open_run(run: &Path, threads: usize) -> Result<RunModel> {
    open_run_with(run, threads, None)
}

/// [`open_run`], its generation build holding the linear layers' weights
/// in `weights` instead of what the run's spec says (`--weights`).
pub fn open_run_with(
    run: &Path,
    threads: usize,
    weights: Option<WeightFormat>,
) -> Result<RunModel> {
    open_run_spec(run, run_spec(run)?, threads, weights)
}

/// [`open_run_with`] with the run's spec already read ([`run_spec`]).
pub fn open_run_spec(
    run: &Path,
    mut spec: Spec,
    threads: usize,
    weights: Option<WeightFormat>,
) -> Result<RunModel> {
    let dir = RunDir::new(run);
    if let Some(w) = weights {
        spec.build.weights = w;
    }
    let built = generation_build(&spec, &dir.generation_build())?;
    let mut session = built.session(threads)?;
    let ckpt = resolve_checkpoint(run);
    // A training checkpoint: its optimizer.* tensors are not read.
    session.load_weights_file(&ckpt)?;
    let tokenizer = Tokenizer::load(&dir.data().tokenizer())?;
    let exemplars = Exemplars::load(dir.data().path(), spec.data.exemplars)?;
    Ok(RunModel {
        run: run.to_path_buf(),
        spec,
        built,
        session,
        tokenizer,
        exemplars,
        tokens_drawn: 0,
    })
}

impl RunModel {
    /// Generate from `prompt` (conditioned on its exemplar when the run
    /// was trained so); `on_text` receives each new piece of text as soon
    /// as it is decided (nothing past the first stop string). With
    /// `cfg.candidates` > 1, candidate k is sampled with seed `seed + k·2³²`
    /// (candidate 0 is the single sample's) and the consensus drawing is
    /// kept ([`crate::eval::visual::consensus`]); `on_text` then receives
    /// it whole.
    pub fn generate(
        &mut self,
        prompt: &str,
        cfg: &SamplingConfig,
        max_new: usize,
        mut on_text: impl FnMut(&str),
    ) -> Result<Generated> {
        let prompt = match &self.exemplars {
            Some(ex) => ex.condition(prompt),
            None => prompt.to_string(),
        };
        let (session, tok) = (&mut self.session, &self.tokenizer);
        if cfg.candidates <= 1 {
            let g = generate_with(session, tok, &prompt, cfg, max_new, on_text)?;
            self.tokens_drawn += g.tokens.len();
            return Ok(g);
        }
        let mut drawn = vec![];
        for k in 0..cfg.candidates as u64 {
            let c = SamplingConfig {
                seed: cfg.seed.wrapping_add(k << 32),
                ..cfg.clone()
            };
            drawn.push(generate_with(session, tok, &prompt, &c, max_new, |_| {})?);
        }
        self.tokens_drawn += drawn.iter().map(|g| g.tokens.len()).sum::<usize>();
        let texts: Vec<&str> = drawn.iter().map(|g| g.text.as_str()).collect();
        let pick = drawn.swap_remove(crate::eval::visual::consensus(&texts));
        on_text(&pick.text);
        Ok(pick)
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

/// The spec a run was trained with (`RUN/build/spec.toml`).
pub fn run_spec(run: &Path) -> Result<Spec> {
    let spec_path = RunDir::new(run).spec();
    if !spec_path.exists() {
        return Err(Error::new(format!(
            "{}: not a run directory (no build/spec.toml); give the folder `irc train` wrote",
            run.display()
        )));
    }
    Spec::load(&spec_path)
}

/// Held-out rows of a run (`RUN/data/val.jsonl`), prompts first.
pub fn held_out(run: &Path) -> Result<Vec<Row>> {
    let mut rows = read_rows(&RunDir::new(run).data().val_rows())?;
    rows.sort_by_key(|r| r.prompt.is_none());
    Ok(rows)
}

/// The training icons of a run (`RUN/data/train.jsonl`, rows with a
/// prompt), rendered once for the visual metric; `None` when the file is
/// missing or unreadable.
pub fn training_icons(run: &Path) -> Option<crate::eval::Training> {
    let rows = read_rows(&RunDir::new(run).data().train_rows()).ok()?;
    Some(crate::eval::Training::new(rows.iter().filter_map(|r| {
        r.prompt.as_deref().map(|p| (p, r.text.as_str()))
    })))
}

/// Print to stdout as text arrives.
pub fn print_stream(piece: &str) {
    print!("{piece}");
    let _ = std::io::stdout().flush();
}
