//! Commands: what a whole message means when it is an instruction rather than a question.
//!
//! Users type commands in both languages, as slash commands (`/human`, `/lang en`, and Telegram's
//! `/human@KefuBot`) or as plain words ("转人工", "real person", "说中文"); buttons send slash
//! payloads (`/yes`, `/pick withdrawal.failed`, `/rate 4`). Matching is on the *whole* normalised
//! message — full-width folded, lower-cased, trailing punctuation and politeness ("请…", "…吧",
//! "… please") stripped — so "how do I talk to a human about fees?" stays a question.
//!
//! [`parse`] is context-free; what a command does depends on the phase (a bare "2" is a rating
//! after a resolved ticket and the second option after "did you mean A or B?"), which is
//! [`crate::policy`]'s business.

use crate::state::Lang;

/// A command, parsed from a whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/start` (Telegram sends it on first contact): the greeting.
    Start,
    /// Show what the bot can do and the commands.
    Help,
    /// Talk to a human.
    Human,
    /// Cancel what is in progress (detail questions, a queued ticket, a pending question).
    Cancel,
    /// Send the user their own (redacted) transcript.
    Transcript,
    /// Reply in this language from now on.
    Language(Lang),
    /// Yes (to "did this help?", "shall I pass you to a human?").
    Yes,
    /// No.
    No,
    /// "Neither" of the two suggested topics.
    Neither,
    /// The user picked this intent from "did you mean…" buttons.
    Pick(String),
    /// Skip the detail being asked for (or the rating comment).
    Skip,
    /// A rating given explicitly (`/rate 4`, "4星", "★★★★").
    Rate(u8),
    /// A bare number 1–5: a rating or an option, depending on the question.
    Number(u8),
    /// A slash command the bot does not know (answered with help, never sent to the NLU).
    Unknown,
}

/// Folds full-width ASCII (ＵＳＤＴ１００) and the ideographic space to ASCII, so users with a
/// Chinese input method in full-width mode are understood.
pub fn fold(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .collect()
}

/// The form commands are matched on: folded, lower-cased, single spaces, no trailing punctuation.
pub fn normalise(text: &str) -> String {
    let folded = fold(text).to_lowercase();
    let words: Vec<&str> = folded.split_whitespace().collect();
    words
        .join(" ")
        .trim_end_matches(['!', '.', '?', '~', ',', '。', '？', '！', '～', '，', '、'])
        .trim()
        .to_owned()
}

const PREFIXES: &[&str] = &[
    "please ",
    "pls ",
    "plz ",
    "请帮我",
    "帮我",
    "麻烦",
    "请给我",
    "给我",
    "请",
    "我要",
    "我想",
    "i want to ",
    "i want ",
    "can i ",
];
const SUFFIXES: &[&str] = &[
    " please",
    " pls",
    " plz",
    "，谢谢",
    " 谢谢",
    "谢谢",
    " thanks",
    "吧",
    "啊",
    "呀",
];

/// Drops politeness around a plain-word command ("请转人工吧" → "转人工").
fn strip_politeness(s: &str) -> &str {
    let mut s = s.trim();
    for p in PREFIXES {
        if let Some(rest) = s.strip_prefix(p)
            && !rest.is_empty()
        {
            s = rest.trim();
            break;
        }
    }
    for x in SUFFIXES {
        if let Some(rest) = s.strip_suffix(x)
            && !rest.is_empty()
        {
            s = rest.trim_end_matches([',', '，']).trim();
            break;
        }
    }
    s
}

