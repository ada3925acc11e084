//! The q8_0 and bf16-weight products of `runtime-c/irc_q8.h` against the
//! reference interpreter's meaning of a matmul with such weights
//! (`Op::MatMul { w }`, `compiler/quant.rs`), at odd shapes (K, M and N no
//! multiple of a block, a group or a vector), on every SIMD path: each this
//! host runs, with and without the int8 dot instructions, with gcc and
//! clang; NEON (with and without dotprod) under qemu where the cross
//! compiler and qemu exist (compiled only, or skipped, where not).
//!
//! q8_0 must match bit for bit (the same f32 operations in the same order
//! on every path; see irc_q8.h). bf16 must match the interpreter's f64
//! product of the bf16-rounded weights within 2e-6 of Σ|a·w| (f32 summation),
//! far closer than the unrounded weights' product is (so the test fails if
//! the rounding is skipped). The harness also checks that 1, 2 and 3
//! threads give identical bits.

mod common;

use common::{root, runs};
use irc::ir::{interpret, Graph, Op, TensorType, Value};
use irc::ops::{Act, Tensor};
use irc::quant::WeightFormat;
use irc::schedule::Caches;
use irc::spec::Target;
use irc::util::Rng;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

struct Case {
    m: usize,
    n: usize,
    k: usize,
    tb: bool,
    fmt: WeightFormat,
    /// irc_act: 0 none, 1 gelu (tanh), 4 relu.
    act: i32,
    bias: bool,
    a: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
}

fn act_of(code: i32) -> Option<Act> {
    match code {
        0 => None,
        1 => Some(Act::GeluTanh),
        4 => Some(Act::Relu),
        _ => unreachable!(),
    }
}

fn cases() -> Vec<Case> {
    let mut rng = Rng::new(17);
    let mut v = vec![];
    let shapes = [
        (1, 1, 1),
        (1, 7, 31),
        (1, 33, 45),
        (1, 19, 64),
        (3, 17, 97),
        (5, 16, 32),
        (16, 21, 33),
        (17, 40, 130),
        (2, 67, 256),
    ];
    for (i, &(m, n, k)) in shapes.iter().enumerate() {
        for fmt in [WeightFormat::Q8_0, WeightFormat::Bf16] {
            for tb in [false, true] {
                let act = [0, 4, 1][(i + tb as usize) % 3];
                let mut a: Vec<f32> = (0..m * k).map(|_| rng.normal() as f32).collect();
                let mut w: Vec<f32> = (0..n * k).map(|_| rng.normal() as f32 * 0.1).collect();
                // Blocks that stress the rounding: all zero (d = 0), all one
                // value (q = ±127), exact halves of the step, values below 1e-36.
                if k >= 32 {
                    a[..32].iter_mut().for_each(|x| *x = 0.0);
                    if m > 1 {
                        a[k..k + 32].iter_mut().for_each(|x| *x = -0.75);
                    }
                    // So small that 1/d overflows: q saturates, the scale is 0.
                    if m > 2 {
                        a[2 * k..2 * k + 32]
                            .iter_mut()
                            .enumerate()
                            .for_each(|(j, x)| *x = (j as f32 - 15.0) * 1e-39);
                    }
                    w[..32]
                        .iter_mut()
                        .enumerate()
                        .for_each(|(j, x)| *x = (j as f32 - 16.0) * 127.0 / 32.0 / 16.0);
                }
                let b = (0..n).map(|_| rng.normal() as f32).collect();
                v.push(Case {
                    m,
                    n,
                    k,
                    tb,
                    fmt,
                    act,
                    bias: i % 2 == 0,
                    a,
                    w,
                    b,
                });
            }
        }
    }
    v
}

