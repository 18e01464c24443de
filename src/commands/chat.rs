//! `kefu chat [--user NAME]`: the terminal channel. Each run first prints what staff sent NAME since
//! their last run, then handles stdin lines as NAME's messages; the conversation, its ticket and
//! its transcript persist in the database between runs. Works the same with a pipe (no prompts,
//! exits at EOF). Buttons are shown numbered: typing the number presses the button. A line that is
//! not UTF-8 is skipped with a warning on stderr; the lines after it are handled.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::Context as _;
use chrono::Utc;
use kefu_core::model::{Button, ConversationRef, Inbound};
use kefu_service::{Handled, Service};

use super::{Failure, open_service, runtime};
use crate::settings::Settings;

pub fn run(settings: &Settings, kb: &Path, user: Option<String>) -> Result<(), Failure> {
    let name = user
        .or_else(|| std::env::var("USER").ok())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "terminal".to_owned());
    runtime()?.block_on(async {
        let service = open_service(settings, kb).await?;
        let cref = ConversationRef {
            platform: "terminal".to_owned(),
            chat_id: name.clone(),
            user_id: name.clone(),
        };
        let interactive = std::io::stdin().is_terminal();
        let mut out = std::io::stdout().lock();
        let mut buttons: Vec<Button> = Vec::new();
        if interactive {
            let kb_name = service
                .engine()
                .and_then(|e| e.kb().meta.name.clone())
                .unwrap_or_else(|| "Kefu".to_owned());
            writeln!(out, "{kb_name} — chatting as {name} (Ctrl-D to quit)").map_err(io)?;
        }
        deliver(&service, &cref, &mut out, &mut buttons).await?;
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        let mut raw = Vec::new();
        let mut counter = 0u64;
        let mut line_no = 0u64;
        loop {
            if interactive {
                write!(out, "> ").and_then(|()| out.flush()).map_err(io)?;
            }
            raw.clear();
            let read = input
                .read_until(b'\n', &mut raw)
                .context("reading stdin")
                .map_err(Failure::Other)?;
            if read == 0 {
                break;
            }
            line_no += 1;
            let Ok(line) = std::str::from_utf8(&raw) else {
                eprintln!("warning: line {line_no} of the input is not UTF-8 text; skipped");
                continue;
            };
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            // A number presses the matching button of the last message that had buttons.
            let press = line
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| buttons.get(i));
            let pressed = press.is_some();
            let text = press.map_or_else(|| line.to_owned(), |b| b.payload.clone());
            counter += 1;
            let now = Utc::now();
            let inbound = Inbound {
                conversation: cref.clone(),
                user_name: name.clone(),
                platform_message_id: format!(
                    "{}-{}-{counter}",
                    std::process::id(),
                    now.timestamp_nanos_opt().unwrap_or_default()
                ),
                text,
                at: now,
                attachments: Vec::new(),
                pressed,
            };
            match service.handle_inbound(&inbound, now).await {
                Ok(Handled::Processed {
                    secret_redacted: true,
                    ..
                }) => {
                    writeln!(out, "(the secret in your message was not stored)").map_err(io)?;
                }
                Ok(_) => {}
                // This line can never be stored: set aside, and the next ones go on.
                Err(e) if !e.is_transient() => {
                    let reason = kefu_service::error_chain(&e);
                    eprintln!("warning: line {line_no} could not be handled: {reason}");
                    service
                        .record_unstorable(
                            "terminal",
                            &inbound.platform_message_id,
                            Some(&name),
                            &reason,
                            now,
                        )
                        .await
                        .map_err(other)?;
                }
                Err(e) => return Err(other(e)),
            }
            deliver(&service, &cref, &mut out, &mut buttons).await?;
        }
        Ok(())
    })
}

/// Prints and marks delivered everything waiting for this conversation.
async fn deliver(
    service: &Service,
    cref: &ConversationRef,
    out: &mut impl Write,
    buttons: &mut Vec<Button>,
) -> Result<(), Failure> {
    let pending = service
        .store()
        .pending_outbox_for_conversation(cref, Utc::now())
        .await
        .map_err(|e| other(e.into()))?;
    for m in pending {
        if let Some(message) = m.user_message() {
            writeln!(out, "{}", message.text).map_err(io)?;
            if !message.buttons.is_empty() {
                let shown: Vec<String> = message
                    .buttons
                    .iter()
                    .enumerate()
                    .map(|(i, b)| format!("[{}] {}", i + 1, b.label))
                    .collect();
                writeln!(out, "    {}", shown.join("   ")).map_err(io)?;
                buttons.clone_from(&message.buttons);
            }
            writeln!(out).map_err(io)?;
            out.flush().map_err(io)?;
        }
        // Anything else for a terminal (deleting the message that carried a secret) has
        // nothing to do: the text was never stored.
        service
            .store()
            .mark_delivered(m.id, None, Utc::now())
            .await
            .map_err(|e| other(e.into()))?;
    }
    Ok(())
}

fn io(e: std::io::Error) -> Failure {
    Failure::Other(anyhow::Error::new(e).context("writing to stdout"))
}

fn other(e: kefu_service::ServiceError) -> Failure {
    Failure::Other(e.into())
}
