//! Sparse TF-IDF features that suit both scripts.
//!
//! Up to four groups, each L2-normalised on its own (so no group drowns the others):
//! 1. **words**: canonical tokens (jieba words, English stems, synonyms folded) and token bigrams;
//! 2. **characters of the text**: character n-grams inside each space-separated piece of the
//!    normalised text, padded with a boundary mark: 1–2 for Chinese runs (a single character such
//!    as 币 carries meaning; longer spans mostly repeat one example's exact wording, and words
//!    already have the first group), 2–5 for Latin words (robust to typos and inflection);
//! 3. **characters of the tokens**: the same n-grams over the canonical tokens, so synonyms and
//!    stems also reach the character level;
//! 4. **concepts** (when the engine uses the support lexicon, [`crate::concepts`]): one feature
//!    per concept the text mentions, added by [`RawFeatures::add_concepts`], scaled by 0.5;
//! 5. **thesaurus classes** (when the engine uses a Chinese thesaurus, [`crate::thesaurus`]): one
//!    feature per semantic class of the text's Chinese words, added by
//!    [`RawFeatures::add_thesaurus`] with each word's share of its classes as the term frequency,
//!    scaled by [`FeatureSpace::set_thesaurus_weight`].
//!
//! N-grams are hashed to 64 bits (no allocation per n-gram); the feature space keeps only n-grams
//! seen in training, with sublinear term frequency and smoothed inverse document frequency.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::normalize::is_cjk;

/// A sparse vector: sorted feature indices and their values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVec {
    /// Feature indices, ascending.
    pub idx: Vec<u32>,
    /// Values, same length as `idx`.
    pub val: Vec<f32>,
}

/// Hashed n-grams of one text, per feature group, before weighting.
#[derive(Debug, Clone, Default)]
pub struct RawFeatures {
    /// Features that count once per occurrence.
    hashes: Vec<u64>,
    /// Features with a fractional count (a thesaurus class of an ambiguous word).
    weighted: Vec<(u64, f32)>,
}

const GROUPS: usize = 5;
const GROUP_SHIFT: u32 = 61;
const CONCEPT_GROUP: u64 = 3;
const THESAURUS_GROUP: u64 = 4;
/// The concept group's scale against the three lexical groups (each of norm 1). Chosen among
/// 0.25–1.5 on two crypto-support KBs with held-out cases; 0.4–0.6 did best (top-1 +3–5 points),
/// 1.0 and more made the derived policy cautious.
const CONCEPT_WEIGHT: f32 = 0.5;

/// Extracts the hashed n-grams of a text from its normalised form and canonical tokens.
pub fn extract(normalized: &str, tokens: &[String]) -> RawFeatures {
    let mut hashes = Vec::with_capacity(normalized.len() * 4 + tokens.len() * 12);
    // Group 0: tokens and token bigrams.
    for (i, t) in tokens.iter().enumerate() {
        hashes.push(tag(0, hash_parts(&[t.as_bytes()])));
        if let Some(next) = tokens.get(i + 1) {
            hashes.push(tag(
                0,
                hash_parts(&[t.as_bytes(), b"\x1f", next.as_bytes()]),
            ));
        }
    }
    // Group 1: character n-grams of the normalised text's pieces.
    let mut units = Vec::new();
    for piece in normalized.split(' ').filter(|p| !p.is_empty()) {
        char_ngrams(piece, 1, &mut units, &mut hashes);
    }
    // Group 2: character n-grams of the canonical tokens.
    for t in tokens {
        char_ngrams(t, 2, &mut units, &mut hashes);
    }
    RawFeatures {
        hashes,
        weighted: Vec::new(),
    }
}

impl RawFeatures {
    /// Adds the lexicon concepts a text mentions ([`crate::concepts`]) as a fourth group.
    pub fn add_concepts(&mut self, ids: &[u16]) {
        self.hashes.extend(ids.iter().map(|id| {
            tag(
                CONCEPT_GROUP,
                hash_parts(&[b"concept\x1f", &id.to_le_bytes()]),
            )
        }));
    }

    /// Adds thesaurus classes ([`crate::thesaurus`]) as a fifth group, each with the weight its
    /// word gives it.
    pub fn add_thesaurus(&mut self, classes: impl IntoIterator<Item = (u32, f32)>) {
        self.weighted.extend(
            classes
                .into_iter()
                .map(|(class, w)| (thesaurus_key(class), w)),
        );
    }
}

