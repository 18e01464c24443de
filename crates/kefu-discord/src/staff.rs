//! The staff channel: what staff type in a ticket's private thread goes to the user; the Claim,
//! Resolve and Release buttons act on the ticket. Who may do either: the configured staff ids or
//! role. The service says what happened; notices and refusals are posted through the outbox, and
//! a button press that did not go through is answered with an ephemeral follow-up in the
//! presser's language.

use chrono::Utc;
use kefu_core::staff::{self as text, StaffAction};
use kefu_service::{ServiceError, StaffActor, StaffOutcome};
use serenity::all::{
    ComponentInteraction, CreateInteractionResponseFollowup, Message, RoleId, UserId,
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
        let Some((action, ticket)) = text::parse_button(&press.data.custom_id) else {
            return Ok(());
        };
        let actor = self.actor(
            press.user.id,
            display_name(&press.user),
            Some(&press.locale),
            None,
        );
        let outcome = self
            .service
            .staff_action(&actor, ticket, action.clone(), Utc::now())
            .await?;
        if outcome != StaffOutcome::Done {
            let lang = actor.lang.unwrap_or(self.service.config().staff_language);
            let followup = CreateInteractionResponseFollowup::new()
                .content(text::button_outcome(lang, &action, &outcome))
                .ephemeral(true);
            if let Err(e) = press.create_followup(&*self.http, followup).await {
                tracing::debug!(error = %e, "discord: interaction follow-up failed");
            }
        }
        Ok(())
    }
}
