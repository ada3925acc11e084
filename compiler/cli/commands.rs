//! One function per `irc` subcommand (`irc data` and `irc tokenizer` have
//! their own modules): each reads its arguments, calls the library, prints.

use super::*;

/// `irc build`.
pub(super) fn build(spec: PathBuf, out: Option<PathBuf>, sanitize: bool) -> Result<()> {
    let mut spec = Spec::load(&spec)?;
    spec.build.sanitize = sanitize;
    let dir = out.unwrap_or_else(|| model::default_dir(&spec));
    let b = model::build(&spec, &dir)?;
    let c = &b.compiled;
    println!(
        "built {} ({} target) in {:.2}s{}: {} ops, {} kernels, {} params; memory {:.2} MiB to run it, {:.2} MiB to train it",
        spec.model.name,
        c.schedule.target.name(),
        b.seconds,
        if b.cached { " (cached library)" } else { "" },
        c.graph.len(),
        c.kernels.len(),
        c.memory.param_floats,
        b.footprint().run().mib(),
        b.footprint().train().mib()
    );
    println!(
        "  {}/model.c, irc_model.h, libirc_model.so, libirc_model.a",
        dir.display()
    );
    Ok(())
}

/// `irc inspect`.
pub(super) fn inspect(dir: PathBuf, html: bool, ir: bool, json: bool) -> Result<()> {
    let info = model::read_inspect(&dir)?;
    if html {
        print!("{}", html::graph_page(&info)?);
    } else if json {
        println!("{}", serde_json::to_string_pretty(&info["graph"])?);
    } else {
        print!("{}", inspect_text(&info, ir));
    }
    Ok(())
}

/// `irc grad`.
pub(super) fn grad(
    spec: PathBuf,
    weights: PathBuf,
    tokens: PathBuf,
    targets: PathBuf,
    out: PathBuf,
    build_dir: Option<PathBuf>,
    threads: usize,
) -> Result<()> {
    let spec = Spec::load(&spec)?;
    let (b, w) = build_with_weights(&spec, build_dir, &weights)?;
    let rows = read_token_file(&tokens)?;
    let trows = read_token_file(&targets)?;
    let shape = |r: &[Vec<i32>]| (r.len(), r.iter().map(Vec::len).collect::<Vec<_>>());
    if shape(&rows) != shape(&trows) {
        return Err(Error::new(format!(
            "{}: targets must have the same shape as the tokens in {}",
            targets.display(),
            tokens.display()
        )));
    }
    let (n, t) = (rows.len(), rows[0].len());
    if rows.iter().any(|r| r.len() != t)
        || n > b.compiled.program.batch
        || t > b.compiled.program.seq
    {
        return Err(Error::new(format!(
                "{}: expected up to {} sequences of equal length up to {} tokens ([build].batch, [build].seq_len)",
                tokens.display(),
                b.compiled.program.batch,
                b.compiled.program.seq
            )));
    }
    let mut s = b.session(threads)?;
    s.load_weights(&w)?;
    s.zero_grads();
    let flat = |r: &[Vec<i32>]| r.iter().flatten().copied().collect::<Vec<_>>();
    // The library names the bad id; the message says which file it is from.
    let loss = s.backward(&flat(&rows), &flat(&trows), n, t).map_err(|e| {
        let file = if e.0.starts_with("target ") {
            &targets
        } else {
            &tokens
        };
        e.context(file.display())
    })?;
    let mut g = s.grad_weights()?;
    g.insert("loss", &[1], vec![loss]);
    g.save(&out, None)?;
    println!("loss {loss:.6}");
    println!(
        "wrote {} ({} gradients and the loss)",
        out.display(),
        g.tensors.len() - 1
    );
    Ok(())
}

