//! End-to-end test of several `kefu run` instances on one PostgreSQL database (leader election of
//! the platform connections, `kefu_service::leadership`): two real processes against the fake
//! Telegram Bot API (`tests/fake_telegram`) and the fake Discord (`tests/fake_discord`), on a
//! fresh schema of `KEFU_TEST_DATABASE_URL` (dropped afterwards; skipped with a note when the
//! variable is not set).
//!
//! It checks from the outside: exactly one instance long-polls Telegram (no two `getUpdates` ever
//! overlap, the `leases` table names one holder) and exactly one runs the Discord gateway (one
//! connection, one IDENTIFY); every user message is answered once and a user's line reaches the
//! staff topic once, although both instances run delivery workers; when the leader is killed
//! (SIGKILL), the other takes the connections over (Telegram, and the Discord shard with a new
//! IDENTIFY) and answers what arrives meanwhile, once. This happens twice (a replacement instance
//! is started in between), so the Discord failover is exercised whichever instance led it.
//! Last, a clean stop (SIGTERM) gives the leases up. About 15 s.

#![recursion_limit = "256"]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

mod fake_discord;
mod fake_telegram;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fake_telegram::{STAFF_CHAT, STAFF_ID, USER, buttons, callback, dm, sends_to, text};
use serde_json::json;
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

/// The bound of every wait. Failover takes the lease term (2 s) plus a second.
const WAIT: Duration = Duration::from_secs(20);
/// Long enough for anything that should NOT happen (a second copy, a second poller) to show.
const SETTLE: Duration = Duration::from_secs(2);

fn telegram_lease() -> String {
    format!("telegram:poll:{}", fake_telegram::BOT_ID)
}

fn discord_lease() -> String {
    format!("discord:shard:0/1:{}", fake_discord::BOT_ID)
}

/// Questions that each get one answer (a new user each).
const QUESTIONS: &[&str] = &[
    "提币失败了怎么办",
    "充值没到账",
    "怎么修改密码",
    "登录密码想不起来了",
    "提现手续费怎么收",
    "一天最多提多少币",
    "现货交易手续费是多少",
    "钱包都支持什么链",
    "my deposit hasnt arrived",
    "how much is the withdrawal fee",
];

// ---------------------------------------------------------------------------------------------
// The database

/// A fresh schema of `KEFU_TEST_DATABASE_URL`'s database, dropped with this.
struct Schema {
    base: String,
    name: String,
    /// The database URL with the schema as the search path.
    url: String,
}

impl Schema {
    async fn create() -> Option<Schema> {
        let Ok(base) = std::env::var("KEFU_TEST_DATABASE_URL") else {
            // Straight to stderr: the harness captures the output of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "instances test skipped: KEFU_TEST_DATABASE_URL is not set"
            );
            return None;
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!("kefu_instances_{}_{nanos}", std::process::id());
        let mut admin = PgConnection::connect(&base)
            .await
            .expect("connect to KEFU_TEST_DATABASE_URL");
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .execute(&mut admin)
            .await
            .expect("create the test schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-csearch_path%3D{name}");
        Some(Schema { base, name, url })
    }

    /// Every lease row that has not expired: (name, owner).
    async fn leases(&self) -> Vec<(String, String)> {
        let Ok(mut conn) = PgConnection::connect(&self.url).await else {
            return Vec::new();
        };
        // Before the first instance migrated, the table does not exist: no leases.
        sqlx::query_as::<_, (String, String)>(
            "SELECT name, owner FROM leases WHERE expires_at > now() ORDER BY name",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default()
    }

    /// The pid of the instance holding the lease `name`.
    async fn holder(&self, name: &str) -> Option<u32> {
        self.leases()
            .await
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, owner)| pid_of_instance(&owner).expect("owner is host-pid-salt"))
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // From a plain thread: the test's runtime may be gone.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&base).await {
                    let _ = sqlx::query(AssertSqlSafe(format!("DROP SCHEMA \"{name}\" CASCADE")))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}

