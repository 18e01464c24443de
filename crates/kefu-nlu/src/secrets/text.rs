//! The text as detection reads it, and its items.
//!
//! [`Folded`] is the message after compatibility folding (NFKD per character, so `ＡＢＡＮＤＯＮ`,
//! `①` and compatibility ideographs become their plain forms; diacritics dropped, so `lègal` reads
//! `legal`), with every invisible character (zero-width space and joiners, word joiner, BOM, soft
//! hyphen, bidi controls, variation selectors…) replaced by one marker. Every folded byte remembers
//! the byte range of the original character it came from, so whatever is found maps back to a range
//! of the ORIGINAL text that covers the secret and the odd characters inside it.
//!
//! [`Scan`] cuts the folded text into items: words (runs of letters), numbers, CJK ideographs and
//! separators. Anything that is not a letter, a digit or an ideograph separates — whitespace,
//! punctuation, quotes, `+`, `~`, emoji… — so `legal!winner` and `1)legal2)winner` are two words. An
//! invisible character inside a run of letters is ambiguous: `le​gal` hides one word, `legal​winner`
//! two; the run is cut into the fewest pieces that are wordlist words (see
//! [`split_at_invisibles`]). Our own redaction labels (`[redacted: private key]`) are one opaque
//! item, so redacted text never forms a new secret with its neighbours.

use std::borrow::Cow;
use std::ops::Range;

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

use super::wordlists::{ZH_HANS_INDEX, ZH_HANT_INDEX, en_index};

/// Stands in the folded text for any invisible character.
pub(super) const INVISIBLE: char = '\u{200B}';

/// Characters that render as nothing (or almost) and are used to break up or glue text.
pub(super) fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                    // soft hyphen
        | '\u{034F}'                  // combining grapheme joiner
        | '\u{061C}'                  // Arabic letter mark
        | '\u{115F}' | '\u{1160}'     // Hangul fillers
        | '\u{17B4}' | '\u{17B5}'     // Khmer inherent vowels
        | '\u{180B}'..='\u{180F}'     // Mongolian variation selectors and vowel separator
        | '\u{200B}'..='\u{200F}'     // zero-width space, ZWNJ, ZWJ, LRM, RLM
        | '\u{202A}'..='\u{202E}'     // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}'     // word joiner, invisible operators
        | '\u{2066}'..='\u{206F}'     // bidi isolates, deprecated format characters
        | '\u{3164}'                  // Hangul filler
        | '\u{FE00}'..='\u{FE0F}'     // variation selectors
        | '\u{FEFF}'                  // BOM / zero-width no-break space
        | '\u{FFA0}'                  // half-width Hangul filler
        | '\u{FFF9}'..='\u{FFFB}'     // interlinear annotation controls
        | '\u{1BCA0}'..='\u{1BCA3}'   // shorthand format controls
        | '\u{1D173}'..='\u{1D17A}'   // musical format controls
        | '\u{E0000}'..='\u{E007F}'   // tag characters
        | '\u{E0100}'..='\u{E01EF}'   // variation selectors supplement
    )
}

/// CJK unified ideographs (BMP blocks, extension A, compatibility, supplementary planes).
pub(super) fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{323AF}')
}

fn is_letter(c: char) -> bool {
    c.is_alphabetic() && !is_cjk(c)
}

/// The message as detection reads it, mapped back to the original bytes.
#[derive(Debug)]
pub(super) struct Folded<'a> {
    pub original: &'a str,
    pub text: Cow<'a, str>,
    /// For each byte of `text`, the original range of the character it came from; empty when
    /// `text` is the original (ASCII input needs no folding).
    origin: Vec<Range<usize>>,
}

