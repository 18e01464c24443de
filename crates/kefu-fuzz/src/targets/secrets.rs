//! Secret detection (`kefu_nlu::secrets`) on messages built from real support messages and planted
//! secrets: BIP39 mnemonics (English, Simplified and Traditional Chinese; valid or with a wrong
//! word) written with every kind of separator, numbering, case and width, zero-width characters
//! inside and between words, English words glued together, cut to four letters or with a letter
//! left out of one, Chinese characters in groups; runs of wordlist words; hex runs (64 digits, near misses, split in
//! groups); WIF and extended keys (valid and corrupted); seed, key and tx hints; our own labels.
//! A third of the inputs are split into a conversation of two or three messages.
//!
//! Properties: nothing panics; spans are sorted, non-empty, non-overlapping, inside the text and
//! on char boundaries; `redact` replaces exactly the spans; `find_secrets` finds nothing in the
//! redacted text; the word sequence of a span does not survive in the redacted text; `find_secrets_with_history` returns one span list per earlier message, covers
//! what `find_secrets` finds in the new message, and finds nothing once every message is redacted.

use bip39::{Language, Mnemonic};
use kefu_nlu::secrets::{SecretKind, SecretSpan, find_secrets, find_secrets_with_history, redact};

use super::{Input, Target, TargetInfo};
use crate::corpus::Corpus;
use crate::mutate::{INVISIBLES, boundary, full_width, mutate, shown};
use crate::rng::Rng;

pub const INFO: TargetInfo = TargetInfo {
    name: "secrets",
    about: "secret detection on messages with planted secrets: no panic, valid spans, nothing left after redaction",
    build,
};

const WIF_KEYS: &[&str] = &[
    "5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ",
    "KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98617",
];
const EXTENDED_KEYS: &[&str] = &[
    "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi",
    "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8",
];
const ADDRESSES: &[&str] = &[
    "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    "0x742d35Cc6634C0532925a3b844Bc454e4438f44e",
    "TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7",
    "UID 123456789",
    "2024-05-01 12:30:45",
    "1,234.5678 USDT",
];
const HINTS: &[&str] = &[
    "seed phrase:",
    "my recovery phrase is",
    "mnemonic",
    "backup words",
    "助记词：",
    "我的助记词是",
    "这是我的助记词",
    "private key:",
    "key:",
    "wallet key",
    "私钥",
    "密钥",
    "txid:",
    "tx hash",
    "交易哈希",
    "hash:",
];
const LABELS: &[&str] = &[
    "[redacted: private key]",
    "[redacted: extended private key]",
    "[redacted: seed phrase, 12 words]",
    "[redacted: seed phrase, 1 word]",
    "[redacted: seed phrase, x words]",
];
/// How the words of a planted phrase are separated.
const WORD_SEPARATORS: &[&str] = &[
    " ",
    "  ",
    "\n",
    ", ",
    ",",
    "，",
    "、",
    "!",
    "\"",
    "\" \"",
    "'",
    "+",
    " + ",
    "~",
    "😀",
    " 🔑 ",
    "\u{200B}",
    " \u{200B}",
    "\u{2060}",
    "-",
    "_",
    "|",
    "/",
    ".",
    "…",
    "\t",
    "\u{3000}",
];
const CONNECTORS: &[&str] = &[
    " ", "\n", ", ", "", "：", ": ", "! ", "? ", "😀", "\u{200B}", "\n\n", "。",
];

#[derive(Debug, Default)]
struct Planted {
    tried: u64,
    covered: u64,
}

struct SecretsTarget {
    messages: Vec<String>,
    /// Valid English phrases planted with a clean separator and left unmutated.
    english: Planted,
    chinese: Planted,
    /// The current input's planted phrases: (byte range in the composed message, which counter).
    planted: Vec<(std::ops::Range<usize>, bool)>,
}

fn build(corpus: &Corpus) -> Box<dyn Target> {
    Box::new(SecretsTarget {
        messages: corpus.messages.clone(),
        english: Planted::default(),
        chinese: Planted::default(),
        planted: Vec::new(),
    })
}