/// `kefu status --json` on the database `url`.
fn kefu_status(url: &str) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
    cmd.args(["status", "--json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KEFU") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .env("KEFU__DATABASE__URL", url)
        .output()
        .expect("kefu status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("kefu status --json prints JSON")
}

/// The pid in an instance id (`{host}-{pid}-{salt}`, `kefu_service::instance_id`).
fn pid_of_instance(owner: &str) -> Option<u32> {
    let mut parts = owner.rsplit('-');
    parts.next()?;
    parts.next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// The processes

/// `kefu run` processes on one database, each logging to a file; all are killed when this is
/// dropped, and their logs printed when the test failed.
struct Instances {
    dir: tempfile::TempDir,
    db_url: String,
    telegram_url: String,
    discord_url: String,
    /// Every process started: (process, log file, killed).
    list: Vec<(Child, PathBuf, bool)>,
}

impl Instances {
    fn new(
        db_url: &str,
        telegram: &fake_telegram::Fake,
        discord: &fake_discord::Fake,
    ) -> Instances {
        Instances {
            dir: tempfile::tempdir().expect("temp dir"),
            db_url: db_url.to_owned(),
            telegram_url: telegram.url.clone(),
            discord_url: discord.url.clone(),
            list: Vec::new(),
        }
    }

    /// Starts one more `kefu run`; returns its pid.
    fn start(&mut self) -> u32 {
        let log = self
            .dir
            .path()
            .join(format!("kefu-{}.log", self.list.len()));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
        cmd.arg("run").current_dir(env!("CARGO_MANIFEST_DIR"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KEFU") {
                cmd.env_remove(key);
            }
        }
        // The "leading"/"standing by" lines are at info.
        cmd.env("RUST_LOG", "info")
            .env("KEFU__DATABASE__URL", &self.db_url)
            .env("KEFU__DATABASE__LEASE_SECONDS", "2")
            .env("KEFU__TELEGRAM__TOKEN", fake_telegram::TOKEN)
            .env("KEFU__TELEGRAM__API_URL", &self.telegram_url)
            .env("KEFU__TELEGRAM__STAFF_CHAT_ID", STAFF_CHAT.to_string())
            .env("KEFU__TELEGRAM__STAFF_USER_IDS", STAFF_ID.to_string())
            // No pacing: the fake has no limits.
            .env("KEFU__TELEGRAM__MAX_PER_SECOND", "0")
            .env("KEFU__DISCORD__TOKEN", fake_discord::TOKEN)
            .env("KEFU__DISCORD__API_URL", &self.discord_url)
            // Staff-side texts in English, which the assertions read.
            .env("KEFU__SUPPORT__STAFF_LANGUAGE", "en")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file));
        let child = cmd.spawn().expect("spawn kefu run");
        let pid = child.id();
        self.list.push((child, log, false));
        pid
    }

    /// The pids of the processes not killed.
    fn live(&self) -> Vec<u32> {
        self.list
            .iter()
            .filter(|(_, _, killed)| !killed)
            .map(|(c, _, _)| c.id())
            .collect()
    }

    fn log_of(&self, pid: u32) -> String {
        self.list
            .iter()
            .find(|(c, _, _)| c.id() == pid)
            .and_then(|(_, log, _)| std::fs::read_to_string(log).ok())
            .unwrap_or_default()
    }

    /// SIGTERM the process `pid`, then its exit code (bounded wait).
    fn stop(&mut self, pid: u32) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let (child, _, killed) = self
            .list
            .iter_mut()
            .find(|(c, _, _)| c.id() == pid)
            .expect("one of ours");
        *killed = true;
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "kefu run did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the process `pid`: no chance to give its leases up.
    fn kill(&mut self, pid: u32) {
        let (child, _, killed) = self
            .list
            .iter_mut()
            .find(|(c, _, _)| c.id() == pid)
            .expect("one of ours");
        let _ = child.kill();
        let _ = child.wait();
        *killed = true;
    }
}

