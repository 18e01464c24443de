//! Kefu's understanding of a support message: everything between raw text and a decision.
//!
//! This crate owns the knowledge base (loading and validating it), text normalisation, segmentation,
//! features, the intent classifier trained from the KB's own examples, calibration, the answer /
//! clarify / escalate decision, language detection and detection of secrets (seed phrases, private keys).
//!
//! It deliberately knows nothing of I/O beyond reading KB files: no async runtime, no database, no chat
//! platform. Every function is plain computation over data, which is why classifying a message takes
//! microseconds and why everything here is tested without a server.
//!
//! # Layout
//! - [`kb`]: the knowledge-base format (`shared/contracts/kb-format.md`), loading from a file or a
//!   directory, validation with file/line/fix in every error.
//! - [`normalize`]: Unicode NFKC, full-width → half-width, case, Traditional → Simplified, emoji and
//!   punctuation noise.
//! - [`lang`]: language detection that works on a four-character Chinese message.
//! - [`segment`]: tokens for both scripts: jieba words for Chinese (with KB vocabulary), stemmed words
//!   for Latin script, synonyms folded onto one canonical token.
//! - [`features`]: sparse TF-IDF vectors of words, word bigrams and character n-grams.
//! - [`wordvec`]: static English and Chinese word vectors (compiled in) that add what a word means.
//! - [`concepts`]: a compiled-in lexicon of support concepts (充值 / 冲币 / 入金 / deposit …), one
//!   feature per concept a message mentions.
//! - [`thesaurus`]: a Chinese thesaurus (read from a file when configured), one feature per
//!   semantic class of a message's Chinese words, so 酒店 and 宾馆 meet.
//! - [`classifier`]: multinomial logistic regression trained at KB load.
//! - [`encoder`]: an optional sentence encoder (feature `rust-bert`) whose embeddings become extra
//!   features for English text.
//! - [`engine`]: the trained engine: classify, calibrate, decide; thresholds derived from the KB by
//!   held-out validation.
//! - [`learn`]: the learning loop's suggestions (examples to add, new topics, overlapping
//!   intents) from staff's labels and unanswered questions, with their expected effect.
//! - [`secrets`]: BIP39 mnemonics and private keys, returned as spans to redact.

pub mod classifier;
pub mod concepts;
pub mod encoder;
pub mod engine;
pub mod features;
pub mod kb;
pub mod lang;
pub mod learn;
pub mod normalize;
pub mod secrets;
pub mod segment;
pub mod thesaurus;
pub mod wordvec;
