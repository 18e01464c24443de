//! A fake Discord (HTTP API v10 + WebSocket gateway) on 127.0.0.1:0 for end-to-end tests.
//!
//! Point serenity at it with `HttpBuilder::new(TOKEN).proxy(&fake.url).ratelimiter_disabled(true)`
//! (serenity then requests `{url}/api/v10/...`). `GET /api/v10/gateway` names the WebSocket at
//! `ws://127.0.0.1:PORT/gateway`, which speaks plain JSON text frames: HELLO, IDENTIFY → READY +
//! GUILD_CREATE, heartbeat ACKs, RESUME → replay of the missed dispatches + RESUMED.
//!
//! Every HTTP request is recorded (method, path without `/api/v10`, JSON body or multipart parts);
//! waits poll the record with a deadline and print it on timeout. Events dispatched while no
//! session is live are queued and delivered on the next IDENTIFY or RESUME. Sequence numbers and
//! the replay buffer survive reconnects, as Discord's do within a session.

#![allow(
    dead_code,
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "shared test helpers: not every test file uses each one, and a failed expectation is a failed test"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub const TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAx.FAKE.discord-test-token";
pub const BOT_ID: u64 = 100_000_000_000_000_001;
pub const BOT_NAME: &str = "kefu-test";
pub const APPLICATION_ID: u64 = BOT_ID;
pub const GUILD: u64 = 200_000_000_000_000_001;
pub const OWNER: u64 = 300_000_000_000_000_001;
/// A public text channel.
pub const CHANNEL: u64 = 200_000_000_000_000_010;
/// The staff text channel (ticket threads are created under it).
pub const STAFF_CHANNEL: u64 = 200_000_000_000_000_020;
pub const STAFF_ROLE: u64 = 200_000_000_000_000_030;
pub const SESSION_ID: &str = "fake-session-1";
pub const HEARTBEAT_INTERVAL: u64 = 41_250;
pub const WAIT: Duration = Duration::from_secs(15);

/// One HTTP request the fake received.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// Without the `/api/v10` prefix and the query, e.g. `/channels/123/messages`.
    pub path: String,
    /// The JSON body; for multipart requests the `payload_json` part; `Null` when empty.
    pub body: Value,
    /// Multipart file parts: (file name, contents as UTF-8, lossy).
    pub files: Vec<(String, String)>,
    pub at: Instant,
    /// The fake answered 429.
    pub limited: bool,
}

/// What the connection task should do next.
#[derive(Debug)]
enum Out {
    Text(String),
    /// Send a close frame with this code, then end the connection.
    Close(u16),
    /// End the connection without a close frame (the TCP stream is dropped).
    Abort,
}

#[derive(Debug)]
struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<Out>,
    /// IDENTIFY or RESUME handled: dispatches go straight to it.
    live: bool,
}

#[derive(Debug, Default)]
pub struct FakeState {
    requests: Vec<Req>,
    /// `POST .../messages` still to answer with 429.
    limit_sends: u32,
    next_id: u64,
    /// The last sequence number given out.
    seq: u64,
    /// Every sent dispatch (full op 0 payloads), for RESUME replays.
    sent: Vec<(u64, Value)>,
    /// Dispatches waiting for a live session.
    pending: Vec<(String, Value)>,
    conn: Option<Conn>,
    /// A session was started by an IDENTIFY (RESUME is accepted only then).
    session: bool,
    ws_url: String,
    pub connections: u32,
    pub identifies: u32,
    pub resumes: u32,
    /// Resumes refused (unknown session): answered with op 9.
    pub bad_resumes: u32,
    /// The intents of the last IDENTIFY.
    pub intents: Option<u64>,
    /// Every gateway payload the client sent (IDENTIFY tokens included), in order.
    pub gateway_in: Vec<Value>,
    /// Channels by id: the guild's text channels and the threads created through the API.
    channels: HashMap<u64, Value>,
    /// Users' messages by channel, as `GET /channels/{id}/messages` lists them: every
    /// MESSAGE_CREATE dispatched, and those written while no gateway heard them.
    history: HashMap<u64, Vec<Value>>,
}

