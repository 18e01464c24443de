//! A Chinese thesaurus: words that mean the same thing meet without sharing a character.
//!
//! English words bring their meaning through [`crate::wordvec`]; a Chinese word brings only its
//! characters, unless the support lexicon ([`crate::concepts`]) knows it. A thesaurus fills that
//! gap for everyday words: 密码 / 口令, 被盗 / 失窃, 放假 / 节假日, 酒店 / 宾馆 sit in the same
//! semantic class. Each Chinese token of a message brings the classes it belongs to as features,
//! so an example that says 酒店 teaches the engine about a message that says 宾馆.
//!
//! The table is the extended HIT Tongyici Cilin, written by `models/fetch-cilin.sh` as one word a
//! line: the word, a tab, its five-level codes separated by spaces (`酒店<TAB>Dm04A10=`). A code
//! reads level by level: `D` (abstract things), `Dm` (institutions), `Dm04` (service places),
//! `Dm04A` (a group of close words), `Dm04A10=` (one line of synonyms; `#` marks a line of related
//! words, `@` a word alone). The table is not compiled in (its licence is unclear, see
//! `models/README.md`): the engine reads it when `nlu.thesaurus` is on and the file is there.
//!
//! [`Thesaurus::parse`] cuts every code to one depth, so a word's classes are its code prefixes of
//! that length; a word in several classes (an ambiguous word) spreads one unit of weight over
//! them. Once an engine has trained, [`Thesaurus::pruned`] keeps only the classes its KB used:
//! a class no training text mentions cannot move a score, and the pruned table is a small
//! fraction of the 77,000 words.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::normalize::normalize;

/// Why a thesaurus could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ThesaurusError {
    /// The file could not be read.
    #[error(
        "cannot read the thesaurus {path}: {source}; fix: run models/fetch-cilin.sh, or set nlu.thesaurus = false"
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A line is not `word<TAB>code code …`, or a code is shorter than the depth.
    #[error(
        "thesaurus line {line}: {problem}; fix: regenerate the file with models/fetch-cilin.sh"
    )]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// The depth is not one of the thesaurus's five levels.
    #[error("thesaurus depth {0} does not exist; fix: use a depth from 1 to 5")]
    Depth(usize),
}

/// The depth whose classes become features. Chosen on development data only (see README
/// "How the engine works").
pub const THESAURUS_DEPTH: usize = 4;

/// The top-level class of function words and particles (助语).
const FUNCTION_WORDS: char = 'K';

/// Code length at each depth (1-based): `D`, `Dm`, `Dm04`, `Dm04A`, `Dm04A10=`.
const CODE_LENGTH: [usize; 5] = [1, 2, 4, 5, 8];

/// One word's classes and the weight each one gets.
#[derive(Debug, Clone)]
struct Entry {
    /// 1 / (number of classes the word has at this depth): an ambiguous word spreads its weight.
    share: f32,
    /// Class ids; after [`Thesaurus::pruned`], only the classes the KB used.
    classes: Box<[u32]>,
}

/// A word → semantic classes table at one depth.
#[derive(Debug, Clone)]
pub struct Thesaurus {
    depth: usize,
    classes: usize,
    words: HashMap<Box<str>, Entry>,
}

impl Thesaurus {
    /// Reads a table file (see the module doc) at `depth` (1–5).
    pub fn load(path: &Path, depth: usize) -> Result<Thesaurus, ThesaurusError> {
        let text = std::fs::read_to_string(path).map_err(|source| ThesaurusError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, depth)
    }

