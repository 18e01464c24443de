//! Load generator and crash-under-load runs: the release `kefu run` binary (one or more
//! processes) against the fake Telegram Bot API of the end-to-end tests (`tests/fake_telegram`,
//! axum on 127.0.0.1:0), on a fresh SQLite file or a fresh PostgreSQL schema.
//!
//! N users send M messages each at a target rate (message-major: every user's first message,
//! then every second…; user u's k-th message is a clear FAQ question that gets exactly one
//! `sendMessage`). Measured per run:
//!
//! - **accepted msg/s**: updates confirmed by the bot (the `offset` of its next `getUpdates`, which
//!   it sends only once every update of the batch was stored), over the steady 10–90 % of them;
//! - **hand-out → reply enqueued** p50/p99: from the fake handing the update out in a
//!   `getUpdates` answer to the reply's `outbox` row being visible in the database (a reader polls
//!   the outbox every `LOAD_OBSERVE_MS`, 2 ms by default: the database's own `created_at` is the
//!   handling's start, the same instant as `inbound_messages.received_at`, so it cannot show this);
//! - **hand-out → delivered** p50/p99: to the fake receiving the `sendMessage` for that user;
//! - **missing / doubled**: per user, replies fewer / more than the messages sent;
//! - **peak RSS**: `VmHWM` of each `kefu run` process at the end;
//! - which processes called `getUpdates` (the caller's local port, mapped to a pid via `/proc`).
//!
//! Scenarios (`cargo bench --bench load -- NAME…`; no name: sqlite, pg, pg3, idle):
//! `sqlite`, `pg`, `pg3` (three instances on one schema), `idle` (10,000 users × 1 message, RSS
//! after the first 1,000 and after all), `crash-sqlite` (SIGKILL the only instance while the
//! generator runs, restart it on the same file), `crash-pg3` (SIGKILL the leader of three: the
//! holder of the `telegram:poll:<bot id>` lease; instance 0 when there is no lease row),
//! `commit` (SQLite commit cost alone: small write transactions on a WAL file).
//!
//! Sizes: `LOAD_USERS`, `LOAD_MESSAGES`, `LOAD_RATE` (offered msg/s), `LOAD_INSTANCES`,
//! `LOAD_SECONDS` (cap on generation), `LOAD_GRACE` (wait for replies after it),
//! `LOAD_MAX_PER_SECOND` (`telegram.max_per_second`, default 0 = unpaced), `LOAD_KILL_AFTER`
//! (seconds into generation, crash scenarios), `LOAD_PG_URL`, `LOAD_OBSERVE_MS`, `LOAD_RUST_LOG`.
//! `TMPDIR` chooses where the SQLite file lives (`/dev/shm`: no fsync cost). Everything talks to
//! 127.0.0.1 only; every child process is killed when the run ends, even on a panic.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::too_many_lines,
    reason = "a benchmark: a failed expectation is a failed run"
)]

#[path = "../tests/fake_telegram/mod.rs"]
mod fake_telegram;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use fake_telegram::{BOT_ID, Fake, Req, TOKEN, dm};
use sqlx::{Connection, PgConnection, PgPool, SqlitePool};

/// Clear FAQ questions from `config/kb/eval.jsonl` (answered with confidence ≥ 0.95 by
/// `kefu eval`); the warm-up checks each gets exactly one reply and drops any that does not.
const CANDIDATES: &[&str] = &[
    "帐户显示冻结状态,请帮忙解除",
    "登录密码想不起来了",
    "去哪里下载你们的app",
    "提现还没到",
    "提现手续费怎么收",
    "一天最多提多少币",
    "充值怎么弄",
    "充值没到账",
    "现货交易手续费是多少",
    "资产怎么划转到现货",
    "钱包都支持什么链",
    "i forgot my login password",
    "download link for ios",
    "withdrawal still pending",
    "how much is the withdrawal fee",
    "what is the daily withdrawal limit",
    "where can i find deposit address",
    "my deposit hasnt arrived",
];

/// The first load user's id (warm-up users are 1, 2, …).
const FIRST_USER: i64 = 1_000_000;
/// The first load update's id.
const FIRST_UPDATE: i64 = 1_000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DbKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    None,
    /// SIGKILL the only instance and restart it on the same database.
    Restart,
    /// SIGKILL the leader (lease holder); the others carry on.
    Leader,
}

#[derive(Debug, Clone)]
struct Scenario {
    name: &'static str,
    db: DbKind,
    instances: usize,
    users: i64,
    messages: i64,
    rate: f64,
    /// Users after which the run pauses, waits for every reply and reads the RSS (`idle`).
    checkpoint: Option<i64>,
    crash: Crash,
}