impl FakeState {
    fn remember(&mut self, message: &Value) {
        let channel = message["channel_id"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        self.history
            .entry(channel)
            .or_default()
            .push(message.clone());
    }

    fn snowflake(&mut self) -> u64 {
        self.next_id += 1;
        900_000_000_000_000_000 + self.next_id
    }

    /// Sends a dispatch to the live connection with the next sequence number.
    fn send_dispatch(&mut self, event: &str, data: Value) {
        self.seq += 1;
        let payload = json!({"op": 0, "s": self.seq, "t": event, "d": data});
        self.sent.push((self.seq, payload.clone()));
        if let Some(conn) = &self.conn {
            let _ = conn.tx.send(Out::Text(payload.to_string()));
        }
    }

    fn flush_pending(&mut self) {
        for (event, data) in std::mem::take(&mut self.pending) {
            self.send_dispatch(&event, data);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Fake {
    pub state: Arc<Mutex<FakeState>>,
    /// `http://127.0.0.1:PORT`: serenity's proxy base (`KEFU__DISCORD__API_URL`).
    pub url: String,
    /// `ws://127.0.0.1:PORT/gateway`.
    pub ws_url: String,
}

pub fn now_iso() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000000+00:00",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A user object.
pub fn user(id: u64, name: &str) -> Value {
    json!({"id": id.to_string(), "username": name, "discriminator": "0", "global_name": name,
        "avatar": null, "bot": false, "public_flags": 0})
}

pub fn bot_user() -> Value {
    json!({"id": BOT_ID.to_string(), "username": BOT_NAME, "discriminator": "0000",
        "global_name": null, "avatar": null, "bot": true, "verified": true, "mfa_enabled": false,
        "flags": 0, "public_flags": 0, "email": null})
}

pub fn application() -> Value {
    json!({"id": APPLICATION_ID.to_string(), "name": BOT_NAME, "icon": null,
        "description": "", "bot_public": false, "bot_require_code_grant": false,
        "verify_key": "00", "flags": 0, "owner": user(OWNER, "owner"), "team": null,
        "bot": bot_user()})
}

/// A guild member object (without `user` when `with_user` is false, as in MESSAGE_CREATE).
pub fn member(user_id: u64, name: &str, roles: &[u64], with_user: bool) -> Value {
    let mut m = json!({"roles": roles.iter().map(u64::to_string).collect::<Vec<_>>(),
        "joined_at": "2024-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false,
        "flags": 0, "pending": false, "nick": null, "avatar": null, "premium_since": null,
        "communication_disabled_until": null});
    if with_user {
        m["user"] = user(user_id, name);
        // Interactions carry the member's permissions in the channel.
        m["permissions"] = json!("2248473465835073");
    }
    m
}

pub fn text_channel(id: u64, name: &str, position: u16) -> Value {
    json!({"id": id.to_string(), "type": 0, "guild_id": GUILD.to_string(), "name": name,
        "position": position, "permission_overwrites": [], "nsfw": false, "topic": null,
        "last_message_id": null, "parent_id": null, "rate_limit_per_user": 0, "flags": 0})
}

pub fn role(id: u64, name: &str, permissions: u64, position: u16) -> Value {
    json!({"id": id.to_string(), "name": name, "color": 0, "hoist": false, "icon": null,
        "unicode_emoji": null, "position": position, "permissions": permissions.to_string(),
        "managed": false, "mentionable": false, "flags": 0,
        "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null}})
}

/// The GUILD_CREATE payload for `GUILD`: CHANNEL and STAFF_CHANNEL, @everyone and STAFF_ROLE,
/// the bot and the owner as members.
pub fn guild_create() -> Value {
    json!({
        "id": GUILD.to_string(), "name": "Kefu Test Guild", "icon": null, "splash": null,
        "discovery_splash": null, "owner_id": OWNER.to_string(), "afk_channel_id": null,
        "afk_timeout": 300, "verification_level": 0, "default_message_notifications": 0,
        "explicit_content_filter": 0, "features": [], "mfa_level": 0,
        "application_id": null, "system_channel_id": null, "system_channel_flags": 0,
        "rules_channel_id": null, "vanity_url_code": null, "description": null, "banner": null,
        "premium_tier": 0, "premium_subscription_count": 0, "preferred_locale": "en-US",
        "public_updates_channel_id": null, "nsfw_level": 0, "premium_progress_bar_enabled": false,
        "emojis": [], "stickers": [],
        "roles": [
            role(GUILD, "@everyone", 0x0000_0000_0006_4c00, 0),
            role(STAFF_ROLE, "Staff", 0x0000_0004_0006_7c00, 1),
        ],
        "joined_at": "2024-01-01T00:00:00.000000+00:00", "large": false, "unavailable": false,
        "member_count": 3, "voice_states": [],
        "members": [
            {"user": bot_user(), "roles": [], "joined_at": "2024-01-01T00:00:00.000000+00:00",
             "deaf": false, "mute": false, "flags": 0, "pending": false},
            member(OWNER, "owner", &[], true),
        ],
        "channels": [
            text_channel(CHANNEL, "support", 0),
            text_channel(STAFF_CHANNEL, "staff", 1),
        ],
        "threads": [], "presences": [], "stage_instances": [],
        "guild_scheduled_events": [], "soundboard_sounds": [],
        "max_members": 500_000, "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50, "approximate_member_count": null,
        "approximate_presence_count": null, "widget_enabled": false, "widget_channel_id": null,
        "safety_alerts_channel_id": null, "nsfw": false
    })
}

/// A message object sent by `author`.
fn message_object(id: u64, channel: u64, author: Value, content: &str) -> Value {
    json!({"id": id.to_string(), "channel_id": channel.to_string(), "author": author,
        "content": content, "timestamp": now_iso(), "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
        "embeds": [], "pinned": false, "type": 0, "flags": 0, "components": []})
}

/// A MESSAGE_CREATE payload. Guild messages (with `guild`) carry `guild_id` and `member`; with
/// `mentions_bot` the content should contain `<@BOT_ID>` (added in front when missing) and
/// `mentions` holds the bot user.
pub fn message(
    id: u64,
    channel: u64,
    guild: Option<u64>,
    author: (u64, &str),
    content: &str,
    mentions_bot: bool,
    member_roles: &[u64],
) -> Value {
    let content = if mentions_bot && !content.contains(&format!("<@{BOT_ID}>")) {
        format!("<@{BOT_ID}> {content}")
    } else {
        content.to_owned()
    };
    let mut m = message_object(id, channel, user(author.0, author.1), &content);
    if mentions_bot {
        let mut bot = bot_user();
        if guild.is_some() {
            bot["member"] = member(BOT_ID, BOT_NAME, &[], false);
        }
        m["mentions"] = json!([bot]);
    }
    if let Some(guild) = guild {
        m["guild_id"] = json!(guild.to_string());
        m["member"] = member(author.0, author.1, member_roles, false);
    }
    m
}

/// A MESSAGE_CREATE in a thread (a guild channel like any other: `channel_id` = the thread).
pub fn thread_message(
    id: u64,
    thread: u64,
    author: (u64, &str),
    content: &str,
    member_roles: &[u64],
) -> Value {
    message(
        id,
        thread,
        Some(GUILD),
        author,
        content,
        false,
        member_roles,
    )
}

/// An INTERACTION_CREATE for a button click (type 3, component_type 2) on the bot's message
/// `message_id`. Guild interactions carry `member` (with `user`), DM ones `user`.
#[allow(clippy::too_many_arguments, reason = "mirrors the payload's fields")]
pub fn component_interaction(
    id: u64,
    token: &str,
    channel: u64,
    guild: Option<u64>,
    user_: (u64, &str),
    member_roles: &[u64],
    custom_id: &str,
    message_id: u64,
) -> Value {
    let mut message = message_object(message_id, channel, bot_user(), "…");
    let mut i = json!({"id": id.to_string(), "application_id": APPLICATION_ID.to_string(),
        "type": 3, "data": {"custom_id": custom_id, "component_type": 2},
        "channel_id": channel.to_string(),
        "channel": {"id": channel.to_string(), "type": if guild.is_some() { 0 } else { 1 }},
        "token": token, "version": 1, "locale": "zh-CN", "app_permissions": "2248473465835073",
        "entitlements": [], "authorizing_integration_owners": {}, "context": 0,
        "attachment_size_limit": 8_388_608,
        "message": Value::Null});
    if let Some(guild) = guild {
        i["guild_id"] = json!(guild.to_string());
        i["guild_locale"] = json!("en-US");
        i["member"] = member(user_.0, user_.1, member_roles, true);
        message["guild_id"] = json!(guild.to_string());
    } else {
        i["user"] = user(user_.0, user_.1);
        i["context"] = json!(1);
    }
    i["message"] = message;
    i
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({"message": "404: Not Found", "code": 0}),
    )
}

fn unknown_channel() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({"message": "Unknown Channel", "code": 10003}),
    )
}

/// Splits a `multipart/form-data` body: (`payload_json` as JSON, [(file name, contents)]).
fn parse_multipart(content_type: &str, body: &[u8]) -> (Value, Vec<(String, String)>) {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .unwrap_or_default()
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let text = String::from_utf8_lossy(body);
    let mut payload = Value::Null;
    let mut files = Vec::new();
    for part in text.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((headers, content)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        let disposition = headers
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .unwrap_or_default();
        let field = |key: &str| {
            disposition
                .split(';')
                .find_map(|p| p.trim().strip_prefix(&format!("{key}=")))
                .map(|v| v.trim_matches('"').to_owned())
        };
        match (field("name"), field("filename")) {
            (_, Some(filename)) => files.push((filename, content.to_owned())),
            (Some(name), None) if name == "payload_json" => {
                payload = serde_json::from_str(content).unwrap_or(json!({"raw": content}));
            }
            (Some(name), None) => {
                if !payload.is_object() {
                    payload = json!({});
                }
                payload[name] = json!(content);
            }
            (None, None) => {}
        }
    }
    (payload, files)
}

fn id_at(segments: &[&str], i: usize) -> Option<u64> {
    segments.get(i).and_then(|s| s.parse().ok())
}

async fn api(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let full = uri.path().to_owned();
    let path = full
        .strip_prefix("/api/v10")
        .or_else(|| full.strip_prefix("/api"))
        .unwrap_or(&full)
        .to_owned();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (body, files) = if content_type.starts_with("multipart/form-data") {
        parse_multipart(&content_type, &body)
    } else if body.is_empty() {
        (Value::Null, Vec::new())
    } else {
        let parsed = serde_json::from_slice(&body)
            .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&body)}));
        (parsed, Vec::new())
    };
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bot {TOKEN}"));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let is_send = method == Method::POST
        && segments.len() == 3
        && segments[0] == "channels"
        && segments[2] == "messages";

    let mut s = state.lock().unwrap();
    let limited = authorized && is_send && s.limit_sends > 0;
    s.requests.push(Req {
        method: method.to_string(),
        path: path.clone(),
        body: body.clone(),
        files: files.clone(),
        at: Instant::now(),
        limited,
    });
    if !authorized {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"message": "401: Unauthorized", "code": 0}),
        );
    }
    if limited {
        s.limit_sends -= 1;
        let mut response = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"message": "You are being rate limited.", "retry_after": 1.0, "global": false}),
        );
        let h = response.headers_mut();
        for (name, value) in [
            ("retry-after", "1"),
            ("x-ratelimit-limit", "5"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset-after", "1.000"),
            ("x-ratelimit-bucket", "fake-bucket"),
            ("x-ratelimit-scope", "user"),
        ] {
            h.insert(name, value.parse().unwrap());
        }
        return response;
    }
    let m = method.as_str();
    match (m, segments.as_slice()) {
        ("GET", ["gateway"]) => axum::Json(json!({"url": s.ws_url})).into_response(),
        ("GET", ["gateway", "bot"]) => axum::Json(json!({"url": s.ws_url, "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000,
                "max_concurrency": 1}}))
        .into_response(),
        ("GET", ["users", "@me"]) => axum::Json(bot_user()).into_response(),
        ("GET", ["oauth2", "applications", "@me"] | ["applications", "@me"]) => {
            axum::Json(application()).into_response()
        }
        ("POST", ["channels", _, "messages"]) => {
            let channel = id_at(&segments, 1).unwrap_or_default();
            let id = s.snowflake();
            let mut m = message_object(
                id,
                channel,
                bot_user(),
                body["content"].as_str().unwrap_or_default(),
            );
            if let Some(c) = s.channels.get(&channel) {
                m["guild_id"] = c["guild_id"].clone();
            }
            m["components"] = body["components"].clone();
            if m["components"].is_null() {
                m["components"] = json!([]);
            }
            m["embeds"] = body.get("embeds").cloned().unwrap_or(json!([]));
            let attachments: Vec<Value> = files
                .iter()
                .enumerate()
                .map(|(i, (name, content))| {
                    json!({"id": (id + 1 + i as u64).to_string(), "filename": name,
                        "size": content.len(), "url": format!("https://cdn.invalid/{name}"),
                        "proxy_url": format!("https://cdn.invalid/{name}")})
                })
                .collect();
            m["attachments"] = json!(attachments);
            if let Some(reference) = body.get("message_reference").filter(|r| r.is_object()) {
                m["message_reference"] = reference.clone();
                m["type"] = json!(19);
            }
            axum::Json(m).into_response()
        }
        ("POST", ["channels", _, "threads"]) => {
            let parent = id_at(&segments, 1).unwrap_or_default();
            let id = s.snowflake();
            let kind = body["type"].as_u64().unwrap_or(12);
            let thread = thread_object(id, parent, &body, kind);
            s.channels.insert(id, thread.clone());
            axum::Json(thread).into_response()
        }
        ("POST", ["channels", _, "messages", _, "threads"]) => {
            let parent = id_at(&segments, 1).unwrap_or_default();
            let id = id_at(&segments, 3).unwrap_or_default();
            let thread = thread_object(id, parent, &body, 11);
            s.channels.insert(id, thread.clone());
            axum::Json(thread).into_response()
        }
        ("PUT", ["channels", _, "thread-members", _])
        | ("DELETE", ["channels", _, "messages", _])
        | ("DELETE", ["channels", _, "thread-members", _]) => {
            StatusCode::NO_CONTENT.into_response()
        }
        ("PATCH", ["channels", _]) => {
            let id = id_at(&segments, 1).unwrap_or_default();
            let Some(channel) = s.channels.get_mut(&id) else {
                return unknown_channel();
            };
            if let Some(fields) = body.as_object() {
                for (key, value) in fields {
                    if matches!(
                        key.as_str(),
                        "archived" | "locked" | "auto_archive_duration" | "invitable"
                    ) && channel.get("thread_metadata").is_some()
                    {
                        channel["thread_metadata"][key] = value.clone();
                    } else {
                        channel[key] = value.clone();
                    }
                }
            }
            axum::Json(channel.clone()).into_response()
        }
        ("GET", ["channels", _, "messages"]) => {
            // Newest first, after `after`, at most `limit`; the API leaves `guild_id` and
            // `member` out of messages it lists.
            let query = uri.query().unwrap_or_default();
            let param = |key: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            let after = param("after").unwrap_or(0);
            let limit = param("limit").unwrap_or(50) as usize;
            let channel = id_at(&segments, 1).unwrap_or(0);
            let id = |m: &Value| {
                m["id"]
                    .as_str()
                    .and_then(|i| i.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let mut listed: Vec<Value> = s
                .history
                .get(&channel)
                .into_iter()
                .flatten()
                .filter(|m| id(m) > after)
                .cloned()
                .map(|mut m| {
                    if let Some(o) = m.as_object_mut() {
                        o.remove("guild_id");
                        o.remove("member");
                    }
                    m
                })
                .collect();
            listed.sort_by_key(|m| std::cmp::Reverse(id(m)));
            listed.truncate(limit);
            axum::Json(Value::Array(listed)).into_response()
        }
        ("GET", ["channels", _]) => match id_at(&segments, 1).and_then(|id| s.channels.get(&id)) {
            Some(channel) => axum::Json(channel.clone()).into_response(),
            None => unknown_channel(),
        },
        ("POST", ["interactions", _, _, "callback"]) => StatusCode::NO_CONTENT.into_response(),
        ("PUT" | "POST", ["applications", _, "commands"])
        | ("PUT" | "POST", ["applications", _, "guilds", _, "commands"]) => {
            let guild = segments.get(3).copied();
            let commands: Vec<Value> = match &body {
                Value::Array(commands) => commands.clone(),
                one => vec![one.clone()],
            };
            let echoed: Vec<Value> = commands
                .into_iter()
                .map(|mut c| {
                    c["id"] = json!(s.snowflake().to_string());
                    c["application_id"] = json!(APPLICATION_ID.to_string());
                    c["version"] = json!("1");
                    if c.get("type").is_none() {
                        c["type"] = json!(1);
                    }
                    if let Some(g) = guild {
                        c["guild_id"] = json!(g);
                    }
                    c
                })
                .collect();
            if m == "POST" {
                axum::Json(echoed.into_iter().next().unwrap_or(Value::Null)).into_response()
            } else {
                axum::Json(Value::Array(echoed)).into_response()
            }
        }
        _ => not_found(),
    }
}

