//! Normalisation (`kefu_nlu::normalize::normalize`) on support messages with invisible characters,
//! emoji, full-width forms, combining marks, repeats and random code points. Properties: it never
//! panics; it is idempotent; the result has no leading, trailing or doubled space.

use kefu_nlu::normalize::normalize;

use super::{Input, Target, TargetInfo};
use crate::corpus::Corpus;
use crate::mutate::{mutate, shown};
use crate::rng::Rng;

pub const INFO: TargetInfo = TargetInfo {
    name: "normalize",
    about: "normalisation on mutated messages: no panic, normalize(normalize(x)) == normalize(x)",
    build,
};

struct NormalizeTarget {
    messages: Vec<String>,
}

fn build(corpus: &Corpus) -> Box<dyn Target> {
    Box::new(NormalizeTarget {
        messages: corpus.messages.clone(),
    })
}

impl Target for NormalizeTarget {
    fn generate(&mut self, rng: &mut Rng) -> Input {
        let mut text = rng.pick(&self.messages).cloned().unwrap_or_default();
        if rng.chance(30) {
            let other = rng.pick(&self.messages).cloned().unwrap_or_default();
            text.push_str(&other);
        }
        mutate(rng, &mut text, &self.messages, 6);
        vec![text]
    }

    fn check(&mut self, input: &Input) -> Result<(), String> {
        for text in input {
            let once = normalize(text);
            let twice = normalize(&once);
            if once != twice {
                return Err(format!(
                    "not idempotent: {} → {}",
                    shown(&once, 200),
                    shown(&twice, 200)
                ));
            }
            if once.starts_with(' ') || once.ends_with(' ') || once.contains("  ") {
                return Err(format!("stray spaces in {}", shown(&once, 200)));
            }
        }
        Ok(())
    }
}
