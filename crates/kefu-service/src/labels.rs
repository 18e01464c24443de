//! Ticket labels: what staff say a resolved ticket was about — an intent of the KB, a new topic,
//! or not a question — stored with the user's question as the transcript keeps it (redacted), for
//! suggesting KB changes later. Labelling is its own call after a resolve and never holds the
//! resolve up; a second label of a ticket replaces the first.
//!
//! The question is read from the stored transcript only: the user's lines up to the ticket's
//! opening that are not commands ("转人工", `/human`), button presses or answers to the detail
//! questions — the latest one, or the latest two joined when both are short and were written
//! close together — and when there is none, the user's first such line after the ticket opened.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use kefu_core::model::{Detail, Sender, Ticket};
use kefu_core::staff::LabelButton;
use kefu_core::state::Lang;
use kefu_nlu::secrets::Redacted;
use kefu_store::{LabelKind, TaggedLine, TicketLabel};

use crate::{Result, Service, ServiceError, StaffActor};

/// The longest name of a new topic, in characters.
pub const MAX_TOPIC_NAME: usize = 40;

/// How many intents the label post offers as buttons.
const LABEL_CANDIDATES: usize = 3;

/// The longest button payload the label post carries (Telegram's callback data: 64 bytes).
const MAX_PAYLOAD: usize = 64;

/// A line of at most this many characters is short: two short lines written close together are
/// taken as one question ("提币" then "还没到账").
const SHORT_LINE: usize = 32;

/// How close together two short lines are written to be one question.
const JOIN_WITHIN: TimeDelta = TimeDelta::minutes(10);

/// What staff say a ticket was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    /// An intent of the KB, by id.
    Intent(String),
    /// A topic the KB does not cover yet, by a short name (1 to [`MAX_TOPIC_NAME`] characters).
    NewTopic(String),
    /// Not a question.
    NotAQuestion,
}

impl Label {
    /// The label's kind as stored.
    pub fn kind(&self) -> LabelKind {
        match self {
            Self::Intent(_) => LabelKind::Intent,
            Self::NewTopic(_) => LabelKind::NewTopic,
            Self::NotAQuestion => LabelKind::NotAQuestion,
        }
    }
}

/// Why a label was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The KB has no intent with this id; `closest` are the ids that look most like it.
    #[error("the KB has no intent {id:?}{}", closest_hint(.closest))]
    UnknownIntent {
        /// The id given.
        id: String,
        /// The KB's ids closest to it, closest first (at most three).
        closest: Vec<String>,
    },
    /// Not an intent id at all.
    #[error("{id:?} is not an intent id: ids are lowercase letters, digits, `_`, `.` and `-`")]
    BadIntentId {
        /// The id given.
        id: String,
    },
    /// A new topic's name that is empty or too long.
    #[error("a new topic's name has 1 to {MAX_TOPIC_NAME} characters (this one has {chars})")]
    BadTopicName {
        /// Its length in characters, trimmed.
        chars: usize,
    },
}

fn closest_hint(closest: &[String]) -> String {
    if closest.is_empty() {
        "; `kefu kb check` lists the intents".to_owned()
    } else {
        format!("; closest: {}", closest.join(", "))
    }
}

/// Whether `id` has the form of an intent id: `[a-z0-9_.-]+`.
pub fn is_intent_id(id: &str) -> bool {
    !id.is_empty()
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

/// Edit distance (insertions, deletions, substitutions) between two strings, in characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The ids of `known` that look most like `id` (a typo, a missing or different prefix, a part of
/// the id), closest first, at most three; none when nothing is close.
pub fn closest_ids<'a>(id: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let wanted = id.trim().to_lowercase();
    let len = wanted.chars().count();
    if len == 0 {
        return Vec::new();
    }
    let limit = (len / 3).max(2);
    let mut scored: Vec<(usize, &str)> = known
        .into_iter()
        .filter_map(|k| {
            let whole = distance(&wanted, k);
            let tail = k.rsplit_once('.').map_or(usize::MAX, |(_, tail)| {
                distance(&wanted, tail).saturating_add(1)
            });
            let part = if len >= 3 && k.contains(wanted.as_str()) {
                1
            } else {
                usize::MAX
            };
            let score = whole.min(tail).min(part);
            (score <= limit).then_some((score, k))
        })
        .collect();
    scored.sort_unstable();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(3)
        .map(|(_, k)| k.to_owned())
        .collect()
}