#[derive(Debug, Clone)]
struct Knobs {
    seconds: f64,
    grace: f64,
    max_per_second: String,
    observe_ms: u64,
    kill_after: f64,
    pg_url: String,
    rust_log: String,
}

// ---------------------------------------------------------------------------------------------
// Processes

/// The `kefu run` processes of a run; all are killed when this is dropped (even on a panic).
struct Bots {
    fake_url: String,
    db_url: String,
    env: Vec<(String, String)>,
    logs: PathBuf,
    list: Vec<(usize, Child)>,
    started: usize,
}

impl Bots {
    fn start(&mut self) -> u32 {
        let idx = self.started;
        self.started += 1;
        let log = std::fs::File::create(self.logs.join(format!("kefu-{idx}.log"))).expect("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
        cmd.arg("run").current_dir(env!("CARGO_MANIFEST_DIR"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KEFU") {
                cmd.env_remove(key);
            }
        }
        cmd.env("KEFU__DATABASE__URL", &self.db_url)
            .env("KEFU__TELEGRAM__TOKEN", TOKEN)
            .env("KEFU__TELEGRAM__API_URL", &self.fake_url)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let child = cmd.spawn().expect("spawn kefu run");
        let pid = child.id();
        self.list.push((idx, child));
        pid
    }

    fn pids(&self) -> Vec<u32> {
        self.list.iter().map(|(_, c)| c.id()).collect()
    }

    /// SIGKILL one process (by pid); returns its instance index.
    fn kill(&mut self, pid: u32) -> Option<usize> {
        let at = self.list.iter().position(|(_, c)| c.id() == pid)?;
        let (idx, mut child) = self.list.remove(at);
        let _ = child.kill();
        let _ = child.wait();
        Some(idx)
    }

    /// SIGTERM every process, bounded wait, then SIGKILL.
    fn stop(&mut self) {
        for (_, c) in &self.list {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for (_, c) in &mut self.list {
            while Instant::now() < deadline {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        for (_, mut c) in self.list.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Bots {
    fn drop(&mut self) {
        for (_, c) in &mut self.list {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// (`VmHWM`, `VmRSS`) in KiB.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU time (user + system) a process has used so far, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime and stime are 14 and 15.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Local TCP ports of a process's sockets (to tell which process called `getUpdates`).
fn ports_of(pid: u32) -> Vec<u16> {
    let mut inodes = HashSet::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            if let Ok(link) = std::fs::read_link(e.path()) {
                let l = link.to_string_lossy();
                if let Some(n) = l.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.insert(n.to_owned());
                }
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 9
                && inodes.contains(cols[9])
                && let Some(port) = cols[1].rsplit(':').next()
                && let Ok(p) = u16::from_str_radix(port, 16)
            {
                ports.push(p);
            }
        }
    }
    ports
}

/// Maps local ports to pids every 200 ms while the run lasts.
fn port_sampler(
    pids: Arc<Mutex<Vec<u32>>>,
    stop: Arc<AtomicBool>,
) -> Arc<Mutex<HashMap<u16, u32>>> {
    let map = Arc::new(Mutex::new(HashMap::new()));
    let out = map.clone();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let list = pids.lock().unwrap().clone();
            for pid in list {
                for port in ports_of(pid) {
                    map.lock().unwrap().insert(port, pid);
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    out
}

// ---------------------------------------------------------------------------------------------
// Database

struct Db {
    kind: DbKind,
    /// The URL `kefu run` gets.
    url: String,
    schema: Option<String>,
    admin_url: String,
    _dir: Option<tempfile::TempDir>,
    file: Option<PathBuf>,
}

impl Db {
    async fn fresh(kind: DbKind, knobs: &Knobs, dir: &Path) -> Db {
        match kind {
            DbKind::Sqlite => {
                let file = dir.join("kefu.db");
                Db {
                    kind,
                    url: format!("sqlite://{}", file.display()),
                    schema: None,
                    admin_url: String::new(),
                    _dir: None,
                    file: Some(file),
                }
            }
            DbKind::Postgres => {
                let nanos = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or_default();
                let schema = format!("load_{}_{nanos}", std::process::id());
                let mut admin = PgConnection::connect(&knobs.pg_url)
                    .await
                    .expect("connect to LOAD_PG_URL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
                    .execute(&mut admin)
                    .await
                    .expect("create schema");
                let sep = if knobs.pg_url.contains('?') { '&' } else { '?' };
                Db {
                    kind,
                    url: format!("{}{sep}options=-c%20search_path%3D{schema}", knobs.pg_url),
                    schema: Some(schema),
                    admin_url: knobs.pg_url.clone(),
                    _dir: None,
                    file: None,
                }
            }
        }
    }

    async fn pool(&self) -> Pool {
        match self.kind {
            DbKind::Sqlite => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.file.as_ref().unwrap())
                    .busy_timeout(Duration::from_secs(5));
                Pool::Sqlite(
                    sqlx::sqlite::SqlitePoolOptions::new()
                        .max_connections(2)
                        .connect_with(opts)
                        .await
                        .expect("open the SQLite file"),
                )
            }
            DbKind::Postgres => Pool::Pg(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(2)
                    .connect(&self.url)
                    .await
                    .expect("connect to the schema"),
            ),
        }
    }

    async fn drop_schema(&self) {
        if let Some(schema) = &self.schema
            && std::env::var("LOAD_KEEP").is_err()
            && let Ok(mut admin) = PgConnection::connect(&self.admin_url).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{schema}\" CASCADE"
            )))
            .execute(&mut admin)
            .await;
        }
    }
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            Pool::Sqlite($p) => $body,
            Pool::Pg($p) => $body,
        }
    };
}

impl Pool {
    /// User replies in the outbox with an id above `after`: (id, chat id).
    async fn outbox_after(&self, after: i64) -> Vec<(i64, String)> {
        const Q: &str = "SELECT id, chat_id FROM outbox WHERE id > $1 AND kind = 'user_message' \
                         AND chat_id IS NOT NULL ORDER BY id";
        on_pool!(self, |p| sqlx::query_as::<_, (i64, String)>(Q)
            .bind(after)
            .fetch_all(p)
            .await
            .unwrap_or_default())
    }

    /// Every stored inbound message: (chat id, message id, received_at).
    async fn inbound(&self) -> Vec<(String, String, DateTime<Utc>)> {
        const Q: &str = "SELECT chat_id, platform_message_id, received_at FROM inbound_messages";
        on_pool!(self, |p| {
            sqlx::query_as::<_, (String, String, DateTime<Utc>)>(Q)
                .fetch_all(p)
                .await
                .unwrap_or_default()
        })
    }

    /// (pending outbox rows, unprocessed inbound messages).
    async fn pending(&self) -> (i64, i64) {
        const O: &str =
            "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL";
        const I: &str = "SELECT COUNT(*) FROM inbound_messages WHERE processed_at IS NULL AND failed_at IS NULL";
        on_pool!(self, |p| {
            let o: i64 = sqlx::query_scalar(O).fetch_one(p).await.unwrap_or(-1);
            let i: i64 = sqlx::query_scalar(I).fetch_one(p).await.unwrap_or(-1);
            (o, i)
        })
    }

    /// The holder of the Telegram poller's lease, if the table and the row exist.
    async fn poll_leader(&self) -> Option<String> {
        let q = format!("SELECT owner FROM leases WHERE name = 'telegram:poll:{BOT_ID}'");
        on_pool!(self, |p| sqlx::query_scalar::<_, String>(
            sqlx::AssertSqlSafe(q)
        )
        .fetch_optional(p)
        .await
        .ok()
        .flatten())
    }
}

/// The pid in an instance id (`{host}-{pid}-{salt}`, `kefu_service::instance_id`).
fn pid_of_instance(owner: &str) -> Option<u32> {
    let mut parts = owner.rsplit('-');
    parts.next()?;
    parts.next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Statistics

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn p50_p99(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "–".to_owned();
    }
    v.sort();
    format!(
        "{} / {}",
        ms(percentile(&v, 50.0)),
        ms(percentile(&v, 99.0))
    )
}

/// Steady rate over the 10–90 % of sorted event times.
fn steady_rate(times: &mut [Instant]) -> f64 {
    times.sort();
    if times.len() < 10 {
        return f64::NAN;
    }
    let lo = times.len() / 10;
    let hi = times.len() * 9 / 10;
    let span = times[hi].duration_since(times[lo]).as_secs_f64();
    if span > 0.0 {
        (hi - lo) as f64 / span
    } else {
        f64::NAN
    }
}

fn is_send(r: &Req) -> bool {
    r.method == "sendmessage" && !r.limited
}

fn chat_of(r: &Req) -> i64 {
    r.body["chat_id"].as_i64().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// A run

#[derive(Debug, Default)]
struct Outcome {
    lines: Vec<String>,
}

/// Replies counted so far, per load user.
struct Counter {
    cursor: usize,
    replies: Vec<Vec<Instant>>,
    other_sends: usize,
    last_change: Instant,
}

impl Counter {
    fn update(&mut self, fake: &Fake) {
        let reqs = fake.requests_since(self.cursor);
        self.cursor += reqs.len();
        if !reqs.is_empty() {
            self.last_change = Instant::now();
        }
        for r in reqs.iter().filter(|r| is_send(r)) {
            let u = chat_of(r) - FIRST_USER;
            if (0..self.replies.len() as i64).contains(&u) {
                self.replies[u as usize].push(r.at);
            } else {
                self.other_sends += 1;
            }
        }
    }
}

async fn wait_for(what: &str, limit: Duration, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(s: &Scenario, knobs: &Knobs) -> Outcome {
    let mut out = Outcome::default();
    let fake = Fake::start().await;
    {
        let mut st = fake.state.lock().unwrap();
        st.honor_limit = true;
        st.record_polls = true;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::fresh(s.db, knobs, dir.path()).await;
    let mut env = vec![
        ("RUST_LOG".to_owned(), knobs.rust_log.clone()),
        (
            "KEFU__TELEGRAM__MAX_PER_SECOND".to_owned(),
            knobs.max_per_second.clone(),
        ),
    ];
    // Flood control allows 8 messages in 10 s per user: raise it only when a user sends more.
    if s.messages > 8 {
        env.push((
            "KEFU__FLOOD__MAX_MESSAGES".to_owned(),
            (s.messages + 8).to_string(),
        ));
    }
    let mut bots = Bots {
        fake_url: fake.url.clone(),
        db_url: db.url.clone(),
        env,
        logs: dir.path().to_owned(),
        list: Vec::new(),
        started: 0,
    };
    let started = Instant::now();
    bots.start();

    // Warm-up: each candidate question from a user of its own; keep those answered exactly once.
    wait_for("getMe", Duration::from_secs(120), || {
        fake.requests().iter().any(|r| r.method == "getme")
    })
    .await;
    let warm: Vec<_> = CANDIDATES
        .iter()
        .enumerate()
        .map(|(i, q)| dm(i as i64 + 1, 1, i as i64 + 1, q))
        .collect();
    fake.push_many(warm);
    let n = CANDIDATES.len() as i64;
    let answered = |reqs: &[Req]| {
        (1..=n)
            .filter(|c| reqs.iter().any(|r| is_send(r) && chat_of(r) == *c))
            .count() as i64
    };
    wait_for("the warm-up answers", Duration::from_secs(120), || {
        answered(&fake.requests()) == n
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reqs = fake.requests();
    let questions: Vec<&str> = CANDIDATES
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            reqs.iter()
                .filter(|r| is_send(r) && chat_of(r) == *i as i64 + 1)
                .count()
                == 1
        })
        .map(|(_, q)| *q)
        .collect();
    let dropped = CANDIDATES.len() - questions.len();
    eprintln!(
        "{}: first instance ready after {:.1} s; {} questions answered once ({} dropped)",
        s.name,
        started.elapsed().as_secs_f64(),
        questions.len(),
        dropped
    );
    assert!(
        !questions.is_empty(),
        "no question was answered exactly once"
    );
    for _ in 1..s.instances {
        bots.start();
    }
    if s.instances > 1 {
        wait_for("every instance's getMe", Duration::from_secs(120), || {
            fake.requests()
                .iter()
                .filter(|r| r.method == "getme")
                .count()
                >= s.instances
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    let pool = db.pool().await;
    let live_pids = Arc::new(Mutex::new(bots.pids()));
    let stop = Arc::new(AtomicBool::new(false));
    let ports = port_sampler(live_pids.clone(), stop.clone());
    let polls_skip = fake.state.lock().unwrap().polls.len();

    // The outbox observer: when each reply row became visible.
    let observed: Arc<Mutex<Vec<Vec<Instant>>>> =
        Arc::new(Mutex::new(vec![Vec::new(); s.users as usize]));
    let observer = {
        let (pool, observed, stop) = (pool.clone(), observed.clone(), stop.clone());
        let period = Duration::from_millis(knobs.observe_ms.max(1));
        let slack = if s.db == DbKind::Postgres { 64 } else { 0 };
        let enabled = knobs.observe_ms > 0;
        tokio::spawn(async move {
            let mut max_id = 0;
            let mut seen = HashSet::new();
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while enabled && !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let rows = pool.outbox_after(max_id - slack).await;
                let now = Instant::now();
                let mut obs = observed.lock().unwrap();
                for (id, chat) in rows {
                    max_id = max_id.max(id);
                    if !seen.insert(id) {
                        continue;
                    }
                    if let Ok(c) = chat.parse::<i64>() {
                        let u = c - FIRST_USER;
                        if (0..obs.len() as i64).contains(&u) {
                            obs[u as usize].push(now);
                        }
                    }
                }
            }
        })
    };

    let mut counter = Counter {
        cursor: fake.request_count(),
        replies: vec![Vec::new(); s.users as usize],
        other_sends: 0,
        last_change: Instant::now(),
    };
    let total = s.users * s.messages;
    let phases: Vec<(i64, i64)> = match s.checkpoint {
        Some(c) if c < s.users && s.messages == 1 => vec![(0, c), (c, total)],
        _ => vec![(0, total)],
    };
    let pushed: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; total as usize]));
    let mut rss_at: Vec<(i64, Vec<(u64, u64)>)> = Vec::new();
    let mut kill_info: Option<(Instant, u32, String)> = None;
    let gen_start = Instant::now();
    let cpu_start: f64 = bots.pids().into_iter().map(cpu_secs).sum();
    let cap = Duration::from_secs_f64(knobs.seconds);
    let grace = Duration::from_secs_f64(knobs.grace);
    let mut sent_total = 0;
    for (from, to) in phases.clone() {
        // The generator: pushes what is due every 5 ms.
        let generator = {
            let (fake, pushed, questions) = (
                fake.clone(),
                pushed.clone(),
                questions
                    .iter()
                    .map(|q| (*q).to_owned())
                    .collect::<Vec<_>>(),
            );
            let (users, rate) = (s.users, s.rate);
            tokio::spawn(async move {
                let t0 = Instant::now();
                let mut next = from;
                let mut tick = tokio::time::interval(Duration::from_millis(5));
                while next < to && gen_start.elapsed() < cap {
                    tick.tick().await;
                    let due = (from + (t0.elapsed().as_secs_f64() * rate) as i64).min(to);
                    if due <= next {
                        continue;
                    }
                    let batch: Vec<_> = (next..due)
                        .map(|i| {
                            let (u, k) = (i % users, i / users);
                            let q = &questions[((u + k) as usize) % questions.len()];
                            dm(FIRST_UPDATE + i, 100 + k, FIRST_USER + u, q)
                        })
                        .collect();
                    fake.push_many(batch);
                    let now = Instant::now();
                    let mut p = pushed.lock().unwrap();
                    for i in next..due {
                        p[i as usize] = Some(now);
                    }
                    next = due;
                }
                next
            })
        };
        let mut gen_done_at: Option<Instant> = None;
        let mut generator = Some(generator);
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            counter.update(&fake);
            if let Some(g) = &generator
                && g.is_finished()
            {
                sent_total = generator.take().unwrap().await.expect("generator");
                gen_done_at = Some(Instant::now());
            }
            // The crash.
            if s.crash != Crash::None
                && kill_info.is_none()
                && gen_start.elapsed().as_secs_f64() >= knobs.kill_after
            {
                let (victim, how) = match s.crash {
                    Crash::Leader => match pool.poll_leader().await {
                        Some(owner) => match pid_of_instance(&owner) {
                            Some(pid) if bots.pids().contains(&pid) => {
                                (pid, format!("leader {owner}"))
                            }
                            _ => (
                                bots.pids()[0],
                                format!("instance 0 (lease owner {owner} not ours)"),
                            ),
                        },
                        None => (bots.pids()[0], "instance 0 (no lease row)".to_owned()),
                    },
                    _ => (bots.pids()[0], "the only instance".to_owned()),
                };
                bots.kill(victim);
                let at = Instant::now();
                if s.crash == Crash::Restart {
                    bots.start();
                }
                *live_pids.lock().unwrap() = bots.pids();
                kill_info = Some((at, victim, how));
            }
            let Some(done_at) = gen_done_at else { continue };
            // Expected replies so far: every message pushed up to now.
            let expected = expected_per_user(&pushed, s.users, to);
            let all = expected
                .iter()
                .enumerate()
                .all(|(u, e)| counter.replies[u].len() >= *e);
            let quiet = counter.last_change.elapsed() >= Duration::from_secs(1);
            let mut settled = all && quiet;
            if settled && s.crash != Crash::None {
                // A reply sent but not marked before the kill goes out again when its lease
                // expires: wait for the database to have nothing pending.
                settled = pool.pending().await == (0, 0)
                    && counter.last_change.elapsed() >= Duration::from_secs(2);
            }
            if settled || done_at.elapsed() >= grace {
                break;
            }
        }
        let snapshot: Vec<(u64, u64)> = bots.pids().into_iter().map(rss).collect();
        rss_at.push((to.min(sent_total) / s.messages.max(1), snapshot));
    }
    let run_end = Instant::now();
    counter.update(&fake);
    let (pending_out, pending_in) = pool.pending().await;
    let cpu_used: f64 = bots.pids().into_iter().map(cpu_secs).sum::<f64>() - cpu_start;
    let final_rss: Vec<(u32, u64)> = bots.pids().into_iter().map(|p| (p, rss(p).0)).collect();
    stop.store(true, Ordering::Relaxed);
    let _ = observer.await;
    let inbound = pool.inbound().await;
    let port_map = ports.lock().unwrap().clone();
    // Before the stop: a stopping bot confirms its offset with one last getUpdates.
    let (handouts, polls) = {
        let st = fake.state.lock().unwrap();
        (st.handouts.clone(), st.polls[polls_skip..].to_vec())
    };
    bots.stop();
    let warnings: Vec<String> = (0..bots.started)
        .flat_map(|i| {
            std::fs::read_to_string(dir.path().join(format!("kefu-{i}.log")))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .map(|l| format!("kefu-{i}: {l}"))
                .collect::<Vec<_>>()
        })
        .collect();
    db.drop_schema().await;

    // ---- analysis
    let pushed = pushed.lock().unwrap().clone();
    let observed = observed.lock().unwrap().clone();
    let sent = pushed.iter().filter(|p| p.is_some()).count() as i64;
    let handout: HashMap<i64, (Instant, SystemTime)> = handouts
        .iter()
        .filter(|h| h.update_id >= FIRST_UPDATE)
        .map(|h| (h.update_id - FIRST_UPDATE, (h.at, h.wall)))
        .collect();
    // Confirmation: the first poll whose offset passes the update.
    let mut confirms: Vec<(i64, Instant)> = polls.iter().map(|p| (p.offset, p.at)).collect();
    confirms.sort_by_key(|c| c.1);
    let mut confirmed_at: Vec<Instant> = Vec::new();
    let mut upto = 0_i64;
    for (offset, at) in &confirms {
        let o = (offset - FIRST_UPDATE).min(sent);
        while upto < o {
            confirmed_at.push(*at);
            upto += 1;
        }
    }
    let accepted = confirmed_at.len();
    let accepted_rate = steady_rate(&mut confirmed_at.clone());
    let push_times: Vec<Instant> = pushed.iter().flatten().copied().collect();
    let offered_rate = steady_rate(&mut push_times.clone());

    let mut enq = Vec::new();
    let mut del = Vec::new();
    let mut push_del = Vec::new();
    let mut push_hand = Vec::new();
    let (mut missing, mut doubled) = (0_i64, 0_i64);
    let mut per_user_sent = vec![0_i64; s.users as usize];
    for i in 0..sent {
        per_user_sent[(i % s.users) as usize] += 1;
    }
    let mut shown = 0;
    for (u, n) in per_user_sent.iter().enumerate() {
        let got = counter.replies[u].len() as i64;
        if got != *n && shown < 8 {
            shown += 1;
            eprintln!(
                "{}: user {} sent {n}, got {got} replies",
                s.name,
                FIRST_USER + u as i64
            );
        }
        missing += (n - got).max(0);
        doubled += (got - n).max(0);
    }
    for i in 0..sent {
        let (u, k) = ((i % s.users) as usize, (i / s.users) as usize);
        let Some((h, _)) = handout.get(&i) else {
            continue;
        };
        if let Some(p) = pushed[i as usize] {
            push_hand.push(h.saturating_duration_since(p));
            if let Some(d) = counter.replies[u].get(k) {
                push_del.push(d.saturating_duration_since(p));
            }
        }
        if let Some(d) = counter.replies[u].get(k) {
            del.push(d.saturating_duration_since(*h));
        }
        if let Some(o) = observed[u].get(k) {
            enq.push(o.saturating_duration_since(*h));
        }
    }
    // Hand-out → received_at (the handling's start, on the wall clock).
    let mut recv = Vec::new();
    for (chat, message, received) in &inbound {
        let (Ok(c), Ok(m)) = (chat.parse::<i64>(), message.parse::<i64>()) else {
            continue;
        };
        let (u, k) = (c - FIRST_USER, m - 100);
        if u < 0 || u >= s.users || k < 0 {
            continue;
        }
        let i = k * s.users + u;
        if let Some((_, wall)) = handout.get(&i) {
            let handed: DateTime<Utc> = (*wall).into();
            recv.push((*received - handed).to_std().unwrap_or_default());
        }
    }
    // getUpdates callers, by pid.
    let mut callers: HashMap<String, (usize, usize)> = HashMap::new();
    for p in &polls {
        let who = port_map
            .get(&p.peer.port())
            .map_or_else(|| "?".to_owned(), |pid| pid.to_string());
        let e = callers.entry(who).or_default();
        e.0 += 1;
        if p.served > 0 {
            e.1 += 1;
        }
    }
    let mut callers: Vec<_> = callers.into_iter().collect();
    callers.sort();
    let callers_text = callers
        .iter()
        .map(|(pid, (n, served))| format!("{pid}: {n} ({served} with updates)"))
        .collect::<Vec<_>>()
        .join(", ");
    let hwm = final_rss
        .iter()
        .map(|(_, k)| format!("{:.1}", *k as f64 / 1024.0))
        .collect::<Vec<_>>()
        .join(" / ");

    eprintln!(
        "{}: sent {sent}/{total}, accepted {accepted}, generation+wait {:.1} s; pending at the end: outbox {pending_out}, inbound {pending_in}; other sendMessage {}; {} warning/error lines",
        s.name,
        run_end.duration_since(gen_start).as_secs_f64(),
        counter.other_sends,
        warnings.len()
    );
    for w in warnings.iter().take(5) {
        eprintln!("  {w}");
    }
    eprintln!(
        "{}: getUpdates callers (pid: calls): {callers_text}",
        s.name
    );
    let wall = run_end.duration_since(gen_start).as_secs_f64();
    eprintln!(
        "{}: kefu CPU time during the run {cpu_used:.1} s over {wall:.1} s ({:.0} % of one core; {:.2} ms per accepted message)",
        s.name,
        100.0 * cpu_used / wall,
        1000.0 * cpu_used / accepted.max(1) as f64
    );

    if let Some((at, pid, how)) = &kill_info {
        let first_poll = polls.iter().filter(|p| p.at > *at).map(|p| p.at).min();
        let first_served = polls
            .iter()
            .filter(|p| p.at > *at && p.served > 0)
            .map(|p| p.answered)
            .min();
        let after =
            |t: Option<Instant>| t.map_or("never".to_owned(), |t| ms(t.duration_since(*at)));
        out.lines.push(format!(
            "| {} | {} | {}×{} @ {}/s | {:.1} s | {how} (pid {pid}) | {} | {} | {missing} | {doubled} |",
            s.name,
            s.instances,
            s.users,
            s.messages,
            s.rate,
            knobs.kill_after,
            after(first_poll),
            after(first_served),
        ));
        return out;
    }
    if s.checkpoint.is_some() {
        for (users, snap) in &rss_at {
            let (h, r): (Vec<_>, Vec<_>) = snap.iter().copied().unzip();
            out.lines.push(format!(
                "| {} | {users} users answered | VmRSS {:.1} MiB | VmHWM {:.1} MiB |",
                s.name,
                r.iter().sum::<u64>() as f64 / 1024.0,
                h.iter().sum::<u64>() as f64 / 1024.0,
            ));
        }
        if let [(u1, a), (u2, b), ..] = rss_at.as_slice() {
            let r1: u64 = a.iter().map(|x| x.1).sum();
            let r2: u64 = b.iter().map(|x| x.1).sum();
            out.lines.push(format!(
                "| {} | growth {u1} → {u2} users | {:+.1} MiB | {:+.2} KiB per conversation |",
                s.name,
                (r2 as f64 - r1 as f64) / 1024.0,
                (r2 as f64 - r1 as f64) / (u2 - u1).max(1) as f64,
            ));
        }
    }
    out.lines.push(format!(
        "| {} | {} | {:?} | {}×{} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {missing} | {doubled} | {hwm} |",
        s.name,
        s.instances,
        s.db,
        s.users,
        s.messages,
        offered_rate,
        accepted_rate,
        p50_p99(push_hand),
        p50_p99(recv),
        p50_p99(enq),
        p50_p99(del),
        p50_p99(push_del),
    ));
    out
}

/// Messages pushed so far to each user.
fn expected_per_user(pushed: &Arc<Mutex<Vec<Option<Instant>>>>, users: i64, to: i64) -> Vec<usize> {
    let p = pushed.lock().unwrap();
    let mut out = vec![0; users as usize];
    for (i, at) in p.iter().enumerate().take(to as usize) {
        if at.is_some() {
            out[i % users as usize] += 1;
        }
    }
    out
}

/// SQLite commit cost alone: `n` one-row write transactions on a WAL file, with the default
/// `synchronous` (FULL, as `kefu run` opens it) and with NORMAL.
async fn commit_probe() -> Vec<String> {
    let n = 500;
    let mut lines = Vec::new();
    for sync in ["FULL", "NORMAL", "OFF"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("probe.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .pragma("synchronous", sync);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .expect("probe db");
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .execute(&pool)
            .await
            .expect("create");
        let mut times = Vec::new();
        for i in 0..n {
            let t = Instant::now();
            let mut tx = pool.begin().await.expect("begin");
            sqlx::query("INSERT INTO t (v) VALUES ($1)")
                .bind(format!("row {i}"))
                .execute(&mut *tx)
                .await
                .expect("insert");
            tx.commit().await.expect("commit");
            times.push(t.elapsed());
        }
        let total: Duration = times.iter().sum();
        lines.push(format!(
            "| commit | synchronous={sync} | {n} one-row transactions | p50 / p99 {} ms | {:.0} commits/s |",
            p50_p99(times),
            f64::from(n) / total.as_secs_f64()
        ));
    }
    lines
}

fn main() {
    let users = env_or("LOAD_USERS", 0_i64);
    let messages = env_or("LOAD_MESSAGES", 0_i64);
    let rate = env_or("LOAD_RATE", 0.0_f64);
    let instances = env_or("LOAD_INSTANCES", 0_usize);
    let pick = |v: i64, d: i64| if v > 0 { v } else { d };
    let pick_rate = |d: f64| if rate > 0.0 { rate } else { d };
    let knobs = Knobs {
        seconds: env_or("LOAD_SECONDS", 60.0),
        grace: env_or("LOAD_GRACE", 45.0),
        max_per_second: std::env::var("LOAD_MAX_PER_SECOND").unwrap_or_else(|_| "0".to_owned()),
        observe_ms: env_or("LOAD_OBSERVE_MS", 2),
        kill_after: env_or("LOAD_KILL_AFTER", 2.0),
        pg_url: std::env::var("LOAD_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
        rust_log: std::env::var("LOAD_RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
    };
    let load = |name, db, inst: usize| Scenario {
        name,
        db,
        instances: if instances > 0 && inst > 1 {
            instances
        } else {
            inst
        },
        users: pick(users, 2000),
        messages: pick(messages, 5),
        rate: pick_rate(2000.0),
        checkpoint: None,
        crash: Crash::None,
    };
    let crash = |name, db, inst: usize, how| Scenario {
        name,
        db,
        instances: if instances > 0 && inst > 1 {
            instances
        } else {
            inst
        },
        users: pick(users, 200),
        messages: pick(messages, 3),
        rate: pick_rate(100.0),
        checkpoint: None,
        crash: how,
    };
    let scenarios = vec![
        load("sqlite", DbKind::Sqlite, 1),
        load("pg", DbKind::Postgres, 1),
        load("pg3", DbKind::Postgres, 3),
        Scenario {
            name: "idle",
            db: DbKind::Sqlite,
            instances: 1,
            users: pick(users, 10_000),
            messages: 1,
            rate: pick_rate(1000.0),
            checkpoint: Some(env_or("LOAD_CHECKPOINT", 1000)),
            crash: Crash::None,
        },
        crash("crash-sqlite", DbKind::Sqlite, 1, Crash::Restart),
        crash("crash-pg3", DbKind::Postgres, 3, Crash::Leader),
    ];
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let default = ["sqlite", "pg", "pg3", "idle"];
    let chosen: Vec<Scenario> = scenarios
        .into_iter()
        .filter(|s| {
            if words.is_empty() {
                default.contains(&s.name)
            } else {
                words.iter().any(|w| w == s.name)
            }
        })
        .collect();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut lines = Vec::new();
    if words.iter().any(|w| w == "commit") {
        lines.extend(runtime.block_on(commit_probe()));
    }
    let mut crash_lines = Vec::new();
    for s in &chosen {
        eprintln!(
            "{}: {} instance(s), {:?}, {} users × {} messages at {}/s, telegram.max_per_second={}",
            s.name, s.instances, s.db, s.users, s.messages, s.rate, knobs.max_per_second
        );
        let outcome = runtime.block_on(run(s, &knobs));
        if s.crash == Crash::None {
            lines.extend(outcome.lines);
        } else {
            crash_lines.extend(outcome.lines);
        }
    }
    println!();
    if !lines.is_empty() {
        println!(
            "times in ms, p50 / p99; hand-out = the fake answering getUpdates with the update; enqueued = the reply's outbox row seen by a reader polling every {} ms",
            knobs.observe_ms
        );
        println!(
            "| scenario | instances | db | users×msgs | offered msg/s | accepted msg/s | push → hand-out | hand-out → received_at (DB) | hand-out → enqueued | hand-out → delivered | push → delivered | missing | doubled | peak RSS MiB (VmHWM per instance) |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for l in &lines {
            println!("{l}");
        }
    }
    if !crash_lines.is_empty() {
        println!(
            "| scenario | instances | load | kill after | killed | kill → first getUpdates (ms) | kill → first update served (ms) | lost | doubled |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for l in &crash_lines {
            println!("{l}");
        }
    }
}
