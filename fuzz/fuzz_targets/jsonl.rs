//! See `irc::fuzzing::jsonl`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| irc::fuzzing::jsonl(data));
