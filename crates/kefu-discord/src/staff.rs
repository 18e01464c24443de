//! The staff channel: a private thread per open ticket, Claim / Resolve buttons, staff replies.

use std::collections::HashSet;

use chrono::Utc;
use kefu_core::model::{Sender, Ticket, TranscriptLine};
use kefu_core::render::{render_transcript, split_text, ticket_summary, ticket_title, truncate};
use kefu_service::StaffOutcome;
use serenity::all::{
    ButtonStyle, ChannelId, ChannelType, ComponentInteraction, CreateActionRow,
    CreateAllowedMentions, CreateAttachment, CreateButton, CreateMessage, CreateThread, EditThread,
    Message, MessageReference, RoleId, UserId,
};
use tokio::sync::watch;

use crate::{
    Adapter, HandleError, MESSAGE_LIMIT, PLATFORM, StaffThread, THREAD_RETRY, display_name,
    stopping,
};

/// A summary post longer than this sends the transcript as a file instead.
const SUMMARY_LIMIT: usize = 1800;

/// Discord's thread name limit.
const THREAD_NAME_LIMIT: usize = 100;

impl Adapter<'_> {
    /// Text typed in a ticket's thread: a staff member's goes to the user.
    pub(crate) async fn on_staff_message(
        &self,
        msg: &Message,
        ticket: &Ticket,
        roles: &[RoleId],
    ) -> Result<(), HandleError> {
        if !self.is_staff(msg.author.id, roles) || msg.content.trim().is_empty() {
            return Ok(());
        }
        let staff = display_name(&msg.author);
        let notice = match self
            .service
            .reply(ticket.id, &staff, &msg.content, Utc::now())
            .await?
        {
            StaffOutcome::Done => None,
            StaffOutcome::HeldBy(other) => Some(format!(
                "{other} holds this ticket: your message was not sent to the user."
            )),
            StaffOutcome::NotOpen | StaffOutcome::NotFound => {
                Some("This ticket is closed: your message was not sent to the user.".to_owned())
            }
        };
        if let Some(notice) = notice {
            self.post(
                msg.channel_id,
                CreateMessage::new()
                    .content(notice)
                    .reference_message(MessageReference::from(msg).fail_if_not_exists(false)),
            )
            .await;
        }
        Ok(())
    }

    /// Claim or Resolve pressed by a staff member (others were refused when the press arrived).
    pub(crate) async fn on_staff_button(
        &self,
        press: &ComponentInteraction,
        action: &str,
    ) -> Result<(), HandleError> {
        let (verb, id) = action.split_once(':').unwrap_or((action, ""));
        let Ok(ticket_id) = id.parse::<i64>() else {
            return Ok(());
        };
        let staff = display_name(&press.user);
        let now = Utc::now();
        let outcome = match verb {
            "claim" => self.service.claim(ticket_id, &staff, now).await?,
            "resolve" => self.service.resolve(ticket_id, &staff, now).await?,
            _ => return Ok(()),
        };
        let text = match (&outcome, verb) {
            (StaffOutcome::Done, "claim") => {
                format!("{staff} claimed this ticket: what you type here now goes to the user.")
            }
            (StaffOutcome::Done, _) => format!("Resolved by {staff}."),
            (StaffOutcome::HeldBy(other), _) => format!("{other} holds this ticket."),
            (StaffOutcome::NotOpen, "resolve") => {
                "Claim the ticket before resolving it (or it is closed).".to_owned()
            }
            (StaffOutcome::NotOpen, _) => "This ticket is closed.".to_owned(),
            (StaffOutcome::NotFound, _) => "No such ticket.".to_owned(),
        };
        self.post(press.channel_id, CreateMessage::new().content(text))
            .await;
        if outcome == StaffOutcome::Done && verb == "resolve" {
            self.relay_new_lines(ticket_id).await?;
            let thread = self
                .threads
                .lock()
                .ok()
                .and_then(|mut t| t.remove(&ticket_id));
            let channel = thread.map_or(press.channel_id, |t| t.channel);
            self.archive(channel).await;
        }
        Ok(())
    }

    async fn archive(&self, thread: ChannelId) {
        if let Err(e) = thread
            .edit_thread(&*self.http, EditThread::new().archived(true).locked(true))
            .await
        {
            tracing::warn!(error = %e, "discord: archiving a ticket thread failed");
        }
    }

    /// Sends a staff-side message; nothing in it pings anyone.
    async fn post(&self, channel: ChannelId, message: CreateMessage) {
        let message = message.allowed_mentions(CreateAllowedMentions::new());
        if let Err(e) = channel.send_message(&*self.http, message).await {
            tracing::warn!(error = %e, "discord: posting in the staff channel failed");
        }
    }

    /// Opens a thread for each open ticket that has none; relays new user lines; archives the
    /// threads of tickets that left the queue (resolved elsewhere, cancelled).
    pub(crate) async fn sync_staff(
        &self,
        staff_channel: ChannelId,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), HandleError> {
        let store = self.service.store();
        let open = store.open_tickets(Utc::now()).await?;
        let open_ids: HashSet<i64> = open.iter().map(|t| t.ticket.id).collect();
        for t in &open {
            if stopping(shutdown) {
                return Ok(());
            }
            match store.staff_thread(t.ticket.id, PLATFORM).await? {
                None => {
                    let recently_failed = self.thread_failures.lock().is_ok_and(|f| {
                        f.get(&t.ticket.id)
                            .is_some_and(|at| at.elapsed() < THREAD_RETRY)
                    });
                    if recently_failed {
                        continue;
                    }
                    if let Err(e) = self.open_thread(staff_channel, &t.ticket).await {
                        tracing::warn!(error = %e, ticket = t.ticket.id, "discord: cannot open a staff thread");
                        if let Ok(mut f) = self.thread_failures.lock() {
                            f.insert(t.ticket.id, std::time::Instant::now());
                        }
                    }
                }
                Some(thread) => {
                    let known = self
                        .threads
                        .lock()
                        .is_ok_and(|m| m.contains_key(&t.ticket.id));
                    if known {
                        self.relay_new_lines(t.ticket.id).await?;
                    } else if let Ok(id) = thread.parse::<u64>() {
                        // Seen for the first time by this process: relay from here on.
                        let relayed = user_lines(&store.ticket_transcript(t.ticket.id).await?);
                        if let Ok(mut threads) = self.threads.lock() {
                            threads.insert(
                                t.ticket.id,
                                StaffThread {
                                    channel: ChannelId::new(id),
                                    relayed,
                                },
                            );
                        }
                    }
                }
            }
        }
        let gone: Vec<StaffThread> = match self.threads.lock() {
            Ok(mut threads) => {
                let ids: Vec<i64> = threads
                    .keys()
                    .filter(|id| !open_ids.contains(id))
                    .copied()
                    .collect();
                ids.into_iter()
                    .filter_map(|id| threads.remove(&id))
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        for thread in gone {
            self.archive(thread.channel).await;
        }
        Ok(())
    }

    async fn open_thread(&self, staff_channel: ChannelId, ticket: &Ticket) -> Result<(), String> {
        let store = self.service.store();
        let name = truncate(&ticket_title(ticket), THREAD_NAME_LIMIT);
        let thread = staff_channel
            .create_thread(
                &*self.http,
                CreateThread::new(name)
                    .kind(ChannelType::PrivateThread)
                    .invitable(false),
            )
            .await
            .map_err(|e| e.to_string())?;
        store
            .set_staff_thread(ticket.id, PLATFORM, &thread.id.to_string())
            .await
            .map_err(|e| e.to_string())?;
        let relayed = user_lines(
            &store
                .ticket_transcript(ticket.id)
                .await
                .map_err(|e| e.to_string())?,
        );
        if let Ok(mut threads) = self.threads.lock() {
            threads.insert(
                ticket.id,
                StaffThread {
                    channel: thread.id,
                    relayed,
                },
            );
        }
        for user in &self.config.staff_user_ids {
            if let Err(e) = thread
                .id
                .add_thread_member(&*self.http, UserId::new(*user))
                .await
            {
                tracing::warn!(error = %e, user, "discord: adding a staff member to a ticket thread failed");
            }
        }
        let lines = store
            .transcript(&ticket.conversation)
            .await
            .map_err(|e| e.to_string())?;
        let header = ticket_summary(ticket);
        let transcript = render_transcript(&lines);
        let buttons = vec![CreateActionRow::Buttons(vec![
            CreateButton::new(format!("staff:claim:{}", ticket.id))
                .label("Claim")
                .style(ButtonStyle::Primary),
            CreateButton::new(format!("staff:resolve:{}", ticket.id))
                .label("Resolve")
                .style(ButtonStyle::Success),
        ])];
        // Mentioning the staff role adds its members to the private thread; nothing else pings.
        let (role_line, mentions) = match self.config.staff_role_id {
            Some(role) => (
                format!("<@&{role}>\n"),
                CreateAllowedMentions::new().roles([RoleId::new(role)]),
            ),
            None => (String::new(), CreateAllowedMentions::new()),
        };
        let mut message = CreateMessage::new()
            .components(buttons)
            .allowed_mentions(mentions);
        if header.chars().count() + transcript.chars().count() <= SUMMARY_LIMIT {
            message = message.content(format!("{role_line}{header}\n\nTranscript:\n{transcript}"));
        } else {
            message = message
                .content(truncate(
                    &format!("{role_line}{header}\n\nTranscript attached."),
                    MESSAGE_LIMIT,
                ))
                .add_file(CreateAttachment::bytes(
                    transcript.into_bytes(),
                    format!("transcript-{}.txt", ticket.code),
                ));
        }
        thread
            .id
            .send_message(&*self.http, message)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Posts the user's lines written since the last relay into the ticket's thread.
    async fn relay_new_lines(&self, ticket_id: i64) -> Result<(), HandleError> {
        let Some(thread) = self
            .threads
            .lock()
            .ok()
            .and_then(|m| m.get(&ticket_id).copied())
        else {
            return Ok(());
        };
        let lines = self.service.store().ticket_transcript(ticket_id).await?;
        let users: Vec<&TranscriptLine> =
            lines.iter().filter(|l| l.sender == Sender::User).collect();
        if users.len() <= thread.relayed {
            return Ok(());
        }
        let total = users.len();
        let new: Vec<String> = users[thread.relayed..]
            .iter()
            .map(|l| format!("👤 {}", l.text))
            .collect();
        for part in split_text(&new.join("\n"), MESSAGE_LIMIT) {
            let sent = thread
                .channel
                .send_message(
                    &*self.http,
                    CreateMessage::new()
                        .content(part)
                        .allowed_mentions(CreateAllowedMentions::new()),
                )
                .await;
            if let Err(e) = sent {
                // Not advanced: tried again next round.
                tracing::warn!(error = %e, "discord: relaying to a ticket thread failed");
                return Ok(());
            }
        }
        if let Ok(mut threads) = self.threads.lock()
            && let Some(t) = threads.get_mut(&ticket_id)
        {
            t.relayed = total;
        }
        Ok(())
    }
}

fn user_lines(lines: &[TranscriptLine]) -> usize {
    lines.iter().filter(|l| l.sender == Sender::User).count()
}
