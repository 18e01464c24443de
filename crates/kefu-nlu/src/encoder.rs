//! An optional sentence encoder whose embeddings become extra features of the classifier.
//!
//! The engine works without one. With one (feature `rust-bert`: all-MiniLM-L6-v2 on libtorch, see
//! [`RustBertEncoder`]), each training example and each message that is mostly Latin script gets a
//! 384-dimensional sentence embedding appended to its sparse features, and the logistic regression
//! learns weights for both together: the calibration and thresholds derived on the KB's folds then
//! reflect the combined model. English paraphrases that share no words with any example ("I lost
//! my card" vs "my card has gone missing") get closer.
//!
//! Chinese is kept out: the English model turns most CJK characters into `[UNK]`, so its vectors
//! for Chinese text carry no meaning (unrelated Chinese pairs score higher than paraphrases). Text
//! that is not [`mostly_latin`] gets no embedding (all zeros), and is classified by the lexical
//! features alone, as without an encoder.
//!
//! Encoding a large KB takes a while (~6 ms per example at batch 32 on two cores), so embeddings
//! of KB examples are cached on disk beside the model, keyed by a hash of the model and the text.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::normalize::is_cjk;

/// Scale of the embedding features against the lexical ones (three groups, each of unit norm).
/// Embeddings are unit vectors; chosen on the KBs' own held-out folds (README, "Transformer
/// encoder").
pub const EMBEDDING_WEIGHT: f32 = 2.0;

/// Examples encoded per batch at KB load.
const BATCH: usize = 32;

/// Why an encoder could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// The model directory is missing, incomplete or unreadable.
    #[error(
        "sentence encoder model directory {dir}: {reason}; fix: run `models/fetch-minilm.sh` from the repository root (it fetches and converts all-MiniLM-L6-v2 into models/all-MiniLM-L6-v2), or set nlu.model_dir"
    )]
    Model {
        /// The configured directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Encoding failed.
    #[error("sentence encoder: {0}")]
    Encode(String),
}

/// A sentence encoder: text in, fixed-size vectors out.
pub trait Encoder: Send + Sync + std::fmt::Debug {
    /// Length of each vector.
    fn dim(&self) -> usize;
    /// Identifies the model's weights, so cached vectors of another model are never reused.
    fn fingerprint(&self) -> u64;
    /// Encodes a batch of texts.
    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncoderError>;
    /// Where KB embeddings are cached (None: no cache).
    fn cache_path(&self) -> Option<PathBuf> {
        None
    }
}

/// Whether a text is mostly Latin script: the only text the English encoder understands.
/// A Chinese message with a ticker in it ("USDT提币失败") is not.
pub fn mostly_latin(text: &str) -> bool {
    let (mut latin, mut cjk) = (0usize, 0usize);
    for c in text.chars() {
        if is_cjk(c) {
            cjk += 1;
        } else if c.is_alphabetic() && (c.is_ascii() || ('\u{C0}'..='\u{24F}').contains(&c)) {
            latin += 1;
        }
    }
    // A CJK character carries about a word; a Latin word takes about four letters.
    latin >= 2 && latin >= 4 * cjk
}

