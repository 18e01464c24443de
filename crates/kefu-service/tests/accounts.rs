//! Staff accounts, console sessions, API tokens, sign-in throttling, staff identity across
//! platforms and the console's report, against real databases (a SQLite file; PostgreSQL when
//! `KEFU_TEST_DATABASE_URL` is set).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use common::{Db, message_from, user};
use kefu_core::model::{ConversationRef, Sender};
use kefu_nlu::engine::DecisionKind;
use kefu_service::accounts::SESSION_HOURS;
use kefu_service::{
    AccountError, Handled, LoginOutcome, Service, ServiceError, StaffAction, StaffActor,
    StaffOutcome, StaffRole, StaffSession,
};
use sha2::{Digest, Sha256};
use sqlx::Connection as _;

/// A fixed time, so that days and windows are exact.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 10, 12, 0, 0).unwrap()
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One text column of every row `sql` returns, read straight from the database.
async fn column(db: &Db, sql: &'static str) -> Vec<String> {
    if db.url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
    }
}

async fn logged_in(
    s: &Service,
    name: &str,
    password: &str,
    ip: &str,
    at: DateTime<Utc>,
) -> StaffSession {
    match s.login(name, password, ip, at).await.unwrap() {
        LoginOutcome::LoggedIn(session) => session,
        other => panic!("{name} signs in: {other:?}"),
    }
}

fn refused(outcome: &LoginOutcome) -> bool {
    matches!(outcome, LoginOutcome::Refused)
}

fn throttled(outcome: &LoginOutcome) -> Option<TimeDelta> {
    match outcome {
        LoginOutcome::Throttled { retry_after } => Some(*retry_after),
        _ => None,
    }
}

#[tokio::test]
async fn an_account_signs_in_with_its_password_and_its_session_ends_on_logout_or_after_twelve_hours()
 {
    for db in Db::each().await {
        let s = db.service("a").await;
        let now = t0();
        let alice = s
            .add_staff("alice", StaffRole::Agent, "correct horse", now)
            .await
            .unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.role, StaffRole::Agent);
        assert_eq!(alice.created_at, now);
        assert_eq!((alice.telegram_id, alice.discord_id), (None, None));
        assert!(matches!(
            s.add_staff("alice", StaffRole::Lead, "another password", now)
                .await,
            Err(ServiceError::Account(AccountError::NameTaken { .. }))
        ));
        assert!(matches!(
            s.add_staff("bob", StaffRole::Agent, "short", now).await,
            Err(ServiceError::Account(AccountError::PasswordTooShort {
                min: 8
            }))
        ));
        assert!(matches!(
            s.add_staff(" bob", StaffRole::Agent, "long enough", now)
                .await,
            Err(ServiceError::Account(AccountError::InvalidName { .. }))
        ));
        assert_eq!(s.staff_account("bob").await.unwrap(), None);
        let hashes = column(&db, "SELECT password_hash FROM staff_accounts").await;
        assert_eq!(hashes.len(), 1);
        assert!(hashes[0].starts_with("$argon2id$"), "{}", hashes[0]);
        assert!(!hashes[0].contains("correct horse"));

        let wrong = s
            .login("alice", "correct hors", "10.0.0.1", now)
            .await
            .unwrap();
        assert!(refused(&wrong), "{wrong:?}");
        let unknown = s
            .login("nobody", "correct horse", "10.0.0.1", now)
            .await
            .unwrap();
        assert!(refused(&unknown), "{unknown:?}");

        let session = logged_in(&s, "alice", "correct horse", "10.0.0.1", now).await;
        assert_eq!(session.staff.name, "alice");
        assert_eq!(session.expires_at, now + TimeDelta::hours(SESSION_HOURS));
        for secret in [&session.token, &session.csrf] {
            assert_eq!(secret.len(), 64, "32 bytes in hex");
            assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(session.token, session.csrf);
        let stored = column(&db, "SELECT token_hash FROM staff_sessions").await;
        assert_eq!(
            stored,
            [sha256_hex(&session.token)],
            "only the token's hash is kept"
        );

        let found = s
            .staff_session(&session.token, now + TimeDelta::hours(11))
            .await
            .unwrap()
            .expect("the session is open after 11 hours");
        assert_eq!(found.staff.name, "alice");
        assert_eq!(found.csrf, session.csrf);
        assert_eq!(found.expires_at, session.expires_at);
        assert!(s.staff_session("not a token", now).await.unwrap().is_none());
        assert!(
            s.staff_session(&session.token, session.expires_at)
                .await
                .unwrap()
                .is_none(),
            "expired after 12 hours"
        );

        s.logout(&session.token).await.unwrap();
        assert!(
            s.staff_session(&session.token, now)
                .await
                .unwrap()
                .is_none()
        );

        // A new password ends the sessions and replaces the old password.
        let session = logged_in(&s, "alice", "correct horse", "10.0.0.1", now).await;
        assert!(
            s.set_staff_password("alice", "battery staple")
                .await
                .unwrap()
        );
        assert!(
            !s.set_staff_password("nobody", "battery staple")
                .await
                .unwrap()
        );
        assert!(matches!(
            s.set_staff_password("alice", "short").await,
            Err(ServiceError::Account(AccountError::PasswordTooShort { .. }))
        ));
        assert!(
            s.staff_session(&session.token, now)
                .await
                .unwrap()
                .is_none()
        );
        let old = s
            .login("alice", "correct horse", "10.0.0.1", now)
            .await
            .unwrap();
        assert!(refused(&old), "{old:?}");
        logged_in(&s, "alice", "battery staple", "10.0.0.1", now).await;

        // Expired sessions are pruned when a session starts.
        let later = now + TimeDelta::hours(SESSION_HOURS + 1);
        logged_in(&s, "alice", "battery staple", "10.0.0.1", later).await;
        assert_eq!(
            column(&db, "SELECT token_hash FROM staff_sessions")
                .await
                .len(),
            1
        );

        let lead = s
            .add_staff("王小明", StaffRole::Lead, "八个字符的密码呀", now)
            .await
            .unwrap();
        assert!(lead.role.is_lead());
        let names: Vec<String> = s
            .staff_accounts()
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, ["alice", "王小明"]);
    }
}

