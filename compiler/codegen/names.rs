//! Named pointers of a program: every buffer a kernel call reads or writes
//! is declared once at the top of the program, named after its tensor and
//! with its shape in the glossary's letters, so a call reads
//! `gemm_3(ctx, h0_attn_qkv, h0_ln_1, h_0_attn_c_attn_weight)` rather than
//! a list of arena offsets.

use crate::ir::{Graph, NodeId};
use crate::memory::{Loc, MemoryPlan, Region};
use std::collections::{HashMap, HashSet};

/// Dimension letters of the file's glossary and their sizes, most
/// specific first, so a shape comment names what an axis means.
pub struct Glossary {
    pub b: usize,
    pub t: usize,
    /// (letter, size) of every other dimension, in order of preference.
    pub dims: Vec<(String, usize)>,
}

impl Glossary {
    /// `(B, T, C)` for a shape: an axis takes a letter when its size is
    /// that letter's (batch and time only in their own places), a
    /// multiple `3C` when it is one, else its number.
    pub fn shape(&self, shape: &[usize]) -> String {
        let rank = shape.len();
        let axis = |i: usize, d: usize| -> String {
            if rank >= 3 && i == 0 && d == self.b {
                return "B".into();
            }
            if rank >= 3 && i == 1 && d == self.t {
                return "T".into();
            }
            if rank == 2 && shape == [self.b, self.t] {
                return ["B", "T"][i].into();
            }
            if let Some((l, _)) = self.dims.iter().find(|(_, n)| *n == d) {
                return l.clone();
            }
            for (l, n) in &self.dims {
                if l.len() == 1 && d.is_multiple_of(*n) && (2..=4).contains(&(d / n)) {
                    return format!("{}{l}", d / n);
                }
            }
            d.to_string()
        };
        let axes: Vec<String> = shape.iter().enumerate().map(|(i, &d)| axis(i, d)).collect();
        format!("({})", axes.join(", "))
    }
}

/// A C identifier from a tensor name: `h0.attn.qkv+bias` -> `h0_attn_qkv_bias`,
/// `transformer.h.0.ln_1.weight` -> `h_0_ln_1_weight` (the HF module prefix dropped).
fn ident(name: &str) -> String {
    let short = name
        .replacen("transformer.", "", 1)
        .replacen("model.", "", 1);
    let mut s = String::new();
    for ch in short.chars() {
        if ch.is_ascii_alphanumeric() {
            s.push(ch);
        } else if !s.ends_with('_') {
            s.push('_');
        }
    }
    let s = s.trim_matches('_').to_string();
    const TAKEN: [&str; 8] = [
        "ctx", "params", "grads", "acts", "ids", "kv", "int", "float",
    ];
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) || TAKEN.contains(&s.as_str()) {
        format!("t_{s}")
    } else {
        s
    }
}

/// The pointers one program declares, in first-use order.
#[derive(Default)]
pub struct Pointers {
    by_key: HashMap<(&'static str, usize, NodeId), String>,
    views: HashMap<NodeId, String>,
    /// The names of the gradient buffers (`dwte_weight`), kept for them:
    /// a partial gradient in the activations is `dwte_weight_1`.
    grads: HashSet<String>,
    used: HashMap<String, usize>,
    /// `float *name = acts + 123; /* (B, T, C) */` lines, after the rank
    /// of their region (parameters, gradients, ids, cache, activations).
    decls: Vec<(usize, String)>,
    bases: Vec<Region>,
}

/// Regions in the order a program declares their pointers.
const REGIONS: [Region; 5] = [
    Region::Params,
    Region::Grads,
    Region::Ids,
    Region::State,
    Region::Acts,
];

fn base(r: Region) -> &'static str {
    match r {
        Region::Params => "params",
        Region::Acts => "acts",
        Region::Ids => "ids",
        Region::Grads => "grads",
        Region::State => "kv",
    }
}

impl Pointers {
    pub fn new(mem: &MemoryPlan) -> Pointers {
        let grads = mem
            .params
            .iter()
            .filter_map(|p| grad_name(mem, p.offset))
            .map(|n| ident(&n))
            .collect();
        Pointers {
            grads,
            ..Default::default()
        }
    }

    fn fresh(&mut self, name: &str, grad: bool) -> String {
        let id = ident(name);
        if grad {
            return id; // one buffer per parameter
        }
        let reserved = self.grads.contains(&id);
        let n = self.used.entry(id.clone()).or_insert(reserved as usize);
        *n += 1;
        if *n == 1 {
            id
        } else {
            format!("{id}_{}", *n - 1)
        }
    }

    /// The name of the buffer at `loc` holding `root` (a tensor, or the
    /// parameter a gradient belongs to), declared on first use.
    pub fn at(&mut self, loc: Loc, root: NodeId, name: &str, shape: &str) -> String {
        if let Some(n) = self.by_key.get(&(base(loc.region), loc.offset, root)) {
            return n.clone();
        }
        let n = self.fresh(name, loc.region == Region::Grads);
        if !self.bases.contains(&loc.region) {
            self.bases.push(loc.region);
        }
        let ty = if loc.region == Region::Ids {
            "const int32_t"
        } else {
            "float"
        };
        let addr = match loc.offset {
            0 => base(loc.region).to_string(),
            o => format!("{} + {o}", base(loc.region)),
        };
        let rank = REGIONS.iter().position(|&r| r == loc.region).unwrap_or(0);
        self.decls
            .push((rank, format!("{ty} *{n} = {addr}; /* {shape} */")));
        self.by_key
            .insert((base(loc.region), loc.offset, root), n.clone());
        n
    }

    /// A pointer inside another (a column block of its rows), declared once.
    pub fn inside(
        &mut self,
        of: &str,
        start: usize,
        key: NodeId,
        name: &str,
        what: &str,
    ) -> String {
        if let Some(n) = self.views.get(&key) {
            return n.clone();
        }
        let n = self.fresh(name, false);
        let addr = match start {
            0 => of.to_string(),
            s => format!("{of} + {s}"),
        };
        self.decls.push((
            REGIONS.len(),
            format!("const float *{n} = {addr}; /* {what} */"),
        ));
        self.views.insert(key, n.clone());
        n
    }

    /// The region bases the declarations read, then the declarations.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = REGIONS
            .into_iter()
            .filter(|r| self.bases.contains(r))
            .map(|r| {
                let ty = if r == Region::Ids {
                    "const int32_t"
                } else {
                    "float"
                };
                let b = base(r);
                format!("{ty} *const {b} = ctx->{b};")
            })
            .collect();
        let mut decls = self.decls.clone();
        decls.sort_by_key(|d| d.0);
        out.extend(decls.into_iter().map(|d| d.1));
        out
    }
}

/// The tensor whose memory `id` is (views resolve to what they view).
pub fn root(g: &Graph, mut id: NodeId) -> NodeId {
    while g.node(id).op.is_view() {
        id = g.node(id).inputs[0];
    }
    id
}

/// The name of a gradient buffer: `d` and its parameter's name.
pub fn grad_name(mem: &MemoryPlan, offset: usize) -> Option<String> {
    mem.params.iter().find(|p| p.offset == offset).map(|p| {
        format!(
            "d{}",
            p.name
                .replacen("transformer.", "", 1)
                .replacen("model.", "", 1)
        )
    })
}
