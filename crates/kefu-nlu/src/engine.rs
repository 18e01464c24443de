//! The trained engine: classify a message, calibrate the confidence, decide.
//!
//! Training happens when a KB loads. Every intent's examples and its titles become training texts;
//! `[out_of_scope]` examples become one more class, so "what's the weather" has somewhere to go.
//!
//! The decision thresholds are not constants tuned to a data set: they come from the KB itself.
//! The KB's examples are split into stratified folds (five for small KBs; one 80/20 split for large
//! ones, to keep load time low); models trained without a fold predict it. Each fold also leaves
//! out a few whole intents, so validation sees messages about topics the model has never seen, as
//! real off-topic traffic is. On those held-out predictions the engine
//! 1. fits a temperature that makes the softmax probabilities honest (minimum log-loss), and
//! 2. picks the answer threshold and the clarify rule that maximise a support bot's utility: a right
//!    answer is worth +1, a wrong one costs 1, handing over to a human is neutral, offering two
//!    options that include the right one is worth 0.6; not answering an out-of-scope message is
//!    worth +1 on the same scale. Offering two options that are both wrong costs 0.3 against
//!    handing over at once, whether the message was in scope or not: the user presses "neither"
//!    and reaches a human one step later. In-scope examples weigh 1 in all, the KB's out-of-scope
//!    examples 0.75, unseen intents 0.25.
//!
//! The same held-out predictions give `kefu kb check` its per-intent accuracy and confusable pairs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::classifier::{LogReg, TrainOptions, softmax};
use crate::concepts::Concepts;
use crate::encoder::{EMBEDDING_WEIGHT, Encoder, EncoderError, embed_all, mostly_latin};
use crate::features::{
    FeatureSpace, RawFeatures, SpaceBuilder, SparseVec, TermFrequencies, extract,
};
use crate::kb::KnowledgeBase;
use crate::lang;
use crate::normalize::normalize;
use crate::segment::Tokenizer;
use crate::thesaurus::Thesaurus;
use crate::wordvec::{WordVectors, WordWeights};

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionKind {
    /// Confident in one intent: answer with it.
    Answer,
    /// Two intents are close: ask which one the user meant.
    Clarify,
    /// Out of scope or not confident: hand over to a human (or fall back).
    Escalate,
}

/// An intent and its calibrated probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Intent id.
    pub intent: String,
    /// Calibrated probability, 0..1.
    pub score: f32,
}

/// The engine's verdict on one message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Answer, clarify or escalate.
    pub decision: DecisionKind,
    /// The intent answered with (answer), the first option (clarify), or the best guess (escalate).
    pub intent: Option<String>,
    /// Calibrated probability of `intent`.
    pub confidence: f32,
    /// The best in-scope intents, best first (at most three).
    pub candidates: Vec<Candidate>,
    /// Probability that the message is out of scope (0 when the KB has no out-of-scope examples).
    pub out_of_scope: f32,
    /// The message's language (detected, else the KB's default).
    pub language: String,
}

/// Thresholds derived from the KB.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Policy {
    /// Answer when the best intent's probability reaches this.
    pub answer_threshold: f32,
    /// Clarify when the two best intents together reach this…
    pub clarify_threshold: f32,
    /// …and the second is at least this fraction of the first.
    pub clarify_ratio: f32,
    /// Softmax temperature fitted on held-out predictions.
    pub temperature: f32,
}

/// What held-out validation on the KB's own examples showed.
#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    /// Number of folds (1 = a single 80/20 split).
    pub folds: usize,
    /// Held-out predictions scored (an example of a left-out intent counts once per fold).
    pub examples: usize,
    /// Held-out in-scope examples whose best intent was right.
    pub top1_accuracy: f32,
    /// Held-out in-scope examples answered right or clarified with the right option.
    pub resolved_rate: f32,
    /// Held-out examples answered wrongly.
    pub wrong_answer_rate: f32,
    /// Held-out `[out_of_scope]` examples not answered (None without out-of-scope examples).
    pub oos_recall: Option<f32>,
    /// Examples of intents left out of a fold's training, not answered: how the engine treats
    /// topics the KB doesn't cover (None for KBs under five intents).
    pub unseen_topic_recall: Option<f32>,
    /// Per intent: (id, held-out examples, top-1 correct).
    pub per_intent: Vec<(String, usize, usize)>,
    /// Most confused (gold, predicted, count), most frequent first.
    pub confusions: Vec<(String, String, usize)>,
    /// Every held-out prediction, for a report to show (not in the JSON: it is as long as the KB).
    #[serde(skip)]
    pub held_out: Vec<HeldOutCase>,
}

/// One held-out example as the model that did not train on it saw it.
#[derive(Debug, Clone)]
pub struct HeldOutCase {
    /// The example's text.
    pub text: String,
    /// Its intent; None for an `[out_of_scope]` example and for an intent the fold left out.
    pub intent: Option<String>,
    /// The intent of an example whose whole intent the fold left out (an unseen topic).
    pub unseen_intent: Option<String>,
    /// The best in-scope intents with calibrated probabilities, best first (at most three).
    pub candidates: Vec<Candidate>,
    /// The out-of-scope probability.
    pub out_of_scope: f32,
}

impl Policy {
    /// What this policy does with a message whose best in-scope intents have probabilities
    /// `best` ≥ `second` and whose out-of-scope probability is `out_of_scope`.
    pub fn kind(&self, best: Option<f32>, second: Option<f32>, out_of_scope: f32) -> DecisionKind {
        let top = Top {
            best: best.map(|p| (0, p)),
            second: second.map(|p| (1, p)),
            oos: out_of_scope,
        };
        apply_policy(&top, self).kind
    }
}

/// Which of a decision's options was right, for [`decision_utility`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gold {
    /// The message was out of scope.
    OutOfScope,
    /// The best-ranked intent was right.
    First,
    /// The second-ranked intent was right.
    Second,
    /// In scope, but neither of the two best was right.
    Neither,
}

/// The support bot's utility of one decision, as the policy search scores it (see the module doc).
pub fn decision_utility(kind: DecisionKind, gold: Gold) -> f32 {
    let verdict = Verdict {
        kind,
        first: Some(0),
        second: (kind == DecisionKind::Clarify).then_some(1),
    };
    let gold = match gold {
        Gold::OutOfScope => None,
        Gold::First => Some(0),
        Gold::Second => Some(1),
        Gold::Neither => Some(2),
    };
    utility(&verdict, gold)
}

/// Training settings for the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Threads used for training folds (default: available cores).
    pub threads: usize,
    /// Passes over the data (default: by KB size).
    pub epochs: Option<usize>,
    /// L2 penalty per example (default: the classifier's).
    pub l2: Option<f32>,
    /// Scale of sentence-embedding features against the lexical ones (used with an encoder).
    pub embedding_weight: f32,
    /// Append the message's static word vectors ([`crate::wordvec`]) to its features: English,
    /// and Chinese unless `chinese_word_vectors` is off.
    pub word_vectors: bool,
    /// With `word_vectors`, also the Chinese table (used only when the KB has Chinese text).
    pub chinese_word_vectors: bool,
    /// Add the concepts of the built-in support lexicon ([`crate::concepts`]) to its features.
    pub lexicon: bool,
    /// A Chinese thesaurus whose semantic classes join the features ([`crate::thesaurus`]); the
    /// engine keeps a copy pruned to the classes its KB uses.
    pub thesaurus: Option<Arc<Thesaurus>>,
    /// Scale of the thesaurus group against the lexical groups.
    pub thesaurus_weight: f32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            epochs: None,
            l2: None,
            embedding_weight: EMBEDDING_WEIGHT,
            word_vectors: true,
            chinese_word_vectors: true,
            lexicon: true,
            thesaurus: None,
            thesaurus_weight: THESAURUS_WEIGHT,
        }
    }
}

/// A KB with its trained classifier and policy.
#[derive(Debug)]
pub struct Engine {
    kb: KnowledgeBase,
    tokenizer: Tokenizer,
    space: FeatureSpace,
    model: LogReg,
    /// Class index → intent index; `None` is the out-of-scope class.
    labels: Vec<Option<usize>>,
    policy: Policy,
    validation: Validation,
    /// Static word vectors, if used: they follow the lexical features.
    word_vectors: WordVectorGroups,
    /// The built-in support lexicon, when the engine uses it.
    lexicon: Option<&'static Concepts>,
    /// The thesaurus, pruned to the classes the KB's texts use, when the engine uses one.
    thesaurus: Option<Thesaurus>,
    /// Optional sentence encoder: its vectors follow the lexical features and the word vectors
    /// (see [`crate::encoder`]).
    encoder: Option<Arc<dyn Encoder>>,
    embedding_weight: f32,
}