#[tokio::test]
async fn sign_ins_are_throttled_after_five_failures_per_account_and_per_address() {
    for db in Db::each().await {
        let s = db.service("a").await;
        let now = t0();
        for name in ["alice", "bob", "carol"] {
            s.add_staff(name, StaffRole::Agent, "correct horse", now)
                .await
                .unwrap();
        }
        // Five wrong passwords for alice from one address.
        for i in 0..5 {
            let at = now + TimeDelta::seconds(i);
            let o = s
                .login("alice", "wrong password", "10.0.0.1", at)
                .await
                .unwrap();
            assert!(refused(&o), "attempt {i}: {o:?}");
        }
        let at = now + TimeDelta::seconds(5);
        // The account is throttled from anywhere, even with the right password…
        let o = s
            .login("alice", "correct horse", "10.0.0.2", at)
            .await
            .unwrap();
        assert_eq!(
            throttled(&o),
            Some(TimeDelta::minutes(15) - TimeDelta::seconds(5)),
            "until the first failure is 15 minutes old: {o:?}"
        );
        // …and so is the address, for every account.
        let o = s
            .login("bob", "correct horse", "10.0.0.1", at)
            .await
            .unwrap();
        assert!(throttled(&o).is_some(), "{o:?}");
        // Another account from another address is not.
        logged_in(&s, "bob", "correct horse", "10.0.0.3", at).await;
        // Four failures are not enough.
        for i in 0..4 {
            let o = s
                .login("carol", "wrong password", &format!("10.1.0.{i}"), at)
                .await
                .unwrap();
            assert!(refused(&o), "{o:?}");
        }
        logged_in(&s, "carol", "correct horse", "10.1.0.9", at).await;

        // The address stays throttled for every account until its failures age out.
        let o = s
            .login(
                "carol",
                "correct horse",
                "10.0.0.1",
                now + TimeDelta::seconds(30),
            )
            .await
            .unwrap();
        assert!(throttled(&o).is_some(), "{o:?}");

        // Fifteen minutes after the first failure alice may try again.
        let later = now + TimeDelta::minutes(15) + TimeDelta::seconds(1);
        logged_in(&s, "alice", "correct horse", "10.0.0.2", later).await;
        // That success cleared alice's failures: four more do not throttle her (with the three
        // earlier ones still in the window, they would).
        for i in 0..4 {
            let o = s
                .login("alice", "wrong password", &format!("10.2.0.{i}"), later)
                .await
                .unwrap();
            assert!(refused(&o), "{o:?}");
        }
        logged_in(&s, "alice", "correct horse", "10.2.0.9", later).await;

        // Failures from different addresses add up for the account.
        for i in 0..5 {
            let o = s
                .login("carol", "wrong password", &format!("10.3.0.{i}"), later)
                .await
                .unwrap();
            assert!(refused(&o), "{o:?}");
        }
        let o = s
            .login("carol", "correct horse", "10.3.0.9", later)
            .await
            .unwrap();
        assert!(throttled(&o).is_some(), "{o:?}");
    }
}

