//! Language detection by script, built for short support messages ("提币失败", "2FA丢了怎么办",
//! "withdrawal pending 3h??"), where statistical detectors have too little text to work with.
//!
//! One pass counts letters (`char::is_alphabetic`; digits, emoji and punctuation are ignored) per
//! script, then decides in this order:
//!
//! 1. No letter at all → `None`.
//! 2. **Kana** present → `"ja"`, even alongside kanji. Exception: a single "の" in a message with
//!    ideographs stays Chinese (Chinese internet slang writes "我の钱包").
//! 3. **Syllabic scripts** (CJK ideographs → `"zh"`, Hangul → `"ko"`) qualify with at least 2
//!    characters, or 1 character making up ≥ 20% of the letters: one ideograph stands for a whole
//!    syllable, and Chinese/Korean users write coin and tech names in Latin letters, so
//!    "USDT提不出来" and "2FA丢了怎么办" are Chinese. Traditional and Simplified both give `"zh"`.
//! 4. **Alphabetic non-Latin scripts** (Cyrillic `"ru"`, Arabic `"ar"`, Thai `"th"`, Greek `"el"`,
//!    Hebrew `"he"`, Devanagari `"hi"`, and a few more listed in `SCRIPTS`) qualify when their letters
//!    are at least half as many as the Latin ones ("USDT вывод" is Russian, "send to Дмитрий
//!    please" is English).
//! 5. Among qualifying scripts the one with the most letters wins (ties: the order above).
//! 6. Otherwise Latin letters → `"en"`, except `"vi"` when at least 5% of the Latin letters carry
//!    Vietnamese-only diacritics (ơ ư đ ă and the tone-marked vowels of U+1EA0–U+1EF9, or the
//!    combining hook/horn/dot-below). Other Latin-script languages (Spanish, French…) are reported as
//!    `"en"`: the bot only needs English for Latin script, and accents alone are ambiguous.
//! 7. Letters of no known script → `"und"` (BCP 47 "undetermined").
//!
//! Works on raw or normalised text (normalisation keeps every letter).

use crate::normalize::is_cjk;

/// Detects the language of a (raw or normalised) message. Returns a lowercase code: "zh", "en", "ja", "ko", "ru", "ar", "th", "vi"...; None when there is no letter at all (only digits/emoji/punctuation).
pub fn detect(text: &str) -> Option<&'static str> {
    let counts = Counts::of(text);
    if counts.letters == 0 {
        return None;
    }
    if counts.kana > 0 && !(counts.kana == counts.kana_no && counts.kana == 1 && counts.han > 0) {
        return Some("ja");
    }

    let syllabic_ok = |n: usize| n >= 2 || (n >= 1 && n * 5 >= counts.letters);
    let alphabetic_ok = |n: usize| n >= 1 && n * 2 >= counts.latin;

    let mut best: Option<(&'static str, usize)> = None;
    let mut consider = |code: &'static str, n: usize, ok: bool| {
        if ok && best.is_none_or(|(_, m)| n > m) {
            best = Some((code, n));
        }
    };
    consider("zh", counts.han, syllabic_ok(counts.han));
    consider("ko", counts.hangul, syllabic_ok(counts.hangul));
    for (i, &(_, code)) in SCRIPTS.iter().enumerate() {
        consider(code, counts.scripts[i], alphabetic_ok(counts.scripts[i]));
    }
    if let Some((code, _)) = best {
        return Some(code);
    }

    if counts.latin > 0 {
        if counts.vietnamese > 0 && counts.vietnamese * 20 >= counts.latin {
            return Some("vi");
        }
        return Some("en");
    }
    // Letters, but only of scripts we do not name (or a lone ideograph among many unknown letters).
    Some("und")
}

