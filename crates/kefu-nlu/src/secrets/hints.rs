//! Words around a candidate that say what it is: seed hints (`seed phrase`, `助记词`…), key hints
//! (`private key`, `key`, `私钥`…) and transaction hints (`txid`, `hash`, `交易`…).
//!
//! Hints are searched in the folded text (so `ｐｒｉｖａｔｅ ｋｅｙ` counts), never inside our own
//! redaction labels or inside a secret already found: `[redacted: private key]` must not turn the
//! transaction hash next to it into a key when a redacted message is scanned again.

use std::ops::Range;

use super::text::Scan;

pub(super) const SEED_HINTS: &[&str] = &[
    "seed",
    "mnemonic",
    "phrase",
    "recovery",
    "backup",
    "back up",
    "secret words",
    "助记",
    "助記",
    "记忆词",
    "記憶詞",
    "种子",
    "種子",
    "备份",
    "備份",
    "恢复",
    "恢復",
    "短语",
    "短語",
];

/// Key hints; `true` when the hint must be a whole word (`key` but not `keyboard`).
const KEY_HINTS: &[(&str, bool)] = &[
    ("private key", false),
    ("private-key", false),
    ("private_key", false),
    ("privatekey", false),
    ("privkey", false),
    ("priv key", false),
    ("priv_key", false),
    ("secret key", false),
    ("secret_key", false),
    ("secretkey", false),
    ("key", true),
    ("keys", true),
    ("私钥", false),
    ("私鑰", false),
    ("密钥", false),
    ("密鑰", false),
    ("秘钥", false),
    ("秘鑰", false),
];

/// Transaction hints, matched at the start of a word (`tx` also finds `txid` and `txhash`).
const TX_HINTS: &[&str] = &["tx", "hash", "transaction", "哈希", "交易"];

/// Byte offsets where `needle` occurs in `hay`, ASCII case-insensitively. ASCII needles start at a
/// word boundary (so `tx` does not match inside `context`); `whole_word` ones end at one too.
pub(super) fn occurrences<'h>(
    hay: &'h str,
    needle: &'h str,
    whole_word: bool,
) -> impl Iterator<Item = usize> + 'h {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    let ascii_word = n.first().is_some_and(u8::is_ascii_alphanumeric);
    (0..(h.len() + 1).saturating_sub(n.len())).filter(move |&i| {
        h[i..i + n.len()].eq_ignore_ascii_case(n)
            && (!ascii_word || i == 0 || !h[i - 1].is_ascii_alphanumeric())
            && (!whole_word
                || h.get(i + n.len())
                    .is_none_or(|b| !b.is_ascii_alphanumeric()))
    })
}

/// Facts about the whole message, computed when first needed (folded byte offsets throughout).
#[derive(Debug)]
pub(super) struct Context<'s, 'a> {
    scan: &'s Scan<'a>,
    seed_hint: Option<bool>,
    key_hints: Option<Vec<Range<usize>>>,
    tx_hints: Option<Vec<Range<usize>>>,
    /// Stretches that count as one byte when distances are measured and inside which no hint
    /// counts: our labels, key-shaped tokens and the mnemonics found. Redaction replaces each of
    /// them by a label (or leaves it), so distances read the same before and after it.
    opaque: Vec<Range<usize>>,
}

impl<'s, 'a> Context<'s, 'a> {
    pub fn new(scan: &'s Scan<'a>) -> Self {
        let mut opaque = scan.labels.clone();
        opaque.extend(scan.key_tokens.iter().map(|(r, _)| r.clone()));
        Context {
            scan,
            seed_hint: None,
            key_hints: None,
            tx_hints: None,
            opaque,
        }
    }

