//! Detection of wallet secrets pasted into a support chat, so they can be redacted before the
//! message is stored, logged or relayed to a human agent.
//!
//! [`find_secrets`] returns byte ranges in the *original* text (always on char boundaries), sorted
//! and non-overlapping; [`redact`] replaces them with labels such as
//! `[redacted: seed phrase, 12 words]`.
//!
//! # What is detected
//!
//! - **English BIP39 mnemonics.** Words are maximal runs of letters (NFKC-normalised and
//!   lower-cased one token at a time, so `ＡＢＡＮＤＯＮ` and `Abandon` both count). A *run* is a
//!   sequence of wordlist words separated only by whitespace, commas, `;`, `.`, `:`, `-`, `|`, `/`,
//!   brackets, bullets and list numbering of one or two digits (`1. abandon 2. ability`,
//!   `1)abandon`, `(3) able`). The span goes from the first word to the last word, separators and
//!   numbering in between included. A run is reported when
//!   1. a window of 12/15/18/21/24 words **whose BIP39 checksum verifies** leaves at most two words
//!      of the run outside it (so `"<12 words> please help"` is found: `please` and `help` are
//!      themselves wordlist words) → `checksum_ok = true`, span = that window; or
//!   2. no window verifies but the run is **seed-like** and has at least 12 words (10 when it is
//!      both structured and hinted) → the whole run, `checksum_ok = false`. Seed-like means the run
//!      is *structured* — numbered (at least half of the gaps carry a number), one word per line,
//!      or every word comma-separated — or the message contains a *seed hint* (`seed`, `mnemonic`,
//!      `phrase`, `recovery`, `backup`, `助记词`, `种子`, `备份`, `恢复`, …) and fewer than a
//!      quarter of the run's words are frequent prose words (`that`, `this`, `you`, `can`, …, see
//!      `PROSE_WORDS`); or
//!   3. neither of the above, but a single line of the run passes rule 1 on its own (two seeds
//!      pasted on two lines).
//!
//!   **False-positive rule.** Ordinary English is broken up constantly by function words that are
//!   *not* in the list (`the`, `is`, `my`, `to`, `I`, `it`, `of`, `and`, `not`, `was`, `how`,
//!   `why`, `has`, `been`, `with`, `for`, `from`, `your`, `are`, `but`, `which`, `would`, …), so
//!   prose rarely yields 12 consecutive wordlist words. Beware that many other frequent words *are*
//!   in the list (`that`, `this`, `you`, `they`, `can`, `what`, `have`, `will`, `about`, `please`,
//!   `help`, `seed`, `phrase`, `key`, `private`, …). When prose does produce a long run (`again
//!   able about all any area army art best better black blue`), it is reported only if the
//!   checksum verifies (1 in 16 for 12 words, 1 in 256 for 24) or the run is seed-like as defined
//!   above. A bare prose-like run with a bad checksum is left alone, **even at exactly
//!   12/15/18/21/24 words and even when it is the whole message**; only windows leaving ≤ 2 words
//!   over are tried, which keeps the checksum "lottery tickets" per run at 3 or fewer. (Checked
//!   against ~400k lines and paragraphs of KB text and Debian documentation, with and without
//!   an added seed hint: no hit.)
//! - **Chinese BIP39 mnemonics** (Simplified and Traditional lists, one character per word). The
//!   lists hold the 2048 most common characters, so *any* Chinese sentence is a run of wordlist
//!   characters. Hence:
//!   - (a) single characters separated by whitespace, commas or numbering (`的 一 是 在 …`,
//!     `1.的 2.一 …`), at least 12 of them → seed phrase (`checksum_ok` when a window verifies in
//!     the Simplified or Traditional list, under the same window rule as English);
//!   - (b) contiguous characters (`的一是在不了有和人这中大`) are reported **only** when the
//!     candidate has exactly 12/15/18/21/24 characters, its checksum verifies, **and** it is
//!     anchored: it directly follows a seed hint (`助记词：…`, `我的助记词是…`, `助记词如下…`,
//!     `seed phrase: …`), or it is the whole message (apart from punctuation), or the message has
//!     a seed hint and the candidate is a whole line or follows a colon. A candidate is a whole
//!     run of CJK characters between punctuation, or the part of such a run after a hint. A seed
//!     hint *anywhere* in the message is not enough: in testing, "我忘记了助记词怎么办？以前备份在
//!     手机上面但是手机坏了，…" has a 15-character clause whose checksum happens to verify
//!     (the odds are 1/16 … 1/256 per clause).
//! - **Raw hex private keys**: a whole token of exactly 64 hex digits, optionally `0x`-prefixed.
//!   A transaction hash has exactly the same shape (Ethereum tx hashes are even `0x`-prefixed), and
//!   support needs tx hashes, so such a token is reported **only** when a key hint (`private key`,
//!   `privkey`, `priv key`, `secret key`, `私钥`, `密钥`, …) occurs in the message and is strictly
//!   closer to the token (in bytes) than any tx hint (`tx`, `txid`, `hash`, `transaction`, `哈希`,
//!   `交易`, …). Without a key hint a 64-hex token is assumed to be a tx hash and left alone.
//! - **WIF private keys**: Base58 tokens of 51 chars starting with `5` (mainnet) or `9`
//!   (testnet), or 52 chars starting with `K`/`L` (mainnet) or `c` (testnet). Reported with
//!   `checksum_ok = true` when the Base58Check checksum (double SHA-256), version byte and
//!   compression flag verify; a token of the right shape with a bad checksum is reported only when
//!   a key hint is present.
//! - **Extended private keys**: Base58 tokens starting with `xprv`, `yprv`, `zprv`, `tprv`,
//!   `uprv`, `vprv` (or SLIP-132 `Yprv`, `Zprv`, `Uprv`, `Vprv`) of 111 chars (Base58Check
//!   verified → `checksum_ok`), or truncated/mistyped ones of 50..=120 chars (always reported, since
//!   the prefix is unambiguous; `checksum_ok = false`). `xpub`/`ypub`/`zpub` are public and ignored.
//!
//! Never reported: Bitcoin addresses (`1…`, `3…`, `bc1…`), Ethereum addresses (`0x` + 40 hex),
//! TRON addresses (`T…`, 34 chars), tx hashes without a key hint, extended public keys, numbers,
//! UIDs, amounts, ordinary English or Chinese sentences.
//!
//! # What this cannot catch (limitations)
//!
//! - Seed phrases with heavy typos or mixed with other words: a misspelt word that is not in the
//!   list breaks the run (12 words with one typo become runs of 5 and 6 words, both too short).
//!   A *wrong but valid* word gives a bad checksum, which is only reported when the run is
//!   seed-like (hint, numbering, one word per line, comma list); an exact-length run with a bad
//!   checksum written as plain text without any hint is deliberately not reported.
//! - Partial seeds of fewer than 12 words (10 when numbered/one-per-line **and** hinted).
//! - Words glued to numbering on both sides (`1)abandon2)ability`) form one mixed token and are
//!   not recognised; `1)abandon 2)ability` is.
//! - Contiguous Chinese mnemonics with a bad checksum, or not anchored as described above.
//! - BIP39 mnemonics in other languages (Japanese, Korean, Spanish, French, …) and non-BIP39
//!   seeds: Electrum seeds (English words but Electrum's own version checksum, so found only when
//!   seed-like), Electrum "old" seeds, Monero 25-word seeds, other chain-specific phrases,
//!   SLIP-39 Shamir shares, abbreviated (4-letter) words.
//! - Hex private keys without a key hint (indistinguishable from tx hashes), keys shorter or longer
//!   than 64 hex digits, keys split by spaces or line breaks, keys in other encodings (Base64,
//!   Solana's 88-char Base58 keypairs, encrypted BIP38 `6P…` keys, keystore JSON files and their
//!   passwords), secrets split across several messages, and anything in images or screenshots.
//! - Hint detection is simple substring matching: a key hint elsewhere in the message can make a tx
//!   hash look like a key (harmless over-redaction); a closer tx hint can hide a key.
//!
//! # Cost
//!
//! Word lists are indexed once in [`LazyLock`] hash maps. A message with fewer than 10 word tokens,
//! fewer than 10 CJK characters and no token of 50+ characters is rejected after one allocation-free
//! pass (≈ 0.1 µs); otherwise the scan is linear (≈ 3–6 µs for a typical chat message in release
//! builds). Candidate checksums are pre-filtered with a local SHA-256 over the word indices, and
//! only candidates that pass are confirmed by `bip39::Mnemonic::parse_in_normalized`.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::LazyLock;

