//! `irc sweep SPEC --set KNOB=V1,V2 ...`: the controlled recipe sweep. Each
//! variant is the spec with exactly one knob changed (never a grid), run by
//! [`crate::run`] into its own run directory, so a rerun of the sweep skips
//! every variant that is up to date and a variant's stages are cached like
//! any run's. Ends with one table: val loss beside train loss, valid SVG and
//! prompt→SVG success, and the time of each variant, and `sweep.json`.
//!
//! A knob is a dotted key of the spec (`train.lr`, `generate.temperature`,
//! `build.seq_len`, ...) or `vocab`, which sets `[tokenizer].vocab_size` and
//! `[model].vocab_size` together. Values are TOML (`2e-3`, `640`, `"cosine"`;
//! a bare word is a string).
//!
//! Variants are independent runs: `--jobs N` runs them as N `irc run`
//! processes at a time (each into its own folder, its output into
//! `OUT/logs/<variant>.log`), `--print-commands` prints those command lines
//! for a cluster scheduler instead, and `--collect` makes the table from
//! the run folders they filled.

use crate::error::{Error, Result};
use crate::run::{run_spec, RunOptions, RunSummary};
use crate::spec::Spec;
use crate::util::atomic_write;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One knob and the values it takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Knob {
    pub key: String,
    pub values: Vec<toml::Value>,
}

impl Knob {
    /// Parse `key=v1,v2,...`.
    pub fn parse(s: &str) -> Result<Knob> {
        let (key, vals) = s
            .split_once('=')
            .ok_or_else(|| Error::new(format!("--set {s}: expected KNOB=V1,V2,...")))?;
        let key = key.trim().to_string();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(Error::new(format!(
                "--set {s}: expected a knob like train.lr or vocab before `=`"
            )));
        }
        let values = vals
            .split(',')
            .map(|v| value(v.trim()))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| e.context(format!("--set {s}")))?;
        Ok(Knob { key, values })
    }

    /// The spec's tables this knob writes.
    fn paths(&self) -> Vec<Vec<String>> {
        match self.key.as_str() {
            "vocab" => vec![
                vec!["tokenizer".into(), "vocab_size".into()],
                vec!["model".into(), "vocab_size".into()],
            ],
            k => vec![k.split('.').map(String::from).collect()],
        }
    }
}

/// A TOML value from the command line; a bare word is a string.
fn value(v: &str) -> Result<toml::Value> {
    if v.is_empty() {
        return Err(Error::new("an empty value"));
    }
    let doc = format!("x = {v}");
    Ok(match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t.remove("x").unwrap(),
        Err(_) => toml::Value::String(v.to_string()),
    })
}

fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// The spec with `knob` set to `v` (checked like any spec, naming the knob).
pub fn variant(spec: &Spec, knob: &Knob, v: &toml::Value) -> Result<Spec> {
    let mut doc: toml::Table = toml::from_str(&spec.source).map_err(|e| spec.toml_error(&e))?;
    for path in knob.paths() {
        let (last, tables) = path.split_last().unwrap();
        let mut t = &mut doc;
        for name in tables {
            t = t
                .entry(name.clone())
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
                .ok_or_else(|| {
                    Error::new(format!("--set {}: `{name}` is not a table", knob.key))
                })?;
        }
        t.insert(last.clone(), v.clone());
    }
    let src = toml::to_string(&doc).map_err(|e| Error::new(e.to_string()))?;
    Spec::parse_rewritten(&spec.path, &src)
        .map_err(|e| e.context(format!("--set {}={}", knob.key, show(v))))
}

/// The baseline and every variant, each checked as a whole spec and for
/// what its run reads ([`crate::train::check_inputs`]) before any runs, so a
/// bad value late in the list stops the sweep before its first run.
pub fn plan(spec: &Spec, knobs: &[Knob]) -> Result<Vec<(String, Spec)>> {
    crate::train::check_inputs(spec)?;
    let mut plan = vec![("baseline".to_string(), spec.clone())];
    for k in knobs {
        for v in &k.values {
            let name = format!("{}={}", k.key, show(v));
            let s = variant(spec, k, v)?;
            crate::train::check_inputs(&s).map_err(|e| e.context(format!("--set {name}")))?;
            plan.push((name, s));
        }
    }
    Ok(plan)
}

/// One variant's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `baseline` or `knob=value`.
    pub variant: String,
    pub run_dir: PathBuf,
    pub val_loss: Option<f64>,
    pub train_loss: Option<f64>,
    pub valid_svg: Option<f64>,
    pub prompt_success: Option<f64>,
    /// Mean visual score against the references.
    pub visual: Option<f64>,
    /// Mean visual score of the retrieval baseline on the same prompts.
    pub visual_baseline: Option<f64>,
    /// Seconds of this sweep's call (0 when every stage was up to date).
    pub seconds: f64,
}

