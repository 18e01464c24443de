//! `kefu kb suggest / accept / reject / history`: the suggestion side of the learning loop.
//!
//! `suggest` reads the labels staff gave resolved tickets and the questions the bot could not
//! answer from the configured database, asks `kefu_nlu::learn` what the KB could learn from them,
//! and prints each suggestion with its id, members and expected effect; suggestions already
//! accepted or rejected are left out. `accept` recomputes the suggestions, writes the chosen ones
//! into the KB's files with `toml_edit` (comments, order and layout kept), loads the edited KB
//! before anything is replaced (each file is written to a temporary file beside it and renamed
//! over it), and records the decision; a running `kefu run` picks the change up through its file
//! watcher. `reject` records that a suggestion is not wanted, so it is not suggested again.
//! `history` shows who labelled what and who accepted or rejected which suggestion, and when.
//! [`Curator`] does what `suggest`, `accept` and `reject` do for the staff console's suggestions
//! page, through the same functions.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use chrono::{DateTime, Utc};
use kefu_core::text::visible;
use kefu_nlu::engine::Engine;
use kefu_nlu::kb::KnowledgeBase;
use kefu_nlu::learn::{
    self, LabelKind, Labelled, LearnOptions, NewIntent, Suggestion, SuggestionKind, Suggestions,
    Unanswered,
};
use kefu_store::{KbDecision, MissSummary, Store, TicketLabel};
use serde_json::json;
use toml_edit::{DocumentMut, Item, Value};

use super::{Failure, emit, load_engine, open_store, outln, runtime};
use crate::settings::Settings;

/// How many distinct unanswered questions are read (the most frequent first); the most asked
/// [`learn::CLUSTER_MAX`] of those the KB does not answer now are clustered.
const MISSES_READ: i64 = 2_000;

/// What the database holds for the learning loop.
struct Inputs {
    labels: Vec<TicketLabel>,
    misses: Vec<MissSummary>,
    decisions: Vec<KbDecision>,
}

async fn read_inputs(store: &Store) -> Result<Inputs, Failure> {
    let other = |e: kefu_store::StoreError| Failure::Other(e.into());
    Ok(Inputs {
        labels: store.ticket_labels().await.map_err(other)?,
        misses: store.misses(MISSES_READ).await.map_err(other)?,
        decisions: store.kb_decisions().await.map_err(other)?,
    })
}

/// The suggestions for `engine`'s KB, without those already accepted or rejected.
fn suggestions(engine: &Engine, inputs: &Inputs, min_cluster: usize) -> Suggestions {
    let labels: Vec<Labelled> = inputs
        .labels
        .iter()
        .map(|l| Labelled {
            text: l.text.clone(),
            kind: match l.kind {
                kefu_store::LabelKind::Intent => LabelKind::Intent,
                kefu_store::LabelKind::NewTopic => LabelKind::NewTopic,
                kefu_store::LabelKind::NotAQuestion => LabelKind::NotAQuestion,
            },
            name: l.name.clone(),
        })
        .collect();
    let misses: Vec<Unanswered> = inputs
        .misses
        .iter()
        .map(|m| Unanswered {
            text: m.text.clone(),
            count: u32::try_from(m.count.max(1)).unwrap_or(u32::MAX),
        })
        .collect();
    let opts = LearnOptions {
        min_cluster,
        ..LearnOptions::default()
    };
    let mut found = learn::suggest(engine, &labels, &misses, &opts);
    let decided: HashSet<&str> = inputs
        .decisions
        .iter()
        .map(|d| d.suggestion.as_str())
        .collect();
    found
        .suggestions
        .retain(|s| !decided.contains(s.id.as_str()));
    found
}

/// Splits `kefu kb accept|reject ID… [KB]`'s words: the one naming an existing file or directory
/// (or a `.toml` path) is the KB, the others are suggestion ids.
pub fn ids_and_kb(words: Vec<String>) -> Result<(Vec<String>, Option<PathBuf>), Failure> {
    let mut ids = Vec::new();
    let mut kb = None;
    for w in words {
        let p = Path::new(&w);
        if p.exists() || w.ends_with(".toml") || w.contains('/') {
            if kb.is_some() {
                return Err(Failure::BadInput(anyhow!(
                    "two knowledge bases given ({} and {w}); fix: give suggestion ids and at most one KB",
                    kb.as_ref()
                        .map_or(String::new(), |k: &PathBuf| k.display().to_string())
                )));
            }
            kb = Some(PathBuf::from(w));
        } else {
            ids.push(w);
        }
    }
    if ids.is_empty() {
        return Err(Failure::BadInput(anyhow!(
            "no suggestion id given; fix: run `kefu kb suggest` and pass the ids it prints"
        )));
    }
    Ok((ids, kb))
}

