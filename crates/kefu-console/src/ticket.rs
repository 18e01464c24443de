//! One ticket: its page (`/tickets/ID`), its live fragment (`/tickets/ID/live`: state, holder,
//! transcript), the staff actions from the page's forms (`POST /tickets/ID/{claim,reply,resolve,
//! release}`, answered by a redirect back with a notice) and their JSON twins under `/api/`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use kefu_core::model::{Sender, Ticket, TicketStatus, TranscriptLine};
use kefu_service::{ServiceError, StaffAction, StaffActor, StaffOutcome};
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
    let json = TicketJson {
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
    fn replies_are_trimmed_and_bounded() {
        assert_eq!(reply_text(Some("  hi ")), Ok("hi".to_owned()));
        assert!(reply_text(Some("  ")).is_err());
        assert!(reply_text(None).is_err());
        assert!(reply_text(Some(&"x".repeat(MAX_REPLY + 1))).is_err());
    }
}