/// `irc train`.
pub(super) fn train(
    spec: PathBuf,
    resume: Option<PathBuf>,
    out: Option<PathBuf>,
    stop_after: Option<usize>,
    quiet: bool,
) -> Result<()> {
    crate::dist::init()?;
    let spec = Spec::load(&spec).map_err(crate::dist::collective)?;
    let opts = crate::train::TrainOptions {
        resume,
        out,
        stop_after,
        quiet,
    };
    let s = crate::train::train(&spec, &opts)?;
    if crate::dist::is_follower() {
        return Ok(()); // rank 0 says what the run did
    }
    let first = s.losses.first().copied().unwrap_or(f32::NAN);
    let last = s.losses.last().copied().unwrap_or(f32::NAN);
    println!(
        "{} at step {}/{}: train loss {first:.4} -> {last:.4}{}",
        if s.interrupted { "stopped" } else { "trained" },
        s.steps,
        s.total_steps,
        s.val_loss
            .map(|v| format!(", val loss {v:.4}"))
            .unwrap_or_default()
    );
    println!("  checkpoint {}", s.checkpoint.display());
    println!(
        "  metrics    {}",
        crate::rundir::RunDir::new(&s.run_dir).metrics().display()
    );
    Ok(())
}

/// `irc run`.
pub(super) fn run(
    spec: PathBuf,
    out: Option<PathBuf>,
    quick: bool,
    threads: usize,
    stop_after: Option<usize>,
    set: Vec<String>,
) -> Result<()> {
    crate::dist::init()?;
    let mut spec = Spec::load(&spec).map_err(crate::dist::collective)?;
    for s in &set {
        let knob = crate::sweep::Knob::parse(s).map_err(crate::dist::collective)?;
        let [v] = knob.values.as_slice() else {
            return Err(crate::dist::collective(Error::new(format!(
                "--set {s}: expected one value (irc sweep tries several)"
            ))));
        };
        spec = crate::sweep::variant(&spec, &knob, v).map_err(crate::dist::collective)?;
    }
    crate::run::run_spec(
        spec,
        &crate::run::RunOptions {
            out,
            quick,
            threads,
            stop_after,
            quiet: crate::dist::is_follower(),
        },
    )?;
    Ok(())
}

/// `irc generate`.
pub(super) fn generate(
    run: PathBuf,
    prompt: String,
    sampling: SamplingArgs,
    n: usize,
    threads: usize,
    weights: Option<crate::quant::WeightFormat>,
) -> Result<()> {
    let mut m = crate::generate::open_run_with(&run, threads, weights)?;
    let cfg = sampling.over(&m.spec.generate);
    if let Some(p) = m.exemplars.as_ref().and_then(|ex| ex.pick(&prompt)) {
        eprintln!("exemplar: the training drawing of {p} (its tags are the nearest)");
    }
    for i in 0..n {
        let started = std::time::Instant::now();
        print!("{prompt}");
        let g = m.generate(
            &prompt,
            &crate::sample::SamplingConfig {
                seed: cfg.seed + i as u64,
                ..cfg.sampling()
            },
            cfg.max_tokens,
            crate::generate::print_stream,
        )?;
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "\n[{} tokens, {:.1} tokens/s, stopped: {:?}]",
            g.tokens.len(),
            g.tokens.len() as f64 / secs.max(1e-9),
            g.reason
        );
    }
    Ok(())
}

/// `irc eval`.
pub(super) fn eval(
    run: PathBuf,
    n: Option<usize>,
    sampling: SamplingArgs,
    threads: usize,
    weights: Option<crate::quant::WeightFormat>,
) -> Result<()> {
    let spec = crate::generate::run_spec(&run)?;
    let cfg = sampling.over(&spec.generate);
    let r = crate::evaluate::eval_run_with(
        &run,
        &spec,
        n.unwrap_or(spec.eval.samples),
        &cfg.sampling(),
        cfg.max_tokens,
        threads,
        weights,
    )?;
    print!("{}", r.to_table());
    println!(
        "wrote {}",
        crate::rundir::RunDir::new(&run).eval().display()
    );
    Ok(())
}

