//! Users' messages and button presses, handed to the service. Everything the bot says back goes
//! through the outbox.

use chrono::Utc;
use kefu_core::model::Inbound;
use kefu_service::{Handled, ServiceError};
use teloxide::prelude::*;
use teloxide::types::CallbackQueryId;

use crate::Adapter;

impl Adapter<'_> {
    /// A user's message, or a button press (`callback`: the query to acknowledge first, within
    /// Telegram's deadline).
    pub(crate) async fn on_user(
        &self,
        inbound: &Inbound,
        callback: Option<String>,
    ) -> Result<(), ServiceError> {
        if let Some(id) = callback
            && let Err(e) = self.bot.answer_callback_query(CallbackQueryId(id)).await
        {
            tracing::debug!(error = %self.hide(&e), "telegram: answerCallbackQuery failed");
        }
        if inbound.text.is_empty() && inbound.attachments.is_empty() {
            return Ok(());
        }
        match self.service.handle_inbound(inbound, Utc::now()).await? {
            Handled::Duplicate => {
                tracing::debug!(message = %inbound.platform_message_id, "telegram: duplicate update");
            }
            Handled::Processed { .. }
            | Handled::TakenOver
            | Handled::Deferred
            | Handled::Failed => {}
        }
        Ok(())
    }
}