/// FNV-1a over the parts: stable across builds and platforms, unlike `std`'s hasher.
pub(crate) fn stable_hash(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Embeddings of `texts` (a zero vector for text that is not [`mostly_latin`]), encoded in batches,
/// through the encoder's on-disk cache. A cache that can't be read or written only costs time.
pub fn embed_all(encoder: &dyn Encoder, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncoderError> {
    let dim = encoder.dim();
    let fp = encoder.fingerprint();
    let key = |t: &str| stable_hash(fp, &[t.as_bytes()]);
    let cache_path = encoder.cache_path();
    let mut cache = cache_path
        .as_deref()
        .map(|p| read_cache(p, dim))
        .unwrap_or_default();
    let mut out = vec![vec![0f32; dim]; texts.len()];
    let mut todo: Vec<usize> = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        if !mostly_latin(t) {
            continue;
        }
        match cache.get(&key(t)) {
            Some(v) => out[i].clone_from(v),
            None => todo.push(i),
        }
    }
    // Encode distinct texts once; shorter texts together keep padding low.
    todo.sort_by_key(|&i| (texts[i].len(), i));
    todo.dedup_by_key(|i| texts[*i]);
    let mut fresh: Vec<(u64, Vec<f32>)> = Vec::with_capacity(todo.len());
    for chunk in todo.chunks(BATCH) {
        let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
        let vectors = encoder.encode(&batch)?;
        if vectors.len() != batch.len() || vectors.iter().any(|v| v.len() != dim) {
            return Err(EncoderError::Encode(format!(
                "expected {} vectors of {dim}, got {}",
                batch.len(),
                vectors.len()
            )));
        }
        for (t, v) in batch.iter().zip(vectors) {
            fresh.push((key(t), v));
        }
    }
    if let Some(p) = cache_path.as_deref()
        && !fresh.is_empty()
    {
        append_cache(p, &fresh);
    }
    cache.extend(fresh);
    for (i, t) in texts.iter().enumerate() {
        if mostly_latin(t)
            && let Some(v) = cache.get(&key(t))
        {
            out[i].clone_from(v);
        }
    }
    Ok(out)
}

/// The cache file: records of an 8-byte key and `dim` little-endian f32s.
fn read_cache(path: &Path, dim: usize) -> HashMap<u64, Vec<f32>> {
    let mut bytes = Vec::new();
    let ok = std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes));
    let mut map = HashMap::new();
    if ok.is_err() {
        return map;
    }
    let record = 8 + 4 * dim;
    // A partly written last record (an interrupted load) is ignored.
    for r in bytes.chunks_exact(record) {
        let mut k = [0u8; 8];
        k.copy_from_slice(&r[..8]);
        let v = r[8..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        map.insert(u64::from_le_bytes(k), v);
    }
    map
}

fn append_cache(path: &Path, fresh: &[(u64, Vec<f32>)]) {
    let mut buf = Vec::with_capacity(fresh.len() * (8 + 4 * fresh[0].1.len()));
    for (k, v) in fresh {
        buf.extend_from_slice(&k.to_le_bytes());
        v.iter()
            .for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
    }
    // Best effort: a read-only model directory just means encoding again next time.
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(&buf));
}

#[cfg(feature = "rust-bert")]
mod rust_bert_encoder {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use rust_bert::pipelines::sentence_embeddings::{
        SentenceEmbeddingsBuilder, SentenceEmbeddingsModel,
    };

    use super::{Encoder, EncoderError, stable_hash};

    /// The files `SentenceEmbeddingsBuilder::local` reads for a BERT model.
    const REQUIRED: [&str; 8] = [
        "config.json",
        "modules.json",
        "rust_model.ot",
        "vocab.txt",
        "tokenizer_config.json",
        "sentence_bert_config.json",
        "special_tokens_map.json",
        "1_Pooling/config.json",
    ];

    /// all-MiniLM-L6-v2 (or another sentence-transformers BERT model) through rust-bert.
    pub struct RustBertEncoder {
        dir: PathBuf,
        model: Mutex<SentenceEmbeddingsModel>,
        dim: usize,
        fingerprint: u64,
    }