impl<'a> Folded<'a> {
    pub fn new(original: &'a str) -> Self {
        if original.is_ascii() {
            return Folded {
                original,
                text: Cow::Borrowed(original),
                origin: Vec::new(),
            };
        }
        let mut text = String::with_capacity(original.len());
        let mut origin = Vec::with_capacity(original.len());
        let mut last_kept: Option<char> = None;
        for (i, c) in original.char_indices() {
            let range = i..i + c.len_utf8();
            if c.is_ascii() {
                push_folded(&mut text, &mut origin, c, &range);
                last_kept = Some(c);
            } else if is_invisible(c) {
                if last_kept == Some(INVISIBLE) {
                    // Consecutive invisible characters are one marker, which covers them all.
                    let start = origin.last().map_or(i, |r| r.start);
                    let len = INVISIBLE.len_utf8();
                    let n = origin.len();
                    for r in &mut origin[n - len..] {
                        *r = start..range.end;
                    }
                } else {
                    push_folded(&mut text, &mut origin, INVISIBLE, &range);
                    last_kept = Some(INVISIBLE);
                }
            } else {
                decompose_compatible(c, |d| {
                    // A mark after a letter is a diacritic: dropped. A mark on its own separates.
                    if is_combining_mark(d) && last_kept.is_some_and(is_letter) {
                        return;
                    }
                    push_folded(&mut text, &mut origin, d, &range);
                    last_kept = Some(d);
                });
            }
        }
        Folded {
            original,
            text: Cow::Owned(text),
            origin,
        }
    }

    /// The original byte range of a range of the folded text.
    pub fn to_original(&self, range: &Range<usize>) -> Range<usize> {
        if self.origin.is_empty() {
            return range.clone();
        }
        match (self.origin.get(range.start), range.end.checked_sub(1)) {
            (Some(first), Some(last)) if range.end > range.start => {
                first.start..self.origin.get(last).map_or(self.original.len(), |r| r.end)
            }
            _ => 0..0,
        }
    }
}

fn push_folded(text: &mut String, origin: &mut Vec<Range<usize>>, c: char, from: &Range<usize>) {
    for _ in 0..c.len_utf8() {
        origin.push(from.clone());
    }
    text.push(c);
}

/// One item of the folded text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ItemKind {
    /// A run of letters; its English wordlist index if any.
    Word(Option<u16>),
    /// One or two digits: list numbering.
    Num,
    /// A longer number.
    Number,
    /// One CJK ideograph with its Simplified / Traditional wordlist indices.
    Cjk(Option<u16>, Option<u16>),
    /// A separator character (anything that is not a letter, digit or ideograph), or an invisible
    /// character between two items (`invisible`).
    Sep {
        newline: bool,
        comma: bool,
        space: bool,
        invisible: bool,
    },
    /// One of our own redaction labels: breaks every run.
    Label,
}

/// An item and its range in the FOLDED text.
#[derive(Debug, Clone)]
pub(super) struct Item {
    pub range: Range<usize>,
    pub kind: ItemKind,
}

/// Shortest token that can be a key (WIF = 51, hex = 64, xprv = 111, truncated xprv ≥ 50).
pub(super) const MIN_KEY_TOKEN: usize = 50;

/// The folded text cut into items, plus the tokens long enough to be keys.
#[derive(Debug)]
pub(super) struct Scan<'a> {
    pub folded: Folded<'a>,
    pub items: Vec<Item>,
    /// Runs of ASCII letters and digits (invisible characters inside skipped) of at least
    /// [`MIN_KEY_TOKEN`] characters: (folded range, the token without invisible characters).
    pub key_tokens: Vec<(Range<usize>, String)>,
    /// Folded ranges of our own redaction labels.
    pub labels: Vec<Range<usize>>,
}

impl<'a> Scan<'a> {
    pub fn new(original: &'a str) -> Self {
        let folded = Folded::new(original);
        let labels = label_ranges(&folded.text);
        let mut scan = Scan {
            items: Vec::with_capacity(folded.text.len() / 3),
            key_tokens: Vec::new(),
            labels,
            folded,
        };
        scan.cut_items();
        scan.find_key_tokens();
        scan
    }

