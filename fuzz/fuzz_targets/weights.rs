//! See `irc::fuzzing::weights`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| irc::fuzzing::weights(data));
