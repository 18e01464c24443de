//! Burst and sustained load on `kefu run` against the fake Telegram Bot API of the end-to-end
//! tests (`tests/fake_telegram`, axum on 127.0.0.1:0, answering every call at once).
//!
//! - **burst**: 100 users each send one question at the same moment (one `getUpdates` batch);
//!   measured: the time from the batch being queued to each user's first `sendMessage` (p50, p95,
//!   max, how many within 2 s and 30 s), and the delivered messages per second.
//! - **sustained**: 300 users × 3 questions queued at once; measured: delivered messages per
//!   second over the whole run and in its steady middle (10th to 90th percentile of sends).
//!
//! Each scenario runs with the configured pacing (`telegram.max_per_second`, default 30) and
//! again with pacing off (`KEFU__TELEGRAM__MAX_PER_SECOND=0`), which shows what the rest of the
//! pipeline (update handling, NLU, SQLite, the delivery worker) can do on its own.
//!
//! `cargo bench --bench burst` runs all four; `cargo bench --bench burst -- burst` (or
//! `sustained`, `paced`, `unpaced`) runs those whose name contains each given word.
//! `BURST_USERS`, `SUSTAINED_USERS` and `SUSTAINED_QUESTIONS` change the sizes;
//! `BURST_MAX_PER_SECOND` sets `telegram.max_per_second` for the paced scenarios.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    reason = "a benchmark: a failed expectation is a failed run"
)]

#[path = "../tests/fake_telegram/mod.rs"]
mod fake_telegram;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fake_telegram::{Fake, Kefu, Req, dm};

/// Questions the bundled knowledge base answers; users ask them in turn.
const QUESTIONS: &[&str] = &[
    "提币失败了怎么办",
    "充值了但是没到账",
    "怎么充币",
    "how to deposit",
    "deposit not credited",
    "忘记登录密码怎么办",
];

/// The first burst user's id; the warm-up user is 1.
const FIRST_USER: i64 = 100_000;

/// No scenario may take longer than this.
const DEADLINE: Duration = Duration::from_secs(240);

/// A run is over when nothing was sent for this long after every user had an answer.
const QUIET: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: &'static str,
    users: i64,
    questions: i64,
    /// `KEFU__TELEGRAM__MAX_PER_SECOND`; `None`: the configured default.
    max_per_second: Option<&'static str>,
}

#[derive(Debug)]
struct Outcome {
    scenario: Scenario,
    /// From the batch being queued to each user's first reply, sorted.
    first: Vec<Duration>,
    unanswered: usize,
    sends: usize,
    /// Replies to users whose question came from this run's users (sendMessage).
    user_sends: usize,
    span_from_start: Duration,
    span_first_to_last: Duration,
    steady_rate: f64,
    /// Replies to the last question of each user: from queueing to the last user answered.
    all_answered: Option<Duration>,
    warnings: usize,
}

