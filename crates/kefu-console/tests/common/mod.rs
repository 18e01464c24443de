//! What the console tests share: a real service (the default KB's engine, a SQLite file in a
//! temporary directory) behind the console's router on a free port of 127.0.0.1, and a cookie-
//! keeping HTTP client that does not follow redirects.

#![allow(dead_code, reason = "each test uses part of it")]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::Utc;
use kefu_console::ConsoleConfig;
use kefu_core::SupportHours;
use kefu_core::model::{ConversationRef, Inbound};
use kefu_nlu::engine::Engine;
use kefu_nlu::kb::KnowledgeBase;
use kefu_service::{FloodLimit, Handled, Service, ServiceConfig, StaffRole};
use kefu_store::{Store, StoreOptions};
use reqwest::header::LOCATION;
use reqwest::{Client, Response, StatusCode};

pub const PASSWORD: &str = "correct horse battery staple";

fn kb() -> KnowledgeBase {
    static KB: OnceLock<KnowledgeBase> = OnceLock::new();
    KB.get_or_init(|| {
        kefu_nlu::kb::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/kb"))
            .expect("default KB")
    })
    .clone()
}

/// The console on a fresh database.
pub struct Console {
    pub service: Arc<Service>,
    pub base: String,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Console {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Console {
    /// Served over plain HTTP, with no public URL.
    pub async fn start() -> Console {
        Self::start_with("").await
    }

    /// With `public_url` as the configured public URL.
    pub async fn start_with(public_url: &str) -> Console {
        Self::start_configured(ConsoleConfig {
            public_url: public_url.to_owned(),
            ..ConsoleConfig::default()
        })
        .await
    }

    /// With `config`.
    pub async fn start_configured(console: ConsoleConfig) -> Console {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("kefu.db").display());
        let store = Store::connect_with(
            &url,
            &StoreOptions {
                max_connections: 8,
                ..StoreOptions::default()
            },
        )
        .await
        .expect("store");
        let mut config = ServiceConfig::new(
            SupportHours::always(),
            FloodLimit {
                max_messages: 1000,
                window: Duration::from_secs(10),
            },
        );
        config.instance = "console-test".into();
        let service = Arc::new(Service::new(Engine::train(kb()), store, config));
        let app = kefu_console::router(service.clone(), console);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("serve");
        });
        Console {
            service,
            base: format!("http://{addr}"),
            _dir: dir,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The `Host` this server is reached at (`127.0.0.1:PORT`), for a same-origin `Origin`.
    pub fn origin(&self) -> String {
        self.base.clone()
    }

    /// A staff account with the common password.
    pub async fn staff(&self, name: &str, role: StaffRole) {
        self.service
            .add_staff(name, role, PASSWORD, Utc::now())
            .await
            .expect("add staff");
    }

    /// A browser-like client (keeps cookies, follows no redirect) signed in as `name`, and
    /// the session's CSRF token.
    pub async fn login(&self, name: &str) -> (Client, String) {
        let client = client();
        let response = client
            .post(self.url("/login"))
            .form(&[("name", name), ("password", PASSWORD)])
            .send()
            .await
            .expect("POST /login");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{name} signs in");
        let page = client
            .get(self.url("/queue"))
            .send()
            .await
            .expect("GET /queue");
        assert_eq!(page.status(), StatusCode::OK);
        let csrf = csrf_of(&page.text().await.expect("page"));
        (client, csrf)
    }

    /// A user's message, as an adapter hands it to the service.
    pub async fn say(&self, user: &ConversationRef, name: &str, id: &str, text: &str) -> Handled {
        self.service
            .handle_inbound(
                &Inbound {
                    conversation: user.clone(),
                    user_name: name.to_owned(),
                    platform_message_id: id.into(),
                    text: text.into(),
                    at: Utc::now(),
                    attachments: Vec::new(),
                    pressed: false,
                },
                Utc::now(),
            )
            .await
            .expect("handle inbound")
    }

    /// The user asks for a human ("转人工"): the ticket's id.
    pub async fn escalate(&self, user: &ConversationRef, name: &str, id: &str) -> i64 {
        match self.say(user, name, id, "转人工").await {
            Handled::Processed {
                ticket_opened: Some(ticket),
                ..
            } => ticket.id,
            other => panic!("a ticket opens: {other:?}"),
        }
    }
}

/// A Telegram user.
pub fn user(n: u32) -> ConversationRef {
    ConversationRef {
        platform: "telegram".into(),
        chat_id: (1000 + n).to_string(),
        user_id: (1000 + n).to_string(),
    }
}

/// A client that keeps cookies and follows no redirect.
pub fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The CSRF token in a page's forms.
pub fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = page.find(marker).expect("a csrf field") + marker.len();
    let end = page[at..].find('"').expect("the field's end");
    page[at..at + end].to_owned()
}

/// Where a redirect points.
pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
