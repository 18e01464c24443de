//! Detection of wallet secrets pasted into a support chat, so they can be redacted before the
//! message is stored, logged or relayed to a human agent.
//!
//! [`find_secrets`] returns byte ranges in the *original* text (always on char boundaries), sorted
//! and non-overlapping; [`redact`] replaces them with labels such as
//! `[redacted: seed phrase, 12 words]`. [`find_secrets_with_history`] also finds a phrase split
//! over consecutive messages.
//!
//! # Layout
//! - `text`: how detection reads a message — folded (NFKC-style compatibility folding, diacritics
//!   and invisible characters out) and cut into words, numbers, ideographs and separators, every
//!   piece mapped back to the original bytes.
//! - `wordlists`: the BIP39 lists, the checksum, and what tells random Chinese characters from a
//!   sentence.
//! - `hints`: the words around a candidate (seed, key and transaction hints) and distances to them.
//! - `mnemonic`: English and Chinese mnemonics. `compact`: English mnemonics with the words glued
//!   together or cut to four letters. `keys`: hex, WIF and extended private keys.
//! - `history`: phrases split over messages.
//!
//! # How a message is read
//!
//! The text is folded first: compatibility forms become plain ones (`ＡＢＡＮＤＯＮ` → `ABANDON`,
//! `①` → `1`), diacritics are dropped (`lègal` → `legal`), and invisible characters — zero-width
//! space, joiners, word joiner, BOM, soft hyphen, bidi controls, variation selectors — are set
//! aside. Then **anything that is not a letter, a digit or an ideograph separates words**: spaces,
//! punctuation, quotes, `!`, `+`, `~`, `^`, emoji… so `legal!winner`, `"legal" "winner"`,
//! `legal😀winner` and `1)legal2)winner` are all two words. An invisible character inside letters
//! is read both ways: `le​gal` is one word and `legal​winner` two (the fewest wordlist words win).
//! A span runs from the first word of a secret to its last, so redaction removes the odd
//! separators in between too.
//!
//! # What is detected
//!
//! - **English BIP39 mnemonics.** A *run* is a sequence of wordlist words with only separators and
//!   list numbering of one or two digits (`1. abandon 2. ability`, `1)abandon`, `(3) able`) between
//!   them; a word outside the list, a longer number or an ideograph ends it. A run is reported when
//!   1. a window of 12/15/18/21/24 words **whose BIP39 checksum verifies** leaves at most two words
//!      of the run outside it (so `"<12 words> please help"` is found: `please` and `help` are
//!      themselves wordlist words) → `checksum_ok = true`, span = that window; or
//!   2. no window verifies but the run is **seed-like** and has at least 12 words (10 when the
//!      message has a seed hint: a user missing a word or two says so) → the whole run,
//!      `checksum_ok = false`. Seed-like means the run
//!      is *structured* — numbered (at least half of the gaps carry a number), one word per line,
//!      every word comma-separated, or every word set apart by something other than whitespace
//!      (`legal~winner~…`, an emoji, a zero-width space) — or the message contains a *seed hint*
//!      (`seed`, `mnemonic`, `phrase`, `recovery`, `backup`, `助记词`, `种子`, `备份`, `恢复`, …) and
//!      fewer than a quarter of the run's words are frequent prose words (`that`, `this`, `you`,
//!      `can`, …, see `PROSE_WORDS`); or
//!   3. neither of the above, but a single line of the run passes rule 1 on its own (two seeds
//!      pasted on two lines).
//!
//!   **False-positive rule.** Ordinary English is broken up constantly by function words that are
//!   *not* in the list (`the`, `is`, `my`, `to`, `I`, `it`, `of`, `and`, `not`, `was`, `how`,
//!   `why`, …), so prose rarely yields 12 consecutive wordlist words. When it does (`again able
//!   about all any area army art best better black blue`), the run is reported only if the checksum
//!   verifies (1 in 16 for 12 words, 1 in 256 for 24) or the run is seed-like. Only windows leaving
//!   ≤ 2 words over are tried, which keeps the checksum "lottery tickets" per run at 3 or fewer.
//! - **English BIP39 mnemonics with one or two misspelt words** (`mnemonic`): a word of 4–9
//!   letters outside the list but one edit from a wordlist word (a letter changed, added, left out,
//!   or two neighbours swapped: `sausge`, `thnak`) stands in a run in its place, at most twice. Such
//!   a run is reported when it has exactly 12–24 words with one misspelt word whose correction (of
//!   at most two) makes the checksum verify (`checksum_ok = true`), or when it is seed-like as rule
//!   2 asks (`checksum_ok = false`).
//! - **English BIP39 mnemonics written compactly** (`compact`), reported only when a checksum
//!   verifies, since nothing else marks them: the words **glued** into one run of letters
//!   (`legalwinnerthank…`, `LegalWinnerThank…`, 36 letters or more, or groups of glued words on
//!   two lines or in threes), which must split wholly into 12–24 wordlist words; and words **cut to their first four letters** (`lega winn than year …`,
//!   as steel backup plates keep them; BIP39 made the first four letters unique), in a run that
//!   may mix whole words and prefixes, with a verifying window leaving at most two words over.
//! - **Chinese BIP39 mnemonics** (Simplified and Traditional lists, one character per word). The
//!   lists hold the 2048 most common characters, so *any* Chinese sentence is a run of wordlist
//!   characters. Hence:
//!   - (a) single ideographs set apart by separators or numbering (`的 一 是 在 …`, `1.的 2.一 …`,
//!     `的!一!是…`), at least 12 of them → seed phrase (`checksum_ok` when a window verifies in the
//!     Simplified or Traditional list, under the same window rule as English). The first may be
//!     glued to the text before it and the last to the text after it (`助记词的 一 … 是谢谢`);
//!   - (b) contiguous ideographs (`的一是在不了有和人这中大`, or inside a sentence:
//!     `你好，我的是<mnemonic>请帮我看看`; groups set apart only by spaces or line breaks, as a
//!     backup card has them, `的一是在 不了有和 人这中大`, read as one run): every window of 12/15/18/21/24 characters whose
//!     checksum verifies and that **reads as random characters** is reported, only that window.
//!     The lists are sorted by frequency and a mnemonic draws from them uniformly, so it has few of
//!     the 256 commonest characters and almost no adjacent pair that is a word (a table of 85,212
//!     two-character words from jieba's dictionary, `data/zh-word-pairs.bin`); a sentence has many
//!     of both. A window a seed hint points at (`助记词：…`, `…是我的助记词`, the whole message or
//!     line, a value after a colon in a message that mentions a seed) may look a little less
//!     random. See `wordlists::looks_random` for the limits and what they were measured on.
//! - **Raw hex private keys**: a whole token of exactly 64 hex digits, optionally `0x`-prefixed,
//!   or hex groups separated by spaces, line breaks, `-` or `:` that add up to 64 digits. A
//!   transaction hash has exactly the same shape (Ethereum tx hashes are even `0x`-prefixed), and
//!   support needs tx hashes, so such a token is reported **only** when a key hint (`private key`,
//!   `privkey`, `secret key`, the word `key`/`keys` as in `key:` or `wallet key`, `私钥`, `密钥`,
//!   `秘钥`, …) is strictly closer to it than any tx hint (`tx`, `txid`, `hash`, `transaction`,
//!   `哈希`, `交易`, …). Distances count every key-shaped token, secret found or redaction label as
//!   one byte, and no hint inside those counts, so a redacted message reads as the original did.
//!   Without a key hint a 64-hex token is assumed to be a tx hash and left alone.
//! - **WIF private keys**: Base58 tokens of 51 chars starting with `5` (mainnet) or `9`
//!   (testnet), or 52 chars starting with `K`/`L` (mainnet) or `c` (testnet). Reported with
//!   `checksum_ok = true` when the Base58Check checksum (double SHA-256), version byte and
//!   compression flag verify; a token of the right shape with a bad checksum is reported only when
//!   the message has a key hint.
//! - **Extended private keys**: Base58 tokens starting with `xprv`, `yprv`, `zprv`, `tprv`,
//!   `uprv`, `vprv` (or SLIP-132 `Yprv`, `Zprv`, `Uprv`, `Vprv`) of 111 chars (Base58Check
//!   verified → `checksum_ok`), or truncated/mistyped ones of 50..=120 chars (always reported, since
//!   the prefix is unambiguous; `checksum_ok = false`). `xpub`/`ypub`/`zpub` are public and ignored.
//! - **A phrase split over messages** ([`find_secrets_with_history`]): the end of the
//!   conversation's recent messages and the new one are read as one text, so 6 + 6 words of a
//!   valid 12-word phrase are found (checksum verified across the join) and both parts redacted.
//!
//! Never reported: Bitcoin addresses (`1…`, `3…`, `bc1…`), Ethereum addresses (`0x` + 40 hex),
//! TRON addresses (`T…`, 34 chars), tx hashes without a key hint, extended public keys, numbers,
//! UIDs, amounts, ordinary English or Chinese sentences, our own redaction labels.
//!
//! # What this cannot catch (limitations)
//!
//! - Seed phrases with heavy typos or mixed with other words: a third misspelt word, or one two
//!   edits from any wordlist word, breaks the run (12 words become runs of 5 and 6 words, both too
//!   short); with two misspelt words and neither a list structure nor a seed hint, the phrase is
//!   not reported (the checksum is tried only for one).
//!   A *wrong but valid* word gives a bad checksum, which is only reported when the run is
//!   seed-like; an exact-length run with a bad checksum written as plain prose without any hint is
//!   deliberately not reported.
//! - Partial seeds of fewer than 12 words without a seed hint, or of fewer than 10 with one.
//! - Words in look-alike letters of other scripts (Cyrillic `а` for Latin `a`).
//! - Contiguous Chinese mnemonics with a bad checksum; about 7 % of valid 12-character ones inside
//!   other text without a hint (and 1 % next to a hint), whose characters happen to be common or
//!   to form words; a window found inside a sentence may take in a neighbouring character or two
//!   when a slightly longer window also verifies.
//! - BIP39 mnemonics in other languages (Japanese, Korean, Spanish, French, …) and non-BIP39
//!   seeds: Electrum seeds (English words but Electrum's own version checksum, so found only when
//!   seed-like), Monero 25-word seeds, SLIP-39 Shamir shares. Glued or four-letter words with a
//!   bad checksum (a typo, a missing word), and words glued to other text (`seedlegalwinner…`).
//! - Hex private keys without a key hint (indistinguishable from tx hashes), keys of other lengths,
//!   keys in other encodings (Base64, Solana's 88-char Base58 keypairs, BIP38 `6P…` keys, keystore
//!   JSON files and their passwords), and anything in images or screenshots.
//! - Hint detection is substring matching: a key hint elsewhere in the message can make a tx hash
//!   look like a key (harmless over-redaction); a closer tx hint can hide a key.
//!
//! # Cost
//!
//! Word lists are indexed once in [`LazyLock`](std::sync::LazyLock) hash maps; the word-pair table
//! (512 KiB as a bit matrix) is decoded the first time a Chinese window needs it. A message with
//! fewer than 10 runs of letters or digits, fewer than 10 ideographs, no run of 50 letters and
//! digits and fewer than 36 letters in runs of nine or more is rejected after one allocation-free pass; otherwise the scan is linear in the length
//! (README, "Secret redaction and fuzzing", has the measured figures).

