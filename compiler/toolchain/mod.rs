//! The system C compiler: find it (the `cc` crate, which honours `CC` and
//! `CFLAGS`), build a shared and a static library from the emitted sources,
//! and cache the result by a hash of everything that goes into it.

use crate::codegen::{Sources, HEADER_FILE, RUNTIME_C};
use crate::error::{At, Error, Result};
use crate::spec::Target;
use crate::util::{atomic_write, sha256_hex};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const SHARED_LIB: &str = "libirc_model.so";
pub const STATIC_LIB: &str = "libirc_model.a";
pub const MODEL_C: &str = "model.c";

/// The C compiler and the flags a build uses.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub cc: PathBuf,
    pub ar: PathBuf,
    /// Flags every compile gets (warnings as errors, optimization, target).
    pub cflags: Vec<String>,
    /// `cc --version`, part of the cache key.
    pub version: String,
    /// Flags the link of the shared library gets too (the sanitizers').
    pub link_flags: Vec<String>,
}

/// What `irc build --sanitize` adds to the compile and the link:
/// AddressSanitizer and UndefinedBehaviorSanitizer, aborting at the first
/// report, with frames and line numbers in it.
pub const SANITIZE_FLAGS: [&str; 4] = [
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
    "-g",
];

/// Flags that select a SIMD path.
pub fn target_flags(t: Target) -> &'static [&'static str] {
    match t {
        Target::Avx512 => &[
            "-mavx512f",
            "-mavx512bw",
            "-mavx512dq",
            "-mavx512vl",
            "-mavx2",
            "-mfma",
        ],
        Target::Avx2 => &["-mavx2", "-mfma"],
        _ => &[],
    }
}

/// Flags for the int8 dot products of q8_0 weights (`runtime-c/irc_q8.h`)
/// that this CPU has beyond what `target` implies: a `native` build with
/// q8_0 weights uses them (an explicit target keeps to what every CPU of
/// it has, and takes the portable path).
pub fn host_int8_flags(target: Target) -> Vec<&'static str> {
    let mut v = vec![];
    #[cfg(target_arch = "x86_64")]
    {
        if target == Target::Avx512 && std::arch::is_x86_feature_detected!("avx512vnni") {
            v.push("-mavx512vnni");
        }
        if target == Target::Avx2 && std::arch::is_x86_feature_detected!("avxvnni") {
            v.push("-mavxvnni");
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if target == Target::Neon && std::arch::is_aarch64_feature_detected!("dotprod") {
            v.push("-march=armv8.2-a+dotprod");
        }
    }
    let _ = target;
    v
}

fn host_triple() -> String {
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "macos" => format!("{arch}-apple-darwin"),
        _ => format!("{arch}-unknown-linux-gnu"),
    }
}

