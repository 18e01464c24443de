//! KB suggestions for leads: what `kefu kb suggest` suggests (`/suggestions`, with an accept and
//! a reject form per suggestion, answered by a redirect back with a notice) and the JSON twins
//! under `/api/suggestions`. The work — computing the suggestions, writing the KB files,
//! recording the decision — is the configured [`KbCurator`]'s.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use crate::auth::{ApiStaff, FormFields, PageStaff, check_csrf};
use crate::problem::{ApiError, PageError, Problem};
use crate::{App, KbCurator, StaffAccount, views};

/// What the page says when no curator is configured.
const NO_KB: &str = "Suggestions need the KB: served by kefu run (kefu console alone has none).";

fn lead_only(staff: &StaffAccount) -> Result<(), Problem> {
    if staff.role.is_lead() {
        Ok(())
    } else {
        Err(Problem::Forbidden("Suggestions are for leads."))
    }
}

/// A suggestion id from the path: hexadecimal, lower-cased; anything else is a bad request.
fn suggestion_id(raw: &str) -> Result<String, Problem> {
    let id = raw.trim().to_ascii_lowercase();
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(Problem::BadRequest(
            "A suggestion id is a short hexadecimal code, as the suggestions list shows."
                .to_owned(),
        ))
    }
}

fn curator(app: &App) -> Option<Arc<dyn KbCurator>> {
    app.config().kb_curator.clone()
}

/// `GET /suggestions` (leads only).
pub(crate) async fn page(
    State(app): State<App>,
    PageStaff(session): PageStaff,
) -> Result<Response, PageError> {
    lead_only(&session.staff)?;
    let notice = app.take_notice(&session.csrf);
    let (status, listed) = match curator(&app) {
        None => (StatusCode::OK, Err(NO_KB.to_owned())),
        Some(c) => match c.suggestions().await {
            Ok(list) => (StatusCode::OK, Ok(list)),
            Err(e) => {
                tracing::error!(error = %e, "console: cannot compute the KB suggestions");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Err(format!("The suggestions could not be computed: {e}")),
                )
            }
        },
    };
    let csrf = &session.csrf;
    let body = html! {
        div.page-head { h1 { "KB suggestions" } }
        @match &notice {
            Some((true, text)) => div #notice .notice.ok role="status" { (text) },
            Some((false, text)) => div #notice .notice.refused role="alert" { (text) },
            None => div #notice .notice role="status" {},
        }
        @match &listed {
            Err(why) => p #no-suggestions .muted { (why) },
            Ok(list) => {
                p.muted {
                    "What the labels staff gave and the questions the bot could not answer suggest "
                    "(as kefu kb suggest). Accept writes a suggestion into the KB files (the bot "
                    "reloads them); reject means it is not suggested again."
                }
                table #suggestions .suggestions {
                    thead { tr { th { "Kind" } th { "Suggestion" } th { "Questions" } th { "Expected effect" } th { "Decide" } } }
                    tbody {
                        @for s in list {
                            tr data-suggestion=(s.id) {
                                td.kind { (s.kind) br; span.code { (s.id) } }
                                td.summary {
                                    (s.summary)
                                    @if let Some(intent) = &s.intent { br; span.muted.intent { (intent) } }
                                }
                                td.texts { ul { @for t in &s.texts { li { (t) } } } }
                                td class={ "effect " (if s.positive { "better" } else { "no-better" }) } { (s.effect) }
                                td.actions {
                                    form.accept method="post" action={ "/suggestions/" (s.id) "/accept" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" { "Accept" }
                                    }
                                    form.reject method="post" action={ "/suggestions/" (s.id) "/reject" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" { "Reject" }
                                    }
                                }
                            }
                        }
                        @if list.is_empty() {
                            tr.empty { td colspan="5" { "None: nothing to suggest just now." } }
                        }
                    }
                }
            }
        }
    };
    Ok((status, views::page("Suggestions", Some(&session), body)).into_response())
}

/// `POST /suggestions/ID/accept|reject` (leads only): the decision, then back to the page,
/// whose notice says what was done or why not.
async fn decide_from_page(
    app: App,
    session: crate::StaffSession,
    raw: String,
    headers: HeaderMap,
    body: Bytes,
    accept: bool,
) -> Result<Response, PageError> {
    lead_only(&session.staff)?;
    let form = FormFields::parse(&headers, &body);
    check_csrf(&app, &headers, Some(&session), Some(&form))?;
    let id = suggestion_id(&raw)?;
    if let Some(c) = curator(&app) {
        let notice = match c.decide(&id, accept, &session.staff.name).await {
            Ok(done) => (true, done),
            Err(e) => (false, format!("Not done: {e}")),
        };
        app.set_notice(&session.csrf, notice);
    }
    Ok(Redirect::to("/suggestions").into_response())
}

/// `POST /suggestions/ID/accept`.
pub(crate) async fn accept(
    State(app): State<App>,
    PageStaff(session): PageStaff,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    decide_from_page(app, session, raw, headers, body, true).await
}

/// `POST /suggestions/ID/reject`.
pub(crate) async fn reject(
    State(app): State<App>,
    PageStaff(session): PageStaff,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    decide_from_page(app, session, raw, headers, body, false).await
}

/// `GET /api/suggestions` (leads only): `{"suggestions": […]}`.
pub(crate) async fn api(
    State(app): State<App>,
    ApiStaff(who): ApiStaff,
) -> Result<Response, ApiError> {
    lead_only(who.staff())?;
    let c = curator(&app).ok_or(Problem::NoKb)?;
    let list = c.suggestions().await.map_err(|e| {
        tracing::error!(error = %e, "console: cannot compute the KB suggestions");
        Problem::Internal
    })?;
    Ok(Json(serde_json::json!({ "suggestions": list })).into_response())
}

async fn decide_from_api(
    app: App,
    who: crate::auth::Who,
    raw: String,
    headers: HeaderMap,
    accept: bool,
) -> Result<Response, ApiError> {
    lead_only(who.staff())?;
    check_csrf(&app, &headers, who.session(), None)?;
    let id = suggestion_id(&raw)?;
    let c = curator(&app).ok_or(Problem::NoKb)?;
    let done = c
        .decide(&id, accept, &who.staff().name)
        .await
        .map_err(Problem::Conflict)?;
    Ok(Json(serde_json::json!({ "ok": true, "done": done })).into_response())
}

/// `POST /api/suggestions/ID/accept`: `{"ok": true, "done": SUMMARY}`.
pub(crate) async fn api_accept(
    State(app): State<App>,
    ApiStaff(who): ApiStaff,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    decide_from_api(app, who, raw, headers, true).await
}

/// `POST /api/suggestions/ID/reject`: `{"ok": true, "done": SUMMARY}`.
pub(crate) async fn api_reject(
    State(app): State<App>,
    ApiStaff(who): ApiStaff,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    decide_from_api(app, who, raw, headers, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_hex() {
        assert_eq!(suggestion_id("ABCD1234"), Ok("abcd1234".to_owned()));
        for bad in ["", "xyz", "a b", &"a".repeat(65)] {
            assert!(suggestion_id(bad).is_err(), "{bad}");
        }
    }
}
