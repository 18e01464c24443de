//! Text normalisation: the one function applied to both knowledge-base examples and user messages
//! before matching, so that "ＵＳＤＴ　没到账😭😭", "usdt 沒到賬!!!" and "USDT没到账" look alike.
//!
//! [`normalize`] does, in this order:
//!
//! 1. **Fold**: Unicode NFKC (full-width ASCII letters, digits and punctuation "？！，：；（）" become
//!    ASCII, the ideographic space U+3000 becomes a space, half-width katakana become full-width,
//!    ligatures and circled digits are expanded), then Unicode lowercase. If lowercasing produced
//!    text that is no longer NFKC (rare), NFKC + lowercase run once more. Pure-ASCII input skips NFKC.
//! 2. **Clean**, one pass over the folded text:
//!    - kept as token characters: anything alphanumeric (CJK ideographs, kana, Hangul, Latin,
//!      Cyrillic, Arabic, Thai… letters and digits), plus combining marks that follow a letter;
//!    - removed *without* breaking a word: zero-width joiner/non-joiner, variation selectors, emoji
//!      tag characters, soft hyphen, BOM and bidi controls (so a ZWJ emoji sequence or "❤️" leaves
//!      nothing behind);
//!    - everything else (whitespace, ASCII and CJK punctuation, emoji, skin-tone modifiers, flags,
//!      dingbats, symbols such as `@ # $ % / ~ …`) is a **separator**: a run of separators becomes
//!      at most one space, and never a leading or trailing one.
//!    - Exceptions that keep meaning inside a token:
//!      - `.` between two digits is kept: "0.5" stays "0.5" (a leading ".5" becomes "5");
//!      - `,` used as a thousands separator (1–3 digits before, exactly 3 digits after, groups of
//!        3 thereafter) is dropped: "1,000,000" → "1000000"; any other comma is a separator;
//!      - `-` / `_` (and U+2010/2011 hyphens) between a letter and a digit are dropped, joining the
//!        token: "BEP-20" → "bep20", "trc_20" → "trc20", "2-FA" → "2fa". Between two letters or two
//!        digits they are separators: "usdt-trc20" → "usdt trc20", "anti-phishing" →
//!        "anti phishing" (matches the spaced spelling users also type), "1-2 days" → "1 2 days";
//!      - an apostrophe (`'` or `’`) between two letters is dropped: "don't" → "dont", "I’m" → "im"
//!        (users type these without apostrophes anyway).
//!    - Spacing between scripts: a space is inserted at every boundary between a CJK character
//!      (ideograph or kana) and any other token character: "usdt提不出来" → "usdt 提不出来",
//!      "2fa丢了" → "2fa 丢了", "提了100u" → "提了 100u" ("100u" stays one token).
//!    - Spacing inside Chinese: a separator (whitespace *or* punctuation) between two runs of CJK
//!      characters becomes one space (a phrase boundary) when both runs are at least two characters
//!      long, and is dropped when either run is a single character. So "提 币 失 败" → "提币失败",
//!      "我 的币没到" → "我的币没到", but "提币，失败" and "提币 失败" → "提币 失败". Whitespace and
//!      punctuation are deliberately treated alike: the output's spaces are re-read as whitespace
//!      on a second pass, and distinguishing them would make `normalize` not idempotent.
//!    - Repeats: a run of 3 or more identical non-digit characters is cut to 2 ("pleaseeee" →
//!      "pleasee", "啊啊啊啊" → "啊啊"); digits are never collapsed ("1000" stays).
//! 3. **Traditional → Simplified** (`fast2s`), only when the cleaned text contains a CJK ideograph
//!    (a Latin-only message never pays for it): "帳號被凍結" → "帐号被冻结" (step 4 then writes 账号), "提幣" → "提币". It runs
//!    after cleaning so that its two-character context rules see the final text; if it changed
//!    anything, the cleaning pass runs again (two characters may now form a collapsible run).
//! 4. **Common misspellings** of support words, only in Chinese text: 冲币/冲值/冲钱 → 充…
//!    (same sound), 帐号/帐户/到帐/转帐… → 账… (帐 for 账 is common, and Traditional 帳 becomes 帐),
//!    登陆 → 登录. The replacements never contain what they replace, so the result stays a fixed
//!    point.
//!
//! `normalize(normalize(x)) == normalize(x)` holds and is tested.

