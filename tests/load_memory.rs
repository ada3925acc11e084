//! Loading a checkpoint never holds the whole file: the peak resident
//! memory (Linux's VmHWM) rises by less than a quarter of the file's size
//! when its tensors go into a region that is already resident, through the
//! Rust loader (`weights::load_into`, what `irc generate` and `irc eval`
//! use) and the C one (runtime-c/irc_safetensors.h, the library's
//! `load_weights`). Reading the file into a buffer first rises by its size.
//! Then a q8_0 library's first prefill: it gives back each f32 weight as it
//! packs it, so the peak rises by far less than the packed weights.
#![cfg(target_os = "linux")]

mod common;

use common::root;
use irc::runtime::{weights::load_into, ParamEntry, Weights};
use std::process::Command;

/// 32 MiB of weights.
const NUMEL: usize = 8 << 20;

/// The tests measure this process's peak, one at a time.
static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Set the peak (VmHWM) back to the present resident size (Linux 4.0 on).
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
}

fn status_kb(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let l = s.lines().find(|l| l.starts_with(key)).unwrap();
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A checkpoint of one tensor `w` of NUMEL floats (with irc's checksum, so
/// the streamed hash is exercised too); its path and its last value.
fn checkpoint(dir: &std::path::Path) -> (std::path::PathBuf, f32) {
    let mut w = Weights::default();
    w.insert("w", &[NUMEL], (0..NUMEL).map(|i| i as f32 * 0.25).collect());
    let bytes = w.to_sealed_bytes(Default::default()).unwrap();
    let path = dir.join("w.safetensors");
    std::fs::write(&path, bytes).unwrap();
    (path, (NUMEL - 1) as f32 * 0.25)
}

#[test]
fn loading_a_checkpoint_streams_it() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (path, last) = checkpoint(dir.path());
    let file_kb = std::fs::metadata(&path).unwrap().len() / 1024;

    // The Rust loader, in this process: the peak set back to the present.
    let table = [ParamEntry {
        name: "w".into(),
        shape: vec![NUMEL],
        offset: 0,
        numel: NUMEL,
    }];
    let mut region = vec![1f32; NUMEL];
    reset_peak();
    let before = status_kb("VmHWM:");
    load_into(&path, &table, &mut region).unwrap();
    let rose = status_kb("VmHWM:") - before;
    assert_eq!(region[NUMEL - 1], last);
    println!("Rust loader: the peak rose {rose} KiB loading {file_kb} KiB");
    assert!(
        rose * 4 < file_kb,
        "the Rust loader's peak rose {rose} KiB for a {file_kb} KiB file"
    );
    drop(region);

    // The C loader, in a process of its own.
    let bin = dir.path().join("load_rss");
    let o = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2"])
        .arg(format!("-I{}", root().join("runtime-c").display()))
        .arg(root().join("tests/c/load_rss.c"))
        .arg("-o")
        .arg(&bin)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(&bin)
        .arg(&path)
        .arg(NUMEL.to_string())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let v: Vec<&str> = out.split_whitespace().collect();
    let rose: u64 = v[0].parse().unwrap();
    assert_eq!(v[1].parse::<f32>().unwrap(), last);
    println!("C loader: the peak rose {rose} KiB loading {file_kb} KiB");
    assert!(
        rose * 4 < file_kb,
        "the C loader's peak rose {rose} KiB for a {file_kb} KiB file"
    );
}

#[test]
fn packing_gives_back_each_weight_as_it_goes() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    // 6.3M parameters (25 MiB) of linear layers, 6.7 MiB packed, the largest 1.1 MiB.
    let spec = irc::spec::Spec::parse(
        std::path::Path::new("w.toml"),
        "[model]\nname = 'w'\nfamily = 'gpt2'\nvocab_size = 256\ncontext = 32\nlayers = 2\nd_model = 512\nheads = 8\n[build]\nbatch = 1\nseq_len = 16\nweights = 'q8_0'\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let built = common::build(&spec, irc::spec::Target::Native, dir.path());
    let mut s = built.session(1).unwrap();
    s.load_weights(&built.init_weights(1)).unwrap();
    let packed_kb = (spec.model.layers * 12 * 512 * 512 * 34 / 32 / 1024) as u64;
    let prompt: Vec<i32> = (0..8).collect();
    reset_peak();
    let before = status_kb("VmRSS:");
    s.prefill(&prompt).unwrap();
    let rose = status_kb("VmHWM:").saturating_sub(before);
    println!("first prefill: the peak rose {rose} KiB packing {packed_kb} KiB of q8_0 weights");
    assert!(
        rose * 3 < packed_kb,
        "the first prefill raised the peak {rose} KiB for {packed_kb} KiB of packed weights"
    );
}