/// The feature key of a thesaurus class.
fn thesaurus_key(class: u32) -> u64 {
    tag(
        THESAURUS_GROUP,
        hash_parts(&[b"thesaurus\x1f", &class.to_le_bytes()]),
    )
}

fn char_ngrams<'a>(word: &'a str, group: u64, units: &mut Vec<&'a [u8]>, out: &mut Vec<u64>) {
    let cjk = word.chars().next().is_some_and(is_cjk);
    let (lo, hi) = if cjk { (1, 2) } else { (2, 5) };
    // The padded word: a start mark, each character's bytes, an end mark.
    units.clear();
    units.push(b"\x02");
    units.extend(
        word.char_indices()
            .map(|(i, c)| &word.as_bytes()[i..i + c.len_utf8()]),
    );
    units.push(b"\x03");
    // FNV-1a reads its bytes in order, so a window's hash continues the hash of the window one
    // unit shorter at the same start: each start costs one pass over at most `hi` units.
    for start in 0..units.len() {
        let mut h = FNV_BASIS;
        for (n, unit) in units[start..].iter().take(hi).enumerate() {
            h = fnv(h, unit);
            let n = n + 1;
            if n < lo || (n == 1 && (*unit == b"\x02" || *unit == b"\x03")) {
                continue; // a lone boundary mark carries nothing
            }
            out.push(tag(group, h));
        }
    }
}

fn tag(group: u64, h: u64) -> u64 {
    (h >> (64 - GROUP_SHIFT)) | (group << GROUP_SHIFT)
}

fn hash_parts(parts: &[&[u8]]) -> u64 {
    parts.iter().fold(FNV_BASIS, |h, p| fnv(h, p))
}

// FNV-1a, 64-bit: fast on the short strings n-grams are, and stable across runs.
const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a state `h` after reading `bytes`.
#[inline(always)]
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Hashes an n-gram key, already a 64-bit FNV hash, with one multiplication (Fibonacci hashing)
/// instead of SipHash: the look-ups in [`FeatureSpace::vectorize`] are most of a message's
/// feature extraction.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type KeyMap = HashMap<u64, u32, BuildHasherDefault<KeyHasher>>;

/// The vocabulary of n-grams seen in training, with their IDF weights.
#[derive(Debug, Clone, Default)]
pub struct FeatureSpace {
    index: KeyMap,
    idf: Vec<f32>,
    /// Each feature's group.
    groups: Vec<u8>,
    thesaurus_weight: f32,
}

/// Builds a [`FeatureSpace`] one training text at a time, so a large KB's n-grams need not all
/// be held at once: each text's n-grams become its term frequencies at once
/// ([`SpaceBuilder::add`]), weighted once the space is complete ([`FeatureSpace::weigh`]).
#[derive(Debug, Default)]
pub struct SpaceBuilder {
    index: KeyMap,
    df: Vec<u32>,
    groups: Vec<u8>,
    docs: usize,
    seen: Vec<u64>,
}

impl SpaceBuilder {
    /// Adds a training text; returns its term frequencies for [`FeatureSpace::weigh`] once the
    /// space is built.
    pub fn add(&mut self, d: &RawFeatures) -> TermFrequencies {
        let seen = &mut self.seen;
        seen.clear();
        seen.extend_from_slice(&d.hashes);
        seen.extend(d.weighted.iter().map(|&(h, _)| h));
        seen.sort_unstable();
        seen.dedup();
        for &h in seen.iter() {
            let next = self.index.len() as u32;
            let i = *self.index.entry(h).or_insert(next) as usize;
            if i == self.df.len() {
                self.df.push(0);
                self.groups.push((h >> GROUP_SHIFT) as u8);
            }
            self.df[i] += 1;
        }
        self.docs += 1;
        let mut tf = term_frequencies(&self.index, d);
        tf.idx.shrink_to_fit();
        tf.val.shrink_to_fit();
        TermFrequencies(tf)
    }

