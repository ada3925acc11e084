//! The front door for Rust hosts and the CLI: spec → compiled library → a
//! session that runs it.

use crate::codegen::{self, Sources};
use crate::driver::{self, Compiled};
use crate::error::{At, Result};
use crate::passes::{self, Program};
use crate::runtime::{Library, Session, Weights};
use crate::spec::{Bf16Dot, DType, Spec, Target};
use crate::toolchain::{self, Toolchain, SHARED_LIB};
use crate::util::{atomic_write, StagedDir};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A model built into a directory.
pub struct Built {
    pub spec: Spec,
    /// The forward program (logits, loss).
    pub compiled: Compiled,
    /// The training step (loss, parameter gradients).
    pub train: Compiled,
    pub sources: Sources,
    pub dir: PathBuf,
    pub cached: bool,
    pub seconds: f64,
}

/// The forward program every build compiles: logits and loss over the
/// spec's (batch, seq_len).
pub fn program(spec: &Spec) -> Program {
    Program::forward(spec.build.batch, spec.build.seq_len)
}

/// Prompt tokens a prefill step takes at once (a shorter rest is padded):
/// most prompts fit in one step, and a short one wastes little on padding.
pub const PREFILL_CHUNK: usize = 16;

/// The prefill step: a chunk of prompt tokens over the key/value cache.
pub fn prefill_program(spec: &Spec) -> Program {
    Program::step(PREFILL_CHUNK.min(spec.model.context))
}

/// The training step over the same shapes.
pub fn train_program(spec: &Spec) -> Program {
    Program {
        train: true,
        ..program(spec)
    }
}

/// Every program a library carries, compiled.
pub struct Programs {
    pub forward: Compiled,
    pub train: Compiled,
    pub prefill: Compiled,
    pub decode: Compiled,
}

impl Programs {
    pub fn compile(spec: &Spec) -> Result<Programs> {
        Ok(Programs {
            forward: driver::compile(spec, program(spec))?,
            train: driver::compile(spec, train_program(spec))?,
            prefill: driver::compile(spec, prefill_program(spec))?,
            decode: driver::compile(spec, Program::step(1))?,
        })
    }

    pub fn footprint(&self) -> Footprint {
        Footprint::of(&self.forward, &self.train)
    }

    /// The C sources of a library with all of them.
    pub fn emit(&self, spec: &Spec) -> Result<Sources> {
        let steps = codegen::Steps {
            prefill: &self.prefill,
            decode: &self.decode,
        };
        codegen::emit(spec, &self.forward, &self.train, Some(&steps))
    }
}

/// What a model needs in memory, in floats: the numbers `irc build` prints,
/// and what [`Need::check`] holds against the machine before anything is
/// emitted or allocated.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    pub params: usize,
    /// The forward's peak activations.
    pub forward_acts: usize,
    /// The training step's peak activations.
    pub train_acts: usize,
}

/// Some of a [`Footprint`]: `floats` in all for `what`, `param_floats` of
/// them parameters (or their copies: gradients, AdamW moments, a file's
/// bytes), over a model of `params` parameters.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub what: &'static str,
    pub floats: usize,
    pub param_floats: usize,
    pub params: usize,
}

impl Footprint {
    pub fn of(forward: &Compiled, train: &Compiled) -> Footprint {
        Footprint {
            params: forward.memory.param_floats,
            forward_acts: forward.memory.act_floats,
            train_acts: train.memory.act_floats,
        }
    }

    /// Running it: the parameters and the forward's activations.
    pub fn run(&self) -> Need {
        Need {
            what: "running this model (parameters and activations)",
            floats: self.params + self.forward_acts,
            param_floats: self.params,
            params: self.params,
        }
    }

    /// Training it: parameters, gradients, two AdamW moments, and the
    /// larger program's activations.
    pub fn train(&self) -> Need {
        Need {
            what: "training this model (parameters, gradients, AdamW moments and activations)",
            floats: 4 * self.params + self.train_acts.max(self.forward_acts),
            param_floats: 4 * self.params,
            params: self.params,
        }
    }

    /// `irc init`: the initialized tensors and the file's bytes of them.
    pub fn init(params: usize) -> Need {
        Need {
            what: "initializing this model's weights (the tensors and their file)",
            floats: 2 * params,
            param_floats: 2 * params,
            params,
        }
    }
}

impl Need {
    pub fn mib(&self) -> f64 {
        self.floats as f64 * 4.0 / (1 << 20) as f64
    }

    /// Fits in the machine's memory ([`crate::limits::fits_in_memory`]);
    /// else a spec error at the field most responsible.
    pub fn check(&self, spec: &Spec) -> Result<()> {
        let bytes = (self.floats as u64).saturating_mul(4);
        crate::limits::fits_in_memory(bytes, self.what).map_err(|msg| {
            let (section, key) = self.blame(spec);
            spec.field_error(section, key, msg)
        })
    }

