//! The knowledge base: the format of `shared/contracts/kb-format.md`, loaded from one TOML file or a
//! directory of them (read in name order and merged), and validated.
//!
//! Validation collects every problem it finds, not just the first, and each one names the file, the
//! line and what to change, so a KB author fixes a broken KB in one round. A [`KnowledgeBase`] value
//! is therefore always valid: the rest of the crate never re-checks it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use toml::Spanned;

/// A loaded, validated knowledge base.
#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    /// `[meta]`, with defaults filled in.
    pub meta: Meta,
    /// Intents in file order (files in name order).
    pub intents: Vec<Intent>,
    /// `[out_of_scope]` examples per language, merged across files.
    pub out_of_scope: Vec<(String, Vec<String>)>,
    /// `[vocabulary]`, merged across files.
    pub vocabulary: Vocabulary,
    /// The file or directory the KB was read from.
    pub source: PathBuf,
    /// Things that work but should be fixed (shown by `kefu kb check`).
    pub warnings: Vec<Problem>,
}

/// `[meta]`.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// Shown in greetings.
    pub name: Option<String>,
    /// Used when a message's language is unclear.
    pub default_language: Option<String>,
    /// The most wrong answers the derived policy may give on the KB's held-out check, as a share
    /// of its held-out examples (0..1): the answer threshold is the best one within this budget.
    pub max_wrong_answer_rate: Option<f32>,
}

/// `[vocabulary]`: what the KB author knows that the engine cannot.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    /// Terms the Chinese segmenter must keep whole.
    pub words: Vec<String>,
    /// Groups of terms that mean one thing.
    pub synonyms: Vec<Vec<String>>,
}

/// Ticket priority when an intent escalates.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Can wait.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Handle before normal tickets.
    High,
    /// Funds at risk: handle first.
    Urgent,
}

impl Priority {
    /// Parses `low | normal | high | urgent`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "low" => Some(Self::Low),
            "normal" => Some(Self::Normal),
            "high" => Some(Self::High),
            "urgent" => Some(Self::Urgent),
            _ => None,
        }
    }

    /// The lowercase name used in the KB and in tickets.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Urgent => "urgent",
        }
    }
}

/// One FAQ topic.
#[derive(Debug, Clone)]
pub struct Intent {
    /// Unique id, `[a-z0-9_.-]+`.
    pub id: String,
    /// Short label per language (used in "did you mean" buttons).
    pub title: Vec<(String, String)>,
    /// Example questions per language.
    pub examples: Vec<(String, Vec<String>)>,
    /// Answer per language.
    pub answer: Vec<(String, String)>,
    /// Answer, then always open a ticket.
    pub handoff: bool,
    /// Ticket priority.
    pub priority: Priority,
    /// Details to ask for before a ticket opens.
    pub collect: Vec<String>,
    /// Follow-up intent ids.
    pub related: Vec<String>,
    /// Where the intent is defined.
    pub file: PathBuf,
    /// Line of the intent's `id`.
    pub line: usize,
}

impl Intent {
    /// The answer in `lang` if the KB has it, else in `default`, else in the intent's first language.
    pub fn answer_in(&self, lang: &str, default: Option<&str>) -> &str {
        pick(&self.answer, lang, default)
    }

    /// The title in `lang` if the KB has it, else in `default`, else in the intent's first language.
    pub fn title_in(&self, lang: &str, default: Option<&str>) -> &str {
        pick(&self.title, lang, default)
    }

    /// Every example in every language.
    pub fn all_examples(&self) -> impl Iterator<Item = &str> {
        self.examples
            .iter()
            .flat_map(|(_, v)| v.iter().map(String::as_str))
    }
}

fn pick<'a>(texts: &'a [(String, String)], lang: &str, default: Option<&str>) -> &'a str {
    let find = |l: &str| texts.iter().find(|(k, _)| k == l).map(|(_, v)| v.as_str());
    find(lang)
        .or_else(|| default.and_then(find))
        .or_else(|| texts.first().map(|(_, v)| v.as_str()))
        .unwrap_or("")
}

