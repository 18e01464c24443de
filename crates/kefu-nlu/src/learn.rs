//! The learning loop's suggestions: what staff's labels and the questions the bot could not answer
//! say the KB should learn.
//!
//! Input: the trained [`Engine`] (and so its KB), the questions staff labelled when they resolved
//! a ticket ([`Labelled`]: an existing intent, a new topic with a name, or not a question), and the
//! questions the bot did not answer with how often each was asked ([`Unanswered`]). Output:
//! [`Suggestion`]s of three kinds, each with a stable id (a short hash of its kind, intent and
//! sorted texts):
//! - **add examples**: labelled questions of an existing intent, grouped per intent, without the
//!   texts that are already examples in the KB (compared normalised);
//! - **new topic**: a cluster of unanswered questions, with the questions staff labelled as a new
//!   topic grouped by the name they gave, that look like one topic; at least
//!   [`LearnOptions::min_cluster`] texts. Questions the engine now answers, that staff labelled, or
//!   that are KB examples already are not clustered;
//! - **overlap**: labelled questions of intent A that the engine ranks first as B, at least
//!   [`OVERLAP_MIN`] of them: the two intents overlap.
//!
//! Clusters are made with the engine's own features ([`Engine::text_vectors`], in a space fitted on
//! a sample of the KB's examples and the clustered texts, so words the KB uses a lot weigh little)
//! by average-linkage agglomeration, merging while the cosine similarity of two clusters reaches a
//! threshold. The threshold is chosen on the KB by acting the task out: a fifth of its intents play
//! new topics and its `[out_of_scope]` examples play unrelated questions, in a space fitted on the
//! other intents; the threshold that best recovers those topics wins (pairwise F0.5, which weighs
//! precision over recall: a cluster that mixes topics is worse than two that split one).
//!
//! [`estimate_effects`] gives each add-examples and new-topic suggestion its expected effect: the
//! KB's held-out check ([`Engine::validation`]) with and without it, scored over the same messages
//! in both cases. Without the suggestion these are the KB's held-out examples and the suggestion's
//! texts as the current engine decides them (none of them is in its training); with it, the new
//! engine's held-out predictions, which cover the KB's examples and the suggestion's texts. An
//! overlap changes no example, so it has no effect to estimate.
//!
//! Every text is scanned for secrets ([`crate::secrets`]): a text that holds one, or the label a
//! redaction left, is never suggested.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::engine::{Decision, DecisionKind, Engine, Gold, HeldOutCase, Policy, decision_utility};
use crate::features::SparseVec;
use crate::kb::{Intent, KnowledgeBase, Priority};
use crate::lang;
use crate::normalize::normalize;
use crate::secrets::find_secrets;

/// What staff said a question was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelKind {
    /// An intent of the KB (its id is the label's name).
    Intent,
    /// A topic the KB does not cover (the label's name names it).
    NewTopic,
    /// Not a question the KB should answer (a greeting, noise).
    NotAQuestion,
}

/// A question staff labelled.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    /// The user's question (redacted).
    pub text: String,
    /// What staff said it was.
    pub kind: LabelKind,
    /// The intent id or the new topic's name.
    pub name: Option<String>,
}

/// A question the bot did not answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Unanswered {
    /// The question (redacted).
    pub text: String,
    /// How often it was asked.
    pub count: u32,
}

/// The fewest texts a new-topic cluster needs, unless told otherwise.
pub const DEFAULT_MIN_CLUSTER: usize = 3;

/// The fewest labelled questions of one intent ranked first as another that make an overlap.
pub const OVERLAP_MIN: usize = 2;

/// The most unanswered questions clustered (the most asked; average linkage costs the cube).
pub const CLUSTER_MAX: usize = 500;

/// Settings of [`suggest`].
#[derive(Debug, Clone, PartialEq)]
pub struct LearnOptions {
    /// The fewest texts a new-topic cluster needs.
    pub min_cluster: usize,
    /// The cosine similarity at which clusters stop merging; `None`: chosen on the KB.
    pub similarity: Option<f32>,
}

impl Default for LearnOptions {
    fn default() -> Self {
        LearnOptions {
            min_cluster: DEFAULT_MIN_CLUSTER,
            similarity: None,
        }
    }
}

/// The kind of a suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionKind {
    /// Add labelled questions as examples of their intent.
    AddExamples,
    /// Add a new intent for a cluster of questions.
    NewTopic,
    /// Two intents overlap: questions of one are taken for the other.
    Overlap,
}

impl SuggestionKind {
    /// `add_examples`, `new_topic` or `overlap`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AddExamples => "add_examples",
            Self::NewTopic => "new_topic",
            Self::Overlap => "overlap",
        }
    }
}

/// Where a suggested text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A question staff labelled.
    Label,
    /// A question the bot did not answer.
    Miss,
}

/// One text of a suggestion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    /// The text, as stored (redacted).
    pub text: String,
    /// Its language (detected, else the KB's default): the examples list it goes into.
    pub language: String,
    /// Where it came from.
    pub source: Source,
    /// How many labels carry it, or how often it was asked.
    pub count: u32,
    /// What the current engine does with it.
    pub now: DecisionKind,
    /// The intent the current engine ranks first.
    pub now_intent: Option<String>,
}

/// The intent a new-topic suggestion adds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewIntent {
    /// Its id: the name staff gave, made an id, else `topic.` and the suggestion's id.
    pub id: String,
    /// Title per language: the name staff gave, else the most typical question.
    pub title: Vec<(String, String)>,
    /// A placeholder answer per language that hands the user to staff, for the author to replace.
    pub answer: Vec<(String, String)>,
    /// The KB file it goes into: the one defining the intent its questions are most often taken for.
    pub file: PathBuf,
}

/// Held-out figures over one set of messages.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Score {
    /// Messages scored.
    pub cases: usize,
    /// Of which in scope.
    pub in_scope: usize,
    /// In-scope messages whose best intent is right.
    pub top1_accuracy: f32,
    /// In-scope messages answered right or asked about with the right option.
    pub resolved_rate: f32,
    /// Messages answered with a wrong intent (an out-of-scope one answered counts).
    pub wrong_answer_rate: f32,
    /// The support bot's utility per message that the engine's policy maximises
    /// ([`decision_utility`]: right answer +1, wrong answer −1, handing over 0, …), each kind of
    /// message weighted as the policy search weighs it.
    pub utility: f32,
}

/// What a suggestion is expected to change, by the KB's held-out check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effect {
    /// Without the suggestion.
    pub before: Score,
    /// With it.
    pub after: Score,
    /// `after - before` of the top-1 accuracy.
    pub top1_change: f32,
    /// `after - before` of the resolved rate.
    pub resolved_change: f32,
    /// `after - before` of the wrong-answer rate.
    pub wrong_answer_change: f32,
    /// `after - before` of the utility.
    pub utility_change: f32,
    /// The same over the traffic: the questions staff labelled with an intent of the KB and the
    /// suggestion's own texts (see the module doc).
    pub traffic: Option<Box<Effect>>,
}

impl Effect {
    fn new(before: Score, after: Score) -> Effect {
        Effect {
            before,
            after,
            top1_change: after.top1_accuracy - before.top1_accuracy,
            resolved_change: after.resolved_rate - before.resolved_rate,
            wrong_answer_change: after.wrong_answer_rate - before.wrong_answer_rate,
            utility_change: after.utility - before.utility,
            traffic: None,
        }
    }

    /// The bot's utility rises on the traffic (on the KB's held-out check without traffic).
    pub fn is_positive(&self) -> bool {
        self.traffic
            .as_deref()
            .map_or(self.utility_change, |t| t.utility_change)
            > 0.0
    }
}