mod compact;
mod hints;
mod history;
mod keys;
mod mnemonic;
mod text;
mod wordlists;

use std::ops::Range;

pub use history::{HistoryScan, find_secrets_with_history};

use hints::Context;
use text::Scan;

/// What kind of secret a span holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    SeedPhrase,
    PrivateKeyHex,
    PrivateKeyWif,
    ExtendedPrivateKey,
}

/// One secret found in a message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretSpan {
    pub kind: SecretKind,
    /// Byte range in the ORIGINAL text (valid char boundaries).
    pub range: Range<usize>,
    /// Number of mnemonic words for a seed phrase, 1 otherwise.
    pub words: usize,
    /// true when a BIP39 checksum verified (seed phrases) or a Base58Check checksum verified (WIF/xprv).
    pub checksum_ok: bool,
}

impl SecretSpan {
    /// The bracketed label [`redact`] puts in place of the secret.
    pub fn label(&self) -> String {
        match self.kind {
            SecretKind::SeedPhrase => {
                let unit = if self.words == 1 { "word" } else { "words" };
                format!("[redacted: seed phrase, {} {unit}]", self.words)
            }
            SecretKind::PrivateKeyHex | SecretKind::PrivateKeyWif => {
                "[redacted: private key]".to_owned()
            }
            SecretKind::ExtendedPrivateKey => "[redacted: extended private key]".to_owned(),
        }
    }
}

