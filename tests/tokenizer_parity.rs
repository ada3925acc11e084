//! Parity with the reference: the Python `tokenizers` package loads irc's
//! `tokenizer.json` and must produce the same ids (and decode to the same
//! text). Skipped, with a message, when `python3 -c "import tokenizers"` fails.

use irc::data::{read_rows, row_samples};
use irc::tokenizer::{train::train, Alphabet, PreSplit, TokenizerConfig};
use std::path::PathBuf;
use std::process::Command;

fn python_has_tokenizers() -> bool {
    Command::new("python3")
        .args(["-c", "import tokenizers"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

const SCRIPT: &str = r#"
import json, sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1])
texts = json.load(open(sys.argv[2]))
out = []
for s in texts:
    ids = t.encode(s).ids
    out.append({"ids": ids, "text": t.decode(ids, skip_special_tokens=False)})
json.dump(out, open(sys.argv[3], "w"))
"#;

fn check(split: PreSplit, alphabet: Alphabet, vocab: usize, specials: &[&str], extra: &[&str]) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let rows = read_rows(&root.join("corpus/tabler/icons.jsonl")).unwrap();
    let samples = row_samples(&rows);
    let cfg = TokenizerConfig {
        vocab_size: vocab,
        alphabet,
        special_tokens: specials.iter().map(|s| s.to_string()).collect(),
        pre_split: split,
        ..TokenizerConfig::default()
    };
    let (tok, _) = train(&samples, &cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tj = dir.path().join("tokenizer.json");
    tok.save(&tj).unwrap();
    let mut texts: Vec<String> = samples.clone();
    texts.extend(extra.iter().map(|s| s.to_string()));
    let mut rng = irc::util::Rng::new(11);
    for _ in 0..300 {
        let n = rng.below(60) as usize;
        let s: String = (0..n)
            .map(|_| {
                let pool = b" \t\n\r  abcXYZ0123456789<>/=\"'.-,[]:;svgpathdM";
                pool[rng.below(pool.len() as u64) as usize] as char
            })
            .collect();
        texts.push(s);
    }
    let inp = dir.path().join("in.json");
    let outp = dir.path().join("out.json");
    std::fs::write(&inp, serde_json::to_string(&texts).unwrap()).unwrap();
    let script = dir.path().join("enc.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let o = Command::new("python3")
        .arg(&script)
        .arg(&tj)
        .arg(&inp)
        .arg(&outp)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&outp).unwrap()).unwrap();
    let mut total = 0;
    for (s, g) in texts.iter().zip(&got) {
        let ours = tok.encode_str(s).unwrap();
        let theirs: Vec<u32> = serde_json::from_value(g["ids"].clone()).unwrap();
        assert_eq!(ours, theirs, "ids differ for {s:?}");
        assert_eq!(
            g["text"].as_str().unwrap(),
            s,
            "HF decode differs for {s:?}"
        );
        total += ours.len();
    }
    println!(
        "parity {split:?} {alphabet:?}/{vocab}: {} texts, {total} ids identical",
        texts.len()
    );
}

#[test]
fn same_ids_as_hf_tokenizers() {
    if !python_has_tokenizers() {
        println!("SKIPPED tokenizer parity: the Python `tokenizers` package is not installed (pip install tokenizers)");
        return;
    }
    let extra = [
        "a  b   c",
        "x \n\ny \t z  ",
        "it's they're we'll I'd",
        "héllo wörld 日本語 ١٢٣ 123",
        "<eos><pad>[circle][palette:cool]<svg>[circle]</svg><eos>",
        "[circle[palette:cool]]",
        "   ",
        "",
    ];
    check(
        PreSplit::Gpt2,
        Alphabet::Bytes,
        1024,
        &["[circle]", "[palette:cool]"],
        &extra,
    );
    check(PreSplit::Gpt2, Alphabet::Bytes, 640, &[], &extra);
    check(
        PreSplit::Gpt2,
        Alphabet::Ascii,
        640,
        &["[circle]"],
        &extra[..3],
    );
    // Numbers whole: signs, leading points, a point without digits after,
    // runs of dots and dashes, numbers glued to letters.
    let numeric = [
        "M 8.5 5.5 a .5 .5 0 0 0 -1 0 v 3.362 l -1.429 2.38 z",
        "M8.5-5.5a.5.5 0 0 0-1 0 1. 2.. -.5 --3 - . ..5 1e-3 x2.5y",
        "stroke-width=\"1.5\" 12.474-3.273 0.602.602",
    ];
    let mut both = extra.to_vec();
    both.extend(numeric);
    check(
        PreSplit::Numbers,
        Alphabet::Bytes,
        1024,
        &["[circle]"],
        &both,
    );
    check(PreSplit::Numbers, Alphabet::Ascii, 640, &[], &numeric);
}

#[test]
fn hf_drops_unknown_bytes_but_irc_refuses() {
    if !python_has_tokenizers() {
        println!("SKIPPED: the Python `tokenizers` package is not installed");
        return;
    }
    let (tok, _) = train(
        &["<svg></svg>", "<svg></svg>"],
        &TokenizerConfig {
            vocab_size: 120,
            alphabet: Alphabet::Ascii,
            ..TokenizerConfig::default()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tj = dir.path().join("t.json");
    tok.save(&tj).unwrap();
    let code = format!(
        "from tokenizers import Tokenizer; t=Tokenizer.from_file({:?}); print(t.decode(t.encode('a\u{e9}b').ids))",
        tj.display().to_string()
    );
    let o = Command::new("python3")
        .args(["-c", &code])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "ab",
        "HF silently drops the byte"
    );
    assert!(
        tok.encode_str("a\u{e9}b").is_err(),
        "irc raises an error instead"
    );
}
