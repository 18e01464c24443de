//! One ticket: its page (`/tickets/ID`), its live fragment (`/tickets/ID/live`: state, holder,
//! transcript), the staff actions from the page's forms (`POST /tickets/ID/{claim,reply,resolve,
//! release}`, answered by a redirect back with a notice) and their JSON twins under `/api/`; and
//! its label — what the user's question was about — from the picker a resolved ticket's page
//! shows (`POST /tickets/ID/label`) or `POST /api/tickets/ID/label`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use kefu_core::model::{Sender, Ticket, TicketStatus, TranscriptLine};
use kefu_service::{
    Label, LabelKind, ServiceError, StaffAction, StaffActor, StaffOutcome, TicketLabel,
};
use maud::{Markup, PreEscaped, html};
use serde::{Deserialize, Serialize};

use crate::auth::{ApiStaff, FormFields, PageStaff, check_csrf};
use crate::problem::{ApiError, PageError, Problem};
use crate::{App, views};

/// The longest reply staff may send from the console, in characters.
const MAX_REPLY: usize = 4000;

/// A ticket id from the path; anything else is no ticket.
fn ticket_id(raw: &str) -> Result<i64, Problem> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(Problem::NotFound)
}

/// A ticket and its conversation's transcript, or `NotFound`.
pub(crate) async fn load(app: &App, id: i64) -> Result<(Ticket, Vec<TranscriptLine>), Problem> {
    let store = app.service().store();
    let ticket = store
        .ticket(id)
        .await
        .map_err(ServiceError::from)?
        .ok_or(Problem::NotFound)?;
    let transcript = store
        .transcript(&ticket.conversation)
        .await
        .map_err(ServiceError::from)?;
    Ok((ticket, transcript))
}

fn state_badge(ticket: &Ticket) -> Markup {
    html! {
        span #state class={ "badge state-" (ticket.status.as_str()) } { (ticket.status.as_str()) }
    }
}

fn holder(ticket: &Ticket) -> Markup {
    html! {
        span #holder { (ticket.assignee.as_deref().unwrap_or("—")) }
    }
}

fn lines(ticket: &Ticket, transcript: &[TranscriptLine]) -> Markup {
    html! {
        @for line in transcript {
            @let (class, who) = match &line.sender {
                Sender::User => ("user", ticket.user_name.as_str()),
                Sender::Bot => ("bot", "Kefu bot"),
                Sender::Staff(name) => ("staff", name.as_str()),
            };
            div class={ "line " (class) } {
                div.meta {
                    span.who { (who) }
                    time datetime=(line.at.to_rfc3339()) { (views::time(line.at)) }
                }
                div.text { (line.text) }
            }
        }
        @if transcript.is_empty() {
            p.empty { "No messages yet." }
        }
    }
}

/// The live parts of a ticket's page and their version.
pub(crate) struct LiveParts {
    state: Markup,
    holder: Markup,
    lines: String,
    pub(crate) version: String,
}

pub(crate) fn live_parts(ticket: &Ticket, transcript: &[TranscriptLine]) -> LiveParts {
    let state = state_badge(ticket);
    let holder = holder(ticket);
    let lines = lines(ticket, transcript).into_string();
    let version = views::version(&format!("{}{}{}", state.0, holder.0, lines));
    LiveParts {
        state,
        holder,
        lines,
        version,
    }
}

impl LiveParts {
    fn transcript(&self) -> Markup {
        html! {
            div #transcript .transcript data-version=(self.version) { (PreEscaped(&self.lines)) }
        }
    }
}

