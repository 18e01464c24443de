//! Real inputs to start from: the knowledge bases and support messages in the repository.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Seeds for the generators.
#[derive(Debug, Default)]
pub struct Corpus {
    /// Knowledge-base files: (path, text).
    pub kb_files: Vec<(PathBuf, String)>,
    /// Support messages (KB examples, evaluation cases), Chinese and English.
    pub messages: Vec<String>,
}

/// The repository this crate was built in (`crates/kefu-fuzz/../..`).
pub fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Corpus {
    /// Reads `config/kb/*.toml`, `config/kb/eval.jsonl`, `bench/crypto/*/{kb.toml,cases.jsonl}`
    /// under `root`.
    pub fn load(root: &Path) -> Result<Self> {
        let mut corpus = Corpus::default();
        let mut kb_paths = toml_files(&root.join("config/kb"))?;
        let mut case_paths = vec![root.join("config/kb/eval.jsonl")];
        let crypto = root.join("bench/crypto");
        if crypto.is_dir() {
            let mut sets: Vec<PathBuf> = std::fs::read_dir(&crypto)
                .with_context(|| format!("reading {}", crypto.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect();
            sets.sort();
            for set in sets {
                kb_paths.push(set.join("kb.toml"));
                case_paths.push(set.join("cases.jsonl"));
            }
        }
        for path in kb_paths.into_iter().filter(|p| p.is_file()) {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            if let Ok(kb) = kefu_nlu::kb::parse_sources(&path, &[(path.as_path(), text.as_str())]) {
                for intent in &kb.intents {
                    corpus
                        .messages
                        .extend(intent.all_examples().map(str::to_owned));
                }
            }
            corpus.kb_files.push((path, text));
        }
        for path in case_paths.into_iter().filter(|p| p.is_file()) {
            corpus.messages.extend(jsonl_texts(&path)?);
        }
        anyhow::ensure!(
            !corpus.kb_files.is_empty() && !corpus.messages.is_empty(),
            "no knowledge base or messages under {}; fix: pass --corpus with the repository root (it holds config/kb)",
            root.display()
        );
        Ok(corpus)
    }
}

pub fn toml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The `text` field of every line of a JSON-lines file.
pub fn jsonl_texts(path: &Path) -> Result<Vec<String>> {
    let data =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in data.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a JSON object", path.display(), n + 1))?;
        if let Some(text) = value.get("text").and_then(|t| t.as_str()) {
            out.push(text.to_owned());
        }
    }
    Ok(out)
}
