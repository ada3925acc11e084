//! `irc data ...` subcommands.

use crate::data::ingest::{self, Manifest, Rejected};
use crate::data::{AsciiPolicy, DataConfig, Format};
use crate::error::{At, Result};
use crate::spec::range::{self, flag};
use crate::tokenizer::Tokenizer;
use std::path::{Path, PathBuf};

/// `irc data` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DataCmd {
    /// Read SVG files, text or JSONL rows; gate, dedup, split; write a data folder.
    Ingest {
        /// Files or folders (searched recursively).
        #[arg(required = true)]
        sources: Vec<PathBuf>,
        /// auto | svg | text | jsonl
        #[arg(long, default_value = "auto")]
        format: Format,
        /// Output folder.
        #[arg(short, long)]
        out: PathBuf,
        /// Non-ASCII rows: reject | transliterate
        #[arg(long, default_value = "reject")]
        ascii: AsciiPolicy,
        /// Longest sample kept (bytes of prompt + text).
        #[arg(long, default_value_t = DataConfig::default().max_len, value_parser = flag(range::at_least_one::<usize>))]
        max_len: usize,
        /// Near-duplicate MinHash threshold (1.0 = off).
        #[arg(long, default_value_t = DataConfig::default().near_threshold, value_parser = flag(range::similarity))]
        near: f64,
        /// Validation fraction.
        #[arg(long, default_value_t = DataConfig::default().val_ratio, value_parser = flag(range::fraction))]
        val_ratio: f64,
        /// Split seed.
        #[arg(long, default_value_t = DataConfig::default().seed, value_parser = flag(range::any::<u64>))]
        seed: u64,
        /// Text: one sample per file instead of per line.
        #[arg(long)]
        whole_files: bool,
        /// SVG: prompt tags from the file name (`arrow-left.svg` → `[arrow][left]`).
        #[arg(long)]
        prompt_from_name: bool,
        /// Mix this many synthetic scene rows (seeded with --seed) in with the sources.
        #[arg(long, default_value_t = 0, value_parser = flag(range::rows))]
        synthetic: usize,
        /// SVG rows: canonical (numbers and path data one way, same pixels) | whitespace.
        #[arg(long, default_value = "canonical")]
        svg: crate::data::SvgForm,
    },
    /// Print counts, sizes, rejected rows and why, duplicates removed.
    Stats {
        /// A data folder written by `irc data ingest`.
        dir: PathBuf,
        /// Also list this many rejected rows.
        #[arg(long, default_value_t = 10, value_parser = flag(range::any::<usize>))]
        show: usize,
    },
    /// Generate the synthetic prompt → SVG scene set as JSONL (`DIR/synth.jsonl`).
    Synth {
        /// Output folder.
        #[arg(short, long)]
        out: PathBuf,
        /// Rows.
        #[arg(long, default_value_t = 2000, value_parser = flag(range::some_rows))]
        count: usize,
        /// Seed.
        #[arg(long, default_value_t = 1234, value_parser = flag(range::any::<u64>))]
        seed: u64,
    },
    /// Tokenize a data folder into `train.tok` / `val.tok`.
    Prep {
        /// A data folder.
        dir: PathBuf,
        /// tokenizer.json to use.
        #[arg(long)]
        tokenizer: PathBuf,
        /// Condition each prompt on the training row it retrieves by tags
        /// (as `[data] exemplars = true`).
        #[arg(long)]
        exemplars: bool,
    },
}

fn kb(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{:.2} MB", n as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KB", n as f64 / 1024.0)
    }
}

