//! The BIP39 wordlists (English, Simplified and Traditional Chinese), the checksum, and what tells
//! a run of random Chinese wordlist characters from a Chinese sentence.

use std::collections::HashMap;
use std::sync::LazyLock;

use bip39::{Language, Mnemonic};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

/// Valid BIP39 lengths, longest first (windows are tried in this order).
pub(super) const MNEMONIC_LENGTHS: [usize; 5] = [24, 21, 18, 15, 12];

static EN_INDEX: LazyLock<HashMap<&'static str, u16>> = LazyLock::new(|| {
    Language::English
        .word_list()
        .iter()
        .zip(0u16..)
        .map(|(w, i)| (*w, i))
        .collect()
});
/// English words longer than four letters by their first four: BIP39 made those unique, so
/// `lega` is `legal` (steel backup plates keep only four letters a word).
static EN_PREFIX_INDEX: LazyLock<HashMap<&'static str, u16>> = LazyLock::new(|| {
    Language::English
        .word_list()
        .iter()
        .zip(0u16..)
        .filter(|(w, _)| w.len() > 4)
        .filter_map(|(w, i)| w.get(..4).map(|p| (p, i)))
        .collect()
});
pub(super) static ZH_HANS_INDEX: LazyLock<HashMap<char, u16>> =
    LazyLock::new(|| zh_index(Language::SimplifiedChinese));
pub(super) static ZH_HANT_INDEX: LazyLock<HashMap<char, u16>> =
    LazyLock::new(|| zh_index(Language::TraditionalChinese));

fn zh_index(lang: Language) -> HashMap<char, u16> {
    lang.word_list()
        .iter()
        .zip(0u16..)
        .filter_map(|(w, i)| w.chars().next().map(|c| (c, i)))
        .collect()
}

/// The English wordlist index of a word, case-insensitively.
pub(super) fn en_index(token: &str) -> Option<u16> {
    if token.is_ascii() {
        let bytes = token.as_bytes();
        if !(3..=8).contains(&bytes.len()) {
            return None;
        }
        let mut buf = [0u8; 8];
        for (dst, src) in buf.iter_mut().zip(bytes) {
            *dst = src.to_ascii_lowercase();
        }
        let word = std::str::from_utf8(&buf[..bytes.len()]).ok()?;
        EN_INDEX.get(word).copied()
    } else {
        // Letters that folding left non-ASCII but that lower-case to ASCII (the Kelvin sign…).
        let folded: String = token.nfkc().flat_map(char::to_lowercase).collect();
        if folded.is_ascii() && (3..=8).contains(&folded.len()) {
            EN_INDEX.get(folded.as_str()).copied()
        } else {
            None
        }
    }
}

/// Wordlist words by the word with one letter left out, and by the word itself: two words one
/// edit apart share a key (symmetric deletion), so a misspelt word finds its candidates in a few
/// look-ups.
static EN_DELETIONS: LazyLock<HashMap<String, Vec<u16>>> = LazyLock::new(|| {
    let mut map: HashMap<String, Vec<u16>> = HashMap::new();
    for (w, i) in Language::English.word_list().iter().zip(0u16..) {
        map.entry((*w).to_owned()).or_default().push(i);
        for k in 0..w.len() {
            let key = format!("{}{}", &w[..k], &w[k + 1..]);
            let list = map.entry(key).or_default();
            if !list.contains(&i) {
                list.push(i);
            }
        }
    }
    map
});

/// The English words one edit from `token` (a letter changed, added, left out, or two neighbours
/// swapped), case-insensitively, for a token of 4 to 9 ASCII letters that is no word itself.
pub(super) fn en_near(token: &str) -> Vec<u16> {
    if !(4..=9).contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Vec::new();
    }
    let t = token.to_ascii_lowercase();
    if EN_INDEX.contains_key(t.as_str()) {
        return Vec::new();
    }
    let list = Language::English.word_list();
    let mut keys = vec![t.clone()];
    keys.extend((0..t.len()).map(|k| format!("{}{}", &t[..k], &t[k + 1..])));
    let mut out: Vec<u16> = Vec::new();
    for key in &keys {
        for &i in EN_DELETIONS.get(key.as_str()).into_iter().flatten() {
            if !out.contains(&i) && one_edit(t.as_bytes(), list[usize::from(i)].as_bytes()) {
                out.push(i);
            }
        }
    }
    // Two neighbours swapped (`wrod` for `word`).
    let mut b = t.clone().into_bytes();
    for k in 0..b.len().saturating_sub(1) {
        b.swap(k, k + 1);
        if let Some(&i) = std::str::from_utf8(&b).ok().and_then(|w| EN_INDEX.get(w))
            && !out.contains(&i)
        {
            out.push(i);
        }
        b.swap(k, k + 1);
    }
    out
}

/// Are `a` and `b` exactly one substitution, insertion or deletion apart?
fn one_edit(a: &[u8], b: &[u8]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    match long.len() - short.len() {
        0 => short.iter().zip(long).filter(|(x, y)| x != y).count() == 1,
        1 => {
            let k = short.iter().zip(long).take_while(|(x, y)| x == y).count();
            short[k..] == long[k + 1..]
        }
        _ => false,
    }
}

