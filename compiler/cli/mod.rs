//! The `irc` command line.

mod bench;
mod commands;
mod data;
mod html;
mod tokenizer;

use crate::error::{Error, Result};
use crate::model::{self, Built};
use crate::parity::{forward_rows, interpret_rows, max_rel_err, LOGITS_TOLERANCE};
use crate::runtime::weights::read_token_file;
use crate::runtime::Weights;
use crate::spec::range::{self, flag};
use crate::spec::{Spec, WeightFormat};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "irc",
    version,
    about = "A model compiler for CPUs: one TOML spec -> graph IR -> SIMD C -> a loaded library"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Stage 1: ingest a corpus, show its stats, make synthetic data, tokenize.
    #[command(subcommand)]
    Data(data::DataCmd),
    /// Stage 2: train a byte-level BPE tokenizer, encode, decode.
    #[command(subcommand)]
    Tokenizer(tokenizer::TokenizerCmd),
    /// Compile a spec: IR, passes, C, and libirc_model.so / .a + irc_model.h.
    Build {
        spec: PathBuf,
        /// Output directory (default: `build/<model name>`).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Compile with AddressSanitizer and UndefinedBehaviorSanitizer, with
        /// poisoned guard gaps between activation buffers (for a C host
        /// built with -fsanitize=address,undefined; irc itself cannot load it).
        #[arg(long)]
        sanitize: bool,
    },
    /// Write a Hugging Face folder transformers loads (config.json,
    /// model.safetensors and, with --tokenizer, tokenizer.json), or with
    /// --gguf a GGUF file llama.cpp loads.
    #[command(group(clap::ArgGroup::new("format").required(true).args(["hf", "gguf"])))]
    Export {
        spec: PathBuf,
        #[arg(long)]
        weights: PathBuf,
        /// Hugging Face layout (GPT2LMHeadModel / LlamaForCausalLM), into the folder -o.
        #[arg(long, requires = "out")]
        hf: bool,
        /// A GGUF v3 file for llama.cpp (architecture gpt2 / llama), with the
        /// vocabulary of --tokenizer.
        #[arg(
            long,
            value_name = "OUT.gguf",
            requires = "tokenizer",
            conflicts_with = "out"
        )]
        gguf: Option<PathBuf>,
        /// GGUF tensor type: f32 | q8_0 (matrices in q8_0; norms, biases and
        /// positions stay f32).
        #[arg(long = "type", default_value = "f32", requires = "gguf")]
        ty: crate::gguf::FileType,
        /// A tokenizer.json: copied into the HF folder, or the GGUF vocabulary.
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// The HF folder.
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Read a Hugging Face folder (config.json + model.safetensors) into a
    /// spec and a weights file irc loads.
    Import {
        dir: PathBuf,
        /// Hugging Face layout; required.
        #[arg(long, required = true)]
        hf: bool,
        /// The spec TOML to write.
        #[arg(long)]
        spec: PathBuf,
        /// The safetensors file to write.
        #[arg(long)]
        weights: PathBuf,
    },
    /// Show what the compiler decided for a build directory.
    Inspect {
        dir: PathBuf,
        /// A self-contained HTML page with the IR drawn as a graph, to stdout.
        #[arg(long)]
        html: bool,
        /// Print the whole IR, one node a line.
        #[arg(long)]
        ir: bool,
        /// Print the IR as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write freshly initialized weights (the family's standard init).
    Init {
        spec: PathBuf,
        #[arg(short, long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1, value_parser = flag(range::any::<u64>))]
        seed: u64,
    },
    /// Loss and every parameter's gradient for one batch, as safetensors.
    Grad {
        spec: PathBuf,
        #[arg(long)]
        weights: PathBuf,
        /// Token ids, one sequence a line.
        #[arg(long)]
        tokens: PathBuf,
        /// Target ids (-100 = ignored), one sequence a line, same shape as tokens.
        #[arg(long)]
        targets: PathBuf,
        #[arg(short, long)]
        out: PathBuf,
        #[arg(long)]
        build_dir: Option<PathBuf>,
        #[arg(long, default_value_t = 0, value_parser = flag(range::threads))]
        threads: usize,
    },
    /// Train the spec's model on its `[data]` with its `[train]` recipe.
    Train {
        spec: PathBuf,
        /// Continue from a checkpoint file, or a run directory (its newest
        /// valid checkpoint: `latest.safetensors` or `checkpoints/`).
        #[arg(long)]
        resume: Option<PathBuf>,
        /// Run directory (default: `[train].out`, else `runs/<name>`).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Stop after this many steps (the schedule still spans the whole run).
        #[arg(long, value_parser = flag(range::at_least_one::<usize>))]
        stop_after: Option<usize>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Every stage from one spec: data, tokenizer, tokens, train, eval,
    /// report; each skipped when its inputs are unchanged; resumes an
    /// interrupted training.
    Run {
        spec: PathBuf,
        /// Run directory (default: `[train].out`, else `runs/<name>`).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// A first look in about two minutes, into `<run>-quick`: training capped
        /// at 120 steps, no generation during training, `[eval].quick_samples`
        /// prompts.
        #[arg(long)]
        quick: bool,
        /// Threads for training and generation (0: the spec's).
        #[arg(long, default_value_t = 0, value_parser = flag(range::threads))]
        threads: usize,
        /// Stop training after this many steps; the next `irc run` resumes.
        #[arg(long, value_parser = flag(range::at_least_one::<usize>))]
        stop_after: Option<usize>,
        /// KNOB=VALUE: the spec with this knob changed, as one variant of
        /// `irc sweep` (what `irc sweep --print-commands` prints); repeatable.
        #[arg(long = "set")]
        set: Vec<String>,
    },
    /// Generate from a trained run (its latest checkpoint), streaming the text.
    Generate {
        run: PathBuf,
        #[arg(long, default_value = "")]
        prompt: String,
        #[command(flatten)]
        sampling: SamplingArgs,
        /// How many samples.
        #[arg(short, long, default_value_t = 1, value_parser = flag(range::at_least_one::<usize>))]
        n: usize,
        #[arg(long, default_value_t = 0, value_parser = flag(range::threads))]
        threads: usize,
        /// The linear layers' weights for generation: f32, q8_0 or bf16
        /// (default: the spec's `[build].weights`).
        #[arg(long, value_parser = WeightFormat::from_name)]
        weights: Option<WeightFormat>,
    },
    /// Validation loss and generations for held-out prompts: RUN/eval.json.
    Eval {
        run: PathBuf,
        /// Held-out prompts to generate for (default: the run's `[eval]` samples).
        #[arg(short, long, value_parser = flag(range::at_least_one::<usize>))]
        n: Option<usize>,
        #[command(flatten)]
        sampling: SamplingArgs,
        #[arg(long, default_value_t = 0, value_parser = flag(range::threads))]
        threads: usize,
        /// The linear layers' weights for generation: f32, q8_0 or bf16
        /// (default: the spec's `[build].weights`).
        #[arg(long, value_parser = WeightFormat::from_name)]
        weights: Option<WeightFormat>,
    },
    /// A self-contained HTML report of a run: curves, eval table, gallery.
    Report {
        run: PathBuf,
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// A controlled recipe sweep: the spec, then the spec with one knob
    /// changed at a time, each an `irc run` into its own folder; one table
    /// of val/train loss, valid SVG, success and time.
    Sweep {
        spec: PathBuf,
        /// KNOB=V1,V2,... (a dotted key like train.lr or generate.top_k, or
        /// `vocab`); repeat for more knobs, each varied alone.
        #[arg(long = "set", required = true)]
        set: Vec<String>,
        /// Sweep folder (default: `runs/<name>-sweep`), a run folder per variant.
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Every variant as `irc run --quick`.
        #[arg(long)]
        quick: bool,
        /// Training threads (default: the spec's; with --jobs, the cores
        /// shared among the jobs).
        #[arg(long, default_value_t = 0, value_parser = flag(range::threads))]
        threads: usize,
        /// Run the variants as this many `irc run` processes at a time,
        /// each one's output in `OUT/logs/<variant>.log`.
        #[arg(long, default_value_t = 1, value_parser = flag(range::at_least_one::<usize>))]
        jobs: usize,
        /// Print one `irc run` command line per variant (for a cluster
        /// scheduler) and run nothing.
        #[arg(long, conflicts_with_all = ["collect", "jobs"])]
        print_commands: bool,
        /// Make the table from the variants' run folders, running nothing
        /// (after their commands ran elsewhere).
        #[arg(long, conflicts_with = "jobs")]
        collect: bool,
    },
    /// The refinement checklist for a trained run: each symptom, its status
    /// and evidence, and the pipeline stage it points to.
    Doctor {
        run: PathBuf,
        /// Threads of the compiled model (default: one per core).
        #[arg(long, default_value_t = 0, value_parser = flag(range::threads))]
        threads: usize,
        /// Also profile the decode step kernel by kernel.
        #[arg(long)]
        profile: bool,
    },
    /// Time every kernel of the compiled programs (forward, training step,
    /// prefill, decode) on made-up tokens, against the measured FMA peak.
    Profile {
        spec: PathBuf,
        /// Programs to run: forward, train, prefill, decode (default: all).
        #[arg(long, value_delimiter = ',')]
        program: Vec<String>,
        /// Weights to load (default: the family's init, seed 1).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Threads (default: the spec's).
        #[arg(long, default_value_t = 0, value_parser = flag(range::threads))]
        threads: usize,
        /// Measured runs of each program, after one warm-up run.
        #[arg(long, default_value_t = 5, value_parser = flag(range::at_least_one::<usize>))]
        iters: usize,
        /// Kernels listed per program, slowest first.
        #[arg(long, default_value_t = 12, value_parser = flag(range::at_least_one::<usize>))]
        top: usize,
        /// Build directory (default: `build/<model name>-profile`).
        #[arg(long)]
        build_dir: Option<PathBuf>,
        /// Print the profile as JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Measure the FMA peak, sgemm at the models' GEMM shapes, the training
    /// step, forward and decode, beside numpy and PyTorch when importable.
    Bench(bench::BenchArgs),
    /// Run the compiled forward pass and write logits (B, T, V) as safetensors.
    Forward {
        spec: PathBuf,
        #[arg(long)]
        weights: PathBuf,
        /// Token ids, one sequence a line (spaces or commas between ids).
        #[arg(long)]
        tokens: PathBuf,
        #[arg(short, long)]
        out: PathBuf,
        /// Build directory (default: `build/<model name>`).
        #[arg(long)]
        build_dir: Option<PathBuf>,
        /// Threads (default: the spec's).
        #[arg(long, default_value_t = 0, value_parser = flag(range::threads))]
        threads: usize,
        /// Also run the reference interpreter (f64) and report the largest
        /// relative difference; fail if it exceeds 1e-4.
        #[arg(long)]
        check: bool,
    },
}

/// Sampling flags of `irc generate` and `irc eval`; each one left out is
/// the run's own `[generate]` setting (its spec as trained).
#[derive(clap::Args, Clone)]
pub struct SamplingArgs {
    /// 0 = greedy (default: the run's `[generate]` temperature).
    #[arg(long, value_parser = flag(range::non_negative))]
    temperature: Option<f32>,
    /// 0 = no top-k cut.
    #[arg(long, value_parser = flag(range::any::<usize>))]
    top_k: Option<usize>,
    /// Nucleus mass in (0, 1]; 1 = off.
    #[arg(long, value_parser = flag(range::probability))]
    top_p: Option<f32>,
    /// > 0; 1 = off.
    #[arg(long, value_parser = flag(range::positive))]
    repetition_penalty: Option<f32>,
    #[arg(long, value_parser = flag(range::any::<u64>))]
    seed: Option<u64>,
    #[arg(long, value_parser = flag(range::at_least_one::<usize>))]
    max_tokens: Option<usize>,
    /// Samples drawn per prompt; of SVG drawings the one that agrees most
    /// with the others is kept.
    #[arg(long, value_parser = flag(range::at_least_one::<usize>))]
    candidates: Option<usize>,
}

impl SamplingArgs {
    /// The run's `[generate]` with the flags given put over it.
    fn over(&self, run: &crate::spec::GenerateConfig) -> crate::spec::GenerateConfig {
        crate::spec::GenerateConfig {
            temperature: self.temperature.unwrap_or(run.temperature),
            top_k: self.top_k.unwrap_or(run.top_k),
            top_p: self.top_p.unwrap_or(run.top_p),
            repetition_penalty: self.repetition_penalty.unwrap_or(run.repetition_penalty),
            seed: self.seed.unwrap_or(run.seed),
            max_tokens: self.max_tokens.unwrap_or(run.max_tokens),
            candidates: self.candidates.unwrap_or(run.candidates),
        }
    }
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Data(c) => data::run(c),
        Cmd::Tokenizer(c) => tokenizer::run(c),
        Cmd::Build {
            spec,
            out,
            sanitize,
        } => commands::build(spec, out, sanitize),
        Cmd::Inspect {
            dir,
            html,
            ir,
            json,
        } => commands::inspect(dir, html, ir, json),
        Cmd::Grad {
            spec,
            weights,
            tokens,
            targets,
            out,
            build_dir,
            threads,
        } => commands::grad(spec, weights, tokens, targets, out, build_dir, threads),
        Cmd::Train {
            spec,
            resume,
            out,
            stop_after,
            quiet,
        } => commands::train(spec, resume, out, stop_after, quiet),
        Cmd::Run {
            spec,
            out,
            quick,
            threads,
            stop_after,
            set,
        } => commands::run(spec, out, quick, threads, stop_after, set),
        Cmd::Generate {
            run,
            prompt,
            sampling,
            n,
            threads,
            weights,
        } => commands::generate(run, prompt, sampling, n, threads, weights),
        Cmd::Eval {
            run,
            n,
            sampling,
            threads,
            weights,
        } => commands::eval(run, n, sampling, threads, weights),
        Cmd::Report { run, out } => commands::report(run, out),
        Cmd::Export {
            spec,
            weights,
            hf: _,
            gguf,
            ty,
            tokenizer,
            out,
        } => match (gguf, out) {
            (Some(gguf), _) => commands::export_gguf(spec, weights, tokenizer, gguf, ty),
            (None, Some(out)) => commands::export(spec, weights, tokenizer, out),
            (None, None) => unreachable!("clap requires -o with --hf"),
        },
        Cmd::Import {
            dir,
            hf: _,
            spec,
            weights,
        } => commands::import(dir, spec, weights),
        Cmd::Init { spec, out, seed } => commands::init(spec, out, seed),
        Cmd::Sweep {
            spec,
            set,
            out,
            quick,
            threads,
            jobs,
            print_commands,
            collect,
        } => commands::sweep(
            spec,
            set,
            out,
            quick,
            threads,
            commands::SweepMode::of(jobs, print_commands, collect),
        ),
        Cmd::Doctor {
            run,
            threads,
            profile,
        } => commands::doctor(run, threads, profile),
        Cmd::Profile {
            spec,
            program,
            weights,
            threads,
            iters,
            top,
            build_dir,
            json,
        } => commands::profile(spec, program, weights, threads, iters, top, build_dir, json),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Forward {
            spec,
            weights,
            tokens,
            out,
            build_dir,
            threads,
            check,
        } => commands::forward(spec, weights, tokens, out, build_dir, threads, check),
    }
}

/// Build the spec (into `build_dir`, else `build/<name>`) and read weights
/// that fit it, naming the weights file in any error.
fn build_with_weights(
    spec: &Spec,
    build_dir: Option<PathBuf>,
    weights: &std::path::Path,
) -> Result<(Built, Weights)> {
    let dir = build_dir.unwrap_or_else(|| model::default_dir(spec));
    let b = model::build(spec, &dir)?;
    let w = Weights::load_for(weights, &b.load()?.param_table)?;
    Ok((b, w))
}

fn logits_of(w: &Weights) -> Vec<f32> {
    w.get("logits").map(|t| t.data.clone()).unwrap_or_default()
}

fn inspect_text(info: &serde_json::Value, full_ir: bool) -> String {
    let mut s = String::new();
    let m = &info["model"];
    s.push_str(&format!(
        "model {} ({}): {} layers, d_model {}, {} heads ({} kv), ffn {}, vocab {}, context {}\n",
        m["name"].as_str().unwrap_or(""),
        m["family"].as_str().unwrap_or(""),
        m["layers"],
        m["d_model"],
        m["heads"],
        m["kv_heads"],
        m["ffn_hidden"],
        m["vocab_size"],
        m["context"]
    ));
    s.push_str(&format!(
        "program: batch {} x seq {}, target {}\n\nops:",
        info["program"]["batch"],
        info["program"]["seq"],
        info["target"].as_str().unwrap_or("")
    ));
    if let Some(ops) = info["ops"].as_object() {
        for (k, v) in ops {
            s.push_str(&format!(" {k} {v},"));
        }
    }
    s.pop();
    let text = |k: &str| info["text"][k].as_str().unwrap_or("").to_string();
    s.push_str("\n\n== kernels (fusion groups, in execution order)\n");
    s.push_str(&text("fusion"));
    s.push_str("\n== schedule\n");
    s.push_str(&text("schedule"));
    s.push_str("\n== memory plan\n");
    s.push_str(&text("memory"));
    s.push_str("\n== parameters\n");
    if let Some(ps) = info["memory"]["params"].as_array() {
        for p in ps {
            s.push_str(&format!(
                "{:>10} {:>10}  {:<48} {}\n",
                p["offset"],
                p["size"],
                p["name"].as_str().unwrap_or(""),
                p["shape"]
            ));
        }
    }
    let train = &info["train"];
    if let Some(saved) = train["saved_for_backward"].as_array() {
        let kernels = train["kernels"].as_array().map_or(0, Vec::len);
        s.push_str(&format!(
            "\n== training step: {kernels} kernels, activations peak {} floats\n",
            train["memory"]["act_floats"]
        ));
        let recomputed = train["recomputed"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        let list = |s: &mut String, vs: &[serde_json::Value]| {
            for v in vs {
                s.push_str(&format!(
                    "  %{:<5} {:<24} {}\n",
                    v["id"],
                    v["name"].as_str().unwrap_or(""),
                    v["type"].as_str().unwrap_or("")
                ));
            }
        };
        s.push_str(&format!(
            "kept from the forward for the backward ({} tensors):\n",
            saved.len()
        ));
        list(&mut s, saved);
        s.push_str(&format!(
            "recomputed in the backward ([build] recompute; {} tensors):\n",
            recomputed.len()
        ));
        list(&mut s, recomputed);
        s.push_str("\n== training step kernels\n");
        s.push_str(train["text"]["fusion"].as_str().unwrap_or(""));
    }
    let gen = &info["generation"];
    if let Some(cache) = gen["cache_floats"].as_u64() {
        let decode = &gen["decode"];
        s.push_str(&format!(
            "\n== generation: prefill {} tokens a step ({} kernels), decode 1 ({} kernels, activations peak {} floats); key/value cache {cache} floats ({:.2} MiB)\n",
            gen["prefill_tokens"],
            gen["prefill_kernels"],
            decode["kernels"].as_array().map_or(0, Vec::len),
            decode["memory"]["act_floats"],
            cache as f64 * 4.0 / (1 << 20) as f64
        ));
        s.push_str(decode["text"]["fusion"].as_str().unwrap_or(""));
    }
    if full_ir {
        s.push_str("\n== IR\n");
        s.push_str(&text("ir"));
        s.push_str("\n== training step IR\n");
        s.push_str(train["text"]["ir"].as_str().unwrap_or(""));
        s.push_str("\n== decode step IR\n");
        s.push_str(gen["decode"]["text"]["ir"].as_str().unwrap_or(""));
    }
    s
}

/// Entry point of the binary: errors print as one message and exit 1 (a
/// bad command line, as clap's usage errors, exits 2).
pub fn main_with(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let cli = match parse(args) {
        Ok(c) => c,
        Err(e) => {
            print_usage_error(&e);
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    // Under mpirun, how a rank's command ends decides whether the job
    // aborts (see crate::dist::finish); otherwise an error exits 1.
    crate::dist::finish(&run(cli))
}

/// The command line, typed. A negative number after a flag is that flag's
/// value (refused by its range check, in the spec's words), not an unknown
/// flag `-1`.
pub fn parse(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> std::result::Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let mut m = negative_numbers(Cli::command()).try_get_matches_from(args)?;
    Cli::from_arg_matches_mut(&mut m)
}

fn negative_numbers(c: clap::Command) -> clap::Command {
    // Only for arguments that take a value: clap forbids it on switches.
    c.mut_args(|a| {
        if a.get_action().takes_values() {
            a.allow_negative_numbers(true)
        } else {
            a
        }
    })
    .mut_subcommands(negative_numbers)
}

/// A value its parser refused prints as `--flag: message` (the message of
/// [`crate::spec::range`], as the spec gives it after `[section].field: `);
/// any other usage error as clap words it.
fn print_usage_error(e: &clap::Error) {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::ValueValidation {
        let arg = match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(a)) => a.split(' ').next().unwrap_or(a),
            _ => "",
        };
        if let Some(why) = std::error::Error::source(e) {
            eprintln!("error: {arg}: {why}");
            return;
        }
    }
    let _ = e.print();
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::negative_numbers(super::Cli::command()).debug_assert();
    }
}
