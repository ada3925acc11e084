//! `irc doctor RUN`: the refinement checklist for a trained run. Each symptom
//! gets a status (look here / ok / no data), the evidence, and the pipeline
//! stage and action it points to.
//!
//! The rules on the run's evidence (`metrics.jsonl`, `eval.json`,
//! `data.json`, the spec's knobs) are in [`checks`], shared with the report;
//! the findings come ordered, and the table starts with the first fix
//! (`first fix: <symptom> → <stage>: <action> (irc sweep SPEC --set …)`).
//! The doctor adds checks that need the run's files and compiled model:
//!
//! - **UTF artifacts → tokenizer**: every validation row survives
//!   encode → decode unchanged.
//! - **numerical drift → kernels / backward**: the compiled forward against
//!   the f64 reference interpreter on a validation row, with the run's
//!   weights (relative error above 1e-4 is drift).
//! - **inference is slow → forward**: the decode step profiled per kernel,
//!   against the measured FMA peak (with `--profile`).

use crate::error::{Error, Result};
use crate::eval::EvalResult;
use crate::model;
pub mod checks;

use crate::metrics::MetricsLog;
use crate::rundir::{resolve_checkpoint, RunDir};
use crate::runtime::Weights;
use crate::spec::Spec;
use crate::tokenizer::Tokenizer;
pub use checks::{Finding, Status};
use std::path::Path;

/// Tokens of the validation row the drift check runs (fewer if the row is).
pub const DRIFT_TOKENS: usize = 64;
/// Largest relative error of the compiled logits that is not drift.
pub const DRIFT_TOLERANCE: f64 = crate::parity::LOGITS_TOLERANCE;

/// What `irc doctor` checks beyond the metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Threads of the compiled model.
    pub threads: usize,
    /// Also profile the decode step kernel by kernel.
    pub profile: bool,
}

/// The checklist for `run`.
pub fn doctor(run: &Path, opts: Options) -> Result<Vec<Finding>> {
    let dir = RunDir::new(run);
    let spec_path = dir.spec();
    crate::rundir::check_run(run)?;
    let metrics = MetricsLog::read_run(&dir.metrics())?;
    if let Some(w) = metrics.warning(&dir.metrics()) {
        eprintln!("warning: {w}");
    }
    let eval = EvalResult::read_if_present(&dir.eval())?;
    let mut findings = checks::for_run(run, &metrics, eval.as_ref());

    // Tokenizer roundtrip, into the UTF finding.
    if let Some(f) = findings.iter_mut().find(|f| f.symptom == checks::UTF) {
        let (bad, n) = roundtrip(run)?;
        let note = format!("encode → decode changes {bad} of {n} validation rows");
        f.evidence = format!("{}; {note}", f.evidence);
        if bad > 0 {
            f.status = Status::Look;
        } else if f.status == Status::NoData {
            f.status = Status::Ok;
        }
    }

    let spec = Spec::load(&spec_path)?;
    let ckpt = resolve_checkpoint(run);
    let weights = Weights::load(&ckpt).map_err(|e| e.context(ckpt.display()))?;
    findings.push(drift(run, &spec, &weights, opts.threads)?);

    if opts.profile {
        let p = crate::profile::profile(
            &spec,
            &dir.profile_build(),
            Some(&weights),
            opts.threads,
            1,
            &["decode"],
        )?;
        if let (Some(f), Some(d)) = (
            findings.iter_mut().find(|f| f.symptom == checks::SLOW),
            p.programs.first(),
        ) {
            let top: Vec<String> = d
                .kernels
                .iter()
                .take(3)
                .map(|k| {
                    format!(
                        "{} {:.0}%",
                        k.node,
                        100.0 * k.seconds / d.kernel_seconds().max(1e-30)
                    )
                })
                .collect();
            f.evidence = format!(
                "{}; decode step {:.3} ms on {} ({} threads), {:.1}% of the FMA peak; slowest: {}",
                f.evidence,
                d.wall * 1e3,
                p.target,
                p.threads,
                100.0 * d.flops() / d.wall.max(1e-30) * 1e-9 / p.peak_gflops.max(1e-30),
                top.join(", ")
            );
        }
    }
    checks::order(&mut findings);
    Ok(findings)
}

