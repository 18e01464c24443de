//! Runs a target for a number of inputs: catches panics, counts property failures, keeps the
//! failing inputs, measures the time.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::mutate::shown;
use crate::rng::Rng;
use crate::targets::{Input, Target};

thread_local! {
    static PANIC_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// One failing input.
#[derive(Debug)]
pub struct Failure {
    /// "panic" or "property".
    pub kind: &'static str,
    pub message: String,
    pub input: Input,
}

/// What a run found.
#[derive(Debug)]
pub struct Report {
    pub tried: u64,
    pub panics: u64,
    pub property_failures: u64,
    pub elapsed: Duration,
    /// The first failures (at most `keep`).
    pub failures: Vec<Failure>,
}

/// Runs `target` on `count` generated inputs.
pub fn run(target: &mut dyn Target, count: u64, seed: u64, keep: usize) -> Report {
    let mut rng = Rng::new(seed);
    let previous_hook = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        PANIC_MESSAGE.with(|m| *m.borrow_mut() = Some(format!("{payload}{location}")));
    }));
    let mut report = Report {
        tried: 0,
        panics: 0,
        property_failures: 0,
        elapsed: Duration::ZERO,
        failures: Vec::new(),
    };
    let start = Instant::now();
    let step = (count / 10).max(1);
    for i in 0..count {
        let input = target.generate(&mut rng);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| target.check(&input)));
        report.tried += 1;
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(message)) => {
                report.property_failures += 1;
                Some(("property", message))
            }
            Err(_) => {
                report.panics += 1;
                let message = PANIC_MESSAGE
                    .with(|m| m.borrow_mut().take())
                    .unwrap_or_default();
                Some(("panic", message))
            }
        };
        if let Some((kind, message)) = failure
            && report.failures.len() < keep
        {
            report.failures.push(Failure {
                kind,
                message,
                input,
            });
        }
        if (i + 1) % step == 0 && count >= 100_000 {
            eprintln!(
                "  {} / {count} inputs, {:.1} s",
                i + 1,
                start.elapsed().as_secs_f64()
            );
        }
    }
    report.elapsed = start.elapsed();
    panic::set_hook(previous_hook);
    report
}

/// Re-runs the saved input in `path` (a JSON array of strings, as `--save` writes them).
pub fn replay(target: &mut dyn Target, path: &Path) -> Result<Result<(), String>> {
    let data =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let input: Input = serde_json::from_str(&data).with_context(|| {
        format!(
            "{}: not a JSON array of strings; fix: pass a file written by --save",
            path.display()
        )
    })?;
    Ok(target.check(&input))
}

/// Writes each failing input as `DIR/<target>-<n>.json`.
pub fn save(dir: &Path, name: &str, failures: &[Failure]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (n, failure) in failures.iter().enumerate() {
        let path = dir.join(format!("{name}-{n}.json"));
        let json = serde_json::to_string(&failure.input).context("encoding a failing input")?;
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Prints a failure: its kind, message and the input, shortened.
pub fn describe(failure: &Failure) -> String {
    let texts: Vec<String> = failure.input.iter().map(|t| shown(t, 300)).collect();
    format!(
        "{}: {}\n    input: [{}]",
        failure.kind,
        failure.message,
        texts.join(", ")
    )
}