/// Appends a sentence embedding, scaled, to a text's sparse features, after the lexical ones.
fn with_embedding(mut x: SparseVec, offset: usize, embedding: &[f32], weight: f32) -> SparseVec {
    let extra = embedding.iter().filter(|&&v| v != 0.0).count();
    x.idx.reserve_exact(extra);
    x.val.reserve_exact(extra);
    for (k, &v) in embedding.iter().enumerate() {
        if v != 0.0 {
            x.idx.push((offset + k) as u32);
            x.val.push(v * weight);
        }
    }
    x
}

/// The scale of the word-vector features against the lexical groups (each of norm 1). Chosen on
/// development splits of the public benchmarks (`bench/make_dev.py`: BANKING77 cases drawn from
/// its training set, CLINC150's validation set), never on their test cases: with the unquantised
/// table, 1.5, 2 and 3 gave mean top-1 0.773, 0.775 and 0.770 on six BANKING77 splits.
const WORD_VECTOR_WEIGHT: f32 = 2.0;

/// The scale of the Chinese word-vector features against the lexical groups. Chosen with
/// [`CHINESE_IDF_POWER`] on the development sets only (`bench/zh-general` and the Chinese messages
/// of `bench/crypto/exchange`, `wallet` and `platform`; README "How the engine works").
pub const CHINESE_WORD_VECTOR_WEIGHT: f32 = 0.75;

/// A Chinese token weighs its IDF to this power in the message's Chinese vector: the words every
/// example uses (我, 怎么, 一下) have vectors too, and with plain IDF they set much of the
/// direction of a short message's vector.
const CHINESE_IDF_POWER: i32 = 3;