/// What the page says after an action (the `notice` the action's redirect carries).
fn notice(code: &str, ticket: &Ticket) -> Option<(bool, String)> {
    Some(match code {
        "claimed" => (true, "Claimed: you hold this ticket.".to_owned()),
        "replied" => (true, "Reply sent to the user.".to_owned()),
        "resolved" => (true, "Resolved: the chat went back to the bot.".to_owned()),
        "released" => (
            true,
            "Released: the ticket is back in the queue.".to_owned(),
        ),
        "held" => (
            false,
            match ticket.assignee.as_deref() {
                Some(name) => format!("Not done: held by {name}."),
                None => "Not done: held by another staff member.".to_owned(),
            },
        ),
        "not_claimed" => (
            false,
            "Not done: nobody holds this ticket yet — claim it first.".to_owned(),
        ),
        "closed" => (false, "Not done: this ticket is closed.".to_owned()),
        "labelled" => (
            true,
            "Labelled: thank you, this helps the bot learn.".to_owned(),
        ),
        _ => return None,
    })
}

/// `GET /tickets/ID`.
pub(crate) async fn page(
    State(app): State<App>,
    PageStaff(session): PageStaff,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let id = ticket_id(&raw)?;
    let (ticket, transcript) = load(&app, id).await?;
    let ratings = app
        .service()
        .store()
        .ratings_for(id)
        .await
        .map_err(ServiceError::from)?;
    let label = app
        .service()
        .store()
        .ticket_label(id)
        .await
        .map_err(ServiceError::from)?;
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let notice = query
        .iter()
        .find(|(k, _)| k == "notice")
        .and_then(|(_, v)| notice(v, &ticket));
    let live = live_parts(&ticket, &transcript);
    let csrf = &session.csrf;
    let action = |verb: &str| format!("/tickets/{id}/{verb}");
    let body = html! {
        div.page-head {
            h1 { "Ticket " span #code .code title="The verification code the user can check staff against" { (ticket.code) } }
            span #live-status .live-status { "" }
        }
        @match &notice {
            Some((true, text)) => div #notice .notice.ok role="status" { (text) },
            Some((false, text)) => div #notice .notice.refused role="alert" { (text) },
            None => div #notice .notice role="status" {},
        }
        div.ticket-grid {
            section.facts {
                dl {
                    dt { "State" } dd { (live.state) }
                    dt { "Holder" } dd { (live.holder) }
                    dt { "Priority" } dd { span class={ "badge prio-" (ticket.priority.as_str()) } { (ticket.priority.as_str()) } }
                    dt { "Platform" } dd.platform { (ticket.conversation.platform) }
                    dt { "User" } dd.user { (ticket.user_name) " " span.muted { "(" (ticket.conversation.user_id) ")" } }
                    dt { "Intent" } dd.intent { (ticket.intent.as_deref().unwrap_or("—")) }
                    dt { "Reason" } dd.reason { (ticket.reason) }
                    dt { "Opened" } dd { (views::time(ticket.created_at)) }
                    @if let Some(at) = ticket.claimed_at { dt { "Claimed" } dd { (views::time(at)) } }
                    @if let Some(at) = ticket.resolved_at { dt { "Closed" } dd { (views::time(at)) } }
                }
                div.actions {
                    form #claim method="post" action=(action("claim")) {
                        input type="hidden" name="csrf" value=(csrf);
                        button #claim-btn type="submit" { "Claim" }
                    }
                    form #release method="post" action=(action("release")) {
                        input type="hidden" name="csrf" value=(csrf);
                        button #release-btn type="submit" { "Release" }
                    }
                    form #resolve method="post" action=(action("resolve")) {
                        input type="hidden" name="csrf" value=(csrf);
                        button #resolve-btn .good type="submit" { "Resolve" }
                    }
                }
                h2 { "Details" }
                div #details {
                    @if ticket.details.is_empty() {
                        p.muted { "None collected." }
                    } @else {
                        dl {
                            @for d in &ticket.details {
                                dt { (d.name) }
                                dd { @match &d.value { Some(v) => (v), None => em.muted { "skipped" } } }
                            }
                        }
                    }
                }
                h2 { "Label" }
                p #label-current {
                    @match &label {
                        Some(l) => {
                            (label_text(l)) " "
                            span.muted { "(by " (l.labelled_by) ")" }
                        }
                        None => span.muted { "Not labelled." },
                    }
                }
                @if ticket.status == TicketStatus::Resolved {
                    (label_form(&app, &ticket, label.as_ref(), csrf, &action("label")))
                }
                @if !ratings.is_empty() {
                    h2 { "Ratings" }
                    ul #ratings {
                        @for r in &ratings {
                            li { (r.score) "/5" @if let Some(c) = &r.comment { " — " (c) } }
                        }
                    }
                }
            }
            section.conversation {
                h2 { "Conversation" }
                (live.transcript())
                form #reply .reply method="post" action=(action("reply")) {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="reply-text" { "Reply to the user" }
                    textarea #reply-text name="text" rows="4" maxlength="4000" required placeholder="Write to the user… (replying to a queued ticket claims it)" {}
                    div.buttons {
                        button #send .primary type="submit" { "Send" }
                    }
                }
            }
        }
    };
    Ok(views::page(
        &format!("Ticket {}", ticket.code),
        Some(&session),
        body,
    ))
}

