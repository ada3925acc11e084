//! Training checkpoints (`irc::train::checkpoint`): byte-reproducible
//! across processes, checksummed and verified on every read, `--resume`
//! from the newest valid one (naming those it skipped), and the
//! temporaries of interrupted writes removed by the next run.

mod common;

use common::tiny_train::{self, train_ok};
use irc::runtime::{ParamEntry, Weights};
use irc::train::checkpoint;
use std::collections::BTreeMap;
use std::path::Path;

/// Two parameters, as a model's table would list them.
fn table() -> Vec<ParamEntry> {
    let entry = |name: &str, shape: &[usize], offset| ParamEntry {
        name: name.into(),
        shape: shape.to_vec(),
        offset,
        numel: shape.iter().product(),
    };
    vec![entry("a.weight", &[2, 3], 0), entry("b.bias", &[3], 6)]
}

fn sealed(step: usize) -> Vec<u8> {
    let mut w = Weights::default();
    for p in table() {
        let v: Vec<f32> = (0..p.numel).map(|i| i as f32 * 0.25 - 1.0).collect();
        for name in [
            p.name.clone(),
            format!("optimizer.m.{}", p.name),
            format!("optimizer.v.{}", p.name),
        ] {
            w.insert(&name, &p.shape, v.clone());
        }
    }
    let mut meta = BTreeMap::new();
    meta.insert(checkpoint::META_STEP.to_string(), step.to_string());
    meta.insert(
        checkpoint::META_BATCHER.to_string(),
        r#"{"epoch":0,"cursor":1,"micro_batches":2,"epoch_rng":[1,2,3,4]}"#.to_string(),
    );
    meta.insert(checkpoint::META_SPEC.to_string(), "abc".to_string());
    w.to_sealed_bytes(meta).unwrap()
}

#[test]
fn the_same_state_gives_the_same_bytes_in_one_process() {
    // The safetensors crate writes metadata in HashMap order, which changes
    // with each map's random state: many saves would show two orders.
    let first = sealed(3);
    for _ in 0..32 {
        assert_eq!(sealed(3), first);
    }
    let c = checkpoint::from_bytes(&first, &table()).unwrap();
    assert_eq!(c.step, 3);
    // The metadata keys are written sorted.
    let n = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&first[8..8 + n]).unwrap();
    let keys = ["irc.batcher", "irc.sha256", "irc.spec_hash", "irc.step"];
    let at: Vec<usize> = keys.iter().map(|k| header.find(k).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{header}");
}

#[test]
fn any_damaged_byte_is_refused_with_the_file_named() {
    let good = sealed(5);
    let d = tempfile::tempdir().unwrap();
    let table = table();
    let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut checked = 0;
    // A byte of the header's metadata, of a tensor entry, and of the data.
    let step_at = 8
        + std::str::from_utf8(&good[8..8 + n])
            .unwrap()
            .find("\"irc.step\":\"5\"")
            .unwrap()
        + 12;
    for at in [step_at, 8 + n - 20, 8 + n + 3, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        let p = d.path().join(format!("flip-{at}.safetensors"));
        std::fs::write(&p, &bad).unwrap();
        let err = checkpoint::read(&p, &table).unwrap_err().to_string();
        assert!(err.starts_with(&p.display().to_string()), "{err}");
        assert!(
            err.contains("checksum mismatch") || err.contains("not a valid safetensors"),
            "flip at {at}: {err}"
        );
        // Weights::load (irc generate, export) checks it too.
        assert!(Weights::load(&p).is_err(), "flip at {at} loaded");
        checked += 1;
    }
    assert_eq!(checked, 4);
    // Truncated.
    let p = d.path().join("short.safetensors");
    std::fs::write(&p, &good[..good.len() - 4]).unwrap();
    let err = checkpoint::read(&p, &table).unwrap_err().to_string();
    assert!(err.contains("short.safetensors"), "{err}");
}

/// Two processes training the same spec write the same bytes.
#[test]
fn checkpoints_are_byte_identical_across_processes() {
    let d = tempfile::tempdir().unwrap();
    tiny_train::write_spec(d.path(), 4, 2);
    train_ok(d.path(), "a", &[]);
    train_ok(d.path(), "b", &[]);
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    for f in [
        "latest.safetensors",
        "checkpoints/step-000002.safetensors",
        "checkpoints/step-000004.safetensors",
    ] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(x == y, "{f} differs between two processes");
    }
}

fn flip_last_byte(p: &Path) {
    let mut b = std::fs::read(p).unwrap();
    let n = b.len();
    b[n - 1] ^= 0x80;
    std::fs::write(p, b).unwrap();
}