use std::borrow::Cow;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc, is_nfkc_quick};

/// Normalises a message for matching: the same function is applied to KB examples and to user messages.
///
/// See the module documentation for the exact rules.
pub fn normalize(text: &str) -> String {
    let out = normalize_once(text);
    // Dropping an invisible character can leave a base letter and a combining mark that NFKC
    // would now compose ("e", ZWJ, U+0301 → "e\u{301}"); one more pass makes the result a fixed point.
    if !out.is_ascii() && !is_nfkc(&out) {
        return normalize_once(&out);
    }
    out
}

fn normalize_once(text: &str) -> String {
    let folded = fold(text);
    let mut out = String::with_capacity(folded.len());
    let has_cjk = clean(&folded, &mut out);
    if has_cjk {
        let simplified = fast2s::convert(&out);
        if simplified != out {
            out.clear();
            clean(&simplified, &mut out);
        }
        for (typo, word) in MISSPELLINGS {
            if out.contains(typo) {
                out = out.replace(typo, word);
            }
        }
    }
    out
}

/// Misspellings of support words and their fix (same length, so spacing is unaffected).
const MISSPELLINGS: &[(&str, &str)] = &[
    ("冲币", "充币"),
    ("冲值", "充值"),
    ("冲钱", "充钱"),
    ("帐号", "账号"),
    ("帐户", "账户"),
    ("到帐", "到账"),
    ("入帐", "入账"),
    ("转帐", "转账"),
    ("帐单", "账单"),
    ("记帐", "记账"),
    ("对帐", "对账"),
    ("查帐", "查账"),
    ("帐目", "账目"),
    ("登陆", "登录"),
];

/// True for CJK ideographs (CJK Unified Ideographs incl. extension A and compatibility ideographs).
///
/// Also covers the supplementary-plane extensions (B–I) and the compatibility supplement, so rare
/// characters such as "𠮷" count. Kana, Hangul, CJK punctuation and "〇" are not ideographs here.
pub fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'       // CJK Unified Ideographs
        | '\u{3400}'..='\u{4DBF}'     // Extension A
        | '\u{F900}'..='\u{FAFF}'     // Compatibility Ideographs
        | '\u{20000}'..='\u{2FA1F}'   // Extensions B–F, I, Compatibility Supplement
        | '\u{30000}'..='\u{323AF}'   // Extensions G, H
    )
}

/// Ideographs, ideographic iteration/closing marks and kana: scripts written without spaces, which
/// get a space at their boundary with other token characters. Only called on alphanumeric chars.
fn is_cjk_like(c: char) -> bool {
    is_cjk(c)
        || matches!(c,
            '\u{3005}'..='\u{3007}'       // 々 〆 〇
            | '\u{303B}'                  // 〻
            | '\u{3041}'..='\u{309F}'     // Hiragana
            | '\u{30A1}'..='\u{30FF}'     // Katakana (・ is punctuation, filtered earlier)
            | '\u{31F0}'..='\u{31FF}'     // Katakana phonetic extensions
        )
}

