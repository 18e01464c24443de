//! `kefu kb test [STORIES…]`: conversation tests. A story is a conversation written down — the
//! user's turns (text, or a button pressed by its label), staff actions between them, the clock —
//! with what the bot must do at each turn (answer an intent, ask "A or B?", open a ticket with
//! these details, end in this phase, speak this language, say this). Each story runs through the
//! real pipeline: the engine trained on the KB and a `kefu_service::Service` on a fresh SQLite
//! database of its own, the story's clock passed to every call. The runner only drives the
//! service's public calls (`handle_inbound`, `claim`, `reply`, `resolve`), reads what the outbox
//! holds for the user, and the conversation's phase and language from `store().conversation`.
//!
//! A story file is TOML (see README "Conversation tests (stories)"); a directory means every
//! `*.toml` file in it, in name order. Output: one line per story, a diff for each failed turn, and
//! `N passed, M failed`. Exit 0 when all pass, 1 when one fails, 2 when a file is malformed (the
//! message names the file, the line and the fix).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context as _, anyhow};
use chrono::{DateTime, Duration, Utc};
use kefu_core::model::{Button, ConversationRef, Inbound};
use kefu_core::{ConversationState, Phase};
use kefu_nlu::kb::KnowledgeBase;
use kefu_service::{Handled, Service, StaffOutcome};
use serde::Deserialize;
use toml::Spanned;

use super::{Failure, emit, load_kb, runtime, train};
use crate::settings::Settings;

/// The default clock: Monday 2025-05-05 10:00 in Shanghai, inside the default support hours.
const DEFAULT_START: &str = "2025-05-05T10:00:00+08:00";
/// How far the clock moves between two turns unless a turn says `wait`.
const TURN_GAP_SECONDS: i64 = 60;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoryFile {
    #[serde(default)]
    story: Vec<Spanned<Story>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Story {
    name: String,
    /// When the conversation starts (RFC 3339).
    #[serde(default)]
    start: Option<String>,
    /// The user's display name.
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    turn: Vec<Spanned<Turn>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Turn {
    // What happens: exactly one of user / press / staff.
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    press: Option<String>,
    #[serde(default)]
    staff: Option<String>,
    #[serde(default, rename = "as")]
    staff_name: Option<String>,
    #[serde(default)]
    text: Option<String>,
    /// Clock advance before this turn ("90s", "10m", "12h", "2d").
    #[serde(default)]
    wait: Option<String>,
    // What the bot must do.
    #[serde(default)]
    answer: Option<String>,
    #[serde(default)]
    clarify: Option<Vec<String>>,
    #[serde(default)]
    ticket: Option<TicketExpectation>,
    #[serde(default)]
    no_ticket: bool,
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    says: Vec<String>,
    #[serde(default)]
    not_says: Vec<String>,
    #[serde(default)]
    buttons: Vec<String>,
    #[serde(default)]
    silent: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TicketExpectation {
    #[serde(default)]
    intent: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    /// Detail name → value; "-" for a detail left empty (skipped).
    #[serde(default)]
    details: BTreeMap<String, String>,
}

const PHASES: &[&str] = &[
    "idle",
    "awaiting_feedback",
    "clarifying",
    "offering_human",
    "collecting",
    "queued",
    "with_staff",
    "rating",
    "rating_comment",
];

/// One story ready to run: where it came from and what it says.
struct Loaded {
    file: PathBuf,
    line: usize,
    story: Story,
}

/// A story's result: its differences from the expectations (none when it passed), or why it could
/// not run.
type StoryOutcome = Result<Vec<String>, String>;

pub fn run(settings: &Settings, kb_path: &Path, paths: &[PathBuf]) -> Result<(), Failure> {
    let kb = load_kb(kb_path)?;
    let files = story_files(paths)?;
    let mut stories = Vec::new();
    for file in &files {
        stories.extend(parse_file(file, &kb).map_err(Failure::BadInput)?);
    }
    if stories.is_empty() {
        return Err(Failure::BadInput(anyhow!(
            "no stories in {}; fix: add [[story]] tables to a .toml file (see README \"Conversation tests (stories)\")",
            paths_text(paths)
        )));
    }
    let hours = kefu_core::SupportHours::parse(
        &settings.support.timezone,
        &settings.support.days,
        &settings.support.open,
        &settings.support.close,
    )
    .context("invalid [support] settings; fix: timezone is an IANA name, days like \"mon-fri\", times HH:MM")
    .map_err(Failure::BadInput)?;
    let flood = kefu_service::FloodLimit {
        max_messages: settings.flood.max_messages,
        window: std::time::Duration::from_secs(settings.flood.window_secs),
    };
    let scratch = tempfile::tempdir()
        .context("creating a scratch directory for the stories' databases")
        .map_err(Failure::Other)?;

    // Stories are independent (each has its own database and engine): run them on every core,
    // then report in file order.
    let next = Mutex::new(0usize);
    let results: Vec<Mutex<Option<StoryOutcome>>> =
        stories.iter().map(|_| Mutex::new(None)).collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(stories.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = {
                        let Ok(mut n) = next.lock() else { return };
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(story) = stories.get(i) else { return };
                    let db = scratch.path().join(format!("story-{i}.db"));
                    let outcome =
                        run_story(story, &kb, &hours, flood, &db).map_err(|e| format!("{e:#}"));
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(outcome);
                    }
                }
            });
        }
    });

    let mut out = String::new();
    let (mut passed, mut failed) = (0usize, 0usize);
    for (story, result) in stories.iter().zip(results) {
        let result = result
            .into_inner()
            .ok()
            .flatten()
            .unwrap_or_else(|| Err("the story did not run".to_owned()));
        let title = format!(
            "{}:{}: {}",
            story.file.display(),
            story.line,
            story.story.name
        );
        match result {
            Ok(diffs) if diffs.is_empty() => {
                passed += 1;
                let _ = writeln!(out, "PASS  {title}");
            }
            Ok(diffs) => {
                failed += 1;
                let _ = writeln!(out, "FAIL  {title}");
                for d in diffs {
                    let _ = writeln!(out, "{d}");
                }
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(out, "FAIL  {title}\n      could not run: {e}");
            }
        }
    }
    let _ = writeln!(out, "\nstories: {passed} passed, {failed} failed");
    emit(&out)?;
    if failed > 0 {
        return Err(Failure::Other(anyhow!(
            "{failed} of {} stories failed",
            passed + failed
        )));
    }
    Ok(())
}