    /// The folded text.
    pub fn text(&self) -> &str {
        &self.folded.text
    }

    fn cut_items(&mut self) {
        let text: &str = &self.folded.text;
        let mut items = Vec::with_capacity(text.len() / 3);
        let mut labels = self.labels.iter().peekable();
        // Letters of the current word: (folded range of each piece between invisible characters).
        let mut word: Vec<Range<usize>> = Vec::new();
        let mut digits: Option<Range<usize>> = None;
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if let Some(label) = labels.peek()
                && label.start == i
            {
                flush_word(text, &mut word, &mut items);
                flush_digits(&mut digits, &mut items);
                items.push(Item {
                    range: (*label).clone(),
                    kind: ItemKind::Label,
                });
                while chars.peek().is_some_and(|&(j, _)| j < label.end) {
                    chars.next();
                }
                labels.next();
                continue;
            }
            let end = i + c.len_utf8();
            if is_letter(c) {
                flush_digits(&mut digits, &mut items);
                match word.last_mut() {
                    Some(piece) if piece.end == i => piece.end = end,
                    _ => word.push(i..end),
                }
                continue;
            }
            if c == INVISIBLE && !word.is_empty() {
                // Maybe inside a word: decided when the word ends.
                continue;
            }
            flush_word(text, &mut word, &mut items);
            if c.is_numeric() {
                match &mut digits {
                    Some(d) => d.end = end,
                    None => digits = Some(i..end),
                }
                continue;
            }
            flush_digits(&mut digits, &mut items);
            let kind = if is_cjk(c) {
                ItemKind::Cjk(
                    ZH_HANS_INDEX.get(&c).copied(),
                    ZH_HANT_INDEX.get(&c).copied(),
                )
            } else {
                ItemKind::Sep {
                    newline: matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}' | '\u{85}'),
                    comma: matches!(c, ',' | '，' | '、' | ';' | '；'),
                    space: c.is_whitespace(),
                    invisible: c == INVISIBLE,
                }
            };
            items.push(Item {
                range: i..end,
                kind,
            });
        }
        flush_word(text, &mut word, &mut items);
        flush_digits(&mut digits, &mut items);
        self.items = items;
    }

    fn find_key_tokens(&mut self) {
        let text: &str = &self.folded.text;
        let mut start: Option<usize> = None;
        let mut token = String::new();
        let mut last_end = 0;
        for (i, c) in text
            .char_indices()
            .chain(std::iter::once((text.len(), ' ')))
        {
            if c.is_ascii_alphanumeric() {
                start.get_or_insert(i);
                token.push(c);
                last_end = i + 1;
            } else if c == INVISIBLE && start.is_some() {
                continue;
            } else if let Some(s) = start.take() {
                if token.len() >= MIN_KEY_TOKEN && !self.in_label(s) {
                    self.key_tokens
                        .push((s..last_end, std::mem::take(&mut token)));
                }
                token.clear();
            }
        }
    }

    /// Is the folded byte offset inside one of our labels?
    pub fn in_label(&self, offset: usize) -> bool {
        self.labels.iter().any(|l| l.contains(&offset))
    }
}

fn flush_digits(digits: &mut Option<Range<usize>>, items: &mut Vec<Item>) {
    if let Some(range) = digits.take() {
        let kind = if range.len() <= 2 {
            ItemKind::Num
        } else {
            ItemKind::Number
        };
        items.push(Item { range, kind });
    }
}

fn flush_word(text: &str, pieces: &mut Vec<Range<usize>>, items: &mut Vec<Item>) {
    match pieces.len() {
        0 => {}
        1 => {
            let range = pieces[0].clone();
            let kind = ItemKind::Word(en_index(&text[range.clone()]));
            items.push(Item { range, kind });
        }
        _ => split_at_invisibles(text, pieces, items),
    }
    pieces.clear();
}