/// The English word whose first four letters `token` is (case-insensitively), when `token` is four
/// ASCII letters that are not themselves a word.
pub(super) fn en_prefix_index(token: &str) -> Option<u16> {
    let bytes = token.as_bytes();
    if bytes.len() != 4 || !token.is_ascii() {
        return None;
    }
    let mut buf = [0u8; 4];
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = src.to_ascii_lowercase();
    }
    let prefix = std::str::from_utf8(&buf).ok()?;
    if EN_INDEX.contains_key(prefix) {
        return None;
    }
    EN_PREFIX_INDEX.get(prefix).copied()
}

/// Is `indices` a valid BIP39 mnemonic (length and checksum) in `lang`?
pub(super) fn verifies(lang: Language, indices: &[u16]) -> bool {
    if !MNEMONIC_LENGTHS.contains(&indices.len()) || !quick_checksum(indices) {
        return false;
    }
    // bip39's parser stays the authority; the quick check above spares it 15/16 … 255/256 of the
    // candidates (and its linear search of the Chinese lists).
    let list = lang.word_list();
    let mut phrase = String::with_capacity(indices.len() * 9);
    for &i in indices {
        if !phrase.is_empty() {
            phrase.push(' ');
        }
        phrase.push_str(list[usize::from(i)]);
    }
    Mnemonic::parse_in_normalized(lang, &phrase).is_ok()
}

/// BIP39 checksum over word indices: the first `n / 3` bits of SHA-256(entropy) must equal the
/// trailing bits of the index stream.
pub(super) fn quick_checksum(indices: &[u16]) -> bool {
    let n = indices.len();
    if n == 0 || n > 24 || !n.is_multiple_of(3) {
        return false;
    }
    let mut bits = [0u8; 24 * 11 / 8];
    for (i, &idx) in indices.iter().enumerate() {
        for j in 0..11 {
            if idx >> (10 - j) & 1 == 1 {
                let bit = i * 11 + j;
                bits[bit / 8] |= 0x80 >> (bit % 8);
            }
        }
    }
    let entropy_len = n / 3 * 4;
    let hash = Sha256::digest(&bits[..entropy_len]);
    (0..n / 3).all(|i| {
        let want = hash[i / 8] >> (7 - i % 8) & 1;
        let bit = entropy_len * 8 + i;
        let got = bits[bit / 8] >> (7 - bit % 8) & 1;
        want == got
    })
}

/// Two-character words of jieba's dictionary whose characters are both in the Simplified list, as
/// a 2048 × 2048 bit matrix over list indices (`data/make-zh-word-pairs.py` writes the file).
static ZH_WORD_PAIRS: LazyLock<Vec<u64>> =
    LazyLock::new(|| decode_pairs(include_bytes!("../../data/zh-word-pairs.bin")));

fn decode_pairs(data: &[u8]) -> Vec<u64> {
    let mut bits = vec![0u64; 2048 * 2048 / 64];
    let Some(body) = data.strip_prefix(b"KZWP").and_then(|d| d.get(4..)) else {
        return bits;
    };
    let mut code = 0usize;
    let mut delta = 0usize;
    let mut shift = 0;
    for &b in body {
        delta |= usize::from(b & 0x7F) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            code += delta;
            if let Some(word) = bits.get_mut(code / 64) {
                *word |= 1 << (code % 64);
            }
            delta = 0;
            shift = 0;
        }
    }
    bits
}

/// Is the character pair (by list index) a Chinese word? The Traditional list has the same order
/// as the Simplified one, so its indices work too.
pub(super) fn is_word_pair(a: u16, b: u16) -> bool {
    let code = usize::from(a) * 2048 + usize::from(b);
    ZH_WORD_PAIRS
        .get(code / 64)
        .is_some_and(|w| w >> (code % 64) & 1 == 1)
}

/// How strongly a window must look random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Randomness {
    /// For a candidate with nothing else in its favour.
    Strict,
    /// For a candidate a seed hint points at (right before or after it, or the whole line).
    Anchored,
}

/// Does a window of Chinese wordlist characters read like random characters rather than a
/// sentence? The lists are sorted by frequency and a mnemonic draws uniformly from them, so it has
/// few of the 256 commonest characters and few adjacent pairs that form a word; a sentence has many
/// of both. Measured on 42,726 twelve-character windows of Chinese sentences (Debian's zh_CN/zh_TW
/// message catalogues and the crypto benchmark cases) against 50,000 random index sequences:
///
/// | rule (12 characters)              | random sequences passing | sentence windows passing |
/// |-----------------------------------|--------------------------|--------------------------|
/// | `Strict`: ≤ 1 word pair, ≤ 3 common | 93.0 %                  | 2 (a transliterated place name) |
/// | `Anchored`: ≤ 2 word pairs, ≤ 4 common | 98.8 %                | 21                       |
///
/// The limits grow with the length (÷ 12, ÷ 4 and ÷ 6, ÷ 3), and the BIP39 checksum must still
/// verify on top (1 in 16 for 12 characters).
pub(super) fn looks_random(indices: &[u16], how: Randomness) -> bool {
    let n = indices.len();
    let (max_pairs, max_common) = match how {
        Randomness::Strict => (n / 12, n / 4),
        Randomness::Anchored => (n / 6, n / 3),
    };
    let common = indices.iter().filter(|&&i| i < 256).count();
    if common > max_common {
        return false;
    }
    let pairs = indices
        .windows(2)
        .filter(|p| is_word_pair(p[0], p[1]))
        .count();
    pairs <= max_pairs
}