/// NFKC + lowercase. Pure ASCII needs no NFKC and is borrowed when already lowercase.
fn fold(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        return if text.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(text.to_ascii_lowercase())
        } else {
            Cow::Borrowed(text)
        };
    }
    let mut folded = String::with_capacity(text.len() + text.len() / 4);
    let mut lowered_non_ascii = false;
    for c in text.nfkc() {
        if c.is_ascii() {
            folded.push(c.to_ascii_lowercase());
        } else {
            for l in c.to_lowercase() {
                lowered_non_ascii |= l != c;
                folded.push(l);
            }
        }
    }
    // Lowercasing can (rarely) leave text that NFKC would change again; one more round settles it.
    if lowered_non_ascii && is_nfkc_quick(folded.chars()) != IsNormalized::Yes {
        folded = folded.nfkc().flat_map(char::to_lowercase).collect();
    }
    Cow::Owned(folded)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    /// CJK ideograph or kana.
    Cjk,
    /// Any other alphanumeric character.
    Word,
    /// A combining mark: part of the token when it follows one, otherwise a separator.
    Mark,
    /// Removed without breaking the token (ZWJ, variation selectors, …).
    Ignore,
    /// Whitespace, punctuation, symbols, emoji.
    Sep,
}

fn classify(c: char) -> Class {
    if c.is_ascii() {
        return if c.is_ascii_alphanumeric() {
            Class::Word
        } else {
            Class::Sep
        };
    }
    if is_ignorable(c) {
        Class::Ignore
    } else if c.is_alphanumeric() {
        if is_cjk_like(c) {
            Class::Cjk
        } else {
            Class::Word
        }
    } else if is_combining_mark(c) && !matches!(c, '\u{20D0}'..='\u{20FF}') {
        // U+20D0..20FF are marks for symbols (e.g. the keycap U+20E3 of "1️⃣"): not part of words.
        Class::Mark
    } else {
        Class::Sep
    }
}

/// Invisible characters that glue emoji sequences or shape text; dropped without separating.
fn is_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                    // soft hyphen
        | '\u{034F}'                  // combining grapheme joiner
        | '\u{180B}'..='\u{180D}'     // Mongolian free variation selectors
        | '\u{180F}'
        | '\u{200C}' | '\u{200D}'     // ZWNJ, ZWJ
        | '\u{200E}' | '\u{200F}'     // LRM, RLM
        | '\u{202A}'..='\u{202E}'     // bidi embeddings/overrides
        | '\u{2060}'..='\u{2064}'     // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}'     // bidi isolates
        | '\u{FE00}'..='\u{FE0F}'     // variation selectors (emoji / text presentation)
        | '\u{FEFF}'                  // BOM / zero-width no-break space
        | '\u{E0000}'..='\u{E007F}'   // tag characters (subdivision flags)
        | '\u{E0100}'..='\u{E01EF}'   // variation selectors supplement
    )
}

/// Appends to the output, collapsing runs of 3+ identical non-digit characters to 2.
struct Writer<'a> {
    out: &'a mut String,
    last: Option<char>,
    before_last: Option<char>,
}

impl Writer<'_> {
    fn push(&mut self, c: char) {
        if self.last == Some(c) && self.before_last == Some(c) && !c.is_numeric() {
            return;
        }
        self.out.push(c);
        self.before_last = self.last;
        self.last = Some(c);
    }

    fn space(&mut self) {
        self.out.push(' ');
        self.before_last = self.last;
        self.last = Some(' ');
    }
}

/// Where we are in a number, for the thousands-separator rule.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Number {
    /// No comma joined yet: 1–3 digits may precede a thousands comma.
    Free,
    /// A thousands comma was joined: exactly 3 digits must precede the next.
    Grouped,
    /// After a decimal point: no thousands commas.
    Decimal,
}

