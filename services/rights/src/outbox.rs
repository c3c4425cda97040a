//! Messages to subjects, queued in the database with the request, or with the breach
//! notice (`notice_id`, sealed under the notice's own key), they tell of (so a crash loses none)
//! and sent by the outbox's own loop ([`Outbox::run`], owned by the worker): through the
//! SMTP relay of `rights.smtp_relay` over TLS ([`crate::smtp`]), else appended to the local
//! mailbox file of development (see [`crate::mailbox`]).
//!
//! Delivery ([`crate::domain::delivery`]): each message is claimed by one sender (replicas
//! share the table), tried, and on failure tried again with a doubling backoff until it
//! is sent or given up (FAILED); the request shows each message's status, attempts and
//! the category of its last error (`DataSubjectRequest.messages`).
//!
//! What is kept of an address (the policy: once an account is deleted "your account and
//! all associated data will be permanently deleted"):
//! - the row seals the recipient and body with the request's key and forgets both once
//!   the message is sent, given up or dropped;
//! - the mailbox file holds each message sealed under a key of its own (kept in the rights
//!   key store), never an address in clear;
//! - once the subject is erased, the mailbox keys of all their messages are destroyed,
//!   their waiting messages (breach notices' too) dropped with the address, and only the erasure's own
//!   confirmation still goes out ("You will receive an email confirming the deletion"),
//!   its key dropped as it is sent. Rules: [`crate::domain::mailbox`].
//!
//! Logs name the message and the error's category, never the address.

use std::{path::PathBuf, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use pdm_crypto::{DataKey, Keyring};
use pdm_runtime::{SharedClock, settings::SettingsError};
use tokio_util::sync::CancellationToken;

use crate::{
    domain::{
        delivery::{ErrorCategory, Next, Retry},
        mailbox::{Disposition, disposition, erases},
    },
    error::Result,
    mailbox::{self, Letter},
    sealed::{self, F_BODY, F_RECIPIENT},
    settings::RightsSettings,
    smtp::{self, Mail},
    store::{
        KeyOf, MESSAGE_KEY_STORED, MessageStatus, Store,
        entities::{outbox, request},
    },
};

/// Messages looked at per round.
const BATCH: u64 = 50;
/// Pause between rounds.
const POLL: Duration = Duration::from_millis(500);
/// How long a claim on a message sent to the mailbox file lasts.
const FILE_LEASE: Duration = Duration::from_secs(60);

/// Where messages go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// The local mailbox file: sealed JSON lines (mode 0600). Development only.
    File(PathBuf),
    /// An SMTP relay, over TLS (see [`crate::smtp`]).
    Smtp(Arc<smtp::Relay>),
}

impl Sink {
    /// The sink the settings choose: the SMTP relay of `rights.smtp_relay`, else the
    /// mailbox file. Every `rights.smtp_*` key is checked (a bad one is named and stops
    /// the start); a PostgreSQL or production deployment without a relay is warned that
    /// confirmations would reach nobody.
    pub fn configure(
        settings: &RightsSettings,
        runtime: &pdm_runtime::Settings,
    ) -> std::result::Result<Self, SettingsError> {
        if let Some(relay) = settings.relay()? {
            return Ok(Self::Smtp(Arc::new(relay)));
        }
        let path = settings.mailbox_file(&runtime.data_dir);
        // Earlier versions wrote addresses in clear, and kept them forever.
        match mailbox::scrub_plaintext(&path) {
            Ok(0) => {}
            Ok(lines) => tracing::info!(lines, "removed plaintext lines from the mailbox file"),
            Err(e) => tracing::warn!(error = %e, "scrubbing the mailbox file failed"),
        }
        // A shared database, or an environment named production, means a deployment: a
        // file on one replica's disk reaches nobody, so the confirmations the policy
        // promises would not arrive.
        let shared = matches!(
            pdm_runtime::db::DatabaseTarget::resolve(runtime, crate::NAME),
            Ok(pdm_runtime::db::DatabaseTarget::Postgres { .. })
        );
        let production = runtime.otlp.environment.eq_ignore_ascii_case("production")
            || runtime.otlp.environment.eq_ignore_ascii_case("prod");
        if shared || production {
            tracing::warn!(
                file = %path.display(),
                "messages to subjects go to a local mailbox file, which is for development only: \
                 set rights.smtp_relay so confirmations reach people"
            );
        }
        Ok(Self::File(path))
    }

