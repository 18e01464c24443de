//! `kefu ask`: one message through the NLU and the decision, no conversation state.

use std::path::Path;

use kefu_nlu::secrets::{SecretSpan, find_secrets, redact};
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

/// The warning shown when a message carries a seed phrase or private key.
pub fn secret_warning(language: &str, spans: &[SecretSpan]) -> Option<String> {
    if spans.is_empty() {
        return None;
    }
    Some(if language == "zh" {
        "⚠️ 您的消息包含助记词或私钥，已被隐藏，不会被保存或转发。任何看到它的人都能转走您的资产：请立即把资金转到新钱包（新的助记词）。客服永远不会向您索要助记词、私钥、密码或验证码。".to_owned()
    } else {
        "⚠️ Your message contained a seed phrase or private key. It has been hidden and will not be stored or forwarded. Anyone who saw it can take your funds: move them to a new wallet (a new seed phrase) now. Staff will never ask for your seed phrase, private key, password or codes.".to_owned()
    })
}

pub fn run(kb: &Path, json: bool, text: &str) -> Result<(), Failure> {
    let mut out = String::new();
    let engine = load_engine(kb)?.engine;
    let spans = find_secrets(text);
    let clean = redact(text, &spans);
    let decision = engine.decide(&clean);
    let reply = engine.reply(&decision);
    let warning = secret_warning(&decision.language, &spans);
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