/// One thing the KB could learn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    /// Stable id: 8 hex digits of a hash of the kind, the intent and the sorted texts.
    pub id: String,
    /// What it suggests.
    pub kind: SuggestionKind,
    /// Add examples: the intent; new topic: the new intent's id; overlap: the intent whose
    /// questions are taken for `other`.
    pub intent: String,
    /// Overlap: the intent the questions are taken for.
    pub other: Option<String>,
    /// New topic: the name staff gave it.
    pub name: Option<String>,
    /// One line saying what it suggests.
    pub summary: String,
    /// Its texts, most frequent first.
    pub members: Vec<Member>,
    /// Texts the current engine answers with an intent that is not the suggestion's.
    pub answered_wrong_now: usize,
    /// Texts the current engine neither answers with the suggestion's intent nor offers it for.
    pub not_resolved_now: usize,
    /// New topic: the intent to add.
    pub new_intent: Option<NewIntent>,
    /// The expected effect, once [`estimate_effects`] ran (never for an overlap).
    pub effect: Option<Effect>,
}

/// What [`suggest`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestions {
    /// The cosine similarity at which clusters stopped merging.
    pub similarity: f32,
    /// Add examples first, then new topics, then overlaps; within a kind the largest first.
    pub suggestions: Vec<Suggestion>,
    /// The questions staff labelled with an intent of the KB, (text, intent): the second set of
    /// messages an effect is measured on.
    #[serde(skip)]
    pub labelled: Vec<(String, String)>,
}

/// A text fit to be suggested: trimmed, and holding no secret nor a redaction's label.
fn usable(text: &str) -> Option<String> {
    let t = text.trim();
    if t.is_empty() || t.contains("[redacted") || !find_secrets(t).is_empty() {
        return None;
    }
    Some(t.to_owned())
}

/// A text's language: detected, else the KB's default.
fn language(kb: &KnowledgeBase, text: &str) -> String {
    lang::detect(text)
        .filter(|l| *l != "und")
        .unwrap_or_else(|| kb.default_language())
        .to_owned()
}

/// An intent id made of a name staff gave: lowercase ASCII letters, digits and `_.-`, other runs
/// as one `-`; `None` when nothing of it is left.
fn id_of_name(name: &str) -> Option<String> {
    let mut id = String::new();
    for c in name.trim().to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c) {
            id.push(c);
        } else if !id.ends_with('-') {
            id.push('-');
        }
    }
    let id = id.trim_matches(|c| "-_.".contains(c)).to_owned();
    (!id.is_empty()).then_some(id)
}