/// The static word-vector tables an engine uses ([`crate::wordvec`]), each with its word weights
/// fitted on the training texts. The English block follows the lexical features, the Chinese one
/// follows the English one; a table the engine does not use takes no dimensions.
#[derive(Debug, Default)]
struct WordVectorGroups {
    english: Option<(&'static WordVectors, WordWeights)>,
    chinese: Option<(&'static WordVectors, WordWeights)>,
}

impl WordVectorGroups {
    /// The tables `opts` asks for, fitted on `tokens` (one list per training text). The Chinese
    /// table (about 13 MiB once parsed) is used only when a text has a Chinese token.
    fn fit(opts: &EngineOptions, tokens: &[Vec<String>]) -> WordVectorGroups {
        let fitted = |table: &'static WordVectors| (table, WordWeights::fit(table, tokens));
        let has_chinese = || {
            tokens
                .iter()
                .flatten()
                .any(|t| t.chars().next().is_some_and(crate::normalize::is_cjk))
        };
        WordVectorGroups {
            english: opts
                .word_vectors
                .then(WordVectors::english)
                .flatten()
                .map(fitted),
            chinese: (opts.word_vectors && opts.chinese_word_vectors && has_chinese())
                .then(WordVectors::chinese)
                .flatten()
                .map(fitted),
        }
    }

    /// The same tables with weights fitted on other texts.
    fn refit(&self, tokens: &[Vec<String>]) -> WordVectorGroups {
        let refit = |g: &Option<(&'static WordVectors, WordWeights)>| {
            g.as_ref()
                .map(|(table, _)| (*table, WordWeights::fit(table, tokens)))
        };
        WordVectorGroups {
            english: refit(&self.english),
            chinese: refit(&self.chinese),
        }
    }

    /// Dimensions the tables add after the lexical features.
    fn dims(&self) -> usize {
        [&self.english, &self.chinese]
            .iter()
            .filter_map(|g| g.as_ref().map(|(t, _)| t.dims()))
            .sum()
    }

    fn is_empty(&self) -> bool {
        self.english.is_none() && self.chinese.is_none()
    }
}

/// A text's features: its lexical vector, then its word vectors if the engine uses them.
fn text_features(
    space: &FeatureSpace,
    word_vectors: &WordVectorGroups,
    raw: &RawFeatures,
    tokens: &[String],
) -> SparseVec {
    with_word_vector(space, word_vectors, space.vectorize(raw), tokens)
}

/// A text's lexical vector `x` followed by its word vectors if the engine uses them.
fn with_word_vector(
    space: &FeatureSpace,
    word_vectors: &WordVectorGroups,
    mut x: SparseVec,
    tokens: &[String],
) -> SparseVec {
    if word_vectors.is_empty() {
        return x;
    }
    // Each table speaks for its own script's words only: in a mostly Chinese message with one
    // English word ("卸载了app 助记词没存") the English vector must not outweigh the rest, and
    // the other way round.
    let cjk = tokens
        .iter()
        .filter(|t| t.chars().next().is_some_and(crate::normalize::is_cjk))
        .count();
    let latin = tokens
        .iter()
        .filter(|t| t.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        .count();
    let total = (latin + cjk).max(1) as f32;
    let mut offset = space.len();
    for (group, weight, power) in [
        (
            &word_vectors.english,
            WORD_VECTOR_WEIGHT * latin as f32 / total,
            1,
        ),
        (
            &word_vectors.chinese,
            CHINESE_WORD_VECTOR_WEIGHT * cjk as f32 / total,
            CHINESE_IDF_POWER,
        ),
    ] {
        if let Some((table, w)) = group {
            if let Some(v) = table.sentence(tokens, |t| w.weight(t).powi(power)) {
                x = with_embedding(x, offset, &v, weight);
            }
            offset += table.dims();
        }
    }
    x
}

/// The scale of the thesaurus group against the lexical groups (each of norm 1). Chosen on
/// development data only (see README "How the engine works").
pub const THESAURUS_WEIGHT: f32 = 0.5;

/// A text's n-grams, the lexicon's concepts and the thesaurus classes of its words, for the
/// resources the engine uses.
fn raw_features(
    lexicon: Option<&Concepts>,
    thesaurus: Option<&Thesaurus>,
    normalized: &str,
    tokens: &[String],
) -> RawFeatures {
    let mut raw = extract(normalized, tokens);
    if let Some(c) = lexicon {
        raw.add_concepts(&c.find(normalized, tokens));
    }
    if let Some(t) = thesaurus {
        raw.add_thesaurus(t.classes_of(tokens));
    }
    raw
}

/// Training texts whose n-grams are held at a time while a KB's feature space is built.
const FEATURE_BLOCK: usize = 4096;

/// A held-out prediction: gold class and logits.
struct HeldOut {
    /// Index of the example among the training texts.
    text: usize,
    gold: usize,
    /// The gold intent was left out of this model's training entirely: for the model, the
    /// example is a message about a topic the KB doesn't cover.
    novel: bool,
    logits: Vec<f32>,
}

impl Engine {
    /// Trains the engine on a KB with default options.
    pub fn train(kb: KnowledgeBase) -> Engine {
        Self::train_with(kb, EngineOptions::default())
    }

    /// Trains the engine on a KB.
    pub fn train_with(kb: KnowledgeBase, opts: EngineOptions) -> Engine {
        Self::train_inner(kb, opts, None, Vec::new())
    }

    /// Trains the engine on a KB with a sentence encoder whose embeddings become extra features
    /// for messages in Latin script (see [`crate::encoder`]). Fails if the KB's examples can't be
    /// encoded.
    pub fn train_with_encoder(
        kb: KnowledgeBase,
        opts: EngineOptions,
        encoder: Arc<dyn Encoder>,
    ) -> Result<Engine, EncoderError> {
        let texts = Self::training_texts(&kb);
        let strs: Vec<&str> = texts.iter().map(|t| t.0).collect();
        let embeddings = embed_all(encoder.as_ref(), &strs)?;
        drop(texts);
        Ok(Self::train_inner(kb, opts, Some(encoder), embeddings))
    }

    /// Training texts: (text, class, is_title); intents in KB order, then out-of-scope.
    fn training_texts(kb: &KnowledgeBase) -> Vec<(&str, usize, bool)> {
        let oos_class = kb
            .out_of_scope
            .iter()
            .any(|(_, v)| !v.is_empty())
            .then_some(kb.intents.len());
        let mut texts: Vec<(&str, usize, bool)> = Vec::new();
        for (c, intent) in kb.intents.iter().enumerate() {
            texts.extend(intent.all_examples().map(|e| (e, c, false)));
            texts.extend(intent.title.iter().map(|(_, t)| (t.as_str(), c, true)));
        }
        if let Some(c) = oos_class {
            texts.extend(
                kb.out_of_scope
                    .iter()
                    .flat_map(|(_, v)| v.iter().map(move |e| (e.as_str(), c, false))),
            );
        }
        texts
    }

    /// `embeddings`: one per training text (in [`Self::training_texts`] order) when there is an
    /// encoder, else empty.
    fn train_inner(
        kb: KnowledgeBase,
        mut opts: EngineOptions,
        encoder: Option<Arc<dyn Encoder>>,
        embeddings: Vec<Vec<f32>>,
    ) -> Engine {
        let tokenizer = Tokenizer::new(&kb.vocabulary);
        let mut labels: Vec<Option<usize>> = (0..kb.intents.len()).map(Some).collect();
        if kb.out_of_scope.iter().any(|(_, v)| !v.is_empty()) {
            labels.push(None);
        }
        // Training texts: (text, class, is_title).
        let texts = Self::training_texts(&kb);
        let lexicon = opts.lexicon.then(Concepts::builtin).flatten();
        // The whole table is needed while the KB's texts are read; afterwards only its classes
        // that the KB used can matter, and the rest is freed.
        let full_thesaurus = opts.thesaurus.take();
        // Texts are read in blocks, each block's n-grams turned into term frequencies and freed
        // before the next block is read: all of a large KB's n-grams at once would take more
        // memory than its feature vectors.
        let mut builder = SpaceBuilder::default();
        let mut counted: Vec<TermFrequencies> = Vec::with_capacity(texts.len());
        let mut tokens: Vec<Vec<String>> = Vec::with_capacity(texts.len());
        let blocks = texts.len().div_ceil(FEATURE_BLOCK).max(1);
        for block in texts.chunks(texts.len().div_ceil(blocks).max(1)) {
            let read = par_map(block, opts.threads, |(t, _, _)| {
                let n = normalize(t);
                let tokens = tokenizer.tokens(&n);
                (
                    raw_features(lexicon, full_thesaurus.as_deref(), &n, &tokens),
                    tokens,
                )
            });
            for (raw, t) in read {
                counted.push(builder.add(&raw));
                tokens.push(t);
            }
        }
        let mut space = builder.finish();
        space.set_thesaurus_weight(opts.thesaurus_weight);
        let thesaurus = full_thesaurus.map(|t| t.pruned(|c| space.knows_thesaurus_class(c)));
        let word_vectors = WordVectorGroups::fit(&opts, &tokens);
        let mut x: Vec<SparseVec> = counted
            .into_iter()
            .zip(&tokens)
            .map(|(tf, t)| with_word_vector(&space, &word_vectors, space.weigh(tf), t))
            .collect();
        drop(tokens);
        // Lexical features, the word vectors, then the encoder's dimensions if there is one.
        let lexical = space.len() + word_vectors.dims();
        let features = match &encoder {
            Some(enc) if embeddings.len() == x.len() => {
                x = x
                    .into_iter()
                    .zip(&embeddings)
                    .map(|(v, e)| with_embedding(v, lexical, e, opts.embedding_weight))
                    .collect();
                lexical + enc.dim()
            }
            _ => lexical,
        };
        drop(embeddings);
        let y: Vec<u32> = texts.iter().map(|(_, c, _)| *c as u32).collect();
        let weights = vec![1f32; x.len()];
        let classes = labels.len();
        let defaults = TrainOptions::default();
        let epochs = opts.epochs.unwrap_or_else(|| epochs_for(x.len()));
        // A large KB gets few passes (load time), so each moves further and skips what it has
        // learnt; a small KB affords many exact passes.
        let (learning_rate, skip_loss) = if epochs <= 8 { (2.0, 0.03) } else { (1.0, 0.0) };
        let train_opts = TrainOptions {
            epochs,
            learning_rate,
            skip_loss,
            l2: opts.l2.unwrap_or(defaults.l2),
            ..defaults
        };

        // Folds over non-title examples, stratified by class.
        let examples = texts.iter().filter(|t| !t.2).count();
        let (folds, used_folds) = if examples <= 4000 { (5, 5) } else { (5, 1) };
        // Each fold also leaves out every `novel_every`-th intent (a different set per fold):
        // a tenth of the intents per fold with five folds, a seventh with the single split.
        let novel_every = match (kb.intents.len() >= 5, used_folds) {
            (false, _) => 0,
            (true, 1) => 7,
            (true, _) => 10,
        };
        let mut fold_of = vec![usize::MAX; x.len()]; // MAX: always trained on (titles)
        let mut per_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
        for (i, t) in texts.iter().enumerate() {
            if !t.2 {
                per_class[t.1].push(i);
            }
        }
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut offset = 0;
        for members in &mut per_class {
            for i in (1..members.len()).rev() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                members.swap(i, (rng % (i as u64 + 1)) as usize);
            }
            for (k, &i) in members.iter().enumerate() {
                fold_of[i] = (k + offset) % folds;
            }
            offset += members.len();
        }

        // Jobs: job f trains without fold f; the last one is the full model. Each model holds a
        // features × classes weight matrix (51 MB on CLINC150), so a large KB's two models are
        // trained one after the other, the fold's dropped before the full one starts: training
        // is bound by memory bandwidth, and side by side they gain little time for twice the
        // memory. Small KBs (five folds) train their models in parallel.
        let jobs = used_folds + 1;
        let threads = if used_folds == 1 { 1 } else { opts.threads };
        let next = AtomicUsize::new(0);
        let mut results: Vec<(usize, Option<LogReg>, Vec<HeldOut>)> = Vec::new();
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads.clamp(1, jobs))
                .map(|_| {
                    s.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let job = next.fetch_add(1, Ordering::Relaxed);
                            if job >= jobs {
                                break done;
                            }
                            if job == used_folds {
                                let m =
                                    LogReg::train(&x, &y, &weights, features, classes, train_opts);
                                done.push((0, Some(m), Vec::new()));
                                continue;
                            }
                            let fold = job;
                            // Some whole intents are also left out, so validation sees messages
                            // about topics the model has never seen, as real out-of-scope
                            // traffic is, not only the KB's own out-of-scope examples.
                            let novel = |i: usize| {
                                let c = y[i] as usize;
                                novel_every > 0
                                    && labels[c].is_some()
                                    && c % novel_every == fold % novel_every
                            };
                            let keep: Vec<usize> = (0..x.len())
                                .filter(|&i| fold_of[i] != fold && !novel(i))
                                .collect();
                            let m = LogReg::train_on(
                                &x, &keep, &y, &weights, features, classes, train_opts,
                            );
                            drop(keep);
                            let held = (0..x.len())
                                .filter(|&i| {
                                    let is_title = fold_of[i] == usize::MAX;
                                    !is_title && (fold_of[i] == fold || novel(i))
                                })
                                .map(|i| {
                                    let mut logits = vec![0f32; classes];
                                    m.scores(&x[i], &mut logits);
                                    HeldOut {
                                        text: i,
                                        gold: y[i] as usize,
                                        novel: novel(i),
                                        logits,
                                    }
                                })
                                .collect();
                            done.push((job + 1, None, held));
                        }
                    })
                })
                .collect();
            for w in workers {
                if let Ok(done) = w.join() {
                    results.extend(done);
                }
            }
        });
        let mut model = None;
        let mut held = Vec::new();
        for (job, m, h) in results {
            if job == 0 {
                model = m;
            }
            held.extend(h);
        }
        let model =
            model.unwrap_or_else(|| LogReg::train(&x, &y, &weights, features, classes, train_opts));
        let (policy, mut validation) = derive_policy(&kb, &labels, &held, used_folds);
        validation.held_out = held
            .iter()
            .map(|h| {
                let mut p = h.logits.clone();
                calibrate(&mut p, policy.temperature);
                let intent_of = |c: usize| labels[c].map(|i| kb.intents[i].id.clone());
                let mut ranked: Vec<(usize, f32)> = p
                    .iter()
                    .enumerate()
                    .filter(|(c, _)| labels[*c].is_some())
                    .map(|(c, &s)| (c, s))
                    .collect();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
                HeldOutCase {
                    text: texts[h.text].0.to_owned(),
                    intent: if h.novel { None } else { intent_of(h.gold) },
                    unseen_intent: if h.novel { intent_of(h.gold) } else { None },
                    candidates: ranked
                        .iter()
                        .take(3)
                        .filter_map(|&(c, score)| {
                            intent_of(c).map(|intent| Candidate { intent, score })
                        })
                        .collect(),
                    out_of_scope: labels
                        .iter()
                        .position(Option::is_none)
                        .map_or(0.0, |c| p[c]),
                }
            })
            .collect();
        Engine {
            kb,
            tokenizer,
            space,
            model,
            labels,
            policy,
            validation,
            word_vectors,
            lexicon,
            thesaurus,
            encoder,
            embedding_weight: opts.embedding_weight,
        }
    }

    /// The sentence encoder in use, if any.
    pub fn encoder(&self) -> Option<&dyn Encoder> {
        self.encoder.as_deref()
    }

    /// Whether static word vectors are among the features.
    pub fn uses_word_vectors(&self) -> bool {
        !self.word_vectors.is_empty()
    }

    /// Whether the Chinese word-vector table is among the features (only with a KB that has
    /// Chinese text).
    pub fn uses_chinese_word_vectors(&self) -> bool {
        self.word_vectors.chinese.is_some()
    }

    /// Whether the built-in support lexicon's concepts are among the features.
    pub fn uses_lexicon(&self) -> bool {
        self.lexicon.is_some()
    }

    /// Whether a thesaurus's semantic classes are among the features.
    pub fn uses_thesaurus(&self) -> bool {
        self.thesaurus.is_some()
    }

    /// The knowledge base the engine was trained on.
    pub fn kb(&self) -> &KnowledgeBase {
        &self.kb
    }

    /// The thresholds derived from the KB.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Held-out validation figures.
    pub fn validation(&self) -> &Validation {
        &self.validation
    }

    /// Calibrated class probabilities of a message (classes: intents, then out-of-scope if any).
    fn probabilities(&self, text: &str) -> Vec<f32> {
        let n = normalize(text);
        let tokens = self.tokenizer.tokens(&n);
        let mut x = text_features(
            &self.space,
            &self.word_vectors,
            &raw_features(self.lexicon, self.thesaurus.as_ref(), &n, &tokens),
            &tokens,
        );
        if let Some(enc) = &self.encoder
            && mostly_latin(text)
            // A message the encoder fails on is classified on its words alone.
            && let Ok(Some(e)) = enc.encode(&[text]).map(|v| v.into_iter().next())
        {
            let offset = self.space.len() + self.word_vectors.dims();
            x = with_embedding(x, offset, &e, self.embedding_weight);
        }
        let mut p = vec![0f32; self.labels.len()];
        self.model.scores(&x, &mut p);
        calibrate(&mut p, self.policy.temperature);
        p
    }

    /// The engine's features of `texts` (n-grams, lexicon concepts, thesaurus classes, word
    /// vectors) in a feature space and word weights fitted on `texts` themselves, so that words
    /// the KB never uses count too: for comparing messages with each other, not for classifying.
    pub fn text_vectors(&self, texts: &[&str]) -> Vec<SparseVec> {
        let (raw, tokens): (Vec<RawFeatures>, Vec<Vec<String>>) = texts
            .iter()
            .map(|t| {
                let n = normalize(t);
                let tokens = self.tokenizer.tokens(&n);
                (
                    raw_features(self.lexicon, self.thesaurus.as_ref(), &n, &tokens),
                    tokens,
                )
            })
            .unzip();
        let mut space = FeatureSpace::fit(&raw);
        space.set_thesaurus_weight(THESAURUS_WEIGHT);
        let word_vectors = self.word_vectors.refit(&tokens);
        raw.iter()
            .zip(&tokens)
            .map(|(r, t)| text_features(&space, &word_vectors, r, t))
            .collect()
    }

    /// A message's language: detected, else the KB's default.
    pub fn language_of(&self, text: &str) -> String {
        lang::detect(text)
            .filter(|l| *l != "und")
            .map(str::to_owned)
            .unwrap_or_else(|| self.kb.default_language().to_owned())
    }

    /// Classifies a message and decides what to do with it.
    pub fn decide(&self, text: &str) -> Decision {
        let language = self.language_of(text);
        let p = self.probabilities(text);
        let verdict = apply_policy(&Top::of(&p, &self.labels), &self.policy);
        let ranked = best_three(
            self.labels
                .iter()
                .zip(&p)
                .filter_map(|(l, &s)| l.map(|i| (i, s))),
        );
        let candidates = ranked
            .iter()
            .take(3)
            .map(|&(i, s)| Candidate {
                intent: self.kb.intents[i].id.clone(),
                score: s,
            })
            .collect();
        let out_of_scope = self
            .labels
            .iter()
            .zip(&p)
            .find(|(l, _)| l.is_none())
            .map_or(0.0, |(_, &s)| s);
        let (intent, confidence) = match verdict.first.or(ranked.first().map(|r| r.0)) {
            // Intents occupy the first classes, in KB order.
            Some(i) => (Some(self.kb.intents[i].id.clone()), p[i]),
            None => (None, 0.0),
        };
        Decision {
            decision: verdict.kind,
            intent,
            confidence,
            candidates,
            out_of_scope,
            language,
        }
    }
}

