//! A fake Telegram Bot API (axum on 127.0.0.1:0) and the `kefu run` process helper, shared by
//! the end-to-end test files (`mod fake_telegram;`). The fake serves queued updates through
//! `getUpdates` (long polling, ~200 ms when empty) and records every other request (method + JSON
//! body), so tests assert on what the bot sent; waits poll the record with a deadline.

#![allow(
    dead_code,
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "shared test helpers: not every test file uses each one, and a failed expectation is a failed test"
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const TOKEN: &str = "123456:TEST-token";
pub const BOT_ID: i64 = 999;
pub const BOT_USERNAME: &str = "kefu_test_bot";
pub const STAFF_CHAT: i64 = -1001;
pub const STAFF_ID: i64 = 7;
pub const USER: i64 = 42;
pub const WAIT: Duration = Duration::from_secs(15);

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub body: Value,
    pub at: Instant,
    /// The fake refused it: 429, or a 5xx from [`Fake::fail_sends_at_random`].
    pub limited: bool,
    /// The HTTP status the fake answered with.
    pub status: u16,
}

/// Random refusals of sendMessage (see [`Fake::fail_sends_at_random`]).
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// xorshift64 state.
    pub rng: u64,
    /// Percent of sendMessage calls refused.
    pub percent: u64,
    /// At most this many of the refusals are a 502 (the rest are 429 with retry_after 1).
    pub max_5xx: u32,
}