impl Drop for Instances {
    fn drop(&mut self) {
        for (child, _, _) in &mut self.list {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            for (child, log, _) in &self.list {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(150)..];
                eprintln!(
                    "---- kefu run (pid {}) log, last {} lines ----\n{}",
                    child.id(),
                    tail.len(),
                    tail.join("\n")
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Polls `check` until it returns `Some`, for at most [`WAIT`]; on timeout fails with `what` and
/// the last `describe()`.
async fn wait<T, F, Fut>(what: &str, mut check: F, describe: impl Fn() -> String) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out ({WAIT:?}) waiting for {what}; {}",
            describe()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Telegram update ids, in order.
struct Updates(i64);

impl Updates {
    fn next(&mut self) -> i64 {
        self.0 += 1;
        self.0
    }
}

/// A user asks for a human ("转人工") and staff claim the ticket from its summary post's button;
/// returns the ticket's forum topic once the user was told staff joined.
async fn open_and_claim(telegram: &fake_telegram::Fake, ids: &mut Updates) -> i64 {
    telegram.push(dm(ids.next(), 10, USER, "转人工"));
    let summary = wait(
        "the ticket's summary post in the staff forum",
        || async {
            telegram.requests().into_iter().find(|r| {
                r.method == "sendmessage"
                    && !r.limited
                    && r.body["chat_id"] == json!(STAFF_CHAT)
                    && buttons(r).iter().any(|(l, _)| l == "Claim")
            })
        },
        || format!("{:#?}", telegram_texts(&telegram.requests(), STAFF_CHAT)),
    )
    .await;
    let thread = summary.body["message_thread_id"]
        .as_i64()
        .expect("in a topic");
    let claim = buttons(&summary)
        .into_iter()
        .find(|(l, _)| l == "Claim")
        .expect("Claim")
        .1;
    telegram.push(callback(
        ids.next(),
        "cb-claim",
        STAFF_ID,
        STAFF_CHAT,
        &claim,
    ));
    wait(
        "the staff-joined message to the user",
        || async {
            telegram_texts(&telegram.requests(), USER)
                .iter()
                .any(|t| t.contains("Bob"))
                .then_some(())
        },
        || format!("{:#?}", telegram_texts(&telegram.requests(), USER)),
    )
    .await;
    thread
}

/// Pushes one question from each of `users` (a question each, from [`QUESTIONS`]).
fn ask_telegram(fake: &fake_telegram::Fake, ids: &mut Updates, users: &[i64]) {
    for (i, &user) in users.iter().enumerate() {
        let id = ids.next();
        fake.push(dm(id, 10 + id, user, QUESTIONS[i % QUESTIONS.len()]));
    }
}

/// Dispatches one DM from each of `users`, each in a DM channel of its own (`user + 1`).
fn ask_discord(fake: &fake_discord::Fake, users: &[u64]) {
    for (i, &user) in users.iter().enumerate() {
        let id = fake.snowflake();
        fake.dispatch(
            "MESSAGE_CREATE",
            fake_discord::message(
                id,
                user + 1,
                None,
                (user, "user"),
                QUESTIONS[i % QUESTIONS.len()],
                false,
                &[],
            ),
        );
    }
}

/// The texts Telegram accepted for `chat`, in order.
fn telegram_texts(reqs: &[fake_telegram::Req], chat: i64) -> Vec<String> {
    sends_to(reqs, chat)
        .into_iter()
        .map(|r| text(r).to_owned())
        .collect()
}

/// The contents the fake Discord accepted in the DM channel of `user`, in order.
fn discord_texts(reqs: &[fake_discord::Req], user: u64) -> Vec<String> {
    fake_discord::posts_to(reqs, user + 1)
        .into_iter()
        .map(|r| fake_discord::content(r).to_owned())
        .collect()
}

/// An answer arrived (the one message with the answer's buttons) for the question.
fn telegram_answered(reqs: &[fake_telegram::Req], chat: i64) -> bool {
    sends_to(reqs, chat).iter().any(|r| !buttons(r).is_empty())
}

fn discord_answered(reqs: &[fake_discord::Req], user: u64) -> bool {
    fake_discord::posts_to(reqs, user + 1)
        .iter()
        .any(|r| !fake_discord::buttons(r).is_empty())
}

/// Each user got one answer: one message with buttons and nothing sent twice.
fn assert_answered_once(platform: &str, texts: &[(String, Vec<String>, usize)]) {
    for (who, sent, with_buttons) in texts {
        let mut unique = sent.clone();
        unique.sort_unstable();
        unique.dedup();
        assert!(
            *with_buttons == 1 && unique.len() == sent.len(),
            "{platform} user {who}: answered once (one message with buttons, nothing twice); \
             sent {sent:#?}\nall: {texts:#?}"
        );
    }
}

fn check_telegram_users(fake: &fake_telegram::Fake, users: &[i64]) {
    let reqs = fake.requests();
    let texts: Vec<(String, Vec<String>, usize)> = users
        .iter()
        .map(|&u| {
            (
                u.to_string(),
                telegram_texts(&reqs, u),
                sends_to(&reqs, u)
                    .iter()
                    .filter(|r| !buttons(r).is_empty())
                    .count(),
            )
        })
        .collect();
    assert_answered_once("telegram", &texts);
}

fn check_discord_users(fake: &fake_discord::Fake, users: &[u64]) {
    let reqs = fake.requests();
    let texts: Vec<(String, Vec<String>, usize)> = users
        .iter()
        .map(|&u| {
            (
                u.to_string(),
                discord_texts(&reqs, u),
                fake_discord::posts_to(&reqs, u + 1)
                    .iter()
                    .filter(|r| !fake_discord::buttons(r).is_empty())
                    .count(),
            )
        })
        .collect();
    assert_answered_once("discord", &texts);
}

/// No two `getUpdates` calls (all recorded so far) overlapped in time: one poller at a time.
fn assert_one_poller(fake: &fake_telegram::Fake, what: &str) {
    let mut polls = fake.state.lock().unwrap().polls.clone();
    polls.sort_by_key(|p| p.at);
    assert!(!polls.is_empty(), "{what}: somebody polls");
    for pair in polls.windows(2) {
        assert!(
            pair[1].at >= pair[0].answered,
            "{what}: two getUpdates at once, from {} and {} (overlapping by {:?}): two pollers",
            pair[0].peer,
            pair[1].peer,
            pair[0].answered - pair[1].at
        );
    }
}

fn topic_posts(reqs: &[fake_telegram::Req], thread: i64) -> Vec<&fake_telegram::Req> {
    sends_to(reqs, STAFF_CHAT)
        .into_iter()
        .filter(|r| r.body["message_thread_id"] == json!(thread))
        .collect()
}

/// Waits until the user's `line` reached the staff topic.
async fn wait_relayed(fake: &fake_telegram::Fake, thread: i64, line: &str) {
    wait(
        &format!("{line:?} in the staff topic"),
        || async {
            topic_posts(&fake.requests(), thread)
                .iter()
                .any(|r| text(r).contains(line))
                .then_some(())
        },
        || format!("topic posts: {:#?}", topic_texts(fake, thread)),
    )
    .await;
}

/// The user's `line` is in the staff topic once (check after a pause).
fn assert_in_topic_once(fake: &fake_telegram::Fake, thread: i64, line: &str) {
    let copies = topic_texts(fake, thread)
        .into_iter()
        .filter(|t| t.contains(line))
        .count();
    assert_eq!(
        copies,
        1,
        "{line:?} reaches the topic once: {:#?}",
        topic_texts(fake, thread)
    );
}

fn topic_texts(fake: &fake_telegram::Fake, thread: i64) -> Vec<String> {
    topic_posts(&fake.requests(), thread)
        .into_iter()
        .map(|r| text(r).to_owned())
        .collect()
}

fn lease_lines(log: &str, lease: &str, what: &str) -> bool {
    log.lines().any(|l| l.contains(what) && l.contains(lease))
}

/// The lease rows, expired ones included, for a failure message (from a plain thread: the
/// caller is synchronous).
fn lease_rows(schema: &Schema) -> Vec<(String, String)> {
    let url = schema.url.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let Ok(mut conn) = PgConnection::connect(&url).await else {
                return Vec::new();
            };
            sqlx::query_as::<_, (String, String)>("SELECT name, owner FROM leases ORDER BY name")
                .fetch_all(&mut conn)
                .await
                .unwrap_or_default()
        })
    })
    .join()
    .unwrap_or_default()
}