    /// How long one attempt may hold a message.
    fn lease(&self) -> chrono::Duration {
        let bound = match self {
            Self::File(_) => FILE_LEASE,
            Self::Smtp(relay) => relay.session_bound(),
        };
        chrono::Duration::from_std(bound).unwrap_or(chrono::Duration::hours(1))
    }
}

/// The outbox.
#[derive(Debug, Clone)]
pub struct Outbox {
    store: Store,
    keyring: Keyring,
    sink: Sink,
}

impl Outbox {
    /// An outbox over the store.
    pub fn new(store: Store, keyring: Keyring, sink: Sink) -> Self {
        Self {
            store,
            keyring,
            sink,
        }
    }

    /// A message for the request's subject, ready to be stored in the same transaction as
    /// the change it tells of; none when no address is known. `key` is the request's
    /// ([`KeyOf::Request`]): the caller reads it once for all it does with the request.
    pub async fn message(
        &self,
        key: &DataKey,
        req: &request::Model,
        topic: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<outbox::Model>> {
        let Some(email) = Self::address(key, req)? else {
            tracing::info!(request_id = %req.request_id, topic, "no contact address: message not queued");
            return Ok(None);
        };
        Ok(Some(
            self.compose(key, req, &email, topic, body, now).await?,
        ))
    }

    /// The contact address the request holds for its subject, if any (`key`: the
    /// request's).
    pub fn address(key: &DataKey, req: &request::Model) -> Result<Option<String>> {
        Ok(sealed::open_details(key, &req.details)?.contact_email)
    }

    /// Forgets the contact address a request holds, once the messages it owes are queued
    /// (`key`: the request's).
    pub async fn forget_contact(&self, key: &DataKey, req: &request::Model) -> Result<()> {
        if let Some(details) = Self::without_contact(key, req)? {
            self.store.set_details(&req.request_id, details).await?;
        }
        Ok(())
    }

    /// The request's details sealed again without its contact address, to be stored when
    /// the messages it owes are (`key`: the request's); none when it holds no address.
    pub fn without_contact(key: &DataKey, req: &request::Model) -> Result<Option<Vec<u8>>> {
        let mut details = sealed::open_details(key, &req.details)?;
        if details.contact_email.take().is_none() {
            return Ok(None);
        }
        Ok(Some(sealed::seal_details(key, &details)?))
    }

    /// A message to `email` about the request, sealed with the request's `key`, ready to be
    /// stored (in the same transaction as the change it tells of).
    pub async fn compose(
        &self,
        key: &DataKey,
        req: &request::Model,
        email: &str,
        topic: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<outbox::Model> {
        let mut message = self.sealed(key, email, topic, body, now).await?;
        message.request_id = req.request_id.clone();
        Ok(message)
    }

    /// A breach notice's message to `email`, sealed with the notice's own key (made now),
    /// ready to be stored with the notice.
    pub async fn compose_notice(
        &self,
        notice_id: &str,
        email: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<outbox::Model> {
        let key = self.store.new_key(KeyOf::Notice(notice_id), now).await?;
        let mut message = self
            .sealed(&key, email, crate::domain::notice::TOPIC, body, now)
            .await?;
        message.notice_id = Some(notice_id.to_owned());
        Ok(message)
    }

    /// A message sealed with `key`, owned by nothing yet.
    async fn sealed(
        &self,
        key: &DataKey,
        email: &str,
        topic: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<outbox::Model> {
        let message_id = uuid::Uuid::now_v7().to_string();
        // The mailbox key exists from the start, so shredding it at erasure also covers
        // a message being written at that moment.
        let file_key = match &self.sink {
            Sink::File(_) => {
                self.store.new_key(KeyOf::Message(&message_id), now).await?;
                Some(MESSAGE_KEY_STORED.to_vec())
            }
            Sink::Smtp(_) => None,
        };
        Ok(outbox::Model {
            message_id,
            request_id: String::new(),
            topic: topic.to_owned(),
            recipient: Some(key.seal_str(F_RECIPIENT, email)?),
            body: key.seal_str(F_BODY, body)?,
            status: MessageStatus::Pending,
            attempts: 0,
            created_at: now,
            sent_at: None,
            file_key,
            next_attempt_at: None,
            last_error: None,
            notice_id: None,
        })
    }

    /// Sends what falls due until `stop`: the outbox's own loop, so a slow relay never
    /// holds up the fan-out. A message in flight when `stop` comes is finished.
    pub async fn run(self, clock: SharedClock, retry: Retry, stop: CancellationToken) {
        loop {
            self.send_due(&clock, &retry, &stop).await;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// One round: every message due now, each claimed then tried once.
    pub async fn send_due(&self, clock: &SharedClock, retry: &Retry, stop: &CancellationToken) {
        let due = match self.store.due_messages(clock.now(), BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "reading the outbox failed; will retry");
                return;
            }
        };
        for m in due {
            if stop.is_cancelled() {
                return;
            }
            let now = clock.now();
            match self
                .store
                .claim_message(&m.message_id, now, now + self.sink.lease())
                .await
            {
                Ok(true) => self.attempt(&m, clock, retry).await,
                // Another replica's sender has it.
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "claiming a message failed; will retry"),
            }
        }
    }

    /// One attempt at a claimed message, and its outcome recorded. A failure to read
    /// what it needs leaves the claim to run out, and the message falls due again.
    async fn attempt(&self, m: &outbox::Model, clock: &SharedClock, retry: &Retry) {
        debug_assert_eq!(m.status, MessageStatus::Pending);
        let (key, keep_readable) = match self.owner(m).await {
            Ok(Some((key, Disposition::Deliver { keep_readable }))) => (key, keep_readable),
            Ok(_) => {
                match self.store.drop_message(&m.message_id).await {
                    Ok(()) => {
                        tracing::info!(message_id = %m.message_id, "message dropped: its subject was erased")
                    }
                    Err(e) => tracing::warn!(error = %e, "dropping a message failed"),
                }
                return;
            }
            Err(e) => {
                tracing::warn!(message_id = %m.message_id, error = %e, "message not sent; will retry");
                return;
            }
        };
        let opened = match &key {
            Some(key) => open(key, m),
            None => Err(crate::error::RightsError::Internal(
                "the key of a message still pending is gone",
            )),
        };
        let sent = match opened {
            Ok(Some((to, body))) => self.deliver(m, &to, &body, clock.now()).await,
            Ok(None) => Ok(()),
            Err(e) => Err(smtp::Error::new(ErrorCategory::Local, e.to_string())),
        };
        let now = clock.now();
        let attempt = m.attempts.saturating_add(1);
        let recorded = match sent {
            Ok(()) => {
                tracing::info!(message_id = %m.message_id, request_id = %m.request_id, notice_id = ?m.notice_id, topic = %m.topic, attempt, "message sent");
                self.store
                    .message_sent(&m.message_id, keep_readable, now)
                    .await
            }
            Err(error) => match retry.after_failure(attempt, error.category, now) {
                Next::RetryAt(at) => {
                    tracing::warn!(
                        message_id = %m.message_id, request_id = %m.request_id, topic = %m.topic,
                        attempt, category = %error.category, error = %error.detail,
                        retry_at = %at.to_rfc3339(), "message not sent; will retry"
                    );
                    self.store
                        .message_deferred(&m.message_id, error.category, at)
                        .await
                }
                Next::GiveUp => {
                    tracing::error!(
                        message_id = %m.message_id, request_id = %m.request_id, topic = %m.topic,
                        attempt, category = %error.category, error = %error.detail,
                        "message not sent and given up: it is marked failed and its address forgotten"
                    );
                    self.store
                        .message_failed(&m.message_id, error.category)
                        .await
                }
            },
        };
        if let Err(e) = recorded {
            tracing::warn!(message_id = %m.message_id, error = %e, "recording a send attempt failed");
        }
    }

    /// The key a message is sealed with (`None` once destroyed) and what becomes of it: a request's message as
    /// [`disposition`] says; a notice's goes unless its subject was erased (it is not the
    /// erasure's own). `None` when its owner is gone (dropped).
    async fn owner(&self, m: &outbox::Model) -> Result<Option<(Option<DataKey>, Disposition)>> {
        if let Some(notice_id) = &m.notice_id {
            let Some(notice) = self.store.notice(notice_id).await? else {
                return Ok(None);
            };
            let key = self.store.find_key(KeyOf::Notice(notice_id)).await?;
            let erased = self.store.subject_erased(&notice.subject_id).await?;
            return Ok(Some((key, disposition(erased, false))));
        }
        let Some(req) = self.store.request(&m.request_id).await? else {
            return Ok(None);
        };
        let disposition = self.disposition(&req).await?;
        let key = self.store.find_key(KeyOf::Request(&req.request_id)).await?;
        Ok(Some((key, disposition)))
    }

    /// What becomes of a message of `req`: after its subject's erasure only the
    /// erasure's own messages go, and none stays readable.
    async fn disposition(&self, req: &request::Model) -> Result<Disposition> {
        let erased = match &req.subject_id {
            Some(subject) => self.store.subject_erased(subject).await?,
            None => false,
        };
        Ok(disposition(erased, erases(&req.kind)))
    }

    async fn deliver(
        &self,
        m: &outbox::Model,
        to: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> std::result::Result<(), smtp::Error> {
        let subject = if m.notice_id.is_some() {
            crate::domain::notice::SUBJECT.to_owned()
        } else {
            format!("Your privacy request ({})", m.topic)
        };
        // The mailbox file names the message's owner: its request, or its notice.
        let owner = m.notice_id.as_deref().unwrap_or(&m.request_id);
        match &self.sink {
            Sink::File(path) => {
                let letter = Letter {
                    to: to.to_owned(),
                    subject,
                    body: body.to_owned(),
                };
                let local = |e: &dyn std::fmt::Display| {
                    smtp::Error::new(ErrorCategory::Local, format!("outbox file: {e}"))
                };
                let key = match m.file_key {
                    Some(_) => self
                        .store
                        .find_key(KeyOf::Message(&m.message_id))
                        .await
                        .map_err(|e| local(&e))?,
                    None => None,
                };
                let line = mailbox::line(
                    &self.keyring,
                    &m.message_id,
                    owner,
                    &m.topic,
                    key.as_ref(),
                    &letter,
                )
                .map_err(|e| local(&e))?;
                mailbox::append(path, &line).map_err(|e| local(&e))
            }
            Sink::Smtp(relay) => {
                relay
                    .send(&Mail {
                        from: relay.from(),
                        to,
                        subject: &subject,
                        body,
                        id: &m.message_id,
                        date: now,
                    })
                    .await
            }
        }
    }
}

/// The recipient and body of a pending message, opened with its owner's key (`None` when
/// it no longer holds them).
fn open(key: &DataKey, m: &outbox::Model) -> Result<Option<(String, String)>> {
    let Some(recipient) = &m.recipient else {
        return Ok(None);
    };
    Ok(Some((
        key.open_string(F_RECIPIENT, recipient)?,
        key.open_string(F_BODY, &m.body)?,
    )))
}
