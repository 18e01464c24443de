//! Reloading the knowledge base while `kefu run` serves: the new KB is loaded and trained off the
//! serving path (a blocking thread) and swapped in atomically
//! ([`kefu_service::Service::replace_engine`]); messages in hand finish on the old engine, later
//! ones use the new one. A KB that does not load is refused and the old one keeps serving; the
//! refusal names each problem's file:line and its fix.
//!
//! [`reload`] is the one way in (SIGHUP, the admin endpoint and the file watcher all call it) and
//! logs its outcome itself; [`watch`] reloads when the KB's files change; [`kb_version`] is the
//! version a KB's files give.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kefu_nlu::engine::Engine;
use kefu_nlu::kb::KbError;
use kefu_service::Service;
use sha2::{Digest, Sha256};

/// A KB now serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// The KB's version: [`kb_version`] of the files it was loaded from.
    pub version: String,
    /// How many intents it has.
    pub intents: usize,
}

/// Why a reload was refused (the old KB keeps serving). One line: each problem's file:line, what
/// is wrong and its fix.
#[derive(Debug)]
pub struct ReloadError(pub String);

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReloadError {}

/// How long the KB's files must stay quiet after a change before [`watch`] reloads: an editor's
/// save (or a `cp` of several files) is a burst of events, and the KB is read once it is over.
pub const DEBOUNCE: Duration = Duration::from_millis(500);

/// A KB that never stops changing is still reloaded this long after its first change.
const DEBOUNCE_AT_MOST: Duration = Duration::from_secs(5);

/// How often the fallback watcher (when the system's file notifications are unavailable) looks at
/// the files.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// One reload at a time in this process (SIGHUP, the admin endpoint and the watcher may ask at
/// once): the last one asked for reads the newest files and is also the last swapped in.
static RELOADING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The version of the KB at `kb` (a `.toml` file or a directory of them): the first 12 hex digits
/// of a SHA-256 over each file's name and contents, in the order the loader reads them. The same
/// files give the same version wherever they are; any change to a file the loader reads (and only
/// that: not `eval.jsonl`, not an editor's swap file) gives another.
pub fn kb_version(kb: &Path) -> std::io::Result<String> {
    let sources = read_sources(kb).map_err(|e| match e {
        KbError::Io { source, .. } => source,
        other => std::io::Error::new(std::io::ErrorKind::NotFound, other.to_string()),
    })?;
    Ok(version_of(&sources))
}

/// Loads and trains the KB at `kb` and swaps it in; on error the serving KB stays. The outcome is
/// logged here (info with the version and the number of intents, or error with the reason), so
/// callers need not log it again.
pub async fn reload(service: &Service, kb: &Path) -> Result<Reloaded, ReloadError> {
    let _one_at_a_time = RELOADING.lock().await;
    let path = kb.to_owned();
    let result = match tokio::task::spawn_blocking(move || load_and_train(&path)).await {
        Ok(Ok((engine, reloaded))) => {
            if service.replace_engine(engine) {
                Ok(reloaded)
            } else {
                Err(refused(
                    kb,
                    "this process answers no users (no KB to replace)",
                ))
            }
        }
        Ok(Err(e)) => Err(e),
        Err(e) => Err(refused(kb, &format!("training stopped: {e}"))),
    };
    match &result {
        Ok(r) => tracing::info!(
            kb = %kb.display(),
            version = %r.version,
            intents = r.intents,
            "knowledge base reloaded"
        ),
        Err(e) => tracing::error!(
            kb = %kb.display(),
            error = %e,
            "knowledge base reload refused; the old one keeps serving"
        ),
    }
    result
}

/// Reloads the KB at `kb` (see [`reload`]) whenever its files change, until `shutdown` turns
/// true; `on_result` hears each outcome (for metrics and readiness). It watches the KB's directory
/// (the file's directory when `kb` is one file) without recursing, so a save by renaming a new
/// file over the old one is seen. A burst of changes gives one reload, [`DEBOUNCE`] after the
/// last; a change that leaves the KB's files as they were (an editor's swap file, `eval.jsonl`, a
/// `touch`) gives none. When the system's file notifications are unavailable, the files are looked
/// at every second instead (logged as a warning).
pub async fn watch(
    service: &Service,
    kb: &Path,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    on_result: impl Fn(&Result<Reloaded, ReloadError>),
) {
    let dir = watched_dir(kb);
    let (tx, mut changes) = tokio::sync::mpsc::unbounded_channel::<()>();
    let Some(_watcher) = start_watcher(&dir, tx) else {
        return;
    };
    tracing::info!(dir = %dir.display(), "watching the knowledge base for changes");
    // The version serving: the files as they are now, which `kefu run` loaded at start.
    let mut last = kb_version(kb).ok();
    loop {
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            change = changes.recv() => {
                if change.is_none() {
                    return;
                }
            }
        }
        // Debounce: wait until the files have been quiet for a while.
        let first = Instant::now();
        loop {
            let quiet = DEBOUNCE.min(DEBOUNCE_AT_MOST.saturating_sub(first.elapsed()));
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
                change = changes.recv() => {
                    if change.is_none() {
                        return;
                    }
                }
                () = tokio::time::sleep(quiet) => break,
            }
        }
        let now = kb_version(kb).ok();
        if now.is_some() && now == last {
            continue;
        }
        let result = reload(service, kb).await;
        last = match &result {
            Ok(r) => Some(r.version.clone()),
            // Not tried again until the files change.
            Err(_) => now,
        };
        on_result(&result);
    }
}