/// The cleaning pass (see module docs). Appends to `out`; returns whether a CJK ideograph was kept.
fn clean(s: &str, out: &mut String) -> bool {
    let mut w = Writer {
        out,
        last: None,
        before_last: None,
    };
    let mut has_cjk = false;
    // Last token character taken from the input (even if collapsed away) and its class.
    let mut last: Option<(char, Class)> = None;
    // A separator was seen since the last token character.
    let mut pending = false;
    // Length of the current (or, after a separator, the previous) run of CJK characters in the input.
    let mut cjk_run = 0usize;
    // Consecutive ASCII digits just before the current position, and the number state.
    let mut digits = 0usize;
    let mut number = Number::Free;

    for (i, c) in s.char_indices() {
        let rest = &s[i + c.len_utf8()..];

        // Punctuation that can join a token: only directly after a non-CJK token character.
        if !pending && let Some((prev, Class::Word)) = last {
            let mut ahead = rest.chars();
            let next = ahead.next();
            match c {
                '.' if prev.is_ascii_digit() && next.is_some_and(|n| n.is_ascii_digit()) => {
                    w.push('.');
                    last = Some(('.', Class::Word));
                    digits = 0;
                    number = Number::Decimal;
                    continue;
                }
                ',' if is_thousands_comma(digits, number, rest) => {
                    digits = 0;
                    number = Number::Grouped;
                    continue;
                }
                '-' | '_' | '\u{2010}' | '\u{2011}'
                    if next.is_some_and(|n| {
                        classify(n) == Class::Word
                            && ((prev.is_alphabetic() && n.is_numeric())
                                || (prev.is_numeric() && n.is_alphabetic()))
                    }) =>
                {
                    continue;
                }
                '\'' | '\u{2019}'
                    if prev.is_alphabetic()
                        && next
                            .is_some_and(|n| classify(n) == Class::Word && n.is_alphabetic()) =>
                {
                    continue;
                }
                _ => {}
            }
        }

        match classify(c) {
            Class::Ignore => {}
            Class::Sep => {
                pending = true;
                digits = 0;
                number = Number::Free;
            }
            Class::Mark => {
                if !pending && last.is_some() {
                    w.push(c);
                } else {
                    pending = true;
                }
            }
            Class::Cjk => {
                has_cjk |= is_cjk(c);
                let continues_run = matches!(last, Some((_, Class::Cjk))) && !pending;
                match last {
                    // CJK after CJK across a separator: a space only between two runs of 2+.
                    Some((_, Class::Cjk)) if pending && cjk_run >= 2 && next_is_cjk(rest) => {
                        w.space();
                    }
                    None | Some((_, Class::Cjk)) => {}
                    Some(_) => w.space(),
                }
                cjk_run = if continues_run { cjk_run + 1 } else { 1 };
                w.push(c);
                last = Some((c, Class::Cjk));
                pending = false;
                digits = 0;
                number = Number::Free;
            }
            Class::Word => {
                if last.is_some() && (pending || matches!(last, Some((_, Class::Cjk)))) {
                    w.space();
                }
                // Separators, CJK, letters, '.' and joined commas reset `digits`, so this counts
                // the digits of the current group.
                if c.is_ascii_digit() {
                    digits += 1;
                } else {
                    digits = 0;
                    number = Number::Free;
                }
                w.push(c);
                last = Some((c, Class::Word));
                pending = false;
            }
        }
    }
    has_cjk
}

/// Whether the next significant character (skipping invisible characters and marks) is CJK, i.e.
/// whether the CJK run starting just before `rest` is at least two characters long.
fn next_is_cjk(rest: &str) -> bool {
    rest.chars()
        .map(classify)
        .find(|class| !matches!(class, Class::Ignore | Class::Mark))
        == Some(Class::Cjk)
}

