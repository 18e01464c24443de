//! Configuration: `config/default.toml`, then `config/$KEFU_ENV.toml` if present, then `KEFU__…`
//! environment variables (`KEFU__NLU__KB` sets `nlu.kb`). Unknown keys are rejected by name, so a
//! typo in a deployment's file is an error at start-up rather than a silently ignored setting.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The shipped defaults, used when no `config/default.toml` is found beside the working directory.
const EMBEDDED_DEFAULTS: &str = include_str!("../config/default.toml");

/// Every setting Kefu reads.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// The Telegram adapter.
    pub telegram: TelegramSettings,
    /// The Discord adapter.
    pub discord: DiscordSettings,
    /// `kefu run`'s operations endpoints (health, readiness, metrics, KB reload).
    pub server: ServerSettings,
    /// The staff console (`kefu run`, `kefu console`).
    pub console: ConsoleSettings,
    /// Logging.
    pub log: LogSettings,
}

/// `[server]`: `kefu run`'s HTTP listener for operations.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// The address of `/healthz`, `/readyz`, `/metrics` and `/admin/reload-kb`, e.g.
    /// `127.0.0.1:9464`; port 0 picks a free port (logged); empty turns the listener off.
    pub listen: String,
    /// The bearer token `POST /admin/reload-kb` requires: only from the environment
    /// (`KEFU__SERVER__ADMIN_TOKEN`); empty = the endpoint answers 403. Its `Debug` prints "***".
    #[serde(default, serialize_with = "masked")]
    pub admin_token: kefu_core::adapter::Secret,
}

/// `[console]`: the staff console in a browser, and its JSON API.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    /// The console's address, e.g. `127.0.0.1:8088`; port 0 picks a free port (logged); empty
    /// turns it off in `kefu run` (`kefu console` then refuses to start).
    pub listen: String,
    /// The URL staff open, e.g. `https://support.example.com` behind a TLS proxy: when it is
    /// `https://`, the session cookie is marked `Secure`. Empty: as served (plain HTTP).
    pub public_url: String,
    /// Behind a reverse proxy that appends the client's address to `X-Forwarded-For`: failed
    /// logins are then counted per that address rather than per the proxy's. Only with a proxy
    /// in front (a client reaching the console directly could choose its address).
    pub trust_forwarded_for: bool,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` (human-readable lines) or `json` (one JSON object per line).
    pub format: LogFormat,
    /// What `kefu run` logs, in `RUST_LOG` syntax (`info`, `warn,kefu_telegram=debug`); the
    /// `RUST_LOG` environment variable, when set, wins. The one-shot commands log warnings only.
    pub level: String,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line: timestamp, level, target, fields (the message among them) and
    /// the span fields (conversation, ticket, platform…).
    Json,
}

/// A secret as `kefu config check` prints it: `***` when set, empty when not.
fn masked<S: serde::Serializer>(
    secret: &kefu_core::adapter::Secret,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(if secret.is_empty() { "" } else { "***" })
}

/// `[discord]`: the Discord adapter, enabled when a token is set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordSettings {
    /// The bot token: only from the environment (`KEFU__DISCORD__TOKEN`); empty disables the
    /// adapter. Its `Debug` prints "***".
    #[serde(default, serialize_with = "masked")]
    pub token: kefu_discord::Secret,
    /// The API base: `https://discord.com`, or a rate-limiting proxy (serenity's own rate limiter
    /// is then off), or a test fake.
    pub api_url: String,
    /// The staff text channel where each ticket gets a private thread; 0 = none.
    #[serde(default)]
    pub staff_channel_id: u64,
    /// Discord user ids allowed to claim, resolve and answer tickets (from the environment: a
    /// comma-separated list).
    #[serde(default, deserialize_with = "one_or_many")]
    pub staff_user_ids: Vec<u64>,
    /// A role whose members may claim, resolve and answer tickets; 0 = none.
    #[serde(default)]
    pub staff_role_id: u64,
    /// The total number of gateway shards; with several instances each shard runs in one of
    /// them (whichever holds its lease).
    #[serde(default = "one_shard")]
    pub shards: u32,
}

fn one_shard() -> u32 {
    1
}

fn three_seconds() -> u64 {
    3
}