/// 8 hex digits of the hash of a suggestion's kind, intent and sorted texts.
fn suggestion_id(kind: SuggestionKind, intent: &str, texts: &[&str]) -> String {
    let mut sorted = texts.to_vec();
    sorted.sort_unstable();
    let mut h = Sha256::new();
    h.update(kind.as_str().as_bytes());
    h.update([0x1f]);
    h.update(intent.as_bytes());
    for t in sorted {
        h.update([0x1e]);
        h.update(t.as_bytes());
    }
    h.finalize()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Per label (kind, name) given to one text: how many times, and the text as first written.
type Votes = HashMap<(LabelKind, Option<String>), (u32, String)>;

/// A question seen once or more, with what labels said and the current engine does.
struct Seen {
    text: String,
    count: u32,
    decision: Decision,
}

/// Finds what the KB could learn from staff's labels and the unanswered questions (see the module
/// doc). No effects yet: [`estimate_effects`] adds them.
pub fn suggest(
    engine: &Engine,
    labels: &[Labelled],
    unanswered: &[Unanswered],
    opts: &LearnOptions,
) -> Suggestions {
    let kb = engine.kb();
    // Every text already in the KB, normalised.
    let mut known: HashSet<String> = kb
        .intents
        .iter()
        .flat_map(|i| i.all_examples().map(normalize))
        .collect();
    known.extend(
        kb.out_of_scope
            .iter()
            .flat_map(|(_, v)| v.iter().map(|e| normalize(e))),
    );

    // Labels by normalised text; a text staff labelled two ways goes with the majority, and with
    // neither on a tie.
    let mut votes: HashMap<String, Votes> = HashMap::new();
    let mut labelled_texts: HashSet<String> = HashSet::new();
    for l in labels {
        let Some(text) = usable(&l.text) else {
            continue;
        };
        let key = normalize(&text);
        labelled_texts.insert(key.clone());
        let name = l.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
        // A new topic named after an existing intent is that intent; an intent the KB does not
        // have is a new topic of that name.
        let (kind, name) = match (l.kind, name) {
            (LabelKind::NewTopic, Some(n)) if kb.intent(n).is_some() => {
                (LabelKind::Intent, Some(n))
            }
            (LabelKind::Intent, Some(n)) if kb.intent(n).is_none() => {
                (LabelKind::NewTopic, Some(n))
            }
            (LabelKind::Intent | LabelKind::NewTopic, None) => continue,
            (kind, name) => (kind, name),
        };
        let e = votes
            .entry(key)
            .or_default()
            .entry((kind, name.map(str::to_owned)))
            .or_insert((0, text));
        e.0 += 1;
    }
    let mut decided: Vec<(String, LabelKind, Option<String>, u32, String)> = votes
        .into_iter()
        .filter_map(|(key, v)| {
            let best = v.values().map(|(n, _)| *n).max()?;
            let mut top = v.into_iter().filter(|(_, (n, _))| *n == best);
            let ((kind, name), (n, text)) = top.next()?;
            top.next().is_none().then_some((key, kind, name, n, text))
        })
        .collect();
    decided.sort_by(|a, b| a.0.cmp(&b.0));

    let mut suggestions = Vec::new();
    let seen = |text: String, count: u32| Seen {
        decision: engine.decide(&text),
        text,
        count,
    };

    // Add examples and overlaps: questions labelled with an existing intent.
    let mut per_intent: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    let mut taken_for: BTreeMap<(String, String), Vec<Seen>> = BTreeMap::new();
    for (key, kind, name, n, text) in &decided {
        let (LabelKind::Intent, Some(intent)) = (kind, name) else {
            continue;
        };
        let s = seen(text.clone(), *n);
        let first = s.decision.candidates.first().map(|c| c.intent.clone());
        if let Some(b) = first.filter(|b| b != intent) {
            taken_for
                .entry((intent.clone(), b))
                .or_default()
                .push(seen(text.clone(), *n));
        }
        if !known.contains(key) {
            per_intent.entry(intent.clone()).or_default().push(s);
        }
    }
    for (intent, items) in per_intent {
        let members = members_of(kb, items, Source::Label);
        let texts: Vec<&str> = members.iter().map(|m| m.text.as_str()).collect();
        let id = suggestion_id(SuggestionKind::AddExamples, &intent, &texts);
        let (wrong, unresolved) = now_counts(&members, &intent);
        let n = members.len();
        suggestions.push(Suggestion {
            id,
            kind: SuggestionKind::AddExamples,
            summary: if n == 1 {
                format!(
                    "add this message as an example of {intent} (the bot now {})",
                    if wrong > 0 {
                        "answers it wrongly"
                    } else if unresolved > 0 {
                        "does not resolve it"
                    } else {
                        "resolves it"
                    }
                )
            } else {
                format!(
                    "add these {n} messages as examples of {intent} (the bot now answers {wrong} of them wrongly and does not resolve {unresolved})"
                )
            },
            intent,
            other: None,
            name: None,
            members,
            answered_wrong_now: wrong,
            not_resolved_now: unresolved,
            new_intent: None,
            effect: None,
        });
    }
    for ((a, b), items) in taken_for {
        if items.len() < OVERLAP_MIN {
            continue;
        }
        let members = members_of(kb, items, Source::Label);
        let texts: Vec<&str> = members.iter().map(|m| m.text.as_str()).collect();
        let id = suggestion_id(SuggestionKind::Overlap, &format!("{a}\u{1f}{b}"), &texts);
        let (wrong, unresolved) = now_counts(&members, &a);
        suggestions.push(Suggestion {
            id,
            kind: SuggestionKind::Overlap,
            summary: format!(
                "{} questions staff labelled {a} are taken for {b} ({wrong} answered as it): the two intents overlap; accepting links them as related, so each answer offers the other",
                members.len()
            ),
            intent: a,
            other: Some(b),
            name: None,
            members,
            answered_wrong_now: wrong,
            not_resolved_now: unresolved,
            new_intent: None,
            effect: None,
        });
    }

    // New topics: texts staff labelled as one, by name, and the unanswered questions.
    let mut named: BTreeMap<String, (String, Vec<Seen>)> = BTreeMap::new();
    for (key, kind, name, n, text) in &decided {
        let (LabelKind::NewTopic, Some(name)) = (kind, name) else {
            continue;
        };
        if known.contains(key) {
            continue;
        }
        let group = id_of_name(name).unwrap_or_else(|| name.clone());
        named
            .entry(group)
            .or_insert_with(|| (name.clone(), Vec::new()))
            .1
            .push(seen(text.clone(), *n));
    }
    let mut misses: BTreeMap<String, (String, u32)> = BTreeMap::new();
    for u in unanswered {
        let Some(text) = usable(&u.text) else {
            continue;
        };
        let key = normalize(&text);
        if key.is_empty() || known.contains(&key) || labelled_texts.contains(&key) {
            continue;
        }
        misses.entry(key).or_insert((text, 0)).1 += u.count.max(1);
    }
    // The most asked first, as many as clustering handles quickly.
    let mut misses: Vec<(String, u32)> = misses.into_values().collect();
    misses.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let misses: Vec<Seen> = misses
        .into_iter()
        .map(|(text, count)| seen(text, count))
        // A question the KB now answers is no longer unanswered.
        .filter(|s| s.decision.decision != DecisionKind::Answer)
        .take(CLUSTER_MAX)
        .collect();

    let sample = kb_sample(kb);
    let groups: Vec<(String, Vec<Seen>)> = named.into_values().collect();
    let mut items: Vec<(Seen, Source)> = Vec::new();
    let mut initial: Vec<Vec<usize>> = Vec::new();
    let mut fixed: Vec<bool> = Vec::new();
    let mut names: Vec<Option<String>> = Vec::new();
    for (name, group) in groups {
        let start = items.len();
        items.extend(group.into_iter().map(|s| (s, Source::Label)));
        initial.push((start..items.len()).collect());
        fixed.push(true);
        names.push(Some(name));
    }
    for s in misses {
        initial.push(vec![items.len()]);
        items.push((s, Source::Miss));
        fixed.push(false);
        names.push(None);
    }
    let mut texts: Vec<&str> = sample.iter().map(|(t, _)| *t).collect();
    texts.extend(items.iter().map(|(s, _)| s.text.as_str()));
    let vectors = engine.text_vectors(&texts);
    let item_vectors = &vectors[sample.len()..];
    let similarity = opts
        .similarity
        .unwrap_or_else(|| calibrate_similarity(engine, &sample));
    let sim = similarities(item_vectors);
    let clusters = agglomerate(&sim, items.len(), initial, &fixed, similarity);
    let mut items: Vec<Option<(Seen, Source)>> = items.into_iter().map(Some).collect();
    for (members, cluster_fixed, first) in clusters {
        if members.len() < opts.min_cluster.max(1) {
            continue;
        }
        // The most typical text: the highest mean similarity to the others.
        let n = items.len();
        let typical = members
            .iter()
            .copied()
            .max_by(|&a, &b| {
                let mean = |i: usize| members.iter().map(|&j| sim[i * n + j]).sum::<f32>();
                mean(a).total_cmp(&mean(b)).then(b.cmp(&a))
            })
            .and_then(|i| items[i].as_ref().map(|(s, _)| s.text.clone()));
        let name = if cluster_fixed {
            names.get(first).cloned().flatten()
        } else {
            None
        };
        let mut seen_items = Vec::new();
        let mut from_labels = 0;
        for &i in &members {
            if let Some((s, src)) = items[i].take() {
                from_labels += usize::from(src == Source::Label);
                seen_items.push((s, src));
            }
        }
        let asked: u32 = seen_items
            .iter()
            .filter(|(_, src)| *src == Source::Miss)
            .map(|(s, _)| s.count)
            .sum();
        let mut members: Vec<Member> = seen_items
            .into_iter()
            .map(|(s, src)| member(kb, s, src))
            .collect();
        sort_members(&mut members);
        let texts: Vec<&str> = members.iter().map(|m| m.text.as_str()).collect();
        let id = suggestion_id(
            SuggestionKind::NewTopic,
            name.as_deref().unwrap_or(""),
            &texts,
        );
        let mut intent_id = name
            .as_deref()
            .and_then(id_of_name)
            .unwrap_or_else(|| format!("topic.{id}"));
        while kb.intent(&intent_id).is_some() {
            intent_id.push_str("-new");
        }
        let new_intent = new_intent(kb, &intent_id, name.as_deref(), typical, &members);
        let (wrong, unresolved) = now_counts(&members, &intent_id);
        let misses_n = members.len() - from_labels;
        let what = match &name {
            Some(name) => format!(
                "a new topic staff named {name:?}: {from_labels} labelled and {misses_n} unanswered questions"
            ),
            None => format!(
                "a new topic: {misses_n} unanswered questions (asked {asked} times) look like one topic"
            ),
        };
        suggestions.push(Suggestion {
            id,
            kind: SuggestionKind::NewTopic,
            summary: format!(
                "{what}; add intent {intent_id} with them as examples and a placeholder answer that hands over to staff"
            ),
            intent: intent_id,
            other: None,
            name,
            members,
            answered_wrong_now: wrong,
            not_resolved_now: unresolved,
            new_intent: Some(new_intent),
            effect: None,
        });
    }
    suggestions.sort_by(|a, b| {
        a.kind
            .cmp(&b.kind)
            .then(b.members.len().cmp(&a.members.len()))
            .then_with(|| a.id.cmp(&b.id))
    });
    let labelled = decided
        .iter()
        .filter_map(|(_, kind, name, _, text)| match (kind, name) {
            (LabelKind::Intent, Some(intent)) => Some((text.clone(), intent.clone())),
            _ => None,
        })
        .collect();
    Suggestions {
        similarity,
        suggestions,
        labelled,
    }
}

fn member(kb: &KnowledgeBase, s: Seen, source: Source) -> Member {
    Member {
        language: language(kb, &s.text),
        source,
        count: s.count,
        now: s.decision.decision,
        now_intent: s.decision.candidates.first().map(|c| c.intent.clone()),
        text: s.text,
    }
}

fn sort_members(members: &mut [Member]) {
    members.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.text.cmp(&b.text)));
}

fn members_of(kb: &KnowledgeBase, items: Vec<Seen>, source: Source) -> Vec<Member> {
    let mut members: Vec<Member> = items.into_iter().map(|s| member(kb, s, source)).collect();
    sort_members(&mut members);
    members
}

