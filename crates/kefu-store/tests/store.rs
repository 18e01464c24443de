//! The store suite (`suite/`) run against SQLite and PostgreSQL, plus connection tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed expectation should panic with the reason"
)]

mod suite;

use std::time::Duration;

use kefu_store::{Store, StoreError, StoreOptions};

mod sqlite {
    use std::future::Future;

    use crate::suite::{TestDb, store_suite};

    /// Runs a suite test on a fresh SQLite file in its own temporary directory (a file, not
    /// `:memory:`, so WAL and several connections behave as in production).
    async fn run<F, Fut>(test: F)
    where
        F: FnOnce(TestDb) -> Fut,
        Fut: Future<Output = ()>,
    {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("kefu.db");
        let db = TestDb {
            url: format!("sqlite://{}?mode=rwc", file.display()),
            sqlite_file: Some(file),
            pg_schema: None,
        };
        test(db).await;
    }

    store_suite!(run);
}

mod postgres {
    use std::future::Future;
    use std::io::Write as _;
    use std::sync::Once;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};

    use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

    use crate::suite::{TestDb, store_suite};

    /// Runs a suite test in a new schema of `KEFU_TEST_DATABASE_URL`'s database, dropped
    /// afterwards (also when the test panics). Without the variable, says so and passes.
    async fn run<F, Fut>(test: F)
    where
        F: FnOnce(TestDb) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Ok(base) = std::env::var("KEFU_TEST_DATABASE_URL") else {
            static NOTICE: Once = Once::new();
            NOTICE.call_once(|| {
                // Straight to stderr: libtest captures `eprintln!` of passing tests.
                let _ = writeln!(
                    std::io::stderr(),
                    "PostgreSQL suite skipped: KEFU_TEST_DATABASE_URL is not set"
                );
            });
            return;
        };
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let schema = format!(
            "kefu_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&base)
            .await
            .expect("connect to KEFU_TEST_DATABASE_URL");
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&mut admin)
            .await
            .expect("create the test schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        let db = TestDb {
            url: format!("{base}{separator}options=-csearch_path%3D{schema}"),
            sqlite_file: None,
            pg_schema: Some(schema.clone()),
        };
        // In its own task so that a panic still lets us drop the schema.
        let outcome = tokio::spawn(test(db)).await;
        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
            .execute(&mut admin)
            .await
            .expect("drop the test schema");
        if let Err(err) = outcome {
            std::panic::resume_unwind(err.into_panic());
        }
    }

    store_suite!(run);
}

#[tokio::test]
async fn an_unknown_scheme_is_refused_without_showing_the_password() {
    let err = Store::connect("mysql://kefu:hunter2@db/kefu")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains("mysql://kefu:***@db/kefu"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test]
async fn a_failed_postgres_connection_names_the_url_without_the_password() {
    // Port 1 on localhost: nothing listens, the connection is refused at once.
    let options = StoreOptions {
        acquire_timeout: Duration::from_secs(1),
        ..StoreOptions::default()
    };
    let err = Store::connect_with("postgres://kefu:hunter2@127.0.0.1:1/kefu", &options)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let shown = format!("{err} / {err:?}");
    assert!(
        shown.contains("postgres://kefu:***@127.0.0.1:1/kefu"),
        "{shown}"
    );
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test]
async fn a_plain_path_opens_a_sqlite_file_creating_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested-ok.db");
    let store = Store::connect(file.to_str().unwrap()).await.unwrap();
    assert_eq!(store.backend(), kefu_store::Backend::Sqlite);
    assert!(file.exists());
    let mode: String = match &store {
        Store::Sqlite(pool) => sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap(),
        Store::Postgres(_) => unreachable!(),
    };
    assert_eq!(mode, "wal");
    let fk: i64 = match &store {
        Store::Sqlite(pool) => sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(pool)
            .await
            .unwrap(),
        Store::Postgres(_) => unreachable!(),
    };
    assert_eq!(fk, 1);
}
