//! Every phrase the bot says, in Chinese and English, in one place so they can be reviewed (and
//! translated further) together. The policy never writes user-facing text itself.
//!
//! Wording rules: say what happens next, never blame the user, and repeat the two anti-fraud facts
//! wherever a user might meet an impostor (greeting, escalation, secret warning): staff never
//! message first, and never ask for passwords, codes, seed phrases or private keys.

use std::time::Duration;

use chrono::{DateTime, Datelike, Utc, Weekday};
use chrono_tz::Tz;
use kefu_nlu::secrets::SecretKind;

use crate::details::DetailKind;
use crate::event::SecretFound;
use crate::hours::SupportHours;
use crate::model::Priority;
use crate::state::Lang;

fn t(lang: Lang, zh: &str, en: &str) -> String {
    match lang {
        Lang::Zh => zh.to_owned(),
        Lang::En => en.to_owned(),
    }
}

/// First-contact greeting: who the bot is, what it can do, and the anti-fraud facts.
pub fn greeting(lang: Lang, name: Option<&str>) -> String {
    match lang {
        Lang::Zh => format!(
            "您好，我是{}智能客服。我可以解答充值、提币、账户与安全、实名认证、交易和钱包等问题，也可以随时为您转接人工客服（发送“转人工”）。\n\
             ⚠️ 请注意：我们的客服绝不会主动私信您，也绝不会索要您的密码、验证码、助记词或私钥。\n\
             发送“帮助”查看全部指令。",
            name.unwrap_or("")
        ),
        Lang::En => format!(
            "Hello, I'm the {}support assistant. I can answer questions about deposits, withdrawals, account security, verification (KYC), trading and the wallet, and pass you to a human agent at any time (send \"human\").\n\
             ⚠️ Please note: our staff will never message you first, and will never ask for your password, verification codes, seed phrase or private key.\n\
             Send \"help\" to see all commands.",
            name.map(|n| format!("{n} ")).unwrap_or_default()
        ),
    }
}

/// The command list.
pub fn help(lang: Lang) -> String {
    t(
        lang,
        "直接用一句话描述您的问题即可，例如“提币一直没到账”。\n指令：\n\
         • 转人工（/human）：联系人工客服\n\
         • 取消（/cancel）：取消当前操作或排队中的工单\n\
         • 聊天记录（/transcript）：获取您的聊天记录（敏感信息已隐藏）\n\
         • English / 说中文（/lang en、/lang zh）：切换语言\n\
         • 帮助（/help）：显示本说明",
        "Just describe your problem in a sentence, e.g. \"my withdrawal hasn't arrived\".\nCommands:\n\
         • human (/human): talk to a human agent\n\
         • cancel (/cancel): cancel what's in progress, or your queued ticket\n\
         • transcript (/transcript): get your chat transcript (secrets hidden)\n\
         • 说中文 / English (/lang zh, /lang en): switch language\n\
         • help (/help): show this",
    )
}

/// Reply to a slash command the bot does not know.
pub fn unknown_command(lang: Lang) -> String {
    format!(
        "{}\n{}",
        t(
            lang,
            "抱歉，我不认识这个指令。",
            "Sorry, I don't know that command."
        ),
        help(lang)
    )
}