/// Replaces each span with its [`SecretSpan::label`] and returns the new text.
///
/// Robust to spans that are unsorted, overlapping, out of bounds or not on char boundaries: ranges
/// are clamped and widened to char boundaries, so nothing inside a span survives.
pub fn redact(text: &str, spans: &[SecretSpan]) -> String {
    let mut sorted: Vec<&SecretSpan> = spans.iter().collect();
    sorted.sort_by_key(|s| (s.range.start, s.range.end));
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0usize;
    for span in sorted {
        let mut start = span.range.start.min(text.len());
        let mut end = span.range.end.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        while !text.is_char_boundary(end) {
            end += 1;
        }
        if end <= cursor || end <= start {
            continue;
        }
        let start = start.max(cursor);
        out.push_str(&text[cursor..start]);
        out.push_str(&span.label());
        cursor = end;
    }
    out.push_str(&text[cursor..]);
    out
}

/// Text the secret scanner went through: every secret it found is replaced by its label. Only
/// this module builds one, so a function that takes a `Redacted` (the store, for what a user
/// wrote) cannot be handed raw text by mistake: the type says the scan happened.
///
/// Scanning is idempotent: labels are not secrets, so scanning text read back from storage again
/// (as recovery does) changes nothing but costs a scan.
///
/// ```
/// use kefu_nlu::secrets::Redacted;
/// let seed = "abandon ability able about above absent absorb abstract absurd abuse access accident";
/// let (text, found) = Redacted::scan(&format!("my seed is {seed}"));
/// assert_eq!(text.as_str(), "my seed is [redacted: seed phrase, 12 words]");
/// assert_eq!(found.len(), 1);
/// ```
///
/// Raw text cannot become a `Redacted` any other way:
///
/// ```compile_fail
/// let raw = kefu_nlu::secrets::Redacted("abandon ability able …".to_owned());
/// ```
///
/// ```compile_fail
/// let raw: kefu_nlu::secrets::Redacted = String::from("abandon ability able …").into();
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    /// Scans `text` and replaces each secret found with its label; also returns what was found.
    pub fn scan(text: &str) -> (Self, Vec<SecretSpan>) {
        let spans = find_secrets(text);
        let redacted = if spans.is_empty() {
            text.to_owned()
        } else {
            redact(text, &spans)
        };
        (Self(redacted), spans)
    }

    /// [`Redacted::scan`], keeping only the text.
    pub fn of(text: &str) -> Self {
        Self::scan(text).0
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::ops::Deref for Redacted {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Redacted {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Redacted> for String {
    fn from(r: Redacted) -> Self {
        r.0
    }
}

/// What [`redact_with_history`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitRedaction {
    /// The new message with the parts of split secrets in it redacted; `None` when it holds none.
    pub current: Option<Redacted>,
    /// The spans redacted in the new message (in its own bytes).
    pub spans: Vec<SecretSpan>,
    /// For each earlier message, its text with its parts redacted; `None` when it holds none.
    pub history: Vec<Option<Redacted>>,
}

/// A secret split over `text` and the user's earlier messages (see
/// [`find_secrets_with_history`]), redacted in every message that holds a part of it.
pub fn redact_with_history(history: &[&str], text: &Redacted) -> SplitRedaction {
    let scan = find_secrets_with_history(history, text.as_str());
    let history = history
        .iter()
        .zip(&scan.history)
        .map(|(earlier, spans)| (!spans.is_empty()).then(|| Redacted(redact(earlier, spans))))
        .collect();
    let current = (!scan.current.is_empty()).then(|| Redacted(redact(text, &scan.current)));
    SplitRedaction {
        current,
        spans: scan.current,
        history,
    }
}

/// Finds secrets in `text`; spans sorted by start, non-overlapping.
pub fn find_secrets(text: &str) -> Vec<SecretSpan> {
    if !text::worth_scanning(
        text,
        mnemonic::MIN_SEED_WORDS_STRONG,
        mnemonic::MIN_SEED_WORDS_STRONG,
    ) {
        return Vec::new();
    }
    scan_repeated(text)
}

/// [`scan_unchecked`], then again on what redaction leaves until that holds nothing more.
fn scan_repeated(text: &str) -> Vec<SecretSpan> {
    let mut spans = scan_unchecked(text);
    // One scan reports one phrase of a run of words, and a run can hold two (pasted one after the
    // other, or a phrase then a list of wordlist words): what redaction leaves is scanned again,
    // until it holds nothing more.
    for _ in 0..MAX_RESCANS {
        if spans.is_empty() {
            break;
        }
        let (redacted, labels) = redact_mapped(text, &spans);
        let more = scan_unchecked(&redacted);
        if more.is_empty() {
            break;
        }
        spans.extend(more.into_iter().map(|mut span| {
            span.range = back_to_original(&labels, &span.range);
            span
        }));
        spans = merge(spans);
    }
    spans
}

/// How many times [`find_secrets`] scans what redaction leaves.
const MAX_RESCANS: usize = 8;

/// Where a label went: (its range in the redacted text, its span's range in the original).
type LabelMap = Vec<(Range<usize>, Range<usize>)>;

/// [`redact`] for sorted, non-overlapping spans, with where each label went.
fn redact_mapped(text: &str, spans: &[SecretSpan]) -> (String, LabelMap) {
    let mut out = String::with_capacity(text.len());
    let mut labels = Vec::with_capacity(spans.len());
    let mut cursor = 0;
    for span in spans {
        out.push_str(&text[cursor..span.range.start]);
        let start = out.len();
        out.push_str(&span.label());
        labels.push((start..out.len(), span.range.clone()));
        cursor = span.range.end;
    }
    out.push_str(&text[cursor..]);
    (out, labels)
}

/// A range of the text [`redact_mapped`] made, in the original text: a label inside it stands
/// for its whole span.
fn back_to_original(labels: &LabelMap, range: &Range<usize>) -> Range<usize> {
    let map = |pos: usize, end: bool| {
        // Bytes of the original text minus bytes of the redacted text before `pos`.
        let mut shift: isize = 0;
        for (label, span) in labels {
            if pos <= label.start {
                break;
            }
            if pos < label.end {
                return if end { span.end } else { span.start };
            }
            shift += span.len() as isize - label.len() as isize;
        }
        pos.saturating_add_signed(shift)
    };
    map(range.start, false)..map(range.end, true)
}

/// [`find_secrets`] without the pre-check (a split phrase's parts are each too short for it).
fn scan_unchecked(text: &str) -> Vec<SecretSpan> {
    let scan = Scan::new(text);
    let mut ctx = Context::new(&scan);
    let mut spans = Vec::new();
    mnemonic::scan_english(&scan, &mut ctx, &mut spans);
    mnemonic::scan_english_misspelt(&scan, &mut ctx, &mut spans);
    mnemonic::scan_chinese_separated(&scan, &mut ctx, &mut spans);
    mnemonic::scan_chinese_contiguous(&scan, &mut ctx, &mut spans);
    compact::scan_compact(&scan, &mut spans);
    // Key decisions measure distances with the mnemonics found counted as one byte each.
    ctx.add_opaque(spans.iter().map(|s| s.range.clone()));
    keys::scan_keys(&scan, &mut ctx, &mut spans);
    for span in &mut spans {
        span.range = scan.folded.to_original(&span.range);
    }
    merge(spans)
}

/// Sorts spans and merges any overlap (keeping the first span's kind), so the result never
/// overlaps and still covers every detected byte.
fn merge(mut spans: Vec<SecretSpan>) -> Vec<SecretSpan> {
    spans.sort_by_key(|s| (s.range.start, std::cmp::Reverse(s.range.end)));
    let mut out: Vec<SecretSpan> = Vec::with_capacity(spans.len());
    for span in spans {
        match out.last_mut() {
            Some(last) if span.range.start < last.range.end => {
                last.range.end = last.range.end.max(span.range.end);
            }
            _ => out.push(span),
        }
    }
    out
}

/// The number of mnemonic words (English wordlist words and listed ideographs) in `text`: the
/// size of one part of a phrase split over messages.
fn mnemonic_words_in(text: &str) -> usize {
    Scan::new(text)
        .items
        .iter()
        .filter(|i| match i.kind {
            text::ItemKind::Word(idx) => idx.is_some(),
            text::ItemKind::Cjk(hans, hant) => hans.is_some() || hant.is_some(),
            _ => false,
        })
        .count()
}

#[cfg(test)]
mod tests;