impl Faults {
    fn next(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// One `getUpdates` call, recorded when [`FakeState::record_polls`] is set (the load bench).
#[derive(Debug, Clone)]
pub struct Poll {
    /// When the call arrived.
    pub at: Instant,
    /// When it was answered.
    pub answered: Instant,
    /// The offset it confirmed up to (every update below it was stored by the caller).
    pub offset: i64,
    /// How many updates the answer carried.
    pub served: usize,
    /// The caller's address (its local port tells which process called).
    pub peer: SocketAddr,
}

/// An update's first hand-out in a `getUpdates` answer (recorded with [`FakeState::record_polls`]).
#[derive(Debug, Clone, Copy)]
pub struct Handout {
    pub update_id: i64,
    pub at: Instant,
    /// The same moment on the wall clock, to compare with times the bot stored.
    pub wall: SystemTime,
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub requests: Vec<Req>,
    /// Updates not yet confirmed; `true` = served once regardless of the offset (a re-delivery).
    pub updates: Vec<(Value, bool)>,
    /// sendMessage calls still to answer with 429.
    pub limit_sends: u32,
    pub next_id: i64,
    /// Random refusals of sendMessage, when set.
    pub faults: Option<Faults>,
    /// sendMessage is recorded at once but answered only after this long.
    pub send_delay: Duration,
    /// Answer at most `limit` updates per getUpdates (default and cap 100), as Telegram does;
    /// off by default (every pending update in one answer).
    pub honor_limit: bool,
    /// Record every getUpdates call in `polls` and each update's first hand-out in `handouts`.
    pub record_polls: bool,
    pub polls: Vec<Poll>,
    pub handouts: Vec<Handout>,
    /// The highest update id handed out so far (with `record_polls`).
    pub handed_max: i64,
}

#[derive(Debug, Clone)]
pub struct Fake {
    pub state: Arc<Mutex<FakeState>>,
    pub url: String,
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn chat_json(id: i64) -> Value {
    if id < 0 {
        json!({"id": id, "type": "supergroup", "title": "group", "is_forum": id == STAFF_CHAT})
    } else {
        json!({"id": id, "type": "private", "first_name": "User"})
    }
}

pub fn ok(result: Value) -> Response {
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

pub async fn bot_api(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(state): State<Arc<Mutex<FakeState>>>,
    UrlPath(path): UrlPath<String>,
    body: Bytes,
) -> Response {
    let method = path.rsplit('/').next().unwrap_or_default().to_lowercase();
    assert!(
        path.starts_with(&format!("bot{TOKEN}/")),
        "the token is in the path: {path}"
    );
    let body: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&body)}));
    if method == "getupdates" {
        let offset = body["offset"].as_i64().unwrap_or(0);
        let limit = body["limit"].as_u64().map_or(100, |l| l.clamp(1, 100)) as usize;
        let arrived = Instant::now();
        for _ in 0..4 {
            let batch: Vec<Value> = {
                let mut s = state.lock().unwrap();
                s.updates
                    .retain(|(u, forced)| *forced || u["update_id"].as_i64() >= Some(offset));
                let take = if s.honor_limit { limit } else { usize::MAX };
                let batch: Vec<Value> = s
                    .updates
                    .iter()
                    .take(take)
                    .map(|(u, _)| u.clone())
                    .collect();
                s.updates.retain(|(_, forced)| !forced);
                if s.record_polls {
                    let (now, wall) = (Instant::now(), SystemTime::now());
                    for u in &batch {
                        let id = u["update_id"].as_i64().unwrap_or_default();
                        if id > s.handed_max {
                            s.handed_max = id;
                            s.handouts.push(Handout {
                                update_id: id,
                                at: now,
                                wall,
                            });
                        }
                    }
                    if !batch.is_empty() {
                        s.polls.push(Poll {
                            at: arrived,
                            answered: now,
                            offset,
                            served: batch.len(),
                            peer,
                        });
                    }
                }
                batch
            };
            if !batch.is_empty() {
                return ok(Value::Array(batch));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut s = state.lock().unwrap();
        if s.record_polls {
            s.polls.push(Poll {
                at: arrived,
                answered: Instant::now(),
                offset,
                served: 0,
                peer,
            });
        }
        return ok(json!([]));
    }
    let (id, status, delay) = {
        let mut s = state.lock().unwrap();
        s.next_id += 1;
        let id = s.next_id + 1000;
        let send = method == "sendmessage";
        let mut status = StatusCode::OK;
        if send && s.limit_sends > 0 {
            s.limit_sends -= 1;
            status = StatusCode::TOO_MANY_REQUESTS;
        } else if send
            && let Some(faults) = s.faults.as_mut()
            && faults.next() % 100 < faults.percent
        {
            status = if faults.max_5xx > 0 && faults.next() % 4 == 0 {
                faults.max_5xx -= 1;
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::TOO_MANY_REQUESTS
            };
        }
        s.requests.push(Req {
            method: method.clone(),
            body: body.clone(),
            at: Instant::now(),
            limited: status != StatusCode::OK,
            status: status.as_u16(),
        });
        (id, status, if send { s.send_delay } else { Duration::ZERO })
    };
    if status == StatusCode::TOO_MANY_REQUESTS {
        let body = json!({"ok": false, "error_code": 429,
            "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}});
        return (status, axum::Json(body)).into_response();
    }
    if status != StatusCode::OK {
        let body =
            json!({"ok": false, "error_code": status.as_u16(), "description": "Bad Gateway"});
        return (status, axum::Json(body)).into_response();
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let chat = body["chat_id"].as_i64().unwrap_or(STAFF_CHAT);
    let message = |text: Value| {
        let mut m = json!({"message_id": id, "date": now_secs(), "chat": chat_json(chat),
            "from": {"id": BOT_ID, "is_bot": true, "first_name": "Kefu", "username": BOT_USERNAME},
            "text": text});
        if let Some(thread) = body["message_thread_id"].as_i64() {
            m["message_thread_id"] = json!(thread);
            m["is_topic_message"] = json!(true);
        }
        m
    };
    match method.as_str() {
        "getme" => ok(json!({"id": BOT_ID, "is_bot": true, "first_name": "Kefu",
            "username": BOT_USERNAME, "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false})),
        "sendmessage" => ok(message(body["text"].clone())),
        "senddocument" | "forwardmessage" | "copymessage" => ok(message(json!("(file)"))),
        "createforumtopic" => ok(json!({"message_thread_id": id, "name": body["name"],
            "icon_color": 7322096})),
        _ => ok(json!(true)),
    }
}

impl Fake {
    pub async fn start() -> Fake {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let app = Router::new()
            .route("/{*path}", post(bot_api))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        Fake { state, url }
    }

    pub fn push(&self, update: Value) {
        self.state.lock().unwrap().updates.push((update, false));
    }

    /// Queues many updates under one lock (the load bench).
    pub fn push_many(&self, updates: impl IntoIterator<Item = Value>) {
        let mut s = self.state.lock().unwrap();
        s.updates.extend(updates.into_iter().map(|u| (u, false)));
    }

    /// How many requests (other than getUpdates) were recorded so far.
    pub fn request_count(&self) -> usize {
        self.state.lock().unwrap().requests.len()
    }

    /// The requests recorded after the first `from` (cheaper than [`Fake::requests`] on a long run).
    pub fn requests_since(&self, from: usize) -> Vec<Req> {
        let s = self.state.lock().unwrap();
        s.requests
            .get(from..)
            .map(<[Req]>::to_vec)
            .unwrap_or_default()
    }

    /// Serves an update again even though its offset was confirmed (Telegram re-delivering).
    pub fn redeliver(&self, update: Value) {
        self.state.lock().unwrap().updates.push((update, true));
    }

    pub fn limit_next_sends(&self, n: u32) {
        self.state.lock().unwrap().limit_sends = n;
    }

    /// Refuses about `percent` % of later sendMessage calls, chosen by a xorshift generator seeded
    /// with `seed`: with 429 (retry_after 1), or with 502 for at most `max_5xx` of them (teloxide
    /// waits 10 s after any 5xx before it reports the error, so keep that number small).
    pub fn fail_sends_at_random(&self, seed: u64, percent: u64, max_5xx: u32) {
        self.state.lock().unwrap().faults = Some(Faults {
            rng: seed.max(1),
            percent,
            max_5xx,
        });
    }

    /// Answers later sendMessage calls only after `delay` (each is recorded when it arrives), so a
    /// test can stop the bot while Telegram has a message but the bot has not heard back.
    pub fn delay_sends(&self, delay: Duration) {
        self.state.lock().unwrap().send_delay = delay;
    }

    pub fn requests(&self) -> Vec<Req> {
        self.state.lock().unwrap().requests.clone()
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
                reqs.iter()
                    .map(|r| (r.method.clone(), r.body.clone()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// Waits for a request matching `pred` and returns the first such.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Req) -> bool) -> Req {
        let reqs = self.wait_until(what, |reqs| reqs.iter().any(&pred)).await;
        reqs.into_iter().find(|r| pred(r)).expect("found")
    }
}

pub fn sends_to(reqs: &[Req], chat: i64) -> Vec<&Req> {
    reqs.iter()
        .filter(|r| r.method == "sendmessage" && !r.limited && r.body["chat_id"] == json!(chat))
        .collect()
}

pub fn text(r: &Req) -> &str {
    r.body["text"].as_str().unwrap_or_default()
}

pub fn buttons(r: &Req) -> Vec<(String, String)> {
    r.body["reply_markup"]["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().into_iter().flatten())
        .map(|b| {
            (
                b["text"].as_str().unwrap_or_default().to_owned(),
                b["callback_data"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

pub fn user(id: i64, name: &str) -> Value {
    json!({"id": id, "is_bot": false, "first_name": name, "language_code": "zh-hans"})
}

pub fn dm(update_id: i64, message_id: i64, from: i64, text: &str) -> Value {
    json!({"update_id": update_id, "message": {"message_id": message_id, "date": now_secs(),
        "chat": chat_json(from), "from": user(from, "Alice"), "text": text}})
}

pub fn group_msg(update_id: i64, message_id: i64, chat: i64, from: i64, text: &str) -> Value {
    json!({"update_id": update_id, "message": {"message_id": message_id, "date": now_secs(),
        "chat": chat_json(chat), "from": user(from, "Carol"), "text": text}})
}

pub fn topic_msg(update_id: i64, message_id: i64, thread: i64, from: i64, text: &str) -> Value {
    json!({"update_id": update_id, "message": {"message_id": message_id, "date": now_secs(),
        "chat": chat_json(STAFF_CHAT), "from": user(from, "Bob"), "text": text,
        "message_thread_id": thread, "is_topic_message": true}})
}

pub fn callback(update_id: i64, id: &str, from: i64, chat: i64, data: &str) -> Value {
    json!({"update_id": update_id, "callback_query": {"id": id, "from": user(from, "Bob"),
        "chat_instance": "ci", "data": data,
        "message": {"message_id": 1, "date": now_secs(), "chat": chat_json(chat), "text": "…"}}})
}

/// `kefu run` against the fake, on a database of its own.
pub struct Kefu {
    child: Child,
    _dir: tempfile::TempDir,
    db: PathBuf,
}

impl Kefu {
    pub fn start(fake: &Fake, extra_env: &[(&str, &str)], kb: Option<&Path>) -> Kefu {
        Kefu::start_in(tempfile::tempdir().expect("temp dir"), fake, extra_env, kb)
    }

    /// Starts on the database in `dir` (kept by the returned process).
    pub fn start_in(
        dir: tempfile::TempDir,
        fake: &Fake,
        extra_env: &[(&str, &str)],
        kb: Option<&Path>,
    ) -> Kefu {
        let db = dir.path().join("kefu.db");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
        cmd.arg("run").current_dir(env!("CARGO_MANIFEST_DIR"));
        if let Some(kb) = kb {
            cmd.arg("--kb").arg(kb);
        }
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KEFU") {
                cmd.env_remove(key);
            }
        }
        cmd.env("KEFU__DATABASE__URL", format!("sqlite://{}", db.display()))
            .env("KEFU__TELEGRAM__TOKEN", TOKEN)
            .env("KEFU__TELEGRAM__API_URL", &fake.url)
            // Staff-side texts in English, which the assertions read (the default is Chinese).
            .env("KEFU__SUPPORT__STAFF_LANGUAGE", "en")
            .envs(extra_env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawn kefu run");
        Kefu {
            child,
            _dir: dir,
            db,
        }
    }

    pub fn with_staff(fake: &Fake) -> Kefu {
        Kefu::start(
            fake,
            &[
                ("KEFU__TELEGRAM__STAFF_CHAT_ID", &STAFF_CHAT.to_string()),
                (
                    "KEFU__TELEGRAM__STAFF_USER_IDS",
                    &format!("{STAFF_ID},12345"),
                ),
            ],
            None,
        )
    }

    /// SIGTERM, then the exit status and stderr (bounded wait).
    pub fn stop(mut self) -> (Option<i32>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return (status.code(), err);
            }
            assert!(
                Instant::now() < deadline,
                "kefu run did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Kefu {
    /// `kefu desk … --json` on this process's database.
    pub fn desk_json(&self, args: &[&str]) -> Value {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
        cmd.arg("desk")
            .args(args)
            .arg("--json")
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KEFU") {
                cmd.env_remove(key);
            }
        }
        cmd.env(
            "KEFU__DATABASE__URL",
            format!("sqlite://{}", self.db.display()),
        );
        let out = cmd.output().expect("kefu desk");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }

    /// Another `kefu` command on this process's database (`staff add …`), with `env` added;
    /// asserts it succeeds.
    pub fn cli(&self, args: &[&str], env: &[(&str, &str)]) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
        cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KEFU") {
                cmd.env_remove(key);
            }
        }
        cmd.env(
            "KEFU__DATABASE__URL",
            format!("sqlite://{}", self.db.display()),
        )
        .envs(env.iter().copied());
        let out = cmd.output().expect("kefu");
        assert!(
            out.status.success(),
            "kefu {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SIGTERM like [`Kefu::stop`], keeping the database for a restart.
    pub fn stop_keeping_db(mut self) -> (Option<i32>, String, tempfile::TempDir) {
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("temp dir"));
        let (code, stderr) = self.stop();
        (code, stderr, dir)
    }

    /// SIGKILL: no chance to finish anything; the database is handed back for a restart.
    pub fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self._dir, dir)
    }
}

impl Drop for Kefu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