/// `irc report`.
pub(super) fn report(run: PathBuf, out: Option<PathBuf>) -> Result<()> {
    let out = out.unwrap_or_else(|| crate::rundir::RunDir::new(&run).report());
    let warning = crate::report::report_run(&run, &out)?;
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    println!("wrote {}", out.display());
    Ok(())
}

/// `irc export`.
pub(super) fn export(
    spec: PathBuf,
    weights: PathBuf,
    tokenizer: Option<PathBuf>,
    out: PathBuf,
) -> Result<()> {
    let spec = Spec::load(&spec)?;
    let w = Weights::load(&weights)?;
    crate::hf::export_hf(&spec, &w, tokenizer.as_deref(), &out)?;
    println!(
        "wrote {}: config.json, model.safetensors{}",
        out.display(),
        if tokenizer.is_some() {
            ", tokenizer.json"
        } else {
            ""
        }
    );
    Ok(())
}

/// `irc export --gguf`.
pub(super) fn export_gguf(
    spec: PathBuf,
    weights: PathBuf,
    tokenizer: Option<PathBuf>,
    out: PathBuf,
    ty: crate::gguf::FileType,
) -> Result<()> {
    let tokenizer = tokenizer.expect("clap requires --tokenizer with --gguf");
    let spec = Spec::load(&spec)?;
    let w = Weights::load(&weights)?;
    let e = crate::gguf::export_gguf(&spec, &w, &tokenizer, &out, ty)?;
    for note in &e.notes {
        eprintln!("note: {note}");
    }
    println!(
        "wrote {} ({}, {:.2} MiB): {} tensors{}",
        out.display(),
        ty.name(),
        e.bytes as f64 / (1 << 20) as f64,
        e.tensors,
        match &e.max_error {
            Some((err, name)) => format!(
                ", {} in q8_0 (largest error {err:.3e}, in `{name}`)",
                e.quantized
            ),
            None => String::new(),
        }
    );
    Ok(())
}

/// `irc import`.
pub(super) fn import(dir: PathBuf, spec: PathBuf, weights: PathBuf) -> Result<()> {
    let s = crate::hf::import_hf(&dir, &spec, &weights)?;
    println!(
        "imported {} ({}) into {} and {}",
        s.model.name,
        serde_json::to_value(s.model.family)?
            .as_str()
            .unwrap_or("?"),
        spec.display(),
        weights.display()
    );
    Ok(())
}

/// `irc init`.
pub(super) fn init(spec: PathBuf, out: PathBuf, seed: u64) -> Result<()> {
    let spec = Spec::load(&spec)?;
    let compiled = crate::driver::compile(&spec, model::program(&spec))?;
    model::Footprint::init(compiled.memory.param_floats).check(&spec)?;
    let shapes: Vec<_> = compiled
        .memory
        .params
        .iter()
        .map(|p| (p.name.clone(), p.shape.clone()))
        .collect();
    let w = Weights::init(&spec.model, &shapes, seed);
    w.save(&out, None)?;
    let n: usize = shapes
        .iter()
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    println!(
        "wrote {} ({} tensors, {n} parameters, seed {seed})",
        out.display(),
        shapes.len()
    );
    Ok(())
}

/// `irc sweep`.
/// How `irc sweep` runs its variants.
pub(super) enum SweepMode {
    /// One after the other in this process.
    Here,
    /// As this many `irc run` processes at a time.
    Jobs(usize),
    /// Print their command lines only.
    PrintCommands,
    /// The table from their run folders only.
    Collect,
}

impl SweepMode {
    pub(super) fn of(jobs: usize, print_commands: bool, collect: bool) -> SweepMode {
        match (print_commands, collect, jobs) {
            (true, _, _) => SweepMode::PrintCommands,
            (_, true, _) => SweepMode::Collect,
            (_, _, 1) => SweepMode::Here,
            (_, _, n) => SweepMode::Jobs(n),
        }
    }
}