impl KnowledgeBase {
    /// The intent with this id.
    pub fn intent(&self, id: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.id == id)
    }

    /// The language to fall back on: `meta.default_language`, else the first language of the first intent.
    pub fn default_language(&self) -> &str {
        self.meta
            .default_language
            .as_deref()
            .or_else(|| {
                self.intents
                    .first()
                    .and_then(|i| i.answer.first())
                    .map(|(l, _)| l.as_str())
            })
            .unwrap_or("en")
    }

    /// Number of examples over all intents, plus out-of-scope examples.
    pub fn example_count(&self) -> usize {
        self.intents
            .iter()
            .map(|i| i.all_examples().count())
            .sum::<usize>()
            + self
                .out_of_scope
                .iter()
                .map(|(_, v)| v.len())
                .sum::<usize>()
    }
}

/// One thing wrong in a KB, located and with its fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file it is in.
    pub file: PathBuf,
    /// 1-based line, 0 when the problem concerns the whole file.
    pub line: usize,
    /// What is wrong.
    pub what: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}: {}; fix: {}",
                self.file.display(),
                self.line,
                self.what,
                self.fix
            )
        } else {
            write!(
                f,
                "{}: {}; fix: {}",
                self.file.display(),
                self.what,
                self.fix
            )
        }
    }
}

/// Why a KB could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// The file or directory could not be read.
    #[error("cannot read knowledge base {}; fix: check the path (a .toml file or a directory of them)", path.display())]
    Io {
        /// What we tried to read.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A directory without any `*.toml` file.
    #[error("{}: no *.toml files in this directory; fix: point at a KB file or a directory holding them", .0.display())]
    NoFiles(PathBuf),
    /// One or more problems in the KB's contents.
    #[error("knowledge base {} is invalid ({} problem{}):\n{}", path.display(), problems.len(), if problems.len() == 1 { "" } else { "s" }, problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The KB that was read.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

/// Loads a KB from a `.toml` file or a directory of them, validating everything.
pub fn load(path: &Path) -> Result<KnowledgeBase, KbError> {
    let meta = std::fs::metadata(path).map_err(|source| KbError::Io {
        path: path.to_owned(),
        source,
    })?;
    let files: Vec<PathBuf> = if meta.is_dir() {
        let mut files = Vec::new();
        let entries = std::fs::read_dir(path).map_err(|source| KbError::Io {
            path: path.to_owned(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| KbError::Io {
                path: path.to_owned(),
                source,
            })?;
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "toml") && p.is_file() {
                files.push(p);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(KbError::NoFiles(path.to_owned()));
        }
        files
    } else {
        vec![path.to_owned()]
    };
    let mut sources = Vec::with_capacity(files.len());
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| KbError::Io {
            path: f.clone(),
            source,
        })?;
        sources.push((f, text));
    }
    let borrowed: Vec<(&Path, &str)> = sources
        .iter()
        .map(|(p, t)| (p.as_path(), t.as_str()))
        .collect();
    parse_sources(path, &borrowed)
}

