//! Who is asking: the session cookie (set at login) or an API token (`Authorization: Bearer`),
//! and the checks a state-changing request with a session cookie passes — the CSRF token
//! (a form field `csrf` or the header `X-CSRF-Token`) and the `Origin` header, when present.
//! Requests with an API token carry no cookie a browser would add on its own, so they need no
//! CSRF token.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::html;

use crate::problem::{ApiError, PageError, Problem};
use crate::{App, LoginOutcome, StaffAccount, StaffSession, views};

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "kefu_session";

/// The longest session cookie or API token looked up (longer ones are refused unread).
const MAX_TOKEN: usize = 256;
/// The longest staff name and password a login form may carry.
const MAX_NAME: usize = 64;
const MAX_PASSWORD: usize = 1024;

/// Who made a request.
#[derive(Debug, Clone)]
pub(crate) enum Who {
    /// A browser with a session cookie.
    Session(StaffSession),
    /// A client with an API token (the account, the token).
    Token(StaffAccount, String),
}

impl Who {
    pub(crate) fn staff(&self) -> &StaffAccount {
        match self {
            Self::Session(s) => &s.staff,
            Self::Token(a, _) => a,
        }
    }

    pub(crate) fn session(&self) -> Option<&StaffSession> {
        match self {
            Self::Session(s) => Some(s),
            Self::Token(..) => None,
        }
    }
}

/// The value of the cookie `name`, from every `Cookie` header.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Who sent these headers: an API token when `bearer` allows one and an `Authorization` header
/// is present (a wrong one is not retried as a cookie), else the session cookie. `None`: nobody
/// known.
pub(crate) async fn identify(
    app: &App,
    headers: &HeaderMap,
    bearer: bool,
) -> Result<Option<Who>, Problem> {
    if bearer && let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN);
        let Some(token) = token else {
            return Ok(None);
        };
        let account = app.service().staff_by_api_token(token).await?;
        return Ok(account.map(|a| Who::Token(a, token.to_owned())));
    }
    let Some(token) =
        cookie(headers, SESSION_COOKIE).filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN)
    else {
        return Ok(None);
    };
    let session = app.service().staff_session(token, Utc::now()).await?;
    Ok(session.map(Who::Session))
}

/// A browser page's signed-in staff member (session cookie only); without one the request is
/// redirected to the login page.
#[derive(Debug, Clone)]
pub(crate) struct PageStaff(pub(crate) StaffSession);

impl FromRequestParts<App> for PageStaff {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        match identify(app, &parts.headers, false).await? {
            Some(Who::Session(s)) => Ok(Self(s)),
            _ => Err(PageError(Problem::Unauthenticated)),
        }
    }
}

/// An API or event-stream client: a session cookie or an API token; without one, 401.
#[derive(Debug, Clone)]
pub(crate) struct ApiStaff(pub(crate) Who);

impl FromRequestParts<App> for ApiStaff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        match identify(app, &parts.headers, true).await? {
            Some(who) => Ok(Self(who)),
            None => Err(ApiError(Problem::Unauthenticated)),
        }
    }
}

/// The client's IP address for login throttling: the peer address, or, with
/// `trust_forwarded_for`, the last `X-Forwarded-For` entry (the one the proxy added) when it is
/// an IP address; "unknown" when the router was served without connection info.
#[derive(Debug, Clone)]
pub(crate) struct PeerIp(pub(crate) String);

impl FromRequestParts<App> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        if app.config().trust_forwarded_for
            && let Some(ip) = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .last()
                .and_then(|last| last.trim().parse::<std::net::IpAddr>().ok())
        {
            return Ok(Self(ip.to_string()));
        }
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string()),
        ))
    }
}

/// The fields of a form body (`application/x-www-form-urlencoded`); any other body has none.
#[derive(Debug, Default)]
pub(crate) struct FormFields(Vec<(String, String)>);

