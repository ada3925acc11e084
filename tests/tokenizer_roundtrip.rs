//! Tokenizer: lossless roundtrip (property tests and the whole corpus),
//! special tokens, determinism, vocab sizes, alphabets, save/load.

use irc::data::{read_rows, row_samples};
use irc::tokenizer::{train::train, Alphabet, Tokenizer, TokenizerConfig};
use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::OnceLock;

fn corpus() -> Vec<String> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/tabler/icons.jsonl");
    row_samples(&read_rows(&p).unwrap())
}

fn cfg(vocab: usize, alphabet: Alphabet, specials: &[&str]) -> TokenizerConfig {
    TokenizerConfig {
        vocab_size: vocab,
        alphabet,
        special_tokens: specials.iter().map(|s| s.to_string()).collect(),
        ..TokenizerConfig::default()
    }
}

fn bytes_tok() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| {
        train(
            &corpus(),
            &cfg(1024, Alphabet::Bytes, &["[circle]", "[palette:cool]"]),
        )
        .unwrap()
        .0
    })
}

fn ascii_tok() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| {
        train(&corpus(), &cfg(640, Alphabet::Ascii, &["[circle]"]))
            .unwrap()
            .0
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn roundtrip_random_bytes(x in proptest::collection::vec(any::<u8>(), 0..300)) {
        let t = bytes_tok();
        let ids = t.encode(&x).unwrap();
        prop_assert_eq!(t.decode(&ids).unwrap(), x);
    }

    #[test]
    fn roundtrip_random_ascii(x in "[\t\n\r -~]{0,300}") {
        for t in [bytes_tok(), ascii_tok()] {
            let ids = t.encode(x.as_bytes()).unwrap();
            prop_assert_eq!(t.decode(&ids).unwrap(), x.as_bytes());
        }
    }

    #[test]
    fn roundtrip_svgish(x in "(<svg|<path d=\"|M|l|-|[0-9]{1,3}|\\.| |\"/>|</svg>|\\[circle\\]|<eos>|\n){0,80}") {
        let t = bytes_tok();
        let ids = t.encode(x.as_bytes()).unwrap();
        prop_assert_eq!(t.decode(&ids).unwrap(), x.as_bytes());
    }
}

#[test]
fn roundtrip_whole_corpus() {
    for t in [bytes_tok(), ascii_tok()] {
        let all = corpus().join("\n");
        let ids = t.encode(all.as_bytes()).unwrap();
        assert_eq!(t.decode(&ids).unwrap(), all.as_bytes());
        assert!(
            ids.len() * 2 < all.len(),
            "BPE compresses: {} ids for {} bytes",
            ids.len(),
            all.len()
        );
    }
}

#[test]
fn special_tokens_are_atomic() {
    let t = bytes_tok();
    let eos = t.eos_id().unwrap();
    let circle = t.special_id("[circle]").unwrap();
    let cool = t.special_id("[palette:cool]").unwrap();
    assert_eq!((eos, t.pad_id().unwrap(), circle, cool), (0, 1, 2, 3));
    // Encoded once each, wherever they stand.
    let ids = t
        .encode_str("[circle]<svg/>[palette:cool]<eos>x<eos><eos>[circle")
        .unwrap();
    assert_eq!(ids.iter().filter(|&&i| i == circle).count(), 1);
    assert_eq!(ids.iter().filter(|&&i| i == cool).count(), 1);
    assert_eq!(ids.iter().filter(|&&i| i == eos).count(), 3);
    assert_eq!(ids[0], circle);
    // Never produced by merges: no merge uses or yields a special id, and
    // no ordinary token contains a special's text.
    for &(a, b, c) in t.merges() {
        for s in [a, b, c] {
            assert!(!t.is_special(s), "merge touches special id {s}");
        }
    }
    for id in 0..t.vocab_size() as u32 {
        if t.is_special(id) {
            continue;
        }
        let bytes = t.token_bytes(id).unwrap();
        for (s, _) in t.specials() {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "token {id} holds {s}"
            );
        }
    }
    // Text that only looks like a special token is left alone.
    let ids = t.encode_str("[circl]").unwrap();
    assert!(!ids.contains(&circle));
}