impl Toolchain {
    /// Find the system compiler for `target` at `opt_level`.
    pub fn find(target: Target, opt_level: u8) -> Result<Toolchain> {
        let triple = host_triple();
        let mut b = cc::Build::new();
        b.target(&triple)
            .host(&triple)
            .opt_level(opt_level as u32)
            .cargo_metadata(false)
            .cargo_warnings(false)
            .debug(false)
            .warnings(false);
        let tool = b
            .try_get_compiler()
            .map_err(|e| Error::new(format!("no C compiler found (set CC to one): {e}")))?;
        let ar = b
            .try_get_archiver()
            .map(|c| PathBuf::from(c.get_program()))
            .unwrap_or_else(|_| PathBuf::from("ar"));
        let cc = tool.path().to_path_buf();
        let version = Command::new(&cc)
            .arg("--version")
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .map_err(|e| Error::new(format!("cannot run the C compiler {}: {e}", cc.display())))?;
        // cc's own flags (-O, -fPIC, and CFLAGS from the environment), then ours.
        let mut cflags: Vec<String> = tool
            .args()
            .iter()
            .map(|a| a.to_string_lossy().to_string())
            .collect();
        cflags.retain(|f| !f.starts_with("-g") && f != "-gdwarf-4");
        cflags.extend(
            [
                "-std=c11",
                "-fPIC",
                "-fopenmp",
                "-fvisibility=hidden",
                "-Wall",
                "-Wextra",
                "-Werror",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        cflags.extend(target_flags(target).iter().map(|s| s.to_string()));
        Ok(Toolchain {
            cc,
            ar,
            cflags,
            version,
            link_flags: vec![],
        })
    }

    /// The same compiler with more flags (part of the cache key).
    pub fn with_flags(mut self, flags: &[&str]) -> Toolchain {
        self.cflags.extend(flags.iter().map(|s| s.to_string()));
        self
    }

    /// The same compiler with [`SANITIZE_FLAGS`] (part of the cache key,
    /// since they are cflags).
    pub fn sanitized(mut self) -> Toolchain {
        let flags: Vec<String> = SANITIZE_FLAGS.iter().map(|s| s.to_string()).collect();
        self.cflags.extend(flags.iter().cloned());
        self.link_flags = flags;
        self
    }

    /// Compile `model.c` in `dir` (beside the runtime headers) into both libraries.
    fn compile(&self, dir: &Path) -> Result<()> {
        let run = |cmd: &mut Command, what: &str| -> Result<()> {
            let out = cmd.output().map_err(|e| {
                Error::new(format!("{what}: cannot run {:?}: {e}", cmd.get_program()))
            })?;
            if !out.status.success() {
                return Err(Error::new(format!(
                    "{what} failed ({}):\n{}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr),
                    String::from_utf8_lossy(&out.stdout)
                )));
            }
            Ok(())
        };
        run(
            Command::new(&self.cc)
                .args(&self.cflags)
                .args(["-c", MODEL_C, "-o", "model.o"])
                .current_dir(dir),
            "compiling model.c",
        )?;
        run(
            Command::new(&self.cc)
                .args(["-shared", "-fopenmp"])
                .args(&self.link_flags)
                .args(["-o", SHARED_LIB, "model.o", "-lm"])
                .current_dir(dir),
            "linking the shared library",
        )?;
        run(
            Command::new(&self.ar)
                .args(["crs", STATIC_LIB, "model.o"])
                .current_dir(dir),
            "archiving the static library",
        )?;
        Ok(())
    }
}

/// `irc-<name>.pc` in `dir`, so `cc host.c $(pkg-config --cflags --libs
/// irc-<name>)` links the static library (with `PKG_CONFIG_PATH` at the
/// build folder), which is at `installed` once the build is complete.
pub fn write_pkg_config(
    dir: &Path,
    installed: &Path,
    name: &str,
    description: &str,
) -> Result<PathBuf> {
    let abs = absolute(installed)?;
    let text = format!(
        "prefix={}\nlibdir=${{prefix}}\nincludedir=${{prefix}}\n\n\
         Name: irc-{name}\nDescription: {description}\nVersion: {}\n\
         Cflags: -I${{includedir}}\nLibs: ${{libdir}}/{STATIC_LIB} -fopenmp -lm\n",
        abs.display(),
        env!("CARGO_PKG_VERSION")
    );
    let path = dir.join(format!("irc-{name}.pc"));
    atomic_write(&path, text.as_bytes())?;
    Ok(path)
}

/// `dir` made absolute through its parent, which exists (`dir` itself may
/// not yet: a build folder is renamed into place last).
fn absolute(dir: &Path) -> Result<PathBuf> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent = std::fs::canonicalize(parent).at(parent.display())?;
    Ok(match dir.file_name() {
        Some(name) => parent.join(name),
        None => parent,
    })
}

/// What `build` did.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    pub dir: PathBuf,
    pub key: String,
    /// The libraries came from the cache; nothing was compiled.
    pub cached: bool,
}

/// Where compiled libraries are cached across builds: `$IRC_CACHE`, else
/// `$XDG_CACHE_HOME/irc`, else `~/.cache/irc`. A variable set to the empty
/// string counts as unset (not as the working folder).
pub fn cache_dir() -> PathBuf {
    let set = |name: &str| std::env::var_os(name).filter(|d| !d.is_empty());
    if let Some(d) = set("IRC_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = set("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("irc");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".cache").join("irc"),
        None => std::env::temp_dir().join("irc-cache"),
    }
}

