//! See `irc::fuzzing::tokenizer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| irc::fuzzing::tokenizer(data));
