//! Tokens for both scripts, from text that [`crate::normalize::normalize`] already cleaned.
//!
//! - Chinese runs are segmented with jieba (its dictionary ships inside the crate); the KB's
//!   `[vocabulary].words` and every Chinese synonym are added so domain terms (提币, 助记词…) stay whole.
//! - Latin-script words are stemmed (Snowball English) and common contractions that normalisation
//!   left without their apostrophe ("cant", "didnt") are expanded, so "withdrawals", "withdrawing"
//!   and "withdraw" meet.
//! - Synonyms: every term of a `[vocabulary].synonyms` group is replaced by the group's first term,
//!   so an example written with 提现 teaches the engine about 出金 as well. Multi-word terms
//!   ("google authenticator") are matched as phrases before splitting.

use std::collections::HashMap;
use std::sync::OnceLock;

use jieba_rs::Jieba;
use rust_stemmers::{Algorithm, Stemmer};

use crate::kb::Vocabulary;
use crate::normalize::{is_cjk, normalize};

/// jieba, built on the first Chinese text: its dictionary takes ~30 MB and ~0.1 s to load, which
/// a KB and traffic without Chinese never need.
struct LazyJieba {
    /// Words for jieba's dictionary, in the order they were added, while it is not built yet.
    pending: Vec<String>,
    jieba: OnceLock<Jieba>,
}

impl LazyJieba {
    /// Adds a word to the dictionary (now if it is built, else when it is).
    fn add_word(&mut self, word: &str) {
        match self.jieba.get_mut() {
            Some(j) => {
                j.add_word(word, None, None);
            }
            None => self.pending.push(word.to_owned()),
        }
    }

    /// The dictionary, built with every word added so far on first use.
    fn get(&self) -> &Jieba {
        self.jieba.get_or_init(|| {
            let mut j = Jieba::new();
            for w in &self.pending {
                j.add_word(w, None, None);
            }
            j
        })
    }
}

/// Splits normalised text into canonical tokens.
pub struct Tokenizer {
    jieba: LazyJieba,
    stemmer: Stemmer,
    /// Single token (stemmed when Latin) → canonical token.
    synonyms: HashMap<String, String>,
    /// Multi-word Latin phrase (normalised, space-separated) → canonical token; longest first.
    phrases: Vec<(String, String)>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("synonyms", &self.synonyms.len())
            .field("phrases", &self.phrases.len())
            .finish()
    }
}

/// English contractions as they look once normalisation dropped the apostrophe.
const CONTRACTIONS: &[(&str, &[&str])] = &[
    ("cant", &["can", "not"]),
    ("cannot", &["can", "not"]),
    ("wont", &["will", "not"]),
    ("dont", &["do", "not"]),
    ("doesnt", &["does", "not"]),
    ("didnt", &["did", "not"]),
    ("isnt", &["is", "not"]),
    ("arent", &["are", "not"]),
    ("wasnt", &["was", "not"]),
    ("werent", &["were", "not"]),
    ("hasnt", &["has", "not"]),
    ("havent", &["have", "not"]),
    ("hadnt", &["had", "not"]),
    ("couldnt", &["could", "not"]),
    ("shouldnt", &["should", "not"]),
    ("wouldnt", &["would", "not"]),
    ("aint", &["is", "not"]),
    ("im", &["i", "am"]),
    ("ive", &["i", "have"]),
    ("ill", &["i", "will"]),
    ("id", &["i", "would"]),
    ("youre", &["you", "are"]),
    ("theyre", &["they", "are"]),
    ("whats", &["what", "is"]),
    ("thats", &["that", "is"]),
    ("theres", &["there", "is"]),
];

impl Tokenizer {
    /// Builds a tokenizer that knows the KB's vocabulary (jieba's dictionary, about 0.1 s, is
    /// loaded with the first Chinese text).
    pub fn new(vocabulary: &Vocabulary) -> Self {
        let mut t = Tokenizer {
            jieba: LazyJieba {
                pending: Vec::new(),
                jieba: OnceLock::new(),
            },
            stemmer: Stemmer::create(Algorithm::English),
            synonyms: HashMap::new(),
            phrases: Vec::new(),
        };
        for w in &vocabulary.words {
            let w = normalize(w);
            if w.chars().any(is_cjk) && !w.contains(' ') {
                t.jieba.add_word(&w);
            }
        }
        for group in &vocabulary.synonyms {
            let terms: Vec<String> = group
                .iter()
                .map(|g| normalize(g))
                .filter(|g| !g.is_empty())
                .collect();
            let Some(first) = terms.first() else { continue };
            for term in &terms {
                if term.chars().any(is_cjk) && !term.contains(' ') {
                    t.jieba.add_word(term);
                }
            }
            // The canonical form is the first term's own token sequence, joined: one token.
            let canonical = t.raw_tokens(first).join("_");
            for term in &terms {
                if term.contains(' ') {
                    t.phrases
                        .push((format!(" {term} "), format!(" {canonical} ")));
                } else if let [key] = t.raw_tokens(term).as_slice() {
                    // A term that jieba still splits into several tokens can't map token by token;
                    // adding it to jieba's dictionary above keeps such terms whole in most cases.
                    t.synonyms
                        .entry(key.clone())
                        .or_insert_with(|| canonical.clone());
                }
            }
        }
        t.phrases.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        t
    }

