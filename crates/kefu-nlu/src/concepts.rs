//! A built-in lexicon of what support messages about an exchange or a wallet talk about.
//!
//! A KB's examples are few, and users write the same thing many ways: 充值, 充币, 冲币 (a common
//! typo), 入金, "deposit", "top up". The lexicon (`data/concepts.txt`, compiled in) groups such
//! terms into concepts; a message gets a feature for every concept it mentions, so an example
//! written with one term teaches the engine about the others, across Chinese and English. The
//! lexicon only adds features — the words themselves still count — and a KB's own
//! `[vocabulary].synonyms` remain the way to teach it what the lexicon doesn't know.
//!
//! Matching runs on normalised text (Simplified Chinese, lower case): Chinese terms anywhere in
//! the text, single Latin words against the stemmed tokens, Latin phrases at word boundaries. One
//! pass of an Aho–Corasick DFA and a hash look-up per token.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use rust_stemmers::{Algorithm, Stemmer};

use crate::normalize::{is_cjk, normalize};

/// The lexicon's source, one concept a line.
const SOURCE: &str = include_str!("../data/concepts.txt");

/// The compiled lexicon.
#[derive(Debug)]
pub struct Concepts {
    names: Vec<String>,
    /// Chinese terms and Latin phrases, searched in the normalised text.
    automaton: AhoCorasick,
    /// The concept of each automaton pattern, and whether the pattern is a Latin phrase (which
    /// must start and end at a word boundary).
    pattern_concept: Vec<(u16, bool)>,
    /// Stemmed Latin word → concepts.
    words: HashMap<String, Vec<u16>>,
}

impl Concepts {
    /// The built-in lexicon, compiled once per process (None only if its source were broken,
    /// which a unit test rules out).
    pub fn builtin() -> Option<&'static Concepts> {
        static BUILTIN: std::sync::OnceLock<Option<Concepts>> = std::sync::OnceLock::new();
        BUILTIN
            .get_or_init(|| Concepts::parse(SOURCE).ok())
            .as_ref()
    }

    /// Parses `id: term, term, …` lines ('#' starts a comment).
    pub fn parse(source: &str) -> Result<Concepts, String> {
        let stemmer = Stemmer::create(Algorithm::English);
        let mut names = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut pattern_concept = Vec::new();
        let mut words: HashMap<String, Vec<u16>> = HashMap::new();
        for (n, line) in source.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, terms) = line
                .split_once(':')
                .ok_or_else(|| format!("line {}: expected `id: term, term`", n + 1))?;
            let id = u16::try_from(names.len()).map_err(|_| "too many concepts".to_owned())?;
            names.push(name.trim().to_owned());
            for term in terms.split(',') {
                let term = normalize(term);
                if term.is_empty() {
                    continue;
                }
                if term.chars().any(is_cjk) {
                    patterns.push(term);
                    pattern_concept.push((id, false));
                } else if term.contains(' ') {
                    patterns.push(term);
                    pattern_concept.push((id, true));
                } else {
                    let key = if term.bytes().all(|b| b.is_ascii_alphabetic()) {
                        stemmer.stem(&term).into_owned()
                    } else {
                        term
                    };
                    let entry = words.entry(key).or_default();
                    if !entry.contains(&id) {
                        entry.push(id);
                    }
                }
            }
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .map_err(|e| e.to_string())?;
        Ok(Concepts {
            names,
            automaton,
            pattern_concept,
            words,
        })
    }

    /// Number of concepts.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True for an empty lexicon.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// A concept's name.
    pub fn name(&self, id: u16) -> &str {
        &self.names[usize::from(id)]
    }

    /// The concepts a message mentions, ascending, each once. `normalized` is the message after
    /// [`normalize`]; `tokens` its canonical tokens (stemmed Latin words).
    pub fn find(&self, normalized: &str, tokens: &[String]) -> Vec<u16> {
        let mut found = Vec::new();
        let bytes = normalized.as_bytes();
        let mut state = aho_corasick::automaton::OverlappingState::start();
        loop {
            self.automaton.find_overlapping(normalized, &mut state);
            let Some(m) = state.get_match() else { break };
            let (id, phrase) = self.pattern_concept[m.pattern().as_usize()];
            // Normalised text separates words with single spaces.
            let bounded = m.start() == 0 || bytes[m.start() - 1] == b' ';
            let bounded = bounded && (m.end() == bytes.len() || bytes[m.end()] == b' ');
            if !phrase || bounded {
                found.push(id);
            }
        }
        for t in tokens {
            if let Some(ids) = self.words.get(t.as_str()) {
                found.extend_from_slice(ids);
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::Vocabulary;
    use crate::segment::Tokenizer;

    fn names(text: &str) -> Vec<String> {
        let c = Concepts::builtin().expect("built-in lexicon");
        let t = Tokenizer::new(&Vocabulary::default());
        let n = normalize(text);
        c.find(&n, &t.tokens(&n))
            .into_iter()
            .map(|id| c.name(id).to_owned())
            .collect()
    }

    #[test]
    fn the_builtin_lexicon_parses() {
        assert!(Concepts::parse(SOURCE).expect("valid").len() > 50);
    }

    #[test]
    fn slang_typos_and_both_languages_meet() {
        for text in [
            "冲币半小时了还没到",
            "充值未到账",
            "deposit not credited yet",
            "入金到現在還沒到帳",
        ] {
            let found = names(text);
            assert!(found.contains(&"deposit".to_owned()), "{text}: {found:?}");
            assert!(found.contains(&"credited".to_owned()), "{text}: {found:?}");
        }
        for text in ["出金被拒", "withdrawals keep failing", "提u失败"] {
            let found = names(text);
            assert!(found.contains(&"withdraw".to_owned()), "{text}: {found:?}");
            assert!(found.contains(&"failed".to_owned()), "{text}: {found:?}");
        }
    }

    #[test]
    fn phrases_match_between_spaces_only() {
        assert!(names("how do i cash out").contains(&"withdraw".to_owned()));
        assert!(!names("cashew outlet").contains(&"withdraw".to_owned()));
    }

    #[test]
    fn unrelated_messages_mention_no_concept() {
        assert!(names("今天天气怎么样").is_empty());
        assert!(names("write me a poem about the sea").is_empty());
    }

    #[test]
    fn no_english_word_belongs_to_two_concepts() {
        // Stemming can merge words of different concepts ("savings" and "save" both become
        // "save"); such a word would join two unrelated concepts.
        let c = Concepts::parse(SOURCE).expect("valid");
        let shared: Vec<&String> = c
            .words
            .iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|(w, _)| w)
            .collect();
        assert!(shared.is_empty(), "stems in several concepts: {shared:?}");
    }

    #[test]
    fn a_line_without_a_colon_is_an_error() {
        let e = Concepts::parse("deposit 充值").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }
}