/// The run folder of a variant in the sweep folder `out`.
fn variant_dir(out: &Path, name: &str) -> PathBuf {
    out.join(name.replace(['/', ' '], "_"))
}

/// A variant's row from what its run wrote (`eval.json`).
fn row(name: String, run_dir: PathBuf, e: Option<&crate::eval::EvalResult>, seconds: f64) -> Row {
    Row {
        variant: name,
        run_dir,
        val_loss: e.and_then(|e| e.val_loss),
        train_loss: e.and_then(|e| e.train_loss),
        valid_svg: e.and_then(|e| e.valid_svg.rate),
        prompt_success: e.and_then(|e| e.prompt_success.rate),
        visual: e.and_then(|e| e.visual.as_ref()?.score_mean),
        visual_baseline: e.and_then(|e| e.visual.as_ref()?.baseline_mean),
        seconds,
    }
}

/// Run the baseline and every one-knob variant into `out/<variant>`.
pub fn sweep(spec: &Spec, knobs: &[Knob], out: &Path, opts: &RunOptions) -> Result<Vec<Row>> {
    let plan = plan(spec, knobs)?;
    let mut rows = vec![];
    for (name, s) in plan {
        let dir = variant_dir(out, &name);
        if !opts.quiet {
            println!("\n== {name}");
        }
        let t = std::time::Instant::now();
        let summary: RunSummary = run_spec(
            s,
            &RunOptions {
                out: Some(dir),
                ..opts.clone()
            },
        )?;
        rows.push(row(
            name,
            summary.run_dir.clone(),
            summary.eval.as_ref(),
            t.elapsed().as_secs_f64(),
        ));
        if !summary.finished {
            break; // --stop-after: the rest waits for the next call
        }
    }
    atomic_write(
        &out.join("sweep.json"),
        serde_json::to_string_pretty(&rows)?.as_bytes(),
    )?;
    Ok(rows)
}

/// One variant as a command line of its own: `irc run SPEC [--set
/// KNOB=VALUE] -o OUT/<variant> [--quick] [--threads T]`, with absolute
/// paths so a scheduler may start it from any folder.
pub fn commands(
    spec: &Spec,
    knobs: &[Knob],
    out: &Path,
    opts: &RunOptions,
) -> Result<Vec<(String, Vec<String>)>> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::new(format!("cannot find the irc executable: {e}")))?;
    let abs = |p: &Path| {
        std::path::absolute(p)
            .map_err(|e| Error::new(format!("{}: {e}", p.display())))
            .map(|p| p.display().to_string())
    };
    let spec_path = abs(&spec.path)?;
    let mut cmds = vec![];
    for (name, _) in plan(spec, knobs)? {
        let mut c = vec![exe.display().to_string(), "run".into(), spec_path.clone()];
        if name != "baseline" {
            c.extend(["--set".to_string(), name.clone()]);
        }
        c.extend(["-o".to_string(), abs(&variant_dir(out, &name))?]);
        if opts.quick {
            c.push("--quick".into());
        }
        if opts.threads > 0 {
            c.extend(["--threads".to_string(), opts.threads.to_string()]);
        }
        cmds.push((name, c));
    }
    Ok(cmds)
}