/// Checks a label as [`Service::label_ticket`] does: an intent id of the right form, and one of
/// `kb`'s intents when a KB is given; a new topic's name of 1 to 40 characters.
pub fn check(
    label: &Label,
    kb: Option<&kefu_nlu::kb::KnowledgeBase>,
) -> std::result::Result<(), LabelError> {
    checked_name(label, kb).map(|_| ())
}

/// A label's name checked and cleaned: an intent id of the right form (and of `kb`'s intents,
/// when given), a new topic's name trimmed, sanitised, redacted and 1–40 characters long.
fn checked_name(
    label: &Label,
    kb: Option<&kefu_nlu::kb::KnowledgeBase>,
) -> std::result::Result<Option<String>, LabelError> {
    match label {
        Label::Intent(id) => {
            let id = id.trim();
            if !is_intent_id(id) {
                return Err(LabelError::BadIntentId { id: id.to_owned() });
            }
            if let Some(kb) = kb
                && kb.intent(id).is_none()
            {
                return Err(LabelError::UnknownIntent {
                    id: id.to_owned(),
                    closest: closest_ids(id, kb.intents.iter().map(|i| i.id.as_str())),
                });
            }
            Ok(Some(id.to_owned()))
        }
        Label::NewTopic(name) => {
            let cleaned = kefu_core::text::sanitize(name).replace(['\n', '\t'], " ");
            let name = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
            let chars = name.chars().count();
            if chars == 0 || chars > MAX_TOPIC_NAME {
                return Err(LabelError::BadTopicName { chars });
            }
            Ok(Some(Redacted::of(&name).into_string()))
        }
        Label::NotAQuestion => Ok(None),
    }
}

/// A user line that can be (part of) a question: not empty, not a command, not a button press.
fn may_be_question(text: &str) -> bool {
    let text = text.trim();
    let press = kefu_core::messages::pressed("");
    !text.is_empty()
        && !text.starts_with(press.trim_end())
        && kefu_core::commands::parse(text).is_none()
}

/// Whether `text` is the answer that gave `detail` its value.
fn answers(detail: &Detail, text: &str) -> bool {
    let Some(value) = detail.value.as_deref() else {
        return false;
    };
    kefu_core::details::validate(&detail.name, text).as_deref() == Some(value)
        || kefu_core::details::free_text(text) == value
}

/// The user's question behind a ticket, from its conversation's transcript (see the module's
/// documentation); empty when the user wrote nothing that can be one.
pub(crate) fn question(ticket: &Ticket, lines: &[TaggedLine]) -> String {
    let ours = |l: &TaggedLine| l.ticket_id == Some(ticket.id);
    // The opening turn's lines are the first ones tagged with the ticket, the user's line first.
    let (before, after): (&[TaggedLine], &[TaggedLine]) = match lines.iter().position(ours) {
        Some(first) => {
            let split = if lines[first].line.sender == Sender::User {
                first + 1
            } else {
                first
            };
            lines.split_at(split)
        }
        None => {
            let split = lines
                .iter()
                .position(|l| l.line.at > ticket.created_at)
                .unwrap_or(lines.len());
            lines.split_at(split)
        }
    };
    // Back from the opening, up to an earlier ticket's lines: the details' answers (each taken
    // once, the latest first) and what is no question are passed over.
    let mut details: Vec<&Detail> = ticket.details.iter().collect();
    let mut picked: Vec<&TaggedLine> = Vec::new();
    for l in before.iter().rev() {
        if l.ticket_id.is_some_and(|t| t != ticket.id) {
            break;
        }
        if l.line.sender != Sender::User || !may_be_question(&l.line.text) {
            continue;
        }
        if let Some(k) = details.iter().position(|d| answers(d, l.line.text.trim())) {
            details.remove(k);
            continue;
        }
        picked.push(l);
        if picked.len() == 2 {
            break;
        }
    }
    let short = |l: &TaggedLine| l.line.text.trim().chars().count() <= SHORT_LINE;
    let text = match picked.as_slice() {
        [last, earlier]
            if short(last) && short(earlier) && last.line.at - earlier.line.at <= JOIN_WITHIN =>
        {
            format!("{} {}", earlier.line.text.trim(), last.line.text.trim())
        }
        [last, ..] => last.line.text.trim().to_owned(),
        [] => after
            .iter()
            .filter(|l| ours(l) && l.line.sender == Sender::User)
            .find(|l| may_be_question(&l.line.text))
            .map(|l| l.line.text.trim().to_owned())
            .unwrap_or_default(),
    };
    // Each line was redacted when stored; joined, two halves of a secret are redacted too.
    Redacted::of(&text).into_string()
}