const HUMAN: &[&str] = &[
    "human",
    "agent",
    "real person",
    "a real person",
    "person",
    "talk to a human",
    "talk to human",
    "speak to a human",
    "speak to a person",
    "talk to an agent",
    "talk to a person",
    "human agent",
    "live agent",
    "live chat",
    "operator",
    "customer service",
    "support agent",
    "staff",
    "转人工",
    "人工客服",
    "人工",
    "真人",
    "真人客服",
    "找人工",
    "找真人",
    "人工服务",
    "转人工客服",
    "接人工",
    "要人工",
    "转客服",
    "找客服",
    "客服",
    "转接人工",
    "人工人工",
    "人工人工人工",
    "轉人工",
    "轉真人",
    "找人工客服",
    "联系人工",
    "联系客服",
];
const CANCEL: &[&str] = &[
    "cancel",
    "cancel ticket",
    "取消",
    "取消工单",
    "取消排队",
    "算了",
    "撤销",
];
const TRANSCRIPT: &[&str] = &[
    "transcript",
    "my transcript",
    "chat history",
    "chat log",
    "聊天记录",
    "导出聊天记录",
    "聊天紀錄",
    "对话记录",
    "发送聊天记录",
];
const HELP: &[&str] = &[
    "help",
    "menu",
    "帮助",
    "菜单",
    "使用说明",
    "你能做什么",
    "你会什么",
    "what can you do",
    "commands",
];
const ENGLISH: &[&str] = &[
    "english",
    "in english",
    "speak english",
    "english pls",
    "英文",
    "英语",
    "说英文",
    "说英语",
    "用英文",
    "讲英文",
];
const CHINESE: &[&str] = &[
    "chinese",
    "in chinese",
    "speak chinese",
    "中文",
    "说中文",
    "讲中文",
    "用中文",
    "汉语",
    "说汉语",
    "中文客服",
    "說中文",
];
const YES: &[&str] = &[
    "yes",
    "y",
    "yeah",
    "yep",
    "yup",
    "sure",
    "ok",
    "okay",
    "it did",
    "helpful",
    "是",
    "是的",
    "对",
    "对的",
    "好",
    "好的",
    "嗯",
    "嗯嗯",
    "可以",
    "有",
    "有用",
    "有帮助",
    "解决了",
    "已解决",
    "行",
    "需要",
    "要",
    "👍",
];
const NO: &[&str] = &[
    "no",
    "n",
    "nope",
    "nah",
    "not really",
    "no thanks",
    "it didn't",
    "didn't help",
    "not helpful",
    "否",
    "不",
    "不是",
    "没有",
    "没用",
    "没帮助",
    "没有帮助",
    "没解决",
    "没有解决",
    "不行",
    "不需要",
    "不要",
    "不用",
    "不用了",
    "没",
    "👎",
];
const NEITHER: &[&str] = &[
    "neither",
    "none",
    "none of them",
    "都不是",
    "两个都不是",
    "都不对",
    "都不",
];
const SKIP: &[&str] = &[
    "skip",
    "跳过",
    "不知道",
    "不清楚",
    "忘了",
    "记不清",
    "记不得了",
    "idk",
    "n/a",
    "dont know",
    "don't know",
    "i don't know",
    "略过",
];

/// Parses a whole message as a command; `None` when it is not one (it is then a question, or the
/// answer to a detail question).
pub fn parse(text: &str) -> Option<Command> {
    let n = normalise(text);
    if let Some(slash) = n.strip_prefix('/') {
        return Some(parse_slash(slash));
    }
    if let Some(c) = parse_rating(&n) {
        return Some(c);
    }
    let s = strip_politeness(&n);
    let is = |list: &[&str]| list.contains(&s) || list.contains(&n.as_str());
    // Order matters only where lists could overlap; they are disjoint today.
    let command = if is(HUMAN) {
        Command::Human
    } else if is(CANCEL) {
        Command::Cancel
    } else if is(TRANSCRIPT) {
        Command::Transcript
    } else if is(HELP) {
        Command::Help
    } else if is(ENGLISH) {
        Command::Language(Lang::En)
    } else if is(CHINESE) {
        Command::Language(Lang::Zh)
    } else if is(NEITHER) {
        Command::Neither
    } else if is(SKIP) {
        Command::Skip
    } else if is(YES) {
        Command::Yes
    } else if is(NO) {
        Command::No
    } else {
        return None;
    };
    Some(command)
}

fn parse_slash(s: &str) -> Command {
    let (name, arg) = match s.split_once(' ') {
        Some((name, arg)) => (name, arg.trim()),
        None => (s, ""),
    };
    // Telegram appends the bot's name in groups: /human@KefuBot.
    let name = name.split('@').next().unwrap_or(name);
    match (name, arg) {
        ("start", _) => Command::Start,
        ("help" | "menu", _) => Command::Help,
        ("human" | "agent" | "staff" | "support", _) => Command::Human,
        ("cancel", _) => Command::Cancel,
        ("transcript" | "history", _) => Command::Transcript,
        ("en" | "english", _) => Command::Language(Lang::En),
        ("zh" | "cn" | "chinese", _) => Command::Language(Lang::Zh),
        ("lang" | "language", "en" | "english" | "英文" | "英语") => {
            Command::Language(Lang::En)
        }
        ("lang" | "language", "zh" | "cn" | "chinese" | "中文") => Command::Language(Lang::Zh),
        ("yes", _) => Command::Yes,
        ("no", _) => Command::No,
        ("neither", _) => Command::Neither,
        ("skip", _) => Command::Skip,
        ("pick", id) if !id.is_empty() => Command::Pick(id.to_owned()),
        ("rate", score) => match score.parse::<u8>() {
            Ok(n @ 1..=5) => Command::Rate(n),
            _ => Command::Unknown,
        },
        _ => Command::Unknown,
    }
}