pub(super) fn sweep(
    spec: PathBuf,
    set: Vec<String>,
    out: Option<PathBuf>,
    quick: bool,
    threads: usize,
    mode: SweepMode,
) -> Result<()> {
    let spec = Spec::load(&spec)?;
    let knobs = set
        .iter()
        .map(|s| crate::sweep::Knob::parse(s))
        .collect::<Result<Vec<_>>>()?;
    let out =
        out.unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-sweep", spec.model.name)));
    let opts = crate::run::RunOptions {
        quick,
        threads,
        ..Default::default()
    };
    let rows = match mode {
        SweepMode::Here => crate::sweep::sweep(&spec, &knobs, &out, &opts)?,
        SweepMode::Jobs(n) => crate::sweep::sweep_jobs(&spec, &knobs, &out, &opts, n)?,
        SweepMode::Collect => crate::sweep::collect(&spec, &knobs, &out, quick)?,
        SweepMode::PrintCommands => {
            for (_, c) in crate::sweep::commands(&spec, &knobs, &out, &opts)? {
                println!("{}", crate::sweep::shell_line(&c));
            }
            return Ok(());
        }
    };
    println!("\nsweep of {} ({}):", spec.path.display(), out.display());
    print!("{}", crate::sweep::table(&rows));
    Ok(())
}

/// `irc doctor`.
pub(super) fn doctor(run: PathBuf, threads: usize, profile: bool) -> Result<()> {
    let findings = crate::doctor::doctor(&run, crate::doctor::Options { threads, profile })?;
    print!("{}", crate::doctor::table(&findings));
    Ok(())
}

/// `irc profile` (its flags one to one).
#[allow(clippy::too_many_arguments)]
pub(super) fn profile(
    spec: PathBuf,
    program: Vec<String>,
    weights: Option<PathBuf>,
    threads: usize,
    iters: usize,
    top: usize,
    build_dir: Option<PathBuf>,
    json: bool,
) -> Result<()> {
    let spec = Spec::load(&spec)?;
    let dir = build_dir.unwrap_or_else(|| {
        let mut d = model::default_dir(&spec).into_os_string();
        d.push("-profile");
        d.into()
    });
    let w = weights.map(|p| Weights::load(&p)).transpose()?;
    let programs: Vec<&str> = if program.is_empty() {
        crate::profile::PROGRAMS.to_vec()
    } else {
        program.iter().map(String::as_str).collect()
    };
    let p = crate::profile::profile(&spec, &dir, w.as_ref(), threads, iters, &programs)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&p).map_err(|e| Error::new(e.to_string()))?
        );
    } else {
        print!("{}", p.table(top));
    }
    Ok(())
}

/// `irc forward`.
pub(super) fn forward(
    spec: PathBuf,
    weights: PathBuf,
    tokens: PathBuf,
    out: PathBuf,
    build_dir: Option<PathBuf>,
    threads: usize,
    check: bool,
) -> Result<()> {
    let spec = Spec::load(&spec)?;
    let (b, w) = build_with_weights(&spec, build_dir, &weights)?;
    let rows = read_token_file(&tokens)?;
    let logits = forward_rows(&b, &w, &rows, threads).map_err(|e| e.context(tokens.display()))?;
    let (n, t) = (rows.len(), rows[0].len());
    let mut o = Weights::default();
    o.insert("logits", &[n, t, spec.model.vocab_size], logits);
    o.save(&out, None)?;
    println!(
        "wrote {} (logits {n} x {t} x {})",
        out.display(),
        spec.model.vocab_size
    );
    if check {
        let want = interpret_rows(&b, &w, &rows)?;
        let err = max_rel_err(&logits_of(&o), &want);
        println!(
            "interpreter (f64) vs compiled ({}): max relative error {err:.2e}",
            b.compiled.schedule.target.name()
        );
        if err > LOGITS_TOLERANCE {
            return Err(Error::new(format!(
                "compiled logits differ from the interpreter by {err:.2e} > 1e-4"
            )));
        }
    }
    Ok(())
}
