//! `irc bench`: the command line of [`crate::bench`].

use crate::bench::{self, Options, DEFAULT_SPECS};
use crate::error::{Error, Result};
use crate::spec::range::{self, flag};
use crate::spec::{Spec, WeightFormat};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Specs to measure (default: models/bench-s.toml, models/bench-m.toml,
    /// models/svg-small.toml).
    specs: Vec<PathBuf>,
    /// Thread counts, comma-separated; 0 is one per core (default: 1 and
    /// one per core).
    #[arg(long, value_delimiter = ',', value_parser = flag(range::threads))]
    threads: Vec<usize>,
    /// Rounds of interleaved processes; each figure is their median.
    #[arg(long, default_value_t = 5, value_parser = flag(range::at_least_one::<usize>))]
    repeats: usize,
    /// Timed training steps (forwards, decodes) in each process, after one
    /// untimed; the process's figure is their median.
    #[arg(long, default_value_t = 3, value_parser = flag(range::at_least_one::<usize>))]
    steps: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The Python for numpy's and PyTorch's rows (default: $IRC_PYTHON,
    /// else python3).
    #[arg(long)]
    python: Option<PathBuf>,
    /// One measurement in this process (train or infer), for `irc bench`
    /// itself.
    #[arg(long, hide = true, requires_all = ["build_dir", "data"])]
    worker: Option<String>,
    #[arg(long, hide = true)]
    build_dir: Option<PathBuf>,
    #[arg(long, hide = true)]
    data: Option<PathBuf>,
    /// The worker's `[build].weights` instead of the spec's (a packed
    /// build of it).
    #[arg(long, hide = true, value_parser = WeightFormat::from_name)]
    weights: Option<WeightFormat>,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn run(a: BenchArgs) -> Result<()> {
    // 0 is one per core; each count once, in the order given.
    let mut threads = vec![];
    let given = if a.threads.is_empty() {
        vec![1, 0]
    } else {
        a.threads.clone()
    };
    for t in given {
        let t = if t == 0 { cores() } else { t };
        if !threads.contains(&t) {
            threads.push(t);
        }
    }
    if let Some(kind) = &a.worker {
        let [spec] = a.specs.as_slice() else {
            return Err(Error::new("--worker: expected one SPEC"));
        };
        let [t] = threads.as_slice() else {
            return Err(Error::new("--worker: expected one thread count"));
        };
        let mut spec = Spec::load(spec)?;
        if let Some(w) = a.weights {
            spec.build.weights = w;
        }
        let (dir, data) = (a.build_dir.expect("required"), a.data.expect("required"));
        return bench::worker(kind, &spec, &dir, &data, *t, a.steps);
    }
    let specs = if a.specs.is_empty() {
        let d: Vec<PathBuf> = DEFAULT_SPECS.iter().map(PathBuf::from).collect();
        if let Some(p) = d.iter().find(|p| !p.is_file()) {
            return Err(Error::new(format!(
                "{}: not found; with no SPEC irc bench measures the bench models of irc's source folder ({}): run it there or name the specs",
                p.display(),
                DEFAULT_SPECS.join(", ")
            )));
        }
        d
    } else {
        a.specs
    };
    let python = a
        .python
        .or_else(|| {
            std::env::var_os("IRC_PYTHON")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("python3"));
    let exe = std::env::current_exe()
        .map_err(|e| Error::new(format!("cannot find this irc's executable: {e}")))?;
    let opts = Options {
        specs,
        threads,
        repeats: a.repeats,
        steps: a.steps,
        python,
        exe,
    };
    let report = bench::run(&opts, &mut |line| eprintln!("{line}"))?;
    print!("{}", report.table());
    if let Some(path) = a.json {
        let text = serde_json::to_string_pretty(&report)? + "\n";
        crate::util::atomic_write(&path, text.as_bytes())?;
    }
    Ok(())
}