/// The directory whose changes are the KB's: the KB itself, or the file's directory.
fn watched_dir(kb: &Path) -> PathBuf {
    if kb.is_dir() {
        return kb.to_owned();
    }
    match kb.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Starts watching `dir`, sending on `tx` for each change (reads are not changes). Falls back to
/// polling when the system's notifications cannot be used; `None` (logged) when neither works.
fn start_watcher(
    dir: &Path,
    tx: tokio::sync::mpsc::UnboundedSender<()>,
) -> Option<Box<dyn notify::Watcher + Send>> {
    use notify::{EventKind, RecursiveMode, Watcher as _};
    let handler = move |event: notify::Result<notify::Event>| match event {
        Ok(e) if matches!(e.kind, EventKind::Access(_)) => {}
        Ok(_) => {
            let _ = tx.send(());
        }
        Err(e) => tracing::warn!(error = %e, "watching the knowledge base"),
    };
    let native = notify::recommended_watcher(handler.clone()).and_then(|mut w| {
        w.watch(dir, RecursiveMode::NonRecursive)?;
        Ok(w)
    });
    let e = match native {
        Ok(w) => return Some(Box::new(w)),
        Err(e) => e,
    };
    tracing::warn!(
        dir = %dir.display(),
        error = %e,
        "cannot watch the knowledge base with file notifications; looking at its files every second instead (fix: raise fs.inotify.max_user_watches / max_user_instances)"
    );
    let config = notify::Config::default()
        .with_poll_interval(POLL_EVERY)
        .with_compare_contents(true);
    let polled = notify::PollWatcher::new(handler, config).and_then(|mut w| {
        w.watch(dir, RecursiveMode::NonRecursive)?;
        Ok(w)
    });
    match polled {
        Ok(w) => Some(Box::new(w)),
        Err(e) => {
            tracing::error!(
                dir = %dir.display(),
                error = %e,
                "cannot watch the knowledge base; it reloads only on SIGHUP or POST /admin/reload-kb"
            );
            None
        }
    }
}

/// Reads, parses, validates and trains the KB, all from one reading of its files (so the version
/// is the version of what was trained). Runs on a blocking thread.
fn load_and_train(kb: &Path) -> Result<(Engine, Reloaded), ReloadError> {
    let sources = read_sources(kb).map_err(|e| refused_kb(kb, &e))?;
    let version = version_of(&sources);
    let borrowed: Vec<(&Path, &str)> = sources
        .iter()
        .map(|(p, t)| (p.as_path(), t.as_str()))
        .collect();
    let loaded = kefu_nlu::kb::parse_sources(kb, &borrowed).map_err(|e| refused_kb(kb, &e))?;
    for w in &loaded.warnings {
        tracing::warn!(warning = %w, "knowledge base");
    }
    let intents = loaded.intents.len();
    let engine = super::train(loaded).map_err(|f| {
        let (super::Failure::BadInput(e) | super::Failure::Other(e)) = f;
        refused(kb, &format!("{e:#}"))
    })?;
    Ok((engine, Reloaded { version, intents }))
}

/// The KB's files and their text, as [`kefu_nlu::kb::load`] reads them: a directory's `*.toml`
/// files in name order, or the one file.
pub(crate) fn read_sources(kb: &Path) -> Result<Vec<(PathBuf, String)>, KbError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| KbError::Io { path, source }
    };
    let files = if std::fs::metadata(kb).map_err(io(kb))?.is_dir() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(kb).map_err(io(kb))? {
            let p = entry.map_err(io(kb))?.path();
            if p.extension().is_some_and(|e| e == "toml") && p.is_file() {
                files.push(p);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(KbError::NoFiles(kb.to_owned()));
        }
        files
    } else {
        vec![kb.to_owned()]
    };
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).map_err(io(&f))?;
            Ok((f, text))
        })
        .collect()
}