/// (answered with another intent, not resolved) among the members, for `gold`.
fn now_counts(members: &[Member], gold: &str) -> (usize, usize) {
    let wrong = members
        .iter()
        .filter(|m| m.now == DecisionKind::Answer && m.now_intent.as_deref() != Some(gold))
        .count();
    let resolved = members
        .iter()
        .filter(|m| m.now != DecisionKind::Escalate && m.now_intent.as_deref() == Some(gold))
        .count();
    (wrong, members.len() - resolved)
}

/// Placeholder answers for a new intent: the user is told a person will help, and `handoff`
/// opens a ticket, until the author writes the real answer.
fn placeholder_answer(language: &str) -> &'static str {
    match language {
        "zh" => "这个问题需要人工客服为您处理,正在为您转接,请稍候。",
        _ => "A member of our support team will help you with this; I am handing you over now.",
    }
}

fn new_intent(
    kb: &KnowledgeBase,
    id: &str,
    name: Option<&str>,
    typical: Option<String>,
    members: &[Member],
) -> NewIntent {
    let mut languages: Vec<String> = Vec::new();
    for m in members {
        if !languages.contains(&m.language) {
            languages.push(m.language.clone());
        }
    }
    if languages.is_empty() {
        languages.push(kb.default_language().to_owned());
    }
    let title_text = name
        .map(str::to_owned)
        .or(typical)
        .unwrap_or_else(|| id.to_owned());
    let title_lang = language(kb, &title_text);
    let title = vec![(title_lang, title_text.chars().take(40).collect())];
    let answer = languages
        .iter()
        .map(|l| (l.clone(), placeholder_answer(l).to_owned()))
        .collect();
    // The file of the intent the questions are most often taken for, else the last intent's.
    let mut taken: BTreeMap<&str, usize> = BTreeMap::new();
    for m in members {
        if let Some(i) = &m.now_intent {
            *taken.entry(i.as_str()).or_default() += 1;
        }
    }
    let closest = taken
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .and_then(|(i, _)| kb.intent(i));
    let file = closest
        .or(kb.intents.last())
        .map(|i| i.file.clone())
        .unwrap_or_else(|| kb.source.clone());
    NewIntent {
        id: id.to_owned(),
        title,
        answer,
        file,
    }
}

/// The KB with the suggestion applied: examples added to their intent (in each text's language),
/// a new intent added, or two overlapping intents listed as each other's related.
pub fn apply(kb: &KnowledgeBase, s: &Suggestion) -> KnowledgeBase {
    let mut kb = kb.clone();
    let add = |examples: &mut Vec<(String, Vec<String>)>, m: &Member| match examples
        .iter_mut()
        .find(|(l, _)| *l == m.language)
    {
        Some((_, v)) => v.push(m.text.clone()),
        None => examples.push((m.language.clone(), vec![m.text.clone()])),
    };
    match s.kind {
        SuggestionKind::AddExamples => {
            if let Some(intent) = kb.intents.iter_mut().find(|i| i.id == s.intent) {
                for m in &s.members {
                    add(&mut intent.examples, m);
                }
            }
        }
        SuggestionKind::NewTopic => {
            if let Some(n) = &s.new_intent
                && kb.intent(&n.id).is_none()
            {
                let mut examples = Vec::new();
                for m in &s.members {
                    add(&mut examples, m);
                }
                kb.intents.push(Intent {
                    id: n.id.clone(),
                    title: n.title.clone(),
                    examples,
                    answer: n.answer.clone(),
                    handoff: true,
                    priority: Priority::Normal,
                    collect: Vec::new(),
                    related: Vec::new(),
                    file: n.file.clone(),
                    line: 0,
                });
            }
        }
        SuggestionKind::Overlap => {
            if let Some(b) = &s.other {
                for (from, to) in [(&s.intent, b), (b, &s.intent)] {
                    if kb.intent(to).is_some()
                        && let Some(i) = kb.intents.iter_mut().find(|i| i.id == *from)
                        && !i.related.contains(to)
                    {
                        i.related.push(to.clone());
                    }
                }
            }
        }
    }
    kb
}

/// Which evidence a scored message is, as the engine's policy search weighs it: in scope, an
/// out-of-scope example, an example of an intent its fold left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    InScope,
    OutOfScope,
    Unseen,
}

/// One scored message: its gold intent (None: should not be answered) and what was decided.
struct Outcome<'a> {
    group: Group,
    gold: Option<&'a str>,
    kind: DecisionKind,
    first: Option<&'a str>,
    second: Option<&'a str>,
}

fn held_out_outcome<'a>(h: &'a HeldOutCase, policy: &Policy) -> Outcome<'a> {
    Outcome {
        group: match (&h.intent, &h.unseen_intent) {
            (Some(_), _) => Group::InScope,
            (None, Some(_)) => Group::Unseen,
            (None, None) => Group::OutOfScope,
        },
        gold: h.intent.as_deref(),
        kind: policy.kind(
            h.candidates.first().map(|c| c.score),
            h.candidates.get(1).map(|c| c.score),
            h.out_of_scope,
        ),
        first: h.candidates.first().map(|c| c.intent.as_str()),
        second: h.candidates.get(1).map(|c| c.intent.as_str()),
    }
}

fn decision_outcome<'a>(d: &'a Decision, gold: &'a str) -> Outcome<'a> {
    Outcome {
        group: Group::InScope,
        gold: Some(gold),
        kind: d.decision,
        first: d.candidates.first().map(|c| c.intent.as_str()),
        second: d.candidates.get(1).map(|c| c.intent.as_str()),
    }
}

fn score<'a>(outcomes: impl IntoIterator<Item = Outcome<'a>>) -> Score {
    let (mut cases, mut in_scope, mut top1, mut resolved, mut wrong) = (0, 0, 0, 0, 0);
    // Per group: messages and their summed utility.
    let mut utility = [(0usize, 0f32); 3];
    for o in outcomes {
        cases += 1;
        if o.kind == DecisionKind::Answer && (o.gold.is_none() || o.first != o.gold) {
            wrong += 1;
        }
        let gold = match o.gold {
            None => Gold::OutOfScope,
            Some(g) if o.first == Some(g) => Gold::First,
            Some(g) if o.second == Some(g) => Gold::Second,
            Some(_) => Gold::Neither,
        };
        let g = &mut utility[o.group as usize];
        g.0 += 1;
        g.1 += decision_utility(o.kind, gold);
        let Some(gold) = o.gold else {
            continue;
        };
        in_scope += 1;
        top1 += usize::from(o.first == Some(gold));
        resolved += usize::from(match o.kind {
            DecisionKind::Answer => o.first == Some(gold),
            DecisionKind::Clarify => o.first == Some(gold) || o.second == Some(gold),
            DecisionKind::Escalate => false,
        });
    }
    let rate = |n: usize, of: usize| n as f32 / of.max(1) as f32;
    // The policy search's weights: in scope 1, out-of-scope examples 0.75, unseen intents 0.25.
    let (mut total, mut weights) = (0f32, 0f32);
    for ((n, sum), w) in utility.iter().zip(GROUP_WEIGHTS) {
        if *n > 0 {
            total += w * sum / *n as f32;
            weights += w;
        }
    }
    Score {
        cases,
        in_scope,
        top1_accuracy: rate(top1, in_scope),
        resolved_rate: rate(resolved, in_scope),
        wrong_answer_rate: rate(wrong, cases),
        utility: if weights > 0.0 { total / weights } else { 0.0 },
    }
}

/// The weights of [`Group`]s in the utility, as the engine's policy search gives them.
const GROUP_WEIGHTS: [f32; 3] = [1.0, 0.75, 0.25];

/// The engine's held-out check as a [`Score`] (the same figures as [`Engine::validation`]).
pub fn held_out_score(engine: &Engine) -> Score {
    let policy = engine.policy();
    score(
        engine
            .validation()
            .held_out
            .iter()
            .map(|h| held_out_outcome(h, &policy)),
    )
}

