//! Text mutations shared by the targets: what copy-paste, phones and people probing the bot do to
//! a message.

use crate::rng::Rng;

/// Invisible characters people (or tools) put inside text.
pub const INVISIBLES: &[char] = &[
    '\u{200B}',
    '\u{200C}',
    '\u{200D}',
    '\u{2060}',
    '\u{FEFF}',
    '\u{00AD}',
    '\u{034F}',
    '\u{200E}',
    '\u{202E}',
    '\u{2066}',
    '\u{FE0F}',
    '\u{180E}',
    '\u{E0041}',
];

/// Characters that tend to break text handling: separators of every kind, emoji and their
/// modifiers, full-width forms, combining marks, CJK punctuation, surrogates' neighbours, controls.
pub const ODD_CHARS: &[char] = &[
    ' ',
    '\n',
    '\r',
    '\t',
    '!',
    '"',
    '\'',
    '+',
    '~',
    '^',
    '=',
    '&',
    '?',
    ',',
    '.',
    ':',
    ';',
    '-',
    '_',
    '/',
    '\\',
    '|',
    '#',
    '(',
    ')',
    '[',
    ']',
    '{',
    '}',
    '<',
    '>',
    '*',
    '•',
    '·',
    '…',
    '，',
    '。',
    '、',
    '：',
    '；',
    '！',
    '？',
    '（',
    '）',
    '【',
    '】',
    '「',
    '」',
    '\u{3000}',
    '😀',
    '🔑',
    '👍',
    '\u{1F3FD}',
    '🇨',
    '🇳',
    '❤',
    '①',
    '⑫',
    'ⅻ',
    'Ａ',
    'ｚ',
    '０',
    '９',
    'ß',
    'İ',
    'ﬁ',
    'K',
    '\u{0301}',
    '\u{0308}',
    '\u{20DD}',
    'é',
    'Ω',
    'а',
    'я',
    '的',
    '一',
    '是',
    '帳',
    '號',
    '𠮷',
    '\u{0}',
    '\u{7F}',
    '\u{85}',
    '\u{2028}',
    '\u{FFFD}',
    '\u{10FFFF}',
    '\u{E000}',
];

/// Byte offset of a random char boundary of `s` (0..=len).
pub fn boundary(rng: &mut Rng, s: &str) -> usize {
    let mut at = rng.below(s.len() + 1);
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Applies 1..=`max` random mutations to `s`. `donors` supply text to splice in.
pub fn mutate(rng: &mut Rng, s: &mut String, donors: &[String], max: usize) {
    for _ in 0..rng.between(1, max) {
        match rng.below(9) {
            0 => {
                let at = boundary(rng, s);
                let c = rng.pick(INVISIBLES).copied().unwrap_or('\u{200B}');
                s.insert(at, c);
            }
            1 => {
                let at = boundary(rng, s);
                let c = rng.pick(ODD_CHARS).copied().unwrap_or(' ');
                s.insert(at, c);
            }
            2 => {
                // Delete a stretch.
                let a = boundary(rng, s);
                let b = boundary(rng, s);
                let (a, b) = (a.min(b), a.max(b));
                if b - a < 64 {
                    s.replace_range(a..b, "");
                }
            }
            3 => {
                // Duplicate a stretch.
                let a = boundary(rng, s);
                let b = boundary(rng, s);
                let (a, b) = (a.min(b), a.max(b));
                if b - a < 128 {
                    let piece = s[a..b].to_owned();
                    s.insert_str(b, &piece);
                }
            }
            4 => {
                // Splice in part of another text.
                if let Some(donor) = rng.pick(donors) {
                    let a = boundary(rng, donor);
                    let b = boundary(rng, donor);
                    let piece = &donor[a.min(b)..a.max(b)];
                    let at = boundary(rng, s);
                    s.insert_str(at, piece);
                }
            }
            5 => {
                *s = if rng.chance(50) {
                    s.to_uppercase()
                } else {
                    s.to_lowercase()
                };
            }
            6 => *s = full_width(s),
            7 => {
                // Repeat one character.
                let at = boundary(rng, s);
                if let Some(c) = s[at..].chars().next() {
                    let run: String = std::iter::repeat_n(c, rng.between(2, 8)).collect();
                    s.insert_str(at, &run);
                }
            }
            _ => {
                // A random code point (any plane), now and then.
                let at = boundary(rng, s);
                if let Some(c) = char::from_u32(rng.below(0x11_0000) as u32) {
                    s.insert(at, c);
                }
            }
        }
    }
}

/// ASCII letters, digits and punctuation as their full-width forms, space as U+3000.
pub fn full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ' ' => '\u{3000}',
            '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// `text` shortened to at most `max` chars for printing, escaped.
pub fn shown(text: &str, max: usize) -> String {
    let short: String = text.chars().take(max).collect();
    let more = if text.chars().count() > max {
        "…"
    } else {
        ""
    };
    format!("{short:?}{more}")
}