/// "4", "4分", "4星", "4/5", "★★★★", "⭐⭐⭐⭐".
fn parse_rating(s: &str) -> Option<Command> {
    if !s.is_empty() && s.chars().all(|c| matches!(c, '★' | '⭐' | '🌟')) {
        let n = s.chars().count();
        return (1..=5).contains(&n).then_some(Command::Rate(n as u8));
    }
    let digit = |d: &str| match d.parse::<u8>() {
        Ok(n @ 1..=5) => Some(n),
        _ => None,
    };
    if let Some(n) = digit(s) {
        return Some(Command::Number(n));
    }
    let stripped = s
        .strip_suffix("分")
        .or_else(|| s.strip_suffix("星"))
        .or_else(|| s.strip_suffix("/5"))
        .or_else(|| s.strip_suffix(" stars"))
        .or_else(|| s.strip_suffix(" star"))?;
    digit(stripped.trim()).map(Command::Rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<Command> {
        parse(s)
    }

    #[test]
    fn human_is_recognised_as_slash_command_and_plain_words_in_both_languages() {
        for s in [
            "/human",
            "/human@KefuBot",
            "转人工",
            "人工客服",
            "人工",
            "真人",
            "real person",
            "Human",
            "agent",
            "talk to a human",
            "请转人工吧",
            "Real person please!",
            "轉人工",
            "人工！",
            "／ｈｕｍａｎ",
        ] {
            assert_eq!(p(s), Some(Command::Human), "{s}");
        }
    }

    #[test]
    fn a_question_mentioning_a_human_is_not_a_command() {
        assert_eq!(p("how do I talk to a human about fees?"), None);
        assert_eq!(p("人工客服几点上班"), None);
    }

    #[test]
    fn cancel_is_recognised_in_both_languages() {
        for s in ["/cancel", "取消", "cancel", "算了"] {
            assert_eq!(p(s), Some(Command::Cancel), "{s}");
        }
    }

    #[test]
    fn transcript_is_recognised_in_both_languages() {
        for s in ["/transcript", "聊天记录", "transcript", "chat history"] {
            assert_eq!(p(s), Some(Command::Transcript), "{s}");
        }
    }

    #[test]
    fn language_switches_are_recognised_as_slash_commands_and_requests() {
        for s in [
            "/lang en",
            "/lang english",
            "/en",
            "English please",
            "英文",
            "in English",
        ] {
            assert_eq!(p(s), Some(Command::Language(Lang::En)), "{s}");
        }
        for s in [
            "/lang zh",
            "/zh",
            "说中文",
            "请说中文",
            "中文",
            "Chinese please",
        ] {
            assert_eq!(p(s), Some(Command::Language(Lang::Zh)), "{s}");
        }
    }

    #[test]
    fn help_and_start_are_recognised() {
        for s in ["/help", "帮助", "help", "菜单"] {
            assert_eq!(p(s), Some(Command::Help), "{s}");
        }
        assert_eq!(p("/start"), Some(Command::Start));
    }

    #[test]
    fn button_payloads_parse_to_their_commands() {
        assert_eq!(p("/yes"), Some(Command::Yes));
        assert_eq!(p("/no"), Some(Command::No));
        assert_eq!(p("/neither"), Some(Command::Neither));
        assert_eq!(p("/skip"), Some(Command::Skip));
        assert_eq!(
            p("/pick withdrawal.failed"),
            Some(Command::Pick("withdrawal.failed".into()))
        );
        assert_eq!(p("/rate 4"), Some(Command::Rate(4)));
        assert_eq!(p("/rate 9"), Some(Command::Unknown));
        assert_eq!(p("/frobnicate"), Some(Command::Unknown));
    }

    #[test]
    fn yes_and_no_are_recognised_as_plain_words() {
        for s in ["yes", "是的", "有帮助", "好的", "OK", "需要"] {
            assert_eq!(p(s), Some(Command::Yes), "{s}");
        }
        for s in ["no", "没有", "没用", "不用了", "Nope.", "不需要"] {
            assert_eq!(p(s), Some(Command::No), "{s}");
        }
        assert_eq!(p("都不是"), Some(Command::Neither));
    }

    #[test]
    fn skip_is_recognised_in_both_languages() {
        for s in ["skip", "跳过", "不知道", "/skip"] {
            assert_eq!(p(s), Some(Command::Skip), "{s}");
        }
    }

    #[test]
    fn ratings_are_numbers_stars_or_scores() {
        assert_eq!(p("4"), Some(Command::Number(4)));
        assert_eq!(p("５"), Some(Command::Number(5)));
        assert_eq!(p("4分"), Some(Command::Rate(4)));
        assert_eq!(p("3 stars"), Some(Command::Rate(3)));
        assert_eq!(p("★★★★"), Some(Command::Rate(4)));
        assert_eq!(p("⭐⭐"), Some(Command::Rate(2)));
        assert_eq!(p("6"), None);
        assert_eq!(p("12345678"), None);
    }

    #[test]
    fn normalising_folds_width_case_spaces_and_trailing_punctuation() {
        assert_eq!(normalise("  ＨＵＭＡＮ   Agent！！ "), "human agent");
        assert_eq!(normalise("转人工。"), "转人工");
    }
}