fn secret_names(lang: Lang, secrets: &[SecretFound]) -> String {
    let mut names: Vec<String> = Vec::new();
    for s in secrets {
        let name = match (lang, s.kind) {
            (Lang::Zh, SecretKind::SeedPhrase) => format!("助记词（{} 个词）", s.words),
            (Lang::En, SecretKind::SeedPhrase) => format!("a seed phrase ({} words)", s.words),
            (Lang::Zh, SecretKind::ExtendedPrivateKey) => "扩展私钥".to_owned(),
            (Lang::En, SecretKind::ExtendedPrivateKey) => "an extended private key".to_owned(),
            (Lang::Zh, _) => "私钥".to_owned(),
            (Lang::En, _) => "a private key".to_owned(),
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    match lang {
        Lang::Zh => names.join("、"),
        Lang::En => names.join(" and "),
    }
}

/// Sent first whenever a message carried a seed phrase or private key.
pub fn secret_warning(lang: Lang, secrets: &[SecretFound]) -> String {
    let what = secret_names(lang, secrets);
    match lang {
        Lang::Zh => format!(
            "⚠️ 您的消息中包含{what}。我们已将其隐藏，不会保存或转发，并尝试删除了这条消息。\n\
             请把这个钱包视为已泄露：任何看到过它的人都可以转走您的资产。请立即创建一个新钱包（新的助记词），把全部资金转过去，并停止使用旧钱包。\n\
             客服永远不会向您索要助记词、私钥、密码或验证码，任何索要的人都是骗子。"
        ),
        Lang::En => format!(
            "⚠️ Your message contained {what}. We have hidden it, will not store or forward it, and tried to delete the message.\n\
             Treat that wallet as compromised: anyone who saw it can take your funds. Create a new wallet (a new seed phrase) now, move all funds to it, and stop using the old one.\n\
             Staff will never ask for your seed phrase, private key, password or codes; anyone who does is a scammer."
        ),
    }
}

/// Appended to an FAQ answer, above the yes/no buttons.
pub fn did_it_help(lang: Lang) -> String {
    t(lang, "这个回答对您有帮助吗？", "Did this answer help?")
}

/// Button labels: (yes, no) under "did this help?".
pub fn feedback_buttons(lang: Lang) -> (String, String) {
    (
        t(lang, "👍 有帮助", "👍 Yes"),
        t(lang, "👎 没有帮助", "👎 No"),
    )
}

/// After "yes, it helped".
pub fn glad_it_helped(lang: Lang) -> String {
    t(
        lang,
        "太好了！还有其他问题随时问我。",
        "Great! Ask me anytime if there's anything else.",
    )
}

/// Why a human is being offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferCause {
    /// The answer did not help.
    AnswerDidNotHelp,
    /// Neither suggested topic was right.
    Neither,
    /// Two messages in a row were not understood.
    NotUnderstood,
}

/// "Shall I pass you to a human?"
pub fn offer_human(lang: Lang, cause: OfferCause) -> String {
    let (zh, en) = match cause {
        OfferCause::AnswerDidNotHelp => (
            "抱歉没能帮到您。需要为您转接人工客服吗？",
            "Sorry that didn't help. Shall I pass you to a human agent?",
        ),
        OfferCause::Neither => (
            "明白了。需要为您转接人工客服吗？您也可以换个说法再问我。",
            "Understood. Shall I pass you to a human agent? You can also rephrase your question.",
        ),
        OfferCause::NotUnderstood => (
            "抱歉，我还是没能理解您的问题。需要为您转接人工客服吗？",
            "Sorry, I still don't understand. Shall I pass you to a human agent?",
        ),
    };
    t(lang, zh, en)
}

/// The human offer asked again, after answering a question asked in between.
pub fn offer_again(lang: Lang) -> String {
    t(
        lang,
        "需要为您转接人工客服吗？",
        "Shall I pass you to a human agent?",
    )
}

/// Button labels: (yes, no) under a human offer.
pub fn offer_buttons(lang: Lang) -> (String, String) {
    (
        t(lang, "转人工", "Yes, a human"),
        t(lang, "不用了", "No, thanks"),
    )
}

/// After "no" to a human offer.
pub fn declined_human(lang: Lang) -> String {
    t(
        lang,
        "好的。您可以换个说法再问我，需要人工时随时发送“转人工”。",
        "OK. Feel free to rephrase your question, and send \"human\" whenever you want a person.",
    )
}

/// "Did you mean A or B?"
pub fn clarify(lang: Lang, a: &str, b: &str) -> String {
    match lang {
        Lang::Zh => format!("您是想问「{a}」还是「{b}」？"),
        Lang::En => format!("Did you mean \u{201c}{a}\u{201d} or \u{201c}{b}\u{201d}?"),
    }
}

/// The "neither" button's label.
pub fn neither_button(lang: Lang) -> String {
    t(lang, "都不是", "Neither")
}

/// First low-confidence miss: ask to rephrase.
pub fn rephrase(lang: Lang) -> String {
    t(
        lang,
        "抱歉，我没太理解您的意思。能换个说法吗？例如“提币一直没到账”“谷歌验证器丢了”“怎么实名认证”。需要人工时发送“转人工”。",
        "Sorry, I didn't quite get that. Could you put it another way? For example \"withdrawal not arrived\", \"lost my 2FA\" or \"how to do KYC\". Send \"human\" for a person.",
    )
}

/// First out-of-scope message: what the bot can help with.
pub fn out_of_scope(lang: Lang) -> String {
    t(
        lang,
        "这个问题不在我能帮忙的范围内。我可以解答：充值和提币、账户与安全（登录、谷歌验证、被盗）、实名认证、交易、钱包和网络等问题。需要人工时发送“转人工”。",
        "That's outside what I can help with. I can answer questions about deposits and withdrawals, account security (login, 2FA, hacked accounts), verification (KYC), trading, and the wallet and networks. Send \"human\" for a person.",
    )
}

/// A button payload that no longer applies (an old message's button).
pub fn stale_button(lang: Lang) -> String {
    t(
        lang,
        "这个问题已经过期了。请直接告诉我您需要什么帮助。",
        "That question has expired. Just tell me what you need help with.",
    )
}

/// An option of "A or B?" chosen after the KB was updated and that topic is no longer in it.
pub fn option_gone(lang: Lang) -> String {
    t(
        lang,
        "抱歉，我的问答内容刚刚更新了，您选的这个选项已经不在了。请再说一下您的问题，我重新为您解答。",
        "Sorry, my answers were just updated and the option you chose is no longer there. Please ask your question again.",
    )
}

/// A message without text (a photo, a sticker).
pub fn text_only(lang: Lang) -> String {
    t(
        lang,
        "抱歉，我只能读懂文字消息。请用文字描述您的问题。",
        "Sorry, I can only read text. Please describe your problem in words.",
    )
}

/// The user's message was longer than the bot keeps: only its beginning was read and stored.
pub fn message_cut(lang: Lang) -> String {
    t(
        lang,
        "您的消息太长了，我只读取并保存了开头部分。请把问题写短一些，或分几条发送。",
        "Your message was too long: I read and kept only its beginning. Please keep your question short, or split it over several messages.",
    )
}

/// Before the first detail question.
pub fn collect_intro(lang: Lang, count: usize) -> String {
    match lang {
        Lang::Zh => {
            format!("为了让客服更快处理，请先回答 {count} 个小问题（不清楚的可以发送“跳过”）。")
        }
        Lang::En => format!(
            "So staff can help faster, please answer {count} short question{} first (send \"skip\" for any you don't know).",
            if count == 1 { "" } else { "s" }
        ),
    }
}

/// The question for one detail, numbered "(2/4)".
pub fn ask_detail(lang: Lang, name: &str, index: usize, total: usize) -> String {
    let q = match (DetailKind::of(name), lang) {
        (DetailKind::TxId, Lang::Zh) => "请发送交易哈希（TxID），可在“资金记录”中复制。".to_owned(),
        (DetailKind::TxId, Lang::En) => {
            "Please send the transaction hash (TxID); you can copy it from Assets → History."
                .to_owned()
        }
        (DetailKind::Amount, Lang::Zh) => "金额是多少？请带上币种，例如“100 USDT”。".to_owned(),
        (DetailKind::Amount, Lang::En) => {
            "What was the amount? Include the coin, e.g. \"100 USDT\".".to_owned()
        }
        (DetailKind::Time, Lang::Zh) => "大约是什么时间？例如“今天 14:30”。".to_owned(),
        (DetailKind::Time, Lang::En) => "Roughly when was it? E.g. \"today 14:30\".".to_owned(),
        (DetailKind::Network, Lang::Zh) => {
            "使用的是哪个网络？例如 TRC20、ERC20、BEP20。".to_owned()
        }
        (DetailKind::Network, Lang::En) => {
            "Which network was used? E.g. TRC20, ERC20, BEP20.".to_owned()
        }
        (DetailKind::Address, Lang::Zh) => "相关的钱包地址是什么？".to_owned(),
        (DetailKind::Address, Lang::En) => "What is the wallet address involved?".to_owned(),
        (DetailKind::Uid, Lang::Zh) => {
            "您的 UID 是多少？（App“我的”页面顶部的一串数字）".to_owned()
        }
        (DetailKind::Uid, Lang::En) => {
            "What is your UID? (The number at the top of the Profile page.)".to_owned()
        }
        (DetailKind::Coin, Lang::Zh) => "是哪个币种？例如 USDT、BTC。".to_owned(),
        (DetailKind::Coin, Lang::En) => "Which coin? E.g. USDT, BTC.".to_owned(),
        (DetailKind::Other, Lang::Zh) => format!("请提供：{name}"),
        (DetailKind::Other, Lang::En) => format!("Please provide: {name}"),
    };
    format!("({index}/{total}) {q}")
}

/// Re-asking after an answer that doesn't fit the detail's format.
pub fn detail_hint(lang: Lang, name: &str) -> String {
    let hint = match (DetailKind::of(name), lang) {
        (DetailKind::TxId, Lang::Zh) => {
            "这看起来不像交易哈希。以太坊类网络是 0x 开头加 64 位十六进制字符，比特币和波场是 64 位十六进制字符，Solana 是 87–88 位字母数字。"
        }
        (DetailKind::TxId, Lang::En) => {
            "That doesn't look like a transaction hash. On Ethereum-like networks it is 0x followed by 64 hex characters, on Bitcoin and TRON 64 hex characters, on Solana 87–88 letters and digits."
        }
        (DetailKind::Amount, Lang::Zh) => {
            "没能识别金额。请发送数字和币种，例如“100 USDT”或“0.5 BTC”。"
        }
        (DetailKind::Amount, Lang::En) => {
            "I couldn't read an amount. Send a number and the coin, e.g. \"100 USDT\" or \"0.5 BTC\"."
        }
        (DetailKind::Network, Lang::Zh) => {
            "没能识别网络。请发送网络名称，例如 TRC20、ERC20、BEP20、BTC、SOL。"
        }
        (DetailKind::Network, Lang::En) => {
            "I couldn't recognise the network. Send its name, e.g. TRC20, ERC20, BEP20, BTC, SOL."
        }
        (DetailKind::Address, Lang::Zh) => {
            "这看起来不像钱包地址。以太坊类地址是 0x 加 40 位十六进制字符，波场地址以 T 开头共 34 位，比特币地址以 1、3 或 bc1 开头。"
        }
        (DetailKind::Address, Lang::En) => {
            "That doesn't look like a wallet address. Ethereum-like addresses are 0x followed by 40 hex characters, TRON addresses start with T (34 characters), Bitcoin ones with 1, 3 or bc1."
        }
        (DetailKind::Uid, Lang::Zh) => "UID 是一串数字（5–20 位），在 App“我的”页面顶部。",
        (DetailKind::Uid, Lang::En) => {
            "A UID is a number of 5–20 digits, shown at the top of the Profile page."
        }
        (DetailKind::Coin, Lang::Zh) => "没能识别币种。请发送币种代码，例如 USDT、BTC、ETH。",
        (DetailKind::Coin, Lang::En) => {
            "I couldn't recognise the coin. Send its ticker, e.g. USDT, BTC, ETH."
        }
        (DetailKind::Time | DetailKind::Other, Lang::Zh) => "请用文字回答。",
        (DetailKind::Time | DetailKind::Other, Lang::En) => "Please answer in text.",
    };
    format!(
        "{hint}{}",
        t(
            lang,
            "请重新发送，或发送“跳过”。",
            " Please send it again, or send \"skip\"."
        )
    )
}

/// Button labels under a detail question: (skip, cancel).
pub fn detail_buttons(lang: Lang) -> (String, String) {
    (t(lang, "跳过", "Skip"), t(lang, "取消", "Cancel"))
}

/// After "cancel" during the detail questions.
pub fn collect_cancelled(lang: Lang) -> String {
    t(
        lang,
        "好的，已取消，不会创建工单。还有其他问题随时问我。",
        "OK, cancelled; no ticket was opened. Ask me anytime if there's anything else.",
    )
}

/// After "cancel" when nothing was in progress.
pub fn nothing_to_cancel(lang: Lang) -> String {
    t(
        lang,
        "目前没有需要取消的操作。有什么可以帮您？",
        "There's nothing to cancel. How can I help?",
    )
}

/// After "cancel" on a pending question (feedback, clarification, human offer).
pub fn cancelled(lang: Lang) -> String {
    t(
        lang,
        "好的，已取消。有什么可以帮您？",
        "OK, cancelled. How can I help?",
    )
}

/// What the bot goes back to after answering a question asked in the middle of another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// The ticket's detail questions.
    Details,
    /// A question the bot asked (a human offer, "did you mean A or B?").
    Question,
    /// The rating of the help staff gave.
    Rating,
    /// The optional comment after a rating.
    Comment,
}

