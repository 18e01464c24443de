//! `kefu`: the command line. Thin by design: parse arguments, load settings, run one command.
//! Exit codes follow `shared/contracts/cli.md`: 0 success, 2 bad usage or bad input files, 1 other
//! failures.

mod commands;
mod settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Kefu (客服): a support chatbot for cryptocurrency exchanges and wallets.
#[derive(Debug, Parser)]
#[command(name = "kefu", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send one message through the NLU and the decision (no conversation state).
    Ask {
        /// Knowledge base: a TOML file or a directory (default: the configured `nlu.kb`).
        #[arg(long)]
        kb: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// The message.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Score the NLU on labelled cases (JSON Lines: {"text": …, "intent": ID|null}).
    Eval {
        /// Knowledge base: a TOML file or a directory (default: the configured `nlu.kb`).
        #[arg(long)]
        kb: Option<PathBuf>,
        /// The cases file.
        #[arg(long)]
        cases: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Also write each case's outcome to this file (JSON Lines: text, gold intent,
        /// decision, predicted intent, candidates with scores, ok).
        #[arg(long, value_name = "FILE")]
        details: Option<PathBuf>,
        /// Also write an HTML report with charts to this file (self-contained: reliability,
        /// confidence, thresholds, per-intent precision and recall, confused pairs, length and
        /// language).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Time each decision over N passes through the cases and keep each case's fastest
        /// (p50 and p99 without the machine's random delays; the figures are those of one pass).
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(u32).range(1..=100))]
        passes: u32,
    },
    /// Knowledge-base tools.
    Kb {
        #[command(subcommand)]
        command: KbCommand,
    },
    /// Talk to the bot in the terminal: one message per line on stdin, replies on stdout. The
    /// conversation persists in the database between runs; each run first prints what staff sent.
    Chat {
        /// Knowledge base: a TOML file or a directory (default: the configured `nlu.kb`).
        #[arg(long)]
        kb: Option<PathBuf>,
        /// Who you are (default: $USER).
        #[arg(long)]
        user: Option<String>,
    },
    /// Run the chat platforms (Telegram when KEFU__TELEGRAM__TOKEN is set) until SIGINT/SIGTERM.
    Run {
        /// Knowledge base: a TOML file or a directory (default: the configured `nlu.kb`).
        #[arg(long)]
        kb: Option<PathBuf>,
    },
    /// The deployment's state across instances: which instance runs each platform connection,
    /// the outbox backlog, the queue, updates set aside.
    Status {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The staff console alone (queue, tickets, reports in a browser; the JSON API), on
    /// `console.listen`, until SIGINT/SIGTERM. `kefu run` serves it too; replies go out through
    /// the outbox, which `kefu run` delivers.
    Console,
    /// The staff desk: the human queue and staff actions from the terminal.
    Desk {
        #[command(subcommand)]
        command: DeskCommand,
    },
    /// Staff accounts for the web console: who signs in, as agent or lead, and which Telegram and
    /// Discord users they are.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// The configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum StaffCommand {
    /// Add an account. The password is read from the KEFU_STAFF_PASSWORD environment variable
    /// when it is set, otherwise as one line from stdin; it needs at least 8 characters.
    Add {
        /// The name the person signs in with and users see (1 to 64 characters).
        name: String,
        /// Agents work tickets; leads also see the reports.
        #[arg(long, default_value = "agent", value_parser = ["agent", "lead"])]
        role: String,
    },
    /// Set an account's password and end its console sessions. The password is read from
    /// KEFU_STAFF_PASSWORD when it is set, otherwise as one line from stdin (at least 8
    /// characters).
    Passwd {
        /// The account.
        name: String,
    },
    /// The accounts: name, role, linked Telegram and Discord users, creation time.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an account, its console sessions and its API token.
    Remove {
        /// The account.
        name: String,
    },
    /// Link an account to the Telegram or Discord user the person is, so what they do in a staff
    /// space is recorded under the account's name; or remove such a link.
    #[command(group(
        clap::ArgGroup::new("target")
            .required(true)
            .args(["telegram", "discord", "unlink"])
    ))]
    Link {
        /// The account.
        name: String,
        /// The person's Telegram user id.
        #[arg(long, value_name = "USER_ID")]
        telegram: Option<String>,
        /// The person's Discord user id.
        #[arg(long, value_name = "USER_ID")]
        discord: Option<String>,
        /// Remove the account's link on this platform.
        #[arg(long, value_name = "PLATFORM", value_parser = ["telegram", "discord"])]
        unlink: Option<String>,
    },
    /// Print a new personal API token for the console's JSON API (shown once; it replaces the
    /// account's earlier token). Send it as `Authorization: Bearer TOKEN`.
    Token {
        /// The account.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Load and validate the configuration and the KB, and print the effective settings (secrets
    /// masked); exit 2 naming the key when something is wrong.
    Check {
        /// Knowledge base (default: the configured `nlu.kb`).
        #[arg(long)]
        kb: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum DeskCommand {
    /// Open tickets: id, code, priority, state, user, platform, intent guess, waiting time.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One ticket: details collected and the whole (redacted) transcript.
    Show {
        /// Ticket id or code.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Take a ticket: the bot stays silent while you hold the chat.
    Claim {
        /// Ticket id or code.
        id: String,
        /// Your name, shown to the user.
        #[arg(long = "as")]
        staff: String,
    },
    /// Write to the user (claims a queued ticket first).
    Reply {
        /// Ticket id or code.
        id: String,
        /// Your name.
        #[arg(long = "as")]
        staff: String,
        /// The message.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Hand the chat back to the bot, which asks the user to rate the help; optionally label
    /// what the user's question was about (an unknown intent changes nothing and exits 2).
    Resolve {
        /// Ticket id or code.
        id: String,
        /// Your name.
        #[arg(long = "as")]
        staff: String,
        #[command(flatten)]
        label: LabelArgs,
    },
    /// Say (or correct) what a ticket's question was about, without touching the ticket: a later
    /// label replaces the earlier one (a label is required; an unknown intent changes nothing and
    /// exits 2).
    Label {
        /// Ticket id or code.
        id: String,
        /// Your name.
        #[arg(long = "as")]
        staff: String,
        #[command(flatten)]
        label: LabelArgs,
    },
    /// Put a ticket you hold back in the queue for someone else (the user is told).
    Release {
        /// Ticket id or code.
        id: String,
        /// Your name.
        #[arg(long = "as")]
        staff: String,
    },
}

/// What a ticket's question was about: one of these at most.
#[derive(Debug, clap::Args)]
#[group(multiple = false)]
struct LabelArgs {
    /// The question was about this intent of the KB (`nlu.kb`).
    #[arg(long, value_name = "INTENT_ID")]
    intent: Option<String>,
    /// The question was about a topic the KB does not cover yet: its short name (1 to 40
    /// characters).
    #[arg(long, value_name = "NAME")]
    new_topic: Option<String>,
    /// The user asked no question.
    #[arg(long)]
    not_a_question: bool,
}

impl LabelArgs {
    /// The label given, if any.
    fn label(self) -> Option<kefu_service::Label> {
        match (self.intent, self.new_topic, self.not_a_question) {
            (Some(intent), _, _) => Some(kefu_service::Label::Intent(intent)),
            (None, Some(name), _) => Some(kefu_service::Label::NewTopic(name)),
            (None, None, true) => Some(kefu_service::Label::NotAQuestion),
            (None, None, false) => None,
        }
    }
}

#[derive(Debug, Subcommand)]
enum KbCommand {
    /// What the KB could learn from staff's labels and the unanswered questions: examples to add,
    /// new topics, overlapping intents, each with its id and expected effect.
    Suggest {
        /// Knowledge base (default: the configured `nlu.kb`).
        kb: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// The fewest questions a new topic needs.
        #[arg(long, default_value_t = kefu_nlu::learn::DEFAULT_MIN_CLUSTER)]
        min_cluster: usize,
    },
    /// Write suggestions into the KB's files (validated before any file is replaced) and record
    /// who accepted them.
    Accept {
        /// Suggestion ids (from `kefu kb suggest`), then optionally the KB (default: `nlu.kb`).
        #[arg(required = true, num_args = 1.., value_name = "ID… [KB]")]
        words: Vec<String>,
        /// Your name.
        #[arg(long = "as")]
        staff: String,
        /// The fewest questions a new topic needs (as given to `kefu kb suggest`).
        #[arg(long, default_value_t = kefu_nlu::learn::DEFAULT_MIN_CLUSTER)]
        min_cluster: usize,
    },
    /// Record that suggestions are not wanted: they are not suggested again.
    Reject {
        /// Suggestion ids (from `kefu kb suggest`), then optionally the KB (default: `nlu.kb`).
        #[arg(required = true, num_args = 1.., value_name = "ID… [KB]")]
        words: Vec<String>,
        /// Your name.
        #[arg(long = "as")]
        staff: String,
        /// The fewest questions a new topic needs (as given to `kefu kb suggest`).
        #[arg(long, default_value_t = kefu_nlu::learn::DEFAULT_MIN_CLUSTER)]
        min_cluster: usize,
    },
    /// Who labelled which ticket, and who accepted or rejected which suggestion, and when.
    History {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Questions the bot could not answer, most frequent first: what to add to the KB next.
    Misses {
        /// How many to show.
        #[arg(long, default_value_t = 30)]
        limit: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run conversation tests (stories) through the real engine and service; exit 1 if one fails.
    Test {
        /// Story files or directories of them (default: the KB directory's `stories/`).
        stories: Vec<PathBuf>,
        /// Knowledge base (default: the configured `nlu.kb`).
        #[arg(long)]
        kb: Option<PathBuf>,
    },
    /// Validate a KB; report cross-validated accuracy per intent and the most confusable pairs.
    Check {
        /// Knowledge base (default: the configured `nlu.kb`).
        kb: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Also write an HTML report of the held-out folds to this file (as `kefu eval --report`).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
}

/// Logs go to stderr, as text or one JSON object per line (`log.format`). The bot (`run`) logs
/// what `log.level` lets through; the one-shot commands only warn. `RUST_LOG` overrides either
/// (e.g. RUST_LOG=kefu_telegram=debug). Message text is never logged before redaction, and tokens
/// never are.
fn init_logging(log: Option<&settings::LogSettings>, run: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match log {
        Some(log) if run => log.level.as_str(),
        _ => "warn",
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    if log.is_some_and(|l| l.format == settings::LogFormat::Json) {
        let _ = commands::JSON_LOGS.set(true);
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every configuration error is the operator's input: exit 2, like other bad input.
    let settings = settings::Settings::load();
    init_logging(
        settings.as_ref().ok().map(|s| &s.log),
        matches!(cli.command, Command::Run { .. } | Command::Console),
    );
    let result = settings
        .map_err(commands::Failure::BadInput)
        .and_then(|settings| {
            if let Command::Config {
                command: ConfigCommand::Check { kb },
            } = &cli.command
            {
                return commands::ops::config_check(&settings, kb.as_deref());
            }
            if !matches!(
                cli.command,
                Command::Kb {
                    command: KbCommand::Misses { .. } | KbCommand::History { .. }
                } | Command::Staff { .. }
            ) {
                commands::configure_encoder(&settings.nlu)?;
            }
            let kb_or = |kb: Option<PathBuf>| kb.unwrap_or_else(|| settings.nlu.kb.clone());
            match cli.command {
                Command::Ask { kb, json, text } => {
                    commands::ask::run(&kb_or(kb), json, &text.join(" "))
                }
                Command::Eval {
                    kb,
                    cases,
                    json,
                    details,
                    report,
                    passes,
                } => commands::eval::run(
                    &kb_or(kb),
                    &cases,
                    json,
                    details.as_deref(),
                    report.as_deref(),
                    passes as usize,
                ),
                Command::Kb {
                    command: KbCommand::Check { kb, json, report },
                } => commands::kb::check(&kb_or(kb), json, report.as_deref()),
                Command::Kb {
                    command: KbCommand::Misses { limit, json },
                } => commands::kb::misses(&settings, limit, json),
                Command::Kb {
                    command:
                        KbCommand::Suggest {
                            kb,
                            json,
                            min_cluster,
                        },
                } => commands::learn::suggest(&settings, &kb_or(kb), json, min_cluster),
                Command::Kb {
                    command:
                        KbCommand::Accept {
                            words,
                            staff,
                            min_cluster,
                        },
                } => commands::learn::ids_and_kb(words).and_then(|(ids, kb)| {
                    commands::learn::accept(&settings, &kb_or(kb), &ids, &staff, min_cluster)
                }),
                Command::Kb {
                    command:
                        KbCommand::Reject {
                            words,
                            staff,
                            min_cluster,
                        },
                } => commands::learn::ids_and_kb(words).and_then(|(ids, kb)| {
                    commands::learn::reject(&settings, &kb_or(kb), &ids, &staff, min_cluster)
                }),
                Command::Kb {
                    command: KbCommand::History { json },
                } => commands::learn::history(&settings, json),
                Command::Kb {
                    command: KbCommand::Test { stories, kb },
                } => {
                    let kb = kb_or(kb);
                    let stories = if stories.is_empty() {
                        vec![kb.join("stories")]
                    } else {
                        stories
                    };
                    commands::stories::run(&settings, &kb, &stories)
                }
                Command::Chat { kb, user } => commands::chat::run(&settings, &kb_or(kb), user),
                Command::Run { kb } => commands::run::run(&settings, &kb_or(kb)),
                Command::Status { json } => commands::status::run(&settings, json),
                Command::Console => commands::console::run(&settings),
                Command::Desk { command } => {
                    use commands::desk::DeskAction;
                    let action = match command {
                        DeskCommand::List { json } => DeskAction::List { json },
                        DeskCommand::Show { id, json } => DeskAction::Show { id, json },
                        DeskCommand::Claim { id, staff } => DeskAction::Claim { id, staff },
                        DeskCommand::Reply { id, staff, text } => DeskAction::Reply {
                            id,
                            staff,
                            text: text.join(" "),
                        },
                        DeskCommand::Resolve { id, staff, label } => DeskAction::Resolve {
                            id,
                            staff,
                            label: label.label(),
                        },
                        DeskCommand::Label { id, staff, label } => match label.label() {
                            Some(label) => DeskAction::Label { id, staff, label },
                            None => {
                                return Err(commands::Failure::BadInput(anyhow::anyhow!(
                                    "no label given; fix: add --intent ID, --new-topic NAME or --not-a-question"
                                )));
                            }
                        },
                        DeskCommand::Release { id, staff } => DeskAction::Release { id, staff },
                    };
                    commands::desk::run(&settings, action)
                }
                Command::Staff { command } => {
                    use commands::staff::{LinkTarget, StaffCommand as Task};
                    let task = match command {
                        StaffCommand::Add { name, role } => Task::Add {
                            name,
                            role: role
                                .parse()
                                .map_err(|e| commands::Failure::BadInput(anyhow::Error::new(e)))?,
                        },
                        StaffCommand::Passwd { name } => Task::Passwd { name },
                        StaffCommand::List { json } => Task::List { json },
                        StaffCommand::Remove { name } => Task::Remove { name },
                        StaffCommand::Link {
                            name,
                            telegram,
                            discord,
                            unlink,
                        } => {
                            let target = match (telegram, discord, unlink) {
                                (Some(user_id), _, _) => LinkTarget::Link {
                                    platform: "telegram".to_owned(),
                                    user_id,
                                },
                                (None, Some(user_id), _) => LinkTarget::Link {
                                    platform: "discord".to_owned(),
                                    user_id,
                                },
                                (None, None, platform) => LinkTarget::Unlink {
                                    platform: platform.unwrap_or_default(),
                                },
                            };
                            Task::Link { name, target }
                        }
                        StaffCommand::Token { name } => Task::Token { name },
                    };
                    commands::staff::run(&settings, task)
                }
                Command::Config { .. } => Ok(()),
            }
        });
    // Under JSON logs the last words are a JSON line too.
    let report = |e: &anyhow::Error| {
        if commands::JSON_LOGS.get().copied().unwrap_or(false) {
            tracing::error!("{e:#}");
        } else {
            eprintln!("error: {e:#}");
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(commands::Failure::BadInput(e)) => {
            report(&e);
            ExitCode::from(2)
        }
        Err(commands::Failure::Other(e)) => {
            report(&e);
            ExitCode::from(1)
        }
    }
}