/// The interpreter's value of act(a · op(w) + bias), at f64 (bf16) or f32
/// (q8_0, whose product the interpreter computes in f32 anyway); also the
/// plain f32-weight product, for bf16's "rounding made a difference" check.
fn reference(c: &Case, fmt: WeightFormat) -> (Vec<f64>, Vec<f64>) {
    let mut g = Graph::new();
    let a = g.leaf(
        Op::Input { name: "a".into() },
        TensorType::f32(&[c.m, c.k]),
        "a",
    );
    let wshape = if c.tb { [c.n, c.k] } else { [c.k, c.n] };
    let w = g.leaf(
        Op::Param { name: "w".into() },
        TensorType::f32(&wshape),
        "w",
    );
    let mut y = g
        .add(
            Op::MatMul {
                ta: false,
                tb: c.tb,
                w: fmt,
                bf16: false,
            },
            &[a, w],
            "y",
        )
        .unwrap();
    if c.bias {
        let b = g.leaf(Op::Param { name: "b".into() }, TensorType::f32(&[c.n]), "b");
        y = g.add(Op::Add, &[y, b], "yb").unwrap();
    }
    if let Some(act) = act_of(c.act) {
        y = g.add(Op::Act(act), &[y], "act").unwrap();
    }
    // |a|·|w| sums, for the bf16 tolerance.
    let mut abs = vec![0.0f64; c.m * c.n];
    for i in 0..c.m {
        for j in 0..c.n {
            abs[i * c.n + j] = (0..c.k)
                .map(|p| {
                    let wv = if c.tb {
                        c.w[j * c.k + p]
                    } else {
                        c.w[p * c.n + j]
                    };
                    (c.a[i * c.k + p] as f64 * wv as f64).abs()
                })
                .sum();
        }
    }
    let feeds = |v: &[f32], shape: &[usize]| Tensor::new(shape, v.to_vec());
    let mut f32s: BTreeMap<String, Value<f32>> = BTreeMap::new();
    f32s.insert("a".into(), Value::F(feeds(&c.a, &[c.m, c.k])));
    f32s.insert("w".into(), Value::F(feeds(&c.w, &wshape)));
    f32s.insert("b".into(), Value::F(feeds(&c.b, &[c.n])));
    let out: Vec<f64> = if fmt == WeightFormat::Q8_0 {
        interpret(&g, &f32s).unwrap()[&y]
            .f()
            .data
            .iter()
            .map(|&x| x as f64)
            .collect()
    } else {
        let f64s: BTreeMap<String, Value<f64>> = f32s
            .iter()
            .map(|(k, v)| {
                let t = v.f();
                let d = t.data.iter().map(|&x| x as f64).collect();
                (k.clone(), Value::F(Tensor::new(&t.shape, d)))
            })
            .collect();
        interpret(&g, &f64s).unwrap()[&y].f().data.clone()
    };
    (out, abs)
}

fn write_cases(cases: &[Case], path: &Path) {
    let mut bytes = vec![];
    for c in cases {
        let fmt = if c.fmt == WeightFormat::Q8_0 { 1 } else { 2 };
        for h in [
            c.m as i32,
            c.n as i32,
            c.k as i32,
            c.tb as i32,
            fmt,
            c.act,
            c.bias as i32,
        ] {
            bytes.extend(h.to_le_bytes());
        }
        let mut put = |v: &[f32]| v.iter().for_each(|x| bytes.extend(x.to_le_bytes()));
        put(&c.a);
        put(&c.w);
        if c.bias {
            put(&c.b);
        }
    }
    std::fs::write(path, bytes).unwrap();
}

fn compile(cc: &str, target: &str, flags: &[&str], out: &Path) {
    let root = root();
    let o = Command::new(cc)
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fopenmp"])
        .args(flags)
        .args(Caches::GENERIC.c_flags())
        .arg(format!("-DIRC_TARGET_{target}"))
        .arg("-I")
        .arg(root.join("runtime-c"))
        .arg(root.join("tests/c/q8_test.c"))
        .args(["-lm", "-o"])
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(
        o.status.success(),
        "{cc} failed for IRC_TARGET_{target} {flags:?}:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Run the harness and hold every case against the interpreter.
fn check(runner: &[&str], exe: &Path, what: &str, cases: &[Case], input: &Path) {
    let out = input.with_extension(format!("out.{}", what.replace([' ', '+', '='], "_")));
    let o = match runner.split_first() {
        Some((p, args)) => Command::new(p)
            .args(args)
            .arg(exe)
            .arg(input)
            .arg(&out)
            .output(),
        None => Command::new(exe).arg(input).arg(&out).output(),
    }
    .unwrap();
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    let got: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut at = 0;
    let (mut exact, mut bf16_worst, mut bf16_rounding) = (0, 0.0f64, 0.0f64);
    for (ci, c) in cases.iter().enumerate() {
        let mn = c.m * c.n;
        let mine = &got[at..at + mn];
        at += mn;
        let (want, abs) = reference(c, c.fmt);
        let label = format!(
            "{what}: case {ci} {:?} {}x{}x{} tb={} act={} bias={}",
            c.fmt, c.m, c.n, c.k, c.tb, c.act, c.bias
        );
        match c.fmt {
            WeightFormat::Q8_0 if c.act != 1 => {
                for (i, (&g, &w)) in mine.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g.to_bits(),
                        (w as f32).to_bits(),
                        "{label}: [{i}] {g} vs {w}"
                    );
                }
                exact += 1;
            }
            _ => {
                // GELU's polynomial (irc_simd.h) and bf16's f32 sums: close.
                let (plain, _) = reference(c, WeightFormat::F32);
                for i in 0..mn {
                    let tol = 2e-6 * abs[i].max(1.0) + 1e-6 * want[i].abs();
                    let err = (mine[i] as f64 - want[i]).abs();
                    assert!(
                        err <= tol,
                        "{label}: [{i}] {} vs {} (tol {tol:e})",
                        mine[i],
                        want[i]
                    );
                    if c.fmt == WeightFormat::Bf16 {
                        bf16_worst = bf16_worst.max(err / abs[i].max(1e-30));
                        bf16_rounding =
                            bf16_rounding.max((plain[i] - want[i]).abs() / abs[i].max(1e-30));
                    }
                }
            }
        }
    }
    assert_eq!(at, got.len(), "{what}: output length");
    assert!(exact > 10, "{what}: too few exact q8_0 cases");
    assert!(
        bf16_rounding > 50.0 * bf16_worst,
        "{what}: bf16 rounding ({bf16_rounding:e}) not told apart from the kernel's error ({bf16_worst:e})"
    );
    println!(
        "{what}: {} cases ok (bf16 worst {bf16_worst:.1e} of Σ|aw|)",
        cases.len()
    );
}