/// After answering an interruption: where the conversation was, and the pending question again.
pub fn resume(lang: Lang, to: Resume, question: &str) -> String {
    let (zh, en) = match to {
        Resume::Details => ("继续刚才的工单信息：", "Back to your ticket details: "),
        Resume::Question => ("回到刚才的问题：", "Back to my question: "),
        Resume::Rating => ("回到刚才的评分：", "Back to the rating: "),
        Resume::Comment => ("回到刚才的评价：", "Back to your feedback: "),
    };
    format!("{}{question}", t(lang, zh, en))
}

/// The rating question when it is asked again (after an interruption).
pub fn rate_again(lang: Lang) -> String {
    t(
        lang,
        "请为刚才的人工服务打分（1–5 分，5 分最好）。",
        "Please rate the help staff gave you (1–5, 5 is best).",
    )
}

/// Under an answer given while the user's ticket waits in the queue.
pub fn ticket_stays_open(lang: Lang, code: &str) -> String {
    match lang {
        Lang::Zh => format!(
            "您的工单（核验码 {code}）仍在排队，客服会继续跟进；这个问题和回答也已记在工单里。"
        ),
        Lang::En => format!(
            "Your ticket (code {code}) stays open in the queue and staff will still follow up; this question and answer are on the ticket too."
        ),
    }
}

