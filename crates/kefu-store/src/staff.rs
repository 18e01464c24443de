//! The staff console's queries, written once for both backends like those of `ops`: staff
//! accounts, console sessions and API tokens (stored only as hashes of their tokens), failed
//! sign-ins, the bot's decisions, and the counts the console's report is drawn from.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use crate::error::{Result, StoreError, db};
use crate::ops::{Conn, dispatch, micros};
use crate::types::{Activity, StaffRecord, StaffSessionRecord};

/// `SELECT` of the columns [`StaffRow`] reads, from `staff_accounts`.
macro_rules! staff_select {
    () => {
        "SELECT name, role, telegram_id, discord_id, created_at FROM staff_accounts "
    };
}

/// A `SELECT` of `(day, [extra columns,] COUNT(*))` grouped by the UTC day of `$col`: the day is
/// `YYYY-MM-DD` text on both backends (SQLite stores timestamps as RFC 3339 text in UTC, so its
/// first ten characters are the day).
macro_rules! per_day {
    ($pg:ident, $col:literal, $extra:literal, $rest:literal) => {
        if $pg {
            concat!(
                "SELECT to_char(",
                $col,
                " AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day",
                $extra,
                ", COUNT(*) AS n ",
                $rest
            )
        } else {
            concat!(
                "SELECT substr(",
                $col,
                ", 1, 10) AS day",
                $extra,
                ", COUNT(*) AS n ",
                $rest
            )
        }
    };
}

#[derive(sqlx::FromRow)]
struct StaffRow {
    name: String,
    role: String,
    telegram_id: Option<String>,
    discord_id: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<StaffRow> for StaffRecord {
    fn from(r: StaffRow) -> Self {
        StaffRecord {
            name: r.name,
            role: r.role,
            telegram_id: r.telegram_id,
            discord_id: r.discord_id,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct CredentialsRow {
    name: String,
    role: String,
    telegram_id: Option<String>,
    discord_id: Option<String>,
    created_at: DateTime<Utc>,
    password_hash: String,
}

type Day = (String, i64);
type Span = (DateTime<Utc>, Option<DateTime<Utc>>);

/// The report's rows as read, before their days are parsed.
struct RawActivity {
    opened: Vec<Day>,
    resolved: Vec<Day>,
    decisions: Vec<(String, String, i64)>,
    first_responses: Vec<Span>,
    resolutions: Vec<Span>,
    ratings: Vec<(i64, i64)>,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    name: String,
    role: String,
    telegram_id: Option<String>,
    discord_id: Option<String>,
    created_at: DateTime<Utc>,
    csrf: String,
    expires_at: DateTime<Utc>,
}

/// The column of `staff_accounts` holding a platform's user id.
fn platform_column(platform: &str) -> Option<&'static str> {
    match platform {
        "telegram" => Some("telegram_id"),
        "discord" => Some("discord_id"),
        _ => None,
    }
}

fn day(text: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| StoreError::Corrupt {
        what: format!("a timestamp whose day reads {text:?}"),
    })
}

// ---------------------------------------------------------------------------------------------
// Accounts

/// Creates an account; `false` when one has that name already.
pub(crate) async fn add_staff(
    conn: Conn<'_>,
    name: &str,
    role: &str,
    password_hash: &str,
    at: DateTime<Utc>,
) -> Result<bool> {
    let added: Option<String> = dispatch!(conn, |c, pg| {
        sqlx::query_scalar(
            "INSERT INTO staff_accounts (name, role, password_hash, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING name",
        )
        .bind(name)
        .bind(role)
        .bind(password_hash)
        .bind(micros(at))
        .fetch_optional(c)
        .await
        .map_err(db("add a staff account"))?
    });
    Ok(added.is_some())
}

pub(crate) async fn staff_members(conn: Conn<'_>) -> Result<Vec<StaffRecord>> {
    let rows: Vec<StaffRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(concat!(staff_select!(), "ORDER BY name"))
            .fetch_all(c)
            .await
            .map_err(db("list the staff accounts"))?
    });
    Ok(rows.into_iter().map(StaffRecord::from).collect())
}

pub(crate) async fn staff_member(conn: Conn<'_>, name: &str) -> Result<Option<StaffRecord>> {
    let row: Option<StaffRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(concat!(staff_select!(), "WHERE name = $1"))
            .bind(name)
            .fetch_optional(c)
            .await
            .map_err(db("read a staff account"))?
    });
    Ok(row.map(StaffRecord::from))
}