    impl std::fmt::Debug for RustBertEncoder {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RustBertEncoder")
                .field("dir", &self.dir)
                .field("dim", &self.dim)
                .finish_non_exhaustive()
        }
    }

    impl RustBertEncoder {
        /// Loads the model in `dir` (on the CPU).
        pub fn load(dir: &Path) -> Result<RustBertEncoder, EncoderError> {
            let err = |reason: String| EncoderError::Model {
                dir: dir.to_owned(),
                reason,
            };
            if !dir.is_dir() {
                return Err(err("not found".into()));
            }
            let missing: Vec<&str> = REQUIRED
                .iter()
                .copied()
                .filter(|f| !dir.join(f).is_file())
                .collect();
            if !missing.is_empty() {
                return Err(err(format!("missing {}", missing.join(", "))));
            }
            // rust-bert panics on some malformed files instead of returning an error.
            let builder = SentenceEmbeddingsBuilder::local(dir).with_device(tch::Device::Cpu);
            let model = std::panic::catch_unwind(move || builder.create_model())
                .map_err(|_| err("the model files could not be read".into()))?
                .map_err(|e| err(format!("the model could not be loaded: {e}")))?;
            let probe = model
                .encode(&["probe"])
                .map_err(|e| err(format!("the model does not encode: {e}")))?;
            let dim = probe.first().map_or(0, Vec::len);
            if dim == 0 {
                return Err(err("the model returns empty vectors".into()));
            }
            let meta = std::fs::metadata(dir.join("rust_model.ot"))
                .map_err(|e| err(format!("rust_model.ot: {e}")))?;
            let config = std::fs::read(dir.join("config.json"))
                .map_err(|e| err(format!("config.json: {e}")))?;
            // Weights' size, the model config and the vector of a probe identify the model.
            let probe_bytes: Vec<u8> = probe[0].iter().flat_map(|x| x.to_le_bytes()).collect();
            let fingerprint = stable_hash(
                0x6b65_6675_656d_6264,
                &[&meta.len().to_le_bytes(), &config, &probe_bytes],
            );
            Ok(RustBertEncoder {
                dir: dir.to_owned(),
                model: Mutex::new(model),
                dim,
                fingerprint,
            })
        }
    }

    impl Encoder for RustBertEncoder {
        fn dim(&self) -> usize {
            self.dim
        }

        fn fingerprint(&self) -> u64 {
            self.fingerprint
        }

        fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncoderError> {
            let model = self
                .model
                .lock()
                .map_err(|_| EncoderError::Encode("the model lock is poisoned".into()))?;
            model
                .encode(texts)
                .map_err(|e| EncoderError::Encode(e.to_string()))
        }

        fn cache_path(&self) -> Option<PathBuf> {
            Some(self.dir.join("embeddings.cache"))
        }
    }
}

#[cfg(feature = "rust-bert")]
pub use rust_bert_encoder::RustBertEncoder;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn script_detection_keeps_chinese_out() {
        assert!(mostly_latin("my withdrawal failed"));
        assert!(mostly_latin("Où est mon dépôt"));
        assert!(!mostly_latin("提币失败"));
        assert!(!mostly_latin("USDT提币失败"));
        assert!(!mostly_latin("123 456"));
        assert!(mostly_latin("withdrawal 失败 why is it not working"));
    }

    /// Counts calls; vectors are the text's length and first byte.
    #[derive(Debug, Default)]
    struct Fake {
        calls: AtomicUsize,
        cache: Option<PathBuf>,
    }

    impl Encoder for Fake {
        fn dim(&self) -> usize {
            2
        }
        fn fingerprint(&self) -> u64 {
            7
        }
        fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncoderError> {
            self.calls.fetch_add(texts.len(), Ordering::Relaxed);
            Ok(texts
                .iter()
                .map(|t| vec![t.len() as f32, f32::from(t.as_bytes()[0])])
                .collect())
        }
        fn cache_path(&self) -> Option<PathBuf> {
            self.cache.clone()
        }
    }

    #[test]
    fn embeddings_are_cached_on_disk_and_chinese_gets_zeros() {
        let dir = std::env::temp_dir().join(format!("kefu-enc-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("embeddings.cache");
        let _ = std::fs::remove_file(&path);
        let texts = ["lost card", "提币失败", "lost card", "ab"];
        let fake = Fake {
            cache: Some(path.clone()),
            ..Fake::default()
        };
        let v = embed_all(&fake, &texts).expect("encodes");
        assert_eq!(
            fake.calls.load(Ordering::Relaxed),
            2,
            "distinct Latin texts"
        );
        assert_eq!(v[0], vec![9.0, f32::from(b'l')]);
        assert_eq!(v[1], vec![0.0, 0.0]);
        assert_eq!(v[2], v[0]);
        let again = Fake {
            cache: Some(path.clone()),
            ..Fake::default()
        };
        assert_eq!(embed_all(&again, &texts).expect("encodes"), v);
        assert_eq!(again.calls.load(Ordering::Relaxed), 0, "all from the cache");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
