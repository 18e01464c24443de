//! `kefu ask`: one message through the NLU and the decision, no conversation state. The reply and
//! the secret warning are what the conversation policy (`kefu-core`) sends for that decision to a
//! user it already greeted, so `kefu ask` shows exactly the bot's words.

use std::path::Path;

use kefu_core::event::{Event, SecretFound, UserMessage};
use kefu_core::{Action, ConversationState, Flood, Lang, QueueInfo, SupportHours};
use kefu_nlu::engine::Engine;
use kefu_nlu::secrets::{find_secrets, redact};
use serde::Serialize;

use super::{Failure, emit, load_engine, outln};

#[derive(Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    decision: &'a kefu_nlu::engine::Decision,
    reply: String,
    /// Shown before the reply when the message carried a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
    /// Secrets found in the message; it was classified with them redacted.
    secrets: Vec<SecretOut>,
}

#[derive(Serialize)]
struct SecretOut {
    kind: kefu_nlu::secrets::SecretKind,
    words: usize,
}

pub fn run(kb: &Path, json: bool, text: &str) -> Result<(), Failure> {
    let mut out = String::new();
    let engine = load_engine(kb)?.engine;
    let spans = find_secrets(text);
    let clean = redact(text, &spans);
    let decision = engine.decide(&clean);
    let secrets: Vec<SecretFound> = spans.iter().map(SecretFound::from).collect();
    let lang = Lang::from_code(&decision.language).unwrap_or_default();
    let warning =
        (!secrets.is_empty()).then(|| kefu_core::messages::secret_warning(lang, &secrets));
    let reply = policy_reply(
        &engine,
        &clean,
        &decision,
        &secrets,
        lang,
        warning.as_deref(),
    );
    if json {
        let output = Output {
            decision: &decision,
            reply,
            warning,
            secrets: spans
                .iter()
                .map(|s| SecretOut {
                    kind: s.kind,
                    words: s.words,
                })
                .collect(),
        };
        let line = serde_json::to_string(&output).map_err(|e| Failure::Other(e.into()))?;
        outln!(out, "{line}");
    } else {
        if let Some(w) = warning {
            outln!(out, "{w}\n");
        }
        outln!(out, "{reply}");
        let cands: Vec<String> = decision
            .candidates
            .iter()
            .map(|c| format!("{} {:.2}", c.intent, c.score))
            .collect();
        eprintln!(
            "[{:?} {} confidence {:.2}; candidates: {}; out of scope {:.2}; language {}]",
            decision.decision,
            decision.intent.as_deref().unwrap_or("-"),
            decision.confidence,
            cands.join(", "),
            decision.out_of_scope,
            decision.language
        );
    }
    emit(&out)
}

/// What the policy answers `text` (already redacted) with, for a user it greeted before, in
/// `lang`, with support open and nobody queued: its replies joined, the secret warning left out
/// (`warning` carries it).
fn policy_reply(
    engine: &Engine,
    text: &str,
    decision: &kefu_nlu::engine::Decision,
    secrets: &[SecretFound],
    lang: Lang,
    warning: Option<&str>,
) -> String {
    let state = ConversationState {
        greeted: true,
        language: lang,
        ..ConversationState::default()
    };
    let now = chrono::Utc::now();
    let hours = SupportHours::always();
    let ctx = kefu_core::Context {
        kb: engine.kb(),
        now,
        hours: &hours,
        queue: QueueInfo {
            position: 1,
            expected_wait: None,
        },
        ticket_code: "------",
        flood: Flood::UNLIMITED,
    };
    let event = Event::UserMessage(UserMessage {
        text_redacted: text.to_owned(),
        secrets: secrets.to_vec(),
        at: now,
        platform_message_id: "ask".to_owned(),
        decision: Some(decision.clone()),
        attachments: Vec::new(),
        clauses: kefu_core::clauses::decide(engine, text),
        thresholds: Some(engine.policy()),
    });
    let step = kefu_core::handle(&state, &event, &ctx);
    let replies: Vec<String> = step
        .actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Reply(r) if Some(r.text.as_str()) != warning => Some(r.text),
            _ => None,
        })
        .collect();
    replies.join("\n\n")
}
