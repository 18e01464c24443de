//! What the service tests share: a database per test (a SQLite file, or a fresh schema of
//! `KEFU_TEST_DATABASE_URL`'s PostgreSQL database, dropped afterwards), the default KB's engine,
//! and messages from a few users.

#![allow(dead_code, reason = "each test binary uses part of it")]

use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::Utc;
use kefu_core::SupportHours;
use kefu_core::model::{ConversationRef, Inbound};
use kefu_nlu::engine::Engine;
use kefu_nlu::kb::KnowledgeBase;
use kefu_service::{FloodLimit, Service, ServiceConfig};
use kefu_store::{Store, StoreOptions};
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

pub fn kb() -> KnowledgeBase {
    static KB: OnceLock<KnowledgeBase> = OnceLock::new();
    KB.get_or_init(|| {
        kefu_nlu::kb::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/kb"))
            .expect("default KB")
    })
    .clone()
}

pub fn engine() -> Engine {
    Engine::train(kb())
}

/// A test database; PostgreSQL's schema is dropped when this is.
pub struct Db {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    schema: Option<(String, String)>,
}

impl Db {
    /// A new SQLite file.
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("tempdir");
        Db {
            url: format!("sqlite://{}", dir.path().join("kefu.db").display()),
            _dir: Some(dir),
            schema: None,
        }
    }

    /// A new schema on `KEFU_TEST_DATABASE_URL`, or `None` (the test says it is skipped) when
    /// the variable is not set.
    pub async fn postgres() -> Option<Db> {
        let Ok(base) = std::env::var("KEFU_TEST_DATABASE_URL") else {
            eprintln!("PostgreSQL part skipped: KEFU_TEST_DATABASE_URL is not set");
            return None;
        };
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "kefu_svc_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            Utc::now().timestamp_subsec_nanos()
        );
        let mut admin = PgConnection::connect(&base)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&mut admin)
            .await
            .expect("create schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        Some(Db {
            url: format!("{base}{separator}options=-csearch_path%3D{schema}"),
            _dir: None,
            schema: Some((base, schema)),
        })
    }

    /// Both backends: SQLite always, PostgreSQL when configured.
    pub async fn each() -> Vec<Db> {
        let mut dbs = vec![Db::sqlite()];
        dbs.extend(Db::postgres().await);
        dbs
    }

    pub async fn store(&self) -> Store {
        Store::connect_with(
            &self.url,
            &StoreOptions {
                max_connections: 8,
                ..StoreOptions::default()
            },
        )
        .await
        .expect("store")
    }

    /// A service on this database, named `instance`.
    pub async fn service(&self, instance: &str) -> Service {
        self.service_with(instance, |_| {}).await
    }

    pub async fn service_with(
        &self,
        instance: &str,
        edit: impl FnOnce(&mut ServiceConfig),
    ) -> Service {
        let mut config = config();
        config.instance = instance.to_owned();
        edit(&mut config);
        Service::new(engine(), self.store().await, config)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.schema.take() {
            // Dropped from a plain thread: the test's runtime may be gone.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(mut admin) = PgConnection::connect(&base).await {
                        let _ =
                            sqlx::query(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
                                .execute(&mut admin)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

pub fn config() -> ServiceConfig {
    ServiceConfig::new(
        SupportHours::always(),
        FloodLimit {
            max_messages: 1000,
            window: Duration::from_secs(10),
        },
    )
}

pub fn user(n: u32) -> ConversationRef {
    ConversationRef {
        platform: "telegram".into(),
        chat_id: (1000 + n).to_string(),
        user_id: (1000 + n).to_string(),
    }
}

pub fn alice() -> ConversationRef {
    user(0)
}

pub fn message_from(conversation: &ConversationRef, id: &str, text: &str) -> Inbound {
    Inbound {
        conversation: conversation.clone(),
        user_name: format!("user {}", conversation.user_id),
        platform_message_id: id.into(),
        text: text.into(),
        at: Utc::now(),
        attachments: Vec::new(),
        pressed: false,
    }
}

pub fn message(id: &str, text: &str) -> Inbound {
    message_from(&alice(), id, text)
}