impl DiscordSettings {
    /// The adapter's configuration.
    pub fn adapter_config(&self) -> kefu_discord::DiscordConfig {
        kefu_discord::DiscordConfig {
            token: self.token.clone(),
            api_url: self.api_url.clone(),
            staff_channel_id: (self.staff_channel_id != 0).then_some(self.staff_channel_id),
            staff_user_ids: self.staff_user_ids.clone(),
            staff_role_id: (self.staff_role_id != 0).then_some(self.staff_role_id),
            shards: self.shards,
        }
    }
}

/// `[telegram]`: the Telegram adapter, enabled when a token is set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSettings {
    /// The BotFather token: only from the environment (`KEFU__TELEGRAM__TOKEN`); empty disables
    /// the adapter. Its `Debug` prints "***".
    #[serde(default, serialize_with = "masked")]
    pub token: kefu_telegram::Secret,
    /// The Bot API base URL: Telegram's, a self-hosted Bot API server, or a test fake.
    pub api_url: String,
    /// The staff supergroup (topics on) where tickets are worked; 0 = none.
    #[serde(default)]
    pub staff_chat_id: i64,
    /// Telegram user ids allowed to claim, resolve and answer tickets (from the environment: a
    /// comma-separated list).
    #[serde(default, deserialize_with = "one_or_many")]
    pub staff_user_ids: Vec<u64>,
    /// Webhook mode: the public HTTPS URL Telegram posts updates to; empty = long polling.
    #[serde(default)]
    pub webhook_url: String,
    /// Webhook mode: the local address to listen on.
    pub webhook_listen: String,
    /// Webhook mode: the secret token Telegram sends with every update; only from the
    /// environment (`KEFU__TELEGRAM__WEBHOOK_SECRET`).
    #[serde(default, serialize_with = "masked")]
    pub webhook_secret: kefu_telegram::Secret,
    /// Most messages a second the bot sends overall (Telegram allows about 30); each private
    /// chat also gets about one a second and each group twenty a minute. 0 = no pacing (a
    /// self-hosted Bot API server without limits, a test fake).
    #[serde(default = "default_telegram_rate")]
    pub max_per_second: f64,
}

fn default_telegram_rate() -> f64 {
    30.0
}

/// A list, or one id: the `config` crate reads `KEFU__TELEGRAM__STAFF_USER_IDS=42` as a number
/// and the elements of `11,22` as strings.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(u64),
        Text(String),
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<Id>),
        One(Id),
    }
    let ids = match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(id) => vec![id],
    };
    ids.into_iter()
        .filter(|id| !matches!(id, Id::Text(t) if t.trim().is_empty()))
        .map(|id| match id {
            Id::Number(n) => Ok(n),
            Id::Text(t) => t.trim().parse().map_err(|_| {
                serde::de::Error::custom(format!("staff user id {t:?} is not a number"))
            }),
        })
        .collect()
}

impl TelegramSettings {
    /// The adapter's configuration.
    pub fn adapter_config(&self) -> kefu_telegram::TelegramConfig {
        kefu_telegram::TelegramConfig {
            token: self.token.clone(),
            api_url: self.api_url.clone(),
            staff_chat_id: (self.staff_chat_id != 0).then_some(self.staff_chat_id),
            staff_user_ids: self.staff_user_ids.clone(),
            webhook: (!self.webhook_url.is_empty()).then(|| kefu_telegram::WebhookConfig {
                url: self.webhook_url.clone(),
                listen: self.webhook_listen.clone(),
                secret: self.webhook_secret.clone(),
            }),
            // Two seconds' worth at once: a burst of new users (100 asking at the same moment) all
            // get their first reply within about 1.5 s, and the sustained pace stays at the
            // configured rate. A 429 Telegram answers anyway is waited out as it says.
            rate: (self.max_per_second > 0.0).then(|| kefu_service::delivery::Rate {
                per_second: self.max_per_second,
                burst: (self.max_per_second * 2.0).ceil().clamp(1.0, 2000.0) as u32,
            }),
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path` (created if missing) or `postgres://…`. A password belongs in the
    /// environment (`KEFU__DATABASE__URL`), never in a committed file.
    pub url: String,
    /// The term of a platform connection's lease (the Telegram poller, each Discord shard): when
    /// the instance running it dies, another takes over within this plus a second.
    #[serde(default = "three_seconds")]
    pub lease_seconds: u64,
    /// How many days the delivery journal is kept (inbound messages once handled, outbox rows once
    /// delivered or given up, dead letters); 0 keeps it for ever. Tickets and transcripts are
    /// never deleted.
    #[serde(default = "thirty_days")]
    pub retention_days: u32,
}

fn thirty_days() -> u32 {
    30
}

/// `[support]`: when staff answer.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// The language of staff-side texts (ticket summaries, notices, buttons): "zh" or "en". A
    /// refusal goes out in the presser's own language where the platform tells it.
    #[serde(default = "default_staff_language")]
    pub staff_language: StaffLanguage,
}

/// `support.staff_language`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StaffLanguage {
    /// Chinese.
    Zh,
    /// English.
    En,
}