    /// The space of the texts added.
    pub fn finish(self) -> FeatureSpace {
        let n = self.docs as f32;
        let idf = self
            .df
            .iter()
            .map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0)
            .collect();
        FeatureSpace {
            index: self.index,
            idf,
            groups: self.groups,
            thesaurus_weight: 1.0,
        }
    }
}

/// A text's known features with their (sublinear) term frequencies, not yet weighted.
#[derive(Debug, Clone, Default)]
pub struct TermFrequencies(SparseVec);

/// The features of `raw` that `index` knows, ascending, with their sublinear term frequency.
fn term_frequencies(index: &KeyMap, raw: &RawFeatures) -> SparseVec {
    if raw.weighted.is_empty() {
        // Every count is a whole number: the order in which a feature's occurrences are
        // counted cannot matter, and plain indices sort faster.
        let mut known: Vec<u32> = raw
            .hashes
            .iter()
            .filter_map(|h| index.get(h).copied())
            .collect();
        sort_indices(&mut known);
        let mut out = SparseVec {
            idx: Vec::with_capacity(known.len()),
            val: Vec::with_capacity(known.len()),
        };
        for run in known.chunk_by(|a, b| a == b) {
            let count = run.len() as f32;
            out.idx.push(run[0]);
            out.val
                .push(if count > 1.0 { 1.0 + count.ln() } else { count });
        }
        return out;
    }
    let mut known: Vec<(u32, u8, f32)> = raw
        .hashes
        .iter()
        .map(|&h| (h, 1.0))
        .chain(raw.weighted.iter().copied())
        .filter_map(|(h, w)| index.get(&h).map(|&i| (i, (h >> GROUP_SHIFT) as u8, w)))
        .collect();
    known.sort_unstable_by_key(|k| k.0);
    let mut out = SparseVec {
        idx: Vec::with_capacity(known.len()),
        val: Vec::with_capacity(known.len()),
    };
    let mut k = 0;
    while k < known.len() {
        let i = known[k].0;
        let mut count = 0.0;
        while k < known.len() && known[k].0 == i {
            count += known[k].2;
            k += 1;
        }
        // Sublinear term frequency; a fractional count (below one) is taken as it is.
        let tf = if count > 1.0 { 1.0 + count.ln() } else { count };
        out.idx.push(i);
        out.val.push(tf);
    }
    out
}

/// Sorts feature indices. A message has a few hundred, which sort faster by their bytes (a radix
/// sort: 1.2 against 1.7 µs on CLINC150's messages) than by comparisons; fewer go to the standard
/// sort.
fn sort_indices(v: &mut Vec<u32>) {
    if v.len() < 64 {
        v.sort_unstable();
        return;
    }
    let max = v.iter().copied().max().unwrap_or(0);
    let mut spare = vec![0u32; v.len()];
    let mut shift = 0;
    while shift < 32 && max >> shift != 0 {
        // Stable by the byte at `shift`: after the last byte, sorted.
        let mut start = [0usize; 257];
        for &x in v.iter() {
            start[((x >> shift) & 0xff) as usize + 1] += 1;
        }
        for d in 0..256 {
            start[d + 1] += start[d];
        }
        for &x in v.iter() {
            let d = ((x >> shift) & 0xff) as usize;
            spare[start[d]] = x;
            start[d] += 1;
        }
        std::mem::swap(v, &mut spare);
        shift += 8;
    }
}

impl FeatureSpace {
    /// Builds the space from training texts' features.
    pub fn fit(docs: &[RawFeatures]) -> Self {
        let mut builder = SpaceBuilder::default();
        for d in docs {
            builder.add(d);
        }
        builder.finish()
    }

    /// Scales the thesaurus group against the three lexical groups (each of norm 1).
    pub fn set_thesaurus_weight(&mut self, weight: f32) {
        self.thesaurus_weight = weight;
    }

    /// Whether a thesaurus class occurred in training (only those can move a score).
    pub fn knows_thesaurus_class(&self, class: u32) -> bool {
        self.index.contains_key(&thesaurus_key(class))
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.idf.len()
    }

    /// True when no feature was seen in training.
    pub fn is_empty(&self) -> bool {
        self.idf.is_empty()
    }

    /// Weighted, per-group L2-normalised vector; n-grams unseen in training are dropped.
    pub fn vectorize(&self, raw: &RawFeatures) -> SparseVec {
        self.weigh(TermFrequencies(term_frequencies(&self.index, raw)))
    }

