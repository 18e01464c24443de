//! The queue: open tickets with filters (state, priority, platform) and a sort order, as a page
//! (`/queue`), as its live rows (`/queue/rows`, the table's `<tbody>`) and as JSON
//! (`/api/queue`).

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use kefu_core::model::{Priority, TicketStatus};
use kefu_store::OpenTicket;
use maud::{Markup, PreEscaped, html};
use serde::{Deserialize, Serialize};

use crate::auth::{ApiStaff, PageStaff};
use crate::problem::{ApiError, PageError, Problem};
use crate::{App, views};

/// Which open tickets to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum StateFilter {
    /// Queued and claimed.
    #[default]
    Open,
    Queued,
    Claimed,
}

/// How to order them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Sort {
    /// Most urgent first, then oldest (the store's order).
    #[default]
    Priority,
    /// Longest wait first.
    Waiting,
    /// By platform, then as `Priority`.
    Platform,
}

/// The queue's query string, as sent.
#[derive(Debug, Default, Deserialize)]
struct RawFilter {
    state: Option<String>,
    priority: Option<String>,
    platform: Option<String>,
    sort: Option<String>,
}

/// The queue's filters and order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    state: StateFilter,
    priority: Option<Priority>,
    platform: Option<String>,
    sort: Sort,
}

/// The platforms offered in the filter (others seen in the queue are added).
const PLATFORMS: [&str; 3] = ["telegram", "discord", "terminal"];
const PRIORITIES: [Priority; 4] = [
    Priority::Urgent,
    Priority::High,
    Priority::Normal,
    Priority::Low,
];

impl Filter {
    /// Parses a query string; an empty value means "any", an unknown one is a bad request.
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, Problem> {
        let raw: RawFilter = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|e| Problem::BadRequest(format!("Bad queue filter: {e}")))?;
        let bad = |what: &str, v: &str| Problem::BadRequest(format!("Unknown {what}: {v:?}"));
        let state = match raw.state.as_deref().unwrap_or("") {
            "" | "open" => StateFilter::Open,
            "queued" => StateFilter::Queued,
            "claimed" => StateFilter::Claimed,
            other => return Err(bad("state", other)),
        };
        let priority = match raw.priority.as_deref().unwrap_or("") {
            "" | "any" => None,
            p => Some(Priority::parse(p).ok_or_else(|| bad("priority", p))?),
        };
        let platform = match raw.platform.as_deref().unwrap_or("") {
            "" | "any" => None,
            p if p.len() <= 32
                && p.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                }) =>
            {
                Some(p.to_owned())
            }
            p => return Err(bad("platform", p)),
        };
        let sort = match raw.sort.as_deref().unwrap_or("") {
            "" | "priority" => Sort::Priority,
            "waiting" => Sort::Waiting,
            "platform" => Sort::Platform,
            other => return Err(bad("sort", other)),
        };
        Ok(Self {
            state,
            priority,
            platform,
            sort,
        })
    }

    fn keeps(&self, t: &OpenTicket) -> bool {
        let state = match self.state {
            StateFilter::Open => true,
            StateFilter::Queued => t.ticket.status == TicketStatus::Queued,
            StateFilter::Claimed => t.ticket.status == TicketStatus::Claimed,
        };
        state
            && self.priority.is_none_or(|p| t.ticket.priority == p)
            && self
                .platform
                .as_deref()
                .is_none_or(|p| t.ticket.conversation.platform == p)
    }
}

/// The open tickets the filter keeps, in its order.
pub(crate) async fn load(
    app: &App,
    filter: &Filter,
    now: DateTime<Utc>,
) -> Result<Vec<OpenTicket>, Problem> {
    let mut tickets: Vec<OpenTicket> = app
        .service()
        .store()
        .open_tickets(now)
        .await
        .map_err(kefu_service::ServiceError::from)?
        .into_iter()
        .filter(|t| filter.keeps(t))
        .collect();
    // Stable sorts: ties keep the store's order (most urgent, then oldest).
    match filter.sort {
        Sort::Priority => {}
        Sort::Waiting => tickets.sort_by_key(|t| std::cmp::Reverse(t.waiting)),
        Sort::Platform => {
            tickets.sort_by(|a, b| {
                a.ticket
                    .conversation
                    .platform
                    .cmp(&b.ticket.conversation.platform)
            });
        }
    }
    Ok(tickets)
}

fn rows(tickets: &[OpenTicket]) -> Markup {
    html! {
        @for t in tickets {
            @let ticket = &t.ticket;
            tr data-ticket=(ticket.id) class={ "prio-" (ticket.priority.as_str()) " state-" (ticket.status.as_str()) } {
                td.code { a href={ "/tickets/" (ticket.id) } { (ticket.code) } }
                td.priority { span class={ "badge prio-" (ticket.priority.as_str()) } { (ticket.priority.as_str()) } }
                td.state { span class={ "badge state-" (ticket.status.as_str()) } { (ticket.status.as_str()) } }
                td.platform { (ticket.conversation.platform) }
                td.user { (ticket.user_name) }
                td.intent { (ticket.intent.as_deref().unwrap_or("—")) }
                td.waiting { (views::duration(t.waiting)) }
                td.holder { (ticket.assignee.as_deref().unwrap_or("—")) }
            }
        }
        @if tickets.is_empty() {
            tr.empty { td colspan="8" { "No tickets here. New ones appear as they arrive." } }
        }
    }
}