/// Scores labelled messages (`(text, gold intent or None)`) as the engine decides them.
pub fn score_cases(engine: &Engine, cases: &[(String, Option<String>)]) -> Score {
    let decisions: Vec<Decision> = cases.iter().map(|(t, _)| engine.decide(t)).collect();
    score(cases.iter().zip(&decisions).map(|((_, gold), d)| Outcome {
        group: if gold.is_some() {
            Group::InScope
        } else {
            Group::OutOfScope
        },
        gold: gold.as_deref(),
        kind: d.decision,
        first: d.candidates.first().map(|c| c.intent.as_str()),
        second: d.candidates.get(1).map(|c| c.intent.as_str()),
    }))
}

/// The expected effect of one suggestion (see the module doc); `None` for an overlap or when
/// `train` cannot train the changed KB. `labelled`: the questions staff labelled with an intent
/// of the KB ([`Suggestions::labelled`]).
pub fn effect_of(
    engine: &Engine,
    s: &Suggestion,
    labelled: &[(String, String)],
    train: &dyn Fn(KnowledgeBase) -> Option<Engine>,
) -> Option<Effect> {
    if s.kind == SuggestionKind::Overlap || s.members.is_empty() {
        return None;
    }
    let after = train(apply(engine.kb(), s))?;
    effect_with(engine, s, labelled, &after)
}

/// The expected effect of one suggestion, given `after`: the engine trained on
/// `apply(engine.kb(), s)`. `None` for an overlap.
pub fn effect_with(
    engine: &Engine,
    s: &Suggestion,
    labelled: &[(String, String)],
    after: &Engine,
) -> Option<Effect> {
    if s.kind == SuggestionKind::Overlap || s.members.is_empty() {
        return None;
    }
    let policy = engine.policy();
    let decisions: Vec<Decision> = s.members.iter().map(|m| engine.decide(&m.text)).collect();
    let before = score(
        engine
            .validation()
            .held_out
            .iter()
            .map(|h| held_out_outcome(h, &policy))
            .chain(decisions.iter().map(|d| decision_outcome(d, &s.intent))),
    );
    // The traffic: the questions staff labelled and the suggestion's own texts, by the current
    // engine, and by the new one except for the texts it trained on: those as its held-out folds
    // predicted them.
    let known: HashSet<String> = engine
        .kb()
        .intents
        .iter()
        .flat_map(|i| i.all_examples().map(normalize))
        .collect();
    let own: HashSet<String> = s.members.iter().map(|m| normalize(&m.text)).collect();
    let mut pool: Vec<(&str, &str, String)> = s
        .members
        .iter()
        .map(|m| (m.text.as_str(), s.intent.as_str(), normalize(&m.text)))
        .collect();
    pool.extend(
        labelled
            .iter()
            .map(|(t, g)| (t.as_str(), g.as_str(), normalize(t)))
            .filter(|(_, _, n)| !known.contains(n) && !own.contains(n)),
    );
    let after_policy = after.policy();
    let held: HashMap<(String, &str), &HeldOutCase> = after
        .validation()
        .held_out
        .iter()
        .filter_map(|h| h.intent.as_deref().map(|g| ((normalize(&h.text), g), h)))
        .collect();
    let now: Vec<Decision> = pool.iter().map(|(t, _, _)| engine.decide(t)).collect();
    let then: Vec<Option<Decision>> = pool
        .iter()
        .map(|(t, _, n)| (!own.contains(n)).then(|| after.decide(t)))
        .collect();
    let traffic_before = score(
        pool.iter()
            .zip(&now)
            .map(|((_, g, _), d)| decision_outcome(d, g)),
    );
    let traffic_after = score(pool.iter().zip(&now).zip(&then).map(
        |(((_, g, n), d_now), d_then)| match (d_then, held.get(&(n.clone(), *g))) {
            (Some(d), _) => decision_outcome(d, g),
            (None, Some(h)) => held_out_outcome(h, &after_policy),
            // Not held out by the new engine's folds: counted as the current engine does.
            (None, None) => decision_outcome(d_now, g),
        },
    ));
    let mut effect = Effect::new(before, held_out_score(after));
    effect.traffic = Some(Effect::new(traffic_before, traffic_after).into());
    Some(effect)
}

/// Gives every suggestion its expected effect ([`effect_of`]); `train` trains a KB the way the
/// caller's engine was trained.
pub fn estimate_effects(
    engine: &Engine,
    found: &mut Suggestions,
    train: &dyn Fn(KnowledgeBase) -> Option<Engine>,
) {
    for s in &mut found.suggestions {
        s.effect = effect_of(engine, s, &found.labelled, train);
    }
}

/// Examples per intent in the sample the similarity threshold is chosen on.
const SAMPLE_PER_INTENT: usize = 6;
/// The largest sample.
const SAMPLE_MAX: usize = 480;

/// Up to [`SAMPLE_PER_INTENT`] examples of each intent with two or more, spread over its list:
/// (text, intent index).
fn kb_sample(kb: &KnowledgeBase) -> Vec<(&str, usize)> {
    let per = (SAMPLE_MAX / kb.intents.len().max(1)).clamp(2, SAMPLE_PER_INTENT);
    let mut out = Vec::new();
    for (c, intent) in kb.intents.iter().enumerate() {
        let all: Vec<&str> = intent.all_examples().collect();
        if all.len() < 2 {
            continue;
        }
        let k = per.min(all.len());
        out.extend((0..k).map(|j| (all[j * all.len() / k], c)));
    }
    out
}

/// Cosine similarity of two sparse vectors with their norms.
fn cosine(a: &SparseVec, b: &SparseVec, na: f32, nb: f32) -> f32 {
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    let (mut i, mut j, mut dot) = (0, 0, 0f32);
    while i < a.idx.len() && j < b.idx.len() {
        match a.idx[i].cmp(&b.idx[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                dot += a.val[i] * b.val[j];
                i += 1;
                j += 1;
            }
        }
    }
    dot / (na * nb)
}

/// The n×n matrix of cosine similarities, row-major.
fn similarities(vectors: &[SparseVec]) -> Vec<f32> {
    let n = vectors.len();
    let norms: Vec<f32> = vectors
        .iter()
        .map(|v| v.val.iter().map(|x| x * x).sum::<f32>().sqrt())
        .collect();
    let mut sim = vec![0f32; n * n];
    for i in 0..n {
        sim[i * n + i] = 1.0;
        for j in i + 1..n {
            let s = cosine(&vectors[i], &vectors[j], norms[i], norms[j]);
            sim[i * n + j] = s;
            sim[j * n + i] = s;
        }
    }
    sim
}

/// Average-linkage agglomeration of `n` items with pairwise similarities `sim` (row-major),
/// starting from the `initial` clusters; two clusters marked `fixed` never merge with each other.
/// Merges the most similar pair while its similarity reaches `stop`. Returns each cluster's items,
/// whether it holds a fixed cluster, and the initial cluster it grew from (the fixed one if any).
fn agglomerate(
    sim: &[f32],
    n: usize,
    initial: Vec<Vec<usize>>,
    fixed: &[bool],
    stop: f32,
) -> Vec<(Vec<usize>, bool, usize)> {
    agglomerate_with_merges(sim, n, initial, fixed, stop).0
}

type Merges = Vec<(usize, usize, f32)>;