/// Write the sources into `out` and make the libraries, from the cache when
/// the same sources were built before with the same compiler and flags.
pub fn build(src: &Sources, tc: &Toolchain, out: &Path) -> Result<BuildOutcome> {
    std::fs::create_dir_all(out).at(out.display())?;
    let mut files: Vec<(String, &str)> = vec![
        (MODEL_C.to_string(), src.model_c.as_str()),
        (HEADER_FILE.to_string(), src.header.as_str()),
    ];
    for (name, text) in RUNTIME_C {
        files.push((name.to_string(), text));
    }
    let mut key_text = format!(
        "{}\n{}\n{}\n",
        tc.cc.display(),
        tc.version,
        tc.cflags.join(" ")
    );
    for (name, text) in &files {
        key_text.push_str(&format!("== {name}\n{text}"));
    }
    let key = sha256_hex(key_text.as_bytes())[..24].to_string();
    for (name, text) in &files {
        atomic_write(&out.join(name), text.as_bytes())?;
    }

    let cached_dir = cache_dir().join(&key);
    let have = |d: &Path| d.join(SHARED_LIB).is_file() && d.join(STATIC_LIB).is_file();
    let mut cached = false;
    if have(&cached_dir) {
        cached = true;
    } else {
        // Compile in a scratch copy so a failed or interrupted build never
        // leaves half a library where the cache or the user would find it.
        let tmp = tempfile::tempdir().at("temporary build directory")?;
        for (name, text) in &files {
            std::fs::write(tmp.path().join(name), text).at(tmp.path().join(name).display())?;
        }
        tc.compile(tmp.path())?;
        std::fs::create_dir_all(&cached_dir).at(cached_dir.display())?;
        for lib in [SHARED_LIB, STATIC_LIB] {
            let bytes = std::fs::read(tmp.path().join(lib)).at(lib)?;
            atomic_write(&cached_dir.join(lib), &bytes)?;
        }
    }
    for lib in [SHARED_LIB, STATIC_LIB] {
        let bytes = std::fs::read(cached_dir.join(lib)).at(cached_dir.join(lib).display())?;
        atomic_write(&out.join(lib), &bytes)?;
    }
    Ok(BuildOutcome {
        dir: out.to_path_buf(),
        key,
        cached,
    })
}

/// A one-file helper library that is not a model (the MPI shim,
/// `crate::dist`): `source` compiled by `compiler` (a wrapper such as
/// `mpicc`, which adds its own include and library flags) with warnings as
/// errors into `lib<name>.so`, cached in [`cache_dir`] by a hash of the
/// source, the compiler, its version and what the wrapper adds. Returns the
/// cached library's path.
pub fn build_helper(name: &str, source: &str, compiler: &Path, flags: &[&str]) -> Result<PathBuf> {
    let probe = |args: &[&str]| {
        Command::new(compiler)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let version = probe(&["--version"]).ok_or_else(|| {
        Error::new(format!(
            "cannot run {} (install the MPI development package, e.g. libopenmpi-dev, or set IRC_MPICC to the MPI C compiler)",
            compiler.display()
        ))
    })?;
    // What the wrapper adds (OpenMPI: --showme, MPICH: -show).
    let shows = probe(&["--showme"])
        .or_else(|| probe(&["-show"]))
        .unwrap_or_default();
    let mut all: Vec<&str> = vec![
        "-shared", "-fPIC", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror",
    ];
    all.extend_from_slice(flags);
    let key_text = format!(
        "helper {name}\n{}\n{version}\n{shows}\n{}\n== source\n{source}",
        compiler.display(),
        all.join(" ")
    );
    let key = sha256_hex(key_text.as_bytes())[..24].to_string();
    let lib = format!("lib{name}.so");
    let cached = cache_dir().join(format!("helper-{key}")).join(&lib);
    if cached.is_file() {
        return Ok(cached);
    }
    let tmp = tempfile::tempdir().at("temporary build directory")?;
    let c = format!("{name}.c");
    std::fs::write(tmp.path().join(&c), source).at(tmp.path().join(&c).display())?;
    let out = Command::new(compiler)
        .args(&all)
        .args([c.as_str(), "-o", lib.as_str()])
        .current_dir(tmp.path())
        .output()
        .map_err(|e| Error::new(format!("cannot run {}: {e}", compiler.display())))?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "compiling {c} with {} failed ({}):\n{}{}",
            compiler.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        )));
    }
    let bytes = std::fs::read(tmp.path().join(&lib)).at(&lib)?;
    std::fs::create_dir_all(cached.parent().unwrap()).at(cached.display())?;
    atomic_write(&cached, &bytes)?;
    Ok(cached)
}