/// The three best (index, score) pairs, best first; equal scores keep their order (what a stable
/// sort by descending score would put first), without sorting them all.
fn best_three(items: impl Iterator<Item = (usize, f32)>) -> Vec<(usize, f32)> {
    let mut top: Vec<(usize, f32)> = Vec::with_capacity(4);
    for item in items {
        let at = top
            .iter()
            .position(|t| item.1.total_cmp(&t.1).is_gt())
            .unwrap_or(top.len());
        if at < 3 {
            top.insert(at, item);
            top.truncate(3);
        }
    }
    top
}

/// `items.iter().map(f).collect()` on up to `threads` threads, in order (feature extraction of a
/// large KB is a fifth of its load time).
fn par_map<T: Sync, U: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let threads = threads.clamp(1, 8);
    if threads == 1 || items.len() < 2_000 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let parts: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(f).collect::<Vec<U>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for (part, handle) in items.chunks(chunk).zip(parts) {
            // A panicking worker is a bug in extraction; redo its part here so it surfaces.
            match handle.join() {
                Ok(v) => out.extend(v),
                Err(_) => out.extend(part.iter().map(f)),
            }
        }
        out
    })
}

/// The weight of examples of intents a fold never saw, against 1 for in-scope examples and
/// `1 - UNSEEN_TOPIC_SHARE` for the KB's `[out_of_scope]` examples. A left-out intent usually has a sibling in the
/// KB (pending vs failed withdrawal), so it is a harsher test than real off-topic messages; a
/// quarter keeps it from making the bot refuse too much.
const UNSEEN_TOPIC_SHARE: f32 = 0.25;

fn epochs_for(n: usize) -> usize {
    // Small KBs need more passes to converge; large ones converge in a few and pay per pass.
    (75_000 / n.max(1)).clamp(5, 30)
}

fn calibrate(logits: &mut [f32], temperature: f32) {
    logits.iter_mut().for_each(|v| *v /= temperature);
    softmax(logits);
}

struct Verdict {
    kind: DecisionKind,
    /// Answered intent, or the first clarify option.
    first: Option<usize>,
    second: Option<usize>,
}

/// The two best in-scope classes and the out-of-scope probability: all a policy looks at.
#[derive(Debug, Clone, Copy)]
struct Top {
    best: Option<(usize, f32)>,
    second: Option<(usize, f32)>,
    oos: f32,
}

impl Top {
    fn of(p: &[f32], labels: &[Option<usize>]) -> Top {
        let mut top = Top {
            best: None,
            second: None,
            oos: 0.0,
        };
        for (c, &s) in p.iter().enumerate() {
            match labels[c] {
                None => top.oos = s,
                Some(i) => {
                    if top.best.is_none_or(|b| s > b.1) {
                        top.second = top.best;
                        top.best = Some((i, s));
                    } else if top.second.is_none_or(|b| s > b.1) {
                        top.second = Some((i, s));
                    }
                }
            }
        }
        top
    }
}

fn apply_policy(top: &Top, policy: &Policy) -> Verdict {
    let escalate = Verdict {
        kind: DecisionKind::Escalate,
        first: None,
        second: None,
    };
    let Some((best, p1)) = top.best else {
        return escalate;
    };
    if top.oos >= p1 {
        return escalate;
    }
    if p1 >= policy.answer_threshold {
        return Verdict {
            kind: DecisionKind::Answer,
            first: Some(best),
            second: None,
        };
    }
    if let Some((second, p2)) = top.second
        && p1 + p2 >= policy.clarify_threshold
        && p2 >= policy.clarify_ratio * p1
        && top.oos < p2
    {
        return Verdict {
            kind: DecisionKind::Clarify,
            first: Some(best),
            second: Some(second),
        };
    }
    escalate
}

