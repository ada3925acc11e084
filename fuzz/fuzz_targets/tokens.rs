//! See `irc::fuzzing::tokens`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| irc::fuzzing::tokens(data));