use bip39::{Language, Mnemonic};
use unicode_normalization::UnicodeNormalization;

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

/// Finds secrets in `text`; spans sorted by start, non-overlapping.
pub fn find_secrets(text: &str) -> Vec<SecretSpan> {
    if !worth_scanning(text) {
        return Vec::new();
    }
    let scan = Scan::new(text);
    let mut ctx = Context::new(text);
    let mut spans = Vec::new();
    scan_keys(&scan, &mut ctx, &mut spans);
    scan_english(&scan, &mut ctx, &mut spans);
    scan_chinese_separated(&scan, &mut ctx, &mut spans);
    scan_chinese_contiguous(&scan, &mut ctx, &mut spans);
    merge(spans)
}

// ---------------------------------------------------------------------------------------------
// Constants and lookup tables
// ---------------------------------------------------------------------------------------------

/// Valid BIP39 lengths, longest first (windows are tried in this order).
const MNEMONIC_LENGTHS: [usize; 5] = [24, 21, 18, 15, 12];
/// Minimum run length for a checksum-less seed phrase.
const MIN_SEED_WORDS: usize = 12;
/// Minimum run length when the run is both structured (numbered, one per line) and hinted.
const MIN_SEED_WORDS_STRONG: usize = 10;
/// How many run words may be left outside a checksum-verified window.
const MAX_LEFTOVER_WORDS: usize = 2;
/// Shortest token that can be a key (WIF = 51, hex = 64, xprv = 111, truncated xprv ≥ 50).
const MIN_KEY_TOKEN: usize = 50;

const SEED_HINTS: &[&str] = &[
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
const KEY_HINTS: &[&str] = &[
    "private key",
    "private-key",
    "private_key",
    "privatekey",
    "privkey",
    "priv key",
    "priv_key",
    "secret key",
    "secret_key",
    "secretkey",
    "私钥",
    "私鑰",
    "密钥",
    "密鑰",
];
/// Wordlist words that are frequent in ordinary English prose. A hinted (but unstructured) run with
/// a bad checksum in which more than a quarter of the words are from this list is prose, not a
/// seed: a random 12-word mnemonic has ≥ 4 of them with probability ≈ 0.05 %.
const PROSE_WORDS: &[&str] = &[
    "about", "again", "all", "also", "always", "any", "before", "between", "can", "come", "find",
    "few", "give", "good", "have", "help", "into", "just", "know", "like", "make", "more", "much",
    "must", "need", "never", "now", "off", "often", "one", "only", "other", "over", "own",
    "please", "same", "say", "since", "still", "such", "that", "then", "there", "they", "this",
    "three", "time", "two", "under", "until", "upon", "use", "very", "want", "way", "what", "when",
    "where", "will", "you",
];
const TX_HINTS: &[&str] = &["tx", "hash", "transaction", "哈希", "交易"];
/// Characters allowed between a Chinese seed hint and the mnemonic in a contiguous run (`助记词是…`).
const HINT_CONNECTORS: &[char] = &['词', '詞', '码', '碼', '是', '为', '為', '如', '下'];
const MAX_CONNECTORS: usize = 4;

static EN_INDEX: LazyLock<HashMap<&'static str, u16>> = LazyLock::new(|| {
    Language::English
        .word_list()
        .iter()
        .zip(0u16..)
        .map(|(w, i)| (*w, i))
        .collect()
});
static ZH_HANS_INDEX: LazyLock<HashMap<char, u16>> =
    LazyLock::new(|| zh_index(Language::SimplifiedChinese));
static ZH_HANT_INDEX: LazyLock<HashMap<char, u16>> =
    LazyLock::new(|| zh_index(Language::TraditionalChinese));

fn zh_index(lang: Language) -> HashMap<char, u16> {
    lang.word_list()
        .iter()
        .zip(0u16..)
        .filter_map(|(w, i)| w.chars().next().map(|c| (c, i)))
        .collect()
}

fn en_index(token: &str) -> Option<u16> {
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
        // Full-width or otherwise compatibility-encoded letters.
        let folded: String = token.nfkc().flat_map(char::to_lowercase).collect();
        if folded.is_ascii() && (3..=8).contains(&folded.len()) {
            EN_INDEX.get(folded.as_str()).copied()
        } else {
            None
        }
    }
}

/// CJK unified ideographs (BMP blocks, extension A, compatibility, supplementary planes).
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2FFFF}')
}

/// Characters that may separate the words of a pasted mnemonic.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ',' | '，'
                | '、'
                | ';'
                | '；'
                | '.'
                | '。'
                | ':'
                | '：'
                | '-'
                | '|'
                | '/'
                | '#'
                | '('
                | ')'
                | '（'
                | '）'
                | '['
                | ']'
                | '【'
                | '】'
                | '*'
                | '•'
                | '·'
                | '_'
        )
}

fn is_comma(c: char) -> bool {
    matches!(c, ',' | '，' | '、' | ';' | '；')
}

fn is_base58(b: u8) -> bool {
    b.is_ascii_alphanumeric() && !matches!(b, b'0' | b'O' | b'I' | b'l')
}

// ---------------------------------------------------------------------------------------------
// Scanning
// ---------------------------------------------------------------------------------------------

/// Allocation-free pre-check: can this text hold a secret at all?
fn worth_scanning(text: &str) -> bool {
    let (mut tokens, mut cjk, mut token_len, mut max_ascii_token) =
        (0usize, 0usize, 0usize, 0usize);
    let mut token_ascii = true;
    for c in text.chars() {
        if !is_cjk(c) && c.is_alphanumeric() {
            if token_len == 0 {
                tokens += 1;
                token_ascii = true;
            }
            token_len += 1;
            token_ascii &= c.is_ascii();
            if token_ascii {
                max_ascii_token = max_ascii_token.max(token_len);
            }
        } else {
            token_len = 0;
            cjk += usize::from(is_cjk(c));
        }
        if tokens >= MIN_SEED_WORDS_STRONG
            || cjk >= MIN_SEED_WORDS_STRONG
            || max_ascii_token >= MIN_KEY_TOKEN
        {
            return true;
        }
    }
    false
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    /// A token made only of letters; its English wordlist index if any.
    Word(Option<u16>),
    /// One or two digits: list numbering.
    Num,
    /// Any other alphanumeric token (mixed, long numbers, …).
    Token,
    /// One CJK ideograph with its Simplified / Traditional wordlist indices.
    Cjk(Option<u16>, Option<u16>),
    /// A separator character.
    Sep { newline: bool, comma: bool },
    /// Anything else (breaks runs).
    Break,
}

#[derive(Debug, Clone)]
struct Item {
    range: Range<usize>,
    kind: ItemKind,
}

#[derive(Debug)]
struct Scan<'a> {
    text: &'a str,
    items: Vec<Item>,
    /// Indices into `items` of ASCII tokens long enough to be keys.
    key_tokens: Vec<usize>,
}