/// Utility of one held-out decision (see the module doc).
fn utility(v: &Verdict, gold: Option<usize>) -> f32 {
    match (gold, v.kind) {
        (Some(g), DecisionKind::Answer) => {
            if v.first == Some(g) {
                1.0
            } else {
                -1.0
            }
        }
        (Some(g), DecisionKind::Clarify) => {
            if v.first == Some(g) || v.second == Some(g) {
                0.6
            } else {
                -0.3
            }
        }
        (Some(_), DecisionKind::Escalate) => 0.0,
        (None, DecisionKind::Answer) => -1.0,
        // Off-topic, asked "A or B?": "neither" leads to the same human, one step later.
        (None, DecisionKind::Clarify) => 0.7,
        (None, DecisionKind::Escalate) => 1.0,
    }
}

/// How many neighbouring clarify thresholds (each side) a threshold's utility is averaged with.
/// Chosen on development splits (`bench/make_dev.py`): resolved on CLINC150's validation set
/// 0.893 / 0.914 / 0.928 with 0 / 1 / 2, BANKING77 (three training-set splits) 0.837 / 0.832 / 0.839.
const CLARIFY_SMOOTHING: usize = 2;

/// Each cell averaged with up to `k` cells above and below it in its column (the rows are clarify
/// thresholds in ascending order, the columns clarify ratios).
fn smooth_columns(table: &[Vec<f32>], k: usize) -> Vec<Vec<f32>> {
    (0..table.len())
        .map(|i| {
            let (lo, hi) = (i.saturating_sub(k), (i + k).min(table.len() - 1));
            (0..table[i].len())
                .map(|j| (lo..=hi).map(|m| table[m][j]).sum::<f32>() / (hi - lo + 1) as f32)
                .collect()
        })
        .collect()
}

fn derive_policy(
    kb: &KnowledgeBase,
    labels: &[Option<usize>],
    held: &[HeldOut],
    folds: usize,
) -> (Policy, Validation) {
    // 1. Temperature: minimum mean log-loss of the gold class.
    let temps = [
        0.25f32, 0.35, 0.5, 0.6, 0.7, 0.85, 1.0, 1.2, 1.4, 1.7, 2.0, 2.5, 3.0, 4.0,
    ];
    let mut temperature = 1.0;
    let mut best_loss = f32::MAX;
    for &t in &temps {
        let mut loss = 0.0;
        for h in held.iter().filter(|h| !h.novel) {
            let mut p = h.logits.clone();
            calibrate(&mut p, t);
            loss -= p[h.gold].max(1e-9).ln();
        }
        if loss < best_loss {
            best_loss = loss;
            temperature = t;
        }
    }
    // Gold label for the policy: an intent the model never saw is out of scope for it.
    let probs: Vec<(Top, Option<usize>)> = held
        .iter()
        .map(|h| {
            let mut p = h.logits.clone();
            calibrate(&mut p, temperature);
            (
                Top::of(&p, labels),
                if h.novel { None } else { labels[h.gold] },
            )
        })
        .collect();
    // Three groups of held-out evidence: in-scope examples, the KB's `[out_of_scope]` examples,
    // and examples of intents a fold never saw. In-scope weighs half; the out-of-scope half is
    // split between the other two (see UNSEEN_TOPIC_SHARE).
    let group = |h: &HeldOut, gold: Option<usize>| match gold {
        Some(_) => 0,
        None if h.novel => 2,
        None => 1,
    };
    let mut counts = [0usize; 3];
    for ((_, gold), h) in probs.iter().zip(held) {
        counts[group(h, *gold)] += 1;
    }
    // Each kind of evidence has a fixed weight, whatever else the KB has: in-scope 1, the KB's
    // out-of-scope examples 1 - UNSEEN_TOPIC_SHARE, unseen topics UNSEEN_TOPIC_SHARE.
    let weights: Vec<f32> = (0..3)
        .map(|g| match (g, counts[g]) {
            (_, 0) => 0.0,
            (0, n) => 1.0 / n as f32,
            (1, n) => (1.0 - UNSEEN_TOPIC_SHARE) / n as f32,
            (_, n) => UNSEEN_TOPIC_SHARE / n as f32,
        })
        .collect();
    let n_in = counts[0].max(1) as f32;

    // 2. Thresholds: maximise utility over a grid. For a given answer threshold, the messages
    //    answered (or left to the out-of-scope class) don't depend on the clarify rule: they are
    //    scored once, and only the rest is scored for each clarify rule.
    let evidence: Vec<(Top, Option<usize>, f32)> = probs
        .iter()
        .zip(held)
        .map(|((p, gold), h)| (*p, *gold, weights[group(h, *gold)]))
        .collect();
    let mut policy = Policy {
        answer_threshold: 0.5,
        clarify_threshold: 1.1,
        clarify_ratio: 0.5,
        temperature,
    };
    let mut best_u = f32::MIN;
    let mut undecided = Vec::with_capacity(evidence.len());
    // A KB's wrong-answer budget rules out the answer thresholds that answer wrongly more often
    // on the held-out check (every held-out example counts once, as `wrong_answer_rate`); when
    // none keeps within it, the strictest is the only one left.
    let answer_thresholds: Vec<f32> = (2..=39)
        .map(|i| i as f32 * 0.025)
        .chain([0.985, 0.99])
        .collect();
    let wrong_rate = |a: f32| {
        let wrong = probs
            .iter()
            .filter(|(top, gold)| {
                top.best
                    .is_some_and(|(b, p1)| top.oos < p1 && p1 >= a && gold.is_none_or(|g| g != b))
            })
            .count();
        wrong as f32 / probs.len().max(1) as f32
    };
    let answer_thresholds: Vec<f32> = match kb.meta.max_wrong_answer_rate {
        Some(budget) => {
            let within: Vec<f32> = answer_thresholds
                .iter()
                .copied()
                .filter(|&a| wrong_rate(a) <= budget + 1e-6)
                .collect();
            if within.is_empty() {
                answer_thresholds.last().copied().into_iter().collect()
            } else {
                within
            }
        }
        None => answer_thresholds,
    };
    if !evidence.is_empty() {
        for a in answer_thresholds {
            let answering = Policy {
                answer_threshold: a,
                clarify_threshold: f32::INFINITY,
                ..policy
            };
            let mut settled = 0.0;
            undecided.clear();
            for e in &evidence {
                let decided = e.0.best.is_none_or(|(_, p1)| e.0.oos >= p1 || p1 >= a);
                if decided {
                    settled += utility(&apply_policy(&e.0, &answering), e.1) * e.2;
                } else {
                    undecided.push(e);
                }
            }
            // Utilities on the (clarify threshold × ratio) grid for this answer threshold.
            let clarify: Vec<f32> = (4..=20).map(|i| i as f32 * 0.05).chain([1.1]).collect();
            let ratios = [0.0, 0.1, 0.2, 0.3, 0.5, 0.7];
            let table: Vec<Vec<f32>> = clarify
                .iter()
                .map(|&c| {
                    ratios
                        .iter()
                        .map(|&r| {
                            let candidate = Policy {
                                answer_threshold: a,
                                clarify_threshold: c,
                                clarify_ratio: r,
                                temperature,
                            };
                            settled
                                + undecided
                                    .iter()
                                    .map(|e| utility(&apply_policy(&e.0, &candidate), e.1) * e.2)
                                    .sum::<f32>()
                        })
                        .collect()
                })
                .collect();
            // Each clarify threshold is judged with its neighbours: where utility is flat, a
            // threshold at the edge of a plateau flips with the smallest change to the model,
            // and real messages are less confident than held-out examples; the middle is safer.
            let smoothed = smooth_columns(&table, CLARIFY_SMOOTHING);
            for (ci, &c) in clarify.iter().enumerate() {
                for (ri, &r) in ratios.iter().enumerate() {
                    if smoothed[ci][ri] > best_u + 1e-6 {
                        best_u = smoothed[ci][ri];
                        policy = Policy {
                            answer_threshold: a,
                            clarify_threshold: c,
                            clarify_ratio: r,
                            temperature,
                        };
                    }
                }
            }
        }
    }

    // 3. Validation report with the chosen policy.
    let mut per_intent: Vec<(String, usize, usize)> =
        kb.intents.iter().map(|i| (i.id.clone(), 0, 0)).collect();
    let mut confusions: HashMap<(usize, usize), usize> = HashMap::new();
    let (mut top1, mut resolved, mut wrong) = (0usize, 0usize, 0usize);
    let (mut oos, mut oos_kept, mut novel, mut novel_kept) = (0usize, 0usize, 0usize, 0usize);
    for ((top, gold), h) in probs.iter().zip(held) {
        let v = apply_policy(top, &policy);
        let best_in = top.best.map(|b| b.0);
        match gold {
            Some(g) => {
                per_intent[*g].1 += 1;
                if best_in == Some(*g) {
                    top1 += 1;
                    per_intent[*g].2 += 1;
                } else if let Some(b) = best_in {
                    *confusions.entry((*g, b)).or_default() += 1;
                }
                let ok = match v.kind {
                    DecisionKind::Answer => v.first == Some(*g),
                    DecisionKind::Clarify => v.first == Some(*g) || v.second == Some(*g),
                    DecisionKind::Escalate => false,
                };
                resolved += usize::from(ok);
                wrong += usize::from(v.kind == DecisionKind::Answer && v.first != Some(*g));
            }
            None => {
                let kept = v.kind != DecisionKind::Answer;
                wrong += usize::from(!kept);
                if h.novel {
                    novel += 1;
                    novel_kept += usize::from(kept);
                } else {
                    oos += 1;
                    oos_kept += usize::from(kept);
                }
            }
        }
    }
    let mut confusions: Vec<(String, String, usize)> = confusions
        .into_iter()
        .map(|((g, b), n)| (kb.intents[g].id.clone(), kb.intents[b].id.clone(), n))
        .collect();
    confusions.sort_by(|a, b| {
        b.2.cmp(&a.2)
            .then_with(|| a.0.cmp(&b.0))
            .then_with(|| a.1.cmp(&b.1))
    });
    confusions.truncate(20);
    let total = probs.len().max(1) as f32;
    let validation = Validation {
        folds,
        examples: probs.len(),
        top1_accuracy: top1 as f32 / n_in,
        resolved_rate: resolved as f32 / n_in,
        wrong_answer_rate: wrong as f32 / total,
        oos_recall: (oos > 0).then(|| oos_kept as f32 / oos as f32),
        unseen_topic_recall: (novel > 0).then(|| novel_kept as f32 / novel as f32),
        per_intent,
        confusions,
        held_out: Vec::new(),
    };
    (policy, validation)
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
examples = { zh = ["提币失败", "提现失败了怎么办", "提币一直失败", "为什么提不了币", "提币被拒绝了"], en = ["withdrawal failed", "cannot withdraw", "my withdrawal was rejected"] }
answer = { zh = "请检查提币地址和网络。", en = "Check the address and network." }

[[intent]]
id = "deposit.missing"
title = { zh = "充值未到账", en = "Deposit not credited" }
examples = { zh = ["充值没到账", "充币一直不到", "充的usdt没有到账", "入金没显示", "充值不到账怎么办"], en = ["deposit not credited", "my deposit is missing", "deposit not arrived"] }
answer = { zh = "请提供交易哈希。", en = "Please send the transaction hash." }

[[intent]]
id = "account.locked"
title = { zh = "账户被锁", en = "Account locked" }
examples = { zh = ["账户被锁了", "账号冻结了", "登录不了账户被锁定", "账户被冻结怎么办", "帐号锁住了"], en = ["account locked", "my account is frozen", "account was suspended"] }
answer = { zh = "请联系客服解锁。", en = "Contact support to unlock it." }

[out_of_scope]
examples = { zh = ["今天天气怎么样", "给我讲个笑话", "你喜欢吃什么", "帮我写作业", "北京明天下雨吗"], en = ["what's the weather", "tell me a joke", "write my homework"] }

[vocabulary]
synonyms = [["提币", "提现", "出金"], ["充值", "充币", "入金"]]
"#;

    #[test]
    fn a_wrong_answer_budget_holds_the_held_out_check_within_it() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/kb");
        let kb = crate::kb::load(&dir).expect("the default KB");
        assert_eq!(kb.meta.max_wrong_answer_rate, None);
        let free = Engine::train(kb.clone());
        let free_wrong = free.validation().wrong_answer_rate;
        assert!(
            free_wrong > 0.0,
            "the test needs a KB that answers some held-out examples wrongly"
        );

        let mut budgeted = kb.clone();
        budgeted.meta.max_wrong_answer_rate = Some(free_wrong / 2.0);
        let strict = Engine::train(budgeted);
        let (p, v) = (strict.policy(), strict.validation());
        assert!(
            v.wrong_answer_rate <= free_wrong / 2.0 + 1e-6 || p.answer_threshold >= 0.99,
            "{v:?} {p:?}"
        );
        assert!(p.answer_threshold > free.policy().answer_threshold, "{p:?}");
        assert!(v.resolved_rate <= free.validation().resolved_rate);

        // A budget the best policy keeps anyway changes nothing.
        let mut loose = kb;
        loose.meta.max_wrong_answer_rate = Some(1.0);
        assert_eq!(Engine::train(loose).policy(), free.policy());
    }

    /// A KB from one TOML text.
    fn parse(text: &str) -> KnowledgeBase {
        parse_sources(Path::new("t.toml"), &[(Path::new("t.toml"), text)]).expect("valid KB")
    }

    fn engine() -> Engine {
        Engine::train(parse(KB))
    }

    /// Three English intents, examples in everyday words.
    const CARDS: &str = r#"