    /// Tokens of normalised text, synonyms not yet applied.
    fn raw_tokens(&self, normalized: &str) -> Vec<String> {
        let mut out = Vec::new();
        for piece in normalized.split(' ').filter(|p| !p.is_empty()) {
            if piece.chars().next().is_some_and(is_cjk) {
                for w in self.jieba.get().cut(piece, false) {
                    out.push(w.word.to_owned());
                }
            } else if let Some((_, expansion)) = CONTRACTIONS.iter().find(|(c, _)| *c == piece) {
                out.extend(expansion.iter().map(|w| (*w).to_owned()));
            } else if piece.bytes().all(|b| b.is_ascii_alphabetic()) {
                out.push(self.stemmer.stem(piece).into_owned());
            } else {
                out.push(piece.to_owned());
            }
        }
        out
    }

    /// Canonical tokens of normalised text: segmented, stemmed, synonyms folded.
    pub fn tokens(&self, normalized: &str) -> Vec<String> {
        let mut tokens = if self.phrases.is_empty() {
            self.raw_tokens(normalized)
        } else {
            let mut padded = format!(" {normalized} ");
            for (phrase, canonical) in &self.phrases {
                if padded.contains(phrase.as_str()) {
                    padded = padded.replace(phrase.as_str(), canonical);
                }
            }
            self.raw_tokens(padded.trim())
        };
        for t in &mut tokens {
            if let Some(c) = self.synonyms.get(t.as_str()) {
                t.clone_from(c);
            }
        }
        tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(words: &[&str], synonyms: &[&[&str]]) -> Vocabulary {
        Vocabulary {
            words: words.iter().map(|w| (*w).to_owned()).collect(),
            synonyms: synonyms
                .iter()
                .map(|g| g.iter().map(|w| (*w).to_owned()).collect())
                .collect(),
        }
    }

    fn toks(t: &Tokenizer, s: &str) -> Vec<String> {
        t.tokens(&normalize(s))
    }

    #[test]
    fn chinese_is_segmented_into_words() {
        let t = Tokenizer::new(&Vocabulary::default());
        assert_eq!(
            toks(&t, "我的密码忘记了"),
            ["我", "的", "密码", "忘记", "了"]
        );
    }

    #[test]
    fn vocabulary_words_stay_whole() {
        let plain = Tokenizer::new(&Vocabulary::default());
        assert!(!toks(&plain, "比特币提不出来").contains(&"比特币".to_owned()));
        let t = Tokenizer::new(&vocab(&["比特币"], &[]));
        assert!(toks(&t, "比特币提不出来").contains(&"比特币".to_owned()));
    }

    #[test]
    fn english_words_are_stemmed_and_contractions_expanded() {
        let t = Tokenizer::new(&Vocabulary::default());
        assert_eq!(toks(&t, "Withdrawals pending"), ["withdraw", "pend"]);
        assert_eq!(
            toks(&t, "I can't withdraw"),
            ["i", "can", "not", "withdraw"]
        );
    }

    #[test]
    fn mixed_script_messages_keep_both_parts() {
        let t = Tokenizer::new(&Vocabulary::default());
        assert_eq!(toks(&t, "USDT提不出来"), ["usdt", "提", "不", "出来"]);
    }

    #[test]
    fn synonyms_fold_onto_the_first_term() {
        let t = Tokenizer::new(&vocab(
            &[],
            &[&["提币", "出金", "提现", "withdrawal"], &["usdt", "u"]],
        ));
        assert_eq!(toks(&t, "出金"), ["提币"]);
        assert_eq!(toks(&t, "提现"), ["提币"]);
        assert_eq!(toks(&t, "withdrawal"), ["提币"]);
        assert_eq!(
            toks(&t, "withdrawals"),
            ["提币"],
            "inflected forms fold too"
        );
        assert_eq!(toks(&t, "u"), ["usdt"]);
    }

    #[test]
    fn multi_word_synonyms_match_as_phrases() {
        let t = Tokenizer::new(&vocab(&[], &[&["2fa", "google authenticator"]]));
        assert_eq!(toks(&t, "reset Google Authenticator"), ["reset", "2fa"]);
        assert_eq!(toks(&t, "google search"), ["googl", "search"]);
    }
}
