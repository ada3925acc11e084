//! The types ops are defined over: node handles and tensor types.

use serde::Serialize;

/// A node (= the tensor it produces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NodeId(pub u32);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "%{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    I32,
}

/// Static shape and element type of a tensor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TensorType {
    pub shape: Vec<usize>,
    pub dtype: DType,
}

impl TensorType {
    pub fn f32(shape: &[usize]) -> Self {
        TensorType {
            shape: shape.to_vec(),
            dtype: DType::F32,
        }
    }
    pub fn i32(shape: &[usize]) -> Self {
        TensorType {
            shape: shape.to_vec(),
            dtype: DType::I32,
        }
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Size of the last axis (1 for a scalar).
    pub fn last(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }
}

impl std::fmt::Display for TensorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        let dt = match self.dtype {
            DType::F32 => "f32",
            DType::I32 => "i32",
        };
        write!(f, "{dt}[{}]", dims.join(","))
    }
}
