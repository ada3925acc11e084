//! A build folder is replaced whole or not at all: a rebuild that fails
//! (no C compiler, a C compiler error) leaves the previous build folder
//! byte-identical and no temporary behind, and what a killed build left is
//! cleaned up (or put back) by the next one.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

/// `irc build spec -o b` in `d`, with the library cache in `d/cache` and
/// `env` set.
fn build(d: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_irc"));
    c.args(["build", "m.toml", "-o", "b"])
        .current_dir(d)
        .env("IRC_CACHE", d.join("cache"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Every file of `dir` and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// The temporaries beside the build folder.
fn temporaries(d: &Path) -> Vec<String> {
    std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".irc-tmp-"))
        .collect()
}

fn spec(d: &Path, layers: usize) {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny-gpt2.toml"),
    )
    .unwrap()
    .replace("layers = 2", &format!("layers = {layers}"));
    assert!(src.contains(&format!("layers = {layers}")));
    std::fs::write(d.join("m.toml"), src).unwrap();
}

/// A rebuild that fails: exit 1, no panic, the old folder as it was and no
/// temporary left.
fn fails_leaving(d: &Path, env: &[(&str, &str)], before: &BTreeMap<String, Vec<u8>>, want: &str) {
    let o = build(d, env);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{env:?}: {err}");
    assert!(
        !err.contains("panicked") && err.contains(want),
        "{env:?}: {err}"
    );
    let after = snapshot(&d.join("b"));
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "{env:?}"
    );
    assert!(
        after == *before,
        "{env:?}: a failed rebuild changed the build folder"
    );
    assert_eq!(temporaries(d), Vec::<String>::new(), "{env:?}");
}

#[test]
fn a_failed_rebuild_leaves_the_previous_build_folder_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    spec(d, 2);
    let o = build(d, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = snapshot(&d.join("b"));
    assert!(before.contains_key("libirc_model.so") && before.contains_key("model.c"));
    // A spec change (new C, not in the cache) that then cannot compile.
    spec(d, 3);
    fails_leaving(
        d,
        &[("CC", "/bin/false")],
        &before,
        "compiling model.c failed",
    );
    fails_leaving(
        d,
        &[("CFLAGS", "-include /nonexistent/irc-test.h")],
        &before,
        "compiling model.c failed",
    );
    // A file the user put in the folder is not thrown away by a rebuild.
    std::fs::write(d.join("b/host.c"), "int main(void) { return 0; }\n").unwrap();
    let mut with_host = before.clone();
    with_host.insert("host.c".into(), std::fs::read(d.join("b/host.c")).unwrap());
    spec(d, 2);
    fails_leaving(
        d,
        &[],
        &with_host,
        "b: holds `host.c`, which a build does not write; a build replaces the whole folder, \
         so move it out or build into another folder",
    );
    std::fs::remove_file(d.join("b/host.c")).unwrap();

    // What a killed build leaves: an unfinished temporary (removed), and a
    // build folder renamed aside before the new one was renamed in (put back).
    std::fs::create_dir(d.join(".irc-tmp-b-Xy12z9")).unwrap();
    std::fs::write(d.join(".irc-tmp-b-Xy12z9/model.c"), "half").unwrap();
    std::fs::rename(d.join("b"), d.join(".irc-tmp-b.old")).unwrap();
    spec(d, 3);
    fails_leaving(
        d,
        &[("CC", "/bin/false")],
        &before,
        "compiling model.c failed",
    );
    // With the old folder back in place, a stale aside copy is just removed.
    std::fs::create_dir(d.join(".irc-tmp-b.old")).unwrap();
    spec(d, 2);
    let o = build(d, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(temporaries(d), Vec::<String>::new());
    // The same folder again, but for the manifest's build time and cache hit.
    let without_manifest = |mut s: BTreeMap<String, Vec<u8>>| {
        s.remove("manifest.json");
        s
    };
    assert!(
        without_manifest(snapshot(&d.join("b"))) == without_manifest(before),
        "the same spec rebuilds the same folder"
    );
}
