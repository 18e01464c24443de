//! Distils the sentence encoder into the static English word vectors the lexical engine ships
//! (`crates/kefu-nlu/data/en-word-vectors.bin`, read by `kefu_nlu::wordvec`).
//!
//! 1. Every whole-word entry of the model's WordPiece vocabulary (lowercase ASCII letters, two or
//!    more) is encoded on its own: the model's mean-pooled, unit-length sentence vector of the word.
//! 2. Words are grouped by their Snowball English stem (the tokenizer's tokens) and averaged.
//! 3. The stem vectors are projected on their top principal directions (uncentred, as the vectors
//!    are used: summed and normalised) and quantised to one signed byte per dimension.
//!
//! Usage: `kefu-distill-words MODEL_DIR OUT.bin [DIMS]` (DIMS default 128).

use std::collections::BTreeMap;
use std::process::ExitCode;

use kefu_nlu::encoder::{Encoder, RustBertEncoder};
use kefu_nlu::wordvec::{MAGIC, symmetric_eigen};
use rust_stemmers::{Algorithm, Stemmer};

fn run(dir: &str, out: &str, dims: usize) -> Result<usize, String> {
    let vocab = std::fs::read_to_string(std::path::Path::new(dir).join("vocab.txt"))
        .map_err(|e| format!("cannot read {dir}/vocab.txt: {e}"))?;
    let words: Vec<&str> = vocab
        .lines()
        .filter(|w| w.len() >= 2 && w.bytes().all(|b| b.is_ascii_lowercase()))
        .collect();
    let enc = RustBertEncoder::load(std::path::Path::new(dir)).map_err(|e| e.to_string())?;
    let width = enc.dim();
    if dims == 0 || dims > width {
        return Err(format!("DIMS must be 1..={width}"));
    }
    let stemmer = Stemmer::create(Algorithm::English);
    let mut sums: BTreeMap<String, (Vec<f64>, usize)> = BTreeMap::new();
    for (k, chunk) in words.chunks(64).enumerate() {
        let vs = enc.encode(chunk).map_err(|e| e.to_string())?;
        for (w, v) in chunk.iter().zip(vs) {
            let e = sums
                .entry(stemmer.stem(w).into_owned())
                .or_insert_with(|| (vec![0.0; width], 0));
            e.0.iter_mut()
                .zip(&v)
                .for_each(|(a, b)| *a += f64::from(*b));
            e.1 += 1;
        }
        if k % 50 == 0 {
            eprintln!("encoded {} / {} words", k * 64, words.len());
        }
    }
    let stems: Vec<(String, Vec<f64>)> = sums
        .into_iter()
        .filter(|(s, _)| s.len() <= 255)
        .map(|(s, (v, n))| (s, v.into_iter().map(|x| x / n as f64).collect()))
        .collect();
    // Principal directions: eigenvectors of the (uncentred) second-moment matrix.
    let mut gram = vec![0f64; width * width];
    for (_, v) in &stems {
        for i in 0..width {
            for j in i..width {
                gram[i * width + j] += v[i] * v[j];
            }
        }
    }
    for i in 0..width {
        for j in 0..i {
            gram[i * width + j] = gram[j * width + i];
        }
    }
    let (values, vectors) = symmetric_eigen(&gram, width);
    let kept: f64 = values[..dims].iter().sum::<f64>() / values.iter().sum::<f64>();
    eprintln!(
        "{dims} of {width} directions keep {:.1} % of the energy",
        kept * 100.0
    );
    let projected: Vec<Vec<f64>> = stems
        .iter()
        .map(|(_, v)| {
            (0..dims)
                .map(|d| (0..width).map(|i| v[i] * vectors[d][i]).sum())
                .collect()
        })
        .collect();
    let scales: Vec<f64> = (0..dims)
        .map(|d| projected.iter().map(|p| p[d].abs()).fold(1e-12, f64::max) / 127.0)
        .collect();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(dims as u32).to_le_bytes());
    bytes.extend_from_slice(&(stems.len() as u32).to_le_bytes());
    for s in &scales {
        bytes.extend_from_slice(&(*s as f32).to_le_bytes());
    }
    for ((stem, _), p) in stems.iter().zip(&projected) {
        bytes.push(stem.len() as u8);
        bytes.extend_from_slice(stem.as_bytes());
        for (x, s) in p.iter().zip(&scales) {
            bytes.push((x / s).round().clamp(-127.0, 127.0) as i8 as u8);
        }
    }
    std::fs::write(out, &bytes).map_err(|e| format!("cannot write {out}: {e}"))?;
    Ok(stems.len())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (dir, out, dims) = match args.as_slice() {
        [_, dir, out] => (dir, out, Ok(128)),
        [_, dir, out, dims] => (dir, out, dims.parse::<usize>()),
        _ => {
            eprintln!("usage: kefu-distill-words MODEL_DIR OUT.bin [DIMS]");
            return ExitCode::from(2);
        }
    };
    let Ok(dims) = dims else {
        eprintln!("error: DIMS must be a number");
        return ExitCode::from(2);
    };
    match run(dir, out, dims) {
        Ok(n) => {
            eprintln!("{out}: {n} stems × {dims} dimensions");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