fn mnemonic(rng: &mut Rng, lang: Language) -> Vec<String> {
    let bytes = [16, 20, 24, 28, 32][rng.below(5)];
    Mnemonic::from_entropy_in(lang, &rng.bytes(bytes))
        .map(|m| m.words().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn hex(rng: &mut Rng, digits: usize) -> String {
    (0..digits)
        .map(|_| char::from(b"0123456789abcdef"[rng.below(16)]))
        .collect()
}

impl SecretsTarget {
    /// One piece of a message; `Some(true)`/`Some(false)` when it is a clean valid English /
    /// Chinese phrase whose detection is counted.
    fn segment(&mut self, rng: &mut Rng) -> (String, Option<bool>) {
        match rng.below(10) {
            0 | 1 => (rng.pick(&self.messages).cloned().unwrap_or_default(), None),
            2 | 3 => {
                let mut words = mnemonic(rng, Language::English);
                let valid = !rng.chance(20);
                if !valid && let Some(w) = words.get_mut(rng.below(12)) {
                    *w = "zoo".to_owned();
                }
                let numbered = rng.chance(15);
                let sep = rng.pick(WORD_SEPARATORS).copied().unwrap_or(" ");
                let mut text = String::new();
                for (i, w) in words.iter().enumerate() {
                    if i > 0 {
                        text.push_str(sep);
                    }
                    if numbered {
                        text.push_str(&format!("{}. ", i + 1));
                    }
                    text.push_str(w);
                }
                let styled = match rng.below(11) {
                    0 => text.to_uppercase(),
                    1 => full_width(&text),
                    // Glued together, in lower case or each word capitalised.
                    8 => {
                        let title = rng.chance(50);
                        words
                            .iter()
                            .map(|w| {
                                let mut c = w.chars();
                                match c.next() {
                                    Some(f) if title => f.to_uppercase().chain(c).collect(),
                                    _ => w.clone(),
                                }
                            })
                            .collect::<String>()
                    }
                    // Cut to four letters, as on a backup plate.
                    9 => words
                        .iter()
                        .map(|w| w.chars().take(4).collect::<String>())
                        .collect::<Vec<_>>()
                        .join(sep),
                    // One word misspelt: a letter left out.
                    10 => {
                        let list = Language::English.word_list();
                        let mut typed = words.clone();
                        let k = rng.below(typed.len());
                        if let Some(w) = typed.get_mut(k)
                            && w.len() >= 5
                        {
                            let cut = rng.below(w.len());
                            let shorter: String = w
                                .char_indices()
                                .filter(|&(i, _)| i != cut)
                                .map(|(_, c)| c)
                                .collect();
                            if !list.contains(&shorter.as_str()) {
                                *w = shorter;
                            }
                        }
                        typed.join(sep)
                    }
                    2 => {
                        // An invisible character inside every word.
                        let zw = rng.pick(INVISIBLES).copied().unwrap_or('\u{200B}');
                        words
                            .iter()
                            .map(|w| {
                                let mid = w.len() / 2;
                                format!("{}{zw}{}", &w[..mid], &w[mid..])
                            })
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                    _ => text,
                };
                (styled, valid.then_some(true))
            }
            4 => {
                let lang = if rng.chance(50) {
                    Language::SimplifiedChinese
                } else {
                    Language::TraditionalChinese
                };
                let words = mnemonic(rng, lang);
                if rng.chance(15) {
                    // In groups, as on a backup card: threes, fours or two lines of six.
                    let size = [3, 4, 6][rng.below(3)];
                    let gap = if size == 6 || rng.chance(30) {
                        "\n"
                    } else {
                        " "
                    };
                    let groups: Vec<String> = words.chunks(size).map(<[String]>::concat).collect();
                    return (groups.join(gap), Some(false));
                }
                let sep = if rng.chance(50) {
                    ""
                } else {
                    rng.pick(WORD_SEPARATORS).copied().unwrap_or(" ")
                };
                (words.join(sep), Some(false))
            }
            5 => {
                let list = Language::English.word_list();
                let n = rng.between(1, 30);
                let sep = rng.pick(WORD_SEPARATORS).copied().unwrap_or(" ");
                let words: Vec<&str> = (0..n).map(|_| list[rng.below(2048)]).collect();
                (words.join(sep), None)
            }
            6 => {
                let digits = [64, 64, 64, 63, 65, 40][rng.below(6)];
                let mut h = hex(rng, digits);
                if rng.chance(30) {
                    h.insert_str(0, "0x");
                }
                if rng.chance(20) {
                    let groups: Vec<String> = h
                        .as_bytes()
                        .chunks(rng.between(4, 32))
                        .map(|c| String::from_utf8_lossy(c).into_owned())
                        .collect();
                    h = groups.join([" ", "\n", "-", ":"][rng.below(4)]);
                }
                (h, None)
            }
            7 => {
                let mut key = if rng.chance(50) {
                    rng.pick(WIF_KEYS).copied().unwrap_or("").to_owned()
                } else {
                    rng.pick(EXTENDED_KEYS).copied().unwrap_or("").to_owned()
                };
                if rng.chance(30) && !key.is_empty() {
                    let at = rng.below(key.len());
                    key.replace_range(at..at + 1, "Z");
                }
                if rng.chance(10) {
                    key.truncate(rng.between(40, key.len().max(40)));
                }
                (key, None)
            }
            8 => {
                let bits = [HINTS, LABELS, ADDRESSES][rng.below(3)];
                (rng.pick(bits).copied().unwrap_or("").to_owned(), None)
            }
            _ => {
                let mut text = rng.pick(&self.messages).cloned().unwrap_or_default();
                mutate(rng, &mut text, &self.messages, 3);
                (text, None)
            }
        }
    }
}

/// Spans must be sorted, non-empty, non-overlapping, in bounds and on char boundaries.
fn valid_spans(text: &str, spans: &[SecretSpan], what: &str) -> Result<(), String> {
    let mut end = 0;
    for s in spans {
        let r = &s.range;
        if r.start >= r.end || r.end > text.len() {
            return Err(format!(
                "{what}: span {r:?} empty or outside {} bytes",
                text.len()
            ));
        }
        if !text.is_char_boundary(r.start) || !text.is_char_boundary(r.end) {
            return Err(format!("{what}: span {r:?} not on char boundaries"));
        }
        if r.start < end {
            return Err(format!("{what}: spans overlap or are unsorted: {spans:?}"));
        }
        if s.words == 0 {
            return Err(format!("{what}: a span of 0 words"));
        }
        end = r.end;
    }
    Ok(())
}

/// The words of `text` for comparing word sequences: runs of letters and digits, lowercased, and
/// each ideograph on its own; invisible characters are left out (as detection does); everything
/// else separates.
fn words_of(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if INVISIBLES.contains(&c) {
            continue;
        }
        let ideograph = matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{3134F}');
        if c.is_alphanumeric() && !ideograph {
            word.extend(c.to_lowercase());
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if ideograph {
            out.push(c.to_string());
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Nothing of a secret survives redaction: its sequence of words (whatever separates them) does
/// not occur in the redacted text. (A span of one or two words, a piece of a
/// phrase split over messages, is left out: its words may well occur elsewhere in the message.)
fn nothing_survives(text: &str, spans: &[SecretSpan], redacted: &str) -> Result<(), String> {
    let left = words_of(redacted);
    for s in spans {
        if s.kind == SecretKind::SeedPhrase && s.words < 3 {
            continue;
        }
        let secret = &text[s.range.clone()];
        let words = words_of(secret);
        if !words.is_empty() && left.windows(words.len()).any(|w| w == words.as_slice()) {
            return Err(format!(
                "the words of the secret {} survive redaction: {}",
                shown(secret, 200),
                shown(redacted, 300)
            ));
        }
    }
    Ok(())
}

/// `redact` must replace exactly the spans with their labels.
fn redacts_exactly(text: &str, spans: &[SecretSpan]) -> Result<String, String> {
    let mut expected = String::new();
    let mut cursor = 0;
    for s in spans {
        expected.push_str(&text[cursor..s.range.start]);
        expected.push_str(&s.label());
        cursor = s.range.end;
    }
    expected.push_str(&text[cursor..]);
    let out = redact(text, spans);
    if out != expected {
        return Err(format!(
            "redact differs from the spans: {} vs {}",
            shown(&out, 200),
            shown(&expected, 200)
        ));
    }
    Ok(out)
}

impl Target for SecretsTarget {
    fn generate(&mut self, rng: &mut Rng) -> Input {
        self.planted.clear();
        let mut text = String::new();
        let mut planted = Vec::new();
        for i in 0..rng.between(1, 5) {
            if i > 0 {
                text.push_str(rng.pick(CONNECTORS).copied().unwrap_or(" "));
            }
            let (piece, clean) = self.segment(rng);
            if let Some(english) = clean {
                planted.push((text.len()..text.len() + piece.len(), english));
            }
            text.push_str(&piece);
        }
        if rng.chance(25) {
            mutate(rng, &mut text, &self.messages, 2);
        } else {
            self.planted = planted;
        }
        if rng.chance(66) {
            return vec![text];
        }
        // A conversation: the text cut into two or three messages.
        let mut cuts = vec![boundary(rng, &text), boundary(rng, &text)];
        if rng.chance(50) {
            cuts.pop();
        }
        cuts.sort_unstable();
        let mut messages = Vec::new();
        let mut from = 0;
        for cut in cuts {
            messages.push(text[from..cut].to_owned());
            from = cut;
        }
        messages.push(text[from..].to_owned());
        // Planted ranges refer to the whole text; only single messages are counted.
        self.planted.clear();
        messages
    }

    fn check(&mut self, input: &Input) -> Result<(), String> {
        let Some((current, history)) = input.split_last() else {
            return Ok(());
        };
        let spans = find_secrets(current);
        valid_spans(current, &spans, "find_secrets")?;
        let redacted = redacts_exactly(current, &spans)?;
        nothing_survives(current, &spans, &redacted)?;
        let again = find_secrets(&redacted);
        if !again.is_empty() {
            return Err(format!(
                "the redacted text still holds a secret: {again:?} in {}",
                shown(&redacted, 300)
            ));
        }
        for (range, english) in std::mem::take(&mut self.planted) {
            let counter = if english {
                &mut self.english
            } else {
                &mut self.chinese
            };
            counter.tried += 1;
            let covered = spans
                .iter()
                .any(|s| s.range.start <= range.start && range.end <= s.range.end);
            counter.covered += u64::from(covered);
        }
        if history.is_empty() {
            return Ok(());
        }
        let history: Vec<&str> = history.iter().map(String::as_str).collect();
        let scan = find_secrets_with_history(&history, current);
        if scan.history.len() != history.len() {
            return Err(format!(
                "{} span lists for {} earlier messages",
                scan.history.len(),
                history.len()
            ));
        }
        valid_spans(current, &scan.current, "with history, current")?;
        for (h, spans) in history.iter().zip(&scan.history) {
            valid_spans(h, spans, "with history, earlier message")?;
        }
        for s in &spans {
            let covered = scan
                .current
                .iter()
                .any(|c| c.range.start <= s.range.start && s.range.end <= c.range.end);
            if !covered {
                return Err(format!(
                    "with history, {:?} of find_secrets is not covered",
                    s.range
                ));
            }
        }
        let redacted_history: Vec<String> = history
            .iter()
            .zip(&scan.history)
            .map(|(h, spans)| redact(h, spans))
            .collect();
        let redacted_current = redact(current, &scan.current);
        for ((h, spans), r) in history.iter().zip(&scan.history).zip(&redacted_history) {
            nothing_survives(h, spans, r)?;
        }
        nothing_survives(current, &scan.current, &redacted_current)?;
        let borrowed: Vec<&str> = redacted_history.iter().map(String::as_str).collect();
        let again = find_secrets_with_history(&borrowed, &redacted_current);
        if !again.current.is_empty() || again.history.iter().any(|h| !h.is_empty()) {
            return Err(format!(
                "the redacted conversation still holds a secret: {again:?} in {:?} + {}",
                borrowed,
                shown(&redacted_current, 300)
            ));
        }
        Ok(())
    }

    fn summary(&self) -> Vec<String> {
        let rate = |p: &Planted| {
            if p.tried == 0 {
                0.0
            } else {
                100.0 * p.covered as f64 / p.tried as f64
            }
        };
        vec![
            format!(
                "planted valid English phrases (unmutated, any separator, next to random text): {} of {} covered ({:.2} %)",
                self.english.covered,
                self.english.tried,
                rate(&self.english)
            ),
            format!(
                "planted valid Chinese phrases (unmutated, contiguous or separated, next to random text): {} of {} covered ({:.2} %)",
                self.chinese.covered,
                self.chinese.tried,
                rate(&self.chinese)
            ),
        ]
    }
}
