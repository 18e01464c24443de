//! The staff supergroup: what staff type in a ticket's forum topic goes to the user; the Claim,
//! Resolve and Release buttons act on the ticket, and the buttons of the post that follows a
//! Resolve label it (what the user's question was about). Who may do any of it: the configured
//! staff ids.
//! The service says what happened; refusals and notices are posted through the outbox, and a
//! button press is answered at once with a short toast (Telegram's callback answer).

use chrono::Utc;
use kefu_core::staff::{self as text, StaffAction};
use kefu_service::{ServiceError, StaffActor, StaffOutcome};
use teloxide::prelude::*;
use teloxide::types::CallbackQueryId;

use crate::updates::Person;
use crate::{Adapter, PLATFORM};

impl Adapter<'_> {
    fn is_staff(&self, person: &Person) -> bool {
        self.config.staff_user_ids.contains(&person.id)
    }

    fn actor(&self, person: &Person, reply_to: Option<String>, post_refusal: bool) -> StaffActor {
        StaffActor {
            name: person.name.clone(),
            space: Some(PLATFORM.to_owned()),
            reply_to,
            post_refusal,
            lang: person.lang,
            platform_user_id: Some(person.id.to_string()),
        }
    }

    /// Text in a topic of the staff supergroup.
    pub(crate) async fn on_staff_text(
        &self,
        topic: i32,
        from: &Person,
        body: &str,
        message_id: i32,
    ) -> Result<(), ServiceError> {
        if !self.is_staff(from) {
            return Ok(());
        }
        let Some(ticket) = self
            .service
            .ticket_for_staff_space(PLATFORM, &topic.to_string())
            .await?
        else {
            return Ok(());
        };
        let actor = self.actor(from, Some(message_id.to_string()), true);
        self.service
            .staff_action(
                &actor,
                ticket,
                StaffAction::Reply(body.to_owned()),
                Utc::now(),
            )
            .await?;
        Ok(())
    }

    /// A staff button: acted on if the presser is staff, answered with a toast either way.
    pub(crate) async fn on_staff_button(
        &self,
        callback: &str,
        from: &Person,
        payload: &str,
    ) -> Result<(), ServiceError> {
        let lang = from.lang.unwrap_or(self.service.config().staff_language);
        let (answer, alert) = if !self.is_staff(from) {
            (text::only_staff(lang), true)
        } else if let Some((ticket, choice)) = text::parse_label_button(payload) {
            let labelled = self
                .service
                .label_from_button(&self.actor(from, None, false), ticket, choice, Utc::now())
                .await;
            match labelled {
                Ok(Some(l)) => {
                    let what = text::label_text(lang, l.kind.as_str(), l.name.as_deref());
                    (text::labelled(lang, &what), false)
                }
                Ok(None) => (
                    text::button_outcome(lang, &StaffAction::Claim, &StaffOutcome::NotFound),
                    true,
                ),
                Err(ServiceError::Label(_)) => (text::label_refused(lang), true),
                Err(e) => return Err(e),
            }
        } else {
            match text::parse_button(payload) {
                None => (
                    text::button_outcome(lang, &StaffAction::Claim, &StaffOutcome::NotFound),
                    true,
                ),
                Some((action, ticket)) => {
                    let outcome = self
                        .service
                        .staff_action(
                            &self.actor(from, None, false),
                            ticket,
                            action.clone(),
                            Utc::now(),
                        )
                        .await?;
                    let alert = outcome != StaffOutcome::Done;
                    (text::button_outcome(lang, &action, &outcome), alert)
                }
            }
        };
        let mut request = self
            .bot
            .answer_callback_query(CallbackQueryId(callback.to_owned()))
            .text(answer);
        if alert {
            request = request.show_alert(true);
        }
        if let Err(e) = request.await {
            tracing::debug!(error = %self.hide(&e), "telegram: answerCallbackQuery failed");
        }
        Ok(())
    }
}