fn paths_text(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The story files: each path given, or the `*.toml` files of a directory in name order.
fn story_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))
                .map_err(Failure::BadInput)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
                .collect();
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(Failure::BadInput(anyhow!(
                "{}: no such file or directory; fix: name a story file or a directory of them (default config/kb/stories)",
                path.display()
            )));
        }
    }
    Ok(files)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses and checks one story file; every problem names the file, the line and the fix.
fn parse_file(file: &Path, kb: &KnowledgeBase) -> anyhow::Result<Vec<Loaded>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let parsed: StoryFile = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(&text, s.start));
        anyhow!(
            "{}:{line}: {}; fix: see README \"Conversation tests (stories)\" for the story format",
            file.display(),
            e.message()
        )
    })?;
    let mut out = Vec::new();
    for story in parsed.story {
        let line = line_of(&text, story.span().start);
        let story = story.into_inner();
        let at = |span: std::ops::Range<usize>| {
            format!("{}:{}", file.display(), line_of(&text, span.start))
        };
        if let Some(start) = &story.start {
            DateTime::parse_from_rfc3339(start).map_err(|e| {
                anyhow!(
                    "{}: start = {start:?} is not a time ({e}); fix: write it like \"2025-05-05T23:30:00+08:00\"",
                    at(line_span(&text, line))
                )
            })?;
        }
        if story.turn.is_empty() {
            return Err(anyhow!(
                "{}: story {:?} has no turns; fix: add [[story.turn]] tables",
                at(line_span(&text, line)),
                story.name
            ));
        }
        for turn in &story.turn {
            check_turn(turn.get_ref(), kb).map_err(|e| anyhow!("{}: {e}", at(turn.span())))?;
        }
        out.push(Loaded {
            file: file.to_owned(),
            line,
            story,
        });
    }
    Ok(out)
}

fn line_span(text: &str, line: usize) -> std::ops::Range<usize> {
    let start = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    start..start
}

