//! Headless Chromium for the browser tests: chromedriver on a free port and a WebDriver
//! session through it (`fantoccini`), with waits that fail with the page's source, a reload mark
//! and screenshots under `target/`.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`;
//! `.ci/run` installs them).

#![allow(dead_code, reason = "each test file uses part of it")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// How long a wait for the page lasts.
pub const WAIT: Duration = Duration::from_secs(15);

/// chromedriver on a free port, and a headless Chromium session through it.
pub struct Browser {
    driver: Child,
    client: Option<Client>,
}

impl Browser {
    pub async fn start() -> Browser {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().expect("addr").port()
        };
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({e}); fix: install Chromium and its driver \
                     (Debian: apt-get install chromium chromium-driver; .ci/run does it)"
                )
            });
        let mut browser = Browser {
            driver,
            client: None,
        };
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                            "--disable-dev-shm-usage", "--window-size=1280,900"]}),
        );
        let deadline = Instant::now() + WAIT * 2;
        loop {
            match ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => {
                    browser.client = Some(c);
                    return browser;
                }
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "no browser session through chromedriver: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    pub fn c(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    pub async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.close().await;
        }
    }

    /// Waits (bounded) for an element; the page's text in the failure.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .c()
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!("no {css} ({e}); the page:\n{}", self.page().await),
        }
    }

    /// Waits (bounded) until the element's text contains `needle`.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = match self.c().find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if found.contains(needle) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed {needle:?}; it shows {found:?}; the page:\n{}",
                self.page().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn page(&self) -> String {
        self.c().source().await.unwrap_or_default()
    }

    /// Marks the loaded document: the mark survives only as long as the page is not reloaded.
    pub async fn mark(&self) {
        self.c()
            .execute("window.__kefuMark = 'not reloaded'; return true;", vec![])
            .await
            .expect("mark the page");
    }

    pub async fn still_marked(&self) -> bool {
        self.c()
            .execute("return window.__kefuMark === 'not reloaded';", vec![])
            .await
            .expect("read the mark")
            == json!(true)
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.c().screenshot().await.expect("a screenshot");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), &png).expect("write screenshot");
        assert!(png.starts_with(b"\x89PNG"), "{name}: a PNG");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