fn compilers() -> Vec<String> {
    let mut v = vec![std::env::var("CC").unwrap_or_else(|_| "cc".into())];
    if !v.iter().any(|c| c == "clang") {
        v.push("clang".into());
    }
    v.retain(|c| runs(c));
    v
}

#[test]
fn q8_and_bf16_kernels_match_the_interpreter_on_host_paths() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    let input = dir.path().join("cases.bin");
    write_cases(&cases, &input);
    for (n, cc) in compilers().iter().enumerate() {
        for t in Target::host_paths() {
            let (name, base) = match t {
                Target::Avx512 => ("AVX512", irc::toolchain::target_flags(t)),
                Target::Avx2 => ("AVX2", irc::toolchain::target_flags(t)),
                _ => ("SCALAR", &[][..]),
            };
            // The portable path of the target, then with the host's int8 dot.
            let mut variants = vec![base.to_vec()];
            let extra = irc::toolchain::host_int8_flags(t);
            if !extra.is_empty() {
                variants.push([base, &extra[..]].concat());
            }
            for flags in variants {
                let what = format!("{name} {cc} {}", flags.join(" "));
                let exe = dir.path().join(format!("q8_{}_{n}_{}", name, flags.len()));
                compile(cc, name, &flags, &exe);
                check(&[], &exe, &what, &cases, &input);
            }
        }
        // AVX-VNNI (no AVX-512): compiled, run where the CPU has it.
        #[cfg(target_arch = "x86_64")]
        {
            let mut flags = irc::toolchain::target_flags(Target::Avx2).to_vec();
            flags.push("-mavxvnni");
            let exe = dir.path().join(format!("q8_avxvnni_{n}"));
            compile(cc, "AVX2", &flags, &exe);
            if std::arch::is_x86_feature_detected!("avxvnni") {
                check(&[], &exe, &format!("AVX2 {cc} avxvnni"), &cases, &input);
            } else {
                println!("AVX2 {cc} -mavxvnni: compiled (this CPU has no AVX-VNNI to run it)");
            }
        }
    }
}

#[test]
fn q8_and_bf16_kernels_match_the_interpreter_on_neon() {
    let cross = "aarch64-linux-gnu-gcc";
    let sysroot = "/usr/aarch64-linux-gnu";
    if !runs(cross) {
        println!("skipped: {cross} not on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    let input = dir.path().join("cases.bin");
    write_cases(&cases, &input);
    let can_run = runs("qemu-aarch64") && Path::new(sysroot).is_dir();
    for (tag, flags) in [
        ("neon", vec![]),
        ("dotprod", vec!["-march=armv8.2-a+dotprod"]),
    ] {
        let exe = dir.path().join(format!("q8_{tag}"));
        compile(cross, "NEON", &flags, &exe);
        if can_run {
            check(
                &["qemu-aarch64", "-cpu", "max", "-L", sysroot],
                &exe,
                &format!("NEON {tag}"),
                &cases,
                &input,
            );
        } else {
            println!("NEON {tag}: compiled only (qemu-aarch64 or {sysroot} missing)");
        }
    }
}