    /// The batch when activations are most of it, else the vocabulary or
    /// the layers, whichever holds more of the parameters.
    fn blame(&self, spec: &Spec) -> (&'static str, &'static str) {
        if self.floats - self.param_floats > self.param_floats {
            return ("build", "batch");
        }
        let m = &spec.model;
        let tables = if m.tied_embeddings { 1 } else { 2 };
        if 2 * tables * m.vocab_size * m.d_model > self.params {
            ("model", "vocab_size")
        } else {
            ("model", "layers")
        }
    }
}

/// How a build's bf16 GEMMs multiply (the manifest's `bf16_dot`), or None for f32.
fn bf16_dot(spec: &Spec, target: Target) -> Option<&'static str> {
    (spec.build.dtype == DType::Bf16).then(|| {
        if spec.build.bf16_dot.native_on(target) {
            "native"
        } else {
            "emulated"
        }
    })
}

/// Compile `spec` into `dir`: C sources, both libraries, the header, and
/// what `irc inspect` shows (`inspect.json`, `manifest.json`).
pub fn build(spec: &Spec, dir: &Path) -> Result<Built> {
    let start = Instant::now();
    let target = spec.build.target.resolve();
    if !target.host_can_run() && target != Target::Neon {
        // Building is fine (cross-checking the C), but say it cannot run here.
        eprintln!(
            "note: target {} cannot run on this CPU; the library will not load here",
            target.name()
        );
    }
    if bf16_dot(spec, target) == Some("native") && !Bf16Dot::host_has_native() {
        eprintln!(
            "note: vdpbf16ps (AVX512-BF16) is not on this CPU; the library will not run here"
        );
    }
    let programs = Programs::compile(spec)?;
    programs.footprint().run().check(spec)?;
    let sources = programs.emit(spec)?;
    let mut tc = Toolchain::find(target, spec.build.opt_level)?;
    if spec.build.sanitize {
        tc = tc.sanitized();
    }
    if spec.build.target == Target::Native && spec.build.weights == crate::quant::WeightFormat::Q8_0
    {
        tc = tc.with_flags(&toolchain::host_int8_flags(target));
    }
    // Everything goes into a temporary sibling that replaces `dir` only
    // when complete: a failed build leaves the previous one as it was.
    let staged = StagedDir::new(dir)?;
    let out = staged.path();
    let outcome = toolchain::build(&sources, &tc, out)?;
    toolchain::write_pkg_config(
        out,
        dir,
        &spec.model.name,
        &format!(
            "irc model {} ({:?}, {} target), symbols {}_*",
            spec.model.name,
            spec.model.family,
            target.name(),
            sources.prefix
        ),
    )?;
    let seconds = start.elapsed().as_secs_f64();

    let inspect = inspect_json(spec, target.name(), &programs);
    atomic_write(
        &out.join("inspect.json"),
        serde_json::to_string(&inspect)?.as_bytes(),
    )?;
    let c = &programs.forward;
    let manifest = json!({
        "irc": env!("CARGO_PKG_VERSION"), "abi": codegen::ABI_VERSION, "spec_hash": spec.build_hash(),
        "prefix": sources.prefix, "target": target.name(), "batch": c.program.batch, "seq": c.program.seq,
        "vocab": spec.model.vocab_size, "cc": tc.cc, "cc_version": tc.version, "cflags": tc.cflags,
        "cache_key": outcome.key, "cached": outcome.cached, "build_seconds": seconds,
        "dtype": spec.build.dtype.name(), "bf16_dot": bf16_dot(spec, target),
        "sanitize": spec.build.sanitize, "shared_library": SHARED_LIB, "static_library": toolchain::STATIC_LIB, "header": codegen::HEADER_FILE,
    });
    atomic_write(
        &out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    atomic_write(&out.join("spec.toml"), spec.source.as_bytes())?;
    // A renamed model's old pkg-config file is the one build file a new
    // build does not write again.
    staged.replace(|name| name.starts_with("irc-") && name.ends_with(".pc"))?;
    let Programs {
        forward: compiled,
        train,
        ..
    } = programs;
    Ok(Built {
        spec: spec.clone(),
        compiled,
        train,
        sources,
        dir: dir.to_path_buf(),
        cached: outcome.cached,
        seconds,
    })
}

/// A program's kernels as `inspect.json` lists them: kind, node names and
/// ids, inputs, outputs and schedule.
fn kernels_json(c: &Compiled) -> Vec<serde_json::Value> {
    c.kernels
        .iter()
        .zip(&c.schedule.kernels)
        .map(|(k, s)| {
            json!({
                "kind": k.kind.label(),
                "nodes": k.nodes.iter().map(|&n| c.graph.node(n).name.clone()).collect::<Vec<_>>(),
                "node_ids": k.nodes, "inputs": k.inputs, "outputs": k.outputs, "schedule": s,
            })
        })
        .collect()
}

/// What `irc inspect` shows of a build (`inspect.json`): the forward
/// program in full, the training step, and the generation steps.
fn inspect_json(spec: &Spec, target: &str, programs: &Programs) -> serde_json::Value {
    let c = &programs.forward;
    let t = &programs.train;
    let (prefill, decode) = (&programs.prefill, &programs.decode);
    let saved = driver::saved_for_backward(&t.graph, &t.kernels);
    json!({
        "model": spec.model, "build": spec.build, "program": { "batch": c.program.batch, "seq": c.program.seq },
        "target": target, "graph": c.graph.to_json(), "ops": c.graph.op_histogram(),
        "kernels": kernels_json(c), "memory": c.memory,
        "text": {
            "ir": c.graph.to_text(),
            "fusion": passes::fusion::describe(&c.graph, &c.kernels),
            "schedule": c.schedule.describe(&c.graph, &c.kernels),
            "memory": c.memory.describe(&c.graph),
        },
        "train": {
            "graph": t.graph.to_json(), "ops": t.graph.op_histogram(), "kernels": kernels_json(t), "memory": t.memory,
            "saved_for_backward": saved.iter().map(|&n| json!({
                "id": n, "name": t.graph.node(n).name, "type": t.graph.node(n).ty.to_string(),
            })).collect::<Vec<_>>(),
            "recomputed": driver::recomputed(&t.graph).iter().map(|&n| json!({
                "id": n, "name": t.graph.node(n).name, "type": t.graph.node(n).ty.to_string(),
            })).collect::<Vec<_>>(),
            "text": {
                "ir": t.graph.to_text(),
                "fusion": passes::fusion::describe(&t.graph, &t.kernels),
                "schedule": t.schedule.describe(&t.graph, &t.kernels),
                "memory": t.memory.describe(&t.graph),
            },
        },
        "generation": {
            "prefill_tokens": prefill.program.seq, "cache_floats": decode.memory.state_floats,
            "cache": decode.memory.state, "prefill_kernels": prefill.kernels.len(),
            "decode": {
                "ops": decode.graph.op_histogram(), "kernels": kernels_json(decode), "memory": decode.memory,
                "text": {
                    "ir": decode.graph.to_text(),
                    "fusion": passes::fusion::describe(&decode.graph, &decode.kernels),
                    "memory": decode.memory.describe(&decode.graph),
                },
            },
        },
    })
}

impl Built {
    pub fn footprint(&self) -> Footprint {
        Footprint::of(&self.compiled, &self.train)
    }

    /// Load the shared library, checking its ABI version and spec hash.
    pub fn load(&self) -> Result<Arc<Library>> {
        let p = &self.compiled.program;
        Library::open(
            &self.dir.join(SHARED_LIB),
            &self.sources.prefix,
            &self.spec.build_hash(),
            (p.batch, p.seq, self.spec.model.vocab_size),
        )
    }

    /// A fresh session with `threads` threads (0 = the spec's default).
    pub fn session(&self, threads: usize) -> Result<Session> {
        let threads = if threads == 0 {
            self.spec.build.threads
        } else {
            threads
        };
        Session::new(&self.load()?, threads)
    }

    /// (name, shape) of every parameter, in the order of the parameter region.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.compiled
            .memory
            .params
            .iter()
            .map(|p| (p.name.clone(), p.shape.clone()))
            .collect()
    }

    pub fn init_weights(&self, seed: u64) -> Weights {
        Weights::init(&self.spec.model, &self.param_shapes(), seed)
    }
}