/// The language recorded with a label: the user's chosen one, else the question's.
fn language(chosen: Option<String>, text: &str) -> Option<String> {
    chosen.or_else(|| {
        kefu_nlu::lang::detect(text)
            .filter(|l| *l != "und")
            .map(str::to_owned)
    })
}

impl Service {
    /// Labels a ticket as `staff` says: `None` when there is no such ticket. The user's question
    /// is read from the stored (redacted) transcript. An intent must have the form of an id and,
    /// when this service has the NLU, be one of the KB's ([`LabelError::UnknownIntent`] names
    /// the closest); a new topic's name has 1 to 40 characters. A ticket has one label: a later
    /// one replaces it.
    pub async fn label_ticket(
        &self,
        ticket_id: i64,
        staff: &str,
        label: Label,
        now: DateTime<Utc>,
    ) -> Result<Option<TicketLabel>> {
        let engine = self.engine();
        let name =
            checked_name(&label, engine.as_deref().map(|e| e.kb())).map_err(ServiceError::Label)?;
        let Some(ticket) = self.store.ticket(ticket_id).await? else {
            return Ok(None);
        };
        let text = self.ticket_question(&ticket).await?;
        let chosen = self
            .store
            .user(&ticket.conversation.platform, &ticket.conversation.user_id)
            .await?
            .and_then(|u| u.language);
        let label = TicketLabel {
            ticket_id,
            kind: label.kind(),
            name,
            language: language(chosen, &text),
            text,
            labelled_by: staff.to_owned(),
            labelled_at: now.trunc_subsecs(6),
        };
        self.store.record_label(&label).await?;
        tracing::info!(
            ticket = ticket_id,
            kind = label.kind.as_str(),
            staff,
            "ticket labelled"
        );
        Ok(Some(label))
    }

    /// [`label_ticket`](Self::label_ticket) from a label button in a staff space, under the
    /// name of the staff account linked to the presser, if any. "New topic" is named after the
    /// question (its first 40 characters); it can be renamed by labelling again in the console.
    pub async fn label_from_button(
        &self,
        actor: &StaffActor,
        ticket_id: i64,
        choice: LabelButton,
        now: DateTime<Utc>,
    ) -> Result<Option<TicketLabel>> {
        let name = self.acting_name(actor).await?;
        let label = match choice {
            LabelButton::Intent(id) => Label::Intent(id),
            LabelButton::NotAQuestion => Label::NotAQuestion,
            LabelButton::NewTopic => {
                let Some(ticket) = self.store.ticket(ticket_id).await? else {
                    return Ok(None);
                };
                let question = self.ticket_question(&ticket).await?;
                let mut topic: String = question.chars().take(MAX_TOPIC_NAME).collect();
                if topic.trim().is_empty() {
                    topic = ticket.code.clone();
                }
                Label::NewTopic(topic)
            }
        };
        self.label_ticket(ticket_id, &name, label, now).await
    }

    /// The user's question behind a ticket, from the stored transcript.
    async fn ticket_question(&self, ticket: &Ticket) -> Result<String> {
        let lines = self.store.tagged_transcript(&ticket.conversation).await?;
        Ok(question(ticket, &lines))
    }