/// Run an `irc data` subcommand.
pub fn run(cmd: DataCmd) -> Result<()> {
    match cmd {
        DataCmd::Ingest {
            sources,
            format,
            out,
            ascii,
            max_len,
            near,
            val_ratio,
            seed,
            whole_files,
            prompt_from_name,
            synthetic,
            svg,
        } => {
            let cfg = DataConfig {
                source: sources,
                format,
                ascii,
                max_len,
                near_threshold: near,
                val_ratio,
                seed,
                whole_files,
                prompt_from_name,
                synthetic,
                svg,
                ..DataConfig::default()
            };
            let m = ingest::ingest(&cfg, &out)?;
            println!(
                "{}: {} read, {} kept ({} train, {} val), {} rejected",
                out.display(),
                m.read,
                m.kept,
                m.train,
                m.val,
                m.rejected.values().sum::<usize>()
            );
            Ok(())
        }
        DataCmd::Stats { dir, show } => stats(&dir, show),
        DataCmd::Synth { out, count, seed } => {
            let rows = crate::data::synth::generate(count, seed);
            let p = out.join("synth.jsonl");
            crate::util::atomic_write(&p, crate::data::rows_to_jsonl(&rows).as_bytes())?;
            println!("{}: {} rows", p.display(), rows.len());
            Ok(())
        }
        DataCmd::Prep {
            dir,
            tokenizer,
            exemplars,
        } => {
            let tok = Tokenizer::load(&tokenizer)?;
            let ex = crate::data::retrieval::Exemplars::load(&dir, exemplars)?;
            for s in ["train", "val"] {
                let set = crate::data::prep::tokenize_split(&dir, s, &tok, ex.as_ref())?;
                let p = dir.join(format!("{s}.tok"));
                set.save(&p)?;
                println!(
                    "{}: {} rows, {} tokens",
                    p.display(),
                    set.rows.len(),
                    set.len()
                );
            }
            Ok(())
        }
    }
}

/// `irc data stats`: the manifest's counts, the sample lengths, and the
/// first `show` rejected rows.
fn stats(dir: &Path, show: usize) -> Result<()> {
    let m = Manifest::load(dir)?;
    let lens = sample_lengths(dir)?;
    let q = |f: f64| {
        lens.get(((lens.len().max(1) - 1) as f64 * f) as usize)
            .copied()
            .unwrap_or(0)
    };
    println!("data folder     {}", dir.display());
    println!(
        "format          {:?}  ascii {:?}  max_len {}  near {}",
        m.options.format, m.options.ascii, m.options.max_len, m.options.near_threshold
    );
    println!("sources         {} files", m.sources.len());
    println!("{:<16}{:>10}", "rows read", m.read);
    println!("{:<16}{:>10}", "kept", m.kept);
    println!("{:<16}{:>10}  {}", "  train", m.train, kb(m.train_bytes));
    println!("{:<16}{:>10}  {}", "  val", m.val, kb(m.val_bytes));
    println!("{:<16}{:>10}", "  with prompt", m.prompted);
    for (name, c) in &m.families {
        println!(
            "  {name:<14}{:>10}  {} train, {} val ({} distinct val prompts)",
            c.kept, c.train, c.val, c.val_prompts
        );
    }
    println!("{:<16}{:>10}", "transliterated", m.transliterated);
    println!("{:<16}{:>10}", "svg normalized", m.normalized);
    println!(
        "{:<16}{:>10}  ({} kept as written: pixels would change)",
        "svg canonical", m.canonical, m.canonical_kept
    );
    println!("rejected        {:>10}", m.rejected.values().sum::<usize>());
    for (k, v) in &m.rejected {
        println!("  {k:<14}{v:>10}");
    }
    println!(
        "sample bytes    min {}  median {}  p90 {}  max {}",
        q(0.0),
        q(0.5),
        q(0.9),
        q(1.0)
    );
    let rp = crate::rundir::DataDir::new(dir).rejected_rows();
    if show > 0 && rp.exists() {
        let t = std::fs::read_to_string(&rp).at(rp.display())?;
        for (i, line) in t.lines().take(show).enumerate() {
            let r: Rejected =
                serde_json::from_str(line).at(format!("{}:{}", rp.display(), i + 1))?;
            println!("  {:<15} {}  {}", r.reason, r.origin, r.detail);
        }
    }
    Ok(())
}

/// The byte lengths (prompt + text) of the folder's train and val rows, sorted.
fn sample_lengths(dir: &Path) -> Result<Vec<usize>> {
    let mut lens: Vec<usize> = Vec::new();
    for s in ["train", "val"] {
        for r in crate::data::read_rows(&dir.join(format!("{s}.jsonl")))? {
            lens.push(r.sample().len());
        }
    }
    lens.sort_unstable();
    Ok(lens)
}
