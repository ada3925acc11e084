//! `irc tokenizer ...` subcommands.

use crate::error::{At, Result};
use crate::spec::range::{self, flag};
use crate::tokenizer::{train, Alphabet, Tokenizer, TokenizerConfig};
use std::path::PathBuf;

/// `irc tokenizer` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenizerCmd {
    /// Train byte-level BPE merges on a data folder (its train.jsonl), a
    /// .jsonl rows file or a text file (one sample a line).
    Train {
        /// Data folder or file.
        input: PathBuf,
        /// Target vocabulary size (specials and base alphabet included).
        #[arg(long, default_value_t = 1024, value_parser = flag(range::at_least_one::<usize>))]
        vocab: usize,
        /// Output tokenizer.json.
        #[arg(short, long)]
        out: PathBuf,
        /// Base alphabet: bytes | ascii
        #[arg(long, default_value = "bytes")]
        alphabet: Alphabet,
        /// Extra special token (repeatable), e.g. `--special '[circle]'`.
        #[arg(long = "special")]
        specials: Vec<String>,
        /// Merge only pairs seen at least this often.
        #[arg(long, default_value_t = 2, value_parser = flag(range::at_least_one::<u64>))]
        min_frequency: u64,
        /// Pre-split: gpt2 | numbers (a signed decimal number is one word).
        #[arg(long, default_value = "gpt2")]
        pre_split: crate::tokenizer::PreSplit,
    },
    /// Print the ids of a text (or of a file's bytes with --file).
    Encode {
        /// tokenizer.json
        tokenizer: PathBuf,
        /// Text to encode.
        text: Option<String>,
        /// Encode this file's bytes instead.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Also print each token.
        #[arg(long)]
        tokens: bool,
    },
    /// Print the text of ids (space or comma separated).
    Decode {
        /// tokenizer.json
        tokenizer: PathBuf,
        /// Ids.
        #[arg(required = true, num_args = 1..)]
        ids: Vec<String>,
    },
}

/// Run an `irc tokenizer` subcommand.
pub fn run(cmd: TokenizerCmd) -> Result<()> {
    match cmd {
        TokenizerCmd::Train {
            input,
            vocab,
            out,
            alphabet,
            specials,
            min_frequency,
            pre_split,
        } => {
            let cfg = TokenizerConfig {
                vocab_size: vocab,
                alphabet,
                special_tokens: specials,
                min_frequency,
                path: None,
                pre_split,
            };
            if let Some((field, msg)) = train::config_problem(&cfg) {
                let flag = if field == "vocab_size" {
                    "--vocab"
                } else {
                    "--special"
                };
                crate::bail!("{flag}: {msg}");
            }
            let samples = crate::data::samples_from(&input)?;
            let t0 = std::time::Instant::now();
            let (tok, st) = train::train(&samples, &cfg).map_err(|e| e.context(input.display()))?;
            tok.save(&out)?;
            println!(
                "{}: {} ids ({} merges) from {} samples, {} bytes, {} distinct words in {:.2}s",
                out.display(),
                tok.vocab_size(),
                st.merges,
                samples.len(),
                st.bytes,
                st.words,
                t0.elapsed().as_secs_f64()
            );
            if tok.vocab_size() < vocab {
                println!(
                    "note: stopped below --vocab {vocab}: no pair occurs {min_frequency}+ times"
                );
            }
            Ok(())
        }
        TokenizerCmd::Encode {
            tokenizer,
            text,
            file,
            tokens,
        } => {
            let tok = Tokenizer::load(&tokenizer)?;
            let bytes = match (text, &file) {
                (_, Some(f)) => crate::util::read_user_file(f)?,
                (Some(t), None) => t.into_bytes(),
                (None, None) => crate::bail!("give a text or --file"),
            };
            let ids = tok.encode(&bytes).map_err(|e| match &file {
                Some(f) => e.context(f.display()),
                None => e.context("text"),
            })?;
            let s: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            let mut text = s.join(" ");
            text.push('\n');
            if tokens {
                for id in &ids {
                    let t =
                        String::from_utf8_lossy(tok.token_bytes(*id).unwrap_or(b"")).into_owned();
                    text.push_str(&format!("{id:>6}  {t:?}\n"));
                }
            }
            print_out(text.as_bytes())
        }
        TokenizerCmd::Decode { tokenizer, ids } => {
            let tok = Tokenizer::load(&tokenizer)?;
            let mut v = Vec::new();
            for part in ids
                .iter()
                .flat_map(|s| s.split([',', ' ']))
                .filter(|s| !s.is_empty())
            {
                v.push(
                    part.parse::<u32>()
                        .map_err(|_| crate::Error::new(format!("`{part}` is not a token id")))?,
                );
            }
            let mut bytes = tok.decode(&v)?;
            bytes.push(b'\n');
            print_out(&bytes)
        }
    }
}

/// Write to stdout; a closed pipe (`| head`) ends quietly instead of panicking.
fn print_out(b: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(b).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.at("stdout"),
    }
}