/// The account and its password hash.
pub(crate) async fn staff_credentials(
    conn: Conn<'_>,
    name: &str,
) -> Result<Option<(StaffRecord, String)>> {
    let row: Option<CredentialsRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT name, role, telegram_id, discord_id, created_at, password_hash \
             FROM staff_accounts WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(c)
        .await
        .map_err(db("read a staff account's credentials"))?
    });
    Ok(row.map(|r| {
        (
            StaffRecord {
                name: r.name,
                role: r.role,
                telegram_id: r.telegram_id,
                discord_id: r.discord_id,
                created_at: r.created_at,
            },
            r.password_hash,
        )
    }))
}

/// Replaces an account's password hash and ends its sessions; `false` when there is no such
/// account. Run it in a transaction.
pub(crate) async fn set_staff_password(
    conn: Conn<'_>,
    name: &str,
    password_hash: &str,
) -> Result<bool> {
    dispatch!(conn, |c, pg| {
        let n = sqlx::query("UPDATE staff_accounts SET password_hash = $2 WHERE name = $1")
            .bind(name)
            .bind(password_hash)
            .execute(&mut *c)
            .await
            .map_err(db("change a staff password"))?
            .rows_affected();
        sqlx::query("DELETE FROM staff_sessions WHERE staff_name = $1")
            .bind(name)
            .execute(&mut *c)
            .await
            .map_err(db("end a staff account's sessions"))?;
        Ok(n == 1)
    })
}

/// Deletes an account; its sessions and tokens go with it (`ON DELETE CASCADE`).
pub(crate) async fn remove_staff(conn: Conn<'_>, name: &str) -> Result<bool> {
    let n = dispatch!(conn, |c, pg| {
        sqlx::query("DELETE FROM staff_accounts WHERE name = $1")
            .bind(name)
            .execute(c)
            .await
            .map_err(db("remove a staff account"))?
            .rows_affected()
    });
    Ok(n == 1)
}

/// Links an account to a platform user (or unlinks it with `None`); `false` when there is no
/// such account.
pub(crate) async fn link_staff(
    conn: Conn<'_>,
    name: &str,
    platform: &str,
    user_id: Option<&str>,
) -> Result<bool> {
    let Some(column) = platform_column(platform) else {
        return Err(StoreError::UnknownStaffPlatform {
            platform: platform.to_owned(),
        });
    };
    let done = dispatch!(conn, |c, pg| {
        let sql = if column == "telegram_id" {
            "UPDATE staff_accounts SET telegram_id = $2 WHERE name = $1"
        } else {
            "UPDATE staff_accounts SET discord_id = $2 WHERE name = $1"
        };
        sqlx::query(sql)
            .bind(name)
            .bind(user_id)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
    });
    match done {
        Ok(n) => Ok(n == 1),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::StaffIdTaken {
            platform: platform.to_owned(),
            id: user_id.unwrap_or_default().to_owned(),
        }),
        Err(e) => Err(db("link a staff account")(e)),
    }
}

/// The account linked to a platform user; `None` for a platform without staff accounts.
pub(crate) async fn staff_by_platform_id(
    conn: Conn<'_>,
    platform: &str,
    user_id: &str,
) -> Result<Option<StaffRecord>> {
    let Some(column) = platform_column(platform) else {
        return Ok(None);
    };
    let row: Option<StaffRow> = dispatch!(conn, |c, pg| {
        let sql = if column == "telegram_id" {
            concat!(staff_select!(), "WHERE telegram_id = $1")
        } else {
            concat!(staff_select!(), "WHERE discord_id = $1")
        };
        sqlx::query_as(sql)
            .bind(user_id)
            .fetch_optional(c)
            .await
            .map_err(db("find the staff account of a platform user"))?
    });
    Ok(row.map(StaffRecord::from))
}

// ---------------------------------------------------------------------------------------------
// Sessions and API tokens