/// What a test round works with.
struct Scene<'a> {
    schema: &'a Schema,
    telegram: &'a fake_telegram::Fake,
    discord: &'a fake_discord::Fake,
}

/// Waits until, for each connection, a live instance holds the lease and says it leads, and every
/// other live instance said it stands by; returns the pids leading (Telegram, Discord).
async fn wait_roles(scene: &Scene<'_>, bots: &Instances) -> (u32, u32) {
    let live = bots.live();
    let leases = [telegram_lease(), discord_lease()];
    wait(
        "one leader and the others standing by, for each connection",
        || async {
            let mut leaders = Vec::new();
            for lease in &leases {
                let leader = scene.schema.holder(lease).await?;
                if !live.contains(&leader)
                    || !lease_lines(&bots.log_of(leader), lease, "leading: this instance runs")
                {
                    return None;
                }
                for &other in live.iter().filter(|&&p| p != leader) {
                    if !lease_lines(&bots.log_of(other), lease, "standing by: another instance") {
                        return None;
                    }
                }
                leaders.push(leader);
            }
            Some((leaders[0], leaders[1]))
        },
        || {
            format!(
                "live {live:?}; leases {:?}; logs:\n{}",
                lease_rows(scene.schema),
                live.iter()
                    .map(|&p| format!("pid {p}:\n{}", bots.log_of(p)))
                    .collect::<Vec<_>>()
                    .join("\n----\n")
            )
        },
    )
    .await
}

