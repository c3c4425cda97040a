//! The `outbox` table: messages to subjects, sent by a background sender.

use sea_orm::entity::prelude::*;

use crate::store::status::MessageStatus;

/// A message.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub message_id: String,
    /// The request it tells of; empty for a breach notice's message.
    pub request_id: String,
    /// What it is about: "received", "extended", "completed", "refused".
    pub topic: String,
    /// Sealed recipient address; cleared once sent, failed or dropped.
    pub recipient: Option<Vec<u8>>,
    /// Sealed body; emptied once sent, failed or dropped.
    pub body: Vec<u8>,
    /// How it fared: [`crate::domain::delivery`].
    pub status: MessageStatus,
    /// Attempts made.
    pub attempts: i32,
    /// Queued.
    pub created_at: ChronoDateTimeUtc,
    /// Sent.
    pub sent_at: Option<ChronoDateTimeUtc>,
    /// The key (wrapped by the KEK) the message is sealed with in the mailbox file; dropped
    /// when its subject is erased.
    pub file_key: Option<Vec<u8>>,
    /// When a pending message is next due (after a failed attempt, or while a sender holds
    /// it); `None`: due now.
    pub next_attempt_at: Option<ChronoDateTimeUtc>,
    /// What went wrong at the last failed attempt: an
    /// [`ErrorCategory`](crate::domain::delivery::ErrorCategory) name, never a server's words.
    pub last_error: Option<String>,
    /// The breach notice it carries (`notices`), for a notice's message.
    pub notice_id: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
