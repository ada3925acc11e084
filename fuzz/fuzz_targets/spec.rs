//! See `irc::fuzzing::spec`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| irc::fuzzing::spec(data));