#[test]
fn training_is_deterministic_and_hits_vocab_sizes() {
    let c = corpus();
    for (v, a) in [
        (640, Alphabet::Ascii),
        (640, Alphabet::Bytes),
        (1024, Alphabet::Bytes),
    ] {
        let (t1, _) = train(&c, &cfg(v, a, &[])).unwrap();
        let (t2, _) = train(&c, &cfg(v, a, &[])).unwrap();
        assert_eq!(t1.vocab_size(), v);
        assert_eq!(t1.merges(), t2.merges(), "same corpus, same merges");
        assert_eq!(t1.alphabet(), Some(a));
    }
    // 4096: on a corpus with enough distinct words (icons with jittered numbers).
    let mut rng = irc::util::Rng::new(5);
    let num = regex::Regex::new(r"[0-9]+").unwrap();
    let jittered: Vec<String> = c
        .iter()
        .map(|s| {
            num.replace_all(s, |_: &regex::Captures| rng.below(10_000).to_string())
                .into_owned()
        })
        .collect();
    let (t, _) = train(&jittered, &cfg(4096, Alphabet::Bytes, &[])).unwrap();
    assert_eq!(t.vocab_size(), 4096);
    let (t2, _) = train(&jittered, &cfg(4096, Alphabet::Bytes, &[])).unwrap();
    assert_eq!(t.merges(), t2.merges());
}

#[test]
fn ties_break_on_smallest_pair() {
    // (a,b) and (c,d) both occur twice; (a,b) has the smaller ids and wins,
    // whatever the sample order.
    for samples in [["ab", "cd", "ab", "cd"], ["cd", "cd", "ab", "ab"]] {
        let (t, _) = train(&samples, &cfg(2 + 256 + 1, Alphabet::Bytes, &[])).unwrap();
        assert_eq!(t.merges().len(), 1);
        assert_eq!(t.token_bytes(t.merges()[0].2).unwrap(), b"ab");
    }
}

#[test]
fn ascii_alphabet_rejects_other_bytes() {
    let t = ascii_tok();
    assert_eq!(t.vocab_size(), 640);
    let e = t.encode_str("<svg>é</svg>").unwrap_err();
    assert!(e.to_string().contains("0xC3 at offset 5"), "{e}");
    let e = t.encode(b"ok\x00").unwrap_err();
    assert!(e.to_string().contains("0x00 at offset 2"), "{e}");
    // Training on non-ASCII with the ascii alphabet is an error too.
    assert!(train(&["café"], &cfg(200, Alphabet::Ascii, &[])).is_err());
    // A too-small vocab is an error, not a panic.
    assert!(train(&["abc"], &cfg(50, Alphabet::Bytes, &[])).is_err());
}

#[test]
fn save_load_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    for (i, t) in [bytes_tok(), ascii_tok()].into_iter().enumerate() {
        let p = dir.path().join(format!("t{i}.json"));
        t.save(&p).unwrap();
        let back = Tokenizer::load(&p).unwrap();
        assert_eq!(&back, t);
        let s = corpus()[7].clone();
        assert_eq!(back.encode_str(&s).unwrap(), t.encode_str(&s).unwrap());
    }
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"model\": {\"type\": \"WordPiece\"}}").unwrap();
    let e = Tokenizer::load(&bad).unwrap_err().to_string();
    assert!(e.contains("bad.json") && e.contains("BPE"), "{e}");
    std::fs::write(&bad, "not json").unwrap();
    assert!(Tokenizer::load(&bad).is_err());
    let e = t_decode_err();
    assert!(e.contains("outside the vocabulary"), "{e}");
}

fn t_decode_err() -> String {
    bytes_tok().decode(&[5, 999_999]).unwrap_err().to_string()
}