fn check_turn(t: &Turn, kb: &KnowledgeBase) -> anyhow::Result<()> {
    let actors = [t.user.is_some(), t.press.is_some(), t.staff.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if actors != 1 {
        return Err(anyhow!(
            "a turn needs exactly one of user, press or staff (it has {actors}); fix: split it into one turn per action"
        ));
    }
    match t.staff.as_deref() {
        None | Some("claim" | "resolve") => {}
        Some("reply") if t.text.is_some() => {}
        Some("reply") => {
            return Err(anyhow!(
                "staff = \"reply\" needs text; fix: add text = \"…\""
            ));
        }
        Some(other) => {
            return Err(anyhow!(
                "unknown staff action {other:?}; fix: use claim, reply or resolve"
            ));
        }
    }
    if let Some(w) = &t.wait {
        parse_wait(w)?;
    }
    let known = |id: &str| -> anyhow::Result<()> {
        if kb.intent(id).is_some() {
            Ok(())
        } else {
            Err(anyhow!(
                "intent {id:?} is not in the KB; fix: use an id from the KB (kefu kb check lists them)"
            ))
        }
    };
    if let Some(id) = &t.answer {
        known(id)?;
    }
    if let Some(options) = &t.clarify {
        if options.len() != 2 {
            return Err(anyhow!(
                "clarify lists {} intents; fix: name the two options, e.g. clarify = [\"trading.fees\", \"withdrawal.fees\"]",
                options.len()
            ));
        }
        for id in options {
            known(id)?;
        }
    }
    if let Some(ticket) = &t.ticket
        && let Some(id) = &ticket.intent
    {
        known(id)?;
    }
    if let Some(phase) = &t.phase
        && !PHASES.contains(&phase.as_str())
    {
        return Err(anyhow!(
            "unknown phase {phase:?}; fix: use one of {}",
            PHASES.join(", ")
        ));
    }
    if let Some(lang) = &t.lang
        && !matches!(lang.as_str(), "zh" | "en")
    {
        return Err(anyhow!("unknown lang {lang:?}; fix: use zh or en"));
    }
    Ok(())
}

/// "90s", "10m", "12h", "2d".
fn parse_wait(text: &str) -> anyhow::Result<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().map_err(|_| {
        anyhow!(
            "wait = {text:?} is not a duration; fix: write a number and a unit: 90s, 10m, 12h, 2d"
        )
    })?;
    match unit {
        "s" => Ok(Duration::seconds(n)),
        "m" => Ok(Duration::minutes(n)),
        "h" => Ok(Duration::hours(n)),
        "d" => Ok(Duration::days(n)),
        _ => Err(anyhow!(
            "wait = {text:?} has unit {unit:?}; fix: use s, m, h or d (90s, 10m, 12h, 2d)"
        )),
    }
}

/// What one turn made the bot do.
#[derive(Default)]
struct Observed {
    replies: Vec<(String, Vec<Button>)>,
    ticket: Option<kefu_core::model::Ticket>,
    staff_outcome: Option<StaffOutcome>,
}

