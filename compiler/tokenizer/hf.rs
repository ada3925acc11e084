//! Hugging Face `tokenizer.json` for byte-level BPE: written so that
//! `tokenizers.Tokenizer.from_file` encodes exactly as [`super::Tokenizer`]
//! does (model BPE, `byte_fallback: false`, pre-tokenizer and decoder
//! `ByteLevel` with `add_prefix_space: false`, `use_regex: true`, special
//! tokens in `added_tokens` with `special: true` and also in the vocab).

use super::bytelevel::{from_chars, to_chars, PreSplit};
use super::{Id, Tokenizer};
use crate::bail;
use crate::error::Result;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Serialize to the `tokenizer.json` text.
pub fn to_json(t: &Tokenizer) -> String {
    let n = t.vocab_size() as Id;
    let name = |id: Id| -> String {
        if t.is_special(id) {
            String::from_utf8_lossy(t.token_bytes(id).unwrap()).into_owned()
        } else {
            to_chars(t.token_bytes(id).unwrap())
        }
    };
    // The vocab object is written by hand to keep id order in the file.
    let mut vocab = String::from("{");
    for id in 0..n {
        if id > 0 {
            vocab.push(',');
        }
        vocab.push_str("\n      ");
        vocab.push_str(&serde_json::to_string(&name(id)).unwrap());
        vocab.push_str(&format!(": {id}"));
    }
    vocab.push_str("\n    }");
    let merges: Vec<String> = t
        .merges()
        .iter()
        .map(|&(a, b, _)| format!("{} {}", name(a), name(b)))
        .collect();
    let added: Vec<Value> = t
        .specials()
        .iter()
        .map(|(s, id)| {
            json!({"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": true})
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true});
    let pre_tokenizer = match t.split().hf_pattern() {
        None => byte_level.clone(),
        Some(p) => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": p}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
        ]}),
    };
    let model_head = json!({
        "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
        "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
    });
    let head = serde_json::to_string_pretty(&model_head).unwrap();
    let head = head
        .trim_end_matches('}')
        .trim_end()
        .to_string()
        .replace("\n", "\n  ");
    format!(
        "{{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": {},\n  \
         \"normalizer\": null,\n  \"pre_tokenizer\": {},\n  \"post_processor\": null,\n  \"decoder\": {},\n  \
         \"model\": {},\n    \"vocab\": {},\n    \"merges\": {}\n  }}\n}}\n",
        serde_json::to_string(&added).unwrap(),
        pre_tokenizer,
        byte_level,
        head,
        vocab,
        serde_json::to_string_pretty(&merges).unwrap().replace("\n", "\n    "),
    )
}

/// The pre-split a `pre_tokenizer` field stands for: `ByteLevel` with its
/// regex (GPT-2), or the `Sequence` of the `numbers` `Split` and a
/// `ByteLevel` without regex that [`to_json`] writes.
fn pre_split(v: &Value) -> Result<PreSplit> {
    if v.get("type").and_then(Value::as_str) != Some("Sequence") {
        check_byte_level(v, "pre_tokenizer")?;
        return Ok(PreSplit::Gpt2);
    }
    let parts = v.get("pretokenizers").and_then(Value::as_array);
    let [split, bl] = parts.map(Vec::as_slice).unwrap_or(&[]) else {
        bail!("pre_tokenizer: only a Sequence of Split then ByteLevel is supported");
    };
    let want = PreSplit::Numbers.hf_pattern();
    let pattern = split.pointer("/pattern/Regex").and_then(Value::as_str);
    if split.get("type").and_then(Value::as_str) != Some("Split")
        || pattern != want.as_deref()
        || split.get("behavior").and_then(Value::as_str) != Some("Isolated")
        || split.get("invert").and_then(Value::as_bool) == Some(true)
    {
        bail!("pre_tokenizer.pretokenizers[0]: only irc's `numbers` Split (Isolated) is supported");
    }
    let ty = bl.get("type").and_then(Value::as_str);
    if ty != Some("ByteLevel")
        || bl.get("use_regex").and_then(Value::as_bool) != Some(false)
        || bl.get("add_prefix_space").and_then(Value::as_bool) == Some(true)
    {
        bail!("pre_tokenizer.pretokenizers[1] must be ByteLevel with use_regex = false and no prefix space");
    }
    Ok(PreSplit::Numbers)
}

fn check_byte_level(v: &Value, what: &str) -> Result<()> {
    let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
    if ty != "ByteLevel" {
        bail!(
            "{what} must be ByteLevel (found {})",
            if ty.is_empty() { "none" } else { ty }
        );
    }
    if v.get("add_prefix_space").and_then(Value::as_bool) == Some(true) {
        bail!("{what}: add_prefix_space = true is not supported");
    }
    if v.get("use_regex").and_then(Value::as_bool) == Some(false) {
        bail!("{what}: use_regex = false is not supported");
    }
    Ok(())
}

