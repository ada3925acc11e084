//! irc: a model compiler for CPUs.
//!
//! The flow, one module per stage: `spec` (TOML) → `ir` (graph, interpreter)
//! → `passes` (lowering, fusion, dead nodes) → `schedule` → `memory` →
//! `codegen` (C through tera) → `toolchain` (system C compiler) → `runtime`
//! (libloading, weights). Around it: `data`, `tokenizer`, `train`, `eval`,
//! `generate`, `report`, `run` (every stage from one spec, cached), `cli`;
//! `rundir` names every file of a run directory.

pub mod error;
pub mod util;

pub use error::{Error, Result};
pub mod bench;
pub mod cli;
pub mod codegen;
pub mod data;
pub mod dist;
pub mod doctor;
pub mod driver;
pub mod eval;
pub mod evaluate;
#[doc(hidden)]
pub mod fuzzing;
pub mod generate;
pub mod gguf;
pub mod hf;
pub mod ir;
pub mod limits;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod parity;
pub mod passes;
pub mod profile;
pub mod quant;
pub mod render;
pub mod report;
pub mod run;
pub mod rundir;
pub mod runtime;
pub mod sample;
pub mod schedule;
pub mod spec;
pub mod sweep;
pub mod tokenizer;
pub mod toolchain;
pub mod train;
