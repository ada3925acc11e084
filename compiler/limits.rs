//! The limits irc checks before it allocates or emits anything: what the
//! emitted C can index ([`check_dims`]) and what the machine's memory holds
//! ([`fits_in_memory`]). Each limit is known here and nowhere else; the spec,
//! `irc import` and the build only say where a breach points.

/// The largest dimension, and the largest element count of one tensor, the
/// emitted C can index. Its kernels count rows, columns and loop trips in C
/// `int` (`templates/kernels/*.c.tera`, `runtime-c/irc_gemm.h`) and compute
/// offsets inside one tensor from them; only offsets into the regions (the
/// parameters, activations, cache) are `size_t`. So every tensor of every
/// program must have at most this many elements.
pub const C_INDEX_MAX: u64 = i32::MAX as u64;

/// The most layers a spec may have: model.c spells out every layer's kernel
/// calls (about 17 KB of C a layer for each of the four programs), so a model
/// of more layers is a source no C compiler finishes in reasonable time (200
/// layers take a minute here). The deepest public models have about 130.
pub const MAX_LAYERS: u64 = 1024;

/// The sizes that decide every tensor's shape, as the spec (or a
/// config.json) gives them.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub vocab_size: u64,
    pub context: u64,
    pub layers: u64,
    pub d_model: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub ffn_hidden: u64,
    /// GPT-2 packs q, k and v into one projection (d_model x 3·d_model).
    pub packed_qkv: bool,
    /// Learned positions: a (context, d_model) table.
    pub learned_positions: bool,
    pub batch: u64,
    pub seq_len: u64,
}

/// A spec field that breaks a limit, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    /// `"model"` or `"build"`.
    pub section: &'static str,
    /// The key in that section, e.g. `"vocab_size"`.
    pub key: &'static str,
    pub message: String,
}

impl Breach {
    fn new(section: &'static str, key: &'static str, message: String) -> Breach {
        Breach {
            section,
            key,
            message,
        }
    }

    /// `[section].key`.
    pub fn field(&self) -> String {
        format!("[{}].{}", self.section, self.key)
    }
}

/// Every dimension and every tensor of every program within what the
/// emitted C indexes, and the layers within [`MAX_LAYERS`]; the first
/// breach found.
pub fn check_dims(d: &Dims) -> Result<(), Breach> {
    if d.layers > MAX_LAYERS {
        return Err(Breach::new(
            "model",
            "layers",
            format!(
                "{} layers are more than irc compiles; expected at most {MAX_LAYERS} (model.c spells out every layer's kernel calls)",
                d.layers
            ),
        ));
    }
    for (section, key, v) in single_dims(d) {
        if v > C_INDEX_MAX {
            return Err(Breach::new(
                section,
                key,
                format!("{v} is more than the emitted C can index; expected at most {C_INDEX_MAX} (its loops count in C int)"),
            ));
        }
    }
    for t in largest_tensors(d) {
        // Each factor is within C_INDEX_MAX, so three of them fit in u128.
        let n: u128 = t.factors.iter().map(|&(_, v)| v as u128).product();
        if n > C_INDEX_MAX as u128 {
            let names: Vec<&str> = t.factors.iter().map(|f| f.0).collect();
            let values: Vec<String> = t.factors.iter().map(|f| f.1.to_string()).collect();
            return Err(Breach::new(
                t.section,
                t.key,
                format!(
                    "{} has {n} elements ({} = {}), more than the emitted C can index in one tensor; expected at most {C_INDEX_MAX}",
                    t.what,
                    names.join(" x "),
                    values.join(" x ")
                ),
            ));
        }
    }
    Ok(())
}

fn single_dims(d: &Dims) -> [(&'static str, &'static str, u64); 8] {
    [
        ("model", "vocab_size", d.vocab_size),
        ("model", "context", d.context),
        ("model", "d_model", d.d_model),
        ("model", "heads", d.heads),
        ("model", "kv_heads", d.kv_heads),
        ("model", "ffn_hidden", d.ffn_hidden),
        ("build", "batch", d.batch),
        ("build", "seq_len", d.seq_len),
    ]
}