/// Under the first answer of a message that asked two things: the second is a button away.
pub fn also_asked(lang: Lang, title: &str) -> String {
    match lang {
        Lang::Zh => format!("您还问到「{title}」，点下面的按钮查看。"),
        Lang::En => format!(
            "You also asked about \u{201c}{title}\u{201d}: press the button below to see it."
        ),
    }
}

/// The label of the button that answers the second question of a message.
pub fn also_asked_button(title: &str) -> String {
    format!("➡️ {title}")
}

/// A goodbye when the KB has no "thanks" answer.
pub fn goodbye(lang: Lang) -> String {
    t(
        lang,
        "不客气！还有其他问题随时问我。",
        "You're welcome! Ask me anytime if there's anything else.",
    )
}

/// "about 5 minutes" / "约 5 分钟".
pub fn format_wait(lang: Lang, wait: Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60);
    match lang {
        Lang::Zh if minutes <= 1 => "不到 1 分钟".to_owned(),
        Lang::Zh if minutes < 90 => format!("约 {minutes} 分钟"),
        Lang::Zh => format!("约 {} 小时", minutes.div_ceil(60)),
        Lang::En if minutes <= 1 => "less than a minute".to_owned(),
        Lang::En if minutes < 90 => format!("about {minutes} minutes"),
        Lang::En => format!("about {} hours", minutes.div_ceil(60)),
    }
}