/// `GET /tickets/ID/live`: the live parts of the page (`#state`, `#holder`, `#transcript`).
pub(crate) async fn live(
    State(app): State<App>,
    PageStaff(_): PageStaff,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    let id = ticket_id(&raw)?;
    let (ticket, transcript) = load(&app, id).await?;
    let live = live_parts(&ticket, &transcript);
    let html = html! {
        div #live data-version=(live.version) {
            (live.state)
            (live.holder)
            (live.transcript())
        }
    };
    Ok(Html(html.into_string()).into_response())
}

/// A label as the page shows it.
fn label_text(l: &TicketLabel) -> String {
    let name = l.name.as_deref().unwrap_or("");
    match l.kind {
        LabelKind::Intent => format!("Intent {name}"),
        LabelKind::NewTopic => format!("New topic: {name}"),
        LabelKind::NotAQuestion => "Not a question".to_owned(),
    }
}

/// The `intent` choice of the label form meaning "a new topic", "not a question", and (without
/// the NLU, which lists the intents) "the intent id typed in `intent_id`".
const NEW_TOPIC: &str = ":new_topic";
const NOT_A_QUESTION: &str = ":not_a_question";
const TYPED_INTENT: &str = ":intent_id";

/// The label picker of a resolved ticket: the KB's intents (the current label's or the ticket's
/// guess chosen), "new topic…" with its name, "not a question".
fn label_form(
    app: &App,
    ticket: &Ticket,
    current: Option<&TicketLabel>,
    csrf: &str,
    action: &str,
) -> Markup {
    let engine = app.service().engine();
    let lang = app.service().config().staff_language.code();
    let chosen = match current {
        Some(l) if l.kind == LabelKind::Intent => l.name.as_deref(),
        Some(l) if l.kind == LabelKind::NewTopic => Some(NEW_TOPIC),
        Some(_) => Some(NOT_A_QUESTION),
        None => ticket.intent.as_deref(),
    };
    let topic = current
        .filter(|l| l.kind == LabelKind::NewTopic)
        .and_then(|l| l.name.as_deref())
        .unwrap_or("");
    html! {
        form #label .label-form method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            label for="label-intent" { "What was the question about?" }
            select #label-intent name="intent" required {
                option value="" disabled selected[chosen.is_none()] { "Choose…" }
                @if let Some(engine) = &engine {
                    @let kb = engine.kb();
                    @let default = kb.meta.default_language.as_deref();
                    @for intent in &kb.intents {
                        option value=(intent.id) selected[chosen == Some(intent.id.as_str())] {
                            (intent.id) " — " (intent.title_in(lang, default))
                        }
                    }
                } @else {
                    option value=(TYPED_INTENT) { "intent (type its id)…" }
                }
                option value=(NEW_TOPIC) selected[chosen == Some(NEW_TOPIC)] { "new topic…" }
                option value=(NOT_A_QUESTION) selected[chosen == Some(NOT_A_QUESTION)] { "not a question" }
            }
            @if engine.is_none() {
                input #label-intent-id type="text" name="intent_id" maxlength="100" placeholder="intent id, e.g. withdrawal.pending";
            }
            input #label-new-topic type="text" name="new_topic" maxlength="40" value=(topic) placeholder="new topic's short name (1–40 characters)";
            div.buttons {
                button #label-btn type="submit" { "Save label" }
            }
        }
    }
}