impl StaffLanguage {
    /// The core's language.
    pub fn lang(self) -> kefu_core::Lang {
        match self {
            StaffLanguage::Zh => kefu_core::Lang::Zh,
            StaffLanguage::En => kefu_core::Lang::En,
        }
    }
}

fn default_staff_language() -> StaffLanguage {
    StaffLanguage::Zh
}

/// `[flood]`: per-user flood control.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FloodSettings {
    /// Messages allowed per window.
    pub max_messages: usize,
    /// The window, in seconds.
    pub window_secs: u64,
}

/// `[nlu]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NluSettings {
    /// The knowledge base: a TOML file or a directory of them.
    pub kb: PathBuf,
    /// Sentence encoder whose embeddings join the classifier's features for English text.
    pub encoder: EncoderKind,
    /// The encoder's model directory (`models/fetch-minilm.sh` fills the default one).
    #[cfg_attr(
        not(feature = "rust-bert"),
        allow(
            dead_code,
            reason = "only a build with the rust-bert feature loads a model"
        )
    )]
    pub model_dir: PathBuf,
    /// Static word vectors join the features (`kefu_nlu::wordvec`): English, and Chinese unless
    /// `chinese_word_vectors` is off.
    pub word_vectors: bool,
    /// With `word_vectors`, the Chinese table too (used when the KB has Chinese text).
    pub chinese_word_vectors: bool,
    /// The built-in support lexicon's concepts join the features (`kefu_nlu::concepts`).
    pub lexicon: bool,
    /// A Chinese thesaurus's semantic classes join the features (`kefu_nlu::thesaurus`) when
    /// `thesaurus_file` exists.
    pub thesaurus: bool,
    /// The thesaurus table `models/fetch-cilin.sh` writes.
    pub thesaurus_file: PathBuf,
}

/// `nlu.encoder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncoderKind {
    /// Lexical features only (the default; no model, no system libraries).
    None,
    /// all-MiniLM-L6-v2 through rust-bert: needs a binary built with `--features rust-bert`.
    RustBert,
}

impl Settings {
    /// Loads the layered configuration from `dir` (default `config`, or `$KEFU_CONFIG_DIR`, which
    /// must then exist).
    pub fn load() -> anyhow::Result<Settings> {
        let dir = match std::env::var_os("KEFU_CONFIG_DIR") {
            Some(dir) => {
                let dir = PathBuf::from(dir);
                if !dir.is_dir() {
                    return Err(anyhow::anyhow!(
                        "KEFU_CONFIG_DIR={} is not a directory; fix: point it at the directory holding default.toml, or unset it",
                        dir.display()
                    ));
                }
                dir
            }
            None => PathBuf::from("config"),
        };
        Self::load_from(&dir)
    }

    fn load_from(dir: &Path) -> anyhow::Result<Settings> {
        Self::load_with_env(dir, None)
    }

