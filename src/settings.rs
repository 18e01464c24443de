//! Configuration: `config/default.toml`, then `config/$KEFU_ENV.toml` if present, then `KEFU__…`
//! environment variables (`KEFU__NLU__KB` sets `nlu.kb`). Unknown keys are rejected by name, so a
//! typo in a deployment's file is an error at start-up rather than a silently ignored setting.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The shipped defaults, used when no `config/default.toml` is found beside the working directory.
const EMBEDDED_DEFAULTS: &str = include_str!("../config/default.toml");

/// Every setting Kefu reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Natural-language understanding.
    pub nlu: NluSettings,
    /// Persistence.
    pub database: DatabaseSettings,
    /// Support hours.
    pub support: SupportSettings,
    /// Flood control.
    pub flood: FloodSettings,
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path` (created if missing) or `postgres://…`. A password belongs in the
    /// environment (`KEFU__DATABASE__URL`), never in a committed file.
    pub url: String,
}

/// `[support]`: when staff answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupportSettings {
    /// IANA timezone, e.g. "Asia/Shanghai".
    pub timezone: String,
    /// "daily", "mon-fri", "mon,wed,fri"…
    pub days: String,
    /// Opening time, "HH:MM".
    pub open: String,
    /// Closing time, "HH:MM".
    pub close: String,
}

/// `[flood]`: per-user flood control.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloodSettings {
    /// Messages allowed per window.
    pub max_messages: usize,
    /// The window, in seconds.
    pub window_secs: u64,
}

/// `[nlu]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NluSettings {
    /// The knowledge base: a TOML file or a directory of them.
    pub kb: PathBuf,
}

impl Settings {
    /// Loads the layered configuration from `dir` (default `config`, or `$KEFU_CONFIG_DIR`).
    pub fn load() -> anyhow::Result<Settings> {
        let dir = std::env::var_os("KEFU_CONFIG_DIR")
            .map_or_else(|| PathBuf::from("config"), PathBuf::from);
        Self::load_from(&dir)
    }

    fn load_from(dir: &Path) -> anyhow::Result<Settings> {
        let default_file = dir.join("default.toml");
        let mut builder = config::Config::builder();
        builder = if default_file.is_file() {
            builder.add_source(config::File::from(default_file.as_path()))
        } else {
            builder.add_source(config::File::from_str(
                EMBEDDED_DEFAULTS,
                config::FileFormat::Toml,
            ))
        };
        if let Ok(env) = std::env::var("KEFU_ENV") {
            builder = builder
                .add_source(config::File::from(dir.join(format!("{env}.toml"))).required(false));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("KEFU")
                .prefix_separator("__")
                .separator("__"),
        );
        let cfg = builder
            .build()
            .with_context(|| format!("reading configuration from {}", dir.display()))?;
        cfg.try_deserialize()
            .context("invalid configuration (keys are listed in config/default.toml)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_default_config_matches_the_settings_struct() {
        let s: Settings = toml_parse(EMBEDDED_DEFAULTS);
        assert_eq!(s.nlu.kb, PathBuf::from("config/kb"));
        assert!(s.database.url.starts_with("sqlite://"));
        kefu_core::SupportHours::parse(
            &s.support.timezone,
            &s.support.days,
            &s.support.open,
            &s.support.close,
        )
        .expect("the shipped support hours parse");
    }

    #[test]
    fn an_unknown_key_is_rejected_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = EMBEDDED_DEFAULTS.replace("kb = \"config/kb\"", "kb = \"x\"\nkbb = \"y\"");
        std::fs::write(dir.path().join("default.toml"), text).expect("write");
        let err = Settings::load_from(dir.path()).expect_err("unknown key");
        assert!(format!("{err:#}").contains("kbb"), "{err:#}");
    }

    fn toml_parse(text: &str) -> Settings {
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(config::Config::try_deserialize)
            .expect("default config deserialises")
    }
}