impl FormFields {
    pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Self {
        let urlencoded = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';').next().is_some_and(|m| {
                    m.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
        if !urlencoded {
            return Self::default();
        }
        Self(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether the `Origin` header, when present, names this site: the request's `Host`, or the
/// configured public URL's origin. A request from another site (or an opaque `null` origin), or
/// one the browser marks `Sec-Fetch-Site: cross-site`, is refused.
pub(crate) fn check_origin(app: &App, headers: &HeaderMap) -> Result<(), Problem> {
    const REFUSED: Problem =
        Problem::Forbidden("This request came from another site and was refused.");
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
    {
        return Err(REFUSED);
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().map_err(|_| REFUSED)?.trim();
    if app
        .config()
        .public_origin()
        .is_some_and(|o| o.eq_ignore_ascii_case(origin.trim_end_matches('/')))
    {
        return Ok(());
    }
    let (scheme, authority) = origin.split_once("://").ok_or(REFUSED)?;
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or(REFUSED)?
        .trim();
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return Err(REFUSED),
    };
    let same = |a: &str, b: &str| {
        a.eq_ignore_ascii_case(b)
            || format!("{a}{default_port}").eq_ignore_ascii_case(b)
            || format!("{b}{default_port}").eq_ignore_ascii_case(a)
    };
    if !authority.is_empty() && same(authority, host) {
        Ok(())
    } else {
        Err(REFUSED)
    }
}

/// The checks of a state-changing request: none with an API token; with a session, the
/// `Origin` check and the CSRF token (the header `X-CSRF-Token` or the form field `csrf`).
pub(crate) fn check_csrf(
    app: &App,
    headers: &HeaderMap,
    who: Option<&StaffSession>,
    form: Option<&FormFields>,
) -> Result<(), Problem> {
    let Some(session) = who else {
        return Ok(());
    };
    check_origin(app, headers)?;
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| form.and_then(|f| f.get("csrf")));
    match sent {
        Some(token) if same_secret(token.trim(), &session.csrf) => Ok(()),
        _ => Err(Problem::Forbidden(
            "The form's security token is missing or stale: reload the page and try again.",
        )),
    }
}

/// Compares two secrets in time that depends only on their lengths.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !b.is_empty()
        && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The `Set-Cookie` value that stores `token` (or, with `None`, clears the cookie).
fn session_cookie(app: &App, token: Option<&str>, max_age: i64) -> HeaderValue {
    let secure = if app.config().secure() {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        token.unwrap_or(""),
        max_age.max(0),
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| {
        HeaderValue::from_static("kefu_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
    })
}

/// `GET /`: the queue, or the login page.
pub(crate) async fn home(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Redirect, PageError> {
    Ok(match identify(&app, &headers, false).await? {
        Some(_) => Redirect::to("/queue"),
        None => Redirect::to("/login"),
    })
}

fn login_form(status: StatusCode, name: &str, error: Option<&str>) -> Response {
    let body = html! {
        section.login {
            h1 { "Sign in" }
            p.hint { "Kefu staff console" }
            @if let Some(error) = error {
                p #error .error role="alert" { (error) }
            }
            form #login method="post" action="/login" {
                label {
                    span { "Name" }
                    input type="text" name="name" value=(name) autocomplete="username" required autofocus maxlength="64";
                }
                label {
                    span { "Password" }
                    input type="password" name="password" autocomplete="current-password" required;
                }
                button.primary type="submit" { "Sign in" }
            }
        }
    };
    (status, views::page("Sign in", None, body)).into_response()
}

/// `GET /login`: the form (or the queue, when already signed in).
pub(crate) async fn login_page(State(app): State<App>, headers: HeaderMap) -> Response {
    match identify(&app, &headers, false).await {
        Ok(Some(_)) => Redirect::to("/queue").into_response(),
        Ok(None) => login_form(StatusCode::OK, "", None),
        Err(p) => p.page(),
    }
}

/// `POST /login`: signs in and sets the session cookie; 401 for a wrong name or password, 429
/// while throttled, 403 from another site.
pub(crate) async fn login(
    State(app): State<App>,
    PeerIp(ip): PeerIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(p) = check_origin(&app, &headers) {
        return p.page();
    }
    let form = FormFields::parse(&headers, &body);
    let (Some(name), Some(password)) = (form.get("name"), form.get("password")) else {
        return login_form(
            StatusCode::BAD_REQUEST,
            "",
            Some("Enter your name and password."),
        );
    };
    let name = name.trim();
    if name.is_empty()
        || password.is_empty()
        || name.chars().count() > MAX_NAME
        || password.len() > MAX_PASSWORD
    {
        return login_form(
            StatusCode::BAD_REQUEST,
            "",
            Some("Enter your name and password."),
        );
    }
    let now = Utc::now();
    match app.service().login(name, password, &ip, now).await {
        Ok(LoginOutcome::LoggedIn(session)) => {
            let max_age = (session.expires_at - now).num_seconds();
            let mut response = Redirect::to("/queue").into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(&app, Some(&session.token), max_age),
            );
            tracing::info!(staff = %session.staff.name, "console: signed in");
            response
        }
        Ok(LoginOutcome::Refused) => login_form(
            StatusCode::UNAUTHORIZED,
            name,
            Some("Wrong name or password."),
        ),
        Ok(LoginOutcome::Throttled { retry_after }) => {
            let secs = retry_after.num_seconds().max(1);
            let minutes = (secs + 59) / 60;
            tracing::warn!(staff = %name, ip = %ip, "console: login throttled");
            let mut response = login_form(
                StatusCode::TOO_MANY_REQUESTS,
                name,
                Some(&format!(
                    "Too many failed attempts. Try again in {minutes} min."
                )),
            );
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
        Err(e) => Problem::from(e).page(),
    }
}

/// `POST /logout`: ends the session and clears the cookie.
pub(crate) async fn logout(
    State(app): State<App>,
    PageStaff(session): PageStaff,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = FormFields::parse(&headers, &body);
    check_csrf(&app, &headers, Some(&session), Some(&form))?;
    app.service().logout(&session.token).await?;
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&app, None, 0));
    Ok(response)
}

/// `GET /api/me`.
pub(crate) async fn api_me(ApiStaff(who): ApiStaff) -> Response {
    let staff = who.staff();
    Json(serde_json::json!({ "name": staff.name, "role": staff.role.as_str() })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; kefu_session=abc ; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1"));
        h.append(header::COOKIE, HeaderValue::from_static("kefu_session=xyz"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&HeaderMap::new(), SESSION_COOKIE), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", ""));
    }

    #[test]
    fn form_fields_need_the_form_content_type() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=UTF-8"),
        );
        let f = FormFields::parse(&h, b"csrf=x%20y&text=a+b&csrf=z");
        assert_eq!(f.get("csrf"), Some("x y"));
        assert_eq!(f.get("text"), Some("a b"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(FormFields::parse(&h, b"csrf=x").get("csrf"), None);
    }
}
