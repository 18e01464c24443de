//! The staff side: what staff can do to a ticket, what came of it, and every text staff read —
//! in the staff's language (`support.staff_language`), or in the language of the person who
//! pressed a button when a platform says which.
//!
//! Adapters never write a staff-facing phrase of their own: the service puts posts for the staff
//! spaces in the outbox with these texts, and the adapters show the short refusals of a button
//! press (Telegram's callback alert, Discord's ephemeral reply) from [`button_outcome`] and
//! [`only_staff`].

use crate::model::{Attachment, Sender, Ticket, TranscriptLine};
use crate::state::Lang;

/// What a staff member does to a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffAction {
    /// Take the ticket: the bot goes silent, what the staff member writes goes to the user.
    Claim,
    /// Write to the user (claims a queued ticket first).
    Reply(String),
    /// Hand the chat back to the bot, which asks the user for a rating.
    Resolve,
    /// Give a claimed ticket back to the queue.
    Release,
}

impl StaffAction {
    /// The verb as button payloads spell it (`staff:claim:7`).
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Reply(_) => "reply",
            Self::Resolve => "resolve",
            Self::Release => "release",
        }
    }
}

/// What came of a staff action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffOutcome {
    /// Done.
    Done,
    /// Another staff member holds the ticket.
    HeldBy(String),
    /// The ticket is queued, and the action needs it claimed (resolve, release).
    NotClaimed,
    /// The ticket is resolved or cancelled.
    Closed,
    /// No such ticket.
    NotFound,
}

/// A staff-space button: a payload the adapters hand back as a staff action.
pub fn button_payload(verb: &str, ticket_id: i64) -> String {
    format!("staff:{verb}:{ticket_id}")
}

/// Parses a staff button payload (`staff:claim:7`) into its action and ticket id.
pub fn parse_button(payload: &str) -> Option<(StaffAction, i64)> {
    let rest = payload.strip_prefix("staff:")?;
    let (verb, id) = rest.split_once(':')?;
    let id = id.parse().ok()?;
    let action = match verb {
        "claim" => StaffAction::Claim,
        "resolve" => StaffAction::Resolve,
        "release" => StaffAction::Release,
        _ => return None,
    };
    Some((action, id))
}

/// A choice on the buttons of the "what was the question about?" post that follows a resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelButton {
    /// This intent of the KB.
    Intent(String),
    /// A topic the KB does not cover yet.
    NewTopic,
    /// Not a question.
    NotAQuestion,
}

/// A label button's payload: `staff:label:7:i:withdrawal.pending`, `staff:label:7:new`,
/// `staff:label:7:none`.
pub fn label_payload(ticket_id: i64, choice: &LabelButton) -> String {
    match choice {
        LabelButton::Intent(id) => format!("staff:label:{ticket_id}:i:{id}"),
        LabelButton::NewTopic => format!("staff:label:{ticket_id}:new"),
        LabelButton::NotAQuestion => format!("staff:label:{ticket_id}:none"),
    }
}

/// Parses a label button's payload ([`label_payload`]) into its ticket id and choice.
pub fn parse_label_button(payload: &str) -> Option<(i64, LabelButton)> {
    let rest = payload.strip_prefix("staff:label:")?;
    let (id, choice) = rest.split_once(':')?;
    let id = id.parse().ok()?;
    let choice = match choice {
        "new" => LabelButton::NewTopic,
        "none" => LabelButton::NotAQuestion,
        other => {
            let intent = other.strip_prefix("i:")?;
            if intent.is_empty() {
                return None;
            }
            LabelButton::Intent(intent.to_owned())
        }
    };
    Some((id, choice))
}

/// The post that follows a resolve in the staff space it came from: what was the user's
/// question (`question`, redacted) about?
pub fn label_question(lang: Lang, question: &str) -> String {
    let question = question.trim();
    match (lang, question.is_empty()) {
        (Lang::Zh, true) => "用户的问题属于哪一类？".to_owned(),
        (Lang::Zh, false) => format!("用户的问题属于哪一类？\n「{question}」"),
        (Lang::En, true) => "What was the question about?".to_owned(),
        (Lang::En, false) => format!("What was the question about?\n“{question}”"),
    }
}

