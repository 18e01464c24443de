//! Multinomial logistic regression over sparse features, trained at KB load.
//!
//! Weights are stored feature-major (`w[feature * classes + class]`) so scoring a message touches
//! one contiguous row per non-zero feature: a message with ~150 active n-grams against 150 intents
//! is ~22,000 multiply-adds, a few microseconds. Training is plain SGD on the softmax loss with a
//! decaying step, L2 regularisation applied through a global scale (so each step stays sparse), and
//! gradient entries below a small threshold skipped: once an example is learnt, its update touches
//! only the classes still competing for it, and an example already learnt with a tiny loss is
//! scored only every third epoch, which makes later epochs several times cheaper.

use multiversion::multiversion;

use crate::features::SparseVec;

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    /// Passes over the data.
    pub epochs: usize,
    /// Initial step size.
    pub learning_rate: f32,
    /// L2 penalty per example.
    pub l2: f32,
    /// Examples whose loss fell below this are skipped in two epochs out of three.
    pub skip_loss: f32,
    /// Shuffle seed (training is deterministic for a given seed).
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 12,
            learning_rate: 1.0,
            l2: 1e-5,
            skip_loss: 0.03,
            seed: 0x6b65_6675,
        }
    }
}

/// A trained model.
#[derive(Debug, Clone)]
pub struct LogReg {
    classes: usize,
    w: Vec<f32>,
    b: Vec<f32>,
}

impl LogReg {
    /// Trains on `x` with labels `y` (< `classes`) and per-example weights.
    pub fn train(
        x: &[SparseVec],
        y: &[u32],
        weight: &[f32],
        features: usize,
        classes: usize,
        opts: TrainOptions,
    ) -> Self {
        let all: Vec<usize> = (0..x.len()).collect();
        Self::train_on(x, &all, y, weight, features, classes, opts)
    }

    /// Trains on the examples `subset` (indices into `x`, `y` and `weight`) only, in that order:
    /// the same model as [`Self::train`] on copies of those examples, without the copies.
    pub fn train_on(
        x: &[SparseVec],
        subset: &[usize],
        y: &[u32],
        weight: &[f32],
        features: usize,
        classes: usize,
        opts: TrainOptions,
    ) -> Self {
        let n = subset.len();
        let mut w = vec![0f32; features * classes];
        let mut b = vec![0f32; classes];
        let mut scale = 1f32; // effective weights are scale * w
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = opts.seed | 1;
        let mut p = vec![0f32; classes];
        let mut grad = vec![0f32; classes];
        let mut active: Vec<(usize, f32)> = Vec::with_capacity(classes);
        let total = (opts.epochs * n).max(1) as f32;
        let mut step = 0usize;
        let mut last_loss = vec![f32::INFINITY; n];
        for epoch in 0..opts.epochs {
            // Fisher-Yates with xorshift: deterministic, no dependency.
            for i in (1..order.len()).rev() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                order.swap(i, (rng % (i as u64 + 1)) as usize);
            }
            for &i in &order {
                let lr = opts.learning_rate * (1.0 - step as f32 / total).max(0.05);
                step += 1;
                // An example learnt with a tiny loss is revisited only every third epoch: its
                // gradient is negligible, and scoring it is most of an epoch's cost.
                if last_loss[i] < opts.skip_loss && epoch % 3 != 0 {
                    continue;
                }
                let e = subset[i];
                let xi = &x[e];
                let wi = weight[e];
                scores_into(&w, &b, scale, classes, xi, &mut p);
                softmax(&mut p);
                let gold = y[e] as usize;
                last_loss[i] = -p[gold].max(1e-12).ln();
                p[gold] -= 1.0;
                active.clear();
                for (c, &g) in p.iter().enumerate() {
                    if g.abs() > 1e-4 {
                        active.push((c, g * lr * wi));
                    }
                }
                scale *= 1.0 - lr * opts.l2;
                if scale < 1e-3 {
                    w.iter_mut().for_each(|v| *v *= scale);
                    scale = 1.0;
                }
                let dense = active.len() * 4 > classes;
                if dense {
                    // Most classes still compete: a contiguous, vectorisable update is cheaper.
                    for (g, &pc) in grad.iter_mut().zip(&p) {
                        *g = pc * lr * wi;
                    }
                }
                for (&j, &v) in xi.idx.iter().zip(&xi.val) {
                    let row = &mut w[j as usize * classes..(j as usize + 1) * classes];
                    let f = v / scale;
                    if dense {
                        for (r, g) in row.iter_mut().zip(&grad) {
                            *r -= g * f;
                        }
                    } else {
                        for &(c, g) in &active {
                            row[c] -= g * f;
                        }
                    }
                }
                for &(c, g) in &active {
                    b[c] -= g;
                }
            }
        }
        if scale != 1.0 {
            w.iter_mut().for_each(|v| *v *= scale);
        }
        LogReg { classes, w, b }
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Raw scores (logits) of `x` into `out` (length `classes`).
    pub fn scores(&self, x: &SparseVec, out: &mut [f32]) {
        scores_into(&self.w, &self.b, 1.0, self.classes, x, out);
    }
}

