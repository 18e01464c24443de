//! `kefu-fuzz false-alarms PATH…`: runs secret detection on texts that hold no secret and counts
//! what it flags. Each PATH may be:
//! - the public benchmark data directory (`banking77/{train,test}.csv`, `clinc150/data_full.json`,
//!   every split of both);
//! - a knowledge base (a `.toml` file or a directory of them): examples, titles, answers,
//!   out-of-scope examples;
//! - a directory of sets (`bench/crypto`: each subdirectory's `kb.toml` and `cases.jsonl`);
//! - a `.jsonl` file (its `text` fields) or any other text file (one text a line).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kefu_nlu::secrets::find_secrets;

use crate::corpus::{jsonl_texts, toml_files};
use crate::mutate::shown;

/// Texts of one source.
struct Source {
    name: String,
    texts: Vec<String>,
}

/// Runs the count and prints it; returns the number of texts flagged.
pub fn run(paths: &[PathBuf]) -> Result<usize> {
    let mut sources = Vec::new();
    for path in paths {
        collect(path, &mut sources)?;
    }
    if sources.is_empty() {
        bail!(
            "no texts found; fix: pass the benchmark data directory, a KB, bench/crypto or a .jsonl file"
        );
    }
    let (mut total, mut flagged, mut elapsed) = (0usize, 0usize, Duration::ZERO);
    for source in &sources {
        let mut hits = Vec::new();
        let start = Instant::now();
        for text in &source.texts {
            let spans = find_secrets(text);
            if !spans.is_empty() {
                hits.push((text, spans));
            }
        }
        elapsed += start.elapsed();
        total += source.texts.len();
        flagged += hits.len();
        println!(
            "{}: {} texts, {} flagged",
            source.name,
            source.texts.len(),
            hits.len()
        );
        for (text, spans) in hits.iter().take(10) {
            let found: Vec<String> = spans
                .iter()
                .map(|s| format!("{:?} {}", s.kind, shown(&text[s.range.clone()], 120)))
                .collect();
            println!("    {} in {}", found.join(", "), shown(text, 120));
        }
    }
    println!(
        "total: {total} texts, {flagged} flagged; find_secrets {:.2} µs per text on average",
        elapsed.as_secs_f64() * 1e6 / total.max(1) as f64
    );
    Ok(flagged)
}

fn collect(path: &Path, out: &mut Vec<Source>) -> Result<()> {
    let name = path.display().to_string();
    if path.is_dir() {
        let banking = path.join("banking77");
        let clinc = path.join("clinc150/data_full.json");
        if banking.is_dir() || clinc.is_file() {
            for split in ["train", "test"] {
                let csv = banking.join(format!("{split}.csv"));
                if csv.is_file() {
                    out.push(Source {
                        name: format!("banking77 {split}"),
                        texts: csv_first_column(&csv)?,
                    });
                }
            }
            if clinc.is_file() {
                out.push(Source {
                    name: "clinc150 (all splits)".to_owned(),
                    texts: clinc_texts(&clinc)?,
                });
            }
            return Ok(());
        }
        if !toml_files(path)?.is_empty() {
            out.push(Source {
                name,
                texts: kb_texts(path)?,
            });
            return Ok(());
        }
        let mut subdirs: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {name}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        subdirs.sort();
        let before = out.len();
        for dir in subdirs {
            for file in ["kb.toml", "cases.jsonl"] {
                let f = dir.join(file);
                if f.is_file() {
                    collect(&f, out)?;
                }
            }
        }
        if out.len() == before {
            bail!(
                "{name}: no data set, KB or cases found in this directory; fix: pass the benchmark data directory, a KB directory or bench/crypto"
            );
        }
        return Ok(());
    }
    let texts = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => kb_texts(path)?,
        Some("jsonl") => jsonl_texts(path)?,
        _ => std::fs::read_to_string(path)
            .with_context(|| format!("reading {name}"))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
    };
    out.push(Source { name, texts });
    Ok(())
}

/// Every text a KB holds: examples, titles, answers, out-of-scope examples.
fn kb_texts(path: &Path) -> Result<Vec<String>> {
    let kb = kefu_nlu::kb::load(path).with_context(|| format!("loading {}", path.display()))?;
    let mut texts = Vec::new();
    for intent in &kb.intents {
        texts.extend(intent.all_examples().map(str::to_owned));
        texts.extend(intent.title.iter().map(|(_, t)| t.clone()));
        texts.extend(intent.answer.iter().map(|(_, a)| a.clone()));
    }
    for (_, examples) in &kb.out_of_scope {
        texts.extend(examples.iter().cloned());
    }
    Ok(texts)
}

/// The first column of a CSV file with a header (quoted fields, `""` escapes, line breaks inside
/// quotes).
fn csv_first_column(path: &Path) -> Result<Vec<String>> {
    let data =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    let (mut field, mut column, mut quoted) = (String::new(), 0usize, false);
    let mut chars = data.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => {
                if column == 0 {
                    rows.push(std::mem::take(&mut field));
                }
                field.clear();
                column += 1;
            }
            ('\n', false) => {
                if column == 0 {
                    rows.push(std::mem::take(&mut field));
                }
                field.clear();
                column = 0;
            }
            ('\r', false) => {}
            _ => field.push(c),
        }
    }
    if column == 0 && !field.is_empty() {
        rows.push(field);
    }
    // The header.
    if !rows.is_empty() {
        rows.remove(0);
    }
    Ok(rows)
}

/// Every text of every split of CLINC150's `data_full.json` (`{"split": [[text, intent], …]}`).
fn clinc_texts(path: &Path) -> Result<Vec<String>> {
    let data =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&data).with_context(|| format!("{}: not JSON", path.display()))?;
    let Some(splits) = value.as_object() else {
        bail!("{}: expected an object of splits", path.display());
    };
    let mut texts = Vec::new();
    for rows in splits.values().filter_map(|v| v.as_array()) {
        for row in rows {
            if let Some(text) = row.get(0).and_then(|t| t.as_str()) {
                texts.push(text.to_owned());
            }
        }
    }
    Ok(texts)
}