fn version_of(sources: &[(PathBuf, String)]) -> String {
    let mut hash = Sha256::new();
    for (file, text) in sources {
        let name = file.file_name().unwrap_or(file.as_os_str());
        hash.update(name.as_encoded_bytes());
        hash.update([0]);
        hash.update((text.len() as u64).to_le_bytes());
        hash.update(text.as_bytes());
    }
    hash.finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The refusal of a KB that did not load: every problem on one line, each with its file:line and
/// fix.
fn refused_kb(kb: &Path, e: &KbError) -> ReloadError {
    let reason = match e {
        KbError::Invalid { problems, .. } => {
            let n = problems.len();
            let list = problems
                .iter()
                .map(|p| one_line(&p.to_string()))
                .collect::<Vec<_>>()
                .join(" | ");
            format!("{n} problem{}: {list}", if n == 1 { "" } else { "s" })
        }
        KbError::Io { path, source } => format!(
            "cannot read {}: {source}; fix: check that the file exists and is readable (a .toml file or a directory of them)",
            path.display()
        ),
        KbError::NoFiles(_) => one_line(&e.to_string()),
    };
    refused(kb, &reason)
}

fn refused(kb: &Path, reason: &str) -> ReloadError {
    ReloadError(format!(
        "knowledge base {} not reloaded (the old one keeps serving): {reason}",
        kb.display()
    ))
}

/// A message with its line breaks (a TOML parser's message can have several lines) made spaces.
fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "tests: a failed expectation is a failed test"
    )]

    use super::*;

    const KB_A: &str = r#"
[meta]
default_language = "en"

[[intent]]
id = "deposit.missing"
title = { en = "Deposit missing" }
examples.en = ["my deposit has not arrived", "deposit not credited", "where is my deposit"]
answer.en = "Deposits arrive after the network confirms them. VERSION-A"