fn agglomerate_with_merges(
    sim: &[f32],
    n: usize,
    initial: Vec<Vec<usize>>,
    fixed: &[bool],
    stop: f32,
) -> (Vec<(Vec<usize>, bool, usize)>, Merges) {
    let m = initial.len();
    let mut clusters: Vec<Option<(Vec<usize>, bool, usize)>> = initial
        .into_iter()
        .enumerate()
        .map(|(c, items)| Some((items, fixed.get(c).copied().unwrap_or(false), c)))
        .collect();
    // Cluster similarities: the mean over pairs of their items.
    let mut csim = vec![0f32; m * m];
    for a in 0..m {
        for b in a + 1..m {
            let (Some(ca), Some(cb)) = (&clusters[a], &clusters[b]) else {
                continue;
            };
            let pairs = (ca.0.len() * cb.0.len()).max(1) as f32;
            let total: f32 =
                ca.0.iter()
                    .flat_map(|&i| cb.0.iter().map(move |&j| sim[i * n + j]))
                    .sum();
            csim[a * m + b] = total / pairs;
            csim[b * m + a] = total / pairs;
        }
    }
    let mut merges = Vec::new();
    loop {
        let mut best: Option<(usize, usize, f32)> = None;
        for a in 0..m {
            let Some(ca) = &clusters[a] else { continue };
            for b in a + 1..m {
                let Some(cb) = &clusters[b] else { continue };
                if ca.1 && cb.1 {
                    continue;
                }
                let s = csim[a * m + b];
                if best.is_none_or(|(_, _, t)| s > t) {
                    best = Some((a, b, s));
                }
            }
        }
        let Some((a, b, s)) = best.filter(|&(_, _, s)| s >= stop) else {
            break;
        };
        let Some(cb) = clusters[b].take() else { break };
        let Some(ca) = clusters[a].as_mut() else {
            break;
        };
        let (sa, sb) = (ca.0.len() as f32, cb.0.len() as f32);
        for k in 0..m {
            let v = (sa * csim[a * m + k] + sb * csim[b * m + k]) / (sa + sb);
            csim[a * m + k] = v;
            csim[k * m + a] = v;
        }
        ca.0.extend(cb.0);
        if cb.1 && !ca.1 {
            ca.1 = true;
            ca.2 = cb.2;
        }
        merges.push((a, b, s));
    }
    (clusters.into_iter().flatten().collect(), merges)
}

/// Every how many intents one is taken for a new topic when the threshold is chosen.
const CALIBRATION_EVERY: usize = 5;
/// The most `[out_of_scope]` examples taken for unrelated unanswered questions then.
const CALIBRATION_OUT_OF_SCOPE: usize = 60;

/// The similarity threshold for clustering unanswered questions, chosen on the KB by acting out
/// the task: every [`CALIBRATION_EVERY`]-th intent's sampled examples play the questions of new
/// topics and the `[out_of_scope]` examples play unrelated questions (each a topic of its own),
/// in a feature space fitted with the other intents' examples; the threshold is the one at which
/// clustering them best recovers the topics ([`choose_threshold`]).
fn calibrate_similarity(engine: &Engine, sample: &[(&str, usize)]) -> f32 {
    let kb = engine.kb();
    let held = |c: usize| c.is_multiple_of(CALIBRATION_EVERY);
    let mut texts: Vec<&str> = sample
        .iter()
        .filter(|(_, c)| !held(*c))
        .map(|(t, _)| *t)
        .collect();
    let context = texts.len();
    let mut classes: Vec<usize> = Vec::new();
    for &(t, c) in sample.iter().filter(|(_, c)| held(*c)) {
        texts.push(t);
        classes.push(c);
    }
    let unrelated = kb
        .out_of_scope
        .iter()
        .flat_map(|(_, v)| v.iter())
        .take(CALIBRATION_OUT_OF_SCOPE);
    for (k, t) in unrelated.enumerate() {
        texts.push(t);
        classes.push(kb.intents.len() + k);
    }
    let vectors = engine.text_vectors(&texts);
    choose_threshold(&vectors[context..], &classes)
}

