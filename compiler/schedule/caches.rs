//! The data caches the GEMM's blocking is sized for. runtime-c/irc_gemm.h
//! derives its block sizes from them next to the microkernel they are tuned
//! for (KC from L1d, MC from L2, NC from this core's share of L3); irc reads
//! them when it builds, so a library is blocked for the CPU it was built on.

use crate::spec::Target;
use serde::Serialize;
use std::path::Path;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Caches {
    /// L1 data cache of one core, bytes.
    pub l1d: usize,
    /// L2 of one core, bytes.
    pub l2: usize,
    /// One core's share of the last-level cache, bytes.
    pub l3_per_core: usize,
}

impl Caches {
    /// For a build that may run on any CPU of its ISA (an explicit target):
    /// the smallest of current x86-64 and Arm cores (32 KiB L1d, 512 KiB L2,
    /// 2 MiB of L3 a core), so the blocks fit wherever it runs.
    pub const GENERIC: Caches = Caches {
        l1d: 32 << 10,
        l2: 512 << 10,
        l3_per_core: 2 << 20,
    };

    /// `target = "native"` blocks for this machine; an explicit target for
    /// any CPU of that ISA (and the same C on every machine).
    pub fn for_target(target: Target) -> Caches {
        if target == Target::Native {
            Caches::host()
        } else {
            Caches::GENERIC
        }
    }

    /// This machine's caches (Linux sysfs), each one GENERIC's where unknown;
    /// read once a process (every program of a build asks).
    pub fn host() -> Caches {
        static HOST: OnceLock<Caches> = OnceLock::new();
        *HOST.get_or_init(Caches::read_host)
    }

    fn read_host() -> Caches {
        let mut c = Caches::GENERIC;
        let dir = Path::new("/sys/devices/system/cpu/cpu0/cache");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return c;
        };
        for e in entries.flatten() {
            let read = |f: &str| {
                std::fs::read_to_string(e.path().join(f))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default()
            };
            let Some(size) = parse_size(&read("size")) else {
                continue;
            };
            // "0-1,4" -> 3 CPUs share it.
            let sharing = read("shared_cpu_list")
                .split(',')
                .map(|r| match r.split_once('-') {
                    Some((a, b)) => b.parse::<usize>().unwrap_or(0) + 1 - a.parse().unwrap_or(0),
                    None => 1,
                })
                .sum::<usize>()
                .max(1);
            match (read("level").as_str(), read("type").as_str()) {
                ("1", "Data") => c.l1d = size,
                ("2", "Unified" | "Data") => c.l2 = size,
                ("3", "Unified") => c.l3_per_core = size / sharing,
                _ => {}
            }
        }
        c
    }

    /// The macros runtime-c/irc_gemm.h reads, with their values.
    fn macros(&self) -> [(&'static str, usize); 3] {
        [
            ("IRC_L1D_BYTES", self.l1d),
            ("IRC_L2_BYTES", self.l2),
            ("IRC_L3_BYTES_PER_CORE", self.l3_per_core),
        ]
    }

    /// Those macros as C definitions, for model.c.
    pub fn c_defines(&self) -> [String; 3] {
        self.macros().map(|(m, v)| format!("#define {m} {v}"))
    }

    /// The same as compiler flags, for C compiled apart from a model (tests, benches).
    pub fn c_flags(&self) -> [String; 3] {
        self.macros().map(|(m, v)| format!("-D{m}={v}"))
    }

    pub fn describe(&self) -> String {
        format!(
            "L1d {} KiB, L2 {} KiB, L3 {} KiB a core",
            self.l1d >> 10,
            self.l2 >> 10,
            self.l3_per_core >> 10
        )
    }
}

/// sysfs sizes: "48K", "1024K", "32M".
fn parse_size(s: &str) -> Option<usize> {
    let (num, mult) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<usize>()
        .ok()
        .map(|n| n * mult)
        .filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_sysfs_writes_them() {
        assert_eq!(parse_size("48K"), Some(48 << 10));
        assert_eq!(parse_size("32M"), Some(32 << 20));
        assert_eq!(parse_size("0K"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn flags_match_defines() {
        assert_eq!(
            Caches::GENERIC.c_flags()[0],
            format!("-DIRC_L1D_BYTES={}", 32 << 10)
        );
    }
}
