//! The store's error type.

/// What can go wrong in the store. Messages read as sentences and never contain a password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names no backend this store knows.
    #[error(
        "unsupported database URL {url}: use a SQLite path, sqlite://PATH?mode=rwc or postgres://…"
    )]
    UnsupportedUrl {
        /// The URL, password removed.
        url: String,
    },

    /// The URL looked right but its options could not be parsed.
    #[error("invalid database URL {url}")]
    InvalidUrl {
        /// The URL, password removed.
        url: String,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },

    /// The database could not be opened or reached.
    #[error("could not connect to the database at {url}")]
    Connect {
        /// The URL, password removed.
        url: String,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },

    /// The URL cannot work as a database (empty, in-memory, no file named).
    #[error(
        "database.url {url:?} cannot be used: {reason}; fix: give a SQLite file (sqlite://kefu.db) or postgres://user@host/db"
    )]
    BadUrl {
        /// The URL, password removed.
        url: String,
        /// Why not.
        reason: &'static str,
    },

    /// The database server did not answer in time.
    #[error("could not connect to the database at {url} within {}s: is the server running and reachable?", after.as_secs())]
    ConnectTimeout {
        /// The URL, password removed.
        url: String,
        /// How long the connection was tried.
        after: std::time::Duration,
    },

    /// The schema migrations failed to apply.
    #[error("could not apply the database migrations at {url}")]
    Migrate {
        /// The URL, password removed.
        url: String,
        /// What the migrator said.
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A query or a transaction statement failed.
    #[error("database error while trying to {operation}")]
    Database {
        /// What the store was doing, as a verb phrase ("claim a ticket").
        operation: &'static str,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },

    /// A ticket with this verification code exists already. On PostgreSQL the failed statement
    /// aborts the transaction: drop the unit of work and start again with a new code.
    #[error("a ticket with code {code} exists already")]
    DuplicateTicketCode {
        /// The code that clashed.
        code: String,
    },

    /// An operation named a conversation id that does not exist.
    #[error("no conversation with id {id}")]
    UnknownConversation {
        /// The id given.
        id: i64,
    },

    /// The route is already where another conversation of the platform continues. On
    /// PostgreSQL the failed statement aborts a surrounding transaction.
    #[error("the {platform} route {route} belongs to another conversation")]
    RouteTaken {
        /// The platform.
        platform: String,
        /// The route that clashed.
        route: String,
    },

    /// Another staff account is linked to this platform user already.
    #[error("the {platform} user {id} is linked to another staff account already")]
    StaffIdTaken {
        /// `telegram` or `discord`.
        platform: String,
        /// The platform's user id.
        id: String,
    },

    /// A staff account was to be linked on a platform that has no staff accounts.
    #[error("staff accounts link to telegram or discord users, not {platform}")]
    UnknownStaffPlatform {
        /// The platform named.
        platform: String,
    },

    /// A rating outside 1–5 was given.
    #[error("a rating must be between 1 and 5, got {score}")]
    InvalidRating {
        /// The score given.
        score: u8,
    },

    /// A stored value could not be read back (an unknown status or priority name, for example):
    /// the database was changed by something other than this store.
    #[error("unexpected stored value: {what}")]
    Corrupt {
        /// What was wrong.
        what: String,
    },
}

impl StoreError {
    /// True when the failure says nothing about the data — the database is unreachable, busy,
    /// restarting, or a transaction lost a race — so the same operation may succeed later;
    /// false when the data itself is refused (a value the database cannot store, a constraint),
    /// which no retry can fix.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::ConnectTimeout { .. } => true,
            Self::Database { source, .. } => transient_sqlx(source),
            Self::UnsupportedUrl { .. }
            | Self::BadUrl { .. }
            | Self::InvalidUrl { .. }
            | Self::Migrate { .. }
            | Self::DuplicateTicketCode { .. }
            | Self::UnknownConversation { .. }
            | Self::RouteTaken { .. }
            | Self::StaffIdTaken { .. }
            | Self::UnknownStaffPlatform { .. }
            | Self::InvalidRating { .. }
            | Self::Corrupt { .. } => false,
        }
    }
}

fn transient_sqlx(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            // PostgreSQL: connection exceptions (08…), serialization failure and deadlock
            // (40…), insufficient resources (53…), operator intervention such as a restart (57…).
            // SQLite: BUSY (5) and LOCKED (6), with their extended codes (x + 256·n).
            let sqlite_busy = code.parse::<i64>().is_ok_and(|n| matches!(n & 0xff, 5 | 6));
            ["08", "40", "53", "57"].iter().any(|p| code.starts_with(p)) || sqlite_busy
        }
        _ => false,
    }
}

/// Shorthand for the store's results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Wraps a driver error with what the store was doing.
pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { operation, source }
}

/// The URL with any password (in the user-info part or a `password=` parameter) replaced by `***`,
/// for error messages and logs.
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let (head, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    out.push_str(head);
    // The authority ends at the first '/', '?' or '#'.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rfind('@') {
        Some(at) if !head.is_empty() => {
            let (user_info, host) = authority.split_at(at);
            match user_info.find(':') {
                Some(colon) => {
                    out.push_str(&user_info[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(user_info),
            }
            out.push_str(host);
        }
        _ => out.push_str(authority),
    }
    // Query parameters: hide `password=` values.
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_password_in_the_user_info_is_hidden() {
        assert_eq!(
            redact_url("postgres://kefu:s3cr3t@db.example:5432/kefu"),
            "postgres://kefu:***@db.example:5432/kefu"
        );
    }

    #[test]
    fn a_password_containing_at_signs_is_hidden_whole() {
        assert_eq!(
            redact_url("postgresql://kefu:p@ss@db/kefu?sslmode=require"),
            "postgresql://kefu:***@db/kefu?sslmode=require"
        );
    }

    #[test]
    fn a_password_parameter_is_hidden() {
        assert_eq!(
            redact_url("postgres://db/kefu?user=kefu&password=hunter2&sslmode=disable"),
            "postgres://db/kefu?user=kefu&password=***&sslmode=disable"
        );
    }

    #[test]
    fn urls_without_secrets_are_unchanged() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/test",
            "sqlite://data/kefu.db?mode=rwc",
            "data/kefu.db",
            "/var/lib/kefu/kefu@home.db",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }
}