fn thread_object(id: u64, parent: u64, body: &Value, kind: u64) -> Value {
    json!({"id": id.to_string(), "type": kind, "guild_id": GUILD.to_string(),
        "parent_id": parent.to_string(), "owner_id": BOT_ID.to_string(),
        "name": body["name"].as_str().unwrap_or("thread"), "last_message_id": null,
        "rate_limit_per_user": body["rate_limit_per_user"].as_u64().unwrap_or(0),
        "message_count": 0, "member_count": 1, "total_message_sent": 0, "flags": 0,
        "thread_metadata": {"archived": false,
            "auto_archive_duration": body["auto_archive_duration"].as_u64().unwrap_or(4320),
            "archive_timestamp": now_iso(), "locked": false,
            "invitable": body["invitable"].as_bool().unwrap_or(kind == 11),
            "create_timestamp": now_iso()},
        "member": {"id": id.to_string(), "user_id": BOT_ID.to_string(),
            "join_timestamp": now_iso(), "flags": 0}})
}

async fn gateway(
    State(state): State<Arc<Mutex<FakeState>>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade.on_upgrade(move |socket| connection(state, socket))
}

/// One gateway connection: HELLO, then the client's IDENTIFY/RESUME/heartbeats; anything the
/// fake wants to send arrives through the connection's channel (so dispatch order is the order
/// sequence numbers were given out under the state lock).
async fn connection(state: Arc<Mutex<FakeState>>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = {
        let mut s = state.lock().unwrap();
        s.connections += 1;
        let id = u64::from(s.connections);
        // A new connection replaces the old one (as after a client-side reconnect).
        if let Some(old) = s.conn.replace(Conn {
            id,
            tx: tx.clone(),
            live: false,
        }) {
            let _ = old.tx.send(Out::Abort);
        }
        id
    };
    let hello = json!({"op": 10, "s": null, "t": null,
        "d": {"heartbeat_interval": HEARTBEAT_INTERVAL}});
    if socket
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Text(text)) => {
                    if socket.send(WsMessage::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Close(code)) => {
                    let frame = CloseFrame { code, reason: "fake close".into() };
                    let _ = socket.send(WsMessage::Close(Some(frame))).await;
                    break;
                }
                Some(Out::Abort) | None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Text(text))) => {
                    let payload: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    on_gateway_payload(&state, id, &tx, payload);
                }
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let mut s = state.lock().unwrap();
    if s.conn.as_ref().is_some_and(|c| c.id == id) {
        s.conn = None;
    }
    // Dropping `socket` here ends the TCP connection (after a close frame, or abruptly).
}

