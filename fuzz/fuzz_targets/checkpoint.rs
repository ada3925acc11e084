//! See `irc::fuzzing::checkpoint`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| irc::fuzzing::checkpoint(data));