impl<'a> Scan<'a> {
    fn new(text: &'a str) -> Self {
        let mut scan = Scan {
            text,
            items: Vec::new(),
            key_tokens: Vec::new(),
        };
        let mut token_start: Option<usize> = None;
        for (i, c) in text.char_indices() {
            let cjk = is_cjk(c);
            if !cjk && c.is_alphanumeric() {
                token_start.get_or_insert(i);
                continue;
            }
            if let Some(start) = token_start.take() {
                scan.push_token(start..i);
            }
            let range = i..i + c.len_utf8();
            let kind = if cjk {
                ItemKind::Cjk(
                    ZH_HANS_INDEX.get(&c).copied(),
                    ZH_HANT_INDEX.get(&c).copied(),
                )
            } else if is_separator(c) {
                ItemKind::Sep {
                    newline: c == '\n' || c == '\r',
                    comma: is_comma(c),
                }
            } else {
                ItemKind::Break
            };
            scan.items.push(Item { range, kind });
        }
        if let Some(start) = token_start {
            scan.push_token(start..text.len());
        }
        scan
    }

    fn push_token(&mut self, range: Range<usize>) {
        let token = &self.text[range.clone()];
        let kind = if token.chars().all(char::is_alphabetic) {
            ItemKind::Word(en_index(token))
        } else if token.chars().all(char::is_numeric) && token.chars().count() <= 2 {
            ItemKind::Num
        } else {
            ItemKind::Token
        };
        if token.len() >= MIN_KEY_TOKEN && token.is_ascii() {
            self.key_tokens.push(self.items.len());
        }
        self.items.push(Item { range, kind });
    }
}

/// Lazily computed facts about the whole message.
#[derive(Debug)]
struct Context<'a> {
    text: &'a str,
    seed_hint: Option<bool>,
    key_hints: Option<Vec<Range<usize>>>,
    tx_hints: Option<Vec<Range<usize>>>,
}

impl<'a> Context<'a> {
    fn new(text: &'a str) -> Self {
        Context {
            text,
            seed_hint: None,
            key_hints: None,
            tx_hints: None,
        }
    }

    fn seed_hint(&mut self) -> bool {
        let text = self.text;
        *self
            .seed_hint
            .get_or_insert_with(|| contains_any(text, SEED_HINTS))
    }

    fn key_hints(&mut self) -> &[Range<usize>] {
        let text = self.text;
        self.key_hints
            .get_or_insert_with(|| hint_ranges(text, KEY_HINTS))
    }

    fn tx_hints(&mut self) -> &[Range<usize>] {
        let text = self.text;
        self.tx_hints
            .get_or_insert_with(|| hint_ranges(text, TX_HINTS))
    }

    /// True when a key hint exists and is strictly closer to `range` than every tx hint.
    fn key_hint_wins(&mut self, range: &Range<usize>) -> bool {
        let Some(key) = nearest(self.key_hints(), range) else {
            return false;
        };
        nearest(self.tx_hints(), range).is_none_or(|tx| key < tx)
    }
}

fn nearest(hints: &[Range<usize>], range: &Range<usize>) -> Option<usize> {
    hints
        .iter()
        .map(|h| {
            range
                .start
                .saturating_sub(h.end)
                .max(h.start.saturating_sub(range.end))
        })
        .min()
}

/// Byte offsets where `needle` occurs in `hay`, ASCII case-insensitively. ASCII needles must start
/// at a word boundary (so `tx` does not match inside `context`).
fn occurrences<'h>(hay: &'h str, needle: &'h str) -> impl Iterator<Item = usize> + 'h {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    let ascii_word = n.first().is_some_and(u8::is_ascii_alphanumeric);
    (0..(h.len() + 1).saturating_sub(n.len())).filter(move |&i| {
        h[i..i + n.len()].eq_ignore_ascii_case(n)
            && (!ascii_word || i == 0 || !h[i - 1].is_ascii_alphanumeric())
    })
}

fn contains_any(hay: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| occurrences(hay, n).next().is_some())
}

