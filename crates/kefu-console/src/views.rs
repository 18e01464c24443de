//! The page layout and the formatting the pages share.

use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use maud::{DOCTYPE, Markup, html};
use sha2::{Digest, Sha256};

use crate::StaffSession;

/// A whole page: the head (style sheet, script), the navigation when someone is signed in
/// (Queue, Reports and Suggestions for leads, the staff member's name, Logout), then `body`.
pub(crate) fn page(title: &str, session: Option<&StaffSession>, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Kefu console" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/static/console.css";
                script src="/static/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/queue" { "Kefu" span.sub { "console" } }
                    @if let Some(s) = session {
                        nav {
                            a href="/queue" { "Queue" }
                            @if s.staff.role.is_lead() {
                                a href="/reports" { "Reports" }
                                a href="/suggestions" { "Suggestions" }
                            }
                            span.me #me title=(s.staff.role.as_str()) { (s.staff.name) }
                            form #logout method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button.link type="submit" { "Logout" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// How long, for people: "<1 min", "12 min", "3 h 05 min", "2 d 4 h". Minutes at the finest,
/// so a live page changes at most once a minute because time passed.
pub(crate) fn duration(d: TimeDelta) -> String {
    let minutes = d.num_minutes().max(0);
    if minutes < 1 {
        "<1 min".to_owned()
    } else if minutes < 60 {
        format!("{minutes} min")
    } else if minutes < 24 * 60 {
        format!("{} h {:02} min", minutes / 60, minutes % 60)
    } else {
        format!("{} d {} h", minutes / (24 * 60), minutes % (24 * 60) / 60)
    }
}

/// A duration in seconds to the second, for the reports' medians: "45 s", "4 min 12 s",
/// "2 h 03 min".
pub(crate) fn seconds(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 60 {
        format!("{secs} s")
    } else if secs < 3600 {
        format!("{} min {:02} s", secs / 60, secs % 60)
    } else if secs < 86_400 {
        format!("{} h {:02} min", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600)
    }
}

/// A time as UTC, to the minute.
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The version of a fragment: a short digest of its HTML.
pub(crate) fn version(html: &str) -> String {
    let digest = Sha256::digest(html.as_bytes());
    digest.iter().take(10).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(TimeDelta::seconds(30)), "<1 min");
        assert_eq!(duration(TimeDelta::seconds(-5)), "<1 min");
        assert_eq!(duration(TimeDelta::minutes(12)), "12 min");
        assert_eq!(duration(TimeDelta::minutes(185)), "3 h 05 min");
        assert_eq!(duration(TimeDelta::hours(52)), "2 d 4 h");
        assert_eq!(seconds(45), "45 s");
        assert_eq!(seconds(252), "4 min 12 s");
        assert_eq!(seconds(7380), "2 h 03 min");
    }

    #[test]
    fn versions_differ_with_the_html() {
        assert_eq!(version("a").len(), 20);
        assert_ne!(version("a"), version("b"));
        assert_eq!(version("a"), version("a"));
    }
}