#[tokio::test]
async fn removing_an_account_ends_its_sessions_and_api_token() {
    for db in Db::each().await {
        let s = db.service("a").await;
        let now = t0();
        s.add_staff("carol", StaffRole::Lead, "correct horse", now)
            .await
            .unwrap();
        s.add_staff("dave", StaffRole::Agent, "correct horse", now)
            .await
            .unwrap();
        let session = logged_in(&s, "carol", "correct horse", "10.0.0.1", now).await;
        let dave = logged_in(&s, "dave", "correct horse", "10.0.0.1", now).await;

        let first = s.issue_api_token("carol", now).await.unwrap().unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(
            s.staff_by_api_token(&first).await.unwrap().map(|a| a.name),
            Some("carol".to_owned())
        );
        let token = s.issue_api_token("carol", now).await.unwrap().unwrap();
        assert_ne!(token, first);
        assert!(
            s.staff_by_api_token(&first).await.unwrap().is_none(),
            "a new token replaces the earlier one"
        );
        let by_token = s.staff_by_api_token(&token).await.unwrap().unwrap();
        assert_eq!(
            (by_token.name.as_str(), by_token.role),
            ("carol", StaffRole::Lead)
        );
        assert_eq!(
            column(&db, "SELECT token_hash FROM staff_tokens").await,
            [sha256_hex(&token)],
            "only the token's hash is kept"
        );
        assert_eq!(s.issue_api_token("nobody", now).await.unwrap(), None);
        assert!(s.staff_by_api_token("not a token").await.unwrap().is_none());

        assert!(s.remove_staff("carol").await.unwrap());
        assert!(!s.remove_staff("carol").await.unwrap());
        assert_eq!(s.staff_account("carol").await.unwrap(), None);
        assert!(
            s.staff_session(&session.token, now)
                .await
                .unwrap()
                .is_none()
        );
        assert!(s.staff_by_api_token(&token).await.unwrap().is_none());
        assert_eq!(
            column(&db, "SELECT staff_name FROM staff_sessions").await,
            ["dave"],
            "carol's session rows are gone"
        );
        assert!(
            column(&db, "SELECT staff_name FROM staff_tokens")
                .await
                .is_empty()
        );
        assert!(s.staff_session(&dave.token, now).await.unwrap().is_some());
        let gone = s
            .login("carol", "correct horse", "10.0.0.1", now)
            .await
            .unwrap();
        assert!(refused(&gone), "{gone:?}");
    }
}

async fn open_ticket(s: &Service, who: &ConversationRef, id: &str, at: DateTime<Utc>) -> i64 {
    let opened = s
        .handle_inbound(&message_from(who, id, "转人工"), at)
        .await
        .unwrap();
    let Handled::Processed {
        ticket_opened: Some(ticket),
        ..
    } = opened
    else {
        panic!("a ticket opens: {opened:?}")
    };
    ticket.id
}

