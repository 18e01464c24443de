//! The staff channel: what staff type in a ticket's private thread goes to the user; the Claim,
//! Resolve and Release buttons act on the ticket, and the buttons of the post that follows a
//! Resolve label it (what the user's question was about). Who may do any of it: the configured
//! staff ids or role. The service says what happened; notices and refusals are posted through the
//! outbox, and a button press that did not go through is answered with an ephemeral follow-up in
//! the presser's language, as is a label recorded.

use chrono::Utc;
use kefu_core::staff::{self as text, StaffAction};
use kefu_service::{ServiceError, StaffActor, StaffOutcome};
use serenity::all::{
    ComponentInteraction, CreateInteractionResponseFollowup, EditThread, Message, RoleId, UserId,
};

use crate::{Adapter, PLATFORM, display_name};

impl Adapter<'_> {
    /// The staff member `user` (shown as `name`) acting from the staff channel.
    fn actor(
        &self,
        user: UserId,
        name: String,
        locale: Option<&str>,
        reply_to: Option<String>,
    ) -> StaffActor {
        StaffActor {
            name,
            space: Some(PLATFORM.to_owned()),
            post_refusal: reply_to.is_some(),
            reply_to,
            lang: locale.and_then(text::lang_of_locale),
            platform_user_id: Some(user.to_string()),
        }
    }

    /// Text typed in a ticket's thread: a staff member's goes to the user.
    pub(crate) async fn on_staff_message(
        &self,
        msg: &Message,
        ticket: i64,
        roles: &[RoleId],
    ) -> Result<(), ServiceError> {
        if !self.is_staff(msg.author.id, roles) || msg.content.trim().is_empty() {
            return Ok(());
        }
        let actor = self.actor(
            msg.author.id,
            display_name(&msg.author),
            None,
            Some(msg.id.to_string()),
        );
        self.service
            .staff_action(
                &actor,
                ticket,
                StaffAction::Reply(msg.content.clone()),
                Utc::now(),
            )
            .await?;
        Ok(())
    }

    /// A staff button pressed by a staff member (others were refused when the press arrived).
    pub(crate) async fn on_staff_button(
        &self,
        press: &ComponentInteraction,
    ) -> Result<(), ServiceError> {
        let actor = self.actor(
            press.user.id,
            display_name(&press.user),
            Some(&press.locale),
            None,
        );
        let lang = actor.lang.unwrap_or(self.service.config().staff_language);
        if let Some((ticket, choice)) = text::parse_label_button(&press.data.custom_id) {
            return self
                .on_label_button(press, &actor, lang, ticket, choice)
                .await;
        }
        let Some((action, ticket)) = text::parse_button(&press.data.custom_id) else {
            return Ok(());
        };
        let outcome = self
            .service
            .staff_action(&actor, ticket, action.clone(), Utc::now())
            .await?;
        if outcome != StaffOutcome::Done {
            self.answer(press, text::button_outcome(lang, &action, &outcome))
                .await;
        }
        Ok(())
    }

    /// A label button of the post that follows a resolve: the label is recorded under the
    /// presser's linked staff account's name (else their own) and the presser is told, in
    /// `lang`, what was recorded or why not. The thread is then archived again: a press in an
    /// archived thread may have reopened it.
    async fn on_label_button(
        &self,
        press: &ComponentInteraction,
        actor: &StaffActor,
        lang: kefu_core::Lang,
        ticket: i64,
        choice: text::LabelButton,
    ) -> Result<(), ServiceError> {
        let labelled = self
            .service
            .label_from_button(actor, ticket, choice, Utc::now())
            .await;
        let (answer, recorded) = match labelled {
            Ok(Some(l)) => {
                let what = text::label_text(lang, l.kind.as_str(), l.name.as_deref());
                (text::labelled(lang, &what), true)
            }
            Ok(None) => (
                text::button_outcome(lang, &StaffAction::Claim, &StaffOutcome::NotFound),
                false,
            ),
            Err(ServiceError::Label(_)) => (text::label_refused(lang), false),
            Err(e) => return Err(e),
        };
        self.answer(press, answer).await;
        if recorded
            && let Err(e) = press
                .channel_id
                .edit_thread(&*self.http, EditThread::new().archived(true))
                .await
        {
            tracing::debug!(error = %e, "discord: archiving a labelled ticket's thread failed");
        }
        Ok(())
    }

    /// An ephemeral follow-up to a press, seen by the presser only. Follow-ups are addressed by
    /// the application id, which the REST client learns from the press.
    async fn answer(&self, press: &ComponentInteraction, content: String) {
        if self.http.application_id().is_none() {
            self.http.set_application_id(press.application_id);
        }
        let followup = CreateInteractionResponseFollowup::new()
            .content(content)
            .ephemeral(true);
        if let Err(e) = press.create_followup(&*self.http, followup).await {
            tracing::debug!(error = %e, "discord: interaction follow-up failed");
        }
    }
}