/// Kills the instance polling Telegram (SIGKILL); at once, `tg_users` ask a question and the
/// ticket's user writes `line`. Checks that the other live instance takes Telegram over (and the
/// Discord shard, if the killed one held it, with a new IDENTIFY), answers each question once,
/// relays the line once, and then answers DMs from `dc_users` once. Returns the survivor's pid.
async fn kill_the_leader(
    scene: &Scene<'_>,
    bots: &mut Instances,
    ids: &mut Updates,
    thread: i64,
    tg_users: &[i64],
    dc_users: &[u64],
    line: &str,
) -> u32 {
    let (telegram, discord, schema) = (scene.telegram, scene.discord, scene.schema);
    let (tg_leader, dc_leader) = wait_roles(scene, bots).await;
    let live = bots.live();
    assert_eq!(live.len(), 2, "two instances before the kill");
    let survivor = *live.iter().find(|&&p| p != tg_leader).unwrap();
    let identifies = discord.identifies();
    assert_eq!(
        discord.connections(),
        identifies,
        "one IDENTIFY per connection"
    );

    let killed_at = Instant::now();
    bots.kill(tg_leader);
    ask_telegram(telegram, ids, tg_users);
    telegram.push(dm(ids.next(), 10 + ids.0, USER, line));
    wait(
        "the survivor to take the Telegram lease",
        || async { (schema.holder(&telegram_lease()).await == Some(survivor)).then_some(()) },
        || format!("leases {:?}", lease_rows(schema)),
    )
    .await;
    let took_over = killed_at.elapsed();
    wait(
        "answers to the questions asked right after the kill",
        || async {
            let tg = telegram.requests();
            tg_users
                .iter()
                .all(|&u| telegram_answered(&tg, u))
                .then_some(())
        },
        || format!("survivor's log:\n{}", bots.log_of(survivor)),
    )
    .await;
    let resumed = telegram
        .state
        .lock()
        .unwrap()
        .polls
        .iter()
        .any(|p| p.at > killed_at + Duration::from_millis(500) && p.served > 0);
    assert!(resumed, "getUpdates resumed after the kill");
    wait_relayed(telegram, thread, line).await;

    // The Discord shard moves over when its holder died (a new session: IDENTIFY); the DMs sent
    // after that are answered once.
    let identifies = if dc_leader == tg_leader {
        discord
            .wait_state("the survivor's IDENTIFY", |f| f.identifies() > identifies)
            .await;
        wait(
            "the survivor to take the Discord lease",
            || async { (schema.holder(&discord_lease()).await == Some(survivor)).then_some(()) },
            || format!("leases {:?}", lease_rows(schema)),
        )
        .await;
        identifies + 1
    } else {
        identifies
    };
    ask_discord(discord, dc_users);
    wait(
        "answers to the Discord DMs after the kill",
        || async {
            let dc = discord.requests();
            dc_users
                .iter()
                .all(|&u| discord_answered(&dc, u))
                .then_some(())
        },
        || format!("survivor's log:\n{}", bots.log_of(survivor)),
    )
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_in_topic_once(telegram, thread, line);
    check_telegram_users(telegram, tg_users);
    check_discord_users(discord, dc_users);
    assert_eq!(
        (discord.connections(), discord.identifies()),
        (identifies, identifies),
        "one gateway connection per leader (connections, identifies)"
    );
    eprintln!(
        "killed pid {tg_leader} (Telegram{}); pid {survivor} took Telegram over after {:.1} s",
        if dc_leader == tg_leader {
            " and Discord"
        } else {
            ""
        },
        took_over.as_secs_f64()
    );
    survivor
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_run_each_connection_once_answer_once_and_fail_over() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let started = Instant::now();
    let telegram = fake_telegram::Fake::start().await;
    telegram.state.lock().unwrap().record_polls = true;
    let discord = fake_discord::Fake::start().await;
    let scene = Scene {
        schema: &schema,
        telegram: &telegram,
        discord: &discord,
    };
    let mut bots = Instances::new(&schema.url, &telegram, &discord);
    bots.start();
    bots.start();

    // Both up: for each connection, one instance leads and the other stands by.
    let (tg_leader, dc_leader) = wait_roles(&scene, &bots).await;
    // `kefu status` shows the same from outside: who runs each connection.
    let status = kefu_status(&schema.url);
    for (lease, leader) in [(telegram_lease(), tg_leader), (discord_lease(), dc_leader)] {
        let row = status["connections"]
            .as_array()
            .and_then(|c| c.iter().find(|r| r["connection"] == json!(lease)))
            .unwrap_or_else(|| panic!("{lease} in kefu status: {status}"));
        assert_eq!(row["live"], json!(true), "{status}");
        assert_eq!(
            row["instance"].as_str().and_then(pid_of_instance),
            Some(leader),
            "{status}"
        );
    }
    eprintln!(
        "both instances up after {:.1} s; Telegram leader {tg_leader}, Discord leader {dc_leader}",
        started.elapsed().as_secs_f64()
    );
    discord
        .wait_state("the leader's IDENTIFY", |f| f.identifies() >= 1)
        .await;

    // Users on both platforms, and a ticket whose user writes a line: all at once.
    let mut ids = Updates(0);
    let tg_users: Vec<i64> = (1001..=1010).collect();
    let dc_user = |i: u64| 500_000_000_000_000_000 + 2 * i;
    let dc_users: Vec<u64> = (1..=3).map(dc_user).collect();
    ask_telegram(&telegram, &mut ids, &tg_users);
    ask_discord(&discord, &dc_users);
    let thread = open_and_claim(&telegram, &mut ids).await;
    telegram.push(dm(ids.next(), 11, USER, "订单号 12345"));
    wait(
        "an answer to every question",
        || async {
            let (tg, dc) = (telegram.requests(), discord.requests());
            (tg_users.iter().all(|&u| telegram_answered(&tg, u))
                && dc_users.iter().all(|&u| discord_answered(&dc, u)))
            .then_some(())
        },
        || {
            let (tg, dc) = (telegram.requests(), discord.requests());
            format!(
                "Telegram unanswered {:?}, Discord unanswered {:?}",
                tg_users
                    .iter()
                    .filter(|&&u| !telegram_answered(&tg, u))
                    .collect::<Vec<_>>(),
                dc_users
                    .iter()
                    .filter(|&&u| !discord_answered(&dc, u))
                    .collect::<Vec<_>>()
            )
        },
    )
    .await;
    wait_relayed(&telegram, thread, "订单号 12345").await;
    tokio::time::sleep(SETTLE).await;
    assert_in_topic_once(&telegram, thread, "订单号 12345");
    check_telegram_users(&telegram, &tg_users);
    check_discord_users(&discord, &dc_users);
    let reqs = telegram.requests();
    assert_eq!(
        reqs.iter()
            .filter(|r| r.method == "createforumtopic")
            .count(),
        1,
        "one topic for the ticket"
    );
    assert_eq!(
        topic_posts(&reqs, thread)
            .iter()
            .filter(|r| buttons(r).iter().any(|(l, _)| l == "Claim"))
            .count(),
        1,
        "one summary post: {:#?}",
        topic_texts(&telegram, thread)
    );
    // One connection each, all along, held by the same instances.
    assert_one_poller(&telegram, "two instances");
    assert_eq!(
        (discord.connections(), discord.identifies()),
        (1, 1),
        "one gateway connection and IDENTIFY (connections, identifies)"
    );
    assert_eq!(
        (
            schema.holder(&telegram_lease()).await,
            schema.holder(&discord_lease()).await
        ),
        (Some(tg_leader), Some(dc_leader)),
        "the leaders kept their leases: {:?}",
        lease_rows(&schema)
    );

    // The Telegram leader dies; the other takes over. Then a new instance replaces the dead one
    // and the survivor, which now holds both connections, dies too: Discord fails over at least
    // this second time.
    let tg_later: Vec<i64> = (1011..=1015).collect();
    let dc_later: Vec<u64> = (4..=6).map(dc_user).collect();
    kill_the_leader(
        &scene,
        &mut bots,
        &mut ids,
        thread,
        &tg_later,
        &dc_later,
        "订单号 67890",
    )
    .await;
    bots.start();
    let tg_last: Vec<i64> = (1016..=1020).collect();
    let dc_last: Vec<u64> = (7..=9).map(dc_user).collect();
    kill_the_leader(
        &scene,
        &mut bots,
        &mut ids,
        thread,
        &tg_last,
        &dc_last,
        "订单号 24680",
    )
    .await;
    assert!(
        discord.identifies() >= 2,
        "the Discord gateway moved to another instance"
    );

    // Nothing answered earlier was answered again; one poller at any time, all along.
    let all_tg: Vec<i64> = [tg_users, tg_later, tg_last].concat();
    let all_dc: Vec<u64> = [dc_users, dc_later, dc_last].concat();
    check_telegram_users(&telegram, &all_tg);
    check_discord_users(&discord, &all_dc);
    assert_one_poller(&telegram, "across the failovers");
    let lines = topic_texts(&telegram, thread);
    for line in ["订单号 12345", "订单号 67890", "订单号 24680"] {
        assert_eq!(
            lines.iter().filter(|t| t.contains(line)).count(),
            1,
            "{line:?} in the topic once: {lines:#?}"
        );
    }

    // A clean stop gives the leases up at once.
    let last = bots.live();
    assert_eq!(last.len(), 1);
    assert_eq!(bots.stop(last[0]), Some(0), "{}", bots.log_of(last[0]));
    assert_eq!(
        lease_rows(&schema),
        Vec::<(String, String)>::new(),
        "SIGTERM released the leases"
    );
    eprintln!("whole test {:.1} s", started.elapsed().as_secs_f64());
}