[[intent]]
id = "withdrawal.failed"
title = { en = "Withdrawal failed" }
examples.en = ["my withdrawal failed", "withdrawal was rejected", "cannot withdraw"]
answer.en = "Check the address and the network."
"#;

    fn kb_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    async fn service(kb: &Path) -> (Service, tempfile::TempDir) {
        let db = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", db.path().join("kefu.db").display());
        let store = kefu_store::Store::connect(&url).await.unwrap();
        let config = kefu_service::ServiceConfig::new(
            kefu_core::SupportHours::always(),
            kefu_service::FloodLimit {
                max_messages: 100,
                window: Duration::from_secs(10),
            },
        );
        let engine = super::super::load_engine(kb).unwrap().engine;
        (Service::new(engine, store, config), db)
    }

    fn answer(service: &Service, q: &str) -> String {
        let engine = service.engine().unwrap();
        let d = engine.decide(q);
        let id = d.intent.unwrap();
        engine
            .kb()
            .intent(&id)
            .unwrap()
            .answer_in("en", None)
            .to_owned()
    }

    #[test]
    fn the_version_follows_the_files_contents_and_names_not_their_place() {
        let a = kb_dir(&[("10-a.toml", KB_A)]);
        let b = kb_dir(&[("10-a.toml", KB_A), ("notes.txt", "not a KB file")]);
        let v = kb_version(a.path()).unwrap();
        assert_eq!(v.len(), 12);
        assert!(v.chars().all(|c| c.is_ascii_hexdigit()), "{v}");
        assert_eq!(
            kb_version(b.path()).unwrap(),
            v,
            "only the loader's files count"
        );
        assert_eq!(kb_version(&a.path().join("10-a.toml")).unwrap(), v);
        std::fs::write(a.path().join("10-a.toml"), KB_A.replace("VERSION-A", "B")).unwrap();
        assert_ne!(kb_version(a.path()).unwrap(), v);
        let c = kb_dir(&[("20-a.toml", KB_A)]);
        assert_ne!(
            kb_version(c.path()).unwrap(),
            v,
            "a renamed file is a change"
        );
        assert!(kb_version(&a.path().join("missing")).is_err());
    }

    #[test]
    fn a_toml_syntax_error_is_refused_with_its_file_line_and_fix() {
        let dir = kb_dir(&[
            ("10-a.toml", KB_A),
            (
                "20-b.toml",
                "[[intent]]\nid = \"x\"\ntitle = { en = \"X\" \n",
            ),
        ]);
        let e = load_and_train(dir.path()).map(|_| ()).unwrap_err().0;
        assert!(!e.contains('\n'), "one line: {e}");
        let file_line = format!("{}:3:", dir.path().join("20-b.toml").display());
        assert!(e.contains(&file_line), "{e}");
        assert!(e.contains("fix: correct the TOML syntax"), "{e}");
        assert!(e.contains("the old one keeps serving"), "{e}");
    }

    #[test]
    fn a_validation_error_is_refused_with_its_file_line_and_fix() {
        let broken = KB_A.replace(
            "answer.en = \"Check the address and the network.\"",
            "answer.en = \"Check the address and the network.\"\nrelated = [\"no.such.intent\"]",
        );
        let dir = kb_dir(&[("10-a.toml", &broken)]);
        let e = load_and_train(dir.path()).map(|_| ()).unwrap_err().0;
        let line = broken
            .lines()
            .position(|l| l.starts_with("related"))
            .unwrap()
            + 1;
        let file_line = format!("{}:{line}:", dir.path().join("10-a.toml").display());
        assert!(e.contains(&file_line), "{e}");
        assert!(e.contains("no.such.intent"), "{e}");
        assert!(e.contains("fix: use the id of an existing intent"), "{e}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reload_swaps_the_engine_and_a_broken_kb_leaves_the_old_one() {
        let dir = kb_dir(&[("10-a.toml", KB_A)]);
        let (service, _db) = service(dir.path()).await;
        assert!(answer(&service, "my deposit has not arrived").ends_with("VERSION-A"));
        let held = service.engine().unwrap();

        let file = dir.path().join("10-a.toml");
        std::fs::write(&file, KB_A.replace("VERSION-A", "VERSION-B")).unwrap();
        let r = reload(&service, dir.path()).await.unwrap();
        assert_eq!(r.intents, 2);
        assert_eq!(r.version, kb_version(dir.path()).unwrap());
        assert!(answer(&service, "my deposit has not arrived").ends_with("VERSION-B"));
        // A message in hand keeps the engine it started with.
        assert!(
            held.kb().intents[0]
                .answer_in("en", None)
                .ends_with("VERSION-A")
        );

        let serving = service.engine().unwrap();
        std::fs::write(&file, "[[intent]\n").unwrap();
        let e = reload(&service, dir.path()).await.unwrap_err();
        assert!(e.to_string().contains("10-a.toml:1:"), "{e}");
        assert!(std::sync::Arc::ptr_eq(&serving, &service.engine().unwrap()));
        assert!(answer(&service, "my deposit has not arrived").ends_with("VERSION-B"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_watcher_reloads_once_the_files_settle_and_stops_on_shutdown() {
        let dir = kb_dir(&[("10-a.toml", KB_A)]);
        let (service, _db) = service(dir.path()).await;
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let (tx, mut results) = tokio::sync::mpsc::unbounded_channel();
        let on_result = move |r: &Result<Reloaded, ReloadError>| {
            let _ = tx.send(r.as_ref().cloned().map_err(ToString::to_string));
        };
        let file = dir.path().join("10-a.toml");
        let edits = async {
            // Let the watcher start, then save three times in a burst: one reload.
            tokio::time::sleep(Duration::from_millis(300)).await;
            for v in ["B1", "B2", "VERSION-B"] {
                std::fs::write(&file, KB_A.replace("VERSION-A", v)).unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let first = tokio::time::timeout(Duration::from_secs(20), results.recv())
                .await
                .expect("a reload within 20 s")
                .unwrap();
            let r = first.unwrap();
            assert_eq!(r.version, kb_version(dir.path()).unwrap());
            assert!(answer(&service, "my deposit has not arrived").ends_with("VERSION-B"));
            // A file that is not the KB's changes nothing.
            // (Were it reloaded, its outcome would come before the refusal below.)
            std::fs::write(dir.path().join("eval.jsonl"), "{}\n").unwrap();
            tokio::time::sleep(DEBOUNCE * 3).await;
            // A broken save is reported, and the fix after it reloads.
            std::fs::write(&file, "[[intent]\n").unwrap();
            let second = tokio::time::timeout(Duration::from_secs(20), results.recv())
                .await
                .expect("a refusal within 20 s")
                .unwrap();
            assert!(second.unwrap_err().contains("10-a.toml:1:"));
            std::fs::write(&file, KB_A.replace("VERSION-A", "VERSION-C")).unwrap();
            let third = tokio::time::timeout(Duration::from_secs(20), results.recv())
                .await
                .expect("a reload within 20 s")
                .unwrap();
            assert!(third.is_ok(), "{third:?}");
            assert!(answer(&service, "my deposit has not arrived").ends_with("VERSION-C"));
            stop.send(true).unwrap();
            results
        };
        let (mut results, ()) = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::join!(edits, watch(&service, dir.path(), shutdown, on_result))
        })
        .await
        .expect("the watcher stops on shutdown");
        assert!(results.try_recv().is_err(), "no other reload: {results:?}");
    }
}