/// Starts a session for `name` (pruning expired ones first); `false` when there is no such
/// account.
pub(crate) async fn create_staff_session(
    conn: Conn<'_>,
    token_hash: &str,
    name: &str,
    csrf: &str,
    at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<bool> {
    dispatch!(conn, |c, pg| {
        sqlx::query("DELETE FROM staff_sessions WHERE expires_at <= $1")
            .bind(micros(at))
            .execute(&mut *c)
            .await
            .map_err(db("prune expired staff sessions"))?;
        let n = sqlx::query(
            "INSERT INTO staff_sessions (token_hash, staff_name, csrf, created_at, expires_at) \
             SELECT $1, name, $3, $4, $5 FROM staff_accounts WHERE name = $2",
        )
        .bind(token_hash)
        .bind(name)
        .bind(csrf)
        .bind(micros(at))
        .bind(micros(expires_at))
        .execute(&mut *c)
        .await
        .map_err(db("start a staff session"))?
        .rows_affected();
        Ok(n == 1)
    })
}

/// The session with this token hash, unless it expired by `now`.
pub(crate) async fn staff_session(
    conn: Conn<'_>,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<StaffSessionRecord>> {
    let row: Option<SessionRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT a.name, a.role, a.telegram_id, a.discord_id, a.created_at, s.csrf, s.expires_at \
             FROM staff_sessions s JOIN staff_accounts a ON a.name = s.staff_name \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(micros(now))
        .fetch_optional(c)
        .await
        .map_err(db("read a staff session"))?
    });
    Ok(row.map(|r| StaffSessionRecord {
        staff: StaffRecord {
            name: r.name,
            role: r.role,
            telegram_id: r.telegram_id,
            discord_id: r.discord_id,
            created_at: r.created_at,
        },
        csrf: r.csrf,
        expires_at: r.expires_at,
    }))
}