/// Detects the language, falling back to `default` when the message has no letters.
pub fn detect_or(text: &str, default: &'static str) -> &'static str {
    detect(text).unwrap_or(default)
}

/// Alphabetic scripts other than Latin, with their (most likely) language.
const SCRIPTS: &[(&[(char, char)], &str)] = &[
    (
        &[
            ('\u{0400}', '\u{052F}'),
            ('\u{1C80}', '\u{1C8F}'),
            ('\u{2DE0}', '\u{2DFF}'),
            ('\u{A640}', '\u{A69F}'),
        ],
        "ru",
    ),
    (
        &[
            ('\u{0600}', '\u{06FF}'),
            ('\u{0750}', '\u{077F}'),
            ('\u{0870}', '\u{08FF}'),
            ('\u{FB50}', '\u{FDFF}'),
            ('\u{FE70}', '\u{FEFF}'),
        ],
        "ar",
    ),
    (&[('\u{0E00}', '\u{0E7F}')], "th"),
    (&[('\u{0370}', '\u{03FF}'), ('\u{1F00}', '\u{1FFF}')], "el"),
    (&[('\u{0590}', '\u{05FF}'), ('\u{FB1D}', '\u{FB4F}')], "he"),
    (&[('\u{0900}', '\u{097F}')], "hi"),
    (&[('\u{0980}', '\u{09FF}')], "bn"),
    (&[('\u{0B80}', '\u{0BFF}')], "ta"),
    (&[('\u{0E80}', '\u{0EFF}')], "lo"),
    (&[('\u{1780}', '\u{17FF}')], "km"),
    (&[('\u{1000}', '\u{109F}')], "my"),
    (&[('\u{10A0}', '\u{10FF}'), ('\u{1C90}', '\u{1CBF}')], "ka"),
    (&[('\u{0530}', '\u{058F}')], "hy"),
];

/// Letter counts per script.
#[derive(Debug, Default)]
struct Counts {
    letters: usize,
    latin: usize,
    /// Latin letters (or combining marks on them) specific to Vietnamese.
    vietnamese: usize,
    han: usize,
    kana: usize,
    /// How many of the kana are "の".
    kana_no: usize,
    hangul: usize,
    scripts: [usize; SCRIPTS.len()],
}

impl Counts {
    fn of(text: &str) -> Self {
        let mut counts = Counts::default();
        for c in text.chars() {
            if c.is_ascii() {
                if c.is_ascii_alphabetic() {
                    counts.letters += 1;
                    counts.latin += 1;
                }
                continue;
            }
            if matches!(c, '\u{0309}' | '\u{031B}' | '\u{0323}') {
                // Hook above, horn, dot below: decomposed Vietnamese.
                counts.vietnamese += 1;
                continue;
            }
            if !c.is_alphabetic() {
                continue;
            }
            counts.letters += 1;
            if is_cjk(c) || matches!(c, '\u{3005}'..='\u{3007}' | '\u{303B}') {
                counts.han += 1;
            } else if is_kana(c) {
                counts.kana += 1;
                counts.kana_no += usize::from(c == 'の');
            } else if is_hangul(c) {
                counts.hangul += 1;
            } else if is_latin(c) {
                counts.latin += 1;
                counts.vietnamese += usize::from(is_vietnamese(c));
            } else if let Some(i) = SCRIPTS
                .iter()
                .position(|(ranges, _)| ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c)))
            {
                counts.scripts[i] += 1;
            }
        }
        counts
    }
}

fn is_kana(c: char) -> bool {
    matches!(c,
        '\u{3041}'..='\u{309F}'       // Hiragana
        | '\u{30A0}'..='\u{30FF}'     // Katakana
        | '\u{31F0}'..='\u{31FF}'     // Katakana phonetic extensions
        | '\u{FF66}'..='\u{FF9F}'     // Half-width katakana
        | '\u{1B000}'..='\u{1B16F}'   // Kana supplement / extended
    )
}

fn is_hangul(c: char) -> bool {
    matches!(c,
        '\u{AC00}'..='\u{D7AF}'       // syllables
        | '\u{1100}'..='\u{11FF}'     // jamo
        | '\u{3130}'..='\u{318F}'     // compatibility jamo
        | '\u{A960}'..='\u{A97F}'
        | '\u{D7B0}'..='\u{D7FF}'
        | '\u{FFA0}'..='\u{FFDC}'     // half-width
    )
}

fn is_latin(c: char) -> bool {
    matches!(c,
        '\u{00C0}'..='\u{024F}'       // Latin-1 supplement, Extended-A/B
        | '\u{1E00}'..='\u{1EFF}'     // Extended Additional
        | '\u{FF21}'..='\u{FF3A}'     // full-width A–Z
        | '\u{FF41}'..='\u{FF5A}'     // full-width a–z
        | '\u{0250}'..='\u{02AF}'     // IPA extensions
        | '\u{2C60}'..='\u{2C7F}'
        | '\u{A720}'..='\u{A7FF}'
    )
}