/// `--resume RUN` takes the newest valid checkpoint, says which it passed
/// over and why, and finishes with the uninterrupted run's losses; a
/// damaged file named explicitly is an error naming it.
#[test]
fn resume_takes_the_newest_valid_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    tiny_train::write_spec(dir, 8, 2);
    train_ok(dir, "full", &[]);
    let want = tiny_train::losses(&dir.join("full"));

    train_ok(dir, "run", &["--stop-after", "6"]);
    let run = dir.join("run");
    let latest = run.join("latest.safetensors");
    flip_last_byte(&latest); // step 6: damaged data
    std::fs::write(run.join("checkpoints/step-000006.safetensors"), b"trunc").unwrap();
    flip_last_byte(&run.join("checkpoints/step-000004.safetensors"));

    // Named explicitly: refused, the file named.
    let o = tiny_train::command(dir, "run", &["--resume", "run/latest.safetensors"])
        .output()
        .unwrap();
    let t = tiny_train::text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("run/latest.safetensors: checksum mismatch"),
        "{t}"
    );

    // The run folder: latest, step 6 and step 4 skipped; step 2 resumed.
    let out = train_ok(dir, "run", &["--resume", "run"]);
    for f in [
        "latest.safetensors",
        "checkpoints/step-000006.safetensors",
        "checkpoints/step-000004.safetensors",
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with("resume: skipped") && l.contains(f))
            .unwrap_or_else(|| panic!("no word of skipping {f}:\n{out}"));
        assert!(
            line.contains("checksum mismatch") || line.contains("truncated"),
            "{line}"
        );
    }
    assert_eq!(tiny_train::losses(&run), want);
    assert_eq!(
        std::fs::read(&latest).unwrap(),
        std::fs::read(dir.join("full/latest.safetensors")).unwrap()
    );

    // Nothing valid: an error listing what was skipped.
    for e in std::fs::read_dir(run.join("checkpoints")).unwrap() {
        flip_last_byte(&e.unwrap().path());
    }
    flip_last_byte(&latest);
    let o = tiny_train::command(dir, "run", &["--resume", "run"])
        .output()
        .unwrap();
    let t = tiny_train::text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("no valid checkpoint to resume from"), "{t}");
}

/// A kill during a write leaves a temporary; the next training removes it
/// (and nothing else).
#[test]
fn stale_temporaries_are_removed_at_the_start_of_training() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    tiny_train::write_spec(dir, 3, 1);
    train_ok(dir, "run", &["--stop-after", "1"]);
    let run = dir.join("run");
    let stale = [
        run.join("checkpoints/.irc-tmp-Ab12Cd"),
        run.join("checkpoints/.tmpXy34Zw"),
        run.join(".latest.tmp"),
        run.join(".irc-tmp-Q1w2E3"),
        run.join("data/.irc-tmp-Zz9Yy8"),
    ];
    for p in &stale {
        std::fs::write(p, b"half a checkpoint").unwrap();
    }
    std::fs::write(run.join("notes.txt"), b"mine").unwrap();
    train_ok(dir, "run", &["--resume", "run"]);
    for p in &stale {
        assert!(!p.exists(), "{} was left behind", p.display());
    }
    assert!(run.join("notes.txt").exists());
    assert_eq!(tiny_train::losses(&run).len(), 3);
}

/// The optimizer tensors of a checkpoint are AdamW's moments of each
/// parameter, at the parameter's own place in the moment regions (whose
/// stride is the padded `NUM_PARAMS`, not the last parameter's end): after
/// one step from zero moments, m = (1 - β1)·g and v = (1 - β2)·g².
#[test]
fn checkpoint_moments_are_each_parameters_own() {
    let spec = irc::spec::Spec::parse(
        Path::new("t.toml"),
        "[model]\nname='ck'\nfamily='gpt2'\nvocab_size=37\ncontext=16\nlayers=2\nd_model=24\nheads=3\nffn_hidden=40\n[build]\nbatch=3\nseq_len=11\n",
    )
    .unwrap();
    let (b, t) = (spec.build.batch, spec.build.seq_len);
    let (tokens, targets) = common::data(&spec, 5);
    let dir = tempfile::tempdir().unwrap();
    let built = common::build(&spec, irc::spec::Target::Native, dir.path());
    let mut s = built.session(1).unwrap();
    s.load_weights(&built.init_weights(3)).unwrap();
    let table = s.library().param_table.clone();
    let last = table.iter().map(|p| p.offset + p.numel).max().unwrap();
    assert!(
        built.compiled.memory.param_floats > last,
        "this model's region has no padding after its last parameter, so it cannot tell the strides apart"
    );
    s.zero_grads();
    s.backward(&tokens, &targets, b, t).unwrap();
    let grads = s.grads().unwrap().to_vec();
    let (beta1, beta2) = (0.9f32, 0.95f32);
    s.adamw_step(&irc::runtime::AdamwConfig {
        lr: 1e-3,
        beta1,
        beta2,
        eps: 1e-8,
        weight_decay: 0.1,
        grad_scale: 1.0,
        clip: 0.0,
        step: 1,
    })
    .unwrap();
    let batcher: irc::data::prep::BatcherState =
        serde_json::from_str(r#"{"epoch":0,"cursor":1,"micro_batches":1,"epoch_rng":[1,2,3,4]}"#)
            .unwrap();
    let path = dir.path().join("ck.safetensors");
    checkpoint::save(&mut s, &spec, 1, &batcher, &path).unwrap();
    let c = checkpoint::read(&path, &table).unwrap();
    for p in &table {
        let g = &grads[p.offset..p.offset + p.numel];
        let m = &c
            .weights
            .get(&format!("optimizer.m.{}", p.name))
            .unwrap()
            .data;
        let v = &c
            .weights
            .get(&format!("optimizer.v.{}", p.name))
            .unwrap()
            .data;
        for i in 0..p.numel {
            let (want_m, want_v) = ((1.0 - beta1) * g[i], (1.0 - beta2) * g[i] * g[i]);
            assert!(
                (m[i] - want_m).abs() <= 1e-5 * want_m.abs() + 1e-30
                    && (v[i] - want_v).abs() <= 1e-5 * want_v.abs() + 1e-30,
                "{}[{i}]: m {} v {} but the gradient {} gives m {want_m} v {want_v}",
                p.name,
                m[i],
                v[i],
                g[i]
            );
        }
    }
}