/// A value given: trimmed, not empty.
fn given(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

fn no_topic_name() -> Problem {
    Problem::BadRequest("A new topic needs a short name (1 to 40 characters).".to_owned())
}

/// The label the picker asks for: the `intent` choice decides — an intent id, [`NEW_TOPIC`]
/// with the name in `new_topic`, [`NOT_A_QUESTION`], or [`TYPED_INTENT`] with the id in
/// `intent_id`; no choice with a `new_topic` name is a new topic.
fn form_label(
    intent: Option<&str>,
    intent_id: Option<&str>,
    new_topic: Option<&str>,
) -> Result<Label, Problem> {
    Ok(match given(intent) {
        Some(NOT_A_QUESTION) => Label::NotAQuestion,
        Some(NEW_TOPIC) => Label::NewTopic(given(new_topic).ok_or_else(no_topic_name)?.to_owned()),
        Some(TYPED_INTENT) => Label::Intent(
            given(intent_id)
                .ok_or_else(|| Problem::BadRequest("Type the intent's id.".to_owned()))?
                .to_owned(),
        ),
        Some(id) if !id.starts_with(':') => Label::Intent(id.to_owned()),
        Some(other) => {
            return Err(Problem::BadRequest(format!("{other:?} is not a choice.")));
        }
        None => match given(new_topic) {
            Some(name) => Label::NewTopic(name.to_owned()),
            None => {
                return Err(Problem::BadRequest(
                    "Choose an intent, a new topic or \"not a question\".".to_owned(),
                ));
            }
        },
    })
}

/// The label a JSON body asks for: exactly one of `intent`, `new_topic`, `not_a_question`.
fn json_label(
    intent: Option<&str>,
    new_topic: Option<&str>,
    not_a_question: bool,
) -> Result<Label, Problem> {
    match (intent, new_topic, not_a_question) {
        (Some(id), None, false) => Ok(Label::Intent(id.trim().to_owned())),
        (None, Some(name), false) => Ok(Label::NewTopic(
            given(Some(name)).ok_or_else(no_topic_name)?.to_owned(),
        )),
        (None, None, true) => Ok(Label::NotAQuestion),
        _ => Err(Problem::BadRequest(
            "Give exactly one of \"intent\", \"new_topic\" or \"not_a_question\": true.".to_owned(),
        )),
    }
}

/// Records a label by `staff`: the label, `NotFound`, or a bad request saying what is wrong
/// with it.
async fn record_label(
    app: &App,
    staff: &str,
    id: i64,
    label: Label,
) -> Result<TicketLabel, Problem> {
    match app
        .service()
        .label_ticket(id, staff, label, Utc::now())
        .await
    {
        Ok(Some(label)) => Ok(label),
        Ok(None) => Err(Problem::NotFound),
        Err(ServiceError::Label(e)) => Err(Problem::BadRequest(format!("{e}."))),
        Err(e) => Err(e.into()),
    }
}

/// `POST /tickets/ID/label` (form fields `intent`, `new_topic`, `intent_id`).
pub(crate) async fn label(
    State(app): State<App>,
    PageStaff(session): PageStaff,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = FormFields::parse(&headers, &body);
    check_csrf(&app, &headers, Some(&session), Some(&form))?;
    let id = ticket_id(&raw)?;
    let label = form_label(
        form.get("intent"),
        form.get("intent_id"),
        form.get("new_topic"),
    )?;
    record_label(&app, &session.staff.name, id, label).await?;
    Ok(Redirect::to(&format!("/tickets/{id}?notice=labelled")).into_response())
}

#[derive(Debug, Deserialize)]
struct LabelBody {
    intent: Option<String>,
    new_topic: Option<String>,
    #[serde(default)]
    not_a_question: bool,
}

/// `POST /api/tickets/ID/label` with `{"intent": ID}`, `{"new_topic": NAME}` or
/// `{"not_a_question": true}`: `{"ok": true, "label": …}`.
pub(crate) async fn api_label(
    State(app): State<App>,
    ApiStaff(who): ApiStaff,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_csrf(&app, &headers, who.session(), None)?;
    let id = ticket_id(&raw)?;
    let parsed: LabelBody = serde_json::from_slice(&body).map_err(|e| {
        Problem::BadRequest(format!(
            "The body is not {{\"intent\": ID}}, {{\"new_topic\": NAME}} or {{\"not_a_question\": true}}: {e}"
        ))
    })?;
    let label = json_label(
        parsed.intent.as_deref(),
        parsed.new_topic.as_deref(),
        parsed.not_a_question,
    )?;
    let label = record_label(&app, &who.staff().name, id, label).await?;
    Ok(Json(serde_json::json!({ "ok": true, "label": label })).into_response())
}

#[derive(Debug, Clone, Copy)]
enum Verb {
    Claim,
    Reply,
    Resolve,
    Release,
}

/// The reply text from a form or a JSON body: trimmed, not empty, not too long.
fn reply_text(text: Option<&str>) -> Result<String, Problem> {
    let text = text.map(str::trim).unwrap_or("");
    if text.is_empty() {
        return Err(Problem::BadRequest("The reply is empty.".to_owned()));
    }
    if text.chars().count() > MAX_REPLY {
        return Err(Problem::BadRequest(format!(
            "The reply is longer than {MAX_REPLY} characters."
        )));
    }
    Ok(text.to_owned())
}

async fn run(
    app: &App,
    staff: &str,
    id: i64,
    action: StaffAction,
    now: DateTime<Utc>,
) -> Result<StaffOutcome, Problem> {
    Ok(app
        .service()
        .staff_action(&StaffActor::named(staff), id, action, now)
        .await?)
}

async fn act(
    app: App,
    session: crate::StaffSession,
    raw: String,
    headers: HeaderMap,
    body: Bytes,
    verb: Verb,
) -> Result<Response, PageError> {
    let form = FormFields::parse(&headers, &body);
    check_csrf(&app, &headers, Some(&session), Some(&form))?;
    let id = ticket_id(&raw)?;
    let action = match verb {
        Verb::Claim => StaffAction::Claim,
        Verb::Reply => StaffAction::Reply(reply_text(form.get("text"))?),
        Verb::Resolve => StaffAction::Resolve,
        Verb::Release => StaffAction::Release,
    };
    let outcome = run(&app, &session.staff.name, id, action, Utc::now()).await?;
    let code = match (outcome, verb) {
        (StaffOutcome::Done, Verb::Claim) => "claimed",
        (StaffOutcome::Done, Verb::Reply) => "replied",
        (StaffOutcome::Done, Verb::Resolve) => "resolved",
        (StaffOutcome::Done, Verb::Release) => "released",
        (StaffOutcome::HeldBy(_), _) => "held",
        (StaffOutcome::NotClaimed, _) => "not_claimed",
        (StaffOutcome::Closed, _) => "closed",
        (StaffOutcome::NotFound, _) => return Err(PageError(Problem::NotFound)),
    };
    Ok(Redirect::to(&format!("/tickets/{id}?notice={code}")).into_response())
}

macro_rules! page_action {
    ($name:ident, $verb:expr, $doc:literal) => {
        #[doc = $doc]
        pub(crate) async fn $name(
            State(app): State<App>,
            PageStaff(session): PageStaff,
            Path(raw): Path<String>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Result<Response, PageError> {
            act(app, session, raw, headers, body, $verb).await
        }
    };
}

page_action!(claim, Verb::Claim, "`POST /tickets/ID/claim`.");
page_action!(
    reply,
    Verb::Reply,
    "`POST /tickets/ID/reply` (form field `text`)."
);
page_action!(resolve, Verb::Resolve, "`POST /tickets/ID/resolve`.");
page_action!(release, Verb::Release, "`POST /tickets/ID/release`.");

#[derive(Debug, Deserialize)]
struct ReplyBody {
    text: Option<String>,
}

async fn api_act(
    app: App,
    who: crate::auth::Who,
    raw: String,
    headers: HeaderMap,
    body: Bytes,
    verb: Verb,
) -> Result<Response, ApiError> {
    check_csrf(&app, &headers, who.session(), None)?;
    let id = ticket_id(&raw)?;
    let action = match verb {
        Verb::Claim => StaffAction::Claim,
        Verb::Reply => {
            let parsed: ReplyBody = serde_json::from_slice(&body).map_err(|e| {
                Problem::BadRequest(format!("The body is not {{\"text\": \"…\"}}: {e}"))
            })?;
            StaffAction::Reply(reply_text(parsed.text.as_deref())?)
        }
        Verb::Resolve => StaffAction::Resolve,
        Verb::Release => StaffAction::Release,
    };
    let outcome = run(&app, &who.staff().name, id, action, Utc::now()).await?;
    Ok(match outcome {
        StaffOutcome::Done => Json(serde_json::json!({ "ok": true })).into_response(),
        StaffOutcome::HeldBy(holder) => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({ "error": "held", "holder": holder })),
        )
            .into_response(),
        StaffOutcome::NotClaimed => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({ "error": "not_claimed" })),
        )
            .into_response(),
        StaffOutcome::Closed => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({ "error": "closed" })),
        )
            .into_response(),
        StaffOutcome::NotFound => return Err(ApiError(Problem::NotFound)),
    })
}