fn weekday(lang: Lang, d: Weekday) -> &'static str {
    let i = d.num_days_from_monday() as usize;
    match lang {
        Lang::Zh => ["周一", "周二", "周三", "周四", "周五", "周六", "周日"][i],
        Lang::En => ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][i],
    }
}

/// A moment in the support timezone: "周一 2025-05-12 09:00（Asia/Shanghai）".
pub fn format_time(lang: Lang, at: DateTime<Utc>, tz: Tz) -> String {
    let local = at.with_timezone(&tz);
    let day = weekday(lang, local.weekday());
    let when = local.format("%Y-%m-%d %H:%M");
    match lang {
        Lang::Zh => format!("{day} {when}（{}）", tz.name()),
        Lang::En => format!("{day} {when} ({})", tz.name()),
    }
}

/// "每天 09:00–21:00（Asia/Shanghai）" / "Mon–Fri 09:00–21:00 (Asia/Shanghai)".
pub fn describe_hours(lang: Lang, hours: &SupportHours) -> String {
    let mut days: Vec<Weekday> = hours.days.clone();
    days.sort_by_key(|d| d.num_days_from_monday());
    let contiguous = days
        .windows(2)
        .all(|w| w[0].num_days_from_monday() + 1 == w[1].num_days_from_monday());
    let days_text = match (days.len(), days.first(), days.last()) {
        (7, _, _) => t(lang, "每天", "daily"),
        (n, Some(a), Some(b)) if n > 2 && contiguous => match lang {
            Lang::Zh => format!("{}至{}", weekday(lang, *a), weekday(lang, *b)),
            Lang::En => format!("{}–{}", weekday(lang, *a), weekday(lang, *b)),
        },
        _ => days
            .iter()
            .map(|d| weekday(lang, *d))
            .collect::<Vec<_>>()
            .join(if lang == Lang::Zh { "、" } else { ", " }),
    };
    let span = if hours.open == hours.close {
        t(lang, "全天", "all day")
    } else {
        format!(
            "{}–{}",
            hours.open.format("%H:%M"),
            hours.close.format("%H:%M")
        )
    };
    match lang {
        Lang::Zh => format!("{days_text} {span}（{}）", hours.timezone.name()),
        Lang::En => format!("{days_text} {span} ({})", hours.timezone.name()),
    }
}