fn from_telegram(display_name: &str, user_id: &str) -> StaffActor {
    StaffActor {
        space: Some("telegram".to_owned()),
        platform_user_id: Some(user_id.to_owned()),
        ..StaffActor::named(display_name)
    }
}

#[tokio::test]
async fn a_platform_user_linked_to_an_account_acts_under_the_account_name() {
    for db in Db::each().await {
        let s = db.service("a").await;
        let now = Utc::now();
        s.add_staff("alice", StaffRole::Agent, "correct horse", now)
            .await
            .unwrap();
        s.add_staff("bob", StaffRole::Agent, "correct horse", now)
            .await
            .unwrap();
        assert!(
            s.link_staff("alice", "telegram", Some("111"))
                .await
                .unwrap()
        );
        assert!(
            s.link_staff("alice", "discord", Some("987654321012345678"))
                .await
                .unwrap()
        );
        assert!(
            !s.link_staff("nobody", "telegram", Some("333"))
                .await
                .unwrap()
        );
        assert!(matches!(
            s.link_staff("bob", "telegram", Some("111")).await,
            Err(ServiceError::Account(AccountError::PlatformIdTaken { .. }))
        ));
        assert!(matches!(
            s.link_staff("bob", "telegram", Some("12ab")).await,
            Err(ServiceError::Account(
                AccountError::InvalidPlatformId { .. }
            ))
        ));
        assert!(matches!(
            s.link_staff("bob", "slack", Some("1")).await,
            Err(ServiceError::Account(AccountError::UnknownPlatform { .. }))
        ));
        let alice = s.staff_account("alice").await.unwrap().unwrap();
        assert_eq!(alice.telegram_id.as_deref(), Some("111"));
        assert_eq!(alice.discord_id.as_deref(), Some("987654321012345678"));
        assert_eq!(
            s.staff_by_platform_id("telegram", "111")
                .await
                .unwrap()
                .map(|a| a.name),
            Some("alice".to_owned())
        );
        assert_eq!(
            s.staff_by_platform_id("discord", "111").await.unwrap(),
            None
        );
        assert_eq!(
            s.staff_by_platform_id("telegram", "222").await.unwrap(),
            None
        );

        let ticket = open_ticket(&s, &user(1), "m1", now).await;
        let linked = from_telegram("Alice on Telegram", "111");
        assert_eq!(
            s.staff_action(&linked, ticket, StaffAction::Claim, now)
                .await
                .unwrap(),
            StaffOutcome::Done
        );
        let t = s.store().ticket(ticket).await.unwrap().unwrap();
        assert_eq!(
            t.assignee.as_deref(),
            Some("alice"),
            "the account's name holds it"
        );
        assert_eq!(
            s.staff_action(&linked, ticket, StaffAction::Reply("hello".into()), now)
                .await
                .unwrap(),
            StaffOutcome::Done
        );
        let lines = s.store().ticket_transcript(ticket).await.unwrap();
        assert!(
            lines
                .iter()
                .any(|l| l.sender == Sender::Staff("alice".into()) && l.text == "hello"),
            "{lines:?}"
        );
        // The console acts as the account too, so it is the same holder.
        assert_eq!(
            s.staff_action(&StaffActor::named("alice"), ticket, StaffAction::Claim, now)
                .await
                .unwrap(),
            StaffOutcome::Done
        );
        // Someone not linked acts under the name the platform shows.
        assert_eq!(
            s.staff_action(
                &from_telegram("Mallory", "222"),
                ticket,
                StaffAction::Resolve,
                now
            )
            .await
            .unwrap(),
            StaffOutcome::HeldBy("alice".into())
        );
        // Without a platform user id, nothing is looked up.
        let unnamed = StaffActor {
            space: Some("telegram".to_owned()),
            ..StaffActor::named("Alice on Telegram")
        };
        assert_eq!(
            s.staff_action(&unnamed, ticket, StaffAction::Resolve, now)
                .await
                .unwrap(),
            StaffOutcome::HeldBy("alice".into())
        );
        assert_eq!(
            s.staff_action(&linked, ticket, StaffAction::Resolve, now)
                .await
                .unwrap(),
            StaffOutcome::Done
        );

        // Unlinked, the same Telegram user acts under their platform name again.
        assert!(s.link_staff("alice", "telegram", None).await.unwrap());
        assert_eq!(
            s.staff_by_platform_id("telegram", "111").await.unwrap(),
            None
        );
        assert!(
            s.link_staff("bob", "telegram", Some("111")).await.unwrap(),
            "free now"
        );
        assert!(s.link_staff("bob", "telegram", None).await.unwrap());
        let second = open_ticket(&s, &user(2), "m2", now).await;
        s.staff_action(&linked, second, StaffAction::Claim, now)
            .await
            .unwrap();
        let t = s.store().ticket(second).await.unwrap().unwrap();
        assert_eq!(t.assignee.as_deref(), Some("Alice on Telegram"));
    }
}

