//! `kefu chat`: the terminal channel. One user message per line on stdin, the bot's replies on
//! stdout; interactive prompts only when stdin is a terminal. This is the stateless form: every
//! line is answered from the KB on its own.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::Context;
use kefu_nlu::secrets::{find_secrets, redact};

use super::ask::secret_warning;
use super::{Failure, load_engine};

pub fn run(kb: &Path) -> Result<(), Failure> {
    let engine = load_engine(kb)?.engine;
    let interactive = std::io::stdin().is_terminal();
    let mut out = std::io::stdout().lock();
    let write_err =
        |e: std::io::Error| Failure::Other(anyhow::Error::new(e).context("writing to stdout"));
    if interactive {
        let name = engine.kb().meta.name.as_deref().unwrap_or("Kefu");
        writeln!(out, "{name} — type your question (Ctrl-D to quit)").map_err(write_err)?;
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            write!(out, "> ")
                .and_then(|()| out.flush())
                .map_err(write_err)?;
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("reading stdin").map_err(Failure::Other)?;
        if line.trim().is_empty() {
            continue;
        }
        let spans = find_secrets(&line);
        let decision = engine.decide(&redact(&line, &spans));
        if let Some(w) = secret_warning(&decision.language, &spans) {
            writeln!(out, "{w}").map_err(write_err)?;
        }
        writeln!(out, "{}", engine.reply(&decision)).map_err(write_err)?;
        writeln!(out).map_err(write_err)?;
    }
    Ok(())
}
