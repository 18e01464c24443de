//! Static word vectors, English and Chinese: what a word means, for words a KB's examples never
//! used.
//!
//! Character n-grams and stems only match words that look alike; "the ATM ate my card" shares no
//! word with "my card was swallowed by the cash machine". These vectors carry that knowledge into
//! the default engine without a model at run time: they were distilled once from the
//! all-MiniLM-L6-v2 sentence encoder (Apache-2.0; `models/README.md`) by
//! `kefu-distill-words` (`src/bin/distill_words.rs`): every whole word of the model's vocabulary
//! encoded on its own, averaged per Snowball stem (the tokenizer's tokens), projected on the 128
//! principal directions and quantised to a byte per dimension. The table is compiled into the
//! crate (`data/en-word-vectors.bin`, ~14,000 stems, 1.9 MB) and parsed once, on first use (~1 ms).
//!
//! Chinese words have a table of their own (`data/zh-word-vectors.bin`, 103,106 words, ~10 MB),
//! distilled from multilingual-e5-small (MIT; `models/README.md`) by
//! `models/distill-zh-words.sh`: the 100,000 most frequent Chinese words of jieba's dictionary
//! (the segmenter's own, so the table's words are the tokens it produces) and every single
//! character, each encoded on its own, centred, projected on 96 principal directions and
//! quantised the same way. 台风 comes near 下雨, 骑手 near 外卖, 宾馆 near 酒店, where characters and n-grams
//! see nothing in common. The engine parses it only for a KB with Chinese text.
//!
//! A message's vector in each table is the IDF-weighted sum of its tokens' vectors (IDF from the
//! KB, so words every example uses count little; the engine cubes it for Chinese tokens),
//! normalised; the engine appends one block per table to the lexical features, each weighted by
//! its script's share of the message's tokens.
//!
//! File layout (little-endian): [`MAGIC`], dimensions (u32), entries (u32), one f32 scale per
//! dimension, then per entry: stem length (u8), stem bytes, one i8 per dimension (value × scale).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// First bytes of a word-vector file.
pub const MAGIC: &[u8; 8] = b"KEFUWV01";

static ENGLISH: &[u8] = include_bytes!("../data/en-word-vectors.bin");

static CHINESE: &[u8] = include_bytes!("../data/zh-word-vectors.bin");

/// FNV-1a: a word is looked up for every token of every message, and on such short keys FNV is
/// several times faster than the default SipHash (the tables are not built from untrusted input
/// at run time: the word-vector file is compiled in, the weights come from the KB).
#[derive(Default, Clone, Copy)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

type WordMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

/// A table of word vectors keyed by token.
#[derive(Debug)]
pub struct WordVectors {
    dims: usize,
    scales: Vec<f32>,
    /// Token → offset of its row (dims bytes) in `data`.
    index: WordMap<&'static str, usize>,
    data: &'static [u8],
}

impl WordVectors {
    /// Parses a table in the layout above.
    pub fn parse(data: &'static [u8]) -> Result<WordVectors, String> {
        let rest = data
            .strip_prefix(MAGIC.as_slice())
            .ok_or("not a word-vector file (wrong magic)")?;
        let u32_at = |b: &[u8], at: usize| -> Result<usize, String> {
            b.get(at..at + 4)
                .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
                .ok_or_else(|| "truncated header".to_owned())
        };
        let dims = u32_at(rest, 0)?;
        let count = u32_at(rest, 4)?;
        if dims == 0 {
            return Err("zero dimensions".into());
        }
        let mut at = MAGIC.len() + 8;
        let scales: Vec<f32> = data
            .get(at..at + 4 * dims)
            .ok_or("truncated scales")?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        at += 4 * dims;
        let mut index = WordMap::with_capacity_and_hasher(count, Default::default());
        for k in 0..count {
            let len = *data.get(at).ok_or(format!("truncated at entry {k}"))? as usize;
            let word = data
                .get(at + 1..at + 1 + len)
                .and_then(|b| std::str::from_utf8(b).ok())
                .ok_or(format!("entry {k}: bad word"))?;
            at += 1 + len;
            if data.len() < at + dims {
                return Err(format!("entry {k} ({word}): truncated vector"));
            }
            index.insert(word, at);
            at += dims;
        }
        if at != data.len() {
            return Err(format!("{} bytes after the last entry", data.len() - at));
        }
        Ok(WordVectors {
            dims,
            scales,
            index,
            data,
        })
    }

