//! Where everything of a run lives. A run directory (written by `irc train`
//! and `irc run`, read by `irc generate`, `eval`, `report` and `doctor`)
//! holds:
//!
//! | path | written by |
//! |---|---|
//! | `data/` (a data folder, see [`DataDir`]) | the data, tokenizer and tokens stages |
//! | `build/` (with `build/spec.toml`), `build-gen/`, `build-profile/` | the training, generation and profiling builds |
//! | `latest.safetensors`, `checkpoints/` | training |
//! | `metrics.jsonl`, `data.json` | training |
//! | `eval.json`, `samples.json` | eval |
//! | `report.html` | report |
//! | `train.meta.json`, `eval.meta.json`, `report.meta.json` | `irc run`'s stage keys |
//!
//! Every path of a run is spelled here once; other modules ask a [`RunDir`].

use std::path::{Path, PathBuf};

/// The files of a data folder (`irc data ingest`'s output, `RUN/data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir(PathBuf);

impl DataDir {
    /// Training rows.
    pub const TRAIN_ROWS: &'static str = "train.jsonl";
    /// Held-out rows.
    pub const VAL_ROWS: &'static str = "val.jsonl";
    /// Rows the gates rejected, with the reason.
    pub const REJECTED_ROWS: &'static str = "rejected.jsonl";
    /// The ingest's options, sources, counts and file hashes.
    pub const MANIFEST: &'static str = "manifest.json";
    /// The trained (or copied) tokenizer.
    pub const TOKENIZER: &'static str = "tokenizer.json";
    /// The tokenizer stage's key.
    pub const TOKENIZER_META: &'static str = "tokenizer.meta.json";
    /// Token files of the training and held-out rows.
    pub const TRAIN_TOKENS: &'static str = "train.tok";
    /// See [`DataDir::TRAIN_TOKENS`].
    pub const VAL_TOKENS: &'static str = "val.tok";
    /// The tokens stage's key.
    pub const TOKENS_META: &'static str = "tokens.meta.json";

    /// The data folder at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DataDir(dir.into())
    }

    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `name` inside the folder (one of the constants above).
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn train_rows(&self) -> PathBuf {
        self.file(Self::TRAIN_ROWS)
    }

    pub fn val_rows(&self) -> PathBuf {
        self.file(Self::VAL_ROWS)
    }

    pub fn rejected_rows(&self) -> PathBuf {
        self.file(Self::REJECTED_ROWS)
    }

    pub fn manifest(&self) -> PathBuf {
        self.file(Self::MANIFEST)
    }

    pub fn tokenizer(&self) -> PathBuf {
        self.file(Self::TOKENIZER)
    }

    pub fn tokenizer_meta(&self) -> PathBuf {
        self.file(Self::TOKENIZER_META)
    }

    pub fn train_tokens(&self) -> PathBuf {
        self.file(Self::TRAIN_TOKENS)
    }

    pub fn val_tokens(&self) -> PathBuf {
        self.file(Self::VAL_TOKENS)
    }

    pub fn tokens_meta(&self) -> PathBuf {
        self.file(Self::TOKENS_META)
    }
}

/// A run directory and every path in it (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir(PathBuf);

impl RunDir {
    /// The training metrics, one JSON object a line.
    pub const METRICS: &'static str = "metrics.jsonl";
    /// The evaluation's scores.
    pub const EVAL: &'static str = "eval.json";
    /// The evaluation's generations, for the report's gallery.
    pub const SAMPLES: &'static str = "samples.json";
    /// The training windows' summary (rows kept, dropped, lengths).
    pub const DATA_SUMMARY: &'static str = "data.json";

    /// The run directory at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RunDir(dir.into())
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `RUN/data`: the prepared data folder.
    pub fn data(&self) -> DataDir {
        DataDir::new(self.0.join("data"))
    }

    /// `RUN/build`: the training build.
    pub fn build(&self) -> PathBuf {
        self.0.join("build")
    }

    /// `RUN/build/spec.toml`: the spec the run was trained with.
    pub fn spec(&self) -> PathBuf {
        self.build().join("spec.toml")
    }

    /// `RUN/build-gen`: the batch-1 build generation runs on.
    pub fn generation_build(&self) -> PathBuf {
        self.0.join("build-gen")
    }

    /// `RUN/build-profile`: the timed build of `irc doctor --profile`.
    pub fn profile_build(&self) -> PathBuf {
        self.0.join("build-profile")
    }

    /// `RUN/latest.safetensors`: the last checkpoint.
    pub fn latest(&self) -> PathBuf {
        self.0.join("latest.safetensors")
    }

    /// The temporary copy `latest.safetensors` is renamed from.
    pub fn latest_tmp(&self) -> PathBuf {
        self.0.join(".latest.tmp")
    }

    /// `RUN/checkpoints`: one checkpoint per saved step.
    pub fn checkpoints(&self) -> PathBuf {
        self.0.join("checkpoints")
    }

    /// The checkpoint of `step` in [`RunDir::checkpoints`].
    pub fn checkpoint_at(&self, step: usize) -> PathBuf {
        self.checkpoints()
            .join(format!("step-{step:06}.safetensors"))
    }

    pub fn metrics(&self) -> PathBuf {
        self.0.join(Self::METRICS)
    }

    pub fn eval(&self) -> PathBuf {
        self.0.join(Self::EVAL)
    }

    pub fn samples(&self) -> PathBuf {
        self.0.join(Self::SAMPLES)
    }

    pub fn data_summary(&self) -> PathBuf {
        self.0.join(Self::DATA_SUMMARY)
    }

    /// `RUN/report.html`: the default place of the report.
    pub fn report(&self) -> PathBuf {
        self.0.join("report.html")
    }

    /// `irc run`'s record of the training stage's key and progress.
    pub fn train_meta(&self) -> PathBuf {
        self.0.join("train.meta.json")
    }

    /// `irc run`'s record of the eval stage's key.
    pub fn eval_meta(&self) -> PathBuf {
        self.0.join("eval.meta.json")
    }

    /// `irc run`'s record of the report stage's key.
    pub fn report_meta(&self) -> PathBuf {
        self.0.join("report.meta.json")
    }

    /// `name` in the run directory (for keys that list files by name).
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

/// `run` is a folder `irc train` or `irc run` wrote (it holds the spec it
/// was built from, `build/spec.toml`): what the report and the doctor read.
pub fn check_run(run: &Path) -> crate::Result<()> {
    if crate::util::user_path(run)? != crate::util::PathKind::Folder {
        crate::bail!("{}: a file; expected a run folder", run.display());
    }
    if !RunDir::new(run).spec().exists() {
        crate::bail!(
            "{}: not a run directory (no build/spec.toml); give the folder `irc train` or `irc run` wrote",
            run.display()
        );
    }
    Ok(())
}

/// `latest.safetensors` in a run directory, or the file itself (with or
/// without its `.safetensors` extension).
pub fn resolve_checkpoint(p: &Path) -> PathBuf {
    if p.is_dir() {
        return RunDir::new(p).latest();
    }
    if !p.exists() && p.with_extension("safetensors").exists() {
        return p.with_extension("safetensors");
    }
    p.to_path_buf()
}
