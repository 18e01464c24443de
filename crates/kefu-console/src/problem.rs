//! What a failed request answers: the same problem is an HTML page for a browser route and a
//! JSON error under `/api/` and `/events/`.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use kefu_service::{ServiceError, error_chain};
use maud::html;

use crate::views;

/// Why a request was not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// No valid session or token: a page redirects to the login page, the API answers 401.
    Unauthenticated,
    /// Signed in, but not allowed: a lead-only page, a failed CSRF or `Origin` check.
    Forbidden(&'static str),
    /// No such page or ticket.
    NotFound,
    /// The request itself is malformed (a form, a query, a JSON body).
    BadRequest(String),
    /// The path exists, the method does not (a GET of an action).
    MethodNotAllowed,
    /// The request was understood but could not be done (e.g. a suggestion that is no longer
    /// open): why.
    Conflict(String),
    /// A suggestions route, and no KB to work on (no [`crate::KbCurator`] configured).
    NoKb,
    /// The database or the service failed (logged where it happened).
    Internal,
}

impl Problem {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound | Self::NoKb => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The answer for a browser route.
    pub(crate) fn page(self) -> Response {
        let status = self.status();
        let (title, text) = match &self {
            Self::Unauthenticated => return Redirect::to("/login").into_response(),
            Self::Forbidden(why) => ("Forbidden", (*why).to_owned()),
            Self::NotFound => (
                "Not found",
                "There is no such page or ticket.".to_owned(),
            ),
            Self::BadRequest(why) => ("Bad request", why.clone()),
            Self::Conflict(why) => ("Not done", why.clone()),
            Self::NoKb => (
                "Not found",
                "Suggestions need the KB: served by kefu run.".to_owned(),
            ),
            Self::MethodNotAllowed => (
                "Not allowed",
                "This address does not answer that kind of request.".to_owned(),
            ),
            Self::Internal => (
                "Something went wrong",
                "The console could not do that just now (the error is logged). Try again in a moment."
                    .to_owned(),
            ),
        };
        let body = html! {
            section.problem {
                h1 { (title) }
                p #error { (text) }
                p { a href="/queue" { "Back to the queue" } }
            }
        };
        (status, views::page(title, None, body)).into_response()
    }

    /// The answer for the JSON API and the event streams.
    pub(crate) fn api(self) -> Response {
        let status = self.status();
        let body = match &self {
            Self::Unauthenticated => serde_json::json!({ "error": "unauthorized" }),
            Self::Forbidden(why) => serde_json::json!({ "error": "forbidden", "detail": why }),
            Self::NotFound => serde_json::json!({ "error": "not_found" }),
            Self::BadRequest(why) => serde_json::json!({ "error": "bad_request", "detail": why }),
            Self::Conflict(why) => serde_json::json!({ "error": "conflict", "detail": why }),
            Self::NoKb => serde_json::json!({ "error": "no_kb" }),
            Self::MethodNotAllowed => serde_json::json!({ "error": "method_not_allowed" }),
            Self::Internal => serde_json::json!({ "error": "internal" }),
        };
        let mut response = (status, Json(body)).into_response();
        if self == Self::Unauthenticated {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Self {
        tracing::error!(error = %error_chain(&e), "console: the service failed");
        Self::Internal
    }
}

/// A [`Problem`] answered as a page.
#[derive(Debug)]
pub(crate) struct PageError(pub(crate) Problem);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.page()
    }
}

impl<E: Into<Problem>> From<E> for PageError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

/// A [`Problem`] answered as JSON.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) Problem);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.api()
    }
}

impl<E: Into<Problem>> From<E> for ApiError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}