/// The default build directory of a spec: `build/<name>`.
pub fn default_dir(spec: &Spec) -> PathBuf {
    PathBuf::from("build").join(&spec.model.name)
}

/// Read a built directory's inspect.json.
pub fn read_inspect(dir: &Path) -> Result<serde_json::Value> {
    let p = dir.join("inspect.json");
    if !crate::util::is_there(&p) {
        crate::bail!(
            "{}: no such file (is this a directory `irc build` wrote?)",
            p.display()
        );
    }
    let text = crate::util::read_user_text(&p)?;
    serde_json::from_str(&text).at(p.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        let src = "[model]\nfamily = \"gpt2\"\nvocab_size = 96\ncontext = 32\nlayers = 2\nd_model = 64\nheads = 4\n[build]\nbatch = 2\n";
        Spec::parse(Path::new("m.toml"), src).unwrap()
    }

    #[test]
    fn memory_is_blamed_on_what_takes_most_of_it() {
        let f = |params, acts| Footprint {
            params,
            forward_acts: acts,
            train_acts: acts,
        };
        let s = spec();
        assert_eq!(f(100, 1000).run().blame(&s), ("build", "batch"));
        // The embeddings (96 x 64) are most of 10k parameters; not of 1M.
        assert_eq!(f(10_000, 0).run().blame(&s), ("model", "vocab_size"));
        assert_eq!(f(1_000_000, 0).train().blame(&s), ("model", "layers"));
    }
}