fn hint_ranges(hay: &str, needles: &[&str]) -> Vec<Range<usize>> {
    needles
        .iter()
        .flat_map(|n| occurrences(hay, n).map(move |i| i..i + n.len()))
        .collect()
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

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

const XPRV_PREFIXES: &[&str] = &[
    "xprv", "yprv", "zprv", "tprv", "uprv", "vprv", "Yprv", "Zprv", "Uprv", "Vprv",
];

fn scan_keys(scan: &Scan<'_>, ctx: &mut Context<'_>, spans: &mut Vec<SecretSpan>) {
    for &i in &scan.key_tokens {
        let range = scan.items[i].range.clone();
        let token = &scan.text[range.clone()];
        let found = if let Some(ok) = extended_private_key(token) {
            Some((SecretKind::ExtendedPrivateKey, ok))
        } else if is_hex_key_shape(token) {
            ctx.key_hint_wins(&range)
                .then_some((SecretKind::PrivateKeyHex, false))
        } else if let Some(ok) = wif_shape(token) {
            (ok || !ctx.key_hints().is_empty()).then_some((SecretKind::PrivateKeyWif, ok))
        } else {
            None
        };
        if let Some((kind, checksum_ok)) = found {
            spans.push(SecretSpan {
                kind,
                range,
                words: 1,
                checksum_ok,
            });
        }
    }
}

fn is_hex_key_shape(token: &str) -> bool {
    let hex = token
        .strip_prefix("0x")
        .or_else(|| token.strip_prefix("0X"))
        .unwrap_or(token);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `Some(checksum_ok)` when `token` has the shape of a WIF key.
fn wif_shape(token: &str) -> Option<bool> {
    let b = token.as_bytes();
    let (version, compressed) = match (b.len(), b.first()?) {
        (51, b'5') => (0x80, false),
        (51, b'9') => (0xEF, false),
        (52, b'K' | b'L') => (0x80, true),
        (52, b'c') => (0xEF, true),
        _ => return None,
    };
    if !b.iter().copied().all(is_base58) {
        return None;
    }
    let ok = base58check_payload(token).is_some_and(|p| {
        p.first() == Some(&version)
            && if compressed {
                p.len() == 34 && p[33] == 0x01
            } else {
                p.len() == 33
            }
    });
    Some(ok)
}

/// `Some(checksum_ok)` when `token` looks like an extended private key.
fn extended_private_key(token: &str) -> Option<bool> {
    if !XPRV_PREFIXES.iter().any(|p| token.starts_with(p)) || !token.bytes().all(is_base58) {
        return None;
    }
    match token.len() {
        111 => Some(base58check_payload(token).is_some_and(|p| p.len() == 78)),
        50..=120 => Some(false),
        _ => None,
    }
}

/// Decodes Base58Check and returns the payload when the 4-byte double-SHA-256 checksum matches.
fn base58check_payload(s: &str) -> Option<Vec<u8>> {
    let data = base58_decode(s)?;
    if data.len() < 5 {
        return None;
    }
    let (payload, check) = data.split_at(data.len() - 4);
    let hash = sha256::digest(&sha256::digest(payload));
    (hash[..4] == *check).then(|| payload.to_vec())
}

fn base58_decode(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    // Big-endian base-256 accumulator.
    let mut bytes: Vec<u8> = Vec::with_capacity(s.len());
    for c in s.bytes() {
        let mut carry = ALPHABET.iter().position(|&a| a == c)? as u32;
        for b in bytes.iter_mut().rev() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = s.bytes().take_while(|&c| c == b'1').count();
    let mut out = vec![0u8; zeros];
    out.extend(bytes);
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Mnemonics
// ---------------------------------------------------------------------------------------------

/// One word of a candidate run: its byte range and wordlist index per language.
#[derive(Debug, Clone)]
struct RunWord {
    range: Range<usize>,
    /// `[English]` or `[Simplified, Traditional]` indices.
    idx: [Option<u16>; 2],
}

#[derive(Debug, Default)]
struct Run {
    words: Vec<RunWord>,
    /// Number of gaps (between consecutive words) containing numbering / a newline / a comma.
    num_gaps: usize,
    newline_gaps: usize,
    comma_gaps: usize,
    /// Index into `words` where a gap containing a newline precedes the word.
    line_starts: Vec<usize>,
    // State of the gap being read.
    gap_num: bool,
    gap_newline: bool,
    gap_comma: bool,
}

impl Run {
    fn push(&mut self, word: RunWord) {
        if !self.words.is_empty() {
            self.num_gaps += usize::from(self.gap_num);
            self.comma_gaps += usize::from(self.gap_comma);
            if self.gap_newline {
                self.newline_gaps += 1;
                self.line_starts.push(self.words.len());
            }
        }
        self.gap_num = false;
        self.gap_newline = false;
        self.gap_comma = false;
        self.words.push(word);
    }

    fn gap(&mut self, kind: ItemKind) {
        match kind {
            ItemKind::Num => self.gap_num = true,
            ItemKind::Sep { newline, comma } => {
                self.gap_newline |= newline;
                self.gap_comma |= comma;
            }
            _ => {}
        }
    }

    /// Numbered, one word per line, or a comma-separated list.
    fn structured(&self) -> bool {
        let gaps = self.words.len().saturating_sub(1);
        gaps > 0
            && (self.num_gaps * 2 >= gaps || self.newline_gaps == gaps || self.comma_gaps == gaps)
    }
}

/// Which language(s) a run is checked against.
#[derive(Debug, Clone, Copy)]
enum Script {
    English,
    Chinese,
}

impl Script {
    fn languages(self) -> &'static [(usize, Language)] {
        match self {
            Script::English => &[(0, Language::English)],
            Script::Chinese => &[
                (0, Language::SimplifiedChinese),
                (1, Language::TraditionalChinese),
            ],
        }
    }
}

/// Does `words` form a valid BIP39 mnemonic (length and checksum) in one of the script's lists?
fn checksum_verifies(script: Script, words: &[RunWord]) -> bool {
    if !MNEMONIC_LENGTHS.contains(&words.len()) {
        return false;
    }
    script.languages().iter().any(|&(slot, lang)| {
        // Cheap pre-filter with our own SHA-256 (rejects 15/16 … 255/256 of non-mnemonics without
        // bip39's linear Chinese word search); bip39's parser stays the authority.
        if !quick_checksum(words.iter().map(|w| w.idx[slot])) {
            return false;
        }
        let list = lang.word_list();
        let mut phrase = String::with_capacity(words.len() * 9);
        for w in words {
            let Some(i) = w.idx[slot] else {
                return false;
            };
            if !phrase.is_empty() {
                phrase.push(' ');
            }
            phrase.push_str(list[usize::from(i)]);
        }
        Mnemonic::parse_in_normalized(lang, &phrase).is_ok()
    })
}

/// BIP39 checksum over word indices: the first `n / 3` bits of SHA-256(entropy) must equal the
/// trailing bits of the index stream. `None` (word not in this list) fails.
fn quick_checksum(indices: impl ExactSizeIterator<Item = Option<u16>>) -> bool {
    let n = indices.len();
    let mut bits = [0u8; 24 * 11 / 8];
    for (i, idx) in indices.enumerate() {
        let Some(idx) = idx else {
            return false;
        };
        for j in 0..11 {
            if idx >> (10 - j) & 1 == 1 {
                let bit = i * 11 + j;
                bits[bit / 8] |= 0x80 >> (bit % 8);
            }
        }
    }
    let entropy_len = n / 3 * 4;
    let hash = sha256::digest(&bits[..entropy_len]);
    (0..n / 3).all(|i| {
        let want = hash[i / 8] >> (7 - i % 8) & 1;
        let bit = entropy_len * 8 + i;
        let got = bits[bit / 8] >> (7 - bit % 8) & 1;
        want == got
    })
}

fn span_of(words: &[RunWord], checksum_ok: bool) -> Option<SecretSpan> {
    let (first, last) = (words.first()?, words.last()?);
    Some(SecretSpan {
        kind: SecretKind::SeedPhrase,
        range: first.range.start..last.range.end,
        words: words.len(),
        checksum_ok,
    })
}

/// Rule 1: the longest, then earliest, checksum-verified window leaving ≤ 2 words of `words` over.
fn verified_window(script: Script, words: &[RunWord]) -> Option<SecretSpan> {
    let n = words.len();
    MNEMONIC_LENGTHS
        .iter()
        .filter(|&&len| len <= n && n - len <= MAX_LEFTOVER_WORDS)
        .flat_map(|&len| (0..=n - len).map(move |start| start..start + len))
        .find(|w| checksum_verifies(script, &words[w.clone()]))
        .and_then(|w| span_of(&words[w], true))
}

fn evaluate_run(
    script: Script,
    run: &Run,
    always_seed_like: bool,
    ctx: &mut Context<'_>,
    spans: &mut Vec<SecretSpan>,
) {
    let n = run.words.len();
    if n < MIN_SEED_WORDS_STRONG {
        return;
    }
    if n >= MIN_SEED_WORDS
        && let Some(span) = verified_window(script, &run.words)
    {
        spans.push(span);
        return;
    }
    let structured = run.structured();
    let hint = ctx.seed_hint();
    let min = if structured && hint {
        MIN_SEED_WORDS_STRONG
    } else {
        MIN_SEED_WORDS
    };
    let hinted_seed =
        hint && !(matches!(script, Script::English) && prose_words(&run.words) * 4 > n);
    if (always_seed_like || structured || hinted_seed) && n >= min {
        spans.extend(span_of(&run.words, false));
        return;
    }
    // Rule 3: a seed per line inside a longer prose-like run.
    if run.line_starts.is_empty() {
        return;
    }
    let mut bounds = vec![0];
    bounds.extend(run.line_starts.iter().copied());
    bounds.push(n);
    for pair in bounds.windows(2) {
        if let [a, b] = *pair
            && b - a >= MIN_SEED_WORDS
        {
            spans.extend(verified_window(script, &run.words[a..b]));
        }
    }
}

/// How many words of an English run are frequent prose words.
fn prose_words(words: &[RunWord]) -> usize {
    let list = Language::English.word_list();
    words
        .iter()
        .filter(|w| w.idx[0].is_some_and(|i| PROSE_WORDS.contains(&list[usize::from(i)])))
        .count()
}

fn scan_english(scan: &Scan<'_>, ctx: &mut Context<'_>, spans: &mut Vec<SecretSpan>) {
    let mut run = Run::default();
    for item in &scan.items {
        match item.kind {
            ItemKind::Word(Some(i)) => run.push(RunWord {
                range: item.range.clone(),
                idx: [Some(i), None],
            }),
            kind @ (ItemKind::Num | ItemKind::Sep { .. }) => run.gap(kind),
            _ => evaluate_run(
                Script::English,
                &std::mem::take(&mut run),
                false,
                ctx,
                spans,
            ),
        }
    }
    evaluate_run(Script::English, &run, false, ctx, spans);
}

fn is_cjk_item(item: Option<&Item>) -> bool {
    item.is_some_and(|i| matches!(i.kind, ItemKind::Cjk(..)))
}

/// (a) Single Chinese characters separated by whitespace, commas or numbering.
fn scan_chinese_separated(scan: &Scan<'_>, ctx: &mut Context<'_>, spans: &mut Vec<SecretSpan>) {
    let mut run = Run::default();
    for (k, item) in scan.items.iter().enumerate() {
        match item.kind {
            ItemKind::Cjk(hans, hant) => {
                let isolated = !is_cjk_item(k.checked_sub(1).and_then(|p| scan.items.get(p)))
                    && !is_cjk_item(scan.items.get(k + 1));
                if isolated && (hans.is_some() || hant.is_some()) {
                    run.push(RunWord {
                        range: item.range.clone(),
                        idx: [hans, hant],
                    });
                } else {
                    evaluate_run(Script::Chinese, &std::mem::take(&mut run), true, ctx, spans);
                }
            }
            kind @ (ItemKind::Num | ItemKind::Sep { .. }) => run.gap(kind),
            _ => evaluate_run(Script::Chinese, &std::mem::take(&mut run), true, ctx, spans),
        }
    }
    evaluate_run(Script::Chinese, &run, true, ctx, spans);
}

/// (b) Contiguous Chinese characters: exact length, verified checksum, hint or nothing else.
fn scan_chinese_contiguous(scan: &Scan<'_>, ctx: &mut Context<'_>, spans: &mut Vec<SecretSpan>) {
    let items = &scan.items;
    let mut k = 0;
    while k < items.len() {
        if !matches!(items[k].kind, ItemKind::Cjk(..)) {
            k += 1;
            continue;
        }
        let start = k;
        while k < items.len() && matches!(items[k].kind, ItemKind::Cjk(..)) {
            k += 1;
        }
        if k - start >= MIN_SEED_WORDS {
            check_contiguous(scan, &items[start..k], ctx, spans);
        }
    }
}

fn check_contiguous(
    scan: &Scan<'_>,
    segment: &[Item],
    ctx: &mut Context<'_>,
    spans: &mut Vec<SecretSpan>,
) {
    let text = scan.text;
    let seg_start = segment.first().map_or(0, |i| i.range.start);
    let seg_end = segment.last().map_or(0, |i| i.range.end);
    let seg_text = &text[seg_start..seg_end];
    // (start index in `segment`, anchored to a hint right before it)
    let mut candidates: Vec<(usize, bool)> = Vec::with_capacity(6);
    // The part right after the last seed hint inside the segment, e.g. 我的助记词是<mnemonic>,
    // possibly after a few connector characters (词, 是, 如下, …).
    if let Some(after) = SEED_HINTS
        .iter()
        .filter_map(|h| {
            occurrences(seg_text, h)
                .last()
                .map(|i| seg_start + i + h.len())
        })
        .max()
    {
        let first = segment.partition_point(|i| i.range.start < after);
        candidates.push((first, true));
        for (from, item) in segment.iter().enumerate().skip(first).take(MAX_CONNECTORS) {
            if !text[item.range.clone()]
                .chars()
                .next()
                .is_some_and(|c| HINT_CONNECTORS.contains(&c))
            {
                break;
            }
            candidates.push((from + 1, true));
        }
    }
    candidates.push((0, false));
    for (from, anchored) in candidates {
        let part = &segment[from..];
        if !MNEMONIC_LENGTHS.contains(&part.len()) {
            continue;
        }
        let words: Vec<RunWord> = part
            .iter()
            .map(|i| match i.kind {
                ItemKind::Cjk(hans, hant) => RunWord {
                    range: i.range.clone(),
                    idx: [hans, hant],
                },
                _ => RunWord {
                    range: i.range.clone(),
                    idx: [None, None],
                },
            })
            .collect();
        if !checksum_verifies(Script::Chinese, &words) {
            continue;
        }
        let range = part.first().map_or(0, |i| i.range.start)..seg_end;
        let accepted = anchored
            || preceded_by_hint(&text[..range.start])
            || only_punctuation_outside(text, &range)
            || (ctx.seed_hint()
                && (preceded_by_colon(&text[..range.start]) || is_whole_line(text, &range)));
        if accepted {
            spans.extend(span_of(&words, true));
            return;
        }
    }
}

fn is_punctuation_or_space(c: char) -> bool {
    !c.is_alphanumeric() && !is_cjk(c)
}

/// Does `before` end with a seed hint, possibly followed by connectors and punctuation
/// (`助记词：`, `seed phrase:`, `助记词如下，`)?
fn preceded_by_hint(before: &str) -> bool {
    let mut s = before.trim_end_matches(is_punctuation_or_space);
    for _ in 0..=MAX_CONNECTORS {
        let b = s.as_bytes();
        if SEED_HINTS.iter().any(|h| {
            b.len() >= h.len() && b[b.len() - h.len()..].eq_ignore_ascii_case(h.as_bytes())
        }) {
            return true;
        }
        match s.strip_suffix(|c: char| HINT_CONNECTORS.contains(&c)) {
            Some(rest) => s = rest.trim_end_matches(is_punctuation_or_space),
            None => return false,
        }
    }
    false
}

/// Is the candidate presented as a value (`…：<mnemonic>`)?
fn preceded_by_colon(before: &str) -> bool {
    before.trim_end().ends_with([':', '：'])
}

/// Is the candidate alone on its line (apart from whitespace and punctuation)?
fn is_whole_line(text: &str, range: &Range<usize>) -> bool {
    let line_start = text[..range.start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[range.end..]
        .find('\n')
        .map_or(text.len(), |i| range.end + i);
    text[line_start..range.start]
        .chars()
        .all(is_punctuation_or_space)
        && text[range.end..line_end]
            .chars()
            .all(is_punctuation_or_space)
}

/// Is `text` nothing but `range` plus whitespace and punctuation?
fn only_punctuation_outside(text: &str, range: &Range<usize>) -> bool {
    text[..range.start].chars().all(is_punctuation_or_space)
        && text[range.end..].chars().all(is_punctuation_or_space)
}

// ---------------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), for Base58Check. bip39 does not re-export its hash crate.
// ---------------------------------------------------------------------------------------------

mod sha256 {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    const H0: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];

    pub(super) fn digest(data: &[u8]) -> [u8; 32] {
        let mut h = H0;
        let bit_len = (data.len() as u64).wrapping_mul(8);
        let mut msg = data.to_vec();
        msg.push(0x80);
        while msg.len() % 64 != 56 {
            msg.push(0);
        }
        msg.extend_from_slice(&bit_len.to_be_bytes());
        for block in msg.chunks_exact(64) {
            compress(&mut h, block);
        }
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    fn compress(h: &mut [u32; 8], block: &[u8]) {
        let mut w = [0u32; 64];
        for (wi, b) in w.iter_mut().zip(block.chunks_exact(4)) {
            *wi = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        }
        for t in 16..64 {
            let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
            let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16]
                .wrapping_add(s0)
                .wrapping_add(w[t - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = *h;
        for t in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[t])
                .wrapping_add(w[t]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABANDON_12: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    const LEGAL_12: &str =
        "legal winner thank year wave sausage worth useful legal winner thank yellow";
    const WIF_UNCOMPRESSED: &str = "5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ";
    const WIF_COMPRESSED: &str = "KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98617";
    /// BIP32 test vector 1, master key (chain m).
    const XPRV: &str = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi";
    /// The same key with a corrupted tail (112 chars): right prefix and alphabet, wrong checksum.
    const XPRV_MISTYPED: &str = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LN8hWzJ8zxbHeE9UgfR7Lqw2mYB3XUWHFmf";
    const XPUB: &str = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8";
    const HEX64: &str = "e9873d79c6d87dc0fb6a5778633389f4453213303da61f20bd67fc233aa33262";

    fn mnemonic(lang: Language, entropy: &[u8]) -> String {
        match Mnemonic::from_entropy_in(lang, entropy) {
            Ok(m) => m.to_string(),
            Err(e) => panic!("bad test entropy: {e}"),
        }
    }

    fn one(text: &str) -> SecretSpan {
        let spans = find_secrets(text);
        assert_eq!(
            spans.len(),
            1,
            "expected exactly one span in {text:?}, got {spans:?}"
        );
        spans[0].clone()
    }

    fn covered<'a>(text: &'a str, span: &SecretSpan) -> &'a str {
        &text[span.range.clone()]
    }

    fn assert_none(text: &str) {
        let spans = find_secrets(text);
        assert!(spans.is_empty(), "false positive in {text:?}: {spans:?}");
    }

    fn is_valid_english(words: &str) -> bool {
        Mnemonic::parse_in_normalized(Language::English, words).is_ok()
    }

    // ----- English mnemonics -----

    #[test]
    fn a_valid_12_word_english_mnemonic_is_found_with_its_checksum() {
        let s = one(ABANDON_12);
        assert_eq!(s.kind, SecretKind::SeedPhrase);
        assert_eq!(s.range, 0..ABANDON_12.len());
        assert_eq!(s.words, 12);
        assert!(s.checksum_ok);
    }

    #[test]
    fn a_valid_24_word_mnemonic_generated_from_entropy_is_found() {
        let m = mnemonic(Language::English, &[0x5a; 32]);
        let text = format!("hi, {m}");
        let s = one(&text);
        assert_eq!(covered(&text, &s), m);
        assert_eq!((s.words, s.checksum_ok), (24, true));
    }

    #[test]
    fn every_valid_length_from_entropy_is_found() {
        for (len, bytes) in [(12, 16), (15, 20), (18, 24), (21, 28), (24, 32)] {
            for seed in 0u8..4 {
                let entropy: Vec<u8> = (0..bytes)
                    .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
                    .collect();
                let m = mnemonic(Language::English, &entropy);
                let s = one(&m);
                assert_eq!((s.words, s.checksum_ok), (len, true), "{m}");
            }
        }
    }

    #[test]
    fn numbered_mnemonics_are_found_and_the_span_includes_inner_numbering() {
        let words: Vec<&str> = LEGAL_12.split(' ').collect();
        let dotted: String = words
            .iter()
            .enumerate()
            .map(|(i, w)| format!("{}. {w} ", i + 1))
            .collect();
        let s = one(&dotted);
        assert_eq!((s.words, s.checksum_ok), (12, true));
        assert_eq!(
            covered(&dotted, &s),
            dotted.trim_end().trim_start_matches("1. ")
        );
        let paren: String = words
            .iter()
            .enumerate()
            .map(|(i, w)| format!("{})\t{w}\n", i + 1))
            .collect();
        assert!(one(&paren).checksum_ok);
        let tight: String = words
            .iter()
            .enumerate()
            .map(|(i, w)| format!("{}){w} ", i + 1))
            .collect();
        assert!(one(&tight).checksum_ok);
    }

    #[test]
    fn comma_separated_mnemonics_are_found() {
        let text = format!("words: {}.", LEGAL_12.replace(' ', ", "));
        let s = one(&text);
        assert_eq!(covered(&text, &s), LEGAL_12.replace(' ', ", "));
        assert!(s.checksum_ok);
        let chinese_commas = LEGAL_12.replace(' ', "，");
        assert!(one(&chinese_commas).checksum_ok);
    }

    #[test]
    fn a_mnemonic_embedded_in_a_sentence_is_found_without_the_surrounding_words() {
        let text = format!("my seed is {LEGAL_12} please help");
        let s = one(&text);
        assert_eq!(covered(&text, &s), LEGAL_12);
        assert_eq!((s.words, s.checksum_ok), (12, true));
        // "please" and "help" are wordlist words, but a verified window may leave two words over.
        assert_eq!(
            redact(&text, &[s]),
            "my seed is [redacted: seed phrase, 12 words] please help"
        );
    }

    #[test]
    fn a_mnemonic_followed_by_please_help_is_found_even_without_a_hint() {
        let text = format!("{ABANDON_12} please help");
        assert_eq!(covered(&text, &one(&text)), ABANDON_12);
    }

    #[test]
    fn upper_case_and_full_width_mnemonics_are_found() {
        let upper = LEGAL_12.to_uppercase();
        assert!(one(&upper).checksum_ok);
        let title: String = LEGAL_12
            .split(' ')
            .map(|w| format!("{}{} ", w[..1].to_uppercase(), &w[1..]))
            .collect();
        assert!(one(&title).checksum_ok);
        let full_width: String = ABANDON_12
            .chars()
            .map(|c| {
                if c == ' ' {
                    '\u{3000}'
                } else {
                    char::from_u32(c as u32 - 0x61 + 0xFF41).unwrap_or(c)
                }
            })
            .collect();
        let text = format!("助记词：{full_width}");
        let s = one(&text);
        assert_eq!(covered(&text, &s), full_width);
        assert!(s.checksum_ok);
    }

    #[test]
    fn one_word_per_line_is_found() {
        let text = format!("here you go\n{}\n", LEGAL_12.replace(' ', "\n"));
        let s = one(&text);
        assert_eq!(s.words, 12);
        assert!(s.checksum_ok);
    }

    #[test]
    fn a_numbered_mnemonic_with_a_wrong_word_is_still_flagged_without_checksum() {
        let broken = ABANDON_12.replace("about", "zoo");
        assert!(!is_valid_english(&broken));
        let numbered: String = broken
            .split(' ')
            .enumerate()
            .map(|(i, w)| format!("{}. {w}\n", i + 1))
            .collect();
        let s = one(&numbered);
        assert_eq!((s.words, s.checksum_ok), (12, false));
    }

    #[test]
    fn a_12_word_run_with_a_bad_checksum_is_flagged_when_the_message_mentions_a_seed() {
        let broken = LEGAL_12.replace("yellow", "zoo");
        assert!(!is_valid_english(&broken));
        let text = format!("is this recovery phrase ok? {broken}");
        let s = one(&text);
        assert!(!s.checksum_ok);
        assert!(covered(&text, &s).ends_with(&broken));
        let zh = format!("我的助记词：{broken}");
        assert_eq!(covered(&zh, &one(&zh)), broken);
    }

    #[test]
    fn partial_seed_phrases_are_flagged_only_when_seed_like() {
        let eleven: Vec<&str> = LEGAL_12.split(' ').take(11).collect();
        let numbered: String = eleven
            .iter()
            .enumerate()
            .map(|(i, w)| format!("{}. {w}\n", i + 1))
            .collect();
        // 11 numbered words with a hint: flagged.
        let hinted = format!("seed phrase (I lost the last word):\n{numbered}");
        assert!(
            find_secrets(&hinted)
                .iter()
                .any(|s| s.words >= 11 && !s.checksum_ok)
        );
        // 11 plain words without a hint: not flagged.
        assert_none(&eleven.join(" "));
        // 13 numbered words: the whole run.
        let thirteen = format!("{ABANDON_12} zoo");
        let numbered13: String = thirteen
            .split(' ')
            .enumerate()
            .map(|(i, w)| format!("{}. {w} ", i + 1))
            .collect();
        let s = one(&numbered13);
        assert!(s.words >= 12);
        assert!(!redact(&numbered13, &[s]).contains("abandon"));
    }

    #[test]
    fn a_run_of_more_than_24_words_is_flagged_whole_when_seed_like() {
        let long = format!(
            "{} {}",
            mnemonic(Language::English, &[7; 32]),
            "zoo zoo zoo"
        );
        let text = format!("backup: {long}");
        let s = one(&text);
        assert_eq!(covered(&text, &s), long);
        assert_eq!(s.words, 27);
    }

    #[test]
    fn two_mnemonics_on_two_lines_are_both_found() {
        let a = mnemonic(Language::English, &[1; 16]);
        let b = mnemonic(Language::English, &[2; 16]);
        let text = format!("{a}\n{b}");
        let spans = find_secrets(&text);
        let joined = format!("{a} {b}");
        if is_valid_english(&joined) {
            return; // astronomically unlikely; the whole run would then be one 24-word mnemonic
        }
        assert_eq!(spans.len(), 2, "{spans:?}");
        assert_eq!(covered(&text, &spans[0]), a);
        assert_eq!(covered(&text, &spans[1]), b);
        assert!(spans.iter().all(|s| s.checksum_ok));
    }

    // ----- Chinese mnemonics -----

    #[test]
    fn a_separated_simplified_chinese_mnemonic_is_found() {
        let m = mnemonic(Language::SimplifiedChinese, &[0x11; 16]);
        let text = format!("帮我看看这个 {m} 谢谢");
        let s = one(&text);
        assert_eq!(covered(&text, &s), m);
        assert_eq!((s.words, s.checksum_ok), (12, true));
    }

    #[test]
    fn a_separated_traditional_chinese_mnemonic_is_found() {
        let m = mnemonic(Language::TraditionalChinese, &[0x93; 32]);
        let s = one(&m);
        assert_eq!((s.words, s.checksum_ok), (24, true));
    }

    #[test]
    fn numbered_and_comma_separated_chinese_characters_are_found() {
        let m = mnemonic(Language::SimplifiedChinese, &[0x42; 16]);
        let numbered: String = m
            .split(' ')
            .enumerate()
            .map(|(i, w)| format!("{}.{w} ", i + 1))
            .collect();
        assert!(one(&numbered).checksum_ok);
        let commas = m.replace(' ', "，");
        assert!(one(&commas).checksum_ok);
        // Separated single characters are seed-like even with a bad checksum.
        assert!(
            !one("的 一 是 在 不 了 有 和 人 这 中 大").checksum_ok
                || is_valid_zh("的一是在不了有和人这中大")
        );
    }

    fn is_valid_zh(contiguous: &str) -> bool {
        let spaced: Vec<String> = contiguous.chars().map(String::from).collect();
        Mnemonic::parse_in_normalized(Language::SimplifiedChinese, &spaced.join(" ")).is_ok()
    }

    #[test]
    fn a_contiguous_chinese_mnemonic_is_found_with_a_hint() {
        let m = mnemonic(Language::SimplifiedChinese, &[0x3c; 16]).replace(' ', "");
        for text in [
            format!("我的助记词：{m}"),
            format!("我的助记词是{m}"),
            format!("助记词如下{m}，还能找回吗"),
        ] {
            let s = one(&text);
            assert_eq!(covered(&text, &s), m, "{text}");
            assert_eq!((s.words, s.checksum_ok), (12, true));
        }
    }

    #[test]
    fn a_contiguous_chinese_mnemonic_alone_in_a_message_is_found() {
        let m = mnemonic(Language::SimplifiedChinese, &[0x77; 20]).replace(' ', "");
        let text = format!(" {m}。\n");
        assert_eq!(covered(&text, &one(&text)), m);
    }

    #[test]
    fn a_contiguous_chinese_mnemonic_without_hint_inside_other_text_is_not_found() {
        // Documented limitation: indistinguishable from an ordinary sentence.
        let m = mnemonic(Language::SimplifiedChinese, &[0x77; 16]).replace(' ', "");
        assert_none(&format!("你好，{m}，谢谢"));
    }

    // ----- Keys -----

    #[test]
    fn a_hex_key_with_a_private_key_hint_is_found() {
        let text = format!("private key: {HEX64}");
        let s = one(&text);
        assert_eq!(s.kind, SecretKind::PrivateKeyHex);
        assert_eq!(covered(&text, &s), HEX64);
        assert_eq!(redact(&text, &[s]), "private key: [redacted: private key]");
    }

    #[test]
    fn a_0x_prefixed_hex_key_with_a_chinese_hint_is_found() {
        let key = format!("0x{}", HEX64.to_uppercase());
        let text = format!("这是我的私钥{key}能帮我恢复吗");
        let s = one(&text);
        assert_eq!(
            (s.kind, covered(&text, &s)),
            (SecretKind::PrivateKeyHex, key.as_str())
        );
    }

    #[test]
    fn wif_keys_are_found_with_a_verified_checksum() {
        for wif in [WIF_UNCOMPRESSED, WIF_COMPRESSED] {
            let text = format!("what is this? {wif}");
            let s = one(&text);
            assert_eq!(
                (s.kind, s.checksum_ok, covered(&text, &s)),
                (SecretKind::PrivateKeyWif, true, wif)
            );
        }
    }

    #[test]
    fn a_wif_shaped_token_with_a_bad_checksum_needs_a_key_hint() {
        let bad = WIF_COMPRESSED.replace("98617", "98618");
        assert_none(&bad);
        let s = one(&format!("my privkey {bad}"));
        assert_eq!((s.kind, s.checksum_ok), (SecretKind::PrivateKeyWif, false));
    }

    #[test]
    fn an_xprv_is_found_with_a_verified_checksum_and_a_truncated_one_without() {
        let text = format!("xprv: {XPRV}\n");
        let s = one(&text);
        assert_eq!(
            (s.kind, s.checksum_ok, covered(&text, &s)),
            (SecretKind::ExtendedPrivateKey, true, XPRV)
        );
        assert_eq!(
            redact(&text, &[s]),
            "xprv: [redacted: extended private key]\n"
        );
        let s = one(&XPRV[..80]);
        assert_eq!(
            (s.kind, s.checksum_ok),
            (SecretKind::ExtendedPrivateKey, false)
        );
        let s = one(XPRV_MISTYPED);
        assert_eq!(
            (s.kind, s.checksum_ok, s.range),
            (
                SecretKind::ExtendedPrivateKey,
                false,
                0..XPRV_MISTYPED.len()
            )
        );
    }

    // ----- Redaction -----

    #[test]
    fn redaction_labels_are_as_documented() {
        let seed = SecretSpan {
            kind: SecretKind::SeedPhrase,
            range: 0..1,
            words: 24,
            checksum_ok: true,
        };
        assert_eq!(seed.label(), "[redacted: seed phrase, 24 words]");
        let hex = SecretSpan {
            kind: SecretKind::PrivateKeyHex,
            words: 1,
            ..seed.clone()
        };
        assert_eq!(hex.label(), "[redacted: private key]");
        let wif = SecretSpan {
            kind: SecretKind::PrivateKeyWif,
            words: 1,
            ..seed.clone()
        };
        assert_eq!(wif.label(), "[redacted: private key]");
        let x = SecretSpan {
            kind: SecretKind::ExtendedPrivateKey,
            words: 1,
            ..seed
        };
        assert_eq!(x.label(), "[redacted: extended private key]");
    }

    #[test]
    fn redacting_a_message_with_several_secrets_leaves_no_part_of_them() {
        let zh = mnemonic(Language::SimplifiedChinese, &[0x21; 16]);
        let text = format!(
            "Hello! seed:\n1. {}\nxprv {XPRV}, wif {WIF_UNCOMPRESSED}, 私钥：{HEX64}；中文 {zh} 谢谢 txid 0x{HEX64}",
            LEGAL_12.replace(' ', "\n2. ")
        );
        let spans = find_secrets(&text);
        assert_eq!(spans.len(), 5, "{spans:?}");
        assert!(spans.windows(2).all(|p| p[0].range.end <= p[1].range.start));
        assert!(spans.iter().all(|s| text.is_char_boundary(s.range.start) && text.is_char_boundary(s.range.end)));
        let out = redact(&text, &spans);
        for secret in [XPRV, WIF_UNCOMPRESSED] {
            for window in secret.as_bytes().windows(8) {
                assert!(
                    !out.as_bytes().windows(8).any(|w| w == window),
                    "leak of {secret} in {out}"
                );
            }
        }
        for word in ["legal", "winner", "thank", "sausage", "yellow"] {
            assert!(!out.contains(word), "{word} leaked: {out}");
        }
        assert!(!out.contains(&zh));
        assert!(
            out.contains("中文 [redacted: seed phrase, 12 words] 谢谢"),
            "{out}"
        );
        // The tx hash right after "txid" is kept: it is a tx hash, not the key.
        assert!(out.ends_with(&format!("txid 0x{HEX64}")), "{out}");
        assert_eq!(out.matches("[redacted: private key]").count(), 2);
    }

    #[test]
    fn redact_tolerates_unsorted_overlapping_and_misaligned_spans() {
        let text = "ab私钥cd";
        let spans = [
            SecretSpan {
                kind: SecretKind::PrivateKeyHex,
                range: 3..4,
                words: 1,
                checksum_ok: false,
            },
            SecretSpan {
                kind: SecretKind::PrivateKeyHex,
                range: 2..6,
                words: 1,
                checksum_ok: false,
            },
            SecretSpan {
                kind: SecretKind::PrivateKeyHex,
                range: 7..100,
                words: 1,
                checksum_ok: false,
            },
        ];
        let out = redact(text, &spans);
        assert!(
            !out.contains('私') && !out.contains('钥') && !out.contains("cd"),
            "{out}"
        );
        assert!(out.starts_with("ab[redacted: private key]"));
        assert_eq!(redact(text, &[]), text);
    }

    // ----- False positives -----

    #[test]
    fn an_ordinary_12_word_english_sentence_is_not_flagged() {
        assert_none("I have tried to withdraw my USDT three times and it always fails");
    }

    #[test]
    fn ordinary_english_paragraphs_are_not_flagged() {
        for text in [
            "Hello, I sent some ETH to my wallet about two hours ago but the balance still shows zero, what should I do?",
            "Please help me, my account is locked after I changed my phone number and I can not log in anymore.",
            "Why is the withdrawal fee so high today? Last week it was much lower and nothing else has changed.",
            "I want to close my account and move all my funds to another exchange, how long does it take?",
            "My deposit has been pending for a long time, the network shows enough confirmations already, please check it.",
            "Can you explain what a seed phrase is and why I should never share it with anyone, even support?",
            "I lost my phone and my recovery phrase, is there any way to get my coins back? Thank you",
        ] {
            assert_none(text);
        }
    }

    #[test]
    fn a_prose_like_run_of_wordlist_words_with_a_bad_checksum_and_no_hint_is_not_flagged() {
        let run = "again able about all any area army art best better black blue";
        assert!(run.split(' ').all(|w| en_index(w).is_some()));
        assert!(
            !is_valid_english(run),
            "pick another example: this one has a valid checksum"
        );
        assert_none(run);
        assert_none(&format!("So {run}."));
        let longer = "again able about all any area army art best better black blue bird fire gold glass rain";
        assert_none(longer);
    }

    #[test]
    fn ordinary_chinese_sentences_are_not_flagged() {
        for text in [
            "我的提币一直没有到账怎么办请帮我看看谢谢",
            "你好，我昨天充值了一笔USDT，到现在还没有到账，麻烦帮我查一下是什么原因，谢谢！",
            "为什么我的账户被冻结了？我没有做任何违规的操作，请尽快给我一个解释，不然我要投诉了。",
            "提现手续费太高了，上个星期还没有这么贵，现在转一次要花好多钱，能不能降低一点费用呢",
            "我忘记了助记词怎么办？以前备份在手机上面但是手机坏了，请问还有没有办法找回我的钱包",
            "我在交易所买的币转到钱包以后一直显示确认中，已经过去三个小时了，区块浏览器上也查不到这笔交易的记录，是不是转错网络了？",
            "您好请问如何开通合约交易以及杠杆倍数最高可以设置多少倍风险提示在哪里可以看到呢我是新手不太懂",
            "客服你好",
            "人民币充值到账时间一般是多久",
        ] {
            assert_none(text);
        }
    }

    #[test]
    fn addresses_are_not_flagged() {
        for text in [
            "send to 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa please",
            "my address 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
            "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297",
            "ETH: 0x742d35Cc6634C0532925a3b844Bc454e4438f44e private key is safe",
            "TRON 地址 TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7 私钥我不会给你",
        ] {
            assert_none(text);
        }
    }

    #[test]
    fn transaction_hashes_are_not_flagged() {
        assert_none(&format!("txid: {HEX64}"));
        assert_none(HEX64);
        assert_none(&format!("my deposit 0x{HEX64} is missing"));
        assert_none(&format!("交易哈希：0x{HEX64}"));
        // A key hint elsewhere loses to a closer tx hint.
        assert_none(&format!(
            "my private key was stolen! here is the hacker's tx hash: 0x{HEX64}"
        ));
    }

    #[test]
    fn extended_public_keys_are_not_flagged() {
        assert_none(&format!("my xpub is {XPUB}"));
        assert_none("what is an xprv? is it the same as zprv");
    }

    #[test]
    fn numbers_uids_and_amounts_are_not_flagged() {
        for text in [
            "UID 123456789, withdrew 1,234.5678 USDT at 2024-05-01 12:30:45, fee 1 USDT, order 9876543210123456789",
            "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24",
            "0.00012345 BTC ≈ 8.12 USD; 100000000000000000000000000000000000000000000000000000 wei",
            "order id 2f1b6a0c-4e3a-4d2b-9a7e-0c5d3b2a1f00",
        ] {
            assert_none(text);
        }
    }

    // ----- Internals -----

    #[test]
    fn sha256_matches_the_fips_180_4_test_vectors() {
        let hex = |d: [u8; 32]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(sha256::digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(sha256::digest(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            hex(sha256::digest(&[b'a'; 1_000])),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
        );
    }

    #[test]
    fn the_quick_checksum_agrees_with_bip39() {
        let list = Language::English.word_list();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let (mut agree, mut valid) = (0, 0);
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
            assert_eq!(
                quick_checksum(idx.iter().map(|&i| Some(i))),
                expected,
                "{phrase:?}"
            );
            agree += 1;
            valid += usize::from(expected);
        }
        assert_eq!(agree, 2_000);
        assert!(valid > 10, "the sample should contain some valid mnemonics");
        let m = mnemonic(Language::English, &[0xab; 32]);
        let idx: Vec<Option<u16>> = m.split(' ').map(en_index).collect();
        assert!(quick_checksum(idx.into_iter()));
    }

    #[test]
    fn prose_words_are_all_in_the_wordlist() {
        assert!(PROSE_WORDS.iter().all(|w| en_index(w).is_some()));
        assert_none(
            "about my seed phrase:      that they must include this license text.  You can also distribute",
        );
    }

    #[test]
    fn base58check_decodes_known_keys() {
        let payload = base58check_payload(WIF_UNCOMPRESSED).unwrap_or_default();
        assert_eq!(payload.len(), 33);
        assert_eq!(payload[0], 0x80);
        assert_eq!(payload[1..3], [0x0c, 0x28]);
        assert_eq!(base58check_payload(XPRV).map(|p| p.len()), Some(78));
        assert_eq!(base58_decode("1112"), Some(vec![0, 0, 0, 1]));
        assert_eq!(base58_decode("0OIl"), None);
    }

    #[test]
    fn short_messages_take_the_fast_path() {
        assert!(!worth_scanning("where is my withdrawal?"));
        assert!(!worth_scanning("我的币没到账"));
        assert!(worth_scanning(HEX64));
        assert!(worth_scanning(ABANDON_12));
    }
}