fn env_i64(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sends(reqs: &[Req]) -> impl Iterator<Item = &Req> {
    reqs.iter()
        .filter(|r| r.method == "sendmessage" && !r.limited)
}

fn chat_of(r: &Req) -> i64 {
    r.body["chat_id"].as_i64().unwrap_or_default()
}

async fn run(scenario: Scenario) -> Outcome {
    let fake = Fake::start().await;
    let mut env = vec![("RUST_LOG", "warn")];
    let paced = std::env::var("BURST_MAX_PER_SECOND").ok();
    if let Some(rate) = scenario.max_per_second.or(paced.as_deref()) {
        env.push(("KEFU__TELEGRAM__MAX_PER_SECOND", rate));
    }
    let started = Instant::now();
    let kefu = Kefu::start(&fake, &env, None);

    // Warm-up: one question, answered once the bot is up (the classifier is trained at start).
    fake.push(dm(1, 1, 1, QUESTIONS[0]));
    let deadline = Instant::now() + DEADLINE;
    while !fake.requests().iter().any(|r| r.method == "sendmessage") {
        assert!(
            Instant::now() < deadline,
            "the warm-up question was not answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = started.elapsed();
    // Let the overall bucket fill up again (it allows a burst of one second's worth).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let skip = fake.requests().len();

    // Every question at the same moment: question-major, so each user's first comes first.
    let mut update = 10;
    let t0 = {
        let mut state = fake.state.lock().unwrap();
        for q in 0..scenario.questions {
            for u in 0..scenario.users {
                update += 1;
                let user = FIRST_USER + u;
                let text = QUESTIONS[((u + q) as usize) % QUESTIONS.len()];
                state.updates.push((dm(update, 100 + q, user, text), false));
            }
        }
        Instant::now()
    };

    let deadline = t0 + DEADLINE;
    let mut last_count = 0;
    let mut last_change = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let reqs = fake.requests();
        let count = reqs.len();
        if count != last_count {
            last_count = count;
            last_change = Instant::now();
        }
        let mut per_user: HashMap<i64, usize> = HashMap::new();
        for r in sends(&reqs[skip..]) {
            *per_user.entry(chat_of(r)).or_default() += 1;
        }
        let answered = (0..scenario.users)
            .filter(|u| {
                per_user.get(&(FIRST_USER + u)).copied().unwrap_or(0) >= scenario.questions as usize
            })
            .count();
        let done = answered as i64 == scenario.users && last_change.elapsed() >= QUIET;
        if done || Instant::now() >= deadline || last_change.elapsed() >= Duration::from_secs(30) {
            break;
        }
    }
    let reqs = fake.requests();
    let (_, stderr) = kefu.stop();
    let warnings = stderr
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .count();
    if warnings > 0 {
        eprintln!(
            "{}: {warnings} warnings/errors, the first few:",
            scenario.name
        );
        for line in stderr
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .take(5)
        {
            eprintln!("  {line}");
        }
    }
    let run = &reqs[skip..];

    let mut first: HashMap<i64, Instant> = HashMap::new();
    let mut nth: HashMap<i64, Vec<Instant>> = HashMap::new();
    for r in sends(run) {
        let chat = chat_of(r);
        if (FIRST_USER..FIRST_USER + scenario.users).contains(&chat) {
            first.entry(chat).or_insert(r.at);
            nth.entry(chat).or_default().push(r.at);
        }
    }
    let mut firsts: Vec<Duration> = first.values().map(|at| at.duration_since(t0)).collect();
    firsts.sort();
    let all_answered = (nth.len() as i64 == scenario.users
        && nth.values().all(|v| v.len() >= scenario.questions as usize))
    .then(|| {
        nth.values()
            .map(|v| v[scenario.questions as usize - 1].duration_since(t0))
            .max()
            .unwrap_or_default()
    });

    let mut times: Vec<Instant> = sends(run).map(|r| r.at).collect();
    times.sort();
    let user_sends = nth.values().map(Vec::len).sum();
    let (span_from_start, span_first_to_last, steady_rate) = match (times.first(), times.last()) {
        (Some(a), Some(b)) => {
            let lo = (times.len() / 10).min(times.len() - 1);
            let hi = (times.len() * 9 / 10).min(times.len() - 1);
            let window = times[hi].duration_since(times[lo]).as_secs_f64();
            let steady = if window > 0.0 {
                (hi - lo) as f64 / window
            } else {
                f64::NAN
            };
            (b.duration_since(t0), b.duration_since(*a), steady)
        }
        _ => (Duration::ZERO, Duration::ZERO, f64::NAN),
    };
    eprintln!(
        "{}: bot ready after {:.1} s (first answer to the warm-up question)",
        scenario.name,
        ready.as_secs_f64()
    );
    Outcome {
        scenario,
        unanswered: (scenario.users as usize).saturating_sub(first.len()),
        first: firsts,
        sends: times.len(),
        user_sends,
        span_from_start,
        span_first_to_last,
        steady_rate,
        all_answered,
        warnings,
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn main() {
    let burst_users = env_i64("BURST_USERS", 100);
    let sustained_users = env_i64("SUSTAINED_USERS", 300);
    let sustained_questions = env_i64("SUSTAINED_QUESTIONS", 3);
    let scenarios = [
        Scenario {
            name: "burst-paced",
            users: burst_users,
            questions: 1,
            max_per_second: None,
        },
        Scenario {
            name: "sustained-paced",
            users: sustained_users,
            questions: sustained_questions,
            max_per_second: None,
        },
        Scenario {
            name: "burst-unpaced",
            users: burst_users,
            questions: 1,
            max_per_second: Some("0"),
        },
        Scenario {
            name: "sustained-unpaced",
            users: sustained_users,
            questions: sustained_questions,
            max_per_second: Some("0"),
        },
    ];
    // `cargo bench` passes `--bench`; any other word selects scenarios by name.
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let chosen: Vec<Scenario> = scenarios
        .into_iter()
        .filter(|s| words.is_empty() || words.iter().all(|w| s.name.contains(w.as_str())))
        .collect();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut outcomes = Vec::new();
    for scenario in chosen {
        eprintln!(
            "{}: {} users × {} question(s)…",
            scenario.name, scenario.users, scenario.questions
        );
        let outcome = runtime.block_on(run(scenario));
        outcomes.push(outcome);
    }

    println!();
    println!(
        "first reply after the burst was queued (seconds); messages = sendMessage calls after it"
    );
    println!(
        "| scenario | users×q | p50 | p95 | max | ≤2 s | ≤30 s | unanswered | all answered | messages | msg/s (from t0) | msg/s (first→last) | msg/s (steady 10–90%) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for o in &outcomes {
        let within = |limit: Duration| o.first.iter().filter(|d| **d <= limit).count();
        let rate = |span: Duration| {
            if span.is_zero() {
                f64::NAN
            } else {
                o.sends as f64 / span.as_secs_f64()
            }
        };
        println!(
            "| {} | {}×{} | {} | {} | {} | {}/{} | {}/{} | {} | {} | {} ({} to users) | {:.1} | {:.1} | {:.1} |",
            o.scenario.name,
            o.scenario.users,
            o.scenario.questions,
            secs(percentile(&o.first, 50.0)),
            secs(percentile(&o.first, 95.0)),
            secs(o.first.last().copied().unwrap_or_default()),
            within(Duration::from_secs(2)),
            o.scenario.users,
            within(Duration::from_secs(30)),
            o.scenario.users,
            o.unanswered,
            o.all_answered.map_or("no".to_owned(), secs),
            o.sends,
            o.user_sends,
            rate(o.span_from_start),
            rate(o.span_first_to_last),
            o.steady_rate,
        );
        if o.warnings > 0 {
            println!(
                "  ({}: {} warning/error log lines)",
                o.scenario.name, o.warnings
            );
        }
    }
}