/// Letters that (among major languages) only Vietnamese uses.
fn is_vietnamese(c: char) -> bool {
    matches!(
        c,
        'ơ' | 'Ơ' | 'ư' | 'Ư' | 'đ' | 'Đ' | 'ă' | 'Ă' | '\u{1EA0}'..='\u{1EF9}' // ạ ả ấ ầ ẩ ẫ ậ … ỹ
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_four_character_chinese_message_is_chinese() {
        assert_eq!(detect("提币失败"), Some("zh"));
    }

    #[test]
    fn traditional_chinese_is_chinese() {
        assert_eq!(detect("帳號凍結"), Some("zh"));
        assert_eq!(detect("帳號被凍結了！！"), Some("zh"));
        assert_eq!(detect("錢包地址錯了怎麼辦"), Some("zh"));
    }

    #[test]
    fn chinese_with_latin_coin_names_is_chinese() {
        assert_eq!(detect("USDT提不出来"), Some("zh"));
        assert_eq!(detect("2FA丢了怎么办"), Some("zh"));
        assert_eq!(detect("ＵＳＤＴ　没到账😭😭"), Some("zh"));
        assert_eq!(detect("my USDT TRC20 withdrawal 没到"), Some("zh"));
        assert_eq!(detect("USDT提"), Some("zh"));
    }

    #[test]
    fn a_single_ideograph_in_a_long_english_message_stays_english() {
        assert_eq!(detect("my withdrawal is pending for hours 啊"), Some("en"));
    }

    #[test]
    fn a_single_ideograph_alone_is_chinese() {
        assert_eq!(detect("币"), Some("zh"));
        assert_eq!(detect("急!!!"), Some("zh"));
    }

    #[test]
    fn english_messages_are_english() {
        assert_eq!(detect("withdrawal pending 3h??"), Some("en"));
        assert_eq!(detect("hi"), Some("en"));
        assert_eq!(detect("2fa"), Some("en"));
        assert_eq!(detect("I can't withdraw my BTC 😭"), Some("en"));
    }

    #[test]
    fn other_latin_script_languages_are_reported_as_english() {
        assert_eq!(detect("no puedo retirar mis fondos"), Some("en"));
        assert_eq!(detect("je ne peux pas retirer"), Some("en"));
    }

    #[test]
    fn vietnamese_diacritics_give_vietnamese() {
        assert_eq!(detect("Tôi không rút được tiền"), Some("vi"));
        assert_eq!(detect("rút tiền"), Some("vi"));
        // Decomposed (NFD) text counts the combining marks.
        assert_eq!(detect("ru\u{0301}t tie\u{0302}\u{0300}n đi"), Some("vi"));
    }

    #[test]
    fn a_vietnamese_name_in_an_english_message_stays_english() {
        assert_eq!(
            detect("my name is Nguyễn and my withdrawal is still pending"),
            Some("en")
        );
    }

    #[test]
    fn japanese_is_japanese_even_with_kanji() {
        assert_eq!(detect("出金できない"), Some("ja"));
        assert_eq!(detect("ログインできません"), Some("ja"));
        assert_eq!(detect("USDTの出金が届かない"), Some("ja"));
        assert_eq!(detect("ｶﾀｶﾅ"), Some("ja"));
    }

    #[test]
    fn a_lone_no_in_chinese_stays_chinese() {
        assert_eq!(detect("我の钱包"), Some("zh"));
        assert_eq!(detect("の"), Some("ja"));
    }

    #[test]
    fn korean_is_korean() {
        assert_eq!(detect("출금이 안돼요"), Some("ko"));
        assert_eq!(detect("USDT 출금"), Some("ko"));
    }

    #[test]
    fn russian_is_russian() {
        assert_eq!(detect("не могу вывести деньги"), Some("ru"));
        assert_eq!(detect("USDT вывод"), Some("ru"));
    }

    #[test]
    fn a_cyrillic_name_in_an_english_message_stays_english() {
        assert_eq!(detect("please send it to Дмитрий today"), Some("en"));
    }

    #[test]
    fn other_scripts_are_detected() {
        assert_eq!(detect("لا أستطيع السحب"), Some("ar"));
        assert_eq!(detect("ถอนเงินไม่ได้ครับ"), Some("th"));
        assert_eq!(detect("Καλημέρα"), Some("el"));
        assert_eq!(detect("שלום"), Some("he"));
        assert_eq!(detect("नमस्ते"), Some("hi"));
    }

    #[test]
    fn unknown_scripts_are_undetermined() {
        assert_eq!(detect("ሰላም"), Some("und"));
    }

    #[test]
    fn emoji_only_has_no_language() {
        assert_eq!(detect("😭😭😭"), None);
        assert_eq!(detect("👍🏻❤️🇨🇳👨‍👩‍👧"), None);
    }

    #[test]
    fn digits_and_punctuation_only_have_no_language() {
        assert_eq!(detect("123456"), None);
        assert_eq!(detect("0.5 ?? !!! １２３"), None);
        assert_eq!(detect(""), None);
        assert_eq!(detect("   "), None);
    }

    #[test]
    fn normalised_text_gives_the_same_language() {
        use crate::normalize::normalize;
        for s in [
            "USDT提不出来",
            "帳號被凍結了！！",
            "withdrawal pending 3h??",
            "出金できない",
        ] {
            assert_eq!(detect(&normalize(s)), detect(s), "{s}");
        }
    }

    #[test]
    fn detect_or_falls_back_only_without_letters() {
        assert_eq!(detect_or("😭😭", "zh"), "zh");
        assert_eq!(detect_or("123", "en"), "en");
        assert_eq!(detect_or("hello", "zh"), "en");
        assert_eq!(detect_or("提币失败", "en"), "zh");
    }
}