/// Labels of the "new topic" and "not a question" buttons.
pub fn label_buttons(lang: Lang) -> (String, String) {
    (
        t(lang, "新话题", "New topic"),
        t(lang, "不是问题", "Not a question"),
    )
}

/// The answer to a label button: what the ticket is now labelled as (`what`).
pub fn labelled(lang: Lang, what: &str) -> String {
    match lang {
        Lang::Zh => format!("已记录：{what}"),
        Lang::En => format!("Labelled: {what}"),
    }
}

/// The answer to a label button that named an intent the KB no longer has.
pub fn label_refused(lang: Lang) -> String {
    t(
        lang,
        "知识库里已没有这个意图，请在控制台中标注。",
        "The KB no longer has this intent: label the ticket in the console.",
    )
}

/// How a label reads in [`labelled`]: the intent id, "new topic: NAME", "not a question".
pub fn label_text(lang: Lang, kind: &str, name: Option<&str>) -> String {
    match (kind, name) {
        ("new_topic", Some(name)) => match lang {
            Lang::Zh => format!("新话题：{name}"),
            Lang::En => format!("new topic: {name}"),
        },
        ("not_a_question", _) => t(lang, "不是问题", "not a question"),
        (_, Some(name)) => name.to_owned(),
        (kind, None) => kind.to_owned(),
    }
}

/// The language of a platform locale tag ("zh-hans", "zh_CN", "en-US"), `None` when unknown.
pub fn lang_of_locale(locale: &str) -> Option<Lang> {
    let l = locale.trim().to_ascii_lowercase();
    if l.starts_with("zh") {
        Some(Lang::Zh)
    } else if l.starts_with("en") {
        Some(Lang::En)
    } else {
        None
    }
}

fn t(lang: Lang, zh: &str, en: &str) -> String {
    match lang {
        Lang::Zh => zh.to_owned(),
        Lang::En => en.to_owned(),
    }
}