/// Parses a KB from in-memory sources (file name, text), in the order given.
pub fn parse_sources(path: &Path, sources: &[(&Path, &str)]) -> Result<KnowledgeBase, KbError> {
    let mut problems = Vec::new();
    let mut kb = KnowledgeBase {
        meta: Meta::default(),
        intents: Vec::new(),
        out_of_scope: Vec::new(),
        vocabulary: Vocabulary::default(),
        source: path.to_owned(),
        warnings: Vec::new(),
    };
    let mut meta_seen: Option<(PathBuf, usize)> = None;
    let mut ids: HashMap<String, (PathBuf, usize)> = HashMap::new();
    let mut related_refs: Vec<(PathBuf, usize, String, String)> = Vec::new();

    for &(file, text) in sources {
        let line_of = |offset: usize| line_at(text, offset);
        let problem = |line: usize, what: String, fix: &str| Problem {
            file: file.to_owned(),
            line,
            what,
            fix: fix.to_owned(),
        };
        let raw: RawFile = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let line = e.span().map(|s| line_of(s.start)).unwrap_or(0);
                let what = e.message().trim().to_owned();
                let fix = if what.contains("unknown field") {
                    "remove or rename the key; allowed keys are listed in the KB format (id, title, examples, answer, handoff, priority, collect, related)"
                } else if what.contains("missing field") {
                    "add the missing key to this table"
                } else {
                    "correct the TOML syntax or value type at this line"
                };
                problems.push(problem(line, what, fix));
                continue;
            }
        };
        if let Some(meta) = raw.meta {
            let line = line_of(meta.span().start);
            if let Some((first_file, first_line)) = &meta_seen {
                problems.push(problem(
                    line,
                    format!(
                        "[meta] is defined again (first at {}:{first_line})",
                        first_file.display()
                    ),
                    "keep a single [meta] table in one file",
                ));
            } else {
                meta_seen = Some((file.to_owned(), line));
                let meta = meta.into_inner();
                if let Some(rate) = meta.max_wrong_answer_rate
                    && !(0.0..=1.0).contains(&rate)
                {
                    problems.push(problem(
                        line,
                        format!("[meta] max_wrong_answer_rate = {rate} is not a share"),
                        "give a number from 0 to 1, e.g. 0.02 for at most 2 wrong answers in 100, or leave it out",
                    ));
                }
                kb.meta = Meta {
                    name: meta.name,
                    default_language: meta.default_language,
                    max_wrong_answer_rate: meta
                        .max_wrong_answer_rate
                        .filter(|r| (0.0..=1.0).contains(r))
                        .map(|r| r as f32),
                };
            }
        }
        for raw_intent in raw.intent {
            let intent_line = line_of(raw_intent.span().start);
            let ri = raw_intent.into_inner();
            let id_line = line_of(ri.id.span().start);
            let id = ri.id.into_inner();
            if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
                problems.push(problem(
                    id_line,
                    format!("intent id {id:?} is empty or contains whitespace"),
                    "use lowercase ASCII letters, digits, '_', '.' and '-' only, e.g. \"withdrawal.failed\"",
                ));
            } else if !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
            {
                // Still usable as a key; imported data sets (BANKING77's "Refund_not_showing_up") use
                // such ids, so this is reported but does not stop the KB from loading.
                kb.warnings.push(problem(
                    id_line,
                    format!("intent id {id:?} has characters outside [a-z0-9_.-]"),
                    "use lowercase ASCII letters, digits, '_', '.' and '-' only, e.g. \"withdrawal.failed\"",
                ));
            }
            if let Some((first_file, first_line)) = ids.get(&id) {
                problems.push(problem(
                    id_line,
                    format!(
                        "duplicate intent id {id:?} (first defined at {}:{first_line})",
                        first_file.display()
                    ),
                    "give each intent a unique id, or merge the two intents",
                ));
            } else {
                ids.insert(id.clone(), (file.to_owned(), id_line));
            }
            let title = ri.title.into_inner().0;
            if title.iter().all(|(_, t)| t.trim().is_empty()) {
                problems.push(problem(intent_line, format!("intent {id:?} has an empty title"), "give the intent a short title, e.g. title = { zh = \"提币失败\", en = \"Withdrawal failed\" }"));
            }
            let examples_line = line_of(ri.examples.span().start);
            let examples: Vec<(String, Vec<String>)> = ri
                .examples
                .into_inner()
                .0
                .into_iter()
                .map(|(l, v)| {
                    (
                        l,
                        v.into_iter()
                            .filter(|e| !e.trim().is_empty())
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            if examples.iter().all(|(_, v)| v.is_empty()) {
                problems.push(problem(
                    examples_line,
                    format!("intent {id:?} has no examples"),
                    "add at least one example question, e.g. examples = { zh = [\"提币失败了怎么办\"] }",
                ));
            }
            let answer_line = line_of(ri.answer.span().start);
            let answer = ri.answer.into_inner().0;
            if answer.is_empty() || answer.iter().all(|(_, a)| a.trim().is_empty()) {
                problems.push(problem(
                    answer_line,
                    format!("intent {id:?} has no answer"),
                    "add an answer in at least one language, e.g. answer = { zh = \"……\" }",
                ));
            }
            let priority = match ri.priority {
                None => Priority::default(),
                Some(p) => {
                    let line = line_of(p.span().start);
                    let p = p.into_inner();
                    Priority::parse(&p).unwrap_or_else(|| {
                        problems.push(problem(
                            line,
                            format!("unknown priority {p:?} in intent {id:?}"),
                            "use one of: low, normal, high, urgent",
                        ));
                        Priority::default()
                    })
                }
            };
            let mut collect = Vec::new();
            for c in ri.collect {
                let line = line_of(c.span().start);
                let c = c.into_inner();
                if c.is_empty()
                    || !c
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    problems.push(problem(line, format!("collect entry {c:?} in intent {id:?} is not a detail name"), "use snake_case detail names such as tx_id, amount, time, network, address, uid, coin"));
                } else if collect.contains(&c) {
                    problems.push(problem(
                        line,
                        format!("collect entry {c:?} is listed twice in intent {id:?}"),
                        "list each detail once",
                    ));
                } else {
                    collect.push(c);
                }
            }
            let mut related = Vec::new();
            for r in ri.related {
                let line = line_of(r.span().start);
                let r = r.into_inner();
                related_refs.push((file.to_owned(), line, id.clone(), r.clone()));
                related.push(r);
            }
            kb.intents.push(Intent {
                id,
                title,
                examples,
                answer,
                handoff: ri.handoff.unwrap_or(false),
                priority,
                collect,
                related,
                file: file.to_owned(),
                line: id_line,
            });
        }
        if let Some(oos) = raw.out_of_scope {
            for (lang, examples) in oos.into_inner().examples.0 {
                let examples = examples.into_iter().filter(|e| !e.trim().is_empty());
                match kb.out_of_scope.iter_mut().find(|(l, _)| *l == lang) {
                    Some((_, v)) => v.extend(examples),
                    None => kb.out_of_scope.push((lang, examples.collect())),
                }
            }
        }
        if let Some(vocab) = raw.vocabulary {
            kb.vocabulary
                .words
                .extend(vocab.words.into_iter().filter(|w| !w.trim().is_empty()));
            for group in vocab.synonyms {
                let line = line_of(group.span().start);
                let group: Vec<String> = group
                    .into_inner()
                    .into_iter()
                    .filter(|w| !w.trim().is_empty())
                    .collect();
                if group.len() < 2 {
                    problems.push(problem(line, "a synonym group has fewer than two terms".to_owned(), "list at least two terms that mean the same thing, e.g. [\"提现\", \"提币\"]"));
                } else {
                    kb.vocabulary.synonyms.push(group);
                }
            }
        }
    }
    for (file, line, from, to) in related_refs {
        if !ids.contains_key(&to) {
            problems.push(Problem {
                file,
                line,
                what: format!("intent {from:?} lists related intent {to:?}, which does not exist"),
                fix: "use the id of an existing intent, or remove the entry".to_owned(),
            });
        } else if from == to {
            problems.push(Problem {
                file,
                line,
                what: format!("intent {from:?} lists itself as related"),
                fix: "remove the entry".to_owned(),
            });
        }
    }
    if problems.is_empty() && kb.intents.is_empty() {
        let file = sources
            .first()
            .map(|(p, _)| p.to_path_buf())
            .unwrap_or_else(|| path.to_owned());
        problems.push(Problem {
            file,
            line: 0,
            what: "the knowledge base has no [[intent]]".to_owned(),
            fix: "add at least one [[intent]] table".to_owned(),
        });
    }
    if problems.is_empty() {
        Ok(kb)
    } else {
        Err(KbError::Invalid {
            path: path.to_owned(),
            problems,
        })
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    meta: Option<Spanned<RawMeta>>,
    #[serde(default)]
    intent: Vec<Spanned<RawIntent>>,
    out_of_scope: Option<Spanned<RawOutOfScope>>,
    vocabulary: Option<RawVocabulary>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    name: Option<String>,
    default_language: Option<String>,
    max_wrong_answer_rate: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    id: Spanned<String>,
    title: Spanned<LangMap<String>>,
    examples: Spanned<LangMap<Vec<String>>>,
    answer: Spanned<LangMap<String>>,
    handoff: Option<bool>,
    priority: Option<Spanned<String>>,
    #[serde(default)]
    collect: Vec<Spanned<String>>,
    #[serde(default)]
    related: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutOfScope {
    examples: LangMap<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVocabulary {
    #[serde(default)]
    words: Vec<String>,
    #[serde(default)]
    synonyms: Vec<Spanned<Vec<String>>>,
}

/// A `{ lang = value }` table that keeps the order the author wrote (the first language is the fallback).
struct LangMap<T>(Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for LangMap<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = LangMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table keyed by language code, e.g. { zh = …, en = … }")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, T)> = Vec::new();
                let mut seen = HashSet::new();
                while let Some((k, v)) = map.next_entry::<String, T>()? {
                    if !seen.insert(k.clone()) {
                        return Err(de::Error::custom(format!("language {k:?} appears twice")));
                    }
                    out.push((k, v));
                }
                Ok(LangMap(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KnowledgeBase, KbError> {
        parse_sources(Path::new("kb.toml"), &[(Path::new("kb.toml"), text)])
    }

    fn problems(text: &str) -> Vec<Problem> {
        match parse(text) {
            Err(KbError::Invalid { problems, .. }) => problems,
            other => panic!("expected an invalid KB, got {other:?}"),
        }
    }

    const GOOD: &str = r#"
[meta]
name = "Test"
default_language = "zh"

[[intent]]
id = "withdrawal.failed"
title = { zh = "提币失败", en = "Withdrawal failed" }
examples = { zh = ["提币失败了怎么办"], en = ["my withdrawal failed"] }
answer = { zh = "请检查地址。", en = "Check the address." }
priority = "high"
collect = ["tx_id", "amount"]
related = ["withdrawal.pending"]

[[intent]]
id = "withdrawal.pending"
title = { en = "Withdrawal pending" }
examples = { en = ["withdrawal pending for hours"] }
answer = { en = "Wait for confirmations." }

[out_of_scope]
examples = { zh = ["今天天气怎么样"] }

[vocabulary]
words = ["提币"]
synonyms = [["提现", "提币"]]
"#;

    #[test]
    fn a_valid_kb_loads_with_its_fields() {
        let kb = parse(GOOD).expect("valid");
        assert_eq!(kb.intents.len(), 2);
        let i = &kb.intents[0];
        assert_eq!(i.id, "withdrawal.failed");
        assert_eq!(i.priority, Priority::High);
        assert_eq!(i.collect, ["tx_id", "amount"]);
        assert_eq!(i.line, 7);
        assert_eq!(kb.meta.default_language.as_deref(), Some("zh"));
        assert_eq!(kb.out_of_scope[0].1, ["今天天气怎么样"]);
        assert_eq!(kb.vocabulary.synonyms, [["提现", "提币"]]);
        assert_eq!(kb.example_count(), 4);
    }

    #[test]
    fn answers_fall_back_to_the_default_then_the_first_language() {
        let kb = parse(GOOD).expect("valid");
        let failed = &kb.intents[0];
        assert_eq!(failed.answer_in("en", Some("zh")), "Check the address.");
        assert_eq!(failed.answer_in("ja", Some("zh")), "请检查地址。");
        let pending = &kb.intents[1];
        assert_eq!(
            pending.answer_in("zh", Some("zh")),
            "Wait for confirmations."
        );
    }

    #[test]
    fn bad_toml_names_the_line() {
        let p = problems("[[intent]]\nid = \"a\"\ntitle = { en = \"A\" \n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 3);
        assert!(p[0].fix.contains("TOML"), "{}", p[0]);
    }

    #[test]
    fn duplicate_ids_name_both_places() {
        let text = "[[intent]]\nid = \"a\"\ntitle = { en = \"A\" }\nexamples = { en = [\"x\"] }\nanswer = { en = \"y\" }\n\n[[intent]]\nid = \"a\"\ntitle = { en = \"A\" }\nexamples = { en = [\"z\"] }\nanswer = { en = \"y\" }\n";
        let p = problems(text);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 8);
        assert!(
            p[0].what.contains("duplicate intent id \"a\"") && p[0].what.contains("kb.toml:2"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn duplicate_ids_across_files_are_found() {
        let a = "[[intent]]\nid = \"a\"\ntitle = { en = \"A\" }\nexamples = { en = [\"x\"] }\nanswer = { en = \"y\" }\n";
        let err = parse_sources(
            Path::new("kb"),
            &[(Path::new("kb/1.toml"), a), (Path::new("kb/2.toml"), a)],
        );
        let Err(KbError::Invalid { problems, .. }) = err else {
            panic!("expected invalid")
        };
        assert_eq!(problems[0].file, Path::new("kb/2.toml"));
        assert!(problems[0].what.contains("kb/1.toml:2"));
    }

    #[test]
    fn unknown_related_id_is_reported_at_its_line() {
        let text = "[[intent]]\nid = \"a\"\ntitle = { en = \"A\" }\nexamples = { en = [\"x\"] }\nanswer = { en = \"y\" }\nrelated = [\"nope\"]\n";
        let p = problems(text);
        assert_eq!(p[0].line, 6);
        assert!(p[0].what.contains("\"nope\""), "{}", p[0]);
    }

    #[test]
    fn empty_examples_are_rejected() {
        let p = problems(
            "[[intent]]\nid = \"a\"\ntitle = { en = \"A\" }\nexamples = { en = [] }\nanswer = { en = \"y\" }\n",
        );
        assert_eq!(p[0].line, 4);
        assert!(p[0].what.contains("no examples"), "{}", p[0]);
    }

    #[test]
    fn unknown_priority_lists_the_allowed_ones() {
        let p = problems(
            "[[intent]]\nid = \"a\"\ntitle = { en = \"A\" }\nexamples = { en = [\"x\"] }\nanswer = { en = \"y\" }\npriority = \"asap\"\n",
        );
        assert_eq!(p[0].line, 6);
        assert!(p[0].fix.contains("low, normal, high, urgent"), "{}", p[0]);
    }

    #[test]
    fn an_id_with_whitespace_is_rejected() {
        let p = problems(
            "[[intent]]\nid = \"withdrawal failed\"\ntitle = { en = \"A\" }\nexamples = { en = [\"x\"] }\nanswer = { en = \"y\" }\n",
        );
        assert_eq!(p[0].line, 2);
        assert!(p[0].what.contains("whitespace"), "{}", p[0]);
    }

    #[test]
    fn an_id_outside_the_recommended_characters_is_a_warning() {
        let kb = parse("[[intent]]\nid = \"Refund_not_showing_up\"\ntitle = { en = \"A\" }\nexamples = { en = [\"x\"] }\nanswer = { en = \"y\" }\n").expect("loads");
        assert_eq!(kb.warnings.len(), 1);
        assert_eq!(kb.warnings[0].line, 2);
        assert!(
            kb.warnings[0].what.contains("[a-z0-9_.-]"),
            "{}",
            kb.warnings[0]
        );
    }

    #[test]
    fn a_missing_answer_is_rejected() {
        let p = problems(
            "[[intent]]\nid = \"a\"\ntitle = { en = \"A\" }\nexamples = { en = [\"x\"] }\n",
        );
        assert!(p[0].what.contains("missing field `answer`"), "{}", p[0]);
        assert_eq!(p[0].line, 1);
    }

    #[test]
    fn an_unknown_key_is_rejected_with_its_name() {
        let p = problems(
            "[[intent]]\nid = \"a\"\ntitle = { en = \"A\" }\nexamples = { en = [\"x\"] }\nanswer = { en = \"y\" }\nanwser = 1\n",
        );
        assert!(p[0].what.contains("anwser"), "{}", p[0]);
    }

    #[test]
    fn a_kb_without_intents_is_rejected() {
        let p = problems("[meta]\nname = \"x\"\n");
        assert!(p[0].what.contains("no [[intent]]"), "{}", p[0]);
    }

    #[test]
    fn a_wrong_answer_budget_must_be_a_share() {
        let intent = "[[intent]]\nid = \"a\"\ntitle = { en = \"A\" }\nexamples = { en = [\"x\"] }\nanswer = { en = \"y\" }\n";
        let p = problems(&format!("[meta]\nmax_wrong_answer_rate = 2\n{intent}"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].what.contains("max_wrong_answer_rate"), "{}", p[0]);
        assert!(p[0].fix.contains("0 to 1"), "{}", p[0]);
        let kb =
            parse(&format!("[meta]\nmax_wrong_answer_rate = 0.02\n{intent}")).expect("a valid KB");
        assert_eq!(kb.meta.max_wrong_answer_rate, Some(0.02));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = "[[intent]]\nid = \"a\"\ntitle = { en = \"A\" }\nexamples = { en = [] }\nanswer = { en = \"y\" }\npriority = \"x\"\nrelated = [\"b\"]\n";
        assert_eq!(problems(text).len(), 3);
    }

    #[test]
    fn a_one_term_synonym_group_is_rejected() {
        let text = "[[intent]]\nid = \"a\"\ntitle = { en = \"A\" }\nexamples = { en = [\"x\"] }\nanswer = { en = \"y\" }\n[vocabulary]\nsynonyms = [[\"only\"]]\n";
        assert!(problems(text)[0].what.contains("synonym"));
    }

    #[test]
    fn errors_display_file_line_and_fix() {
        let p = &problems(
            "[[intent]]\nid = \"a\"\ntitle = { en = \"A\" }\nexamples = { en = [\"x\"] }\nanswer = { en = \"y\" }\npriority = \"x\"\n",
        )[0];
        assert_eq!(
            p.to_string(),
            "kb.toml:6: unknown priority \"x\" in intent \"a\"; fix: use one of: low, normal, high, urgent"
        );
    }
}
