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

/// Run the baseline and every one-knob variant into `out/<variant>`.
pub fn sweep(spec: &Spec, knobs: &[Knob], out: &Path, opts: &RunOptions) -> Result<Vec<Row>> {
    let plan = plan(spec, knobs)?;
    let mut rows = vec![];
    for (name, s) in plan {
        let dir = out.join(name.replace(['/', ' '], "_"));
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
        let e = summary.eval.as_ref();
        rows.push(Row {
            variant: name,
            run_dir: summary.run_dir.clone(),
            val_loss: e.and_then(|e| e.val_loss),
            train_loss: e.and_then(|e| e.train_loss),
            valid_svg: e.and_then(|e| e.valid_svg.rate),
            prompt_success: e.and_then(|e| e.prompt_success.rate),
            visual: e.and_then(|e| e.visual.as_ref()?.score_mean),
            visual_baseline: e.and_then(|e| e.visual.as_ref()?.baseline_mean),
            seconds: t.elapsed().as_secs_f64(),
        });
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