/// One chat whose messages the database refuses for now (a transient error, as when a row lock
/// times out) holds back only that chat: the other users in the same `getUpdates` batch are
/// answered, a staff line in the same batch is relayed once however often the batch is fetched
/// again, and once the database takes the chat's messages they are answered once each, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_the_database_refuses_for_now_holds_back_only_itself() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let telegram = fake_telegram::Fake::start().await;
    telegram.state.lock().unwrap().record_polls = true;
    let discord = fake_discord::Fake::start().await;
    let scene = Scene {
        schema: &schema,
        telegram: &telegram,
        discord: &discord,
    };
    let mut bots = Instances::new(&schema.url, &telegram, &discord);
    bots.start();
    wait_roles(&scene, &bots).await;

    // A ticket, claimed, so that staff text in its topic is relayed to the user.
    let mut ids = Updates(0);
    let thread = open_and_claim(&telegram, &mut ids).await;

    // The database refuses the held user's messages with a transient error.
    const HELD: i64 = 2001;
    let mut db = PgConnection::connect(&schema.url).await.expect("connect");
    for sql in [
        "CREATE TABLE held_chats (chat_id TEXT PRIMARY KEY)",
        "CREATE FUNCTION refuse_held() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF EXISTS (SELECT 1 FROM held_chats WHERE chat_id = NEW.chat_id) THEN \
         RAISE EXCEPTION 'chat held by the test' USING ERRCODE = 'serialization_failure'; \
         END IF; RETURN NEW; END $$",
        "CREATE TRIGGER refuse_held BEFORE INSERT ON inbound_messages \
         FOR EACH ROW EXECUTE FUNCTION refuse_held()",
    ] {
        sqlx::query(sql).execute(&mut db).await.expect(sql);
    }
    sqlx::query("INSERT INTO held_chats VALUES ($1)")
        .bind(HELD.to_string())
        .execute(&mut db)
        .await
        .expect("hold");

    // One batch: the held user's two questions among other users' and a staff line.
    let others: Vec<i64> = (2101..=2104).collect();
    let staff_line = "请提供截图 (staff)";
    let batch = vec![
        dm(ids.next(), 30, HELD, QUESTIONS[0]),
        dm(ids.next(), 31, others[0], QUESTIONS[1]),
        fake_telegram::topic_msg(ids.next(), 32, thread, STAFF_ID, staff_line),
        dm(ids.next(), 33, others[1], QUESTIONS[2]),
        dm(ids.next(), 34, HELD, QUESTIONS[3]),
        dm(ids.next(), 35, others[2], QUESTIONS[4]),
        dm(ids.next(), 36, others[3], QUESTIONS[5]),
    ];
    telegram.push_many(batch);
    let relayed = |reqs: &[fake_telegram::Req]| {
        telegram_texts(reqs, USER)
            .iter()
            .filter(|t| t.contains(staff_line))
            .count()
    };
    wait(
        "the other users' answers and the staff line, while one chat is held",
        || async {
            let reqs = telegram.requests();
            (others.iter().all(|&u| telegram_answered(&reqs, u)) && relayed(&reqs) >= 1)
                .then_some(())
        },
        || format!("{:#?}", telegram_texts(&telegram.requests(), USER)),
    )
    .await;
    // The batch is fetched again every second while the chat is held.
    let polls_before = telegram.state.lock().unwrap().polls.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reqs = telegram.requests();
    assert!(
        telegram.state.lock().unwrap().polls.len() > polls_before,
        "the held batch was fetched again"
    );
    assert_eq!(relayed(&reqs), 1, "the staff line was relayed once");
    assert!(
        !telegram_answered(&reqs, HELD),
        "nothing of the held chat was handled"
    );

    // The database takes the chat again: its two questions are answered once each, in order.
    sqlx::query("DELETE FROM held_chats")
        .execute(&mut db)
        .await
        .expect("release");
    wait(
        "both answers to the held user",
        || async {
            let n = sends_to(&telegram.requests(), HELD)
                .iter()
                .filter(|r| !buttons(r).is_empty())
                .count();
            (n >= 2).then_some(())
        },
        || format!("{:#?}", telegram_texts(&telegram.requests(), HELD)),
    )
    .await;
    tokio::time::sleep(SETTLE).await;
    let reqs = telegram.requests();
    let answers = sends_to(&reqs, HELD)
        .iter()
        .filter(|r| !buttons(r).is_empty())
        .count();
    assert_eq!(answers, 2, "each held question answered once");
    assert_eq!(relayed(&reqs), 1, "the staff line still relayed once");
    for &u in &others {
        assert_eq!(
            sends_to(&reqs, u)
                .iter()
                .filter(|r| !buttons(r).is_empty())
                .count(),
            1,
            "user {u} answered once"
        );
    }
    let order: Vec<String> = sqlx::query_scalar(
        "SELECT platform_message_id FROM inbound_messages WHERE chat_id = $1 ORDER BY id",
    )
    .bind(HELD.to_string())
    .fetch_all(&mut db)
    .await
    .expect("inbound");
    assert_eq!(order, ["30", "34"], "stored in the order they were written");
}