/// Parse a `tokenizer.json`. Only the byte-level BPE subset irc writes is
/// accepted; anything else is an error naming the field.
pub fn from_json(text: &str) -> Result<Tokenizer> {
    let v: Value = serde_json::from_str(text)?;
    let model = v
        .get("model")
        .ok_or_else(|| crate::Error::new("no `model` field"))?;
    if model.get("type").and_then(Value::as_str) != Some("BPE") {
        bail!("model.type must be \"BPE\"");
    }
    if model.get("byte_fallback").and_then(Value::as_bool) == Some(true) {
        bail!("model.byte_fallback = true is not supported");
    }
    for f in ["continuing_subword_prefix", "end_of_word_suffix"] {
        if model.get(f).is_some_and(|x| !x.is_null()) {
            bail!("model.{f} is not supported");
        }
    }
    if model.get("ignore_merges").and_then(Value::as_bool) == Some(true) {
        bail!("model.ignore_merges = true is not supported");
    }
    if v.get("normalizer").is_some_and(|x| !x.is_null()) {
        bail!("normalizer must be null");
    }
    let split = pre_split(v.get("pre_tokenizer").unwrap_or(&Value::Null))?;
    let Some(vmap) = model.get("vocab").and_then(Value::as_object) else {
        bail!("model.vocab must be an object")
    };
    let mut specials: Vec<(String, u64)> = Vec::new();
    if let Some(added) = v.get("added_tokens").and_then(Value::as_array) {
        for (i, a) in added.iter().enumerate() {
            let content = a.get("content").and_then(Value::as_str);
            let id = a.get("id").and_then(Value::as_u64);
            let (Some(c), Some(id)) = (content, id) else {
                bail!("added_tokens[{i}] needs content and id")
            };
            if a.get("special").and_then(Value::as_bool) != Some(true) {
                bail!("added_tokens[{i}] `{c}`: only special added tokens are supported");
            }
            specials.push((c.to_string(), id));
        }
    }
    // Ids run 0..n without a gap, so none is past the tokens listed: check
    // before allocating (an id of 4e8 would take gigabytes) or casting.
    let listed = vmap.len() + specials.len();
    if let Some((c, id)) = specials.iter().find(|&&(_, id)| id >= listed as u64) {
        bail!("added_tokens: `{c}` has id {id}, past the {listed} tokens listed (ids run from 0 without gaps)");
    }
    let specials: Vec<(String, Id)> = specials.into_iter().map(|(c, id)| (c, id as Id)).collect();
    let n = vmap.len().max(
        specials
            .iter()
            .map(|&(_, id)| id as usize + 1)
            .max()
            .unwrap_or(0),
    );
    let mut vocab: Vec<Option<Vec<u8>>> = vec![None; n];
    let mut by_name: HashMap<&str, Id> = HashMap::new();
    for (s, id) in &specials {
        vocab[*id as usize] = Some(s.as_bytes().to_vec());
    }
    for (k, id) in vmap {
        let Some(id) = id.as_u64().filter(|&i| (i as usize) < n) else {
            bail!("model.vocab[{k:?}]: bad id")
        };
        by_name.insert(k.as_str(), id as Id);
        if specials.iter().any(|(_, s)| *s == id as Id) {
            continue;
        }
        let Some(bytes) = from_chars(k) else {
            bail!("model.vocab[{k:?}] is not a byte-level token")
        };
        if vocab[id as usize].is_some() {
            bail!("model.vocab: id {id} used twice");
        }
        vocab[id as usize] = Some(bytes);
    }
    let vocab: Vec<Vec<u8>> = vocab
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            t.ok_or_else(|| crate::Error::new(format!("model.vocab: no token has id {i}")))
        })
        .collect::<Result<_>>()?;
    let mut merges = Vec::new();
    let Some(ms) = model.get("merges").and_then(Value::as_array) else {
        bail!("model.merges must be an array")
    };
    for (r, m) in ms.iter().enumerate() {
        let (a, b) = match m {
            Value::String(s) => match s.split_once(' ') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => bail!("model.merges[{r}] `{s}` is not `a b`"),
            },
            Value::Array(p) if p.len() == 2 => match (p[0].as_str(), p[1].as_str()) {
                (Some(a), Some(b)) => (a.to_string(), b.to_string()),
                _ => bail!("model.merges[{r}] is not a pair of strings"),
            },
            _ => bail!("model.merges[{r}] is not a merge"),
        };
        let look = |s: &str| {
            by_name.get(s).copied().ok_or_else(|| {
                crate::Error::new(format!("model.merges[{r}]: `{s}` is not in the vocab"))
            })
        };
        let (ia, ib) = (look(&a)?, look(&b)?);
        let c = look(&format!("{a}{b}"))?;
        merges.push((ia, ib, c));
    }
    Ok(Tokenizer::from_parts(vocab, specials, merges)?.with_split(split))
}