/// Evidence (log-likelihood ratio, in hundredths of a nat) that a window is random characters
/// rather than part of a sentence: each character by its frequency rank, each adjacent pair by
/// whether it is a word. Frequencies measured on 823,475 wordlist characters of Chinese text
/// (Debian's zh_CN/zh_TW message catalogues and the crypto benchmark cases): e.g. 12 % of a
/// sentence's characters are among the 16 commonest (0.8 % of a random draw) and 51 % of its
/// adjacent pairs are words (2.0 % of random pairs). Used to choose between overlapping
/// candidates: a window shifted into the sentence around a mnemonic, or stretched over it, scores
/// lower than the mnemonic itself; a 24-character mnemonic scores higher than its first half.
pub(super) fn random_evidence(indices: &[u16]) -> i32 {
    const RANK_BUCKETS: [(u16, i32); 6] = [
        (16, -275),
        (64, -174),
        (256, -110),
        (512, -50),
        (1024, 40),
        (2048, 175),
    ];
    const WORD_PAIR: i32 = -322;
    const OTHER_PAIR: i32 = 69;
    let chars: i32 = indices
        .iter()
        .map(|&i| {
            RANK_BUCKETS
                .iter()
                .find(|(limit, _)| i < *limit)
                .map_or(0, |(_, score)| *score)
        })
        .sum();
    let pairs: i32 = indices
        .windows(2)
        .map(|p| {
            if is_word_pair(p[0], p[1]) {
                WORD_PAIR
            } else {
                OTHER_PAIR
            }
        })
        .sum();
    chars + pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_valid_english(words: &str) -> bool {
        Mnemonic::parse_in_normalized(Language::English, words).is_ok()
    }

    #[test]
    fn the_quick_checksum_agrees_with_bip39() {
        let list = Language::English.word_list();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut valid = 0;
        for round in 0..2_000 {
            let len = MNEMONIC_LENGTHS[round % 5];
            let idx: Vec<u16> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    (state >> 53) as u16
                })
                .collect();
            let phrase: Vec<&str> = idx.iter().map(|&i| list[usize::from(i)]).collect();
            let expected = is_valid_english(&phrase.join(" "));
            assert_eq!(quick_checksum(&idx), expected, "{phrase:?}");
            assert_eq!(verifies(Language::English, &idx), expected);
            valid += usize::from(expected);
        }
        assert!(valid > 10, "the sample should contain some valid mnemonics");
    }

    #[test]
    fn the_traditional_list_is_in_the_simplified_lists_order() {
        // `is_word_pair` relies on it for Traditional text.
        let hans = Language::SimplifiedChinese.word_list();
        let hant = Language::TraditionalChinese.word_list();
        let same = hans.iter().zip(hant).filter(|(a, b)| a == b).count();
        assert!(same > 1_200, "{same}");
        assert_eq!(ZH_HANT_INDEX.get(&'這'), ZH_HANS_INDEX.get(&'这'));
        assert_eq!(ZH_HANT_INDEX.get(&'錢'), ZH_HANS_INDEX.get(&'钱'));
    }

    #[test]
    fn the_word_pair_table_knows_common_words_and_not_random_pairs() {
        let idx = |c: char| ZH_HANS_INDEX.get(&c).copied().unwrap_or(u16::MAX);
        for word in ["钱包", "提现", "交易", "我们", "时间", "问题"] {
            let mut c = word.chars();
            let (a, b) = (c.next().unwrap_or(' '), c.next().unwrap_or(' '));
            assert!(is_word_pair(idx(a), idx(b)), "{word}");
        }
        let total: u32 = ZH_WORD_PAIRS.iter().map(|w| w.count_ones()).sum();
        assert_eq!(total, 85_212);
    }

    #[test]
    fn sentences_do_not_look_random_and_mnemonics_do() {
        let indices = |s: &str| -> Vec<u16> {
            s.chars()
                .filter_map(|c| ZH_HANS_INDEX.get(&c).copied())
                .collect()
        };
        for sentence in [
            "我的提币一直没有到账怎么办",
            "请问这个钱包的手续费是多少",
            "为什么我的账户被冻结了呢",
        ] {
            let idx = indices(sentence);
            assert!(idx.len() >= 10, "{sentence}");
            assert!(!looks_random(&idx, Randomness::Anchored), "{sentence}");
        }
        let m = Mnemonic::from_entropy_in(Language::SimplifiedChinese, &[0x3c; 16])
            .map(|m| m.to_string())
            .unwrap_or_default();
        assert!(looks_random(&indices(&m), Randomness::Strict), "{m}");
    }
}