    /// The English table compiled into the crate (parsed on first use). None only if the file
    /// in the source tree were corrupt, which `the_compiled_table_parses` rules out.
    pub fn english() -> Option<&'static WordVectors> {
        static TABLE: OnceLock<Option<WordVectors>> = OnceLock::new();
        TABLE
            .get_or_init(|| WordVectors::parse(ENGLISH).ok())
            .as_ref()
    }

    /// The Chinese table compiled into the crate (parsed on first use), distilled from
    /// multilingual-e5-small (see the module doc). None only if the file were corrupt, which
    /// `chinese_words_near_in_meaning_are_near_in_the_chinese_table` rules out.
    pub fn chinese() -> Option<&'static WordVectors> {
        static TABLE: OnceLock<Option<WordVectors>> = OnceLock::new();
        TABLE
            .get_or_init(|| WordVectors::parse(CHINESE).ok())
            .as_ref()
    }

    /// Length of each vector.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True for an empty table.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Adds `weight` × the vector of `token` to `out`; false when the token has none.
    pub fn add(&self, token: &str, weight: f32, out: &mut [f32]) -> bool {
        let Some(&at) = self.index.get(token) else {
            return false;
        };
        let row = &self.data[at..at + self.dims];
        for ((o, &q), s) in out.iter_mut().zip(row).zip(&self.scales) {
            *o += weight * f32::from(q as i8) * s;
        }
        true
    }

    /// The unit-length, `weight(token)`-weighted sum of the tokens' vectors; None when no token
    /// has a vector (Chinese text, or only unknown words).
    pub fn sentence(&self, tokens: &[String], weight: impl Fn(&str) -> f32) -> Option<Vec<f32>> {
        let mut v = vec![0f32; self.dims];
        let mut any = false;
        for t in tokens {
            any |= self.add(t, weight(t), &mut v);
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !any || norm == 0.0 {
            return None;
        }
        v.iter_mut().for_each(|x| *x /= norm);
        Some(v)
    }
}

/// How much each word counts in a message's vector: its inverse document frequency among the
/// training texts that have any word vector. Counting only those keeps a mostly Chinese KB from
/// making "how" or "my" look rare because few of its examples are English.
#[derive(Debug, Clone, Default)]
pub struct WordWeights {
    idf: WordMap<String, f32>,
    /// The weight of a word no such text used (that of a word used once).
    unseen: f32,
}

impl WordWeights {
    /// Counts the tokens of `texts` that have a vector in `table`.
    pub fn fit(table: &WordVectors, texts: &[Vec<String>]) -> WordWeights {
        let mut df: HashMap<&str, u32> = HashMap::new();
        let mut docs = 0u32;
        let mut seen: Vec<&str> = Vec::new();
        for tokens in texts {
            seen.clear();
            seen.extend(
                tokens
                    .iter()
                    .map(String::as_str)
                    .filter(|t| table.index.contains_key(t)),
            );
            if seen.is_empty() {
                continue;
            }
            docs += 1;
            seen.sort_unstable();
            seen.dedup();
            for t in &seen {
                *df.entry(t).or_default() += 1;
            }
        }
        let n = docs as f32;
        let idf = |d: u32| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0;
        WordWeights {
            idf: df.iter().map(|(t, &d)| ((*t).to_owned(), idf(d))).collect(),
            unseen: idf(1),
        }
    }

    /// The weight of a token.
    pub fn weight(&self, token: &str) -> f32 {
        self.idf.get(token).copied().unwrap_or(self.unseen)
    }
}