/// Runs the best version for the CPU (AVX-512, else AVX2 and FMA, where available): scoring is
/// most of both training and classification time.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "x86_64+sse4.2"))]
fn scores_into(w: &[f32], b: &[f32], scale: f32, classes: usize, x: &SparseVec, out: &mut [f32]) {
    out.fill(0.0);
    // Classes in blocks whose sums stay in registers while every feature adds its part of the
    // block; each sum still adds the features in the same order, so scores are the same. Wide
    // blocks keep many independent sums in flight (a block of one or two registers waits on each
    // addition's latency), so the classes go in blocks of 96, then one block of the rest,
    // rounded up to whole registers by scoring a few classes again (to the same values).
    let mut start = 0;
    while start + 96 <= classes {
        score_block::<96>(w, classes, start, x, out);
        start += 96;
    }
    let rest = classes - start;
    if rest > 0 && classes < 8 {
        let rest = &mut out[start..classes];
        for (&j, &v) in x.idx.iter().zip(&x.val) {
            let at = j as usize * classes;
            for (o, r) in rest.iter_mut().zip(&w[at + start..at + classes]) {
                *o += v * r;
            }
        }
    } else if rest > 0 {
        let width = rest.div_ceil(8) * 8;
        if width <= classes {
            score_width(width, w, classes, classes - width, x, out);
        } else {
            // Fewer than 96 classes, not a multiple of 8: whole registers, then the last eight.
            score_width(width - 8, w, classes, 0, x, out);
            score_block::<8>(w, classes, classes - 8, x, out);
        }
    }
    for (o, bias) in out.iter_mut().zip(b) {
        *o = *o * scale + bias;
    }
}

/// [`score_block`] for a width that is a multiple of 8 up to 96.
#[inline(always)]
fn score_width(
    width: usize,
    w: &[f32],
    classes: usize,
    start: usize,
    x: &SparseVec,
    out: &mut [f32],
) {
    match width {
        8 => score_block::<8>(w, classes, start, x, out),
        16 => score_block::<16>(w, classes, start, x, out),
        24 => score_block::<24>(w, classes, start, x, out),
        32 => score_block::<32>(w, classes, start, x, out),
        40 => score_block::<40>(w, classes, start, x, out),
        48 => score_block::<48>(w, classes, start, x, out),
        56 => score_block::<56>(w, classes, start, x, out),
        64 => score_block::<64>(w, classes, start, x, out),
        72 => score_block::<72>(w, classes, start, x, out),
        80 => score_block::<80>(w, classes, start, x, out),
        88 => score_block::<88>(w, classes, start, x, out),
        _ => score_block::<96>(w, classes, start, x, out),
    }
}

/// The sums of classes `start..start + N` over the features of `x`, into `out`.
#[inline(always)]
fn score_block<const N: usize>(
    w: &[f32],
    classes: usize,
    start: usize,
    x: &SparseVec,
    out: &mut [f32],
) {
    let mut acc = [0f32; N];
    for (&j, &v) in x.idx.iter().zip(&x.val) {
        let at = j as usize * classes + start;
        for (a, r) in acc.iter_mut().zip(&w[at..at + N]) {
            *a += v * r;
        }
    }
    out[start..start + N].copy_from_slice(&acc);
}

/// In-place softmax.
pub fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    if sum > 0.0 {
        v.iter_mut().for_each(|x| *x /= sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_hot(i: u32) -> SparseVec {
        SparseVec {
            idx: vec![i],
            val: vec![1.0],
        }
    }

    #[test]
    fn it_learns_a_separable_problem() {
        let x: Vec<SparseVec> = (0..6).map(|i| one_hot(i % 3)).collect();
        let y: Vec<u32> = (0..6).map(|i| i % 3).collect();
        let m = LogReg::train(&x, &y, &[1.0; 6], 3, 3, TrainOptions::default());
        let mut out = [0f32; 3];
        for c in 0..3 {
            m.scores(&one_hot(c), &mut out);
            softmax(&mut out);
            let best = out
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i);
            assert_eq!(best, Some(c as usize));
            assert!(out[c as usize] > 0.8, "{out:?}");
        }
    }

    #[test]
    fn scores_in_blocks_equal_each_class_s_own_sum() {
        // Blocks of 96, a rest rounded up to whole registers, classes scored twice where blocks
        // overlap: every class must still get exactly its own sum, whatever the class count.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let features = 50;
        for classes in [
            1, 3, 7, 8, 9, 15, 16, 17, 63, 95, 96, 97, 151, 192, 200, 300,
        ] {
            let w: Vec<f32> = (0..features * classes).map(|_| next()).collect();
            let b: Vec<f32> = (0..classes).map(|_| next()).collect();
            let x = SparseVec {
                idx: vec![0, 3, 17, 18, 49],
                val: vec![next(), next(), next(), next(), next()],
            };
            let mut out = vec![f32::NAN; classes];
            scores_into(&w, &b, 0.5, classes, &x, &mut out);
            for (c, &got) in out.iter().enumerate() {
                let mut sum = 0f32;
                for (&j, &v) in x.idx.iter().zip(&x.val) {
                    sum += v * w[j as usize * classes + c];
                }
                assert_eq!(got, sum * 0.5 + b[c], "class {c} of {classes}");
            }
        }
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut v = [1.0, 2.0, 3.0, 1000.0];
        softmax(&mut v);
        assert!((v.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(v[3] > 0.99);
    }
}
