//! Values the reference semantics compute on: f32 or f64 tensors, and ids.

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// The float types the interpreter runs in.
pub trait Real:
    Copy
    + Debug
    + Default
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + AddAssign
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn tanh(self) -> Self;
    fn sqrt(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn powf(self, e: Self) -> Self;
    /// The error function (the C library's `erf`/`erff`).
    fn erf(self) -> Self;
}

// Rust's std has no erf yet; the C library every target links has.
extern "C" {
    fn erf(x: f64) -> f64;
    fn erff(x: f32) -> f32;
}

macro_rules! real {
    ($t:ty, $erf:ident) => {
        impl Real for $t {
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            fn erf(self) -> Self {
                // SAFETY: a pure libm function of one float.
                unsafe { $erf(self) }
            }
        }
    };
}
real!(f32, erff);
real!(f64, erf);

/// A dense row-major tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

impl<T: Real> Tensor<T> {
    pub fn new(shape: &[usize], data: Vec<T>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "shape {shape:?}"
        );
        Tensor {
            shape: shape.to_vec(),
            data,
        }
    }

    pub fn cast<U: Real>(&self) -> Tensor<U> {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(|x| U::from_f64(x.to_f64())).collect(),
        }
    }
}

/// A value fed to or produced by the interpreter.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<T> {
    F(Tensor<T>),
    I(Vec<i32>),
}

impl<T: Real> Value<T> {
    pub fn f(&self) -> &Tensor<T> {
        match self {
            Value::F(t) => t,
            Value::I(_) => panic!("expected a float value"),
        }
    }
    pub fn ids(&self) -> &[i32] {
        match self {
            Value::I(v) => v,
            Value::F(_) => panic!("expected an id value"),
        }
    }
}