/// Validation rows whose text is not reproduced by decode(encode(text)), of
/// how many.
fn roundtrip(run: &Path) -> Result<(usize, usize)> {
    let data = RunDir::new(run).data();
    let tok = Tokenizer::load(&data.tokenizer())?;
    let path = data.val_rows();
    let text = crate::util::read_user_text(&path)?;
    let (mut bad, mut n) = (0, 0);
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let row: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Error::new(format!("{}:{}: {e}", path.display(), i + 1)))?;
        for field in ["prompt", "text"] {
            if let Some(s) = row[field].as_str() {
                n += 1;
                if tok.decode(&tok.encode_str(s)?)? != s.as_bytes() {
                    bad += 1;
                }
            }
        }
    }
    Ok((bad, n))
}

/// The compiled forward of one validation row against the f64 interpreter.
fn drift(run: &Path, spec: &Spec, w: &Weights, threads: usize) -> Result<Finding> {
    let val = crate::data::prep::TokenSet::load(&RunDir::new(run).data().val_tokens())?;
    let len = val.rows.first().map_or(0, |r| r.0 as usize);
    let t = len
        .min(DRIFT_TOKENS)
        .min(spec.build.seq_len)
        .min(spec.model.context);
    let mut finding = Finding {
        symptom: checks::DRIFT.into(),
        stage: "kernels / backward".into(),
        action: "cross-entropy parity, accumulation order; irc forward --check".into(),
        status: Status::NoData,
        evidence: "no validation tokens".into(),
        sweep: None,
    };
    if t == 0 {
        return Ok(finding);
    }
    let tokens: Vec<i32> = val.tokens[..t].iter().map(|&x| x as i32).collect();
    // A batch-1 build of exactly these tokens keeps the interpreter quick.
    let mut small = spec.clone();
    small.build.batch = 1;
    small.build.seq_len = t;
    let dir = tempfile::tempdir()?;
    let built = model::build(&small, dir.path())?;
    let rows = [tokens];
    let got = crate::parity::forward_rows(&built, w, &rows, threads)?;
    let want = crate::parity::interpret_rows(&built, w, &rows)?;
    let err = crate::parity::max_rel_err(&got, &want);
    finding.status = if err > DRIFT_TOLERANCE {
        Status::Look
    } else {
        Status::Ok
    };
    finding.evidence = format!(
        "logits of {t} validation tokens: max relative error {err:.1e} ({} path; drift above {DRIFT_TOLERANCE:.0e})",
        built.compiled.schedule.target.name()
    );
    Ok(finding)
}

/// The checklist as a table: the first fix, then the symptoms to look at
/// first ([`checks::order`]).
pub fn table(findings: &[Finding]) -> String {
    use std::fmt::Write;
    let mut rows: Vec<Finding> = findings.to_vec();
    checks::order(&mut rows);
    let mut o = String::new();
    if let Some(line) = checks::first_fix_line(&rows) {
        let _ = writeln!(o, "{line}\n");
    }
    let looks = rows.iter().filter(|f| f.status == Status::Look).count();
    let _ = writeln!(o, "{looks} of {} symptoms to look at", rows.len());
    for f in &rows {
        let tag = match f.status {
            Status::Look => "LOOK",
            Status::Ok => "ok",
            Status::NoData => "no data",
        };
        let _ = writeln!(o, "\n[{tag}] {}  →  {}", f.symptom, f.stage);
        let _ = writeln!(o, "    evidence: {}", f.evidence);
        if f.status != Status::Ok {
            let _ = writeln!(o, "    check:    {}", f.action);
        }
        if let (Status::Look, Some(s)) = (f.status, &f.sweep) {
            let _ = writeln!(o, "    sweep:    irc sweep SPEC {s}");
        }
    }
    o
}
