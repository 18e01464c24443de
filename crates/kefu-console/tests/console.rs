//! The console over real HTTP: a real service on a SQLite file, the router on a free port, a
//! reqwest client in the browser's place.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Console, PASSWORD, client, csrf_of, location, user};
use kefu_console::ConsoleConfig;
use kefu_core::model::TicketStatus;
use kefu_service::{LabelKind, StaffAction, StaffActor, StaffOutcome, StaffRole};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, RETRY_AFTER, SET_COOKIE};
use serde_json::{Value, json};

/// A 12-word BIP-39 phrase (a published test vector).
const SEED: &str = "legal winner thank year wave sausage worth useful legal winner thank yellow";

#[tokio::test]
async fn without_a_session_every_page_redirects_to_login_and_every_api_route_answers_401() {
    let c = Console::start().await;
    c.staff("alice", StaffRole::Lead).await;
    let id = c.escalate(&user(1), "user 1", "m1").await;
    let pages_get = [
        "/".to_owned(),
        "/queue".into(),
        "/queue?state=queued".into(),
        "/queue/rows".into(),
        format!("/tickets/{id}"),
        format!("/tickets/{id}/live"),
        "/tickets/999999".into(),
        "/reports".into(),
        "/no-such-page".into(),
        // An action's address with the wrong method.
        format!("/tickets/{id}/claim"),
    ];
    let pages_post = [
        "/logout".to_owned(),
        format!("/tickets/{id}/claim"),
        format!("/tickets/{id}/reply"),
        format!("/tickets/{id}/resolve"),
        format!("/tickets/{id}/release"),
        format!("/tickets/{id}/label"),
    ];
    let api_get = [
        "/api/me".to_owned(),
        "/api/queue".into(),
        format!("/api/tickets/{id}"),
        "/api/reports".into(),
        "/api/no-such-route".into(),
        format!("/api/tickets/{id}/claim"),
        "/events/queue".into(),
        format!("/events/tickets/{id}"),
    ];
    let api_post = [
        format!("/api/tickets/{id}/claim"),
        format!("/api/tickets/{id}/reply"),
        format!("/api/tickets/{id}/resolve"),
        format!("/api/tickets/{id}/release"),
        format!("/api/tickets/{id}/label"),
    ];
    // No credentials, a made-up session cookie, a made-up API token: all the same.
    for variant in ["none", "cookie", "bearer"] {
        let http = client();
        let with = |r: reqwest::RequestBuilder| match variant {
            "cookie" => r.header("cookie", "kefu_session=forged-session-token"),
            "bearer" => r.bearer_auth("forged-api-token"),
            _ => r,
        };
        for path in &pages_get {
            let r = with(http.get(c.url(path))).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "GET {path} ({variant})");
            assert_eq!(location(&r), "/login", "GET {path} ({variant})");
        }
        for path in &pages_post {
            let r = with(http.post(c.url(path)))
                .form(&[("csrf", "x"), ("text", "hello")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "POST {path} ({variant})");
            assert_eq!(location(&r), "/login", "POST {path} ({variant})");
        }
        for path in &api_get {
            let r = with(http.get(c.url(path))).send().await.unwrap();
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "GET {path} ({variant})"
            );
        }
        for path in &api_post {
            let r = with(http.post(c.url(path)))
                .json(&json!({ "text": "hello" }))
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "POST {path} ({variant})"
            );
        }
    }
    // Nothing happened to the ticket.
    let t = c.service.store().ticket(id).await.unwrap().unwrap();
    assert_eq!((t.status, t.assignee), (TicketStatus::Queued, None));
    // What needs no session: the login page and the static assets.
    let http = client();
    for (path, kind) in [
        ("/login", "text/html"),
        ("/static/console.css", "text/css"),
        ("/static/console.js", "text/javascript"),
    ] {
        let r = http.get(c.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
    }
}