fn run_story(
    loaded: &Loaded,
    kb: &KnowledgeBase,
    hours: &kefu_core::SupportHours,
    flood: kefu_service::FloodLimit,
    db: &Path,
) -> anyhow::Result<Vec<String>> {
    let story = &loaded.story;
    let engine = match train(kb.clone()) {
        Ok(e) => e,
        Err(Failure::BadInput(e) | Failure::Other(e)) => return Err(e),
    };
    let rt = runtime().map_err(|_| anyhow!("could not start the async runtime"))?;
    rt.block_on(async {
        let url = format!("sqlite://{}", db.display());
        let store = kefu_store::Store::connect(&url)
            .await
            .with_context(|| format!("opening {url}"))?;
        let service = Service::new(
            engine,
            store,
            kefu_service::ServiceConfig::new(hours.clone(), flood),
        );
        let user = story.user.clone().unwrap_or_else(|| "story-user".to_owned());
        let cref = ConversationRef {
            platform: "story".to_owned(),
            chat_id: user.clone(),
            user_id: user.clone(),
        };
        let start = story.start.as_deref().unwrap_or(DEFAULT_START);
        let mut now = DateTime::parse_from_rfc3339(start)
            .context("story start")?
            .with_timezone(&Utc);
        let mut buttons: Vec<Button> = Vec::new();
        let mut ticket_id: Option<i64> = None;
        let mut diffs = Vec::new();
        for (n, turn) in story.turn.iter().enumerate() {
            let turn_line = turn.span();
            let turn = turn.get_ref();
            if n > 0 {
                now += Duration::seconds(TURN_GAP_SECONDS);
            }
            if let Some(w) = &turn.wait {
                now += parse_wait(w)?;
            }
            let mut seen = Observed::default();
            let said = if let Some(label) = &turn.press {
                match buttons.iter().find(|b| &b.label == label) {
                    Some(b) => {
                        let payload = b.payload.clone();
                        seen.ticket =
                            user_turn(&service, &cref, &user, &payload, true, n, now).await?;
                        format!("press: {label}")
                    }
                    None => {
                        let shown: Vec<&str> = buttons.iter().map(|b| b.label.as_str()).collect();
                        diffs.push(format!(
                            "      turn {} (press: {label}): no button labelled {label:?}; the buttons were {shown:?}",
                            n + 1
                        ));
                        break;
                    }
                }
            } else if let Some(text) = &turn.user {
                seen.ticket = user_turn(&service, &cref, &user, text, false, n, now).await?;
                format!("user: {text}")
            } else {
                let action = turn.staff.as_deref().unwrap_or_default();
                let staff = turn.staff_name.as_deref().unwrap_or("staff");
                let Some(id) = ticket_id else {
                    diffs.push(format!(
                        "      turn {} (staff {action}): no ticket was opened before it",
                        n + 1
                    ));
                    break;
                };
                let outcome = match action {
                    "claim" => service.claim(id, staff, now).await?,
                    "reply" => {
                        let text = turn.text.as_deref().unwrap_or_default();
                        service.reply(id, staff, text, now).await?
                    }
                    _ => service.resolve(id, staff, now).await?,
                };
                seen.staff_outcome = Some(outcome);
                format!("staff {action} as {staff}")
            };
            if let Some(t) = &seen.ticket {
                ticket_id = Some(t.id);
            }
            for m in service
                .store()
                .pending_outbox_for_conversation(&cref, now)
                .await?
            {
                if let Some(message) = m.user_message() {
                    if !message.buttons.is_empty() {
                        buttons.clone_from(&message.buttons);
                    }
                    seen.replies
                        .push((message.text.clone(), message.buttons.clone()));
                }
                service.store().mark_delivered(m.id, None, now).await?;
            }
            let state = service
                .store()
                .conversation(&cref)
                .await?
                .and_then(|c| c.state)
                .map(serde_json::from_value::<ConversationState>)
                .transpose()
                .context("reading the conversation's state")?
                .unwrap_or_default();
            let problems = compare(turn, &seen, &state, kb);
            if !problems.is_empty() {
                let mut d = format!(
                    "      turn {} (line {}, {said}):",
                    n + 1,
                    line_of_span(loaded, turn_line)
                );
                for p in problems {
                    let _ = write!(d, "\n        - expected {p}");
                }
                let _ = write!(d, "\n        + got phase {}, lang {}", phase_name(&state.phase), state.language.code());
                if seen.replies.is_empty() {
                    let _ = write!(d, "\n        + the bot said nothing");
                }
                for (text, buttons) in &seen.replies {
                    let _ = write!(d, "\n        + bot: {}", text.replace('\n', "⏎ "));
                    if !buttons.is_empty() {
                        let labels: Vec<&str> = buttons.iter().map(|b| b.label.as_str()).collect();
                        let _ = write!(d, " {labels:?}");
                    }
                }
                if let Some(o) = &seen.staff_outcome {
                    let _ = write!(d, "\n        + staff action: {o:?}");
                }
                diffs.push(d);
            }
        }
        Ok(diffs)
    })
}

fn line_of_span(loaded: &Loaded, span: std::ops::Range<usize>) -> usize {
    std::fs::read_to_string(&loaded.file).map_or(0, |t| line_of(&t, span.start))
}

