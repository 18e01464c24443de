//! Messages that ask two things at once: "提币没到账，另外怎么改密码", "my withdrawal is stuck? and
//! also how do I change my password".
//!
//! Classified whole, such a message scores two intents at half strength each, and the bot asks
//! "A or B?" when the user meant "A and B". [`split`] cuts a message at the words and marks people
//! use to start another question (另外, 还有, 顺便问, "and also", "btw", a question mark, a
//! semicolon, a full stop, a new line); [`decide`] classifies each clause, so the policy can answer
//! the first question and offer the second.
//!
//! Splitting is deliberately loose: a wrong cut costs nothing, because the policy acts on clauses
//! only when two of them are each *answered* by the engine's own decision (its derived answer
//! threshold), for two different intents.

use kefu_nlu::engine::{Decision, Engine};

/// Marks that end a clause: the clause before keeps them.
const ENDINGS: &[char] = &['?', '？', ';', '；', '。', '!', '！', '\n'];

/// Words that start another question, cut wherever they follow a pause (punctuation or a space)
/// or start a clause; the word itself is dropped.
const STARTERS_AFTER_PAUSE: &[&str] = &[
    "另外",
    "还有",
    "此外",
    "再就是",
    "and also",
    "also",
    "btw",
    "by the way",
    "another question",
    "one more thing",
];

/// Words that start another question wherever they appear (they are never part of a topic).
const STARTERS_ANYWHERE: &[&str] = &[
    "另外想问",
    "另外问",
    "顺便问一下",
    "顺便问下",
    "顺便问",
    "还想问",
    "再问一下",
    "还有个问题",
    "还有一个问题",
];

/// Characters that count as a pause before a starter word.
const PAUSES: &[char] = &[
    ',', '，', '、', ' ', '.', '。', '?', '？', '!', '！', ';', '；', '\n',
];

/// Punctuation and spaces trimmed off each clause.
const TRIM: &[char] = &[
    ',', '，', '、', ' ', '.', '。', ';', '；', ':', '：', '\n', '\t', '-', '~', '～',
];

/// The clauses of a message, in order; one clause (the trimmed message) when nothing splits it.
/// Fragments with too little to classify ("吗", "ok") are dropped.
pub fn split(text: &str) -> Vec<&str> {
    // ASCII lower-casing keeps byte offsets, so a cut found in `lower` applies to `text`.
    let lower = text.to_ascii_lowercase();
    let mut cuts: Vec<(usize, usize)> = Vec::new(); // (end of the clause before, start of the next)
    for (i, c) in text.char_indices() {
        if ENDINGS.contains(&c) {
            let end = i + c.len_utf8();
            cuts.push((end, end));
        }
    }
    for word in STARTERS_ANYWHERE {
        for (i, _) in lower.match_indices(word) {
            cuts.push((i, i + word.len()));
        }
    }
    for word in STARTERS_AFTER_PAUSE {
        for (i, _) in lower.match_indices(word) {
            let after = i + word.len();
            let ascii_word = word.is_ascii();
            let before_ok = lower[..i]
                .chars()
                .next_back()
                .is_none_or(|c| PAUSES.contains(&c));
            // An English starter must be a whole word ("android", "alsoo" are not "and", "also").
            let after_ok = !ascii_word
                || lower[after..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_ascii_alphanumeric());
            if before_ok && after_ok {
                cuts.push((i, after));
            }
        }
    }
    cuts.sort_unstable();
    let mut clauses = Vec::new();
    let mut start = 0;
    for (end, next) in cuts {
        if end < start {
            // Overlaps a cut already made (a starter inside a longer starter).
            start = start.max(next);
            continue;
        }
        clauses.push(&text[start..end]);
        start = next;
    }
    clauses.push(&text[start..]);
    let kept: Vec<&str> = clauses
        .into_iter()
        .map(|c| c.trim_matches(TRIM))
        .filter(|c| substantial(c))
        .collect();
    if kept.is_empty() {
        vec![text.trim()]
    } else {
        kept
    }
}

/// Enough to be a question of its own: two Chinese characters, or two words of two letters.
fn substantial(clause: &str) -> bool {
    let han = clause
        .chars()
        .filter(|c| ('\u{4E00}'..='\u{9FFF}').contains(c))
        .count();
    let words = clause
        .split(|c: char| !c.is_alphanumeric() || ('\u{4E00}'..='\u{9FFF}').contains(&c))
        .filter(|w| w.chars().count() >= 2)
        .count();
    han >= 2 || words >= 2
}

/// The engine's decision on each clause, when the message has two or more; empty otherwise (the
/// decision on the whole message is all there is to know).
pub fn decide(engine: &Engine, text: &str) -> Vec<Decision> {
    let clauses = split(text);
    if clauses.len() < 2 {
        return Vec::new();
    }
    clauses.iter().map(|c| engine.decide(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_starter_words_after_a_pause_start_another_clause() {
        assert_eq!(
            split("提币没到账，另外怎么改密码"),
            ["提币没到账", "怎么改密码"]
        );
        assert_eq!(
            split("充值不到账。还有，实名认证要多久"),
            ["充值不到账", "实名认证要多久"]
        );
        assert_eq!(
            split("谷歌验证器丢了顺便问一下手续费多少"),
            ["谷歌验证器丢了", "手续费多少"]
        );
    }

    #[test]
    fn english_starters_and_question_marks_start_another_clause() {
        assert_eq!(
            split("my withdrawal is stuck? and also how do I change my password"),
            ["my withdrawal is stuck?", "how do I change my password"]
        );
        assert_eq!(
            split("where is my deposit, btw what are the trading fees"),
            ["where is my deposit", "what are the trading fees"]
        );
    }

    #[test]
    fn a_starter_inside_a_word_or_without_a_pause_does_not_cut() {
        assert_eq!(split("android app crashes"), ["android app crashes"]);
        assert_eq!(split("提币还有手续费吗"), ["提币还有手续费吗"]);
        assert_eq!(
            split("deposit and withdrawal limits"),
            ["deposit and withdrawal limits"]
        );
    }

    #[test]
    fn fragments_too_short_to_classify_are_dropped() {
        assert_eq!(split("提币没到账？？"), ["提币没到账？"]);
        assert_eq!(
            split("ok? my deposit is missing"),
            ["my deposit is missing"]
        );
        assert_eq!(split("?"), ["?"]);
    }

    #[test]
    fn a_plain_question_is_one_clause() {
        assert_eq!(split("  怎么改密码 "), ["怎么改密码"]);
    }
}