/// Letters broken by invisible characters: from the left, the longest group of consecutive
/// pieces that spells a wordlist word becomes one word (`le​gal` → `legal`); a piece that starts
/// no word stays a word of its own (`legal​winner` → `legal`, `winner`). An invisible character
/// that split two words becomes a separator item.
fn split_at_invisibles(text: &str, pieces: &[Range<usize>], items: &mut Vec<Item>) {
    let mut joined = String::with_capacity(16);
    let mut i = 0;
    while i < pieces.len() {
        let mut best: Option<(usize, u16)> = None;
        joined.clear();
        for (j, piece) in pieces.iter().enumerate().skip(i) {
            joined.push_str(&text[piece.clone()]);
            if joined.len() > 8 * 4 {
                break;
            }
            if let Some(idx) = en_index(&joined) {
                best = Some((j, idx));
            }
        }
        let (last, idx) = best.map_or((i, None), |(j, idx)| (j, Some(idx)));
        if i > 0 {
            items.push(Item {
                range: pieces[i - 1].end..pieces[i].start,
                kind: ItemKind::Sep {
                    newline: false,
                    comma: false,
                    space: false,
                    invisible: true,
                },
            });
        }
        items.push(Item {
            range: pieces[i].start..pieces[last].end,
            kind: ItemKind::Word(idx),
        });
        i = last + 1;
    }
}

/// The labels [`super::redact`] writes, found in (folded) text so that a redacted message stays
/// clean: `[redacted: private key]`, `[redacted: extended private key]`,
/// `[redacted: seed phrase, N word(s)]`.
fn label_ranges(text: &str) -> Vec<Range<usize>> {
    const OPEN: &str = "[redacted: ";
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = text[from..].find(OPEN) {
        let start = from + pos;
        let rest = &text[start + OPEN.len()..];
        let len = ["private key]", "extended private key]"]
            .iter()
            .find(|l| rest.starts_with(*l))
            .map(|l| l.len())
            .or_else(|| {
                let tail = rest.strip_prefix("seed phrase, ")?;
                let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
                if !(1..=3).contains(&digits) {
                    return None;
                }
                let unit = [" words]", " word]"]
                    .into_iter()
                    .find(|u| tail[digits..].starts_with(u))?;
                Some("seed phrase, ".len() + digits + unit.len())
            });
        match len {
            Some(len) => {
                let end = start + OPEN.len() + len;
                out.push(start..end);
                from = end;
            }
            None => from = start + OPEN.len(),
        }
    }
    out
}