fn pct(x: f32) -> String {
    format!("{:.1} %", x * 100.0)
}

fn points(x: f32) -> String {
    format!("{:+.1}", x * 100.0)
}

/// An effect's figures before → after: resolved, wrong answers, top-1.
fn changes(e: &learn::Effect) -> String {
    format!(
        "resolved {} → {} ({}), wrong answers {} → {} ({}), top-1 {} → {} ({})",
        pct(e.before.resolved_rate),
        pct(e.after.resolved_rate),
        points(e.resolved_change),
        pct(e.before.wrong_answer_rate),
        pct(e.after.wrong_answer_rate),
        points(e.wrong_answer_change),
        pct(e.before.top1_accuracy),
        pct(e.after.top1_accuracy),
        points(e.top1_change),
    )
}

/// Runs `work` (training, KB parsing, file writing) on the blocking thread pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Failure::Other(anyhow!("the KB work stopped: {e}")))?
}

/// The open suggestions for the KB at `kb` with their estimated effects, the engine trained on
/// it and what the database held.
struct Suggested {
    inputs: Inputs,
    engine: Engine,
    found: Suggestions,
}

/// What `kefu kb suggest` and the console's suggestions page show.
async fn suggested(store: &Store, kb: &Path, min_cluster: usize) -> Result<Suggested, Failure> {
    let inputs = read_inputs(store).await?;
    let kb = kb.to_owned();
    blocking(move || {
        let engine = load_engine(&kb)?.engine;
        let mut found = suggestions(&engine, &inputs, min_cluster);
        let train = |kb: KnowledgeBase| super::train(kb).ok();
        learn::estimate_effects(&engine, &mut found, &train);
        Ok(Suggested {
            inputs,
            engine,
            found,
        })
    })
    .await
}

/// What `kind intent` a suggestion is, as its heading says.
fn what(s: &Suggestion) -> String {
    match (&s.kind, &s.other) {
        (SuggestionKind::Overlap, Some(b)) => format!("overlap {} / {b}", s.intent),
        _ => format!("{} {}", s.kind.as_str(), s.intent),
    }
}

/// The expected effect of a suggestion, one line each.
fn effect_lines(s: &Suggestion) -> Vec<String> {
    let mut out = Vec::new();
    match &s.effect {
        Some(e) => {
            if let Some(t) = &e.traffic {
                out.push(format!(
                    "effect on the traffic ({} questions: those labelled and its own): {}",
                    t.before.cases,
                    changes(t)
                ));
            }
            out.push(format!("effect on the KB's held-out check: {}", changes(e)));
            out.push(format!(
                "expected: {}",
                if e.is_positive() {
                    "better (the bot's utility rises)"
                } else {
                    "no better (the bot's utility does not rise)"
                }
            ));
        }
        None if s.kind == SuggestionKind::Overlap => {
            out.push("effect: none on answers (no example changes)".to_owned());
        }
        None => out.push("effect: could not be estimated".to_owned()),
    }
    out
}

/// `kefu kb suggest`.
pub fn suggest(
    settings: &Settings,
    kb: &Path,
    json: bool,
    min_cluster: usize,
) -> Result<(), Failure> {
    runtime()?.block_on(async {
        let store = open_store(settings).await?;
        let Suggested {
            inputs,
            engine,
            found,
        } = suggested(&store, kb, min_cluster).await?;
        let mut out = String::new();
        if json {
            let report = json!({
                "kb": kb.display().to_string(),
                "labels": inputs.labels.len(),
                "unanswered": inputs.misses.len(),
                "decided": inputs.decisions.len(),
                "similarity": found.similarity,
                "held_out": learn::held_out_score(&engine),
                "suggestions": found.suggestions,
            });
            outln!(out, "{report}");
            return emit(&out);
        }
        let n = found.suggestions.len();
        outln!(
            out,
            "{n} suggestion{} for {} from {} labelled ticket{} and {} unanswered question{} ({} decided before, not shown)",
            if n == 1 { "" } else { "s" },
            kb.display(),
            inputs.labels.len(),
            if inputs.labels.len() == 1 { "" } else { "s" },
            inputs.misses.len(),
            if inputs.misses.len() == 1 { "" } else { "s" },
            inputs.decisions.len()
        );
        if n == 0 {
            return emit(&out);
        }
        outln!(
            out,
            "effects: with and without each suggestion, on the traffic (the labelled questions and the suggestion's own) and on the KB's held-out check (as `kefu kb check`); a suggestion is better when the bot's utility on the traffic rises. Clusters at cosine similarity {:.3}, chosen on the KB",
            found.similarity
        );
        for s in &found.suggestions {
            outln!(out);
            outln!(out, "[{}] {}", s.id, what(s));
            outln!(out, "  {}", visible(&s.summary));
            for line in effect_lines(s) {
                outln!(out, "  {line}");
            }
            for m in &s.members {
                let from = match m.source {
                    learn::Source::Label => "labelled",
                    learn::Source::Miss => "asked",
                };
                let now = match m.now {
                    kefu_nlu::engine::DecisionKind::Answer => "answered as",
                    kefu_nlu::engine::DecisionKind::Clarify => "asks about",
                    kefu_nlu::engine::DecisionKind::Escalate => "hands over, closest",
                };
                outln!(
                    out,
                    "  - {:?} ({}, {from} {}×; now {now} {})",
                    visible(&m.text),
                    m.language,
                    m.count,
                    m.now_intent.as_deref().unwrap_or("-")
                );
            }
        }
        outln!(
            out,
            "\naccept: kefu kb accept ID… --as NAME   reject: kefu kb reject ID… --as NAME"
        );
        emit(&out)
    })
}