    /// A training text's vector from the term frequencies [`SpaceBuilder::add`] gave (the same
    /// as [`Self::vectorize`] of its n-grams).
    pub fn weigh(&self, tf: TermFrequencies) -> SparseVec {
        let mut out = tf.0;
        let mut norms = [0f32; GROUPS];
        for (&i, v) in out.idx.iter().zip(out.val.iter_mut()) {
            let w = *v * self.idf[i as usize];
            norms[usize::from(self.groups[i as usize])] += w * w;
            *v = w;
        }
        let norms = norms.map(f32::sqrt);
        for (&i, v) in out.idx.iter().zip(out.val.iter_mut()) {
            let g = self.groups[i as usize];
            let n = norms[usize::from(g)];
            if n > 0.0 {
                *v /= n;
                match u64::from(g) {
                    CONCEPT_GROUP => *v *= CONCEPT_WEIGHT,
                    THESAURUS_GROUP => *v *= self.thesaurus_weight,
                    _ => {}
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grams(word: &str) -> usize {
        let mut v = Vec::new();
        char_ngrams(word, 1, &mut Vec::new(), &mut v);
        v.len()
    }

    #[test]
    fn latin_words_give_padded_two_to_five_grams() {
        // " ab " has 4 positions: 3 bigrams, 2 trigrams, 1 four-gram.
        assert_eq!(grams("ab"), 6);
    }

    #[test]
    fn chinese_runs_include_single_characters() {
        // "提币" padded: unigrams 提, 币; bigrams ^提, 提币, 币$ (no longer spans).
        assert_eq!(grams("提币"), 5);
    }

    #[test]
    fn indices_sort_like_the_standard_sort() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for (len, bound) in [(0, 1), (10, 100), (64, 7), (300, 100_000), (1000, u32::MAX)] {
            let mut v: Vec<u32> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed % u64::from(bound)) as u32
                })
                .collect();
            let mut expected = v.clone();
            expected.sort_unstable();
            sort_indices(&mut v);
            assert_eq!(v, expected, "{len} below {bound}");
        }
    }

    #[test]
    fn each_ngram_hashes_its_whole_window() {
        // Hashes are computed incrementally; each must still be the hash of its window's bytes,
        // the start and end marks included, whatever the script.
        for (word, lo, hi) in [
            ("withdraw", 2, 5),
            ("提币到账", 1, 2),
            ("a", 2, 5),
            ("é2fa", 2, 5),
        ] {
            let mut units: Vec<&[u8]> = vec![b"\x02"];
            units.extend(
                word.char_indices()
                    .map(|(i, c)| &word.as_bytes()[i..i + c.len_utf8()]),
            );
            units.push(b"\x03");
            let mut expected: Vec<u64> = (lo..=hi)
                .flat_map(|n| units.windows(n).collect::<Vec<_>>())
                .filter(|w| !(w.len() == 1 && (w[0] == b"\x02" || w[0] == b"\x03")))
                .map(|w| tag(1, hash_parts(w)))
                .collect();
            let mut got = Vec::new();
            char_ngrams(word, 1, &mut Vec::new(), &mut got);
            expected.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, expected, "{word}");
        }
    }

    #[test]
    fn the_same_text_gives_the_same_vector_and_unseen_grams_are_dropped() {
        let a = extract("usdt 提币", &["usdt".into(), "提币".into()]);
        let space = FeatureSpace::fit(std::slice::from_ref(&a));
        let v1 = space.vectorize(&a);
        assert_eq!(
            v1,
            space.vectorize(&extract("usdt 提币", &["usdt".into(), "提币".into()]))
        );
        let unseen = space.vectorize(&extract("weather", &["weather".into()]));
        assert!(unseen.idx.is_empty());
    }

    #[test]
    fn each_group_has_unit_norm() {
        let a = extract("usdt 提币", &["usdt".into(), "提币".into()]);
        let b = extract("btc", &["btc".into()]);
        let space = FeatureSpace::fit(&[a.clone(), b]);
        let v = space.vectorize(&a);
        let total: f32 = v.val.iter().map(|x| x * x).sum();
        assert!(
            (total - 3.0).abs() < 1e-4,
            "three groups of norm 1, got {total}"
        );
    }
}