/// A tensor the lowering makes, as a product of spec sizes, and the field
/// that a breach of it points at (the one a user would lower).
struct TensorSize {
    what: &'static str,
    factors: Vec<(&'static str, u64)>,
    section: &'static str,
    key: &'static str,
}

/// The largest tensors of the four programs (`passes::lower` makes no
/// larger ones; `driver` checks every tensor again after the passes, the
/// prefill step's logits of up to 16 tokens among them): the parameters
/// first, then the activations of (batch x seq_len) tokens.
fn largest_tensors(d: &Dims) -> Vec<TensorSize> {
    let kvd = d.kv_heads * (d.d_model / d.heads.max(1));
    let qkv = if d.packed_qkv {
        ("d_model + 2·kv_heads·head_dim", d.d_model + 2 * kvd)
    } else {
        ("d_model", d.d_model)
    };
    let t = |what, factors, section, key| TensorSize {
        what,
        factors,
        section,
        key,
    };
    let mut v = vec![t(
        "the token embedding",
        vec![("vocab_size", d.vocab_size), ("d_model", d.d_model)],
        "model",
        "vocab_size",
    )];
    if d.learned_positions {
        v.push(t(
            "the position embedding",
            vec![("context", d.context), ("d_model", d.d_model)],
            "model",
            "context",
        ));
    }
    v.extend([
        t(
            "a layer's key/value cache",
            vec![("context", d.context), ("kv_heads·head_dim", kvd)],
            "model",
            "context",
        ),
        t(
            "the attention projection",
            vec![("d_model", d.d_model), qkv],
            "model",
            "d_model",
        ),
        t(
            "an MLP matrix",
            vec![("d_model", d.d_model), ("ffn_hidden", d.ffn_hidden)],
            "model",
            "ffn_hidden",
        ),
    ]);
    let rows = |what, width: (&'static str, u64)| {
        t(
            what,
            vec![("batch", d.batch), ("seq_len", d.seq_len), width],
            "build",
            "batch",
        )
    };
    v.extend([
        rows("the logits tensor", ("vocab_size", d.vocab_size)),
        rows("the MLP activation tensor", ("ffn_hidden", d.ffn_hidden)),
        rows("the attention projection's output", qkv),
    ]);
    v
}

/// The machine's memory in bytes (`MemTotal` of /proc/meminfo), or `None`
/// where it cannot be read (then nothing is refused for its size).
pub fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `bytes` (what `what` needs) fit in the machine's memory; the message
/// gives both sizes.
pub fn fits_in_memory(bytes: u64, what: &str) -> Result<(), String> {
    match machine_memory() {
        Some(have) if bytes > have => Err(format!(
            "{what} needs {}, but this machine has {} of memory (MemTotal in /proc/meminfo)",
            human_bytes(bytes),
            human_bytes(have)
        )),
        _ => Ok(()),
    }
}

/// `1536` → `"1.5 KiB"`: a size in the largest binary unit under it.
pub fn human_bytes(bytes: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dims {
        Dims {
            vocab_size: 96,
            context: 32,
            layers: 2,
            d_model: 64,
            heads: 4,
            kv_heads: 4,
            ffn_hidden: 256,
            packed_qkv: true,
            learned_positions: true,
            batch: 2,
            seq_len: 16,
        }
    }

    #[test]
    fn tiny_fits() {
        assert_eq!(check_dims(&tiny()), Ok(()));
    }

    #[test]
    fn logits_past_int_blame_the_batch() {
        let d = Dims {
            batch: 100_000,
            seq_len: 32,
            vocab_size: 1000,
            ..tiny()
        };
        let b = check_dims(&d).unwrap_err();
        assert_eq!(b.field(), "[build].batch");
        assert!(b.message.contains("3200000000 elements"), "{}", b.message);
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 40), "3.0 TiB");
    }
}