macro_rules! api_action {
    ($name:ident, $verb:expr, $doc:literal) => {
        #[doc = $doc]
        pub(crate) async fn $name(
            State(app): State<App>,
            ApiStaff(who): ApiStaff,
            Path(raw): Path<String>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Result<Response, ApiError> {
            api_act(app, who, raw, headers, body, $verb).await
        }
    };
}

api_action!(api_claim, Verb::Claim, "`POST /api/tickets/ID/claim`.");
api_action!(
    api_reply,
    Verb::Reply,
    "`POST /api/tickets/ID/reply` with `{\"text\": \"…\"}`."
);
api_action!(
    api_resolve,
    Verb::Resolve,
    "`POST /api/tickets/ID/resolve`."
);
api_action!(
    api_release,
    Verb::Release,
    "`POST /api/tickets/ID/release`."
);

#[derive(Debug, Serialize)]
struct DetailJson {
    name: String,
    value: Option<String>,
}

#[derive(Debug, Serialize)]
struct LineJson {
    at: DateTime<Utc>,
    /// `user`, `bot` or `staff`.
    sender: &'static str,
    /// The staff member's name, on their lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    staff: Option<String>,
    text: String,
}

#[derive(Debug, Serialize)]
struct RatingJson {
    score: u8,
    comment: Option<String>,
    at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct TicketJson {
    id: i64,
    code: String,
    priority: &'static str,
    state: &'static str,
    platform: String,
    chat_id: String,
    user_id: String,
    user: String,
    intent: Option<String>,
    holder: Option<String>,
    reason: String,
    created_at: DateTime<Utc>,
    claimed_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    open: bool,
    details: Vec<DetailJson>,
    transcript: Vec<LineJson>,
    ratings: Vec<RatingJson>,
    label: Option<TicketLabel>,
}

/// `GET /api/tickets/ID`.
pub(crate) async fn api(
    State(app): State<App>,
    ApiStaff(_): ApiStaff,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = ticket_id(&raw)?;
    let (ticket, transcript) = load(&app, id).await?;
    let ratings = app
        .service()
        .store()
        .ratings_for(id)
        .await
        .map_err(ServiceError::from)?;
    let label = app
        .service()
        .store()
        .ticket_label(id)
        .await
        .map_err(ServiceError::from)?;
    let json = TicketJson {
        label,
        id: ticket.id,
        code: ticket.code,
        priority: ticket.priority.as_str(),
        state: ticket.status.as_str(),
        open: matches!(ticket.status, TicketStatus::Queued | TicketStatus::Claimed),
        platform: ticket.conversation.platform,
        chat_id: ticket.conversation.chat_id,
        user_id: ticket.conversation.user_id,
        user: ticket.user_name,
        intent: ticket.intent,
        holder: ticket.assignee,
        reason: ticket.reason,
        created_at: ticket.created_at,
        claimed_at: ticket.claimed_at,
        resolved_at: ticket.resolved_at,
        details: ticket
            .details
            .into_iter()
            .map(|d| DetailJson {
                name: d.name,
                value: d.value,
            })
            .collect(),
        transcript: transcript
            .into_iter()
            .map(|l| {
                let (sender, staff) = match l.sender {
                    Sender::User => ("user", None),
                    Sender::Bot => ("bot", None),
                    Sender::Staff(name) => ("staff", Some(name)),
                };
                LineJson {
                    at: l.at,
                    sender,
                    staff,
                    text: l.text,
                }
            })
            .collect(),
        ratings: ratings
            .into_iter()
            .map(|r| RatingJson {
                score: r.score,
                comment: r.comment,
                at: r.at,
            })
            .collect(),
    };
    Ok(Json(json).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_ids_are_positive_integers() {
        assert_eq!(ticket_id("7"), Ok(7));
        for bad in ["0", "-1", "x", "", "7.0", "99999999999999999999"] {
            assert_eq!(ticket_id(bad), Err(Problem::NotFound), "{bad}");
        }
    }

    #[test]
    fn the_pickers_choice_decides_the_label() {
        let f = |i: Option<&str>, t: Option<&str>| form_label(i, None, t);
        assert_eq!(
            f(Some(" withdrawal.pending "), Some("old topic")),
            Ok(Label::Intent("withdrawal.pending".into()))
        );
        assert_eq!(
            f(Some(NEW_TOPIC), Some(" staking ")),
            Ok(Label::NewTopic("staking".into()))
        );
        assert_eq!(
            f(None, Some("staking")),
            Ok(Label::NewTopic("staking".into()))
        );
        assert_eq!(f(Some(NOT_A_QUESTION), Some("x")), Ok(Label::NotAQuestion));
        assert_eq!(
            form_label(Some(TYPED_INTENT), Some("deposit.how"), None),
            Ok(Label::Intent("deposit.how".into()))
        );
        for (i, t) in [
            (None, None),
            (Some(""), Some(" ")),
            (Some(NEW_TOPIC), None),
            (Some(NEW_TOPIC), Some("  ")),
            (Some(":other"), None),
            (Some(TYPED_INTENT), None),
        ] {
            assert!(f(i, t).is_err(), "{i:?} {t:?}");
        }
    }

    #[test]
    fn a_json_label_is_exactly_one_of_an_intent_a_new_topic_or_not_a_question() {
        assert_eq!(
            json_label(Some("deposit.how"), None, false),
            Ok(Label::Intent("deposit.how".into()))
        );
        assert_eq!(
            json_label(None, Some("staking"), false),
            Ok(Label::NewTopic("staking".into()))
        );
        assert_eq!(json_label(None, None, true), Ok(Label::NotAQuestion));
        for (i, t, n) in [
            (None, None, false),
            (Some("deposit.how"), Some("staking"), false),
            (Some("deposit.how"), None, true),
            (None, Some("staking"), true),
            (None, Some(" "), false),
        ] {
            assert!(json_label(i, t, n).is_err(), "{i:?} {t:?} {n}");
        }
    }

    #[test]
    fn replies_are_trimmed_and_bounded() {
        assert_eq!(reply_text(Some("  hi ")), Ok("hi".to_owned()));
        assert!(reply_text(Some("  ")).is_err());
        assert!(reply_text(None).is_err());
        assert!(reply_text(Some(&"x".repeat(MAX_REPLY + 1))).is_err());
    }
}