#[tokio::test]
async fn an_agent_gets_403_on_the_reports_and_a_lead_sees_them() {
    let c = Console::start().await;
    c.staff("andy", StaffRole::Agent).await;
    c.staff("lena", StaffRole::Lead).await;
    let (agent, _) = c.login("andy").await;
    let queue = agent
        .get(c.url("/queue"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !queue.contains("href=\"/reports\""),
        "no Reports link for an agent"
    );
    let r = agent.get(c.url("/reports")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = agent.get(c.url("/api/reports")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let token = c
        .service
        .issue_api_token("andy", Utc::now())
        .await
        .unwrap()
        .unwrap();
    let r = client()
        .get(c.url("/api/reports?days=7"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "with an API token too");

    let (lead, _) = c.login("lena").await;
    let queue = lead
        .get(c.url("/queue"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        queue.contains("href=\"/reports\""),
        "a Reports link for a lead"
    );
    let r = lead.get(c.url("/reports")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    for id in [
        "<svg id=\"chart-tickets\"",
        "<svg id=\"chart-decisions\"",
        "<svg id=\"chart-ratings\"",
        "id=\"median-first-response\"",
        "id=\"median-resolution\"",
        "id=\"misses\"",
    ] {
        assert!(page.contains(id), "{id} on the reports page");
    }
    let r = lead.get(c.url("/api/reports?days=7")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["days"].as_array().map(Vec::len), Some(7), "{report}");
    let r = lead
        .get(c.url("/api/reports?days=zero"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_forged_cross_site_post_is_refused_and_changes_nothing() {
    let c = Console::start().await;
    c.staff("alice", StaffRole::Agent).await;
    let id = c.escalate(&user(1), "user 1", "m1").await;
    let (http, csrf) = c.login("alice").await;
    let claim = c.url(&format!("/tickets/{id}/claim"));
    let reply = c.url(&format!("/tickets/{id}/reply"));
    let forged = [
        ("no token", http.post(&claim).form(&[("x", "1")])),
        (
            "a wrong token",
            http.post(&claim).form(&[("csrf", "0123456789abcdef")]),
        ),
        (
            "a token in a text/plain body",
            http.post(&reply)
                .header("content-type", "text/plain")
                .body(format!("csrf={csrf}&text=hello")),
        ),
        (
            "the right token from another site",
            http.post(&reply)
                .header("origin", "https://evil.example")
                .form(&[("csrf", csrf.as_str()), ("text", "hello")]),
        ),
        (
            "an opaque origin",
            http.post(&claim)
                .header("origin", "null")
                .form(&[("csrf", csrf.as_str())]),
        ),
        (
            "the API with the cookie but no token",
            http.post(c.url(&format!("/api/tickets/{id}/claim"))),
        ),
        (
            "the API with the cookie and another site's origin",
            http.post(c.url(&format!("/api/tickets/{id}/reply")))
                .header("x-csrf-token", &csrf)
                .header("origin", "http://evil.example")
                .json(&json!({ "text": "hello" })),
        ),
        ("logout without a token", http.post(c.url("/logout"))),
    ];
    for (what, request) in forged {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what}");
    }
    // A login posted from another site is refused too.
    let r = client()
        .post(c.url("/login"))
        .header("origin", "https://evil.example")
        .form(&[("name", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a cross-site login");
    assert!(r.headers().get(SET_COOKIE).is_none());

    // Nothing changed: the ticket waits, nobody wrote, the session lives.
    let t = c.service.store().ticket(id).await.unwrap().unwrap();
    assert_eq!((t.status, t.assignee), (TicketStatus::Queued, None));
    let outbox = c
        .service
        .store()
        .pending_outbox_for_conversation(&user(1), Utc::now())
        .await
        .unwrap();
    assert!(
        !outbox
            .iter()
            .any(|m| m.user_message().is_some_and(|o| o.text.contains("hello"))),
        "no reply went out: {outbox:?}"
    );
    let r = http.get(c.url("/api/me")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "still signed in");

    // The same requests from the console itself go through.
    let r = http
        .post(&claim)
        .header("origin", c.origin())
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/tickets/{id}?notice=claimed"));
    let t = c.service.store().ticket(id).await.unwrap().unwrap();
    assert_eq!(t.assignee.as_deref(), Some("alice"));
    let r = http
        .post(c.url(&format!("/api/tickets/{id}/release")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the API with the cookie and the header"
    );
}

#[tokio::test]
async fn markup_in_what_users_write_is_shown_as_text_on_the_ticket_and_in_the_queue() {
    let c = Console::start().await;
    c.staff("alice", StaffRole::Agent).await;
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(1)>";
    let u = user(1);
    c.say(&u, hostile, "m1", &format!("help {hostile} please"))
        .await;
    let id = c.escalate(&u, hostile, "m2").await;
    let (http, _) = c.login("alice").await;
    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;";
    for path in [
        format!("/tickets/{id}"),
        format!("/tickets/{id}/live"),
        "/queue".to_owned(),
        "/queue/rows".to_owned(),
    ] {
        let r = http.get(c.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        if !path.ends_with("/rows") && !path.ends_with("/live") {
            let csp = r.headers()[CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(csp.contains("script-src 'self'"), "{csp}");
        }
        let page = r.text().await.unwrap();
        assert!(
            page.contains(escaped),
            "{path} shows the markup as text:\n{page}"
        );
        assert!(!page.contains("<script>alert"), "{path}:\n{page}");
        assert!(!page.contains("<img src=x"), "{path}:\n{page}");
        assert!(!page.contains("onerror=alert(1)>"), "{path}");
        // The only script is the console's own file.
        assert_eq!(
            page.matches("<script").count(),
            page.matches("<script src=\"/static/console.js\"").count(),
            "{path}"
        );
    }
    let ticket: Value = http
        .get(c.url(&format!("/api/tickets/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ticket["user"],
        json!(hostile),
        "JSON carries the text as it is"
    );
}

/// Login throttling per address behind a proxy: with `trust_forwarded_for` the address the
/// proxy appended to `X-Forwarded-For` is counted (one client's failures do not lock out the
/// others); without it the header is ignored and the peer address counts, so a client cannot
/// dodge the limit by sending a header of its own.
#[tokio::test]
async fn behind_a_trusted_proxy_failed_logins_count_per_forwarded_address() {
    for trusted in [true, false] {
        let c = Console::start_configured(ConsoleConfig {
            public_url: String::new(),
            trust_forwarded_for: trusted,
            kb_curator: None,
        })
        .await;
        for n in 0..6 {
            c.staff(&format!("user{n}"), StaffRole::Agent).await;
        }
        let http = client();
        let attempt = |name: String, from: &'static str| {
            http.post(c.url("/login"))
                .header("X-Forwarded-For", format!("203.0.113.9, {from}"))
                .form(&[("name", name.as_str()), ("password", "wrong password")])
                .send()
        };
        // Five accounts, one failure each, all from 10.0.0.1: that address's limit.
        for n in 0..5 {
            let r = attempt(format!("user{n}"), "10.0.0.1").await.unwrap();
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "trusted={trusted} n={n}"
            );
        }
        let same = attempt("user5".into(), "10.0.0.1").await.unwrap();
        assert_eq!(
            same.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "trusted={trusted}"
        );
        let other = attempt("user5".into(), "10.0.0.2").await.unwrap();
        let expected = if trusted {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(other.status(), expected, "trusted={trusted}");
    }
}

#[tokio::test]
async fn five_wrong_passwords_and_the_next_attempt_gets_429() {
    let c = Console::start().await;
    c.staff("alice", StaffRole::Agent).await;
    let http = client();
    for attempt in 1..=5 {
        let r = http
            .post(c.url("/login"))
            .form(&[("name", "alice"), ("password", "wrong password")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {attempt}");
        assert!(r.headers().get(SET_COOKIE).is_none());
        let page = r.text().await.unwrap();
        assert!(page.contains("id=\"error\""), "{page}");
    }
    for password in ["wrong password", PASSWORD] {
        let r = http
            .post(c.url("/login"))
            .form(&[("name", "alice"), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "throttled");
        assert!(r.headers().get(RETRY_AFTER).is_some());
        assert!(
            r.headers().get(SET_COOKIE).is_none(),
            "not even the right password"
        );
        assert!(r.text().await.unwrap().contains("id=\"error\""));
    }
    // A missing field is a bad form, not a failed attempt.
    let r = client()
        .post(c.url("/login"))
        .form(&[("name", "bob")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

fn cookie_attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_for_the_whole_site_and_secure_over_https() {
    for (public_url, secure) in [
        ("https://support.example.com", true),
        ("http://127.0.0.1:8088", false),
        ("", false),
    ] {
        let c = Console::start_with(public_url).await;
        c.staff("alice", StaffRole::Agent).await;
        let r = client()
            .post(c.url("/login"))
            .form(&[("name", "alice"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&r), "/queue");
        let cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        let attributes = cookie_attributes(&cookie);
        assert!(attributes[0].starts_with("kefu_session="), "{cookie}");
        assert!(attributes[0].len() > "kefu_session=".len() + 16, "{cookie}");
        for wanted in ["httponly", "samesite=strict", "path=/"] {
            assert!(
                attributes.iter().any(|a| a == wanted),
                "{wanted} in {cookie}"
            );
        }
        assert_eq!(
            attributes.iter().any(|a| a == "secure"),
            secure,
            "Secure with {public_url:?}: {cookie}"
        );

        // Logging out clears the cookie (with the same attributes) and ends the session.
        let token = attributes[0]["kefu_session=".len()..].to_owned();
        let http = client();
        let page = http
            .get(c.url("/queue"))
            .header("cookie", format!("kefu_session={token}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = csrf_of(&page);
        let r = http
            .post(c.url("/logout"))
            .header("cookie", format!("kefu_session={token}"))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&r), "/login");
        let cleared = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        let attributes = cookie_attributes(&cleared);
        assert_eq!(attributes[0], "kefu_session=", "{cleared}");
        assert!(attributes.iter().any(|a| a == "max-age=0"), "{cleared}");
        assert_eq!(
            attributes.iter().any(|a| a == "secure"),
            secure,
            "{cleared}"
        );
        let r = http
            .get(c.url("/queue"))
            .header("cookie", format!("kefu_session={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "the session is gone");
    }
}

#[tokio::test]
async fn a_pasted_seed_phrase_never_reaches_the_ticket_page_its_live_fragment_or_the_api() {
    let c = Console::start().await;
    c.staff("alice", StaffRole::Agent).await;
    let u = user(1);
    c.say(
        &u,
        "user 1",
        "m1",
        &format!("my withdrawal is stuck, my seed phrase is {SEED}"),
    )
    .await;
    let id = c.escalate(&u, "user 1", "m2").await;
    c.say(&u, "user 1", "m3", SEED).await;
    let (http, _) = c.login("alice").await;
    let words: Vec<&str> = SEED.split(' ').collect();
    for path in [
        format!("/tickets/{id}"),
        format!("/tickets/{id}/live"),
        format!("/api/tickets/{id}"),
    ] {
        let r = http.get(c.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("my withdrawal is stuck"),
            "{path} shows the message:\n{body}"
        );
        for window in words.windows(3) {
            let run = window.join(" ");
            assert!(!body.contains(&run), "{path} shows {run:?}:\n{body}");
        }
        for word in ["sausage", "yellow", "useful"] {
            assert!(!body.contains(word), "{path} shows {word:?}:\n{body}");
        }
    }
}

#[tokio::test]
async fn an_api_token_reads_the_queue_and_claims_without_a_csrf_token() {
    let c = Console::start().await;
    c.staff("alice", StaffRole::Agent).await;
    let id = c.escalate(&user(1), "user 1", "m1").await;
    let token = c
        .service
        .issue_api_token("alice", Utc::now())
        .await
        .unwrap()
        .unwrap();
    let http = client();
    let me: Value = http
        .get(c.url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me, json!({ "name": "alice", "role": "agent" }));
    let r = http
        .get(c.url("/api/queue"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let queue: Value = r.json().await.unwrap();
    let item = &queue[0];
    assert_eq!(item["id"], json!(id), "{queue}");
    assert_eq!(item["state"], json!("queued"));
    assert_eq!(item["platform"], json!("telegram"));
    assert_eq!(item["user"], json!("user 1"));
    assert_eq!(item["holder"], Value::Null);
    for key in ["code", "priority", "intent", "waiting_secs"] {
        assert!(item.get(key).is_some(), "{key} in {item}");
    }
    // A POST with the token only: no cookie, no CSRF token, even with a foreign Origin.
    let r = http
        .post(c.url(&format!("/api/tickets/{id}/claim")))
        .bearer_auth(&token)
        .header("origin", "https://tools.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({ "ok": true }));
    let t = c.service.store().ticket(id).await.unwrap().unwrap();
    assert_eq!(
        (t.status, t.assignee.as_deref()),
        (TicketStatus::Claimed, Some("alice"))
    );
    let r = http
        .post(c.url(&format!("/api/tickets/{id}/reply")))
        .bearer_auth(&token)
        .json(&json!({ "text": "Looking at it now." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .post(c.url(&format!("/api/tickets/{id}/reply")))
        .bearer_auth(&token)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = http
        .post(c.url("/api/tickets/424242/claim"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = http
        .get(c.url("/api/queue"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn claiming_a_ticket_another_staff_member_holds_names_the_holder() {
    let c = Console::start().await;
    c.staff("alice", StaffRole::Agent).await;
    let id = c.escalate(&user(1), "user 1", "m1").await;
    let outcome = c
        .service
        .staff_action(
            &StaffActor::named("bob"),
            id,
            StaffAction::Claim,
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(outcome, StaffOutcome::Done);
    let (http, csrf) = c.login("alice").await;

    let r = http
        .post(c.url(&format!("/tickets/{id}/claim")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = location(&r);
    assert!(
        back.starts_with(&format!("/tickets/{id}?notice=")),
        "{back}"
    );
    let page = http
        .get(c.url(&back))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let notice_at = page.find("id=\"notice\"").expect("a #notice");
    let notice = &page[notice_at..notice_at + page[notice_at..].find("</div>").unwrap()];
    assert!(notice.contains("held by bob"), "{notice}");

    for verb in ["resolve", "release"] {
        let r = http
            .post(c.url(&format!("/tickets/{id}/{verb}")))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&r), format!("/tickets/{id}?notice=held"), "{verb}");
    }

    let token = c
        .service
        .issue_api_token("alice", Utc::now())
        .await
        .unwrap()
        .unwrap();
    let r = client()
        .post(c.url(&format!("/api/tickets/{id}/claim")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "error": "held", "holder": "bob" })
    );
    let t = c.service.store().ticket(id).await.unwrap().unwrap();
    assert_eq!(t.assignee.as_deref(), Some("bob"), "bob keeps it");
}

#[tokio::test]
async fn a_reply_from_the_console_claims_the_ticket_and_goes_to_the_users_outbox() {
    let c = Console::start().await;
    c.staff("alice", StaffRole::Agent).await;
    let u = user(1);
    let id = c.escalate(&u, "user 1", "m1").await;
    let (http, csrf) = c.login("alice").await;
    let text = "Hi, alice from support: <b>checking</b> your withdrawal now";
    let r = http
        .post(c.url(&format!("/tickets/{id}/reply")))
        .form(&[("csrf", csrf.as_str()), ("text", text)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/tickets/{id}?notice=replied"));
    let outbox = c
        .service
        .store()
        .pending_outbox_for_conversation(&u, Utc::now())
        .await
        .unwrap();
    assert!(
        outbox
            .iter()
            .any(|m| m.user_message().is_some_and(|o| o.text.contains(text))),
        "the reply waits for delivery to the user: {outbox:?}"
    );
    let t = c.service.store().ticket(id).await.unwrap().unwrap();
    assert_eq!(
        (t.status, t.assignee.as_deref()),
        (TicketStatus::Claimed, Some("alice"))
    );
    let page = http
        .get(c.url(&format!("/tickets/{id}?notice=replied")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("class=\"line staff\""), "{page}");
    assert!(page.contains("&lt;b&gt;checking&lt;/b&gt;"), "{page}");
    assert!(page.contains("<span id=\"holder\">alice</span>"), "{page}");
    // An empty reply is a bad form.
    let r = http
        .post(c.url(&format!("/tickets/{id}/reply")))
        .form(&[("csrf", csrf.as_str()), ("text", "   ")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_ids_are_404_wrong_methods_405_and_bad_queries_400() {
    let c = Console::start().await;
    c.staff("alice", StaffRole::Lead).await;
    let (http, csrf) = c.login("alice").await;
    for path in [
        "/tickets/abc",
        "/tickets/0",
        "/tickets/-3",
        "/tickets/999999",
        "/tickets/999999/live",
        "/tickets/99999999999999999999999",
        "/no-such-page",
    ] {
        let r = http.get(c.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(r.text().await.unwrap().contains("id=\"error\""), "{path}");
    }
    for path in [
        "/api/tickets/abc",
        "/api/tickets/999999",
        "/events/tickets/999999",
    ] {
        let r = http.get(c.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let r = http
        .post(c.url("/tickets/999999/claim"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for path in ["/tickets/1/claim", "/api/tickets/1/claim"] {
        let r = http.get(c.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "GET {path}");
    }
    for path in [
        "/queue?state=closed",
        "/queue?priority=extreme",
        "/queue?sort=name",
        "/queue/rows?state=closed",
        "/api/queue?state=closed",
        "/reports?days=0",
        "/reports?days=many",
    ] {
        let r = http.get(c.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
    }
}

#[tokio::test]
async fn the_queue_filters_and_sorts() {
    let c = Console::start().await;
    c.staff("alice", StaffRole::Agent).await;
    let first = c.escalate(&user(1), "user 1", "m1").await;
    let second = c.escalate(&user(2), "user 2", "m2").await;
    c.service
        .staff_action(
            &StaffActor::named("bob"),
            second,
            StaffAction::Claim,
            Utc::now(),
        )
        .await
        .unwrap();
    let (http, _) = c.login("alice").await;
    let ids = |v: &Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    let get = |q: &'static str| {
        let http = http.clone();
        let url = c.url(&format!("/api/queue{q}"));
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let mut both = ids(&get("").await);
    both.sort_unstable();
    assert_eq!(both, vec![first, second]);
    assert_eq!(ids(&get("?state=queued").await), vec![first]);
    assert_eq!(ids(&get("?state=claimed").await), vec![second]);
    assert_eq!(ids(&get("?platform=discord").await), Vec::<i64>::new());
    assert_eq!(ids(&get("?sort=waiting&state=open").await).len(), 2);
    let page = http
        .get(c.url("/queue?state=claimed"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("data-ticket=\"{second}\"")),
        "{page}"
    );
    assert!(
        !page.contains(&format!("data-ticket=\"{first}\"")),
        "{page}"
    );
    assert!(page.contains("<td class=\"holder\">bob</td>"), "{page}");
    assert!(
        page.contains(&format!(
            "<td class=\"code\"><a href=\"/tickets/{second}\">"
        )),
        "{page}"
    );
    assert!(
        page.contains("<option value=\"claimed\" selected>"),
        "{page}"
    );
}

/// Reads a server-sent event stream until an event named `change` arrives (or `within` passes):
/// its data.
async fn next_change(
    stream: &mut reqwest::Response,
    buffer: &mut String,
    within: Duration,
) -> Option<String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if event.lines().any(|l| l == "event: change") {
                return event
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .map(str::to_owned);
            }
            continue;
        }
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .ok()?;
        buffer.push_str(&String::from_utf8_lossy(&chunk.ok()??));
    }
}

#[tokio::test]
async fn the_event_streams_announce_changes_to_the_queue_and_to_a_ticket() {
    let c = Console::start().await;
    c.staff("alice", StaffRole::Agent).await;
    let u = user(1);
    let id = c.escalate(&u, "user 1", "m1").await;
    let (http, _) = c.login("alice").await;

    // The queue: the first event carries the version the page shows.
    let page = http
        .get(c.url("/queue"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut queue = http.get(c.url("/events/queue")).send().await.unwrap();
    assert_eq!(queue.status(), StatusCode::OK);
    assert!(
        queue.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buffer = String::new();
    let version = next_change(&mut queue, &mut buffer, Duration::from_secs(5))
        .await
        .expect("a first event");
    assert!(
        page.contains(&format!("data-version=\"{version}\"")),
        "{version}\n{page}"
    );
    // Nothing changes: no event.
    assert_eq!(
        next_change(&mut queue, &mut buffer, Duration::from_millis(2500)).await,
        None
    );
    // A new ticket: an event, and the rows have it.
    let other = c.escalate(&user(2), "user 2", "m2").await;
    let changed = next_change(&mut queue, &mut buffer, Duration::from_secs(5))
        .await
        .expect("an event for the new ticket");
    assert_ne!(changed, version);
    let rows = http
        .get(c.url("/queue/rows"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(rows.starts_with("<tbody id=\"queue-rows\""), "{rows}");
    assert!(rows.contains(&format!("data-ticket=\"{other}\"")), "{rows}");
    assert!(
        rows.contains(&format!("data-version=\"{changed}\"")),
        "{rows}"
    );
    drop(queue);

    // A ticket: the user writes, an event; the fragment has the line.
    let mut ticket = http
        .get(c.url(&format!("/events/tickets/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(ticket.status(), StatusCode::OK);
    let mut buffer = String::new();
    let first = next_change(&mut ticket, &mut buffer, Duration::from_secs(5))
        .await
        .expect("a first event");
    c.say(&u, "user 1", "m3", "is anyone there?").await;
    let changed = next_change(&mut ticket, &mut buffer, Duration::from_secs(5))
        .await
        .expect("an event for the new line");
    assert_ne!(first, changed);
    let live = http
        .get(c.url(&format!("/tickets/{id}/live")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(live.contains("is anyone there?"), "{live}");
    for part in ["id=\"state\"", "id=\"holder\"", "id=\"transcript\""] {
        assert!(live.contains(part), "{part} in {live}");
    }
    assert!(
        live.contains(&format!("data-version=\"{changed}\"")),
        "{live}"
    );
}

/// A gauge of the console's from the service's metrics.
fn gauge(c: &Console, name: &str) -> f64 {
    let text = c.service.metrics().encode();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in {text}"))
}

/// Waits (bounded) until the two gauges read `streams` and `polls`.
async fn gauges_reach(c: &Console, streams: f64, polls: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = (
            gauge(c, "kefu_console_event_streams"),
            gauge(c, "kefu_console_polls"),
        );
        if now == (streams, polls) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "streams and polls {now:?}, expected ({streams}, {polls})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn streams_of_one_page_share_one_poll_which_ends_with_its_last_stream() {
    let c = Console::start().await;
    c.staff("alice", StaffRole::Agent).await;
    let u = user(1);
    let id = c.escalate(&u, "user 1", "m1").await;
    let (http, _) = c.login("alice").await;
    gauges_reach(&c, 0.0, 0.0).await;

    // Five staff on the queue, one on the ticket, one on the queue filtered.
    let mut queues = Vec::new();
    for _ in 0..5 {
        let r = http.get(c.url("/events/queue")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        queues.push((r, String::new()));
    }
    let mut ticket = (
        http.get(c.url(&format!("/events/tickets/{id}")))
            .send()
            .await
            .unwrap(),
        String::new(),
    );
    let mut filtered = (
        http.get(c.url("/events/queue?state=queued"))
            .send()
            .await
            .unwrap(),
        String::new(),
    );
    let mut first = Vec::new();
    for (r, buffer) in &mut queues {
        first.push(
            next_change(r, buffer, Duration::from_secs(5))
                .await
                .expect("a first event"),
        );
    }
    assert!(first.iter().all(|v| *v == first[0]), "{first:?}");
    let ticket_first = next_change(&mut ticket.0, &mut ticket.1, Duration::from_secs(5))
        .await
        .expect("a first event");
    next_change(&mut filtered.0, &mut filtered.1, Duration::from_secs(5))
        .await
        .expect("a first event");
    // Seven streams, three pages watched: three polls.
    gauges_reach(&c, 7.0, 3.0).await;

    // A change reaches every stream of the page, once.
    c.escalate(&user(2), "user 2", "m2").await;
    let mut changed = Vec::new();
    for (r, buffer) in &mut queues {
        changed.push(
            next_change(r, buffer, Duration::from_secs(5))
                .await
                .expect("an event for the new ticket"),
        );
    }
    assert!(
        changed.iter().all(|v| *v == changed[0] && *v != first[0]),
        "{first:?} then {changed:?}"
    );
    // One stream leaves; its page's poll goes on for the others.
    let (gone, _) = queues.pop().unwrap();
    drop(gone);
    c.say(&u, "user 1", "m3", "还有人吗").await;
    let line = next_change(&mut ticket.0, &mut ticket.1, Duration::from_secs(5))
        .await
        .expect("an event for the new line");
    assert_ne!(line, ticket_first);
    gauges_reach(&c, 6.0, 3.0).await;

    // Everyone leaves: the streams notice at their next write (a change), the polls within a
    // second of their last stream.
    drop(queues);
    drop(ticket);
    drop(filtered);
    c.escalate(&user(3), "user 3", "m4").await;
    c.say(&u, "user 1", "m5", "在吗").await;
    gauges_reach(&c, 0.0, 0.0).await;
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let c = Console::start().await;
    c.staff("alice", StaffRole::Agent).await;
    let (http, _) = c.login("alice").await;
    for path in [
        "/login",
        "/queue",
        "/static/console.js",
        "/api/me",
        "/no-such-page",
    ] {
        let r = http.get(c.url(path)).send().await.unwrap();
        let h = r.headers();
        assert_eq!(
            h[CONTENT_SECURITY_POLICY],
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    }
    // The page has no inline script or handler, and no style attribute.
    let page = http
        .get(c.url("/queue"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>"), "{page}");
    assert!(
        !page.contains(" onclick") && !page.contains(" onchange"),
        "{page}"
    );
    assert!(!page.contains("style="), "{page}");
    assert!(page.contains("href=\"/queue\""), "the nav: {page}");
    assert!(
        page.contains("<span class=\"me\" id=\"me\""),
        "the staff name: {page}"
    );
}

#[tokio::test]
async fn a_graceful_shutdown_ends_the_open_event_streams() {
    let c = Console::start().await;
    c.staff("alice", StaffRole::Agent).await;
    // A second server on the same service, stopped by a signal.
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let app = kefu_console::router_with_shutdown(
        c.service.clone(),
        kefu_console::ConsoleConfig::default(),
        shutdown.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut signal = shutdown;
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = signal.wait_for(|stopped| *stopped).await;
        })
        .await
    });
    let cookie = {
        let r = client()
            .post(format!("http://{addr}/login"))
            .form(&[("name", "alice"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        r.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    };
    let mut events = client()
        .get(format!("http://{addr}/events/queue"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    let mut buffer = String::new();
    assert!(
        next_change(&mut events, &mut buffer, Duration::from_secs(5))
            .await
            .is_some()
    );
    stop.send(true).unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "the server stopped with a stream open: {stopped:?}"
    );
    // The stream ended.
    let rest = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(Some(_)) = events.chunk().await {}
    })
    .await;
    assert!(rest.is_ok(), "the stream ended");
}

#[tokio::test]
async fn a_resolved_ticket_is_labelled_from_the_picker_or_the_api_and_never_without_the_token() {
    let c = Console::start().await;
    c.staff("alice", StaffRole::Agent).await;
    c.say(&user(1), "user 1", "q1", "我的账户被冻结了怎么办")
        .await;
    let id = c.escalate(&user(1), "user 1", "m1").await;
    let (http, csrf) = c.login("alice").await;
    let page_url = c.url(&format!("/tickets/{id}"));
    let page = http
        .get(&page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"label-current\""), "the current label");
    assert!(page.contains("Not labelled."));
    assert!(
        !page.contains(" id=\"label\""),
        "no picker before the resolve"
    );

    c.service.claim(id, "alice", Utc::now()).await.unwrap();
    c.service.resolve(id, "alice", Utc::now()).await.unwrap();
    let page = http
        .get(&page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form_at = page.find(" id=\"label\"").expect("the picker");
    let form_at = page[..form_at].rfind("<form").unwrap();
    let form = &page[form_at..form_at + page[form_at..].find("</form>").unwrap()];
    for part in [
        &format!("action=\"/tickets/{id}/label\""),
        &format!("name=\"csrf\" value=\"{csrf}\""),
        "<select id=\"label-intent\" name=\"intent\"",
        "<option value=\"account.locked\" selected>",
        "<option value=\"withdrawal.pending\">",
        "value=\":new_topic\"",
        "value=\":not_a_question\"",
        "name=\"new_topic\"",
    ] {
        assert!(form.contains(part), "{part} in {form}");
    }

    // Without the session's token, or from another site: refused, nothing recorded.
    let label_url = c.url(&format!("/tickets/{id}/label"));
    let api_url = c.url(&format!("/api/tickets/{id}/label"));
    let forged = [
        (
            "no token",
            http.post(&label_url).form(&[("intent", "account.locked")]),
        ),
        (
            "a wrong token",
            http.post(&label_url)
                .form(&[("csrf", "0123456789abcdef"), ("intent", "account.locked")]),
        ),
        (
            "another site",
            http.post(&label_url)
                .header("origin", "https://evil.example")
                .form(&[("csrf", csrf.as_str()), ("intent", "account.locked")]),
        ),
        (
            "the API with the cookie but no token",
            http.post(&api_url)
                .json(&json!({ "intent": "account.locked" })),
        ),
    ];
    for (what, request) in forged {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what}");
    }
    assert_eq!(c.service.store().ticket_label(id).await.unwrap(), None);

    // The picker: an intent, then a new topic replacing it.
    let r = http
        .post(&label_url)
        .form(&[
            ("csrf", csrf.as_str()),
            ("intent", "account.locked"),
            ("new_topic", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/tickets/{id}?notice=labelled"));
    let label = c.service.store().ticket_label(id).await.unwrap().unwrap();
    assert_eq!(label.kind, LabelKind::Intent);
    assert_eq!(label.name.as_deref(), Some("account.locked"));
    assert_eq!(label.text, "我的账户被冻结了怎么办");
    assert_eq!(label.labelled_by, "alice");
    let page = http
        .get(c.url(&format!("/tickets/{id}?notice=labelled")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let current_at = page.find("id=\"label-current\"").unwrap();
    assert!(
        page[current_at..].starts_with("id=\"label-current\">Intent account.locked"),
        "{}",
        &page[current_at..current_at + 120]
    );
    let r = http
        .post(&label_url)
        .form(&[
            ("csrf", csrf.as_str()),
            ("intent", ":new_topic"),
            ("new_topic", "frozen <b>funds</b>"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = http
        .get(&page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("New topic: frozen &lt;b&gt;funds&lt;/b&gt;"),
        "escaped"
    );
    assert!(page.contains("<option value=\":new_topic\" selected>"));
    let r = http
        .post(&label_url)
        .form(&[("csrf", csrf.as_str()), ("intent", ":new_topic")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "a new topic needs a name"
    );

    // The API, with the session and its token.
    let r = http
        .post(&api_url)
        .header("x-csrf-token", &csrf)
        .json(&json!({ "intent": "account.lockd" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("account.locked"),
        "names the closest: {body}"
    );
    let r = http
        .post(&api_url)
        .header("x-csrf-token", &csrf)
        .json(&json!({ "intent": "account.locked", "not_a_question": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "one label at a time");
    let r = http
        .post(&api_url)
        .header("x-csrf-token", &csrf)
        .json(&json!({ "not_a_question": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(body["label"]["kind"], "not_a_question", "{body}");

    // With an API token, no CSRF token is needed; the ticket's JSON carries the label.
    let token = c
        .service
        .issue_api_token("alice", Utc::now())
        .await
        .unwrap()
        .unwrap();
    let r = client()
        .post(&api_url)
        .bearer_auth(&token)
        .json(&json!({ "new_topic": "frozen funds" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ticket: Value = client()
        .get(c.url(&format!("/api/tickets/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ticket["label"]["kind"], "new_topic", "{ticket}");
    assert_eq!(ticket["label"]["name"], "frozen funds");
    assert_eq!(ticket["label"]["text"], "我的账户被冻结了怎么办");
    let r = client()
        .post(c.url("/api/tickets/999999/label"))
        .bearer_auth(&token)
        .json(&json!({ "not_a_question": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// A stand-in for the binary's KB curator: two fixed suggestions, and the decisions it was asked
/// for.
#[derive(Debug, Default)]
struct FakeCurator {
    decided: std::sync::Mutex<Vec<(String, bool, String)>>,
}

impl FakeCurator {
    fn decided(&self) -> Vec<(String, bool, String)> {
        self.decided.lock().unwrap().clone()
    }
}

impl kefu_console::KbCurator for FakeCurator {
    fn suggestions(
        &self,
    ) -> kefu_console::BoxFuture<'_, Result<Vec<kefu_console::SuggestionView>, String>> {
        Box::pin(async {
            Ok(vec![
                kefu_console::SuggestionView {
                    id: "abcd1234".into(),
                    kind: "add_examples".into(),
                    summary: "Add 2 examples to withdrawal.failed".into(),
                    intent: Some("withdrawal.failed".into()),
                    texts: vec![
                        "提币被风控拦截了怎么办".into(),
                        "<script>alert(1)</script>".into(),
                    ],
                    effect: "expected: better (the bot's utility rises)".into(),
                    positive: true,
                },
                kefu_console::SuggestionView {
                    id: "0badcafe".into(),
                    kind: "new_topic".into(),
                    summary: "A new topic: staking rewards".into(),
                    intent: Some("staking-rewards".into()),
                    texts: vec!["质押收益怎么算".into()],
                    effect: "effect: could not be estimated".into(),
                    positive: false,
                },
            ])
        })
    }

    fn decide<'a>(
        &'a self,
        id: &'a str,
        accept: bool,
        by: &'a str,
    ) -> kefu_console::BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            self.decided
                .lock()
                .unwrap()
                .push((id.to_owned(), accept, by.to_owned()));
            if id == "0badcafe" && accept {
                return Err("no suggestion 0badcafe (the KB changed)".to_owned());
            }
            Ok(format!(
                "{} {id} ({by})",
                if accept { "accepted" } else { "rejected" }
            ))
        })
    }
}

async fn with_curator() -> (Console, std::sync::Arc<FakeCurator>) {
    let curator = std::sync::Arc::new(FakeCurator::default());
    let c = Console::start_configured(ConsoleConfig {
        kb_curator: Some(curator.clone()),
        ..ConsoleConfig::default()
    })
    .await;
    c.staff("andy", StaffRole::Agent).await;
    c.staff("lena", StaffRole::Lead).await;
    (c, curator)
}

#[tokio::test]
async fn suggestions_are_for_leads_and_show_what_users_wrote_as_text() {
    let (c, curator) = with_curator().await;
    let r = client().get(c.url("/suggestions")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login");
    let r = client()
        .get(c.url("/api/suggestions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let (agent, agent_csrf) = c.login("andy").await;
    let queue = agent.get(c.url("/queue")).send().await.unwrap();
    assert!(
        !queue
            .text()
            .await
            .unwrap()
            .contains("href=\"/suggestions\"")
    );
    for path in ["/suggestions", "/api/suggestions"] {
        let r = agent.get(c.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let r = agent
        .post(c.url("/suggestions/abcd1234/accept"))
        .form(&[("csrf", agent_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = agent
        .post(c.url("/api/suggestions/abcd1234/accept"))
        .header("x-csrf-token", &agent_csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(curator.decided().is_empty());

    let (lead, csrf) = c.login("lena").await;
    let queue = lead.get(c.url("/queue")).send().await.unwrap();
    assert!(
        queue
            .text()
            .await
            .unwrap()
            .contains("href=\"/suggestions\"")
    );
    let r = lead.get(c.url("/suggestions")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("<table class=\"suggestions\" id=\"suggestions\">"),
        "{page}"
    );
    for id in ["abcd1234", "0badcafe"] {
        assert!(
            page.contains(&format!("data-suggestion=\"{id}\"")),
            "{page}"
        );
        assert!(
            page.contains(&format!("action=\"/suggestions/{id}/accept\"")),
            "{page}"
        );
        assert!(
            page.contains(&format!("action=\"/suggestions/{id}/reject\"")),
            "{page}"
        );
    }
    assert!(page.contains("提币被风控拦截了怎么办"));
    assert!(
        page.contains("<td class=\"effect better\">expected: better"),
        "{page}"
    );
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains(&format!("name=\"csrf\" value=\"{csrf}\"")));

    let api: Value = lead
        .get(c.url("/api/suggestions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["suggestions"][0]["id"], "abcd1234", "{api}");
    assert_eq!(
        api["suggestions"][0]["texts"][1],
        "<script>alert(1)</script>"
    );
    assert_eq!(api["suggestions"][1]["positive"], false);
}

#[tokio::test]
async fn a_lead_accepts_and_rejects_suggestions_only_with_the_csrf_token() {
    let (c, curator) = with_curator().await;
    let (lead, csrf) = c.login("lena").await;

    // Without the session's token, with a wrong one, or from another site: refused, the
    // curator is not asked.
    let forged = [
        lead.post(c.url("/suggestions/abcd1234/accept"))
            .form(&[("x", "y")]),
        lead.post(c.url("/suggestions/abcd1234/reject"))
            .form(&[("csrf", "0123456789abcdef")]),
        lead.post(c.url("/suggestions/abcd1234/accept"))
            .header("origin", "https://evil.example")
            .form(&[("csrf", csrf.as_str())]),
        lead.post(c.url("/api/suggestions/abcd1234/accept")),
        lead.post(c.url("/api/suggestions/abcd1234/reject"))
            .header("x-csrf-token", "0123456789abcdef"),
    ];
    for request in forged {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert!(curator.decided().is_empty());

    // The page's forms: done, and back to the page with a notice.
    let r = lead
        .post(c.url("/suggestions/abcd1234/accept"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/suggestions");
    assert_eq!(
        curator.decided(),
        [("abcd1234".to_owned(), true, "lena".to_owned())]
    );
    let page = lead
        .get(c.url("/suggestions"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(
            r#"<div class="notice ok" id="notice" role="status">accepted abcd1234 (lena)</div>"#
        ),
        "{page}"
    );
    // The notice is shown once.
    let page = lead
        .get(c.url("/suggestions"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("accepted abcd1234"), "{page}");

    // What the curator refuses is the notice too.
    let r = lead
        .post(c.url("/suggestions/0badcafe/accept"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = lead
        .get(c.url("/suggestions"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("class=\"notice refused\""), "{page}");
    assert!(page.contains("Not done: no suggestion 0badcafe"), "{page}");

    // The JSON API, with the session's token in the header or with an API token.
    let r = lead
        .post(c.url("/api/suggestions/0BADCAFE/reject"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"ok": true, "done": "rejected 0badcafe (lena)"})
    );
    let token = c
        .service
        .issue_api_token("lena", Utc::now())
        .await
        .unwrap()
        .unwrap();
    let r = client()
        .post(c.url("/api/suggestions/0badcafe/accept"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "conflict", "{body}");
    let r = client()
        .post(c.url("/api/suggestions/not-an-id/accept"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        curator.decided(),
        [
            ("abcd1234".to_owned(), true, "lena".to_owned()),
            ("0badcafe".to_owned(), true, "lena".to_owned()),
            ("0badcafe".to_owned(), false, "lena".to_owned()),
            ("0badcafe".to_owned(), true, "lena".to_owned()),
        ]
    );
}

#[tokio::test]
async fn without_a_kb_the_suggestions_page_says_so_and_the_api_answers_no_kb() {
    let c = Console::start().await;
    c.staff("lena", StaffRole::Lead).await;
    let (lead, csrf) = c.login("lena").await;
    let r = lead.get(c.url("/suggestions")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Suggestions need the KB: served by kefu run"),
        "{page}"
    );
    assert!(!page.contains("id=\"suggestions\""), "{page}");
    let r = lead.get(c.url("/api/suggestions")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"error": "no_kb"}));
    let r = lead
        .post(c.url("/api/suggestions/abcd1234/accept"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"error": "no_kb"}));
}
