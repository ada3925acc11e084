//! The compiler's passes: lowering the spec's model into a graph, autodiff,
//! dead-node removal and fusion. [`crate::driver`] runs them in order.

pub mod autodiff;
pub mod bf16;
pub mod dce;
pub mod fusion;
pub mod lower;
pub mod weights;

pub use lower::Program;