/// The chosen suggestions, or bad input naming an id that is unknown or already decided.
fn chosen(
    found: &Suggestions,
    inputs: &Inputs,
    ids: &[String],
) -> Result<Vec<Suggestion>, Failure> {
    let mut out: Vec<Suggestion> = Vec::new();
    for id in ids {
        let id = id.trim().to_lowercase();
        if out.iter().any(|s| s.id == id) {
            continue;
        }
        if let Some(d) = inputs.decisions.iter().find(|d| d.suggestion == id) {
            return Err(Failure::BadInput(anyhow!(
                "suggestion {id} was already {} by {} at {}; fix: run `kefu kb suggest` for the current ones",
                if d.accepted { "accepted" } else { "rejected" },
                d.by,
                d.at.format("%Y-%m-%d %H:%M")
            )));
        }
        match found.suggestions.iter().find(|s| s.id == id) {
            Some(s) => out.push(s.clone()),
            None => {
                return Err(Failure::BadInput(anyhow!(
                    "no suggestion {id} (the labels, the unanswered questions or the KB changed since it was shown); fix: run `kefu kb suggest` and use an id it prints"
                )));
            }
        }
    }
    Ok(out)
}

fn detail(s: &Suggestion, files: &[PathBuf]) -> serde_json::Value {
    json!({
        "kind": s.kind,
        "intent": s.intent,
        "other": s.other,
        "name": s.name,
        "members": s.members.iter().map(|m| json!({"text": m.text, "language": m.language})).collect::<Vec<_>>(),
        "new_intent": s.new_intent.as_ref().map(|n| json!({"id": n.id, "title": n.title})),
        "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
    })
}

/// What [`decide`] did: a line per suggestion and, after an accept, a line about the edited KB.
struct Decided {
    lines: Vec<String>,
    kb: Option<String>,
}

/// Accepts (writes into the KB files, then records) or rejects (records) the suggestions `ids`
/// as `by`, recomputed on the KB at `kb`: what `kefu kb accept|reject` and the console do.
async fn decide(
    store: &Store,
    kb: &Path,
    ids: &[String],
    by: &str,
    accept: bool,
    min_cluster: usize,
) -> Result<Decided, Failure> {
    let inputs = read_inputs(store).await?;
    let now = Utc::now();
    let (chosen, files_of, edited) = {
        let (kb, ids, by) = (kb.to_owned(), ids.to_vec(), by.to_owned());
        blocking(move || {
            let engine = load_engine(&kb)?.engine;
            let found = suggestions(&engine, &inputs, min_cluster);
            let chosen = chosen(&found, &inputs, &ids)?;
            if !accept {
                return Ok((chosen, Vec::new(), None));
            }
            let (edits, files_of) = plan(engine.kb(), &chosen, &by, now)?;
            let edited = validate(&kb, &edits, &chosen)?;
            write_files(&edits)?;
            Ok((chosen, files_of, Some(edited)))
        })
        .await?
    };
    let mut lines = Vec::new();
    for (i, s) in chosen.iter().enumerate() {
        let files = files_of.get(i).map_or(&[][..], Vec::as_slice);
        let decision = KbDecision {
            suggestion: s.id.clone(),
            accepted: accept,
            by: by.to_owned(),
            at: now,
            summary: s.summary.clone(),
            detail: detail(s, files),
        };
        store
            .record_kb_decision(&decision)
            .await
            .with_context(|| {
                if accept {
                    format!(
                        "recording the acceptance of {} (the KB files were already written)",
                        s.id
                    )
                } else {
                    format!("recording the rejection of {}", s.id)
                }
            })
            .map_err(Failure::Other)?;
        lines.push(if accept {
            let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            format!(
                "accepted {} ({by}): {} — written to {}",
                s.id,
                what_was_done(s),
                files.join(", ")
            )
        } else {
            format!("rejected {} ({by}): it will not be suggested again", s.id)
        });
    }
    let kb = edited.map(|edited| {
        format!(
            "{}: valid — {} intents, {} examples; a running `kefu run` reloads it when it sees the files change",
            kb.display(),
            edited.intents.len(),
            edited.example_count()
        )
    });
    Ok(Decided { lines, kb })
}