/// A comma after `digits` digits is a thousands separator when exactly three digits follow it.
fn is_thousands_comma(digits: usize, number: Number, rest: &str) -> bool {
    let group_ok = match number {
        Number::Free => (1..=3).contains(&digits),
        Number::Grouped => digits == 3,
        Number::Decimal => false,
    };
    let b = rest.as_bytes();
    group_ok
        && b.len() >= 3
        && b[..3].iter().all(u8::is_ascii_digit)
        && !b.get(3).is_some_and(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalize(s)
    }

    #[test]
    fn full_width_letters_become_ascii() {
        assert_eq!(n("ＵＳＤＴ"), "usdt");
        assert_eq!(n("ａｂｃＸＹＺ"), "abcxyz");
    }

    #[test]
    fn full_width_digits_become_ascii() {
        assert_eq!(n("提了１００ｕ"), "提了 100u");
        assert_eq!(n("０.５ＢＴＣ"), "0.5btc");
    }

    #[test]
    fn full_width_punctuation_becomes_a_separator() {
        assert_eq!(n("为什么？！没到账（很急）：；"), "为什么 没到账 很急");
        assert_eq!(n("ｈｅｌｌｏ，ｗｏｒｌｄ。"), "hello world");
        assert_eq!(n("【重要】《公告》「通知」"), "重要 公告 通知");
    }

    #[test]
    fn ideographic_space_becomes_a_space() {
        assert_eq!(n("ＵＳＤＴ　没到账"), "usdt 没到账");
        assert_eq!(n("hello\u{3000}world"), "hello world");
    }

    #[test]
    fn full_width_usdt_with_emoji_is_cleaned() {
        assert_eq!(n("ＵＳＤＴ　没到账😭😭"), "usdt 没到账");
    }

    #[test]
    fn letters_are_lowercased_in_every_script() {
        assert_eq!(n("Withdrawal PENDING"), "withdrawal pending");
        assert_eq!(n("ПРИВЕТ Мир"), "привет мир");
        assert_eq!(n("ÉTÉ"), "été");
    }

    #[test]
    fn traditional_chinese_becomes_simplified() {
        assert_eq!(n("帳號被凍結了！！"), "账号被冻结了");
        assert_eq!(n("提幣"), "提币");
        assert_eq!(n("錢包"), "钱包");
        assert_eq!(n("我的賬戶餘額不對"), "我的账户余额不对");
        assert_eq!(n("USDT還沒到賬"), "usdt 还没到账");
    }

    #[test]
    fn common_misspellings_of_support_words_are_fixed() {
        assert_eq!(n("冲币半小时了还没到帐"), "充币半小时了还没到账");
        assert_eq!(n("帳號登陸不了"), "账号登录不了");
        assert_eq!(n("冲值"), "充值");
        // Other uses of the characters are left alone.
        assert_eq!(n("冲浪 蚊帐"), "冲浪 蚊帐");
    }

    #[test]
    fn simplified_chinese_is_unchanged() {
        assert_eq!(n("提币失败"), "提币失败");
        assert_eq!(n("钱包地址"), "钱包地址");
    }

    #[test]
    fn emoji_are_removed() {
        assert_eq!(n("谢谢🙏👍🔥"), "谢谢");
        assert_eq!(n("love it ❤️ thanks"), "love it thanks");
        assert_eq!(n("ok👍thanks"), "ok thanks");
    }

    #[test]
    fn zwj_sequences_skin_tones_and_flags_are_removed() {
        assert_eq!(n("help 👨‍👩‍👧‍👦 me"), "help me");
        assert_eq!(n("thanks 👍🏽🙏🏿"), "thanks");
        assert_eq!(n("from 🇨🇳🇺🇸 here"), "from here");
        assert_eq!(n("uk 🏴󠁧󠁢󠁳󠁣󠁴󠁿 flag"), "uk flag");
        assert_eq!(n("a🏳️‍🌈b"), "a b");
    }

    #[test]
    fn dingbats_and_symbols_are_removed() {
        assert_eq!(n("✅ done ★☆ ✈ ©®™"), "done tm");
        assert_eq!(n("price $100 or ¥700"), "price 100 or 700");
    }

    #[test]
    fn a_message_of_only_emoji_becomes_empty() {
        assert_eq!(n("😭😭😭"), "");
        assert_eq!(n("👍🏻 ❤️ 🇯🇵 👨‍💻"), "");
    }

    #[test]
    fn punctuation_runs_become_one_space() {
        assert_eq!(n("withdrawal pending 3h??"), "withdrawal pending 3h");
        assert_eq!(n("help!!!me???now"), "help me now");
        assert_eq!(n("wait~~~ what…"), "wait what");
        assert_eq!(n("\"quoted\" (brackets) [x] {y}"), "quoted brackets x y");
        assert_eq!(n("@support #help"), "support help");
        assert_eq!(n("usdt/btc"), "usdt btc");
    }

    #[test]
    fn cjk_punctuation_between_phrases_becomes_a_space() {
        assert_eq!(n("提币，失败"), "提币 失败");
        assert_eq!(n("账号被冻结了！！！怎么办？？？"), "账号被冻结了 怎么办");
        assert_eq!(n("钱包……没到账～～"), "钱包 没到账");
    }

    #[test]
    fn cjk_and_latin_are_separated_by_a_space() {
        assert_eq!(n("USDT提不出来"), "usdt 提不出来");
        assert_eq!(n("2FA丢了怎么办"), "2fa 丢了怎么办");
        assert_eq!(n("提了100u"), "提了 100u");
        assert_eq!(n("我的btc没到"), "我的 btc 没到");
    }

    #[test]
    fn kana_stay_attached_to_kanji() {
        assert_eq!(n("出金できない"), "出金できない");
        assert_eq!(n("ＵＳＤＴの出金"), "usdt の出金");
    }

    #[test]
    fn decimal_numbers_are_preserved() {
        assert_eq!(n("withdraw 0.5 btc"), "withdraw 0.5 btc");
        assert_eq!(n("fee 0.0005BTC."), "fee 0.0005btc");
        assert_eq!(n("提了1.5个ETH"), "提了 1.5 个 eth");
        assert_eq!(n("version 1.2.3"), "version 1.2.3");
    }

    #[test]
    fn thousands_separators_are_dropped() {
        assert_eq!(n("1,000"), "1000");
        assert_eq!(n("sent 1,000,000 usdt"), "sent 1000000 usdt");
        assert_eq!(n("12,345.67"), "12345.67");
        assert_eq!(n("提了１，０００u"), "提了 1000u");
    }

    #[test]
    fn other_commas_between_digits_are_separators() {
        assert_eq!(n("1,2,3"), "1 2 3");
        assert_eq!(n("1000,000"), "1000 000");
        assert_eq!(n("0.5,000"), "0.5 000");
    }

    #[test]
    fn hyphen_between_letters_and_digits_joins_the_token() {
        assert_eq!(n("BEP-20"), "bep20");
        assert_eq!(n("TRC-20 and erc_20"), "trc20 and erc20");
        assert_eq!(n("2-FA"), "2fa");
    }

    #[test]
    fn other_hyphens_are_separators() {
        assert_eq!(n("USDT-TRC20"), "usdt trc20");
        assert_eq!(n("anti-phishing code"), "anti phishing code");
        assert_eq!(n("1-2 days"), "1 2 days");
        assert_eq!(n("--bep--20--"), "bep 20");
    }

    #[test]
    fn apostrophes_inside_words_are_dropped() {
        assert_eq!(
            n("I can't withdraw, don’t know why"),
            "i cant withdraw dont know why"
        );
        assert_eq!(n("users' funds"), "users funds");
    }

    #[test]
    fn spaces_between_single_cjk_characters_are_removed() {
        assert_eq!(n("提 币 失 败"), "提币失败");
        assert_eq!(n("提  币失败"), "提币失败");
        assert_eq!(n("我 的币没到"), "我的币没到");
        assert_eq!(n("提，币"), "提币");
    }

    #[test]
    fn spaces_between_multi_character_cjk_phrases_are_kept() {
        assert_eq!(n("你好   我的币没到账"), "你好 我的币没到账");
        assert_eq!(n("提币 失败"), "提币 失败");
    }

    #[test]
    fn repeated_characters_are_collapsed_to_two() {
        assert_eq!(n("pleaseeeee"), "pleasee");
        assert_eq!(n("heeelp"), "heelp");
        assert_eq!(n("啊啊啊啊"), "啊啊");
        assert_eq!(n("哈哈哈哈哈"), "哈哈");
        assert_eq!(n("soooo goood"), "soo good");
    }

    #[test]
    fn repeated_digits_are_not_collapsed() {
        assert_eq!(n("10000 usdt"), "10000 usdt");
        assert_eq!(n("1,000,000"), "1000000");
    }

    #[test]
    fn other_scripts_are_kept_as_letters() {
        assert_eq!(n("Вывод не работает!"), "вывод не работает");
        assert_eq!(n("출금이 안돼요"), "출금이 안돼요");
        assert_eq!(n("ถอนเงินไม่ได้ครับ"), "ถอนเงินไม่ได้ครับ");
        assert_eq!(n("لا أستطيع السحب"), "لا أستطيع السحب");
        assert_eq!(n("ｶﾀｶﾅ"), "カタカナ");
        assert_eq!(n("नमस्ते"), "नमस्ते");
        assert_eq!(n("Tôi không rút được tiền"), "tôi không rút được tiền");
    }

    #[test]
    fn empty_and_whitespace_only_input_become_empty() {
        assert_eq!(n(""), "");
        assert_eq!(n("   "), "");
        assert_eq!(n("\t\n\u{3000} \u{00A0}"), "");
        assert_eq!(n("?!。，"), "");
    }

    #[test]
    fn surrounding_whitespace_is_trimmed_and_runs_collapsed() {
        assert_eq!(n("  withdrawal \t\n pending  "), "withdrawal pending");
    }

    #[test]
    fn normalize_is_idempotent() {
        let samples = [
            "USDT提不出来",
            "2FA丢了怎么办",
            "withdrawal pending 3h??",
            "帳號被凍結了！！",
            "ＵＳＤＴ　没到账😭😭",
            "提 币 失 败",
            "提 币失败 了",
            "提，币",
            "我 提币，失败 啊啊啊啊 哈 哈 哈",
            "pleaseeeee heeelp!!!",
            "sent 1,000,000.50 USDT-TRC20 via BEP-20",
            "I can't withdraw my 0.5 BTC…",
            "乾淨 乾 淨 著",
            "錢包地址錯了？？怎麼辦🙏🏻🙏🏻",
            "👨‍👩‍👧‍👦🇨🇳❤️",
            "ｶﾀｶﾅの出金できない",
            "İstanbul ΣΊΣΥΦΟΣ straße ﬁne ①②③",
            "e\u{200D}\u{0301}x a'b 1-2 a-1 ''--__",
            "  \t ",
            "提了100u，到账99.5u ~~ 手续费0.5u??",
            "Вывод USDT не работает!!!",
        ];
        for s in samples {
            let once = n(s);
            assert_eq!(n(&once), once, "not idempotent for {s:?}");
        }
    }

    #[test]
    fn normalize_is_idempotent_on_generated_messages() {
        // Deterministic pseudo-random messages over an alphabet of troublesome characters.
        let alphabet: Vec<char> = concat!(
            "aEez019 .,-_'’?!/",
            "提币帳號乾淨啊のカｶﾞ한ЯßİΣＡ１，。？…ﬁ①😭👍🇨",
            "\u{3000}\u{200D}\u{FE0F}\u{0301}\u{0323}\u{20E3}\u{1F3FD}\u{E0067}\u{00AD}",
        )
        .chars()
        .collect();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        for _ in 0..5000 {
            let len = next() % 12;
            let s: String = (0..len)
                .map(|_| alphabet[next() % alphabet.len()])
                .collect();
            let once = n(&s);
            assert_eq!(n(&once), once, "not idempotent for {s:?}");
            assert_eq!(once.trim(), once, "untrimmed for {s:?}");
            assert!(!once.contains("  "), "double space for {s:?}");
        }
    }

    #[test]
    fn is_cjk_recognises_ideographs_only() {
        for c in ['提', '币', '帳', '㐀', '𠮷', '\u{F900}'] {
            assert!(is_cjk(c), "{c}");
        }
        for c in ['a', '1', 'の', 'カ', '한', '。', '，', '〇', ' '] {
            assert!(!is_cjk(c), "{c}");
        }
    }
}