    /// The post asking which label a resolved ticket gets, with a button for each of the top
    /// intents (the ticket's intent guess first, then the NLU's ranking of the question) and for
    /// "new topic" and "not a question". `None` without the NLU.
    pub(crate) async fn label_post(
        &self,
        ticket: &Ticket,
        lang: Lang,
    ) -> Result<Option<kefu_core::delivery::StaffPost>> {
        let Some(engine) = self.engine() else {
            return Ok(None);
        };
        let question = self.ticket_question(ticket).await?;
        let kb = engine.kb();
        let ranked = if question.is_empty() {
            Vec::new()
        } else {
            engine.decide(&question).candidates
        };
        let mut ids: Vec<&str> = Vec::new();
        for id in ticket
            .intent
            .as_deref()
            .into_iter()
            .chain(ranked.iter().map(|c| c.intent.as_str()))
        {
            let offered = ids.len() >= LABEL_CANDIDATES
                || ids.contains(&id)
                || id == kefu_core::policy::HUMAN_INTENT
                || kb.intent(id).is_none()
                || kefu_core::staff::label_payload(ticket.id, &LabelButton::Intent(id.to_owned()))
                    .len()
                    > MAX_PAYLOAD;
            if !offered {
                ids.push(id);
            }
        }
        let default = kb.meta.default_language.as_deref();
        let mut buttons: Vec<kefu_core::model::Button> = ids
            .iter()
            .filter_map(|id| kb.intent(id))
            .map(|intent| kefu_core::model::Button {
                label: intent.title_in(lang.code(), default).to_owned(),
                payload: kefu_core::staff::label_payload(
                    ticket.id,
                    &LabelButton::Intent(intent.id.clone()),
                ),
            })
            .collect();
        let (new_topic, not_a_question) = kefu_core::staff::label_buttons(lang);
        for (label, choice) in [
            (new_topic, LabelButton::NewTopic),
            (not_a_question, LabelButton::NotAQuestion),
        ] {
            buttons.push(kefu_core::model::Button {
                label,
                payload: kefu_core::staff::label_payload(ticket.id, &choice),
            });
        }
        Ok(Some(kefu_core::delivery::StaffPost {
            text: kefu_core::staff::label_question(lang, &question),
            buttons,
            ..kefu_core::delivery::StaffPost::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use kefu_core::model::{ConversationRef, Priority, TicketStatus, TranscriptLine};

    use super::*;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 10, 12, minute, 0)
            .single()
            .unwrap_or_default()
    }

    fn ticket(id: i64, details: Vec<Detail>) -> Ticket {
        Ticket {
            id,
            code: "ABC234".into(),
            conversation: ConversationRef {
                platform: "terminal".into(),
                chat_id: "u".into(),
                user_id: "u".into(),
            },
            user_name: "u".into(),
            intent: None,
            priority: Priority::Normal,
            status: TicketStatus::Resolved,
            assignee: Some("bob".into()),
            reason: "user_requested".into(),
            details,
            created_at: at(30),
            claimed_at: None,
            resolved_at: None,
        }
    }

    /// Lines `(minute, sender, text, ticket)` with ids in order.
    fn lines(spec: &[(u32, Sender, &str, Option<i64>)]) -> Vec<TaggedLine> {
        spec.iter()
            .enumerate()
            .map(|(i, (minute, sender, text, ticket_id))| TaggedLine {
                id: i64::try_from(i).unwrap_or_default() + 1,
                ticket_id: *ticket_id,
                line: TranscriptLine {
                    at: at(*minute),
                    sender: sender.clone(),
                    text: (*text).to_owned(),
                },
            })
            .collect()
    }

    use Sender::{Bot, User};

    #[test]
    fn the_question_is_the_last_user_line_before_the_request_for_a_human() {
        let t = ticket(7, Vec::new());
        let l = lines(&[
            (1, User, "你好", None),
            (1, Bot, "您好！", None),
            (20, User, "我的合约仓位被强平了但是价格根本没到强平价", None),
            (20, Bot, "……", None),
            (30, User, "转人工", Some(7)),
            (30, Bot, "已为您转接人工", Some(7)),
            (31, Sender::Staff("bob".into()), "您好", Some(7)),
            (32, User, "在吗", Some(7)),
        ]);
        assert_eq!(
            question(&t, &l),
            "我的合约仓位被强平了但是价格根本没到强平价"
        );
    }

    #[test]
    fn two_short_lines_written_together_are_one_question() {
        let t = ticket(7, Vec::new());
        let l = lines(&[
            (25, User, "提币", None),
            (25, Bot, "请问是哪方面的问题？", None),
            (26, User, "还没到账", None),
            (26, Bot, "……", None),
            (30, User, "/human", Some(7)),
        ]);
        assert_eq!(question(&t, &l), "提币 还没到账");
        // Far apart, they are two questions: the latest counts.
        let l = lines(&[
            (1, User, "怎么充值", None),
            (26, User, "提币没到账", None),
            (30, User, "转人工", Some(7)),
        ]);
        assert_eq!(question(&t, &l), "提币没到账");
    }

    #[test]
    fn button_presses_and_detail_answers_are_passed_over() {
        let tx = "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060";
        let t = ticket(
            7,
            vec![
                Detail {
                    name: "tx_id".into(),
                    value: Some(tx.into()),
                },
                Detail {
                    name: "time".into(),
                    value: Some("今天下午3点".into()),
                },
            ],
        );
        let l = lines(&[
            (
                20,
                User,
                "提币一直没到账，已经等了三个小时了，怎么回事",
                None,
            ),
            (20, Bot, "……有帮助吗？", None),
            (21, User, "🔘 没有帮助", None),
            (21, User, "2", None),
            (22, User, tx, None),
            (23, User, "今天下午3点", Some(7)),
        ]);
        assert_eq!(
            question(&t, &l),
            "提币一直没到账，已经等了三个小时了，怎么回事"
        );
    }

    #[test]
    fn an_earlier_tickets_lines_end_the_search_and_then_the_first_line_after_opening_counts() {
        let t = ticket(9, Vec::new());
        let l = lines(&[
            (1, User, "上一次的问题", Some(3)),
            (2, User, "转人工", Some(9)),
            (31, User, "我的账户被冻结了", Some(9)),
            (32, User, "谢谢", Some(9)),
        ]);
        assert_eq!(question(&t, &l), "我的账户被冻结了");
        assert_eq!(question(&t, &lines(&[(2, User, "/human", Some(9))])), "");
    }

    #[test]
    fn close_ids_are_named_for_a_typo_a_missing_prefix_or_a_part() {
        let known = [
            "withdrawal.pending",
            "withdrawal.failed",
            "deposit.not_credited",
            "human",
        ];
        assert_eq!(
            closest_ids("withdrawl.pending", known)[0],
            "withdrawal.pending"
        );
        assert_eq!(closest_ids("pending", known), ["withdrawal.pending"]);
        assert_eq!(closest_ids("not_credited", known), ["deposit.not_credited"]);
        assert!(closest_ids("zzzzzzzzzz", known).is_empty());
        assert!(is_intent_id("withdrawal.pending"));
        for bad in ["", "Withdrawal", "a b", "提币"] {
            assert!(!is_intent_id(bad), "{bad}");
        }
    }

    #[test]
    fn a_new_topic_name_is_cleaned_and_bounded() {
        let name = |n: &str| checked_name(&Label::NewTopic(n.into()), None);
        assert_eq!(
            name("  staking\n rewards "),
            Ok(Some("staking rewards".into()))
        );
        assert_eq!(name("   "), Err(LabelError::BadTopicName { chars: 0 }));
        assert!(name(&"x".repeat(41)).is_err());
        assert_eq!(name(&"质".repeat(40)), Ok(Some("质".repeat(40))));
        assert!(matches!(
            checked_name(&Label::Intent("Bad Id".into()), None),
            Err(LabelError::BadIntentId { .. })
        ));
        assert_eq!(checked_name(&Label::NotAQuestion, None), Ok(None));
    }
}