/// `kefu kb accept` (`accept`) or `kefu kb reject`.
fn decide_command(
    settings: &Settings,
    kb: &Path,
    ids: &[String],
    by: &str,
    accept: bool,
    min_cluster: usize,
) -> Result<(), Failure> {
    let by = staff_name(by)?;
    runtime()?.block_on(async {
        let store = open_store(settings).await?;
        let decided = decide(&store, kb, ids, &by, accept, min_cluster).await?;
        let mut out = String::new();
        for line in decided.lines.iter().chain(&decided.kb) {
            outln!(out, "{line}");
        }
        emit(&out)
    })
}

/// `kefu kb accept`.
pub fn accept(
    settings: &Settings,
    kb: &Path,
    ids: &[String],
    by: &str,
    min_cluster: usize,
) -> Result<(), Failure> {
    decide_command(settings, kb, ids, by, true, min_cluster)
}

fn what_was_done(s: &Suggestion) -> String {
    let n = s.members.len();
    match s.kind {
        SuggestionKind::AddExamples => format!(
            "added {n} example{} to {}",
            if n == 1 { "" } else { "s" },
            s.intent
        ),
        SuggestionKind::NewTopic => format!(
            "added intent {} with {n} example{} and a placeholder answer that hands over to staff (write its answer)",
            s.intent,
            if n == 1 { "" } else { "s" }
        ),
        SuggestionKind::Overlap => format!(
            "listed {} and {} as related to each other",
            s.intent,
            s.other.as_deref().unwrap_or("-")
        ),
    }
}

/// `kefu kb reject`.
pub fn reject(
    settings: &Settings,
    kb: &Path,
    ids: &[String],
    by: &str,
    min_cluster: usize,
) -> Result<(), Failure> {
    decide_command(settings, kb, ids, by, false, min_cluster)
}

/// The console's suggestions page on the KB at a path (the one `kefu run` serves) and the
/// database of `store`: the same suggestions, accepts and rejects as `kefu kb suggest|accept|
/// reject`, with the default minimum cluster size. Decisions are made one at a time.
#[derive(Debug)]
pub struct Curator {
    store: Store,
    kb: PathBuf,
    deciding: tokio::sync::Mutex<()>,
}

impl Curator {
    pub fn new(store: Store, kb: &Path) -> Self {
        Self {
            store,
            kb: kb.to_owned(),
            deciding: tokio::sync::Mutex::new(()),
        }
    }
}

/// A failure as one line for the console.
fn message(failure: Failure) -> String {
    match failure {
        Failure::BadInput(e) | Failure::Other(e) => format!("{e:#}"),
    }
}

impl kefu_console::KbCurator for Curator {
    fn suggestions(
        &self,
    ) -> kefu_console::BoxFuture<'_, Result<Vec<kefu_console::SuggestionView>, String>> {
        Box::pin(async move {
            let found = suggested(&self.store, &self.kb, learn::DEFAULT_MIN_CLUSTER)
                .await
                .map_err(message)?
                .found;
            Ok(found
                .suggestions
                .iter()
                .map(|s| kefu_console::SuggestionView {
                    id: s.id.clone(),
                    kind: s.kind.as_str().to_owned(),
                    summary: s.summary.clone(),
                    intent: Some(match &s.other {
                        Some(b) => format!("{} / {b}", s.intent),
                        None => s.intent.clone(),
                    }),
                    texts: s.members.iter().map(|m| m.text.clone()).collect(),
                    effect: effect_lines(s).join("; "),
                    positive: s.effect.as_ref().is_some_and(|e| e.is_positive()),
                })
                .collect())
        })
    }

    fn decide<'a>(
        &'a self,
        id: &'a str,
        accept: bool,
        by: &'a str,
    ) -> kefu_console::BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let by = staff_name(by).map_err(message)?;
            let _one_at_a_time = self.deciding.lock().await;
            let decided = decide(
                &self.store,
                &self.kb,
                &[id.to_owned()],
                &by,
                accept,
                learn::DEFAULT_MIN_CLUSTER,
            )
            .await
            .map_err(message)?;
            Ok(decided.lines.join("; "))
        })
    }
}

fn staff_name(by: &str) -> Result<String, Failure> {
    let by = by.trim();
    if by.is_empty() || by.chars().any(char::is_control) {
        return Err(Failure::BadInput(anyhow!(
            "--as needs your name; fix: e.g. --as lena"
        )));
    }
    Ok(by.to_owned())
}