/// A command line as a POSIX shell reads it back.
pub fn shell_line(args: &[String]) -> String {
    let plain = |a: &str| {
        !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c))
    };
    args.iter()
        .map(|a| match plain(a) {
            true => a.clone(),
            false => format!("'{}'", a.replace('\'', "'\\''")),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The table from the variants' run folders (`--collect`, after their
/// commands ran elsewhere; `quick`: their `--quick` folders): every
/// variant must have finished its eval.
pub fn collect(spec: &Spec, knobs: &[Knob], out: &Path, quick: bool) -> Result<Vec<Row>> {
    let mut rows = vec![];
    for (name, _) in plan(spec, knobs)? {
        let mut dir = variant_dir(out, &name);
        if quick {
            dir = crate::run::quick_dir(&dir);
        }
        let eval = crate::rundir::RunDir::new(&dir).eval();
        if !eval.is_file() {
            return Err(Error::new(format!(
                "{}: no results of variant `{name}` yet (its command from `irc sweep --print-commands` has not finished)",
                eval.display()
            )));
        }
        let e = crate::eval::EvalResult::read_json(&eval)?;
        rows.push(row(name, dir, Some(&e), 0.0));
    }
    atomic_write(
        &out.join("sweep.json"),
        serde_json::to_string_pretty(&rows)?.as_bytes(),
    )?;
    Ok(rows)
}

/// Run the variants as `jobs` independent `irc run` processes at a time,
/// each into its own folder with its output in `OUT/logs/<variant>.log`
/// (a line here as each ends), then the table from their folders. Without
/// `--threads` each gets the machine's cores shared among the jobs.
pub fn sweep_jobs(
    spec: &Spec,
    knobs: &[Knob],
    out: &Path,
    opts: &RunOptions,
    jobs: usize,
) -> Result<Vec<Row>> {
    use std::process::{Command, Stdio};
    let mut opts = opts.clone();
    if opts.threads == 0 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        opts.threads = (cores / jobs).max(1);
    }
    let cmds = commands(spec, knobs, out, &opts)?;
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| Error::new(format!("{}: {e}", logs.display())))?;
    let total = cmds.len();
    let mut queue = cmds.into_iter().collect::<std::collections::VecDeque<_>>();
    let mut running: Vec<(String, PathBuf, std::process::Child, std::time::Instant)> = vec![];
    let mut seconds = std::collections::BTreeMap::new();
    let mut failed = vec![];
    let mut done = 0;
    while !queue.is_empty() || !running.is_empty() {
        while running.len() < jobs {
            let Some((name, c)) = queue.pop_front() else {
                break;
            };
            let log = logs.join(format!("{}.log", name.replace(['/', ' '], "_")));
            let f = std::fs::File::create(&log)
                .map_err(|e| Error::new(format!("{}: {e}", log.display())))?;
            let f2 = f
                .try_clone()
                .map_err(|e| Error::new(format!("{}: {e}", log.display())))?;
            let child = Command::new(&c[0])
                .args(&c[1..])
                .stdin(Stdio::null())
                .stdout(f)
                .stderr(f2)
                .spawn()
                .map_err(|e| Error::new(format!("cannot start {}: {e}", c[0])))?;
            if !opts.quiet {
                println!("start  {name}  ({})", log.display());
            }
            running.push((name, log, child, std::time::Instant::now()));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut i = 0;
        while i < running.len() {
            let status = running[i]
                .2
                .try_wait()
                .map_err(|e| Error::new(format!("variant `{}`: {e}", running[i].0)))?;
            let Some(status) = status else {
                i += 1;
                continue;
            };
            let (name, log, _, started) = running.swap_remove(i);
            let secs = started.elapsed().as_secs_f64();
            done += 1;
            if !opts.quiet {
                let how = if status.success() {
                    "done".to_string()
                } else {
                    format!("FAILED ({status})")
                };
                println!("[{done}/{total}] {name}: {how} in {secs:.1}s");
            }
            if !status.success() {
                failed.push(format!("`{name}` (see {})", log.display()));
            }
            seconds.insert(name, secs);
        }
    }
    if !failed.is_empty() {
        return Err(Error::new(format!(
            "{} of {total} variants failed: {}",
            failed.len(),
            failed.join(", ")
        )));
    }
    let mut rows = collect(spec, knobs, out, opts.quick)?;
    for r in &mut rows {
        r.seconds = seconds.get(&r.variant).copied().unwrap_or(0.0);
    }
    atomic_write(
        &out.join("sweep.json"),
        serde_json::to_string_pretty(&rows)?.as_bytes(),
    )?;
    Ok(rows)
}

/// The sweep's table, best val loss marked.
pub fn table(rows: &[Row]) -> String {
    use std::fmt::Write;
    let best = rows
        .iter()
        .filter_map(|r| r.val_loss)
        .fold(f64::INFINITY, f64::min);
    let num = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.4}"));
    let vis = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.3}"));
    let pct = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * v));
    let w = rows
        .iter()
        .map(|r| r.variant.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<w$}  {:>8}  {:>10}  {:>9}  {:>9}  {:>6}  {:>8}  {:>8}",
        "variant", "val loss", "train loss", "valid SVG", "success", "visual", "baseline", "time"
    );
    for r in rows {
        let _ = writeln!(
            o,
            "{:<w$}  {:>8}  {:>10}  {:>9}  {:>9}  {:>6}  {:>8}  {:>7.1}s{}",
            r.variant,
            num(r.val_loss),
            num(r.train_loss),
            pct(r.valid_svg),
            pct(r.prompt_success),
            vis(r.visual),
            vis(r.visual_baseline),
            r.seconds,
            if r.val_loss == Some(best) {
                "  <- best val loss"
            } else {
                ""
            }
        );
    }
    o
}