fn on_gateway_payload(
    state: &Arc<Mutex<FakeState>>,
    conn_id: u64,
    tx: &mpsc::UnboundedSender<Out>,
    payload: Value,
) {
    let mut s = state.lock().unwrap();
    s.gateway_in.push(payload.clone());
    if s.conn.as_ref().is_none_or(|c| c.id != conn_id) {
        // A replaced or dropped connection: ignore what it still says.
        return;
    }
    let send = |p: Value| {
        let _ = tx.send(Out::Text(p.to_string()));
    };
    match payload["op"].as_u64() {
        Some(1) => send(json!({"op": 11, "s": null, "t": null, "d": null})),
        Some(2) => {
            let token = payload["d"]["token"].as_str().unwrap_or_default();
            if token.trim_start_matches("Bot ") != TOKEN {
                let _ = tx.send(Out::Close(4004));
                return;
            }
            s.identifies += 1;
            s.intents = payload["d"]["intents"].as_u64();
            s.session = true;
            // A new session: what was sent on the old one is not replayed.
            s.sent.clear();
            if let Some(conn) = s.conn.as_mut().filter(|c| c.id == conn_id) {
                conn.live = true;
            }
            let ready = json!({"v": 10, "user": bot_user(),
                "guilds": [{"id": GUILD.to_string(), "unavailable": true}],
                "session_id": SESSION_ID, "resume_gateway_url": s.ws_url,
                "shard": [0, 1], "application": {"id": APPLICATION_ID.to_string(), "flags": 0},
                "private_channels": [], "presences": [], "relationships": [],
                "user_settings": {}, "guild_join_requests": [], "geo_ordered_rtc_regions": [],
                "auth": {}});
            s.send_dispatch("READY", ready);
            s.send_dispatch("GUILD_CREATE", guild_create());
            s.flush_pending();
        }
        Some(6) => {
            let ok = s.session
                && payload["d"]["session_id"] == SESSION_ID
                && payload["d"]["token"]
                    .as_str()
                    .is_some_and(|t| t.trim_start_matches("Bot ") == TOKEN);
            if !ok {
                s.bad_resumes += 1;
                send(json!({"op": 9, "s": null, "t": null, "d": false}));
                return;
            }
            s.resumes += 1;
            let from = payload["d"]["seq"].as_u64().unwrap_or(0);
            for (seq, p) in &s.sent {
                if *seq > from {
                    send(p.clone());
                }
            }
            if let Some(conn) = s.conn.as_mut().filter(|c| c.id == conn_id) {
                conn.live = true;
            }
            s.flush_pending();
            s.send_dispatch("RESUMED", json!({"_trace": ["fake"]}));
        }
        _ => {}
    }
}