/// `kefu kb history`.
pub fn history(settings: &Settings, json: bool) -> Result<(), Failure> {
    runtime()?.block_on(async {
        let store = open_store(settings).await?;
        let inputs = read_inputs(&store).await?;
        let mut out = String::new();
        if json {
            let report = json!({
                "labels": inputs.labels,
                "decisions": inputs.decisions,
            });
            outln!(out, "{report}");
            return emit(&out);
        }
        // One timeline, oldest first.
        enum Event<'a> {
            Label(&'a TicketLabel),
            Decision(&'a KbDecision),
        }
        let mut events: Vec<(DateTime<Utc>, Event)> = inputs
            .labels
            .iter()
            .map(|l| (l.labelled_at, Event::Label(l)))
            .chain(inputs.decisions.iter().map(|d| (d.at, Event::Decision(d))))
            .collect();
        events.sort_by_key(|e| e.0);
        if events.is_empty() {
            outln!(out, "no labels or KB decisions recorded");
            return emit(&out);
        }
        for (at, e) in events {
            let when = at.format("%Y-%m-%d %H:%M");
            match e {
                Event::Label(l) => outln!(
                    out,
                    "{when}  {:<12}  labelled ticket {} as {}{}: {:?}",
                    visible(&l.labelled_by),
                    l.ticket_id,
                    l.kind.as_str().replace('_', " "),
                    l.name
                        .as_deref()
                        .map(|n| format!(" {}", visible(n)))
                        .unwrap_or_default(),
                    visible(&l.text)
                ),
                Event::Decision(d) => outln!(
                    out,
                    "{when}  {:<12}  {} {}: {}",
                    visible(&d.by),
                    if d.accepted { "accepted" } else { "rejected" },
                    d.suggestion,
                    visible(&d.summary)
                ),
            }
        }
        emit(&out)
    })
}

/// A TOML string literal.
fn quoted(text: &str) -> String {
    Value::from(text).to_string().trim().to_owned()
}

/// A TOML key: bare when it can be.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        k.to_owned()
    } else {
        quoted(k)
    }
}

/// The new files' texts (file, text) and, per suggestion, the files it changes.
type Plan = (Vec<(PathBuf, String)>, Vec<Vec<PathBuf>>);

/// Plans the edits of the chosen suggestions: each file read once, edited for every suggestion
/// that touches it.
fn plan(
    kb: &KnowledgeBase,
    chosen: &[Suggestion],
    by: &str,
    at: DateTime<Utc>,
) -> Result<Plan, Failure> {
    let mut docs: BTreeMap<PathBuf, (DocumentMut, String)> = BTreeMap::new();
    /// The file's document and what is appended to it, read on first use.
    fn open<'a>(
        docs: &'a mut BTreeMap<PathBuf, (DocumentMut, String)>,
        file: &Path,
    ) -> Result<&'a mut (DocumentMut, String), Failure> {
        if !docs.contains_key(file) {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))
                .map_err(Failure::Other)?;
            let doc: DocumentMut = text
                .parse()
                .with_context(|| format!("parsing {}", file.display()))
                .map_err(Failure::Other)?;
            docs.insert(file.to_owned(), (doc, String::new()));
        }
        docs.get_mut(file)
            .ok_or_else(|| Failure::Other(anyhow!("{} was not read", file.display())))
    }
    let file_of = |intent: &str| -> Result<PathBuf, Failure> {
        kb.intent(intent)
            .map(|i| i.file.clone())
            .ok_or_else(|| Failure::Other(anyhow!("intent {intent} is not in the KB any more")))
    };
    let mut files_of = Vec::new();
    for s in chosen {
        let note = format!("kefu kb accept {} ({by}, {})", s.id, at.format("%Y-%m-%d"));
        let mut files = Vec::new();
        match s.kind {
            SuggestionKind::AddExamples => {
                let file = file_of(&s.intent)?;
                let (doc, _) = open(&mut docs, &file)?;
                let texts: Vec<(&str, &str)> = s
                    .members
                    .iter()
                    .map(|m| (m.language.as_str(), m.text.as_str()))
                    .collect();
                add_examples(doc, &s.intent, &texts, &note)
                    .map_err(|e| Failure::Other(anyhow!("{}: {e}", file.display())))?;
                files.push(file);
            }
            SuggestionKind::Overlap => {
                let other = s.other.clone().unwrap_or_default();
                for (from, to) in [(&s.intent, &other), (&other, &s.intent)] {
                    let file = file_of(from)?;
                    let (doc, _) = open(&mut docs, &file)?;
                    add_related(doc, from, to)
                        .map_err(|e| Failure::Other(anyhow!("{}: {e}", file.display())))?;
                    if !files.contains(&file) {
                        files.push(file);
                    }
                }
            }
            SuggestionKind::NewTopic => {
                let Some(n) = &s.new_intent else {
                    return Err(Failure::Other(anyhow!(
                        "suggestion {} has no intent to add",
                        s.id
                    )));
                };
                let file = n.file.clone();
                let (_, appended) = open(&mut docs, &file)?;
                appended.push_str(&new_intent_block(s, n, &note));
                files.push(file);
            }
        }
        files_of.push(files);
    }
    let edits = docs
        .into_iter()
        .map(|(file, (doc, appended))| {
            let mut text = doc.to_string();
            if !appended.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&appended);
            (file, text)
        })
        .collect();
    Ok((edits, files_of))
}

