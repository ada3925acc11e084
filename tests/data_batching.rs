//! Stage 3: token files, windows, batches, masking, resume, val order, and
//! the cached stage 1 → 3 pipeline.

use irc::data::pipeline::prepare;
use irc::data::prep::{cross_entropy, encode_row, Batcher, EvalBatches, TokenSet, IGNORE};
use irc::data::{DataConfig, Format, Packing, Row};
use irc::tokenizer::{train::train, Tokenizer, TokenizerConfig};

fn tok() -> Tokenizer {
    let rows = irc::data::synth::generate(200, 1);
    let cfg = TokenizerConfig {
        vocab_size: 400,
        special_tokens: irc::data::synth::tags(),
        ..TokenizerConfig::default()
    };
    train(&irc::data::row_samples(&rows), &cfg).unwrap().0
}

fn rows(n: usize, seed: u64) -> Vec<Row> {
    irc::data::synth::generate(n, seed)
}

#[test]
fn token_file_roundtrip_and_corruption() {
    let t = tok();
    let set = TokenSet::build(&rows(50, 2), &t).unwrap();
    assert!(set.prompted);
    assert_eq!(set.rows.len(), 50);
    // Every row ends with <eos>, and matches encode_row.
    let mut at = 0;
    for (r, &(l, p)) in rows(50, 2).iter().zip(&set.rows) {
        let ids = encode_row(r, &t).unwrap();
        assert_eq!(&set.tokens[at..at + l as usize], ids.as_slice());
        assert_eq!(*ids.last().unwrap(), t.eos_id().unwrap());
        assert_eq!(p, 5, "five special-token tags");
        at += l as usize;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("train.tok");
    set.save(&p).unwrap();
    assert_eq!(TokenSet::load(&p).unwrap(), set);
    let mut b = set.to_bytes();
    assert_eq!(&b[..8], b"IRCTOKS\0");
    b.truncate(b.len() - 3);
    assert!(TokenSet::from_bytes(&b)
        .unwrap_err()
        .to_string()
        .contains("header says"));
    let mut b = set.to_bytes();
    b[8] = 9;
    assert!(TokenSet::from_bytes(&b)
        .unwrap_err()
        .to_string()
        .contains("version"));
    std::fs::write(&p, b"junk").unwrap();
    let e = TokenSet::load(&p).unwrap_err().to_string();
    assert!(e.contains("train.tok") && e.contains("magic"), "{e}");
}

#[test]
fn rows_packed_whole_and_masked() {
    let t = tok();
    let mut rs = rows(60, 3);
    rs.push(Row {
        prompt: Some("[circle][red][1][top][small]".into()),
        text: format!("<svg>{}</svg>", "<g/>".repeat(80)),
    });
    let set = TokenSet::build(&rs, &t).unwrap();
    let seq = 128;
    let (wins, dropped) = set.windows(seq, Packing::Rows);
    assert_eq!(dropped, 1, "the over-long row is dropped and counted");
    // Each window holds whole rows: it starts at a row start and ends with <eos>.
    let mut starts = std::collections::HashSet::new();
    let mut s = 0;
    for &(l, _) in &set.rows {
        starts.insert(s);
        s += l as usize;
    }
    for w in &wins {
        let total: usize = w.spans.iter().map(|x| x.1).sum();
        assert!(total <= seq + 1);
        for &(st, l) in &w.spans {
            assert!(starts.contains(&st));
            assert_eq!(set.tokens[st + l - 1], set.eos);
        }
    }
    let eos = t.eos_id().unwrap() as i32;
    let mut b = Batcher::with_options(set.clone(), 4, seq, 1, 9, Packing::Rows, true).unwrap();
    let mb = b.next_micro_batch();
    assert_eq!(mb.inputs.len(), 4 * seq);
    for r in 0..4 {
        let inp = &mb.inputs[r * seq..(r + 1) * seq];
        let tgt = &mb.targets[r * seq..(r + 1) * seq];
        // Prompt tokens (ids of the tag specials) never appear as targets.
        for &x in tgt {
            if x != IGNORE {
                assert!(!t.is_special(x as u32) || x == eos, "prompt/pad target {x}");
            }
        }
        // Padding: inputs <pad> and ignored targets.
        let pad = t.pad_id().unwrap() as i32;
        for i in 0..seq {
            if inp[i] == pad {
                assert_eq!(tgt[i], IGNORE);
            }
        }
        // Targets are inputs shifted by one where not ignored.
        for i in 0..seq - 1 {
            if tgt[i] != IGNORE {
                assert_eq!(tgt[i], inp[i + 1]);
            }
        }
    }
    // Without mask_prompt the tags are targets too.
    let mut b2 = Batcher::with_options(set, 4, seq, 1, 9, Packing::Rows, false).unwrap();
    let mb2 = b2.next_micro_batch();
    assert_eq!(mb.inputs, mb2.inputs);
    assert!(mb2.unmasked() > mb.unmasked());
}

#[test]
fn seeded_batches_reproduce_and_resume() {
    let t = tok();
    let set = TokenSet::build(&rows(120, 4), &t).unwrap();
    let mk =
        |seed| Batcher::with_options(set.clone(), 3, 32, 2, seed, Packing::Stream, false).unwrap();
    let (mut a, mut b, mut c) = (mk(5), mk(5), mk(6));
    let n = a.micro_batches_per_epoch() * 2 + 3;
    let xs: Vec<_> = (0..n).map(|_| a.next_micro_batch()).collect();
    let ys: Vec<_> = (0..n).map(|_| b.next_micro_batch()).collect();
    assert_eq!(xs, ys, "same seed, same batches");
    assert_ne!(
        xs[0].inputs,
        c.next_micro_batch().inputs,
        "another seed, another order"
    );
    assert_eq!(a.epoch(), 2);
    assert_eq!(
        (xs[1].step, xs[1].micro, xs[2].step, xs[2].micro),
        (0, 1, 1, 0)
    );
    // Every window is served once per epoch.
    let mut d = mk(5);
    let w = d.windows();
    let mut seen = std::collections::HashMap::new();
    let per_epoch: Vec<_> = (0..w.div_ceil(3)).map(|_| d.next_micro_batch()).collect();
    for mb in &per_epoch {
        for r in 0..3 {
            *seen
                .entry(mb.inputs[r * 32..(r + 1) * 32].to_vec())
                .or_insert(0) += 1;
        }
    }
    assert!(seen.len() >= w - 2);
    // Resume from a checkpointed state: the same batches follow.
    let mut e = mk(5);
    for _ in 0..7 {
        e.next_micro_batch();
    }
    let st = e.state();
    let json = serde_json::to_string(&st).unwrap();
    let after: Vec<_> = (0..n).map(|_| e.next_micro_batch()).collect();
    let mut f = mk(123);
    f.restore(&serde_json::from_str(&json).unwrap()).unwrap();
    let again: Vec<_> = (0..n).map(|_| f.next_micro_batch()).collect();
    assert_eq!(after, again);
    // Stream windows: length seq+1 with stride seq.
    let (wins, _) = set.windows(32, Packing::Stream);
    assert_eq!(wins[1].spans[0], (32, 33));
}

#[test]
fn no_window_crosses_train_into_val_and_val_is_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataConfig {
        format: Format::Synthetic,
        synth_count: 300,
        seed: 3,
        ..DataConfig::default()
    };
    let tokc = TokenizerConfig {
        vocab_size: 400,
        special_tokens: irc::data::synth::tags(),
        ..TokenizerConfig::default()
    };
    let out = dir.path().join("prep");
    let p = prepare(&data, &tokc, &out).unwrap();
    assert_eq!(p.ran, [true, true, true]);
    let tr = TokenSet::load(&p.train).unwrap();
    let va = TokenSet::load(&p.val).unwrap();
    let t = Tokenizer::load(&p.tokenizer).unwrap();
    // Train windows are made only of train rows; val windows only of val rows.
    let train_rows = irc::data::read_rows(&out.join("train.jsonl")).unwrap();
    let val_rows = irc::data::read_rows(&out.join("val.jsonl")).unwrap();
    assert_eq!(tr.rows.len(), train_rows.len());
    assert_eq!(va.rows.len(), val_rows.len());
    let val_ids: std::collections::HashSet<Vec<u32>> = val_rows
        .iter()
        .map(|r| encode_row(r, &t).unwrap())
        .collect();
    let mut b = Batcher::new(tr.clone(), 4, 128, 1, 1).unwrap();
    for _ in 0..b.micro_batches_per_epoch() {
        let mb = b.next_micro_batch();
        for r in 0..4 {
            let inp: Vec<u32> = mb.inputs[r * 128..(r + 1) * 128]
                .iter()
                .map(|&x| x as u32)
                .collect();
            for v in &val_ids {
                assert!(
                    !inp.windows(v.len()).any(|w| w == v.as_slice()),
                    "a val row inside a train window"
                );
            }
        }
    }
    // Val batches come in order and cover every val token once.
    let ev = EvalBatches::new(va.clone(), 4, 128, Packing::Auto, false).unwrap();
    let n = ev.len();
    let batches: Vec<_> = ev.collect();
    assert_eq!(batches.len(), n);
    let mut got = Vec::new();
    for mb in &batches {
        for r in 0..4 {
            let inp = &mb.inputs[r * 128..(r + 1) * 128];
            if inp[0] as u32 == va.pad {
                continue; // a filler row of the last batch
            }
            // Prompted rows are packed whole after a leading <eos>, as
            // generation starts.
            assert_eq!(inp[0] as u32, va.eos, "a rows window starts with <eos>");
            got.extend(
                inp[1..]
                    .iter()
                    .filter(|&&x| x as u32 != va.pad)
                    .map(|&x| x as u32),
            );
        }
    }
    assert_eq!(got, va.tokens, "val served in order, every token once");
    assert_eq!(
        EvalBatches::new(va, 4, 128, Packing::Auto, false)
            .unwrap()
            .collect::<Vec<_>>(),
        batches
    );

    // A rerun does nothing; a changed option reruns from that stage on.
    let p2 = prepare(&data, &tokc, &out).unwrap();
    assert_eq!(p2.ran, [false, false, false]);
    let tokc2 = TokenizerConfig {
        vocab_size: 410,
        ..tokc.clone()
    };
    assert_eq!(
        prepare(&data, &tokc2, &out).unwrap().ran,
        [false, true, true]
    );
    // Exemplars shape the token files only: the prompts gain their picks
    // (never a row of the same prompt), the rows stay the same.
    let ex = DataConfig {
        exemplars: true,
        ..data.clone()
    };
    let p3 = prepare(&ex, &tokc2, &out).unwrap();
    assert_eq!(p3.ran, [false, false, true]);
    let t = Tokenizer::load(&p3.tokenizer).unwrap();
    for (path, rows) in [(&p3.train, &train_rows), (&p3.val, &val_rows)] {
        let set = TokenSet::load(path).unwrap();
        assert_eq!(set.rows.len(), rows.len());
        let mut at = 0usize;
        for ((len, plen), row) in set.rows.iter().zip(rows.iter()) {
            let ids = &set.tokens[at..at + *plen as usize];
            at += *len as usize;
            let prompt = String::from_utf8(t.decode(ids).unwrap()).unwrap();
            let own = row.prompt.as_deref().unwrap();
            assert!(
                prompt.starts_with("<like>") && prompt.ends_with(&format!("</like>{own}")),
                "{prompt}"
            );
            let pick = &prompt["<like>".len()..];
            assert!(
                !pick.starts_with(&format!("{own}<")),
                "conditioned on its own prompt: {prompt}"
            );
            if std::ptr::eq(rows, &train_rows) {
                assert!(
                    !prompt.contains(&row.text),
                    "a training row conditioned on itself"
                );
            }
        }
    }
    assert_eq!(
        prepare(&ex, &tokc2, &out).unwrap().ran,
        [false, false, false]
    );
    assert_eq!(
        prepare(&data, &tokc2, &out).unwrap().ran,
        [false, false, true]
    );
    let data2 = DataConfig {
        val_ratio: 0.2,
        ..data
    };
    assert_eq!(
        prepare(&data2, &tokc2, &out).unwrap().ran,
        [true, true, true]
    );
}

#[test]
fn cross_entropy_ignores_masked_targets_like_pytorch() {
    // Two rows, V = 3; the second target is ignored.
    let logits = [1.0f32, 2.0, 3.0, 0.5, 0.5, 0.5, 0.0, 0.0, 4.0];
    let targets = [2, IGNORE, 0];
    let l0 = -(3.0f64 - (1f64.exp() + 2f64.exp() + 3f64.exp()).ln());
    let l2 = -(0.0f64 - (2.0 + 4f64.exp()).ln());
    let ce = cross_entropy(&logits, &targets, 3);
    assert!((ce - (l0 + l2) / 2.0).abs() < 1e-9, "{ce}");
    assert!(cross_entropy(&logits[..3], &[IGNORE], 3).is_nan());
    // torch.nn.functional.cross_entropy(logits, targets, ignore_index=-100)
    // gives the same mean over the two counted rows:
    assert!((ce - 2.221_791_132).abs() < 1e-8, "{ce}");
}