    /// Parses a table (see the module doc) at `depth` (1–5). Lines starting with '#' are comments.
    pub fn parse(text: &str, depth: usize) -> Result<Thesaurus, ThesaurusError> {
        let len = *CODE_LENGTH
            .get(depth.wrapping_sub(1))
            .ok_or(ThesaurusError::Depth(depth))?;
        let mut class_ids: HashMap<&str, u32> = HashMap::new();
        let mut words: HashMap<Box<str>, Entry> = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |problem: String| ThesaurusError::Line {
                line: n + 1,
                problem,
            };
            let (word, codes) = line
                .split_once('\t')
                .ok_or_else(|| bad("expected a word, a tab and its codes".to_owned()))?;
            // The engine looks words up in normalised text (Simplified, lower case).
            let word = normalize(word);
            if word.is_empty() || word.contains(' ') {
                continue;
            }
            let entry = words.entry(word.into_boxed_str()).or_insert(Entry {
                share: 1.0,
                classes: Box::new([]),
            });
            let mut classes = entry.classes.to_vec();
            for code in codes.split(' ').filter(|c| !c.is_empty()) {
                // Class K holds function words (了, 吗, 吧, 啊…): in every other message, they
                // would tie unrelated ones together.
                if code.starts_with(FUNCTION_WORDS) {
                    continue;
                }
                let class = code
                    .get(..len)
                    .filter(|_| code.is_ascii())
                    .ok_or_else(|| bad(format!("code {code:?} is shorter than depth {depth}")))?;
                let next = class_ids.len() as u32;
                let id = *class_ids.entry(class).or_insert(next);
                if !classes.contains(&id) {
                    classes.push(id);
                }
            }
            entry.share = 1.0 / classes.len().max(1) as f32;
            entry.classes = classes.into_boxed_slice();
        }
        words.retain(|_, e| !e.classes.is_empty());
        Ok(Thesaurus {
            depth,
            classes: class_ids.len(),
            words,
        })
    }

    /// The depth the codes were cut to.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Number of words with at least one class.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// True when no word has a class.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Number of classes at this depth (before pruning).
    pub fn class_count(&self) -> usize {
        self.classes
    }

    /// The classes of the thesaurus words among `tokens`, each with its share of the word's unit
    /// weight. Tokens that are not Chinese words of the table bring nothing.
    pub fn classes_of<'a>(&'a self, tokens: &'a [String]) -> impl Iterator<Item = (u32, f32)> + 'a {
        tokens
            .iter()
            .filter_map(|t| self.words.get(t.as_str()))
            .flat_map(|e| e.classes.iter().map(move |&c| (c, e.share)))
    }

    /// A copy that keeps only the classes `keep` accepts (those a trained engine knows), and only
    /// the words left with one. Each word keeps its original share: a class of an ambiguous word
    /// weighs the same whether or not its other classes were used.
    pub fn pruned(&self, keep: impl Fn(u32) -> bool) -> Thesaurus {
        let words = self
            .words
            .iter()
            .filter_map(|(w, e)| {
                let classes: Box<[u32]> = e.classes.iter().copied().filter(|&c| keep(c)).collect();
                (!classes.is_empty()).then(|| {
                    (
                        w.clone(),
                        Entry {
                            share: e.share,
                            classes,
                        },
                    )
                })
            })
            .collect();
        Thesaurus {
            depth: self.depth,
            classes: self.classes,
            words,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few lines in the format `models/fetch-cilin.sh` writes, with the real codes of these words.
    const TABLE: &str = "# test table\n\
        密码\tDk04B11#\n\
        偷\tEd44B03= Hn03B01=\n\
        偷窃\tHn03B01=\n\
        吗\tEd61F01= Kd03B01= Kd05A01=\n\
        吧\tFc08C01= Kd04C01= Kd05A01= Kd05B01= Kf10B01=\n\
        酒店\tDm04A10=\n\
        宾馆\tDm04A12=\n\
        放假\tHc08A01@\n\
        节假日\tCa25A01=\n\
        节日\tCa25A01=\n\
        假日\tCa25B01=\n";

    fn classes(t: &Thesaurus, word: &str) -> Vec<(u32, f32)> {
        t.classes_of(&[word.to_owned()]).collect()
    }

    #[test]
    fn depth_decides_which_words_share_a_class() {
        let five = Thesaurus::parse(TABLE, 5).unwrap();
        assert_ne!(classes(&five, "酒店"), classes(&five, "宾馆"));
        assert_eq!(classes(&five, "节日"), classes(&five, "节假日"));
        let four = Thesaurus::parse(TABLE, 4).unwrap();
        assert_eq!(classes(&four, "酒店"), classes(&four, "宾馆"));
        assert_ne!(classes(&four, "节日")[0].0, classes(&four, "假日")[0].0);
        let three = Thesaurus::parse(TABLE, 3).unwrap();
        assert_eq!(classes(&three, "节日")[0].0, classes(&three, "假日")[0].0);
    }

    #[test]
    fn an_ambiguous_word_spreads_its_weight() {
        let t = Thesaurus::parse(TABLE, 5).unwrap();
        assert_eq!(classes(&t, "偷窃"), [(classes(&t, "偷窃")[0].0, 1.0)]);
        let tou = classes(&t, "偷");
        assert_eq!(tou.len(), 2);
        assert!(tou.iter().all(|&(_, w)| w == 0.5), "{tou:?}");
        assert!(tou.iter().any(|&(c, _)| c == classes(&t, "偷窃")[0].0));
    }

    #[test]
    fn particles_do_not_tie_messages_together() {
        let t = Thesaurus::parse(TABLE, 4).unwrap();
        assert_eq!(classes(&t, "吧").len(), 1, "its one content class stays");
        assert_eq!(classes(&t, "吗").len(), 1);
        assert_eq!(classes(&t, "吗")[0].1, 1.0);
    }

    #[test]
    fn words_outside_the_table_bring_nothing() {
        let t = Thesaurus::parse(TABLE, 4).unwrap();
        assert!(classes(&t, "提币").is_empty());
        assert!(classes(&t, "hotel").is_empty());
    }

    #[test]
    fn pruning_keeps_known_classes_and_their_shares() {
        let t = Thesaurus::parse(TABLE, 5).unwrap();
        let steal = classes(&t, "偷窃")[0].0;
        let pruned = t.pruned(|c| c == steal);
        assert_eq!(pruned.len(), 2, "偷 and 偷窃 keep their shared class");
        assert_eq!(classes(&pruned, "偷"), [(steal, 0.5)]);
        assert!(classes(&pruned, "酒店").is_empty());
    }

    #[test]
    fn traditional_words_are_looked_up_simplified() {
        let t = Thesaurus::parse("賓館\tDm04A12=\n", 4).unwrap();
        assert_eq!(classes(&t, "宾馆").len(), 1);
    }

    #[test]
    fn bad_input_names_the_line_and_the_fix() {
        let e = Thesaurus::parse("密码 Dk04B11#\n", 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("fix:"), "{e}");
        let e = Thesaurus::parse("密码\tDk0\n", 4).unwrap_err().to_string();
        assert!(e.contains("shorter than depth 4"), "{e}");
        assert!(matches!(
            Thesaurus::parse(TABLE, 6),
            Err(ThesaurusError::Depth(6))
        ));
        let e = Thesaurus::load(Path::new("/nonexistent/cilin.tsv"), 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("models/fetch-cilin.sh"), "{e}");
    }
}