/// Eigen-decomposition of a symmetric `n`×`n` matrix (row-major) by cyclic Jacobi rotations:
/// eigenvalues in descending order and their unit eigenvectors (one `Vec` each). Used by the
/// distiller to find principal directions.
pub fn symmetric_eigen(matrix: &[f64], n: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    assert_eq!(matrix.len(), n * n, "an n×n matrix");
    let mut a = matrix.to_vec();
    let mut v = vec![0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        if off <= 1e-24 * total.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[j * n + j].total_cmp(&a[i * n + i]));
    let values = order.iter().map(|&i| a[i * n + i]).collect();
    let vectors = order
        .iter()
        .map(|&i| (0..n).map(|k| v[k * n + i]).collect())
        .collect();
    (values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> &'static WordVectors {
        WordVectors::english().unwrap_or_else(|| panic!("the compiled table parses"))
    }

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn vector(word: &str) -> Vec<f32> {
        table()
            .sentence(&[word.to_owned()], |_| 1.0)
            .unwrap_or_else(|| panic!("{word} has a vector"))
    }

    #[test]
    fn the_compiled_table_parses() {
        let t = table();
        assert_eq!(t.dims(), 128);
        assert!(t.len() > 10_000, "{} words", t.len());
    }

    #[test]
    fn words_of_like_meaning_are_closer_than_unrelated_ones() {
        // Stems, as the tokenizer gives them.
        let fee = vector("fee");
        assert!(cos(&fee, &vector("cost")) > cos(&fee, &vector("weather")));
        let swallow = vector("swallow");
        assert!(cos(&swallow, &vector("eat")) > cos(&swallow, &vector("password")));
        let atm = vector("atm");
        assert!(cos(&atm, &vector("cash")) > cos(&atm, &vector("holiday")));
    }

    #[test]
    fn chinese_words_near_in_meaning_are_near_in_the_chinese_table() {
        let t = WordVectors::chinese().unwrap_or_else(|| panic!("the compiled table parses"));
        assert!(t.len() > 100_000, "{} words", t.len());
        let v = |w: &str| {
            t.sentence(&[w.to_owned()], |_| 1.0)
                .unwrap_or_else(|| panic!("{w} has a vector"))
        };
        for (word, near, far) in [
            ("台风", "下雨", "股票"),
            ("骑手", "外卖", "航班"),
            ("宾馆", "酒店", "快递"),
            ("密码", "口令", "天气"),
            ("被盗", "失窃", "充值"),
        ] {
            let w = v(word);
            assert!(
                cos(&w, &v(near)) > cos(&w, &v(far)),
                "{word}: {near} / {far}"
            );
        }
        assert!(t.sentence(&["card".to_owned()], |_| 1.0).is_none());
    }

    #[test]
    fn chinese_and_unknown_tokens_have_no_english_vector() {
        let t = table();
        assert!(t.sentence(&["提币".to_owned()], |_| 1.0).is_none());
        assert!(t.sentence(&["qzxqzxv".to_owned()], |_| 1.0).is_none());
        let v = t.sentence(&["提币".to_owned(), "card".to_owned()], |_| 1.0);
        assert!(v.is_some(), "one English word is enough");
    }

    #[test]
    fn sentence_vectors_are_unit_length_and_weighted() {
        let t = table();
        let tokens = ["card".to_owned(), "weather".to_owned()];
        let v = t.sentence(&tokens, |_| 1.0).unwrap();
        assert!((cos(&v, &v) - 1.0).abs() < 1e-4);
        // Weighting one word to nothing leaves the other's direction.
        let only_card = t
            .sentence(&tokens, |w| if w == "card" { 1.0 } else { 0.0 })
            .unwrap();
        assert!((cos(&only_card, &vector("card")) - 1.0).abs() < 1e-4);
    }

    #[test]
    fn weights_count_only_texts_with_word_vectors() {
        let t = table();
        let text = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<String>>();
        let texts = vec![
            text("how card lost"),
            text("how card eat"),
            text("how refund"),
            text("提币 失败"),
            text("充值 没到"),
        ];
        let w = WordWeights::fit(t, &texts);
        // "how" is in every English text: the Chinese ones don't make it look rare.
        assert!(w.weight("how") < w.weight("card"));
        assert!(w.weight("card") < w.weight("refund"));
        assert_eq!(w.weight("refund"), w.weight("never"));
        assert!((w.weight("how") - 1.0).abs() < 1e-6, "{}", w.weight("how"));
    }

    #[test]
    fn broken_tables_are_refused() {
        assert!(WordVectors::parse(b"NOTMAGIC").is_err());
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&1f32.to_le_bytes());
        bytes.extend_from_slice(&1f32.to_le_bytes());
        bytes.extend_from_slice(&[2, b'h', b'i', 5]); // one byte short of the vector
        let leaked: &'static [u8] = Box::leak(bytes.clone().into_boxed_slice());
        assert!(
            WordVectors::parse(leaked)
                .unwrap_err()
                .contains("truncated")
        );
        bytes.push(7);
        let ok: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let t = WordVectors::parse(ok).unwrap();
        let mut out = [0f32; 2];
        assert!(t.add("hi", 1.0, &mut out));
        assert_eq!(out, [5.0, 7.0]);
    }

    #[test]
    fn jacobi_finds_eigenpairs_in_descending_order() {
        // [[2,1],[1,2]]: eigenvalues 3 and 1, eigenvectors (1,1)/√2 and (1,-1)/√2.
        let (values, vectors) = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        assert!((values[0] - 3.0).abs() < 1e-9 && (values[1] - 1.0).abs() < 1e-9);
        let h = std::f64::consts::FRAC_1_SQRT_2;
        assert!((vectors[0][0].abs() - h).abs() < 1e-9 && (vectors[0][1].abs() - h).abs() < 1e-9);
        assert!(vectors[0][0] * vectors[0][1] > 0.0 && vectors[1][0] * vectors[1][1] < 0.0);
    }
}