async fn user_turn(
    service: &Service,
    cref: &ConversationRef,
    user: &str,
    text: &str,
    pressed: bool,
    n: usize,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<kefu_core::model::Ticket>> {
    let inbound = Inbound {
        conversation: cref.clone(),
        user_name: user.to_owned(),
        platform_message_id: format!("turn-{n}"),
        text: text.to_owned(),
        at: now,
        attachments: Vec::new(),
        pressed,
    };
    Ok(match service.handle_inbound(&inbound, now).await? {
        Handled::Processed { ticket_opened, .. } => ticket_opened.map(|t| *t),
        Handled::Duplicate | Handled::TakenOver | Handled::Deferred => None,
        Handled::Failed => anyhow::bail!("the message could not be handled"),
    })
}

fn phase_name(phase: &Phase) -> String {
    serde_json::to_value(phase)
        .ok()
        .and_then(|v| v.get("phase").and_then(|p| p.as_str().map(str::to_owned)))
        .unwrap_or_else(|| "?".to_owned())
}

/// What the turn expected and did not get, one sentence each.
fn compare(
    t: &Turn,
    seen: &Observed,
    state: &ConversationState,
    kb: &KnowledgeBase,
) -> Vec<String> {
    let mut problems = Vec::new();
    let all_text: Vec<&str> = seen.replies.iter().map(|(t, _)| t.as_str()).collect();
    if let Some(id) = &t.answer {
        let answered = kb.intent(id).is_some_and(|intent| {
            intent
                .answer
                .iter()
                .any(|(_, a)| all_text.iter().any(|r| r.contains(a.trim())))
        });
        if !answered {
            problems.push(format!("the answer of {id}"));
        }
    }
    if let Some(options) = &t.clarify {
        let asked = seen.replies.iter().any(|(_, buttons)| {
            options
                .iter()
                .all(|id| buttons.iter().any(|b| b.payload == format!("/pick {id}")))
        });
        if !asked {
            problems.push(format!(
                "\"A or B?\" with {} and {}",
                options[0], options[1]
            ));
        }
    }
    match (&t.ticket, &seen.ticket) {
        (Some(_), None) => problems.push("a ticket opened".to_owned()),
        (Some(want), Some(got)) => {
            if let Some(intent) = &want.intent
                && got.intent.as_deref() != Some(intent.as_str())
            {
                problems.push(format!(
                    "a ticket about {intent} (it is about {})",
                    got.intent.as_deref().unwrap_or("nothing")
                ));
            }
            if let Some(p) = &want.priority
                && got.priority.as_str() != p
            {
                problems.push(format!(
                    "a ticket of priority {p} (it is {})",
                    got.priority.as_str()
                ));
            }
            for (name, value) in &want.details {
                let have = got.details.iter().find(|d| &d.name == name);
                let ok = match (value.as_str(), have) {
                    ("-", Some(d)) => d.value.is_none(),
                    (v, Some(d)) => d.value.as_deref() == Some(v),
                    (_, None) => false,
                };
                if !ok {
                    problems.push(format!(
                        "ticket detail {name} = {value:?} (it is {})",
                        match have {
                            Some(d) => format!("{:?}", d.value.as_deref().unwrap_or("-")),
                            None => "missing".to_owned(),
                        }
                    ));
                }
            }
        }
        _ => {}
    }
    if t.no_ticket && seen.ticket.is_some() {
        problems.push("no ticket opened".to_owned());
    }
    if let Some(phase) = &t.phase
        && &phase_name(&state.phase) != phase
    {
        problems.push(format!("phase {phase}"));
    }
    if let Some(lang) = &t.lang
        && state.language.code() != lang
    {
        problems.push(format!("language {lang}"));
    }
    for s in &t.says {
        if !all_text.iter().any(|r| r.contains(s.as_str())) {
            problems.push(format!("a reply saying {s:?}"));
        }
    }
    for s in &t.not_says {
        if all_text.iter().any(|r| r.contains(s.as_str())) {
            problems.push(format!("no reply saying {s:?}"));
        }
    }
    for label in &t.buttons {
        let shown = seen
            .replies
            .iter()
            .any(|(_, buttons)| buttons.iter().any(|b| &b.label == label));
        if !shown {
            problems.push(format!("a button {label:?}"));
        }
    }
    if t.silent && !seen.replies.is_empty() {
        problems.push("no reply".to_owned());
    }
    if t.staff.is_some()
        && let Some(o) = &seen.staff_outcome
        && *o != StaffOutcome::Done
    {
        problems.push("the staff action to succeed".to_owned());
    }
    problems
}
