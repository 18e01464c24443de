//! Property test (a fuzz target on stable Rust) of the Telegram edge: any update the Bot API could
//! send — random text with any characters (NUL, control and invisible characters, mentions of the
//! bot and of others), private chats, groups, the staff forum's topics, button presses, photos,
//! missing sender, odd ids — is converted without a panic, and what comes out keeps its promises.
//!
//! `KEFU_FUZZ_CASES` sets the number of inputs (default 3,000; README's figures use 1,000,000:
//! `KEFU_FUZZ_CASES=1000000 cargo test --release -p kefu-telegram --test fuzz_updates`).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is a failed test"
)]

use kefu_telegram::TelegramConfig;
use kefu_telegram::updates::{Incoming, classify};
use proptest::prelude::*;
use serde_json::{Value, json};
use teloxide::types::{Me, Update};

const BOT: &str = "kefu_test_bot";
const STAFF_CHAT: i64 = -100_777;
const STAFF: u64 = 42;

fn me() -> Me {
    serde_json::from_value(json!({
        "id": 900, "is_bot": true, "first_name": "Kefu", "username": BOT,
        "can_join_groups": true, "can_read_all_group_messages": false,
        "supports_inline_queries": false, "can_connect_to_business": false,
        "has_main_web_app": false
    }))
    .expect("a Me")
}

fn config() -> TelegramConfig {
    TelegramConfig {
        token: kefu_telegram::Secret::new("1:x"),
        api_url: "http://127.0.0.1:1".into(),
        staff_chat_id: Some(STAFF_CHAT),
        staff_user_ids: vec![STAFF],
        webhook: None,
        rate: None,
    }
}

/// Text a user or a hostile client could send.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 ?!.,]{0,12}",
        "[提币充值没到账转人工客服你好]{0,8}",
        Just(format!("@{BOT}")),
        Just(format!("@{}", BOT.to_uppercase())),
        Just("@someone_else".to_owned()),
        Just("/start".to_owned()),
        Just(format!("/help@{BOT}")),
        Just("\u{0}".to_owned()),
        Just("\u{1b}[2J".to_owned()),
        Just("\u{200b}\u{feff}\u{202e}".to_owned()),
        Just("\n".to_owned()),
        any::<char>().prop_map(String::from),
        Just("staff:claim:7".to_owned()),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

fn user(id: i64) -> Value {
    json!({"id": id, "is_bot": id == 900, "first_name": "U\u{1b}ser", "language_code": "zh-hans"})
}

fn chat(id: i64) -> Value {
    if id < 0 {
        json!({"id": id, "type": "supergroup", "title": "g", "is_forum": id == STAFF_CHAT})
    } else {
        json!({"id": id, "type": "private", "first_name": "U"})
    }
}

prop_compose! {
    fn update()(
        update_id in 0i64..i64::from(i32::MAX),
        message_id in 1i64..i64::from(i32::MAX),
        chat_id in prop_oneof![Just(STAFF_CHAT), -1_000_000i64..-1, 1i64..1_000_000],
        from in prop_oneof![Just(STAFF as i64), Just(900i64), 1i64..1_000_000],
        body in text(),
        kind in 0u8..6,
        thread in proptest::option::of(1i64..1000),
        reply_to_bot in any::<bool>(),
    ) -> Value {
        let mut message = json!({
            "message_id": message_id, "date": 1_700_000_000, "chat": chat(chat_id),
            "from": user(from),
        });
        match kind {
            0 | 1 => message["text"] = json!(body),
            2 => {
                message["photo"] = json!([{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]);
                message["caption"] = json!(body);
            }
            3 => message["sticker"] = json!({"file_id": "f", "file_unique_id": "u", "type": "regular",
                "width": 1, "height": 1, "is_animated": false, "is_video": false}),
            4 => {
                return json!({"update_id": update_id, "callback_query": {
                    "id": format!("cb{update_id}"), "from": user(from), "chat_instance": "ci",
                    "data": body, "message": message.clone()}});
            }
            _ => {
                message["text"] = json!(body);
                message.as_object_mut().unwrap().remove("from");
            }
        }
        if let Some(t) = thread {
            message["message_thread_id"] = json!(t);
            message["is_topic_message"] = json!(true);
        }
        if reply_to_bot {
            message["reply_to_message"] = json!({"message_id": 1, "date": 1_700_000_000,
                "chat": chat(chat_id), "from": user(900), "text": "…"});
        }
        json!({"update_id": update_id, "message": message})
    }
}

fn cases() -> u32 {
    std::env::var("KEFU_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_update_converts_without_panic_and_keeps_its_promises(raw in update()) {
        // An update the Bot API types cannot read is skipped by teloxide before it reaches us;
        // every one they can read is classified.
        let Ok(update) = serde_json::from_value::<Update>(raw) else { return Ok(()) };
        match classify(&update, &me(), &config()) {
            Incoming::User { inbound, .. } => {
                // Users' chats are never the staff chat, and ids are the platform's numbers.
                prop_assert_ne!(inbound.conversation.chat_id.clone(), STAFF_CHAT.to_string());
                prop_assert!(inbound.conversation.chat_id.parse::<i64>().is_ok());
                prop_assert!(inbound.conversation.user_id.parse::<u64>().is_ok());
                prop_assert!(inbound.conversation.user_id != "900", "the bot's own message");
                // A message reaches the service with something to handle.
                prop_assert!(!inbound.text.is_empty() || !inbound.attachments.is_empty() || inbound.pressed);
                // The mention addressed to the bot is gone.
                let mention = format!("@{BOT}");
                let addressed = inbound.text.to_lowercase().starts_with(&mention);
                prop_assert!(!addressed, "mention left in {:?}", inbound.text);
            }
            Incoming::StaffText { from, .. } | Incoming::StaffButton { from, .. } => {
                // Only what happens in the staff chat is a staff event (who may act is checked
                // later, by id).
                let chat = update.chat().map(|c| c.id.0);
                prop_assert_eq!(chat, Some(STAFF_CHAT));
                prop_assert!(from.id != 900);
            }
            Incoming::Ignore => {}
        }
    }
}