[meta]
default_language = "en"

[[intent]]
id = "card.swallowed"
title = { en = "Card kept by an ATM" }
examples = { en = ["the atm kept my card", "cash machine took my card", "my card is stuck in the atm"] }
answer = { en = "Ask the bank that runs the ATM." }

[[intent]]
id = "card.lost"
title = { en = "Lost card" }
examples = { en = ["i lost my card", "my card is missing", "cannot find my card anywhere"] }
answer = { en = "Freeze the card in the app." }

[[intent]]
id = "fees"
title = { en = "Fees" }
examples = { en = ["how much is the fee", "what do you charge for transfers", "fee for sending money"] }
answer = { en = "See the fee schedule." }
"#;

    #[test]
    fn word_vectors_rank_english_paraphrases_and_leave_chinese_alone() {
        let off = EngineOptions {
            word_vectors: false,
            ..EngineOptions::default()
        };
        let with = Engine::train(parse(CARDS));
        assert!(with.uses_word_vectors());
        assert!(!Engine::train_with(parse(CARDS), off.clone()).uses_word_vectors());
        // None of these words is in an example; the title "Lost card" shares only "card".
        for (q, gold) in [
            ("misplaced it somewhere", "card.lost"),
            ("where did it go", "card.lost"),
            ("how expensive is it", "fees"),
            ("the machine ate it", "card.swallowed"),
        ] {
            assert_eq!(with.decide(q).candidates[0].intent, gold, "{q}");
        }
        // A Chinese KB: no token has a vector, so the model and its probabilities are the same.
        let only_zh = |kb: &str| {
            kb.lines()
                .map(|l| match l.find(", en = ") {
                    Some(k) if l.starts_with("examples") || l.starts_with("title") => {
                        format!("{} }}", &l[..k])
                    }
                    _ => l.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        // The Chinese table aside, English word vectors leave a Chinese KB alone.
        let kb = only_zh(KB);
        let a = Engine::train_with(
            parse(&kb),
            EngineOptions {
                chinese_word_vectors: false,
                ..EngineOptions::default()
            },
        );
        let b = Engine::train_with(parse(&kb), off);
        for q in [
            "提币失败",
            "充值没到账怎么办",
            "账户被冻结",
            "今天天气怎么样",
        ] {
            assert_eq!(a.probabilities(q), b.probabilities(q), "{q}");
        }
    }

    /// Everyday Chinese intents whose examples never use the words the messages below use.
    const EVERYDAY: &str = r#"
[meta]
default_language = "zh"

[[intent]]
id = "hotel"
title = { zh = "订房" }
examples = { zh = ["帮我订个酒店", "附近的酒店", "酒店还有房间吗", "找一家便宜的酒店"] }
answer = { zh = "为您查找住处。" }

[[intent]]
id = "holiday"
title = { zh = "放假安排" }
examples = { zh = ["国庆的节日安排", "过节安排", "这个节日怎么安排"] }
answer = { zh = "为您查询假期。" }

[[intent]]
id = "theft"
title = { zh = "东西丢了" }
examples = { zh = ["钱包被偷窃了", "手机被偷窃", "遭遇偷窃怎么办"] }
answer = { zh = "请先报警。" }
"#;

    /// Lines of the thesaurus table for the words above, with their codes in the real one.
    const EVERYDAY_THESAURUS: &str = "酒店\tDm04A10=\n宾馆\tDm04A12=\n旅馆\tDm04A12=\n\
        节日\tCa25A01=\n节假日\tCa25A01=\n偷窃\tHn03B01=\n盗取\tHn03B01=\n";

    fn with_thesaurus(text: &str) -> EngineOptions {
        EngineOptions {
            thesaurus: Some(Arc::new(
                Thesaurus::parse(text, crate::thesaurus::THESAURUS_DEPTH).unwrap(),
            )),
            ..no_chinese_vectors()
        }
    }

    /// Options without the Chinese word vectors, so that the thesaurus's own effect shows.
    fn no_chinese_vectors() -> EngineOptions {
        EngineOptions {
            chinese_word_vectors: false,
            ..EngineOptions::default()
        }
    }

    #[test]
    fn synonyms_meet_through_the_thesaurus_without_sharing_a_character() {
        let on = Engine::train_with(parse(EVERYDAY), with_thesaurus(EVERYDAY_THESAURUS));
        let off = Engine::train_with(parse(EVERYDAY), no_chinese_vectors());
        assert!(on.uses_thesaurus() && !off.uses_thesaurus());
        let pairs = [("宾馆", "hotel"), ("旅馆", "hotel"), ("盗取", "theft")];
        answered_better(&on, &off, &pairs, "the thesaurus");
    }

    /// Each message's best intent is `gold` with `on`, more likely by 0.1 than with `off`.
    fn answered_better(on: &Engine, off: &Engine, pairs: &[(&str, &str)], what: &str) {
        for &(q, gold) in pairs {
            let with = on.probabilities(q);
            let without = off.probabilities(q);
            let gold_class = on.kb.intents.iter().position(|i| i.id == gold).unwrap();
            assert_eq!(on.decide(q).candidates[0].intent, gold, "{q}: {with:?}");
            assert!(
                with[gold_class] > without[gold_class] + 0.1,
                "{q}: {} with {what}, {} without",
                with[gold_class],
                without[gold_class]
            );
        }
    }

    #[test]
    fn chinese_words_meet_through_their_vectors_without_sharing_a_character() {
        let on = Engine::train(parse(EVERYDAY));
        let off = Engine::train_with(parse(EVERYDAY), no_chinese_vectors());
        assert!(on.uses_chinese_word_vectors() && !off.uses_chinese_word_vectors());
        assert!(on.uses_word_vectors() && off.uses_word_vectors());
        // No character of these messages is in an example or the title of their intent.
        let pairs = [
            ("宾馆", "hotel"),
            ("住宿", "hotel"),
            ("旅社", "hotel"),
            ("盗贼", "theft"),
        ];
        answered_better(&on, &off, &pairs, "the Chinese word vectors");
        // An English KB never loads the Chinese table.
        assert!(!Engine::train(parse(CARDS)).uses_chinese_word_vectors());
    }

    #[test]
    fn a_thesaurus_without_the_kb_s_words_changes_nothing() {
        // None of these words is in the CARDS KB: the pruned table is empty, and the engine is
        // the one without a thesaurus.
        let on = Engine::train_with(parse(CARDS), with_thesaurus(EVERYDAY_THESAURUS));
        let off = Engine::train(parse(CARDS));
        assert!(on.thesaurus.as_ref().is_some_and(Thesaurus::is_empty));
        for q in ["i lost my card", "宾馆", "how much is the fee", "节假日"] {
            assert_eq!(on.probabilities(q), off.probabilities(q), "{q}");
        }
    }

    #[test]
    fn each_word_vector_counts_in_proportion_to_its_script_s_tokens() {
        let english = WordVectors::english().expect("compiled table");
        let chinese = WordVectors::chinese().expect("compiled table");
        let groups = WordVectorGroups {
            english: Some((english, WordWeights::fit(english, &[]))),
            chinese: Some((chinese, WordWeights::fit(chinese, &[]))),
        };
        let space = FeatureSpace::default();
        // The norms of the English block and of the Chinese block that follows it.
        let norms = |tokens: &[&str]| {
            let tokens: Vec<String> = tokens.iter().map(|t| (*t).to_owned()).collect();
            let x = text_features(&space, &groups, &RawFeatures::default(), &tokens);
            let mut sums = [0f32; 2];
            for (&i, v) in x.idx.iter().zip(&x.val) {
                sums[usize::from(i as usize >= english.dims())] += v * v;
            }
            sums.map(f32::sqrt)
        };
        assert_eq!(groups.dims(), english.dims() + chinese.dims());
        // All-English: the English block at full weight, no Chinese one.
        let [en, zh] = norms(&["app", "crash"]);
        assert!(
            (en - WORD_VECTOR_WEIGHT).abs() < 1e-3 && zh == 0.0,
            "{en} {zh}"
        );
        // One English word among three Chinese: a quarter of one, three quarters of the other.
        let [en, zh] = norms(&["卸载", "app", "助记词", "没存"]);
        assert!((en - WORD_VECTOR_WEIGHT / 4.0).abs() < 1e-3, "{en}");
        assert!(
            (zh - CHINESE_WORD_VECTOR_WEIGHT * 3.0 / 4.0).abs() < 1e-3,
            "{zh}"
        );
        let [en, zh] = norms(&["台风", "来", "了"]);
        assert!(
            en == 0.0 && (zh - CHINESE_WORD_VECTOR_WEIGHT).abs() < 1e-3,
            "{en} {zh}"
        );
    }

    const SLANG: &str = r#"
[meta]
default_language = "zh"

[[intent]]
id = "deposit.missing"
title = { zh = "充值未到账" }
examples = { zh = ["充值未到账", "充值一直没有到账怎么办", "充币很久了还没有到"] }
answer = { zh = "请提供交易哈希。" }

[[intent]]
id = "withdrawal.failed"
title = { zh = "提现失败" }
examples = { zh = ["提现失败", "提币提示失败", "提现不成功怎么办"] }
answer = { zh = "请检查地址和网络。" }

[[intent]]
id = "account.delete"
title = { zh = "注销账户" }
examples = { zh = ["如何注销账户", "我要注销账户"] }
answer = { zh = "在设置里申请注销。" }

[[intent]]
id = "referral"
title = { zh = "邀请返佣" }
examples = { zh = ["邀请好友有什么奖励", "邀请返佣怎么算"] }
answer = { zh = "见邀请页面。" }
"#;

    #[test]
    fn the_lexicon_joins_slang_and_english_to_the_kbs_terms() {
        // Without the Chinese word vectors, which know some of these words too.
        let with = Engine::train_with(parse(SLANG), no_chinese_vectors());
        let without = Engine::train_with(
            parse(SLANG),
            EngineOptions {
                lexicon: false,
                ..no_chinese_vectors()
            },
        );
        assert!(with.uses_lexicon() && !without.uses_lexicon());
        // No example has these words; only the lexicon knows what they mean.
        for (q, gold) in [
            ("出金被拒", "withdrawal.failed"),
            ("withdrawal failed", "withdrawal.failed"),
            ("deposit not credited", "deposit.missing"),
            ("删号", "account.delete"),
            ("拉人能拿多少", "referral"),
        ] {
            let d = with.decide(q);
            assert_eq!(d.candidates[0].intent, gold, "{q}: {d:?}");
            let p = |e: &Engine| {
                let class = e
                    .labels
                    .iter()
                    .position(|l| l.is_some_and(|c| e.kb().intents[c].id == gold));
                e.probabilities(q)[class.expect("gold intent")]
            };
            assert!(
                p(&with) > p(&without),
                "{q}: {} vs {}",
                p(&with),
                p(&without)
            );
        }
    }

    #[test]
    fn a_clear_question_is_answered_in_its_language() {
        let e = engine();
        let d = e.decide("提币失败了");
        assert_eq!(d.decision, DecisionKind::Answer, "{d:?}");
        assert_eq!(d.intent.as_deref(), Some("withdrawal.failed"));
        assert_eq!(d.language, "zh");
        let answer = e
            .kb()
            .intent("withdrawal.failed")
            .map(|i| i.answer_in("zh", None));
        assert_eq!(answer, Some("请检查提币地址和网络。"));
        let d = e.decide("my withdrawal failed");
        assert_eq!(d.intent.as_deref(), Some("withdrawal.failed"));
        assert_eq!(d.language, "en");
    }

    #[test]
    fn synonyms_carry_meaning_to_unseen_words() {
        let e = engine();
        assert_eq!(
            e.decide("出金失败").intent.as_deref(),
            Some("withdrawal.failed")
        );
        assert_eq!(
            e.decide("入金没到").intent.as_deref(),
            Some("deposit.missing")
        );
    }

    #[test]
    fn out_of_scope_messages_are_not_answered() {
        let e = engine();
        let d = e.decide("明天天气怎么样");
        assert_ne!(d.decision, DecisionKind::Answer, "{d:?}");
        assert!(d.out_of_scope > 0.3, "{d:?}");
    }

    #[test]
    fn best_three_is_the_head_of_a_stable_sort() {
        let cases: [&[f32]; 5] = [
            &[],
            &[0.5],
            &[0.1, 0.3, 0.3, 0.2, 0.3, 0.05],
            &[0.2, 0.2, 0.2, 0.2],
            &[0.9, 0.01, 0.02, 0.03, 0.04, 0.95],
        ];
        for scores in cases {
            let items: Vec<(usize, f32)> = scores.iter().copied().enumerate().collect();
            let mut sorted = items.clone();
            sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
            sorted.truncate(3);
            assert_eq!(best_three(items.into_iter()), sorted, "{scores:?}");
        }
    }

    #[test]
    fn candidates_are_ranked_and_probabilities() {
        let e = engine();
        let d = e.decide("账户被锁");
        assert_eq!(d.candidates.len(), 3);
        assert!(d.candidates.windows(2).all(|w| w[0].score >= w[1].score));
        let total: f32 = d.candidates.iter().map(|c| c.score).sum::<f32>() + d.out_of_scope;
        assert!((total - 1.0).abs() < 1e-3, "{total}");
    }

    #[test]
    fn the_policy_answers_above_the_threshold_and_clarifies_close_pairs() {
        let labels = [Some(0), Some(1), None];
        let policy = Policy {
            answer_threshold: 0.6,
            clarify_threshold: 0.8,
            clarify_ratio: 0.5,
            temperature: 1.0,
        };
        let apply = |p: &[f32]| apply_policy(&Top::of(p, &labels), &policy);
        let v = apply(&[0.7, 0.2, 0.1]);
        assert_eq!((v.kind, v.first), (DecisionKind::Answer, Some(0)));
        let v = apply(&[0.45, 0.4, 0.15]);
        assert_eq!(
            (v.kind, v.first, v.second),
            (DecisionKind::Clarify, Some(0), Some(1))
        );
        let v = apply(&[0.45, 0.1, 0.45]);
        assert_eq!(v.kind, DecisionKind::Escalate, "out of scope ties win");
        let v = apply(&[0.5, 0.2, 0.3]);
        assert_eq!(
            v.kind,
            DecisionKind::Escalate,
            "second option too weak to clarify"
        );
        let v = apply(&[0.1, 0.1, 0.8]);
        assert_eq!(v.kind, DecisionKind::Escalate);
    }

    #[test]
    fn parallel_feature_extraction_keeps_the_order() {
        let items: Vec<u32> = (0..5_003).collect();
        let doubled: Vec<u32> = items.iter().map(|i| i * 2).collect();
        for threads in [1, 2, 3, 64] {
            assert_eq!(par_map(&items, threads, |i| i * 2), doubled, "{threads}");
        }
        assert!(par_map(&[] as &[u32], 2, |i| *i).is_empty());
    }

    #[test]
    fn a_needless_question_costs_the_same_whatever_the_message_was() {
        // Two wrong options: the user presses "neither" and reaches a human one step later, so
        // asking costs the same against handing over at once for an in-scope message and for an
        // off-topic one.
        let ask = |first, second| Verdict {
            kind: DecisionKind::Clarify,
            first: Some(first),
            second: Some(second),
        };
        let hand_over = Verdict {
            kind: DecisionKind::Escalate,
            first: None,
            second: None,
        };
        for gold in [Some(7), None] {
            let cost = utility(&hand_over, gold) - utility(&ask(0, 1), gold);
            assert!((cost - 0.3).abs() < 1e-6, "{gold:?}: {cost}");
        }
        let answer_wrong = Verdict {
            kind: DecisionKind::Answer,
            first: Some(0),
            second: None,
        };
        assert!(utility(&ask(0, 1), None) > utility(&answer_wrong, None));
        assert!(utility(&ask(7, 1), Some(7)) > utility(&hand_over, Some(7)));
    }

    #[test]
    fn uncertain_messages_whose_answer_is_among_the_two_best_are_asked_about() {
        // Held-out evidence: confident right answers, uncertain ones with the right intent second,
        // and off-topic messages the out-of-scope class recognises.
        let labels = [Some(0), Some(1), Some(2), None];
        let mut held = Vec::new();
        for i in 0..40 {
            let g = i % 3;
            let mut logits = vec![0.0f32; 4];
            logits[g] = 5.0;
            held.push(HeldOut {
                text: 0,
                gold: g,
                novel: false,
                logits,
            });
            let mut logits = vec![0.0f32; 4];
            logits[(g + 1) % 3] = 2.2;
            logits[g] = 2.0;
            held.push(HeldOut {
                text: 0,
                gold: g,
                novel: false,
                logits,
            });
            held.push(HeldOut {
                text: 0,
                gold: 3,
                novel: false,
                logits: vec![0.5, 0.2, 0.0, 4.0],
            });
        }
        let kb = parse(KB);
        let (policy, validation) = derive_policy(&kb, &labels, &held, 5);
        let v = |p: [f32; 4]| {
            let mut p = p.to_vec();
            calibrate(&mut p, policy.temperature);
            apply_policy(&Top::of(&p, &labels), &policy).kind
        };
        assert_eq!(v([5.0, 0.0, 0.0, 0.0]), DecisionKind::Answer, "{policy:?}");
        assert_eq!(v([2.0, 2.2, 0.0, 0.0]), DecisionKind::Clarify, "{policy:?}");
        assert_eq!(
            v([0.5, 0.2, 0.0, 4.0]),
            DecisionKind::Escalate,
            "{policy:?}"
        );
        assert!(validation.resolved_rate > 0.99, "{validation:?}");
    }

    #[test]
    fn a_flat_utility_picks_the_middle_of_the_plateau_not_its_edge() {
        // Utility by clarify threshold (one ratio): a plateau from row 2 to row 8 whose first row
        // is higher by a hair. The raw maximum sits at the edge; smoothed, in the middle.
        let column = [0.2, 0.5, 0.901, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5, 0.2];
        let table: Vec<Vec<f32>> = column.iter().map(|&u| vec![u]).collect();
        let argmax = |t: &[Vec<f32>]| {
            (0..t.len())
                .max_by(|&a, &b| t[a][0].total_cmp(&t[b][0]))
                .expect("rows")
        };
        assert_eq!(argmax(&table), 2);
        let best = argmax(&smooth_columns(&table, 2));
        assert!((4..=6).contains(&best), "{best}");
        assert_eq!(smooth_columns(&table, 0), table);
    }

    #[test]
    fn thresholds_come_from_the_kb_not_from_constants() {
        let e = engine();
        let v = e.validation();
        assert_eq!(v.folds, 5);
        assert_eq!(v.examples, 24 + 8, "every example is held out once");
        let p = e.policy();
        assert!(
            p.answer_threshold > 0.0 && p.answer_threshold < 1.0,
            "{p:?}"
        );
    }

    #[test]
    fn validation_holds_out_whole_intents_as_unseen_topics() {
        let topics = ["提币", "充值", "登录", "实名认证", "手续费", "合约"];
        let mut text = String::new();
        for (i, t) in topics.iter().enumerate() {
            text.push_str(&format!(
                "[[intent]]\nid = \"t{i}\"\ntitle = {{ zh = \"{t}\" }}\nexamples = {{ zh = [\"{t}问题\", \"{t}怎么办\", \"{t}失败\", \"我的{t}\", \"{t}求助\"] }}\nanswer = {{ zh = \"关于{t}\" }}\n\n"
            ));
        }
        let e = Engine::train(parse(&text));
        let v = e.validation();
        // Each of t0..t4 is left out of one fold, where its five examples are scored as an unseen
        // topic; the one of them that falls in that fold is not scored in-scope as well.
        assert_eq!(v.examples, (30 - 5) + 25);
        assert!(v.unseen_topic_recall.is_some());
        assert!(
            v.oos_recall.is_none(),
            "this KB has no [out_of_scope] examples"
        );
    }
}
