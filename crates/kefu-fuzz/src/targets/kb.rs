//! The KB parser (`kefu_nlu::kb::parse_sources`) on TOML-ish text: blocks of real KB files
//! recombined and mutated, split over one to three files. Properties: it never panics; every
//! problem (and warning) names one of the files, a line inside it (0 only for the whole-KB "no
//! [[intent]]"), what is wrong and the fix; a KB that loads has intents with ids, examples and
//! answers.

use std::path::{Path, PathBuf};

use kefu_nlu::kb::{KbError, Problem, parse_sources};

use super::{Input, Target, TargetInfo};
use crate::corpus::Corpus;
use crate::mutate::{boundary, mutate};
use crate::rng::Rng;

pub const INFO: TargetInfo = TargetInfo {
    name: "kb",
    about: "the KB parser on mutated knowledge-base files: no panic, every problem has a file and a line",
    build,
};

/// Pieces of TOML that KB files are made of, right and wrong.
const TOML_BITS: &[&str] = &[
    "[[intent]]\n",
    "[meta]\n",
    "[vocabulary]\n",
    "[out_of_scope]\n",
    "[[intent]]\nid = \"a.b\"\ntitle = { en = \"T\" }\nexamples = { en = [\"x\"] }\nanswer = { en = \"A\" }\n",
    "id = \"dup\"\n",
    "id = \"Bad Id\"\n",
    "id = \"\"\n",
    "title = { zh = \"\", en = \"x\" }\n",
    "examples = { zh = [] }\n",
    "examples = { en = [\"\", \" \"] }\n",
    "answer = { en = \"\" }\n",
    "answer = \"not a table\"\n",
    "priority = \"urgent\"\n",
    "priority = \"someday\"\n",
    "collect = [\"tx_id\", \"Bad Name\", \"tx_id\"]\n",
    "related = [\"a.b\", \"missing\"]\n",
    "handoff = 1\n",
    "handoff = true\n",
    "unknown_key = 3\n",
    "name = \"KB\"\ndefault_language = \"zh\"\n",
    "words = [\"助记词\"]\nsynonyms = [[\"提现\", \"出金\"]]\n",
    "\"",
    "'''",
    "\"\"\"",
    "=",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\n",
    "#",
    "\\u",
    "\\",
    "1979-05-27T07:32:00Z",
    "inf",
    "nan",
    "0x1F",
    "1_000",
    "\u{FEFF}",
    "\r\n",
];

struct KbTarget {
    /// Blocks of the real KB files: a table header and the lines up to the next one.
    blocks: Vec<String>,
    files: Vec<String>,
}

fn build(corpus: &Corpus) -> Box<dyn Target> {
    let mut blocks = Vec::new();
    for (_, text) in &corpus.kb_files {
        let mut block = String::new();
        for line in text.split_inclusive('\n') {
            if line.starts_with('[') && !block.trim().is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
            block.push_str(line);
        }
        if !block.trim().is_empty() {
            blocks.push(block);
        }
    }
    // Whole files are long; the parser's work is per byte, so most inputs are a few blocks.
    let files = corpus
        .kb_files
        .iter()
        .map(|(_, t)| t.clone())
        .filter(|t| t.len() < 20_000)
        .collect();
    Box::new(KbTarget { blocks, files })
}

impl Target for KbTarget {
    fn generate(&mut self, rng: &mut Rng) -> Input {
        let n_files = rng.between(1, 3);
        (0..n_files)
            .map(|_| {
                let mut text = if rng.chance(3) {
                    rng.pick(&self.files).cloned().unwrap_or_default()
                } else {
                    (0..rng.between(1, 4))
                        .filter_map(|_| rng.pick(&self.blocks).cloned())
                        .collect()
                };
                for _ in 0..rng.between(0, 4) {
                    let at = boundary(rng, &text);
                    let bit = rng.pick(TOML_BITS).copied().unwrap_or("");
                    text.insert_str(at, bit);
                }
                if rng.chance(60) {
                    mutate(rng, &mut text, &self.blocks, 3);
                }
                text
            })
            .collect()
    }

    fn check(&mut self, input: &Input) -> Result<(), String> {
        let paths: Vec<PathBuf> = (0..input.len())
            .map(|i| PathBuf::from(format!("kb/{i:02}.toml")))
            .collect();
        let sources: Vec<(&Path, &str)> = paths
            .iter()
            .map(PathBuf::as_path)
            .zip(input.iter().map(String::as_str))
            .collect();
        let lines_in = |file: &Path| {
            paths
                .iter()
                .position(|p| p == file)
                .map(|i| input[i].split('\n').count())
        };
        let located = |p: &Problem, what: &str| -> Result<(), String> {
            let Some(lines) = lines_in(&p.file) else {
                return Err(format!("{what} names a file that is not a source: {p}"));
            };
            if p.what.trim().is_empty() || p.fix.trim().is_empty() {
                return Err(format!("{what} without a description or a fix: {p:?}"));
            }
            if p.line > lines {
                return Err(format!(
                    "{what} on line {} of a {lines}-line file: {p}",
                    p.line
                ));
            }
            if p.line == 0 && !p.what.contains("no [[intent]]") {
                return Err(format!("{what} without a line: {p}"));
            }
            Ok(())
        };
        match parse_sources(Path::new("kb"), &sources) {
            Ok(kb) => {
                for w in &kb.warnings {
                    located(w, "warning")?;
                }
                if kb.intents.is_empty() {
                    return Err("a KB without intents loaded".to_owned());
                }
                for intent in &kb.intents {
                    if intent.id.is_empty()
                        || intent.all_examples().all(|e| e.trim().is_empty())
                        || intent.answer.iter().all(|(_, a)| a.trim().is_empty())
                    {
                        return Err(format!(
                            "intent {:?} loaded without an id, an example or an answer",
                            intent.id
                        ));
                    }
                }
                Ok(())
            }
            Err(KbError::Invalid { problems, .. }) => {
                if problems.is_empty() {
                    return Err("invalid KB without any problem".to_owned());
                }
                problems.iter().try_for_each(|p| located(p, "problem"))
            }
            Err(other) => Err(format!("in-memory sources gave an I/O error: {other}")),
        }
    }
}