/// What the user learns when a ticket opens.
#[derive(Debug, Clone, Copy)]
pub struct TicketOpened<'a> {
    /// The verification code.
    pub code: &'a str,
    /// 1-based place in the queue.
    pub position: usize,
    /// Expected wait, when known.
    pub wait: Option<Duration>,
    /// The ticket's priority.
    pub priority: Priority,
    /// The support hours.
    pub hours: &'a SupportHours,
    /// Now.
    pub now: DateTime<Utc>,
}

/// The place in the queue and the wait, or when staff are back when they are off duty.
fn queue_status(lang: Lang, o: &TicketOpened<'_>) -> String {
    let position = match lang {
        Lang::Zh => format!("您目前排在第 {} 位", o.position),
        Lang::En => format!("You are number {} in the queue", o.position),
    };
    if !o.hours.is_open(o.now) {
        let back = match o.hours.next_open(o.now) {
            Some(at) => match lang {
                Lang::Zh => format!(
                    "。现在是非工作时间（工作时间：{}），客服将于 {} 上线后第一时间处理。",
                    describe_hours(lang, o.hours),
                    format_time(lang, at, o.hours.timezone)
                ),
                Lang::En => format!(
                    ". Staff are off duty now (hours: {}); they will pick this up when they are back at {}.",
                    describe_hours(lang, o.hours),
                    format_time(lang, at, o.hours.timezone)
                ),
            },
            None => t(
                lang,
                "。现在是非工作时间，客服上线后会第一时间处理。",
                ". Staff are off duty now; they will pick this up as soon as they are back.",
            ),
        };
        return position + &back;
    }
    match (lang, o.wait) {
        (Lang::Zh, Some(w)) => format!("{position}，预计等待{}。", format_wait(lang, w)),
        (Lang::En, Some(w)) => {
            format!("{position}; the expected wait is {}.", format_wait(lang, w))
        }
        (Lang::Zh, None) => format!("{position}。"),
        (Lang::En, None) => format!("{position}."),
    }
}