/// The `[[intent]]` table with this id.
fn intent_table<'d>(
    doc: &'d mut DocumentMut,
    id: &str,
) -> Result<&'d mut toml_edit::Table, String> {
    doc.get_mut("intent")
        .and_then(Item::as_array_of_tables_mut)
        .and_then(|tables| {
            tables
                .iter_mut()
                .find(|t| t.get("id").and_then(Item::as_str) == Some(id))
        })
        .ok_or_else(|| format!("no [[intent]] with id {id:?} in this file"))
}

/// Appends examples to an intent's `examples` lists (a language it has no list for gets one),
/// each new value laid out like the list's last one; in a list written one value per line, the
/// first new one is preceded by a comment saying where it came from.
fn add_examples(
    doc: &mut DocumentMut,
    intent: &str,
    texts: &[(&str, &str)],
    note: &str,
) -> Result<(), String> {
    let table = intent_table(doc, intent)?;
    let examples = table
        .get_mut("examples")
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| format!("intent {intent:?} has no examples table"))?;
    let mut commented: HashSet<String> = HashSet::new();
    let mut new_keys = false;
    for (lang, text) in texts {
        match examples.get_mut(lang).and_then(Item::as_array_mut) {
            Some(list) => {
                let mut value = Value::from(*text);
                let Some(last) = list.iter().last() else {
                    list.push(*text);
                    continue;
                };
                let decor = |s: Option<&toml_edit::RawString>, default: &str| {
                    s.and_then(|p| p.as_str()).unwrap_or(default).to_owned()
                };
                let prefix = decor(last.decor().prefix(), " ");
                let suffix = decor(last.decor().suffix(), "");
                let prefix = match prefix.rfind('\n') {
                    // One value per line: keep the indentation, not the comments above the last.
                    Some(k) => {
                        let indent = prefix[k + 1..].to_owned();
                        if commented.insert((*lang).to_owned()) {
                            // What follows the last value's comma on its line (a comment) stays
                            // with it; the new values go below, after a note of where they came from.
                            let trailing = list.trailing().as_str().unwrap_or("").to_owned();
                            let (kept, rest) = match trailing.rfind('\n') {
                                Some(k) => (trailing[..k].to_owned(), trailing[k..].to_owned()),
                                None => (String::new(), trailing),
                            };
                            list.set_trailing(rest);
                            format!("{kept}\n{indent}# {note}\n{indent}")
                        } else {
                            format!("\n{indent}")
                        }
                    }
                    None => prefix,
                };
                value.decor_mut().set_prefix(prefix);
                value.decor_mut().set_suffix(suffix);
                list.push_formatted(value);
            }
            None => {
                if examples.get(lang).is_some() {
                    return Err(format!(
                        "examples.{lang} of intent {intent:?} is not a list"
                    ));
                }
                let mut list = toml_edit::Array::new();
                list.push(*text);
                examples.insert(lang, Item::Value(Value::Array(list)));
                new_keys = true;
            }
        }
    }
    // A language added to `examples = { … }` is laid out like the others.
    if new_keys
        && let Some(inline) = table
            .get_mut("examples")
            .and_then(Item::as_inline_table_mut)
    {
        inline.fmt();
    }
    Ok(())
}

/// Adds `to` to the intent's `related` list (creating the list), unless it is there.
fn add_related(doc: &mut DocumentMut, from: &str, to: &str) -> Result<(), String> {
    let table = intent_table(doc, from)?;
    match table.get_mut("related") {
        Some(item) => {
            let list = item
                .as_array_mut()
                .ok_or_else(|| format!("related of intent {from:?} is not a list"))?;
            if !list.iter().any(|v| v.as_str() == Some(to)) {
                list.push(to);
            }
        }
        None => {
            let mut list = toml_edit::Array::new();
            list.push(to);
            table.insert("related", Item::Value(Value::Array(list)));
        }
    }
    Ok(())
}

