//! The FMA-peak and sgemm rows: benches/c/bench_gemm.c compiled as a model
//! of the same target is (the C compiler, its flags, the SIMD macro, the
//! cache sizes the GEMM blocks for), with the shapes of the compiled
//! training programs; and benches/blas.py, numpy's sgemm at the same shapes.

use super::{run_python, Missing, Sample};
use crate::codegen::{target_macro, GemmShape, RUNTIME_C};
use crate::error::{At, Error, Result};
use crate::schedule::Caches;
use crate::spec::Target;
use crate::toolchain::Toolchain;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const HARNESS_C: &str = include_str!("../../benches/c/bench_gemm.c");
pub(super) const BLAS_PY: &str = include_str!("../../benches/blas.py");

/// Seconds each shape is timed for in one process (the best call of them).
pub const SECONDS_PER_SHAPE: f64 = 0.1;

/// The 1024³ products every table starts with (plain and B transposed).
pub fn squares() -> [GemmShape; 2] {
    let sq = GemmShape {
        batch: 1,
        m: 1024,
        n: 1024,
        k: 1024,
        trans_a: false,
        trans_b: false,
        b_batched: false,
        accumulate: false,
        bias: false,
        pre: false,
        act: None,
    };
    [
        sq,
        GemmShape {
            trans_b: true,
            ..sq
        },
    ]
}

/// The harness built for one target: its shapes, and where it is.
pub struct Harness {
    pub target: Target,
    pub caches: Caches,
    pub shapes: Vec<GemmShape>,
    exe: PathBuf,
    shapes_json: PathBuf,
}

/// One run of the harness: the peak of each thread count it measured, and
/// GFLOP/s of each shape.
pub struct HarnessRun {
    pub peaks: BTreeMap<usize, f64>,
    pub gflops: Vec<f64>,
}

impl Harness {
    /// Write the shape table and compile the harness in `dir` with the flags
    /// a model of `target` at `opt_level` is compiled with; with `bf16 =
    /// Some(native)` it times irc_gemm_bf16 (vdpbf16ps or the emulation).
    pub fn build(
        dir: &Path,
        target: Target,
        caches: Caches,
        opt_level: u8,
        shapes: Vec<GemmShape>,
        bf16: Option<bool>,
    ) -> Result<Harness> {
        std::fs::create_dir_all(dir).at(dir.display())?;
        for (name, text) in RUNTIME_C {
            std::fs::write(dir.join(name), text).at(dir.join(name).display())?;
        }
        let mut table = String::from(
            "/* Written by irc bench: the GEMM calls of the compiled programs. */\n\
             static const bench_shape SHAPES[] = {\n",
        );
        for s in &shapes {
            let act = s.act.map_or("IRC_ACT_NONE", |a| a.def().c_enum);
            let _ = writeln!(
                table,
                "    {{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {act}}}, /* {} */",
                s.batch,
                s.m,
                s.n,
                s.k,
                s.trans_a as u8,
                s.trans_b as u8,
                s.b_batched as u8,
                s.accumulate as u8,
                s.bias as u8,
                s.pre as u8,
                s.describe()
            );
        }
        table.push_str("};\n");
        std::fs::write(dir.join("bench_shapes.h"), table).at("bench_shapes.h")?;
        std::fs::write(dir.join("bench_gemm.c"), HARNESS_C).at("bench_gemm.c")?;
        let shapes_json = dir.join("shapes.json");
        std::fs::write(&shapes_json, serde_json::to_string(&shapes)?).at("shapes.json")?;
        let tc = Toolchain::find(target, opt_level)?;
        let exe = dir.join("bench_gemm");
        let bf16_flags = bf16.map_or(vec![], |native| {
            vec![
                "-DIRC_BENCH_BF16=1".to_string(),
                format!("-DIRC_BF16_NATIVE={}", native as u8),
            ]
        });
        let out = Command::new(&tc.cc)
            .args(&tc.cflags)
            .arg(format!("-D{}=1", target_macro(target)))
            .args(&bf16_flags)
            .args(caches.c_flags())
            .arg("-I.")
            .args(["bench_gemm.c", "-o", "bench_gemm", "-lm"])
            .current_dir(dir)
            .output()
            .map_err(|e| Error::new(format!("cannot run {}: {e}", tc.cc.display())))?;
        if !out.status.success() {
            return Err(Error::new(format!(
                "compiling the GEMM benchmark failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(Harness {
            target,
            caches,
            shapes,
            exe,
            shapes_json,
        })
    }

    /// One process of the harness on `threads` threads.
    pub fn run(&self, threads: usize) -> Result<HarnessRun> {
        let out = Command::new(&self.exe)
            .args([threads.to_string(), SECONDS_PER_SHAPE.to_string()])
            .output()
            .map_err(|e| Error::new(format!("cannot run {}: {e}", self.exe.display())))?;
        if !out.status.success() {
            return Err(Error::new(format!(
                "the GEMM benchmark failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let mut run = HarnessRun {
            peaks: BTreeMap::new(),
            gflops: vec![f64::NAN; self.shapes.len()],
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            let bad = || Error::new(format!("the GEMM benchmark printed `{line}`"));
            match w.as_slice() {
                ["peak", t, g] => {
                    run.peaks
                        .insert(t.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?);
                }
                ["gemm", i, g] => {
                    let i: usize = i.parse().map_err(|_| bad())?;
                    *run.gflops.get_mut(i).ok_or_else(bad)? = g.parse().map_err(|_| bad())?;
                }
                _ => return Err(bad()),
            }
        }
        if let Some(i) = run.gflops.iter().position(|g| !g.is_finite()) {
            return Err(Error::new(format!(
                "the GEMM benchmark gave no figure for {}",
                self.shapes[i].describe()
            )));
        }
        Ok(run)
    }

    /// One process of benches/blas.py on `threads` threads, at the same
    /// shapes: GFLOP/s of each.
    pub fn run_numpy(
        &self,
        python: &Path,
        script: &Path,
        threads: usize,
    ) -> std::result::Result<Sample<Vec<f64>>, Missing> {
        let mut cmd = Command::new(python);
        cmd.arg(script)
            .arg(&self.shapes_json)
            .args([threads.to_string(), SECONDS_PER_SHAPE.to_string()]);
        let v = run_python(cmd, python, threads)?;
        let g: Vec<f64> = v["gflops"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default();
        if g.len() != self.shapes.len() {
            return Err(Missing::Failed(format!(
                "blas.py gave {} figures for {} shapes",
                g.len(),
                self.shapes.len()
            )));
        }
        Ok(Sample {
            value: g,
            label: v["library"].as_str().unwrap_or("numpy").to_string(),
            rss_kb: v["rss_kb"].as_u64().unwrap_or(0),
        })
    }
}