pub(crate) async fn delete_staff_session(conn: Conn<'_>, token_hash: &str) -> Result<()> {
    dispatch!(conn, |c, pg| {
        sqlx::query("DELETE FROM staff_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(c)
            .await
            .map_err(db("end a staff session"))?;
    });
    Ok(())
}

/// Replaces the account's API tokens with this one; `false` when there is no such account. Run
/// it in a transaction.
pub(crate) async fn replace_staff_token(
    conn: Conn<'_>,
    name: &str,
    token_hash: &str,
    at: DateTime<Utc>,
) -> Result<bool> {
    dispatch!(conn, |c, pg| {
        sqlx::query("DELETE FROM staff_tokens WHERE staff_name = $1")
            .bind(name)
            .execute(&mut *c)
            .await
            .map_err(db("revoke a staff account's API tokens"))?;
        let n = sqlx::query(
            "INSERT INTO staff_tokens (token_hash, staff_name, created_at) \
             SELECT $1, name, $3 FROM staff_accounts WHERE name = $2",
        )
        .bind(token_hash)
        .bind(name)
        .bind(micros(at))
        .execute(&mut *c)
        .await
        .map_err(db("store a staff API token"))?
        .rows_affected();
        Ok(n == 1)
    })
}

pub(crate) async fn staff_by_token(
    conn: Conn<'_>,
    token_hash: &str,
) -> Result<Option<StaffRecord>> {
    let row: Option<StaffRow> = dispatch!(conn, |c, pg| {
        sqlx::query_as(
            "SELECT a.name, a.role, a.telegram_id, a.discord_id, a.created_at \
             FROM staff_tokens t JOIN staff_accounts a ON a.name = t.staff_name \
             WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(c)
        .await
        .map_err(db("find the staff account of an API token"))?
    });
    Ok(row.map(StaffRecord::from))
}

// ---------------------------------------------------------------------------------------------
// Failed sign-ins

/// The times of the most recent failures under `key` after `since`, newest first, at most
/// `limit`.
pub(crate) async fn recent_login_failures(
    conn: Conn<'_>,
    key: &str,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<DateTime<Utc>>> {
    dispatch!(conn, |c, pg| {
        sqlx::query_scalar(
            "SELECT at FROM login_failures WHERE key = $1 AND at > $2 ORDER BY at DESC LIMIT $3",
        )
        .bind(key)
        .bind(micros(since))
        .bind(limit)
        .fetch_all(c)
        .await
        .map_err(db("count failed sign-ins"))
    })
}

/// Records a failure under each key, and forgets failures from before `forget_before`.
pub(crate) async fn record_login_failure(
    conn: Conn<'_>,
    keys: &[&str],
    at: DateTime<Utc>,
    forget_before: DateTime<Utc>,
) -> Result<()> {
    dispatch!(conn, |c, pg| {
        sqlx::query("DELETE FROM login_failures WHERE at < $1")
            .bind(micros(forget_before))
            .execute(&mut *c)
            .await
            .map_err(db("forget old failed sign-ins"))?;
        for key in keys {
            sqlx::query("INSERT INTO login_failures (key, at) VALUES ($1, $2)")
                .bind(*key)
                .bind(micros(at))
                .execute(&mut *c)
                .await
                .map_err(db("record a failed sign-in"))?;
        }
    });
    Ok(())
}

pub(crate) async fn clear_login_failures(conn: Conn<'_>, key: &str) -> Result<()> {
    dispatch!(conn, |c, pg| {
        sqlx::query("DELETE FROM login_failures WHERE key = $1")
            .bind(key)
            .execute(c)
            .await
            .map_err(db("clear failed sign-ins"))?;
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The bot's decisions and the report

pub(crate) async fn record_decision(conn: Conn<'_>, kind: &str, at: DateTime<Utc>) -> Result<()> {
    dispatch!(conn, |c, pg| {
        sqlx::query("INSERT INTO bot_decisions (at, kind) VALUES ($1, $2)")
            .bind(micros(at))
            .bind(kind)
            .execute(c)
            .await
            .map_err(db("record a bot decision"))?;
    });
    Ok(())
}

/// What happened between `since` and `until` (both included).
pub(crate) async fn activity(
    conn: Conn<'_>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Activity> {
    let (since, until) = (micros(since), micros(until));
    let raw: RawActivity = dispatch!(conn, |c, pg| {
        let opened = sqlx::query_as(per_day!(
            pg,
            "created_at",
            "",
            "FROM tickets WHERE created_at >= $1 AND created_at <= $2 GROUP BY 1"
        ))
        .bind(since)
        .bind(until)
        .fetch_all(&mut *c)
        .await
        .map_err(db("count the tickets opened per day"))?;
        let resolved = sqlx::query_as(per_day!(
            pg,
            "resolved_at",
            "",
            "FROM tickets WHERE status = 'resolved' AND resolved_at >= $1 AND resolved_at <= $2 \
             GROUP BY 1"
        ))
        .bind(since)
        .bind(until)
        .fetch_all(&mut *c)
        .await
        .map_err(db("count the tickets resolved per day"))?;
        let decisions = sqlx::query_as(per_day!(
            pg,
            "at",
            ", kind",
            "FROM bot_decisions WHERE at >= $1 AND at <= $2 GROUP BY 1, 2"
        ))
        .bind(since)
        .bind(until)
        .fetch_all(&mut *c)
        .await
        .map_err(db("count the bot's decisions per day"))?;
        let first = sqlx::query_as(
            "SELECT t.created_at, MIN(l.at) FROM tickets t \
             JOIN transcript_lines l ON l.ticket_id = t.id AND l.sender_kind = 'staff' \
             WHERE t.created_at >= $1 AND t.created_at <= $2 GROUP BY t.id, t.created_at",
        )
        .bind(since)
        .bind(until)
        .fetch_all(&mut *c)
        .await
        .map_err(db("measure first responses"))?;
        let resolutions = sqlx::query_as(
            "SELECT created_at, resolved_at FROM tickets \
             WHERE status = 'resolved' AND resolved_at >= $1 AND resolved_at <= $2",
        )
        .bind(since)
        .bind(until)
        .fetch_all(&mut *c)
        .await
        .map_err(db("measure resolution times"))?;
        let ratings = sqlx::query_as(
            "SELECT score, COUNT(*) FROM ratings WHERE at >= $1 AND at <= $2 GROUP BY score",
        )
        .bind(since)
        .bind(until)
        .fetch_all(&mut *c)
        .await
        .map_err(db("count the ratings"))?;
        RawActivity {
            opened,
            resolved,
            decisions,
            first_responses: first,
            resolutions,
            ratings,
        }
    });
    let days = |rows: Vec<Day>| -> Result<Vec<(NaiveDate, i64)>> {
        rows.into_iter().map(|(d, n)| Ok((day(&d)?, n))).collect()
    };
    let spans = |rows: Vec<Span>| -> Vec<TimeDelta> {
        rows.into_iter()
            .filter_map(|(from, to)| to.map(|to| (to - from).max(TimeDelta::zero())))
            .collect()
    };
    Ok(Activity {
        opened: days(raw.opened)?,
        resolved: days(raw.resolved)?,
        decisions: raw
            .decisions
            .into_iter()
            .map(|(d, kind, n)| Ok((day(&d)?, kind, n)))
            .collect::<Result<_>>()?,
        first_responses: spans(raw.first_responses),
        resolutions: spans(raw.resolutions),
        ratings: raw
            .ratings
            .into_iter()
            .map(|(score, n)| {
                let score = u8::try_from(score).map_err(|_| StoreError::Corrupt {
                    what: format!("rating score {score}"),
                })?;
                Ok((score, n))
            })
            .collect::<Result<_>>()?,
    })
}