/// Labels of the Claim, Resolve and Release buttons.
pub fn button_labels(lang: Lang) -> [(String, &'static str); 3] {
    [
        (t(lang, "接单", "Claim"), "claim"),
        (t(lang, "解决", "Resolve"), "resolve"),
        (t(lang, "退回队列", "Release"), "release"),
    ]
}

/// The ticket's summary, posted first in its staff space: code, priority, intent, user, reason,
/// time and the details collected.
pub fn ticket_summary(lang: Lang, ticket: &Ticket) -> String {
    let intent = ticket.intent.as_deref().unwrap_or(match lang {
        Lang::Zh => "无",
        Lang::En => "none",
    });
    let opened = ticket.created_at.format("%Y-%m-%d %H:%M UTC");
    let c = &ticket.conversation;
    let mut s = match lang {
        Lang::Zh => format!(
            "工单 {} · 优先级 {} · 意图 {intent}\n用户：{}（{} 用户 {}）\n原因：{}\n创建：{opened}",
            ticket.code,
            ticket.priority.as_str(),
            ticket.user_name,
            c.platform,
            c.user_id,
            ticket.reason,
        ),
        Lang::En => format!(
            "Ticket {} · priority {} · intent {intent}\nUser: {} ({} user {})\nReason: {}\nOpened: {opened}",
            ticket.code,
            ticket.priority.as_str(),
            ticket.user_name,
            c.platform,
            c.user_id,
            ticket.reason,
        ),
    };
    if !ticket.details.is_empty() {
        s.push_str(&t(lang, "\n详情：", "\nDetails:"));
        let skipped = t(lang, "（跳过）", "(skipped)");
        for d in &ticket.details {
            s.push_str(&format!(
                "\n  {}: {}",
                d.name,
                d.value.as_deref().unwrap_or(&skipped)
            ));
        }
    }
    s
}

/// The heading above the transcript in the opening post.
pub fn transcript_heading(lang: Lang) -> String {
    t(lang, "对话记录：", "Transcript:")
}

/// Said in the opening post when the transcript is attached as a file instead.
pub fn transcript_attached(lang: Lang) -> String {
    t(lang, "对话记录见附件。", "Transcript attached.")
}

/// A transcript for staff, one line each: "[MM-DD HH:MM] who: text".
pub fn render_transcript(lang: Lang, lines: &[TranscriptLine]) -> String {
    lines
        .iter()
        .map(|l| {
            let who = match &l.sender {
                Sender::User => t(lang, "用户", "user"),
                Sender::Bot => t(lang, "机器人", "bot"),
                Sender::Staff(name) => name.clone(),
            };
            format!("[{}] {who}: {}", l.at.format("%m-%d %H:%M"), l.text)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A user's line relayed into the staff space.
pub fn relayed_line(text: &str) -> String {
    format!("👤 {text}")
}

/// An attachment relayed into the staff space, as text (a link where the platform gave one).
/// `from` is the user's platform, named when the file cannot be shown here.
pub fn attachment_line(lang: Lang, a: &Attachment, from: &str) -> String {
    let what = match (&a.name, lang) {
        (Some(name), _) => format!("{} {name}", a.kind.as_str()),
        (None, _) => a.kind.as_str().to_owned(),
    };
    match &a.url {
        Some(url) => format!("📎 {what} {url}"),
        None => match lang {
            Lang::Zh => format!("📎 {what}（用户在 {from} 上发送，请在该平台查看）"),
            Lang::En => format!("📎 {what} (sent on {from}: open it there)"),
        },
    }
}

/// Posted in every staff space of a ticket when someone claims it.
pub fn claimed(lang: Lang, staff: &str) -> String {
    match lang {
        Lang::Zh => format!("{staff} 已接单：此后在这里输入的内容会发给用户。"),
        Lang::En => {
            format!("{staff} claimed this ticket: what they type here now goes to the user.")
        }
    }
}

/// Posted when a ticket is resolved.
pub fn resolved(lang: Lang, staff: &str) -> String {
    match lang {
        Lang::Zh => format!("{staff} 已解决此工单，对话交回机器人，用户将被邀请评分。"),
        Lang::En => format!(
            "Resolved by {staff}: the chat is back with the bot, which asks the user for a rating."
        ),
    }
}

/// Posted when a ticket goes back to the queue.
pub fn released(lang: Lang, staff: &str) -> String {
    match lang {
        Lang::Zh => format!("{staff} 已把工单退回队列，等待其他客服接单。"),
        Lang::En => format!("{staff} handed this ticket back to the queue."),
    }
}

/// Posted when the user cancelled the ticket (or it was closed without being resolved).
pub fn cancelled(lang: Lang) -> String {
    t(
        lang,
        "用户已取消此工单。",
        "The user cancelled this ticket.",
    )
}

/// Shown to someone who presses a staff button or writes in a staff space without being staff.
pub fn only_staff(lang: Lang) -> String {
    t(
        lang,
        "只有客服人员可以这样做。",
        "Only support staff can do this.",
    )
}

/// A staff message that was not sent to the user, and why.
pub fn not_sent(lang: Lang, outcome: &StaffOutcome) -> Option<String> {
    Some(match (outcome, lang) {
        (StaffOutcome::Done, _) => return None,
        (StaffOutcome::HeldBy(other), Lang::Zh) => {
            format!("{other} 正在处理此工单：您的消息没有发给用户。")
        }
        (StaffOutcome::HeldBy(other), Lang::En) => {
            format!("{other} holds this ticket: your message was not sent to the user.")
        }
        (StaffOutcome::NotClaimed | StaffOutcome::Closed | StaffOutcome::NotFound, _) => t(
            lang,
            "此工单已关闭：您的消息没有发给用户。",
            "This ticket is closed: your message was not sent to the user.",
        ),
    })
}

/// The short answer to a staff button press (Telegram's callback toast, the desk's message).
pub fn button_outcome(lang: Lang, action: &StaffAction, outcome: &StaffOutcome) -> String {
    match (outcome, action) {
        (StaffOutcome::Done, StaffAction::Claim) => {
            t(lang, "您已接单。", "You hold this ticket now.")
        }
        (StaffOutcome::Done, StaffAction::Resolve) => t(lang, "已解决。", "Resolved."),
        (StaffOutcome::Done, StaffAction::Release) => t(lang, "已退回队列。", "Back in the queue."),
        (StaffOutcome::Done, StaffAction::Reply(_)) => t(lang, "已发送。", "Sent."),
        (StaffOutcome::HeldBy(other), _) => match lang {
            Lang::Zh => format!("{other} 正在处理此工单。"),
            Lang::En => format!("{other} holds this ticket."),
        },
        (StaffOutcome::NotClaimed, _) => t(lang, "请先接单。", "Claim the ticket first."),
        (StaffOutcome::Closed, _) => t(lang, "此工单已关闭。", "This ticket is closed."),
        (StaffOutcome::NotFound, _) => t(lang, "没有这个工单。", "No such ticket."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_buttons_round_trip_and_refuse_anything_else() {
        assert_eq!(
            parse_button(&button_payload("claim", 7)),
            Some((StaffAction::Claim, 7))
        );
        assert_eq!(
            parse_button("staff:release:12"),
            Some((StaffAction::Release, 12))
        );
        for bad in [
            "staff:claim:",
            "staff:fly:1",
            "claim:1",
            "staff:resolve:x",
            "/yes",
        ] {
            assert_eq!(parse_button(bad), None, "{bad}");
        }
    }

    #[test]
    fn label_buttons_round_trip_and_refuse_anything_else() {
        for choice in [
            LabelButton::Intent("withdrawal.pending".into()),
            LabelButton::NewTopic,
            LabelButton::NotAQuestion,
        ] {
            assert_eq!(
                parse_label_button(&label_payload(12, &choice)),
                Some((12, choice))
            );
        }
        for bad in [
            "staff:label:12:i:",
            "staff:label:x:new",
            "staff:label:12",
            "staff:label:12:maybe",
            "staff:claim:12",
        ] {
            assert_eq!(parse_label_button(bad), None, "{bad}");
        }
        assert_eq!(
            parse_button(&label_payload(3, &LabelButton::NewTopic)),
            None
        );
    }

    #[test]
    fn locales_map_to_the_two_languages() {
        assert_eq!(lang_of_locale("zh-hans"), Some(Lang::Zh));
        assert_eq!(lang_of_locale("zh_CN"), Some(Lang::Zh));
        assert_eq!(lang_of_locale("en-US"), Some(Lang::En));
        assert_eq!(lang_of_locale("de"), None);
    }

    #[test]
    fn every_refusal_exists_in_both_languages_and_success_sends() {
        for lang in [Lang::Zh, Lang::En] {
            assert_eq!(not_sent(lang, &StaffOutcome::Done), None);
            let held = not_sent(lang, &StaffOutcome::HeldBy("Wang".into())).unwrap_or_default();
            assert!(held.contains("Wang"), "{held}");
            assert!(!button_outcome(lang, &StaffAction::Claim, &StaffOutcome::Closed).is_empty());
        }
        assert!(only_staff(Lang::Zh).contains("客服"));
        assert!(claimed(Lang::Zh, "王").contains('王'));
    }

    #[test]
    fn an_attachment_without_a_link_says_where_to_see_it() {
        let a = Attachment {
            kind: crate::model::AttachmentKind::Photo,
            name: None,
            url: None,
        };
        assert!(attachment_line(Lang::En, &a, "telegram").contains("telegram"));
        let linked = Attachment {
            url: Some("https://cdn.example/x.png".into()),
            ..a
        };
        assert!(attachment_line(Lang::Zh, &linked, "discord").ends_with("x.png"));
    }
}
