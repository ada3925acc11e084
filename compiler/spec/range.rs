//! The range of every numeric setting, written once. A setting can come
//! from the spec, from a command-line flag or from `irc sweep --set`; the
//! spec's readers and the flags' parsers ([`flag`]) call the same function
//! here, so a value is refused the same way, in the same words, wherever it
//! was written (`[generate].top_p: 0 is out of range; ...` in a spec,
//! `--top-p: 0 is out of range; ...` on the command line).

use std::fmt::Display;
use std::str::FromStr;

/// A range check: the value back, or what is wrong with it.
pub type Check<T> = fn(T) -> Result<T, String>;

fn within<T: Display>(v: T, ok: bool, expected: &str) -> Result<T, String> {
    if ok {
        Ok(v)
    } else {
        Err(format!("{v} is out of range; expected {expected}"))
    }
}

/// Anything the type holds (seeds, `top_k`, counts where 0 means none).
pub fn any<T>(v: T) -> Result<T, String> {
    Ok(v)
}

/// Softmax temperature: 0 is greedy.
pub fn non_negative(v: f32) -> Result<f32, String> {
    within(v, v.is_finite() && v >= 0.0, "a number ≥ 0")
}

/// Repetition penalty.
pub fn positive(v: f32) -> Result<f32, String> {
    within(v, v.is_finite() && v > 0.0, "a number > 0")
}

/// Nucleus mass (`top_p`).
pub fn probability(v: f32) -> Result<f32, String> {
    within(v, v > 0.0 && v <= 1.0, "a number in (0, 1]")
}

/// Sample counts, token budgets, lengths, iterations.
pub fn at_least_one<T: PartialOrd + From<u8> + Display>(v: T) -> Result<T, String> {
    let ok = v >= T::from(1);
    within(v, ok, "an integer ≥ 1")
}

/// The validation share of a data split.
pub fn fraction(v: f64) -> Result<f64, String> {
    within(v, (0.0..1.0).contains(&v), "a fraction in [0, 1)")
}

/// A similarity threshold (near duplicates; 1 turns it off).
pub fn similarity(v: f64) -> Result<f64, String> {
    within(v, (0.0..=1.0).contains(&v), "a number in [0, 1]")
}

/// Most threads a context accepts: the emitted C's thread pool holds this
/// many (`codegen` writes it into `model.c`).
pub const MAX_THREADS: usize = 256;

/// A thread count: 0 is the default (one per core).
pub fn threads(v: usize) -> Result<usize, String> {
    within(
        v,
        v <= MAX_THREADS,
        &format!("0 (one per core) to {MAX_THREADS}"),
    )
}

/// Most rows irc makes up or mixes in at once (synthetic scenes): enough
/// for any corpus, small enough to fit in memory.
pub const MAX_ROWS: usize = 10_000_000;

/// Synthetic rows mixed in (0: none).
pub fn rows(v: usize) -> Result<usize, String> {
    within(v, v <= MAX_ROWS, &format!("0 to {MAX_ROWS}"))
}

/// Synthetic rows written by `irc data synth`.
pub fn some_rows(v: usize) -> Result<usize, String> {
    within(v, (1..=MAX_ROWS).contains(&v), &format!("1 to {MAX_ROWS}"))
}

/// What a flag's text must parse as, for the message.
trait Kind {
    const WHAT: &'static str;
}

impl Kind for f32 {
    const WHAT: &'static str = "a number";
}
impl Kind for f64 {
    const WHAT: &'static str = "a number";
}
impl Kind for usize {
    const WHAT: &'static str = "a non-negative integer";
}
impl Kind for u64 {
    const WHAT: &'static str = "a non-negative integer";
}

/// A clap value parser: the flag's text parsed as `T`, then `check`ed.
/// clap reports a refusal as `--flag: message` (see `cli::main_with`).
#[allow(private_bounds)]
pub fn flag<T: FromStr + Kind + 'static>(
    check: Check<T>,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let v = s
            .trim()
            .parse::<T>()
            .map_err(|_| format!("\"{s}\" is not {}", T::WHAT))?;
        check(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_spec_share_the_words() {
        assert_eq!(
            flag(probability)("0").unwrap_err(),
            "0 is out of range; expected a number in (0, 1]"
        );
        assert_eq!(
            flag(non_negative)("nan").unwrap_err(),
            "NaN is out of range; expected a number ≥ 0"
        );
        assert_eq!(
            flag(at_least_one::<usize>)("-3").unwrap_err(),
            "\"-3\" is not a non-negative integer"
        );
        assert_eq!(flag(threads)("256"), Ok(256));
        assert!(flag(similarity)("1.5").is_err());
    }
}