    /// Loads from `dir` with `env` standing in for the process environment (tests). Every error
    /// is the operator's input (an unknown key, a bad value, a missing `KEFU_ENV` file): exit 2.
    fn load_with_env(
        dir: &Path,
        env: Option<std::collections::HashMap<String, String>>,
    ) -> anyhow::Result<Settings> {
        let settings = Self::read(dir, env.as_ref())?;
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses values that parse but make no sense.
    fn validate(&self) -> anyhow::Result<()> {
        if self.flood.max_messages == 0 {
            anyhow::bail!(
                "flood.max_messages = 0 would refuse every message; fix: set it to 1 or more (the default is 8)"
            );
        }
        if self.flood.window_secs == 0 {
            anyhow::bail!(
                "flood.window_secs = 0 turns flood control off by accident; fix: set it to 1 or more (the default is 10)"
            );
        }
        if !(2..=300).contains(&self.database.lease_seconds) {
            anyhow::bail!(
                "database.lease_seconds = {} is out of range; fix: 2 to 300 (the default is 3: another instance takes a dead one's connections over within about 4 s)",
                self.database.lease_seconds
            );
        }
        if self.database.retention_days > 36_500 {
            anyhow::bail!(
                "database.retention_days = {} is out of range; fix: 1 to 36500 days, or 0 to keep the journal for ever (the default is 30)",
                self.database.retention_days
            );
        }
        if !(1..=1024).contains(&self.discord.shards) {
            anyhow::bail!(
                "discord.shards = {} is out of range; fix: 1 (the default) up to 1024, the total shard count Discord recommends for the bot",
                self.discord.shards
            );
        }
        if !self.telegram.max_per_second.is_finite() || self.telegram.max_per_second < 0.0 {
            anyhow::bail!("telegram.max_per_second must be 0 (no pacing) or a positive number");
        }
        if !self.server.listen.is_empty()
            && self.server.listen.parse::<std::net::SocketAddr>().is_err()
        {
            anyhow::bail!(
                "server.listen = {:?} is not an address; fix: an IP and a port such as \"127.0.0.1:9464\" (the default), or \"\" to turn the listener off",
                self.server.listen
            );
        }
        if !self.console.listen.is_empty()
            && self.console.listen.parse::<std::net::SocketAddr>().is_err()
        {
            anyhow::bail!(
                "console.listen = {:?} is not an address; fix: an IP and a port such as \"127.0.0.1:8088\" (the default), or \"\" to turn the console off",
                self.console.listen
            );
        }
        let public = &self.console.public_url;
        if !public.is_empty() && !public.starts_with("https://") && !public.starts_with("http://") {
            anyhow::bail!(
                "console.public_url = {public:?} is not a URL; fix: the address staff open, such as \"https://support.example.com\", or \"\""
            );
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            anyhow::bail!(
                "log.level = {:?} is not a filter ({e}); fix: a level (error, warn, info, debug, trace), optionally with per-module levels such as \"info,kefu_telegram=debug\"",
                self.log.level
            );
        }
        let token = self.server.admin_token.expose();
        if !token.is_empty() && token.len() < 16 {
            anyhow::bail!(
                "server.admin_token is too short to guard the admin endpoint; fix: set KEFU__SERVER__ADMIN_TOKEN to 16 or more random characters (e.g. `openssl rand -hex 32`)"
            );
        }
        Ok(())
    }

    fn read(
        dir: &Path,
        env: Option<&std::collections::HashMap<String, String>>,
    ) -> anyhow::Result<Settings> {
        let env = env.cloned();
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
        let profile = match &env {
            Some(vars) => vars.get("KEFU_ENV").cloned(),
            None => std::env::var("KEFU_ENV").ok(),
        };
        if let Some(profile) = profile.filter(|p| !p.is_empty()) {
            let file = dir.join(format!("{profile}.toml"));
            if !file.is_file() {
                return Err(anyhow::anyhow!(
                    "KEFU_ENV={profile} names {}, which does not exist; fix: create it or unset KEFU_ENV",
                    file.display()
                ));
            }
            builder = builder.add_source(config::File::from(file));
        }
        // A token in a file would end up committed somewhere: it comes from the environment only.
        let files = builder
            .clone()
            .build()
            .with_context(|| format!("reading configuration from {}", dir.display()))?;
        for (key, var) in [
            ("telegram.token", "KEFU__TELEGRAM__TOKEN"),
            ("telegram.webhook_secret", "KEFU__TELEGRAM__WEBHOOK_SECRET"),
            ("discord.token", "KEFU__DISCORD__TOKEN"),
            ("server.admin_token", "KEFU__SERVER__ADMIN_TOKEN"),
        ] {
            if files.get_string(key).is_ok_and(|t| !t.is_empty()) {
                return Err(anyhow::anyhow!(
                    "{key} must not be set in a configuration file; set {var} in the environment"
                ));
            }
        }
        builder = builder.add_source(
            config::Environment::with_prefix("KEFU")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("telegram.staff_user_ids")
                .with_list_parse_key("discord.staff_user_ids")
                .try_parsing(true)
                .source(env),
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
        assert_eq!(s.nlu.encoder, EncoderKind::None);
        assert_eq!(s.nlu.model_dir, PathBuf::from("models/all-MiniLM-L6-v2"));
        assert!(s.nlu.word_vectors, "word vectors are on by default");
        assert!(s.nlu.chinese_word_vectors, "the Chinese table too");
        assert!(s.nlu.lexicon, "the lexicon is on by default");
        assert!(s.database.url.starts_with("sqlite://"));
        assert_eq!(s.database.retention_days, 30, "the journal is kept 30 days");
        kefu_core::SupportHours::parse(
            &s.support.timezone,
            &s.support.days,
            &s.support.open,
            &s.support.close,
        )
        .expect("the shipped support hours parse");
        assert!(s.telegram.token.is_empty());
        assert_eq!(s.telegram.staff_chat_id, 0);
    }

    #[test]
    fn an_unknown_key_is_rejected_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = EMBEDDED_DEFAULTS.replace("kb = \"config/kb\"", "kb = \"x\"\nkbb = \"y\"");
        std::fs::write(dir.path().join("default.toml"), text).expect("write");
        let err = Settings::load_from(dir.path()).expect_err("unknown key");
        assert!(format!("{err:#}").contains("kbb"), "{err:#}");
    }

    #[test]
    fn the_encoder_is_chosen_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Settings::load_with_env(dir.path(), env(&[("KEFU__NLU__ENCODER", "rust-bert")]))
            .expect("rust-bert is a valid encoder");
        assert_eq!(s.nlu.encoder, EncoderKind::RustBert);
        let err = Settings::load_with_env(dir.path(), env(&[("KEFU__NLU__ENCODER", "bert")]))
            .expect_err("unknown encoder");
        assert!(format!("{err:#}").contains("bert"), "{err:#}");
    }