/// The escalation reply: code and how to use it, queue place, wait or when staff are back.
pub fn ticket_opened(lang: Lang, o: &TicketOpened<'_>) -> String {
    let urgent = o.priority >= Priority::Urgent;
    match lang {
        Lang::Zh => format!(
            "✅ 已为您转接人工客服{}。\n工单核验码：{}\n真正的客服接入时会先报出这个核验码，报不出的人都不是我们的客服。客服不会主动私信您，也绝不会索要密码、验证码、助记词或私钥。\n{}\n等待期间您可以继续补充说明，客服都会看到；发送“取消”可取消工单。",
            if urgent {
                "（已标记为紧急，优先处理）"
            } else {
                ""
            },
            o.code,
            queue_status(lang, o)
        ),
        Lang::En => format!(
            "✅ I've passed you to a human agent{}.\nTicket code: {}\nA real agent will quote this code when they join; anyone who can't is not our staff. Staff never message you first and never ask for passwords, codes, seed phrases or private keys.\n{}\nWhile you wait you can add details here; staff will see them. Send \"cancel\" to cancel the ticket.",
            if urgent { " (marked urgent)" } else { "" },
            o.code,
            queue_status(lang, o)
        ),
    }
}

/// The occasional reminder while queued (after relaying the user's message).
pub fn still_queued(lang: Lang, o: &TicketOpened<'_>) -> String {
    match lang {
        Lang::Zh => format!(
            "已把您的消息转给客服（工单核验码 {}）。{}",
            o.code,
            queue_status(lang, o)
        ),
        Lang::En => format!(
            "I've passed your message on (ticket code {}). {}",
            o.code,
            queue_status(lang, o)
        ),
    }
}

/// A staff member took the ticket.
pub fn staff_joined(lang: Lang, staff: &str, code: &str) -> String {
    match lang {
        Lang::Zh => format!(
            "客服 {staff} 已接入，对方会报出您的工单核验码 {code}。接下来您的消息会直接发给客服。"
        ),
        Lang::En => format!(
            "{staff} from our support team has joined and will quote your ticket code {code}. Your messages now go straight to them."
        ),
    }
}

/// The ticket was resolved: rate the help.
pub fn ask_rating(lang: Lang) -> String {
    t(
        lang,
        "客服已处理完您的问题，对话已交回智能客服。请为本次服务打分（1–5 分，5 分最好）：",
        "Staff have finished with your request and I'm back. Please rate the help you got (1–5, 5 is best):",
    )
}

/// After a score: invite a comment.
pub fn ask_comment(lang: Lang) -> String {
    t(
        lang,
        "谢谢您的评分！还有什么想告诉我们的吗？直接输入即可，或发送“跳过”。",
        "Thanks for rating! Anything you'd like to tell us? Just type it, or send \"skip\".",
    )
}

/// The label of the button that skips a comment.
pub fn skip_button(lang: Lang) -> String {
    t(lang, "跳过", "Skip")
}

/// After the rating (with or without a comment).
pub fn thanks_for_feedback(lang: Lang) -> String {
    t(
        lang,
        "感谢您的反馈！还有其他问题随时问我。",
        "Thank you for your feedback! Ask me anytime if there's anything else.",
    )
}

/// After the user cancelled their queued ticket.
pub fn ticket_cancelled_by_user(lang: Lang, code: &str) -> String {
    match lang {
        Lang::Zh => format!("已取消工单 {code}。如还需要帮助，随时告诉我。"),
        Lang::En => format!("Ticket {code} is cancelled. Tell me anytime if you need help."),
    }
}