impl Fake {
    pub async fn start() -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let url = format!("http://{addr}");
        let ws_url = format!("ws://{addr}/gateway");
        let mut channels = HashMap::new();
        channels.insert(CHANNEL, text_channel(CHANNEL, "support", 0));
        channels.insert(STAFF_CHANNEL, text_channel(STAFF_CHANNEL, "staff", 1));
        let state = Arc::new(Mutex::new(FakeState {
            ws_url: ws_url.clone(),
            channels,
            ..FakeState::default()
        }));
        let app = Router::new()
            .route("/gateway", any(gateway))
            .fallback(api)
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fake { state, url, ws_url }
    }

    /// Dispatches `event` (op 0) to the live session with the next sequence number; queued until
    /// the next IDENTIFY/RESUME when no session is live.
    pub fn dispatch(&self, event: &str, data: Value) {
        let mut s = self.state.lock().unwrap();
        if event == "MESSAGE_CREATE" {
            s.remember(&data);
        }
        if s.conn.as_ref().is_some_and(|c| c.live) {
            s.send_dispatch(event, data);
        } else {
            s.pending.push((event.to_owned(), data));
        }
    }

    /// A message written while no gateway session was open to hear it: Discord never dispatches
    /// it; only `GET /channels/{id}/messages` shows it.
    pub fn write_unheard(&self, message: Value) {
        self.state.lock().unwrap().remember(&message);
    }

    /// Ends the live gateway connection abruptly (no close frame): serenity RESUMEs.
    pub fn drop_connection(&self) {
        let mut s = self.state.lock().unwrap();
        if let Some(conn) = s.conn.take() {
            let _ = conn.tx.send(Out::Abort);
        }
    }

    /// Closes the live gateway connection with a close frame `code` (4000 → serenity RESUMEs;
    /// 4004 → authentication failed, serenity gives up).
    pub fn close_connection(&self, code: u16) {
        let mut s = self.state.lock().unwrap();
        if let Some(conn) = s.conn.take() {
            let _ = conn.tx.send(Out::Close(code));
        }
    }

    /// Asks the client to reconnect and resume (op 7).
    pub fn request_reconnect(&self) {
        let s = self.state.lock().unwrap();
        if let Some(conn) = &s.conn {
            let _ = conn.tx.send(Out::Text(
                json!({"op": 7, "s": null, "t": null, "d": null}).to_string(),
            ));
        }
    }

    /// A gateway session is live (IDENTIFY or RESUME handled on the current connection).
    pub fn connected(&self) -> bool {
        self.state
            .lock()
            .unwrap()
            .conn
            .as_ref()
            .is_some_and(|c| c.live)
    }

    pub fn connections(&self) -> u32 {
        self.state.lock().unwrap().connections
    }

    pub fn identifies(&self) -> u32 {
        self.state.lock().unwrap().identifies
    }

    pub fn resumes(&self) -> u32 {
        self.state.lock().unwrap().resumes
    }

    /// The intents of the last IDENTIFY.
    pub fn intents(&self) -> Option<u64> {
        self.state.lock().unwrap().intents
    }

    /// The sequence number of the last dispatch.
    pub fn seq(&self) -> u64 {
        self.state.lock().unwrap().seq
    }

    /// Every gateway payload the client sent.
    pub fn gateway_in(&self) -> Vec<Value> {
        self.state.lock().unwrap().gateway_in.clone()
    }

    /// The next `n` `POST /channels/{id}/messages` are answered 429 (retry_after 1 s).
    pub fn limit_next_sends(&self, n: u32) {
        self.state.lock().unwrap().limit_sends = n;
    }

    /// A fresh snowflake (for message/interaction ids in tests).
    pub fn snowflake(&self) -> u64 {
        self.state.lock().unwrap().snowflake()
    }

    /// A channel the fake knows (guild text channels and threads created through the API).
    pub fn channel(&self, id: u64) -> Option<Value> {
        self.state.lock().unwrap().channels.get(&id).cloned()
    }

    pub fn requests(&self) -> Vec<Req> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Waits until `pred` holds, polling with a deadline; returns the value it saw.
    pub async fn wait_state(&self, what: &str, pred: impl Fn(&Fake) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !pred(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; connections {}, identifies {}, resumes {}; \
                 gateway in: {:#?}; requests: {:#?}",
                self.connections(),
                self.identifies(),
                self.resumes(),
                self.gateway_in(),
                summary(&self.requests())
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `n` gateway connections were opened.
    pub async fn wait_connections(&self, n: u32) {
        self.wait_state(&format!("{n} gateway connections"), |f| {
            f.connections() >= n
        })
        .await;
    }

    /// Waits until a session is live (READY or RESUMED sent).
    pub async fn wait_connected(&self) {
        self.wait_state("a live gateway session", Fake::connected)
            .await;
    }

    /// Waits until `pred` holds for the recorded requests; returns them.
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&[Req]) -> bool) -> Vec<Req> {
        let deadline = Instant::now() + WAIT;
        loop {
            let reqs = self.requests();
            if pred(&reqs) {
                return reqs;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; requests: {:#?}",
                summary(&reqs)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a request matching `pred` and returns the first such.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Req) -> bool) -> Req {
        let reqs = self.wait_until(what, |reqs| reqs.iter().any(&pred)).await;
        reqs.into_iter().find(|r| pred(r)).expect("found")
    }
}

fn summary(reqs: &[Req]) -> Vec<(String, String, Value, Vec<String>, bool)> {
    reqs.iter()
        .map(|r| {
            (
                r.method.clone(),
                r.path.clone(),
                r.body.clone(),
                r.files.iter().map(|(n, _)| n.clone()).collect(),
                r.limited,
            )
        })
        .collect()
}

/// Messages sent to `channel` (`POST /channels/{channel}/messages`) that were not answered 429.
pub fn posts_to(reqs: &[Req], channel: u64) -> Vec<&Req> {
    let path = format!("/channels/{channel}/messages");
    reqs.iter()
        .filter(|r| r.method == "POST" && !r.limited && r.path == path)
        .collect()
}

pub fn content(r: &Req) -> &str {
    r.body["content"].as_str().unwrap_or_default()
}

/// The buttons of a message body: (label, custom_id), in order.
pub fn buttons(r: &Req) -> Vec<(String, String)> {
    r.body["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().into_iter().flatten())
        .filter(|c| c["type"] == json!(2))
        .map(|b| {
            (
                b["label"].as_str().unwrap_or_default().to_owned(),
                b["custom_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}
