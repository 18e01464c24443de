//! `kefu-fuzz`: Kefu's fuzz driver on stable Rust. Each target generates structured random inputs
//! (real KB files and support messages, mutated; planted secrets; separators, invisible
//! characters, wordlist words, hex runs), checks its properties on each, catches panics, and prints
//! inputs tried, failures found and the time taken.
//!
//! ```text
//! kefu-fuzz kb --count 1000000         # the KB parser
//! kefu-fuzz normalize --count 1000000  # normalisation
//! kefu-fuzz secrets --count 1000000    # secret detection and redaction
//! kefu-fuzz false-alarms DIR…          # secret detection on texts that hold no secret
//! ```
//!
//! # Layout
//! - `targets`: one module per target and the registry (`targets::REGISTRY`) the subcommands
//!   are built from; a new target is a module plus one line there.
//! - `driver`: runs a target, catches panics, keeps and saves failing inputs, replays one.
//! - `corpus`: the repository's KB files and messages the generators start from.
//! - `mutate`: mutations shared by the generators. `rng`: the seeded generator.
//! - `false_alarms`: the false-alarm count of secret detection.
//!
//! Exit codes: 0 nothing found, 1 a failure (or a false alarm) found, 2 bad usage.

mod corpus;
mod driver;
mod false_alarms;
mod mutate;
mod rng;
mod targets;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};

fn cli() -> Command {
    let mut cli = Command::new("kefu-fuzz")
        .about("Structured fuzzing of Kefu's parsers and detectors on stable Rust")
        .subcommand_required(true)
        .arg_required_else_help(true);
    for target in targets::REGISTRY {
        cli = cli.subcommand(
            Command::new(target.name)
                .about(target.about)
                .arg(
                    Arg::new("count")
                        .long("count")
                        .visible_alias("iterations")
                        .value_parser(value_parser!(u64))
                        .default_value("100000")
                        .help("inputs to try"),
                )
                .arg(
                    Arg::new("seed")
                        .long("seed")
                        .value_parser(value_parser!(u64))
                        .default_value("1")
                        .help("seed of the generator (the same seed tries the same inputs)"),
                )
                .arg(
                    Arg::new("corpus")
                        .long("corpus")
                        .value_parser(value_parser!(PathBuf))
                        .help("repository root holding config/kb and bench/crypto [default: the one this was built from]"),
                )
                .arg(
                    Arg::new("save")
                        .long("save")
                        .value_parser(value_parser!(PathBuf))
                        .help("write each failing input kept as DIR/<target>-<n>.json"),
                )
                .arg(
                    Arg::new("replay")
                        .long("replay")
                        .value_parser(value_parser!(PathBuf))
                        .conflicts_with("count")
                        .help("check one input saved by --save instead of generating"),
                )
                .arg(
                    Arg::new("show")
                        .long("show")
                        .value_parser(value_parser!(usize))
                        .default_value("5")
                        .help("failing inputs to keep and print"),
                ),
        );
    }
    cli.subcommand(
        Command::new("false-alarms")
            .about("count what secret detection flags in texts that hold no secret")
            .arg(
                Arg::new("paths")
                    .required(true)
                    .num_args(1..)
                    .action(ArgAction::Append)
                    .value_parser(value_parser!(PathBuf))
                    .help("benchmark data directory, KB file or directory, bench/crypto, .jsonl or text files"),
            ),
    )
}

fn main() -> ExitCode {
    let matches = match cli().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match dispatch(&matches) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Ok(true) when nothing was found.
fn dispatch(matches: &ArgMatches) -> Result<bool> {
    let Some((name, args)) = matches.subcommand() else {
        return Ok(true);
    };
    if name == "false-alarms" {
        let paths: Vec<PathBuf> = args
            .get_many::<PathBuf>("paths")
            .map(|p| p.cloned().collect())
            .unwrap_or_default();
        return Ok(false_alarms::run(&paths)? == 0);
    }
    let info = targets::REGISTRY
        .iter()
        .find(|t| t.name == name)
        .with_context(|| format!("unknown target {name}"))?;
    let root = args
        .get_one::<PathBuf>("corpus")
        .cloned()
        .unwrap_or_else(corpus::default_root);
    let corpus = corpus::Corpus::load(&root)?;
    let mut target = (info.build)(&corpus);
    if let Some(path) = args.get_one::<PathBuf>("replay") {
        return match driver::replay(target.as_mut(), path)? {
            Ok(()) => {
                println!("{name}: {} passes", path.display());
                Ok(true)
            }
            Err(message) => {
                println!("{name}: {} fails: {message}", path.display());
                Ok(false)
            }
        };
    }
    let count = args.get_one::<u64>("count").copied().unwrap_or(100_000);
    let seed = args.get_one::<u64>("seed").copied().unwrap_or(1);
    let keep = args.get_one::<usize>("show").copied().unwrap_or(5);
    let report = driver::run(target.as_mut(), count, seed, keep);
    let secs = report.elapsed.as_secs_f64();
    println!(
        "{name}: {} inputs in {secs:.1} s ({:.1} µs per input, seed {seed}): {} panics, {} property failures",
        report.tried,
        secs * 1e6 / report.tried.max(1) as f64,
        report.panics,
        report.property_failures
    );
    for line in target.summary() {
        println!("  {line}");
    }
    for failure in &report.failures {
        println!("  {}", driver::describe(failure));
    }
    if let Some(dir) = args.get_one::<PathBuf>("save") {
        driver::save(dir, name, &report.failures)?;
    }
    Ok(report.panics == 0 && report.property_failures == 0)
}