    #[test]
    fn the_retention_is_days_or_zero_for_ever() {
        let dir = tempfile::tempdir().expect("tempdir");
        for days in ["0", "1", "36500"] {
            let s = Settings::load_with_env(
                dir.path(),
                env(&[("KEFU__DATABASE__RETENTION_DAYS", days)]),
            )
            .expect("a valid retention");
            assert_eq!(s.database.retention_days.to_string(), days);
        }
        let err = Settings::load_with_env(
            dir.path(),
            env(&[("KEFU__DATABASE__RETENTION_DAYS", "36501")]),
        )
        .expect_err("more than a hundred years");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("database.retention_days") && msg.contains("fix:"),
            "{msg}"
        );
    }

    fn env(pairs: &[(&str, &str)]) -> Option<std::collections::HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn telegram_settings_come_from_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Settings::load_with_env(dir.path(), env(&[])).expect("defaults load");
        assert!(s.telegram.token.is_empty(), "disabled by default");
        assert_eq!(s.telegram.api_url, "https://api.telegram.org");
        assert_eq!(s.telegram.adapter_config().staff_chat_id, None);
        assert!(s.telegram.staff_user_ids.is_empty());

        let s = Settings::load_with_env(
            dir.path(),
            env(&[
                ("KEFU__TELEGRAM__TOKEN", "123456:ABC-secret"),
                ("KEFU__TELEGRAM__STAFF_CHAT_ID", "-1001234567890"),
                ("KEFU__TELEGRAM__STAFF_USER_IDS", "11,22,33"),
                ("KEFU__TELEGRAM__API_URL", "http://127.0.0.1:9"),
                ("KEFU__SUPPORT__OPEN", "08:00"),
            ]),
        )
        .expect("env loads");
        assert_eq!(s.telegram.token.expose(), "123456:ABC-secret");
        assert_eq!(s.telegram.staff_chat_id, -1001234567890);
        assert_eq!(s.telegram.staff_user_ids, vec![11, 22, 33]);
        assert_eq!(s.telegram.api_url, "http://127.0.0.1:9");
        assert_eq!(s.support.open, "08:00");
        assert!(
            !format!("{s:?}").contains("ABC-secret"),
            "the token never shows"
        );

        let s =
            Settings::load_with_env(dir.path(), env(&[("KEFU__TELEGRAM__STAFF_USER_IDS", "42")]))
                .expect("one id loads");
        assert_eq!(s.telegram.staff_user_ids, vec![42]);
    }

    #[test]
    fn discord_settings_come_from_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Settings::load_with_env(dir.path(), env(&[])).expect("defaults load");
        assert!(s.discord.token.is_empty(), "disabled by default");
        assert_eq!(s.discord.api_url, kefu_discord::DISCORD_API);
        let c = s.discord.adapter_config();
        assert_eq!((c.staff_channel_id, c.staff_role_id), (None, None));

        let s = Settings::load_with_env(
            dir.path(),
            env(&[
                ("KEFU__DISCORD__TOKEN", "MTIz.discord-secret"),
                ("KEFU__DISCORD__STAFF_CHANNEL_ID", "555"),
                ("KEFU__DISCORD__STAFF_USER_IDS", "7,8"),
                ("KEFU__DISCORD__STAFF_ROLE_ID", "50"),
            ]),
        )
        .expect("env loads");
        let c = s.discord.adapter_config();
        assert_eq!(c.token.expose(), "MTIz.discord-secret");
        assert_eq!(c.staff_channel_id, Some(555));
        assert_eq!(c.staff_user_ids, vec![7, 8]);
        assert_eq!(c.staff_role_id, Some(50));
        assert!(!format!("{s:?}").contains("discord-secret"));

        let (head, discord) = EMBEDDED_DEFAULTS.split_at(
            EMBEDDED_DEFAULTS
                .find("[discord]")
                .expect("a [discord] section"),
        );
        let text = format!(
            "{head}{}",
            discord.replacen("token = \"\"", "token = \"MTIz.abc\"", 1)
        );
        assert_ne!(text, EMBEDDED_DEFAULTS);
        std::fs::write(dir.path().join("default.toml"), text).expect("write");
        let err = Settings::load_with_env(dir.path(), env(&[])).expect_err("token in a file");
        assert!(
            format!("{err:#}").contains("KEFU__DISCORD__TOKEN"),
            "{err:#}"
        );
    }

    #[test]
    fn a_token_in_a_config_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = EMBEDDED_DEFAULTS.replacen("token = \"\"", "token = \"123:abc\"", 1);
        assert_ne!(text, EMBEDDED_DEFAULTS);
        std::fs::write(dir.path().join("default.toml"), text).expect("write");
        let err = Settings::load_with_env(dir.path(), env(&[])).expect_err("token in a file");
        assert!(
            format!("{err:#}").contains("KEFU__TELEGRAM__TOKEN"),
            "{err:#}"
        );
    }

    #[test]
    fn server_and_log_settings_are_checked_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Settings::load_with_env(dir.path(), env(&[])).expect("defaults load");
        assert_eq!(s.server.listen, "127.0.0.1:9464");
        assert!(s.server.admin_token.is_empty());
        assert_eq!(s.console.listen, "127.0.0.1:8088");
        assert_eq!(s.console.public_url, "");
        assert_eq!(s.log.format, LogFormat::Text);
        assert_eq!(s.log.level, "info");

        let s = Settings::load_with_env(
            dir.path(),
            env(&[
                ("KEFU__SERVER__LISTEN", ""),
                ("KEFU__SERVER__ADMIN_TOKEN", "0123456789abcdef-admin"),
                ("KEFU__LOG__FORMAT", "json"),
                ("KEFU__LOG__LEVEL", "warn,kefu_telegram=debug"),
            ]),
        )
        .expect("env loads");
        assert_eq!(s.server.listen, "", "empty turns the listener off");
        assert_eq!(s.log.format, LogFormat::Json);
        assert!(
            !format!("{s:?}").contains("abcdef-admin"),
            "the token never shows"
        );

        for (key, value, named) in [
            ("KEFU__SERVER__LISTEN", "localhost", "server.listen"),
            ("KEFU__SERVER__ADMIN_TOKEN", "short", "server.admin_token"),
            ("KEFU__CONSOLE__LISTEN", "console.local", "console.listen"),
            (
                "KEFU__CONSOLE__PUBLIC_URL",
                "support.example.com",
                "console.public_url",
            ),
            ("KEFU__LOG__LEVEL", "info,kefu=loud", "log.level"),
            ("KEFU__LOG__FORMAT", "xml", "log.format"),
        ] {
            let err =
                Settings::load_with_env(dir.path(), env(&[(key, value)])).expect_err("refused");
            assert!(format!("{err:#}").contains(named), "{key}: {err:#}");
        }

        let text = EMBEDDED_DEFAULTS.replacen(
            "admin_token = \"\"",
            "admin_token = \"0123456789abcdef-admin\"",
            1,
        );
        assert_ne!(text, EMBEDDED_DEFAULTS);
        std::fs::write(dir.path().join("default.toml"), text).expect("write");
        let err = Settings::load_with_env(dir.path(), env(&[])).expect_err("token in a file");
        assert!(
            format!("{err:#}").contains("KEFU__SERVER__ADMIN_TOKEN"),
            "{err:#}"
        );
    }

    fn toml_parse(text: &str) -> Settings {
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(config::Config::try_deserialize)
            .expect("default config deserialises")
    }
}
