//! The evaluation reports (`kefu eval --report`, `kefu kb check --report`) opened in headless
//! Chromium: every chart section is there and drawn (its SVG has a size on screen), the tables
//! are filled, the page loads nothing from the network, and a screenshot of each is saved under
//! `target/screenshots/`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

mod browser;

use std::path::Path;
use std::process::Command;

use browser::Browser;
use fantoccini::Locator;
use serde_json::json;

const CHARTS: [&str; 5] = [
    "reliability",
    "confidence",
    "thresholds",
    "length",
    "language",
];

fn kefu(args: &[&str]) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KEFU") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.output().expect("run kefu");
    assert!(
        out.status.success(),
        "kefu {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn check_report(browser: &Browser, file: &Path, screenshot: &str) {
    let html = std::fs::read_to_string(file).expect("the report");
    for forbidden in [
        "<script src",
        "<link ",
        "src=\"http",
        "href=\"http",
        "url(http",
    ] {
        assert!(
            !html.contains(forbidden),
            "the report is self-contained: it has {forbidden:?}"
        );
    }
    browser
        .c()
        .goto(&format!("file://{}", file.display()))
        .await
        .expect("open the report");
    for id in CHARTS {
        let svg = browser.wait_for(&format!("section#{id} figure svg")).await;
        let (_, _, w, h) = svg.rectangle().await.expect("a box");
        assert!(w > 200.0 && h > 100.0, "{id}: the chart is drawn ({w}×{h})");
        let marks = svg
            .find_all(Locator::Css("path, polyline, rect, circle, line"))
            .await
            .expect("marks");
        assert!(
            marks.len() > 5,
            "{id}: the chart has marks ({})",
            marks.len()
        );
    }
    let rows = browser
        .c()
        .find_all(Locator::Css("section#intents table tr"))
        .await
        .expect("the per-intent table");
    assert!(rows.len() > 5, "per-intent rows: {}", rows.len());
    let texts = browser
        .c()
        .execute(
            "return Array.from(document.querySelectorAll('h2')).map(h => h.textContent);",
            vec![],
        )
        .await
        .expect("headings");
    assert!(
        texts
            .as_array()
            .is_some_and(|h| h.contains(&json!("Per-intent precision and recall"))),
        "{texts}"
    );
    browser.screenshot(screenshot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evaluation_and_kb_check_reports_open_in_a_browser_with_their_charts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let eval = dir.path().join("eval.html");
    let check = dir.path().join("check.html");
    kefu(&[
        "eval",
        "--kb",
        "config/kb",
        "--cases",
        "config/kb/eval.jsonl",
        "--report",
        eval.to_str().expect("utf-8 path"),
    ]);
    kefu(&[
        "kb",
        "check",
        "config/kb",
        "--report",
        check.to_str().expect("utf-8 path"),
    ]);
    let browser = Browser::start().await;
    check_report(&browser, &eval, "eval-report").await;
    check_report(&browser, &check, "kb-check-report").await;
    browser.close().await;
}
