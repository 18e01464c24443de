//! Plain-text rendering shared by the platform adapters: splitting long texts at a platform's
//! length limit, ticket titles and summaries for staff, transcripts.

use crate::model::Ticket;

/// The length of a text in UTF-16 code units (how Telegram and Discord count).
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Splits a text into parts of at most `limit` UTF-16 code units, on line boundaries where
/// possible; a single longer line is cut between characters. Empty text gives no parts.
pub fn split_text(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(2);
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for line in text.split_inclusive('\n') {
        let line_len = utf16_len(line);
        if current_len + line_len <= limit {
            current.push_str(line);
            current_len += line_len;
            continue;
        }
        if !current.is_empty() {
            parts.push(std::mem::take(&mut current));
            current_len = 0;
        }
        if line_len <= limit {
            current.push_str(line);
            current_len = line_len;
            continue;
        }
        for c in line.chars() {
            if current_len + c.len_utf16() > limit {
                parts.push(std::mem::take(&mut current));
                current_len = 0;
            }
            current.push(c);
            current_len += c.len_utf16();
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
        .into_iter()
        .map(|p| p.trim_end_matches('\n').to_owned())
        .filter(|p| !p.trim().is_empty())
        .collect()
}

/// The text cut to at most `max_chars` characters, ending with "…" when it was cut.
pub fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max_chars.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// A ticket's title for staff: "{code} · {priority} · {intent}" ("none" without an intent), not
/// truncated (callers cut it to their platform's limit with [`truncate`]).
pub fn ticket_title(ticket: &Ticket) -> String {
    format!(
        "{} · {} · {}",
        ticket.code,
        ticket.priority.as_str(),
        ticket.intent.as_deref().unwrap_or("none")
    )
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::model::{ConversationRef, Detail, Priority, TicketStatus};

    const TELEGRAM_LIMIT: usize = 4096;

    fn ticket(intent: Option<&str>) -> Ticket {
        Ticket {
            id: 7,
            code: "K7XQ2M".to_owned(),
            conversation: ConversationRef {
                platform: "discord".to_owned(),
                chat_id: "c1".to_owned(),
                user_id: "u1".to_owned(),
            },
            user_name: "Alice".to_owned(),
            intent: intent.map(str::to_owned),
            priority: Priority::High,
            status: TicketStatus::Queued,
            assignee: None,
            reason: "user asked for a human".to_owned(),
            details: vec![
                Detail {
                    name: "tx_id".to_owned(),
                    value: Some("0xabc".to_owned()),
                },
                Detail {
                    name: "amount".to_owned(),
                    value: None,
                },
            ],
            created_at: Utc.with_ymd_and_hms(2025, 3, 1, 9, 5, 0).unwrap(),
            claimed_at: None,
            resolved_at: None,
        }
    }

    #[test]
    fn a_long_text_is_split_on_line_boundaries() {
        let line = "x".repeat(99);
        let text = vec![line.as_str(); 50].join("\n"); // 5,000 characters
        let parts = split_text(&text, TELEGRAM_LIMIT);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| utf16_len(p) <= TELEGRAM_LIMIT));
        assert!(parts.iter().all(|p| p.split('\n').all(|l| l == line)));
        assert_eq!(parts.join("\n"), text);
        let discord = split_text(&text, 2000);
        assert_eq!(discord.len(), 3);
        assert!(discord.iter().all(|p| utf16_len(p) <= 2000));
        assert_eq!(discord.join("\n"), text);
    }

    #[test]
    fn a_single_huge_line_is_cut_and_emoji_count_double() {
        let text = "😀".repeat(3000); // 6,000 UTF-16 units
        let parts = split_text(&text, TELEGRAM_LIMIT);
        assert_eq!(parts.len(), 2);
        assert_eq!(utf16_len(&parts[0]), 4096);
        assert_eq!(parts.concat(), text);
        assert!(split_text("", TELEGRAM_LIMIT).is_empty());
        assert_eq!(split_text("短", TELEGRAM_LIMIT), vec!["短"]);
    }

    #[test]
    fn truncation_counts_characters_and_marks_the_cut() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("提币失败了怎么办", 5), "提币失败…");
        assert_eq!(truncate("abcdef", 6), "abcdef");
    }

    #[test]
    fn titles_name_the_ticket() {
        assert_eq!(
            ticket_title(&ticket(Some("deposit.missing"))),
            "K7XQ2M · high · deposit.missing"
        );
        assert_eq!(ticket_title(&ticket(None)), "K7XQ2M · high · none");
        let long = "x".repeat(300);
        assert_eq!(ticket_title(&ticket(Some(&long))).chars().count(), 316);
    }
}