/// The table body with its version (a digest of the rows), as HTML.
pub(crate) fn tbody(tickets: &[OpenTicket]) -> (String, String) {
    let inner = rows(tickets).into_string();
    let version = views::version(&inner);
    let html = html! {
        tbody #queue-rows data-version=(version) { (PreEscaped(&inner)) }
    }
    .into_string();
    (html, version)
}

/// `GET /queue`.
pub(crate) async fn page(
    State(app): State<App>,
    PageStaff(session): PageStaff,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let filter = Filter::parse(query.as_deref())?;
    let tickets = load(&app, &filter, Utc::now()).await?;
    let (body, _) = tbody(&tickets);
    let mut platforms: Vec<String> = PLATFORMS.iter().map(|p| (*p).to_owned()).collect();
    for p in filter
        .platform
        .iter()
        .chain(tickets.iter().map(|t| &t.ticket.conversation.platform))
    {
        if !platforms.contains(p) {
            platforms.push(p.clone());
        }
    }
    let markup = html! {
        div.page-head {
            h1 { "Queue" }
            span #live-status .live-status { "" }
        }
        form #filters .filters method="get" action="/queue" {
            label { span { "State" }
                select name="state" {
                    option value="open" selected[filter.state == StateFilter::Open] { "open" }
                    option value="queued" selected[filter.state == StateFilter::Queued] { "queued" }
                    option value="claimed" selected[filter.state == StateFilter::Claimed] { "claimed" }
                }
            }
            label { span { "Priority" }
                select name="priority" {
                    option value="" selected[filter.priority.is_none()] { "any" }
                    @for p in PRIORITIES {
                        option value=(p.as_str()) selected[filter.priority == Some(p)] { (p.as_str()) }
                    }
                }
            }
            label { span { "Platform" }
                select name="platform" {
                    option value="" selected[filter.platform.is_none()] { "any" }
                    @for p in &platforms {
                        option value=(p) selected[filter.platform.as_deref() == Some(p.as_str())] { (p) }
                    }
                }
            }
            label { span { "Sort" }
                select name="sort" {
                    option value="priority" selected[filter.sort == Sort::Priority] { "priority" }
                    option value="waiting" selected[filter.sort == Sort::Waiting] { "waiting" }
                    option value="platform" selected[filter.sort == Sort::Platform] { "platform" }
                }
            }
            button type="submit" { "Apply" }
        }
        table #queue .queue data-live="queue" {
            thead {
                tr {
                    th { "Code" } th { "Priority" } th { "State" } th { "Platform" }
                    th { "User" } th { "Intent" } th { "Waiting" } th { "Holder" }
                }
            }
            (PreEscaped(body))
        }
    };
    Ok(views::page("Queue", Some(&session), markup))
}

/// `GET /queue/rows`: the table body alone, for the live page.
pub(crate) async fn rows_fragment(
    State(app): State<App>,
    PageStaff(_): PageStaff,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let filter = Filter::parse(query.as_deref())?;
    let tickets = load(&app, &filter, Utc::now()).await?;
    Ok(Html(tbody(&tickets).0).into_response())
}

/// One ticket of `/api/queue`.
#[derive(Debug, Serialize)]
struct QueueItem {
    id: i64,
    code: String,
    priority: &'static str,
    state: &'static str,
    platform: String,
    user: String,
    intent: Option<String>,
    waiting_secs: i64,
    holder: Option<String>,
}

/// `GET /api/queue` (the same filters as the page).
pub(crate) async fn api(
    State(app): State<App>,
    ApiStaff(_): ApiStaff,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let filter = Filter::parse(query.as_deref())?;
    let tickets = load(&app, &filter, Utc::now()).await?;
    let items: Vec<QueueItem> = tickets
        .into_iter()
        .map(|t| QueueItem {
            id: t.ticket.id,
            code: t.ticket.code,
            priority: t.ticket.priority.as_str(),
            state: t.ticket.status.as_str(),
            platform: t.ticket.conversation.platform,
            user: t.ticket.user_name,
            intent: t.ticket.intent,
            waiting_secs: t.waiting.num_seconds().max(0),
            holder: t.ticket.assignee,
        })
        .collect();
    Ok(Json(items).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_refuse_unknown_values() {
        assert_eq!(Filter::parse(None).ok(), Some(Filter::default()));
        let f = Filter::parse(Some(
            "state=queued&priority=urgent&platform=discord&sort=waiting",
        ))
        .ok();
        assert_eq!(
            f,
            Some(Filter {
                state: StateFilter::Queued,
                priority: Some(Priority::Urgent),
                platform: Some("discord".into()),
                sort: Sort::Waiting,
            })
        );
        assert_eq!(
            Filter::parse(Some("state=&priority=&platform=&sort=")).ok(),
            Some(Filter::default())
        );
        for bad in [
            "state=gone",
            "priority=max",
            "sort=name",
            "platform=%3Cx%3E",
        ] {
            assert!(Filter::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
