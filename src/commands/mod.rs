//! One module per command. Each returns [`Failure`] so `main` can map it to the contract's exit code.

pub mod ask;
pub mod chat;
pub mod eval;
pub mod kb;

use std::path::Path;
use std::time::{Duration, Instant};

use kefu_nlu::engine::Engine;
use kefu_nlu::kb::KbError;

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The user's input files or arguments are wrong (exit 2).
    BadInput(anyhow::Error),
    /// Anything else (exit 1).
    Other(anyhow::Error),
}

/// A KB loaded and trained, with how long each step took.
pub struct Loaded {
    pub engine: Engine,
    pub load: Duration,
    pub train: Duration,
}

/// Loads and trains the KB; a KB that can't be read or is invalid is bad input.
pub fn load_engine(path: &Path) -> Result<Loaded, Failure> {
    let t0 = Instant::now();
    let kb = kefu_nlu::kb::load(path).map_err(|e| match e {
        KbError::Io { .. } | KbError::NoFiles(_) | KbError::Invalid { .. } => {
            Failure::BadInput(e.into())
        }
    })?;
    let load = t0.elapsed();
    for w in &kb.warnings {
        eprintln!("warning: {w}");
    }
    let t1 = Instant::now();
    let engine = Engine::train(kb);
    Ok(Loaded {
        engine,
        load,
        train: t1.elapsed(),
    })
}

/// Peak resident memory of this process in MiB (Linux), if known.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