/// The ticket was closed without being resolved.
pub fn ticket_closed(lang: Lang, code: &str) -> String {
    match lang {
        Lang::Zh => format!("工单 {code} 已关闭。如问题仍未解决，发送“转人工”可再次联系客服。"),
        Lang::En => format!(
            "Ticket {code} has been closed. If your problem isn't solved, send \"human\" to reach staff again."
        ),
    }
}

/// Staff gave the ticket back to the queue: the next staff member will take it.
pub fn back_in_queue(lang: Lang, o: &TicketOpened<'_>) -> String {
    match lang {
        Lang::Zh => format!(
            "刚才的客服已把您的工单（核验码 {}）交回队列，下一位客服会接着处理。{}",
            o.code,
            queue_status(lang, o)
        ),
        Lang::En => format!(
            "The staff member handed your ticket (code {}) back to the queue; the next one will take over. {}",
            o.code,
            queue_status(lang, o)
        ),
    }
}

/// A button press as the transcript shows it: the label the user saw, marked as a press.
pub fn pressed(label: &str) -> String {
    format!("🔘 {label}")
}

/// "human" while already queued.
pub fn already_queued(lang: Lang, o: &TicketOpened<'_>) -> String {
    match lang {
        Lang::Zh => format!(
            "您已在人工客服队列中（工单核验码 {}）。{}",
            o.code,
            queue_status(lang, o)
        ),
        Lang::En => format!(
            "You're already in the queue for a human agent (ticket code {}). {}",
            o.code,
            queue_status(lang, o)
        ),
    }
}

/// After a language switch.
pub fn language_set(lang: Lang) -> String {
    t(
        lang,
        "好的，接下来我会用中文回复您。",
        "OK, I'll reply in English from now on.",
    )
}

/// Flood control.
pub fn slow_down(lang: Lang) -> String {
    t(
        lang,
        "您发送消息太快了，请稍等片刻再发。我会继续为您服务。",
        "You're sending messages very quickly; please wait a moment before sending more. I'm still here for you.",
    )
}

/// Heading of the transcript the service sends.
pub fn transcript_header(lang: Lang) -> String {
    t(
        lang,
        "以下是您的聊天记录（敏感信息已隐藏）：",
        "Here is your chat transcript (secrets are hidden):",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_round_up_to_minutes_and_hours() {
        assert_eq!(
            format_wait(Lang::En, Duration::from_secs(30)),
            "less than a minute"
        );
        assert_eq!(format_wait(Lang::Zh, Duration::from_secs(301)), "约 6 分钟");
        assert_eq!(
            format_wait(Lang::En, Duration::from_secs(3 * 3600)),
            "about 3 hours"
        );
    }

    #[test]
    fn hours_are_described_as_ranges_or_lists() {
        let h = SupportHours::parse("Asia/Shanghai", "mon-fri", "09:00", "21:00").unwrap();
        assert_eq!(
            describe_hours(Lang::En, &h),
            "Mon–Fri 09:00–21:00 (Asia/Shanghai)"
        );
        assert_eq!(
            describe_hours(Lang::Zh, &h),
            "周一至周五 09:00–21:00（Asia/Shanghai）"
        );
        let h = SupportHours::parse("UTC", "daily", "00:00", "00:00").unwrap();
        assert_eq!(describe_hours(Lang::En, &h), "daily all day (UTC)");
    }

    #[test]
    fn the_secret_warning_names_what_was_found_without_repeating_it() {
        let found = [SecretFound {
            kind: SecretKind::SeedPhrase,
            words: 12,
        }];
        let zh = secret_warning(Lang::Zh, &found);
        assert!(
            zh.contains("助记词（12 个词）") && zh.contains("新钱包"),
            "{zh}"
        );
        let en = secret_warning(Lang::En, &found);
        assert!(
            en.contains("seed phrase (12 words)") && en.contains("compromised"),
            "{en}"
        );
    }
}