/// Sends `text` from `who` at `at` and adds the decision the bot makes for it to `expected`
/// (answered, clarified, escalated per day).
async fn say(
    s: &Service,
    who: &ConversationRef,
    id: &str,
    text: &str,
    at: DateTime<Utc>,
    expected: &mut BTreeMap<NaiveDate, [i64; 3]>,
) -> Handled {
    let decision = s.engine().unwrap().decide(text);
    let slot = match decision.decision {
        DecisionKind::Answer => 0,
        DecisionKind::Clarify => 1,
        DecisionKind::Escalate => 2,
    };
    expected.entry(at.date_naive()).or_default()[slot] += 1;
    s.handle_inbound(&message_from(who, id, text), at)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_report_counts_tickets_decisions_and_ratings_per_day_with_median_times() {
    for db in Db::each().await {
        let s = db.service("a").await;
        // Noon of a day well in the past; the report is made an hour later.
        let d0 = t0();
        let now = d0 + TimeDelta::hours(1);
        let day = |offset: i64| (d0 + TimeDelta::days(offset)).date_naive();
        let staff = StaffActor::named("alice");
        let mut expected: BTreeMap<NaiveDate, [i64; 3]> = BTreeMap::new();
        let ticket_of = |h: Handled| match h {
            Handled::Processed {
                ticket_opened: Some(t),
                ..
            } => t.id,
            other => panic!("a ticket opens: {other:?}"),
        };

        // Long before the report's period: not counted.
        let old_at = d0 - TimeDelta::days(20);
        let old = ticket_of(
            say(
                &s,
                &user(9),
                "o1",
                "转人工",
                old_at,
                &mut Default::default(),
            )
            .await,
        );
        s.staff_action(&staff, old, StaffAction::Reply("hi".into()), old_at)
            .await
            .unwrap();
        s.staff_action(&staff, old, StaffAction::Resolve, old_at)
            .await
            .unwrap();
        s.handle_inbound(&message_from(&user(9), "o2", "1"), old_at)
            .await
            .unwrap();

        // Two days ago: someone's question, then ticket A, answered after 30 minutes and resolved
        // a day after it opened; rated 4 the day before the report.
        let a_at = d0 - TimeDelta::days(2);
        say(
            &s,
            &user(5),
            "q1",
            "提币一直没到账怎么办",
            a_at - TimeDelta::minutes(5),
            &mut expected,
        )
        .await;
        let a = ticket_of(say(&s, &user(1), "a1", "转人工", a_at, &mut expected).await);
        s.staff_action(&staff, a, StaffAction::Claim, a_at + TimeDelta::minutes(10))
            .await
            .unwrap();
        s.staff_action(
            &staff,
            a,
            StaffAction::Reply("看看".into()),
            a_at + TimeDelta::minutes(30),
        )
        .await
        .unwrap();
        s.staff_action(
            &staff,
            a,
            StaffAction::Reply("好了".into()),
            a_at + TimeDelta::minutes(40),
        )
        .await
        .unwrap();
        let a_resolved = a_at + TimeDelta::days(1);
        assert_eq!(
            s.staff_action(&staff, a, StaffAction::Resolve, a_resolved)
                .await
                .unwrap(),
            StaffOutcome::Done
        );
        say(
            &s,
            &user(1),
            "a2",
            "4",
            a_resolved + TimeDelta::minutes(1),
            &mut expected,
        )
        .await;
        say(
            &s,
            &user(1),
            "a3",
            "/skip",
            a_resolved + TimeDelta::minutes(2),
            &mut expected,
        )
        .await;

        // Yesterday: ticket B, answered after 10 minutes (the reply claims it), resolved after an
        // hour, rated 5.
        let b_at = d0 - TimeDelta::days(1) + TimeDelta::hours(2);
        let b = ticket_of(say(&s, &user(2), "b1", "转人工", b_at, &mut expected).await);
        s.staff_action(
            &staff,
            b,
            StaffAction::Reply("在的".into()),
            b_at + TimeDelta::minutes(10),
        )
        .await
        .unwrap();
        s.staff_action(&staff, b, StaffAction::Resolve, b_at + TimeDelta::hours(1))
            .await
            .unwrap();
        say(
            &s,
            &user(2),
            "b2",
            "5",
            b_at + TimeDelta::hours(1),
            &mut expected,
        )
        .await;

        // Today: ticket C, still waiting; ticket D, cancelled by its user (not resolved).
        let c = ticket_of(say(&s, &user(3), "c1", "转人工", d0, &mut expected).await);
        let d = ticket_of(say(&s, &user(4), "d1", "转人工", d0, &mut expected).await);
        {
            let mut tx = s.store().begin().await.unwrap();
            tx.cancel(d, d0 + TimeDelta::minutes(1)).await.unwrap();
            tx.commit().await.unwrap();
        }
        assert_ne!(c, d);

        let report = s.report(7, now).await.unwrap();
        assert_eq!(
            report.since,
            Utc.with_ymd_and_hms(2025, 3, 4, 0, 0, 0).unwrap()
        );
        let days: Vec<NaiveDate> = report.days.iter().map(|d| d.day).collect();
        assert_eq!(days.len(), 7);
        assert_eq!(days.first(), Some(&day(-6)));
        assert_eq!(days.last(), Some(&day(0)));
        let by_day: BTreeMap<NaiveDate, (i64, i64)> = report
            .days
            .iter()
            .map(|d| (d.day, (d.opened, d.resolved)))
            .collect();
        for (offset, opened, resolved) in
            [(-6, 0, 0), (-3, 0, 0), (-2, 1, 0), (-1, 1, 2), (0, 2, 0)]
        {
            assert_eq!(
                by_day[&day(offset)],
                (opened, resolved),
                "opened, resolved on day {offset}"
            );
        }
        for d in &report.days {
            let want = expected.get(&d.day).copied().unwrap_or_default();
            assert_eq!(
                [d.answered, d.clarified, d.escalated],
                want,
                "decisions on {}",
                d.day
            );
        }
        let total: i64 = report
            .days
            .iter()
            .map(|d| d.answered + d.clarified + d.escalated)
            .sum();
        assert_eq!(
            total, 8,
            "one decision per message the bot classified in the period"
        );
        // First responses 30 and 10 minutes; resolutions 1 day and 1 hour.
        assert_eq!(report.median_first_response_secs, Some(20 * 60));
        assert_eq!(report.median_resolution_secs, Some((86_400 + 3_600) / 2));
        assert_eq!(report.ratings, [0, 0, 0, 1, 1]);

        // A one-day report holds today only; the JSON names every field.
        let today = s.report(1, now).await.unwrap();
        assert_eq!(today.days.len(), 1);
        assert_eq!(today.days[0].opened, 2);
        assert_eq!(today.median_first_response_secs, None);
        assert_eq!(today.ratings, [0; 5]);
        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "since",
            "days",
            "median_first_response_secs",
            "median_resolution_secs",
            "ratings",
            "misses",
        ] {
            assert!(json.get(key).is_some(), "{key} in {json}");
        }
        assert_eq!(json["days"][6]["day"], "2025-03-10");
        assert_eq!(json["days"][6]["opened"], 2);
    }
}