/// The similarity threshold at which average-linkage clustering of the sample best recovers its
/// intents: the highest pairwise F0.5 over a grid (the higher threshold on a tie).
fn choose_threshold(vectors: &[SparseVec], classes: &[usize]) -> f32 {
    const GRID: std::ops::RangeInclusive<u32> = 4..=36; // × 0.025: 0.10 … 0.90
    let n = vectors.len();
    let fallback = 0.5;
    if n < 4 {
        return fallback;
    }
    let sim = similarities(vectors);
    let lowest = *GRID.start() as f32 * 0.025;
    let (_, merges) =
        agglomerate_with_merges(&sim, n, (0..n).map(|i| vec![i]).collect(), &[], lowest);
    let pairs = |k: usize| k * k.saturating_sub(1) / 2;
    let mut per_class: HashMap<usize, usize> = HashMap::new();
    for &c in classes {
        *per_class.entry(c).or_default() += 1;
    }
    let true_pairs: usize = per_class.values().map(|&k| pairs(k)).sum();
    let mut best = (f32::MIN, fallback);
    for g in GRID {
        let t = g as f32 * 0.025;
        // Union-find over the merges at or above t (average linkage merges in falling order).
        let mut parent: Vec<usize> = (0..n).collect();
        fn root(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        for &(a, b, s) in &merges {
            if s >= t {
                let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
                parent[rb] = ra;
            }
        }
        let mut sizes: HashMap<usize, usize> = HashMap::new();
        let mut cells: HashMap<(usize, usize), usize> = HashMap::new();
        for (i, &class) in classes.iter().enumerate().take(n) {
            let r = root(&mut parent, i);
            *sizes.entry(r).or_default() += 1;
            *cells.entry((r, class)).or_default() += 1;
        }
        let predicted: usize = sizes.values().map(|&k| pairs(k)).sum();
        let right: usize = cells.values().map(|&k| pairs(k)).sum();
        if predicted == 0 || true_pairs == 0 {
            continue;
        }
        let p = right as f32 / predicted as f32;
        let r = right as f32 / true_pairs as f32;
        let f = if p + r > 0.0 {
            1.25 * p * r / (0.25 * p + r)
        } else {
            0.0
        };
        if f >= best.0 {
            best = (f, t);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::parse_sources;
    use std::path::Path;

    const KB: &str = r#"
[meta]
default_language = "zh"

[[intent]]
id = "withdrawal.failed"
title = { zh = "提币失败", en = "Withdrawal failed" }
examples = { zh = ["提币失败", "提现失败了怎么办", "提币一直失败", "为什么提不了币", "提币被拒绝了", "提币显示失败"], en = ["withdrawal failed", "cannot withdraw", "my withdrawal was rejected"] }
answer = { zh = "请检查提币地址和网络。", en = "Check the address and network." }

[[intent]]
id = "withdrawal.pending"
title = { zh = "提币未到账", en = "Withdrawal not arrived" }
examples = { zh = ["提币一直没到账", "提现还在处理中", "提币成功但没收到", "提的币还没到", "提币审核中很久了", "提币好几个小时了还没到"], en = ["withdrawal still pending", "my withdrawal has not arrived"] }
answer = { zh = "请提供提币记录。", en = "Please send the withdrawal record." }

[[intent]]
id = "deposit.missing"
title = { zh = "充值未到账", en = "Deposit not credited" }
examples = { zh = ["充值没到账", "充币一直不到", "充的usdt没有到账", "入金没显示", "充值不到账怎么办", "充值好久了还没到"], en = ["deposit not credited", "my deposit is missing", "deposit not arrived"] }
answer = { zh = "请提供交易哈希。", en = "Please send the transaction hash." }

[[intent]]
id = "account.locked"
title = { zh = "账户被锁", en = "Account locked" }
examples = { zh = ["账户被锁了", "账号冻结了", "登录不了账户被锁定", "账户被冻结怎么办", "帐号锁住了", "账号被封了"], en = ["account locked", "my account is frozen", "account was suspended"] }
answer = { zh = "请联系客服解锁。", en = "Contact support to unlock it." }

[[intent]]
id = "kyc.verify"
title = { zh = "实名认证", en = "Identity verification" }
examples = { zh = ["怎么实名认证", "实名认证失败", "身份认证一直审核中", "kyc认证不通过", "实名认证要多久", "认证照片上传不了"], en = ["how to verify my identity", "kyc failed"] }
answer = { zh = "在个人中心完成实名认证。", en = "Verify your identity in your profile." }

[[intent]]
id = "fees"
title = { zh = "手续费", en = "Fees" }
examples = { zh = ["手续费多少", "交易手续费怎么算", "提币手续费是多少", "为什么手续费这么高", "手续费能便宜点吗", "手续费标准"], en = ["what are the fees", "trading fee"] }
answer = { zh = "见费率页面。", en = "See the fee schedule." }

[out_of_scope]
examples = { zh = ["今天天气怎么样", "给我讲个笑话", "你喜欢吃什么", "帮我写作业", "北京明天下雨吗"], en = ["what's the weather", "tell me a joke", "write my homework"] }
"#;

    fn parse(text: &str) -> KnowledgeBase {
        parse_sources(Path::new("kb.toml"), &[(Path::new("kb.toml"), text)]).expect("valid KB")
    }

    fn engine() -> Engine {
        Engine::train(parse(KB))
    }

    fn label(text: &str, intent: &str) -> Labelled {
        Labelled {
            text: text.to_owned(),
            kind: LabelKind::Intent,
            name: Some(intent.to_owned()),
        }
    }

    fn miss(text: &str, count: u32) -> Unanswered {
        Unanswered {
            text: text.to_owned(),
            count,
        }
    }

    const STAKING: [&str; 5] = [
        "质押收益怎么算",
        "质押收益什么时候发放",
        "质押的收益没有到账",
        "质押收益怎么查看",
        "质押收益率是多少",
    ];

    fn of_kind(s: &Suggestions, kind: SuggestionKind) -> Vec<&Suggestion> {
        s.suggestions.iter().filter(|x| x.kind == kind).collect()
    }

    #[test]
    fn labelled_questions_become_examples_of_their_intent_without_duplicates() {
        let e = engine();
        let labels = [
            label("提币提示风控不让提", "withdrawal.failed"),
            label("提币被风控拦截了", "withdrawal.failed"),
            // Already an example (after normalisation: Traditional → Simplified).
            label("提幣失敗", "withdrawal.failed"),
            label("kyc照片一直传不上去", "kyc.verify"),
        ];
        let s = suggest(&e, &labels, &[], &LearnOptions::default());
        let add = of_kind(&s, SuggestionKind::AddExamples);
        assert_eq!(add.len(), 2, "{add:#?}");
        let w = add
            .iter()
            .find(|x| x.intent == "withdrawal.failed")
            .expect("withdrawal.failed");
        let texts: Vec<&str> = w.members.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["提币提示风控不让提", "提币被风控拦截了"]);
        assert!(w.members.iter().all(|m| m.language == "zh"));
        assert!(
            w.summary
                .contains("add these 2 messages as examples of withdrawal.failed")
        );
        assert!(w.not_resolved_now <= 2 && w.answered_wrong_now <= w.not_resolved_now);

        let kb = apply(e.kb(), w);
        let intent = kb.intent("withdrawal.failed").expect("intent");
        assert!(intent.all_examples().any(|x| x == "提币被风控拦截了"));
        assert_eq!(
            intent.all_examples().count(),
            e.kb()
                .intent("withdrawal.failed")
                .map_or(0, |i| i.all_examples().count())
                + 2
        );
    }

    #[test]
    fn unanswered_questions_about_one_new_topic_form_a_cluster() {
        let e = engine();
        let mut misses: Vec<Unanswered> = STAKING.iter().map(|t| miss(t, 2)).collect();
        misses.extend(
            ["合约爆仓了怎么办", "nft怎么买", "你们老板是谁"]
                .iter()
                .map(|t| miss(t, 1)),
        );
        let s = suggest(&e, &[], &misses, &LearnOptions::default());
        let topics = of_kind(&s, SuggestionKind::NewTopic);
        assert_eq!(topics.len(), 1, "{:#?} at {}", s.suggestions, s.similarity);
        let t = topics[0];
        let texts: HashSet<&str> = t.members.iter().map(|m| m.text.as_str()).collect();
        assert!(texts.len() >= 4, "{texts:?}");
        assert!(texts.iter().all(|x| x.contains("质押")), "{texts:?}");
        assert!(t.intent.starts_with("topic."));
        assert!(t.summary.contains("unanswered questions"), "{}", t.summary);
        let n = t.new_intent.as_ref().expect("new intent");
        assert_eq!(n.answer[0].0, "zh");
        assert!(s.similarity > 0.05 && s.similarity < 0.95);

        // Fewer texts than the minimum: no topic.
        let opts = LearnOptions {
            min_cluster: 9,
            ..LearnOptions::default()
        };
        let none = suggest(&e, &[], &misses, &opts);
        assert!(of_kind(&none, SuggestionKind::NewTopic).is_empty());

        // Applied, the KB has the intent with a placeholder answer that hands over.
        let kb = apply(e.kb(), t);
        let added = kb.intent(&t.intent).expect("added");
        assert!(added.handoff);
        assert_eq!(added.all_examples().count(), t.members.len());
    }

    #[test]
    fn new_topic_labels_are_grouped_by_their_name() {
        let e = engine();
        let labels: Vec<Labelled> = STAKING[..3]
            .iter()
            .map(|t| Labelled {
                text: (*t).to_owned(),
                kind: LabelKind::NewTopic,
                name: Some("Staking rewards".to_owned()),
            })
            .collect();
        let misses = [miss(STAKING[3], 1), miss("nft怎么买", 1)];
        let s = suggest(&e, &labels, &misses, &LearnOptions::default());
        let topics = of_kind(&s, SuggestionKind::NewTopic);
        assert_eq!(topics.len(), 1, "{:#?}", s.suggestions);
        let t = topics[0];
        assert_eq!(t.intent, "staking-rewards");
        assert_eq!(t.name.as_deref(), Some("Staking rewards"));
        assert!(t.members.iter().all(|m| m.text.contains("质押")));
        assert!(t.members.len() >= 3);
    }

    #[test]
    fn questions_of_one_intent_taken_for_another_are_an_overlap() {
        let e = engine();
        // Staff say these are deposit questions; the words are a withdrawal's.
        let texts = ["提币失败了钱没到", "提币一直失败怎么回事", "提币失败"];
        let labels: Vec<Labelled> = texts.iter().map(|t| label(t, "deposit.missing")).collect();
        for t in texts {
            assert_eq!(e.decide(t).candidates[0].intent, "withdrawal.failed", "{t}");
        }
        let s = suggest(&e, &labels, &[], &LearnOptions::default());
        let overlaps = of_kind(&s, SuggestionKind::Overlap);
        assert_eq!(overlaps.len(), 1, "{:#?}", s.suggestions);
        let o = overlaps[0];
        assert_eq!(o.intent, "deposit.missing");
        assert_eq!(o.other.as_deref(), Some("withdrawal.failed"));
        assert_eq!(o.members.len(), 3);
        // The one already an example of withdrawal.failed is not added as a deposit example.
        let add = of_kind(&s, SuggestionKind::AddExamples);
        assert_eq!(add[0].members.len(), 2);
        let kb = apply(e.kb(), o);
        assert!(
            kb.intent("deposit.missing")
                .is_some_and(|i| i.related.contains(&"withdrawal.failed".to_owned()))
        );
        assert!(
            kb.intent("withdrawal.failed")
                .is_some_and(|i| i.related.contains(&"deposit.missing".to_owned()))
        );
        // One such question is not an overlap.
        let s = suggest(&e, &labels[..1], &[], &LearnOptions::default());
        assert!(of_kind(&s, SuggestionKind::Overlap).is_empty());
    }

    #[test]
    fn a_secret_is_never_suggested() {
        let e = engine();
        // A phrase whose checksum verifies, and one that the word 助记词 points at.
        let seed = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
        let hinted = "我的助记词 abandon ability able about above absent absorb abstract absurd abuse access accident";
        let mut misses: Vec<Unanswered> = STAKING.iter().map(|t| miss(t, 1)).collect();
        misses.push(miss(&format!("质押收益 {seed}"), 3));
        misses.push(miss(seed, 3));
        misses.push(miss(&format!("质押收益 {hinted}"), 3));
        misses.push(miss("质押收益 [redacted: seed phrase, 12 words]", 3));
        let labels = [
            label(&format!("提币失败 助记词 {seed}"), "withdrawal.failed"),
            label("提币提示风控不让提", "withdrawal.failed"),
            label(&format!("提币失败 {hinted}"), "withdrawal.failed"),
            Labelled {
                text: format!("质押 {seed}"),
                kind: LabelKind::NewTopic,
                name: Some("staking".to_owned()),
            },
        ];
        let s = suggest(&e, &labels, &misses, &LearnOptions::default());
        assert!(!s.suggestions.is_empty());
        let json = serde_json::to_string(&s).expect("json");
        for word in ["abandon", "absurd", "accident", "redacted"] {
            assert!(!json.contains(word), "{word} in {json}");
        }
    }

    #[test]
    fn ids_are_stable_and_depend_on_kind_intent_and_texts() {
        let e = engine();
        let labels = vec![
            label("提币提示风控不让提", "withdrawal.failed"),
            label("提币被风控拦截了", "withdrawal.failed"),
            label("kyc照片一直传不上去", "kyc.verify"),
        ];
        let misses: Vec<Unanswered> = STAKING.iter().map(|t| miss(t, 1)).collect();
        let ids = |labels: &[Labelled], misses: &[Unanswered]| -> Vec<String> {
            let mut v: Vec<String> = suggest(&e, labels, misses, &LearnOptions::default())
                .suggestions
                .into_iter()
                .map(|s| s.id)
                .collect();
            v.sort();
            v
        };
        let a = ids(&labels, &misses);
        assert!(a.len() >= 3, "{a:?}");
        assert!(a.iter().all(|id| id.len() == 8));
        let mut rev_labels = labels.clone();
        rev_labels.reverse();
        let mut rev_misses = misses.clone();
        rev_misses.reverse();
        assert_eq!(a, ids(&rev_labels, &rev_misses), "order does not matter");
        let mut more = labels.clone();
        more.push(label("提币被风控了", "withdrawal.failed"));
        let b = ids(&more, &misses);
        assert_eq!(a.iter().filter(|id| b.contains(id)).count(), a.len() - 1);
        assert_ne!(
            suggestion_id(SuggestionKind::AddExamples, "a", &["x"]),
            suggestion_id(SuggestionKind::NewTopic, "a", &["x"])
        );
        assert_eq!(
            suggestion_id(SuggestionKind::AddExamples, "a", &["x", "y"]),
            suggestion_id(SuggestionKind::AddExamples, "a", &["y", "x"])
        );
    }

    #[test]
    fn not_a_question_labels_keep_their_texts_out_of_clusters() {
        let e = engine();
        let misses: Vec<Unanswered> = STAKING.iter().map(|t| miss(t, 1)).collect();
        let labels: Vec<Labelled> = STAKING[..3]
            .iter()
            .map(|t| Labelled {
                text: (*t).to_owned(),
                kind: LabelKind::NotAQuestion,
                name: None,
            })
            .collect();
        let s = suggest(&e, &labels, &misses, &LearnOptions::default());
        assert!(of_kind(&s, SuggestionKind::NewTopic).is_empty(), "{s:#?}");
    }

    #[test]
    fn the_effect_compares_the_held_out_check_over_the_same_messages() {
        let e = engine();
        let base = held_out_score(&e);
        let v = e.validation();
        assert!((base.top1_accuracy - v.top1_accuracy).abs() < 1e-6);
        assert!((base.resolved_rate - v.resolved_rate).abs() < 1e-6);
        assert!((base.wrong_answer_rate - v.wrong_answer_rate).abs() < 1e-6);

        let labels = [
            label("提币提示风控不让提", "withdrawal.failed"),
            label("提币被风控拦截了", "withdrawal.failed"),
            label("提币风控审核不通过", "withdrawal.failed"),
        ];
        let misses: Vec<Unanswered> = STAKING.iter().map(|t| miss(t, 1)).collect();
        let mut s = suggest(&e, &labels, &misses, &LearnOptions::default());
        let train = |kb: KnowledgeBase| Some(Engine::train(kb));
        estimate_effects(&e, &mut s, &train);
        for x in &s.suggestions {
            let effect = x.effect.clone().expect("an effect");
            assert_eq!(effect.before.cases, base.cases + x.members.len(), "{x:#?}");
            assert_eq!(
                effect.before.in_scope,
                base.in_scope + x.members.len(),
                "{x:#?}"
            );
            assert!(
                (effect.resolved_change
                    - (effect.after.resolved_rate - effect.before.resolved_rate))
                    .abs()
                    < 1e-6
            );
        }
        // A new topic cannot be resolved without its intent: adding it helps.
        let topic = of_kind(&s, SuggestionKind::NewTopic);
        assert!(
            topic[0]
                .effect
                .as_ref()
                .is_some_and(|x| x.resolved_change > 0.0),
            "{topic:#?}"
        );
    }

    #[test]
    fn names_become_ids() {
        assert_eq!(
            id_of_name("Staking rewards").as_deref(),
            Some("staking-rewards")
        );
        assert_eq!(id_of_name("earn.staking").as_deref(), Some("earn.staking"));
        assert_eq!(id_of_name("质押收益"), None);
        assert_eq!(id_of_name(" NFT 质押 "), Some("nft".to_owned()));
    }

    #[test]
    fn average_linkage_respects_fixed_clusters_and_the_threshold() {
        // Items 0,1 similar; 2,3 similar; 0/1 vs 2/3 dissimilar.
        let n = 4;
        let mut sim = vec![0.1f32; n * n];
        for (a, b) in [(0, 1), (2, 3)] {
            sim[a * n + b] = 0.9;
            sim[b * n + a] = 0.9;
        }
        for i in 0..n {
            sim[i * n + i] = 1.0;
        }
        let singles = || (0..n).map(|i| vec![i]).collect::<Vec<_>>();
        let mut c: Vec<Vec<usize>> = agglomerate(&sim, n, singles(), &[], 0.5)
            .into_iter()
            .map(|x| x.0)
            .collect();
        c.iter_mut().for_each(|x| x.sort_unstable());
        c.sort();
        assert_eq!(c, vec![vec![0, 1], vec![2, 3]]);
        assert_eq!(agglomerate(&sim, n, singles(), &[], 0.05).len(), 1);
        // Two fixed clusters never merge, however low the threshold.
        let fixed = agglomerate(&sim, n, vec![vec![0, 1], vec![2, 3]], &[true, true], 0.0);
        assert_eq!(fixed.len(), 2);
    }
}