/// A new `[[intent]]` table for a new topic, with a comment for the KB author.
fn new_intent_block(s: &Suggestion, n: &NewIntent, note: &str) -> String {
    let mut out = String::new();
    let questions = s.members.len();
    out.push_str(&format!(
        "\n# Added by {note}: a new topic from {questions} question{}.\n",
        if questions == 1 { "" } else { "s" }
    ));
    out.push_str(
        "# FOR THE KB AUTHOR: the answer is a placeholder that tells the user a person will help and\n\
         # opens a ticket (handoff = true). Write the real answer and title, rename the id if you\n\
         # like, and remove `handoff` if the bot can answer alone.\n",
    );
    out.push_str("[[intent]]\n");
    out.push_str(&format!("id = {}\n", quoted(&n.id)));
    let inline = |pairs: &[(String, String)]| {
        pairs
            .iter()
            .map(|(l, t)| format!("{} = {}", key(l), quoted(t)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    out.push_str(&format!("title = {{ {} }}\n", inline(&n.title)));
    let mut languages: Vec<&str> = Vec::new();
    for m in &s.members {
        if !languages.contains(&m.language.as_str()) {
            languages.push(&m.language);
        }
    }
    for lang in languages {
        out.push_str(&format!("examples.{} = [\n", key(lang)));
        for m in s.members.iter().filter(|m| m.language == lang) {
            out.push_str(&format!("  {},\n", quoted(&m.text)));
        }
        out.push_str("]\n");
    }
    for (lang, text) in &n.answer {
        out.push_str(&format!("answer.{} = {}\n", key(lang), quoted(text)));
    }
    out.push_str("handoff = true\n");
    out
}

/// Loads the KB as it will be after the edits, from the edited texts in memory, and checks it
/// holds what was accepted: a broken or unexpected result is refused before any file is written.
fn validate(
    kb: &Path,
    edits: &[(PathBuf, String)],
    chosen: &[Suggestion],
) -> Result<KnowledgeBase, Failure> {
    let mut sources = super::reload::read_sources(kb).map_err(|e| Failure::Other(e.into()))?;
    for (file, text) in edits {
        match sources.iter_mut().find(|(f, _)| f == file) {
            Some((_, t)) => t.clone_from(text),
            None => {
                return Err(Failure::Other(anyhow!(
                    "{} is not one of the KB's files; nothing was written",
                    file.display()
                )));
            }
        }
    }
    let borrowed: Vec<(&Path, &str)> = sources
        .iter()
        .map(|(p, t)| (p.as_path(), t.as_str()))
        .collect();
    let edited = kefu_nlu::kb::parse_sources(kb, &borrowed)
        .map_err(|e| {
            anyhow::Error::new(e).context("the edited KB would not load; nothing was written")
        })
        .map_err(Failure::Other)?;
    for s in chosen {
        let has = |intent: &str, text: &str| {
            edited
                .intent(intent)
                .is_some_and(|i| i.all_examples().any(|e| e == text))
        };
        let ok = match s.kind {
            SuggestionKind::AddExamples | SuggestionKind::NewTopic => {
                s.members.iter().all(|m| has(&s.intent, &m.text))
            }
            SuggestionKind::Overlap => s.other.as_deref().is_some_and(|b| {
                edited
                    .intent(&s.intent)
                    .is_some_and(|i| i.related.iter().any(|r| r == b))
                    && edited
                        .intent(b)
                        .is_some_and(|i| i.related.iter().any(|r| r == &s.intent))
            }),
        };
        if !ok {
            return Err(Failure::Other(anyhow!(
                "the edited KB does not hold suggestion {} as planned; nothing was written",
                s.id
            )));
        }
    }
    Ok(edited)
}

/// Writes each file through a temporary file beside it, renamed over it (its permissions kept).
fn write_files(edits: &[(PathBuf, String)]) -> Result<(), Failure> {
    for (file, text) in edits {
        let write = || -> anyhow::Result<()> {
            let dir = match file.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => PathBuf::from("."),
            };
            let permissions = std::fs::metadata(file)?.permissions();
            let mut tmp = tempfile::Builder::new()
                .prefix(".kefu-accept-")
                .suffix(".tmp")
                .tempfile_in(&dir)?;
            tmp.write_all(text.as_bytes())?;
            tmp.as_file().sync_all()?;
            std::fs::set_permissions(tmp.path(), permissions)?;
            tmp.persist(file)?;
            Ok(())
        };
        write()
            .with_context(|| format!("writing {}", file.display()))
            .map_err(Failure::Other)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# Withdrawals.

[[intent]]
id = "withdrawal.failed"
title = { zh = "提币失败", en = "Withdrawal failed" }
# the Chinese examples
examples.zh = [
  "提币失败",
  "提现失败了怎么办", # a comment after a value
]
examples.en = ["withdrawal failed", "cannot withdraw"]
answer.zh = "请检查地址。"
related = ["withdrawal.pending"]

[[intent]]
id = "withdrawal.pending"
title = { zh = "提币未到账" }
examples = { zh = ["提币没到账"] }
answer = { zh = "请稍等。" }
"#;

    #[test]
    fn examples_are_appended_in_the_lists_own_layout_keeping_comments() {
        let mut doc: DocumentMut = FILE.parse().unwrap();
        add_examples(
            &mut doc,
            "withdrawal.failed",
            &[
                ("zh", "提币被风控了"),
                ("zh", "提币\"审核\"失败"),
                ("en", "withdrawal blocked"),
                ("ja", "出金できない"),
            ],
            "kefu kb accept abcd1234 (lena, 2026-12-05)",
        )
        .unwrap();
        add_examples(
            &mut doc,
            "withdrawal.pending",
            &[("en", "not arrived")],
            "n",
        )
        .unwrap();
        add_related(&mut doc, "withdrawal.failed", "withdrawal.pending").unwrap();
        add_related(&mut doc, "withdrawal.pending", "withdrawal.failed").unwrap();
        let text = doc.to_string();
        assert!(text.starts_with("# Withdrawals.\n"), "{text}");
        assert!(text.contains("# the Chinese examples\n"), "{text}");
        assert!(
            text.contains(
                "  \"提现失败了怎么办\", # a comment after a value\n  # kefu kb accept abcd1234 (lena, 2026-12-05)\n  \"提币被风控了\",\n  '提币\"审核\"失败',\n]"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "examples.en = [\"withdrawal failed\", \"cannot withdraw\", \"withdrawal blocked\"]"
            ),
            "{text}"
        );
        assert!(text.contains("examples.ja = [\"出金できない\"]"), "{text}");
        assert!(
            text.contains("examples = { zh = [\"提币没到账\"], en = [\"not arrived\"] }"),
            "{text}"
        );
        assert_eq!(text.matches("\"withdrawal.pending\"").count(), 2, "{text}");
        assert!(text.contains("related = [\"withdrawal.failed\"]"), "{text}");
        let kb = kefu_nlu::kb::parse_sources(Path::new("a.toml"), &[(Path::new("a.toml"), &text)])
            .unwrap();
        let failed = kb.intent("withdrawal.failed").unwrap();
        assert_eq!(failed.all_examples().count(), 8);
        assert!(failed.all_examples().any(|e| e == "提币\"审核\"失败"));
        assert_eq!(failed.related, ["withdrawal.pending"]);
    }

    #[test]
    fn a_missing_intent_is_an_error() {
        let mut doc: DocumentMut = FILE.parse().unwrap();
        assert!(add_examples(&mut doc, "nope", &[("zh", "x")], "n").is_err());
    }

    #[test]
    fn a_new_topic_is_a_valid_intent_table_marked_for_the_author() {
        let s = Suggestion {
            id: "0badcafe".to_owned(),
            kind: SuggestionKind::NewTopic,
            intent: "staking-rewards".to_owned(),
            other: None,
            name: Some("Staking rewards".to_owned()),
            summary: String::new(),
            members: ["质押收益怎么算", "staking \"rewards\"?"]
                .iter()
                .map(|t| learn::Member {
                    text: (*t).to_owned(),
                    language: if t.is_ascii() { "en" } else { "zh" }.to_owned(),
                    source: learn::Source::Miss,
                    count: 1,
                    now: kefu_nlu::engine::DecisionKind::Escalate,
                    now_intent: None,
                })
                .collect(),
            answered_wrong_now: 0,
            not_resolved_now: 2,
            new_intent: None,
            effect: None,
        };
        let n = NewIntent {
            id: s.intent.clone(),
            title: vec![("en".to_owned(), "Staking rewards".to_owned())],
            answer: vec![
                ("zh".to_owned(), "转人工".to_owned()),
                ("en".to_owned(), "handing over".to_owned()),
            ],
            file: PathBuf::from("a.toml"),
        };
        let text = format!(
            "{FILE}{}",
            new_intent_block(&s, &n, "kefu kb accept 0badcafe (lena, 2026-12-05)")
        );
        assert!(text.contains("# FOR THE KB AUTHOR"), "{text}");
        let kb = kefu_nlu::kb::parse_sources(Path::new("a.toml"), &[(Path::new("a.toml"), &text)])
            .unwrap();
        let added = kb.intent("staking-rewards").unwrap();
        assert!(added.handoff);
        assert_eq!(added.all_examples().count(), 2);
        assert!(added.all_examples().any(|e| e == "staking \"rewards\"?"));
        assert_eq!(added.answer_in("en", None), "handing over");
    }

    #[test]
    fn ids_and_the_kb_are_told_apart() {
        let (ids, kb) = ids_and_kb(vec![
            "abcd1234".into(),
            "config/kb".into(),
            "0badcafe".into(),
        ])
        .unwrap();
        assert_eq!(ids, ["abcd1234", "0badcafe"]);
        assert_eq!(kb, Some(PathBuf::from("config/kb")));
        assert!(ids_and_kb(vec!["config/kb".into()]).is_err());
    }
}
