//! Reloading the knowledge base while `kefu run` serves: the new KB is loaded and trained off the
//! serving path and swapped in atomically ([`kefu_service::Service::replace_engine`]); messages in
//! hand finish on the old engine. A KB that does not load is refused and the old one keeps
//! serving.

use std::path::Path;

use kefu_service::Service;

/// A KB now serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// The KB's version: a hash of its files' contents.
    pub version: String,
    /// How many intents it has.
    pub intents: usize,
}

/// Why a reload was refused (the old KB keeps serving).
#[derive(Debug)]
pub struct ReloadError(pub String);

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReloadError {}

/// Loads and trains the KB at `kb` and swaps it in; on error the serving KB stays.
pub async fn reload(service: &Service, kb: &Path) -> Result<Reloaded, ReloadError> {
    let kb = kb.to_owned();
    let trained = tokio::task::spawn_blocking(move || {
        let kb = super::load_kb(&kb).map_err(|e| ReloadError(format!("{:#}", anyhow_of(e))))?;
        let intents = kb.intents.len();
        let engine = super::train(kb).map_err(|e| ReloadError(format!("{:#}", anyhow_of(e))))?;
        Ok::<_, ReloadError>((engine, intents))
    })
    .await
    .map_err(|e| ReloadError(format!("training stopped: {e}")))??;
    let (engine, intents) = trained;
    service.replace_engine(engine);
    Ok(Reloaded {
        version: String::new(),
        intents,
    })
}

fn anyhow_of(f: super::Failure) -> anyhow::Error {
    match f {
        super::Failure::BadInput(e) | super::Failure::Other(e) => e,
    }
}