/// Allocation-free pre-check: can this text hold a secret at all? Counts runs of letters and runs
/// of digits as tokens (so `legal1winner2…` counts its words), ideographs, the longest run of
/// letters and digits (keys), and the letters in runs longer than any word (glued words); invisible characters and marks are skipped like the scan skips them.
pub(super) fn worth_scanning(text: &str, min_tokens: usize, min_cjk: usize) -> bool {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Letter,
        Digit,
        Other,
    }
    let (mut tokens, mut cjk, mut alnum_run) = (0usize, 0usize, 0usize);
    // Letters in runs of more than eight (no single word), which glued words make.
    let (mut letter_run, mut glued) = (0usize, 0usize);
    let mut last = Class::Other;
    for c in text.chars() {
        if is_invisible(c) || is_combining_mark(c) {
            continue;
        }
        let class = if is_cjk(c) {
            cjk += 1;
            Class::Other
        } else if c.is_alphabetic() {
            Class::Letter
        } else if c.is_numeric() {
            Class::Digit
        } else {
            Class::Other
        };
        if class == Class::Letter {
            letter_run += 1;
            if letter_run == 9 {
                glued += 9;
            } else if letter_run > 9 {
                glued += 1;
            }
        } else {
            letter_run = 0;
        }
        if class == Class::Other {
            alnum_run = 0;
        } else {
            alnum_run += 1;
            tokens += usize::from(class != last);
        }
        last = class;
        if tokens >= min_tokens
            || cjk >= min_cjk
            || alnum_run >= MIN_KEY_TOKEN
            || glued >= super::compact::MIN_GLUED_LETTERS
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<(&str, bool)> {
        let scan = Scan::new(text);
        scan.items
            .iter()
            .filter_map(|i| match i.kind {
                ItemKind::Word(idx) => {
                    Some((&text[scan.folded.to_original(&i.range)], idx.is_some()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn folding_maps_every_folded_byte_back_to_its_original_character() {
        let text = "ＬＥＧＡＬ wìnner\u{200B}\u{200B}thank ①";
        let folded = Folded::new(text);
        assert_eq!(folded.text, "LEGAL winner\u{200B}thank 1");
        let legal = 0.."LEGAL".len();
        assert_eq!(&text[folded.to_original(&legal)], "ＬＥＧＡＬ");
        // The accent is dropped from the folded text but stays inside the original range.
        let winner = 6..12;
        assert_eq!(&text[folded.to_original(&winner)], "wìnner");
        // Two invisible characters became one marker that covers both.
        let marker = 12..15;
        assert_eq!(&text[folded.to_original(&marker)], "\u{200B}\u{200B}");
    }

    #[test]
    fn any_non_letter_separates_words() {
        let got = words("legal!winner\"thank\"+year~wave😀sausage1worth");
        let names: Vec<&str> = got.iter().map(|(w, _)| *w).collect();
        assert_eq!(
            names,
            [
                "legal", "winner", "thank", "year", "wave", "sausage", "worth"
            ]
        );
        assert!(got.iter().all(|(_, known)| *known));
    }

    #[test]
    fn invisible_characters_inside_a_word_are_skipped_and_between_words_separate() {
        let got = words(
            "le\u{200B}gal win\u{AD}ner legal\u{200B}winner aban\u{2060}don\u{200B}ability zz\u{200B}thank",
        );
        assert_eq!(
            got,
            [
                ("le\u{200B}gal", true),
                ("win\u{AD}ner", true),
                ("legal", true),
                ("winner", true),
                ("aban\u{2060}don", true),
                ("ability", true),
                ("zz", false),
                ("thank", true),
            ]
        );
    }

    #[test]
    fn our_labels_are_opaque() {
        let text = "a [redacted: seed phrase, 12 words] b [redacted: private key] c [redacted: seed phrase, 1 word]";
        let scan = Scan::new(text);
        let labels: Vec<&str> = scan.labels.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(
            labels,
            [
                "[redacted: seed phrase, 12 words]",
                "[redacted: private key]",
                "[redacted: seed phrase, 1 word]"
            ]
        );
        assert!(words(text).iter().all(|(w, _)| ["a", "b", "c"].contains(w)));
        // Anything else in brackets is ordinary text.
        assert!(label_ranges("[redacted: my seed] [redacted: seed phrase, x words]").is_empty());
    }

    #[test]
    fn key_tokens_skip_invisible_characters() {
        let hex = "e9873d79c6d87dc0fb6a5778633389f4453213303da61f20bd67fc233aa33262";
        let text = format!("key: {}\u{200B}{}", &hex[..30], &hex[30..]);
        let scan = Scan::new(&text);
        assert_eq!(scan.key_tokens.len(), 1);
        assert_eq!(scan.key_tokens[0].1, hex);
        assert_eq!(
            &text[scan.folded.to_original(&scan.key_tokens[0].0)],
            &text[5..]
        );
    }

    #[test]
    fn the_pre_check_counts_words_glued_to_numbers() {
        assert!(worth_scanning("1legal2winner3thank4year5wave", 10, 10));
        assert!(!worth_scanning("where is my withdrawal?", 10, 10));
        assert!(!worth_scanning("我的币没到账", 10, 10));
    }
}