    /// Found mnemonics become opaque for the key decisions that follow.
    /// Ranges that overlap (two detectors reporting the same phrase) are merged, so each byte is
    /// hidden once.
    pub fn add_opaque(&mut self, ranges: impl IntoIterator<Item = Range<usize>>) {
        self.opaque.extend(ranges);
        self.opaque
            .sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(self.opaque.len());
        for r in self.opaque.drain(..) {
            match merged.last_mut() {
                Some(last) if r.start < last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        self.opaque = merged;
        self.key_hints = None;
        self.tx_hints = None;
    }

    fn usable(&self, hint: &Range<usize>) -> bool {
        !self
            .opaque
            .iter()
            .any(|o| o.start < hint.end && hint.start < o.end)
    }

    fn find(&self, needles: impl Iterator<Item = (&'static str, bool)>) -> Vec<Range<usize>> {
        let text = self.scan.text();
        needles
            .flat_map(|(n, whole)| occurrences(text, n, whole).map(move |i| i..i + n.len()))
            .filter(|r| self.usable(r))
            .collect()
    }

    /// Does the message mention a seed phrase anywhere?
    pub fn seed_hint(&mut self) -> bool {
        if let Some(hint) = self.seed_hint {
            return hint;
        }
        let hint = !self.find(SEED_HINTS.iter().map(|h| (*h, false))).is_empty();
        self.seed_hint = Some(hint);
        hint
    }

    pub fn has_key_hint(&mut self) -> bool {
        !self.key_hints().is_empty()
    }

    fn key_hints(&mut self) -> &[Range<usize>] {
        if self.key_hints.is_none() {
            self.key_hints = Some(self.find(KEY_HINTS.iter().copied()));
        }
        self.key_hints.as_deref().unwrap_or_default()
    }

    fn tx_hints(&mut self) -> &[Range<usize>] {
        if self.tx_hints.is_none() {
            self.tx_hints = Some(self.find(TX_HINTS.iter().map(|h| (*h, false))));
        }
        self.tx_hints.as_deref().unwrap_or_default()
    }

    /// True when a key hint exists and is strictly closer to `range` than every tx hint.
    pub fn key_hint_wins(&mut self, range: &Range<usize>) -> bool {
        let key_hints = self.key_hints().to_vec();
        let Some(key) = self.nearest(&key_hints, range) else {
            return false;
        };
        let tx_hints = self.tx_hints().to_vec();
        let tx = self.nearest(&tx_hints, range);
        tx.is_none_or(|tx| key < tx)
    }

    fn nearest(&self, hints: &[Range<usize>], range: &Range<usize>) -> Option<usize> {
        hints
            .iter()
            .map(|h| {
                let gap = if h.end <= range.start {
                    h.end..range.start
                } else {
                    range.end.min(h.start)..h.start
                };
                self.distance(&gap)
            })
            .min()
    }

    /// Length of a stretch with every opaque range inside it counted as one byte.
    fn distance(&self, gap: &Range<usize>) -> usize {
        let hidden: usize = self
            .opaque
            .iter()
            .filter(|o| gap.start <= o.start && o.end <= gap.end)
            .map(|o| o.len().saturating_sub(1))
            .sum();
        gap.len().saturating_sub(hidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_hints_start_at_a_word_boundary_and_whole_words_end_at_one() {
        let found = |hay, needle, whole| occurrences(hay, needle, whole).collect::<Vec<_>>();
        assert_eq!(found("context tx txid", "tx", false), [8, 11]);
        assert_eq!(found("keyboard key keys, Key", "key", true), [9, 19]);
        assert_eq!(found("我的私钥", "私钥", false), [6]);
    }

    #[test]
    fn distances_count_an_opaque_stretch_as_one_byte() {
        let text = "tx 0123456789 key";
        let scan = Scan::new(text);
        let mut ctx = Context::new(&scan);
        ctx.add_opaque(std::iter::once(3..13));
        assert_eq!(ctx.distance(&(2..14)), 3);
        // The same stretch reported twice, or partly again, still counts as one byte.
        ctx.add_opaque([3..13, 5..9, 3..13]);
        assert_eq!(ctx.distance(&(2..14)), 3);
        // A hint inside an opaque stretch does not count.
        ctx.add_opaque(std::iter::once(14..17));
        assert!(!ctx.has_key_hint());
    }

    #[test]
    fn hints_inside_our_labels_do_not_count() {
        let scan = Scan::new("[redacted: private key] [redacted: seed phrase, 12 words]");
        let mut ctx = Context::new(&scan);
        assert!(!ctx.has_key_hint());
        assert!(!ctx.seed_hint());
    }
}
