//! Messages to subjects, queued in the database with the request (so a crash loses none)
//! and sent by the worker: to the SMTP relay of `rights.smtp_relay`, else appended to the
//! local mailbox file (see [`crate::mailbox`]).
//!
//! What is kept of an address (the policy: once an account is deleted "your account and
//! all associated data will be permanently deleted"):
//! - the row seals the recipient with the request's key and forgets it once sent;
//! - the mailbox file holds each message sealed under a key of its own (kept wrapped in the
//!   row), never an address in clear;
//! - once the subject is erased, the mailbox keys of all their messages are destroyed,
//!   their waiting messages dropped with the address, and only the erasure's own
//!   confirmation still goes out ("You will receive an email confirming the deletion"),
//!   its key dropped as it is sent. Rules: [`crate::domain::mailbox`].
//!
//! Logs name the message, never the address.

use std::{path::PathBuf, time::Duration};

use chrono::{DateTime, Utc};
use pdm_crypto::Keyring;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

use crate::{
    domain::mailbox::{Disposition, disposition, erases},
    error::Result,
    mailbox::{self, Letter},
    sealed::{self, F_BODY, F_RECIPIENT},
    store::{
        Store,
        entities::{outbox, request},
    },
};

/// Where messages go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// The local mailbox file: sealed JSON lines (mode 0600).
    File(PathBuf),
    /// Sent to an SMTP relay (`host:port`), no authentication.
    Smtp {
        /// Relay.
        relay: String,
        /// Sender address.
        from: String,
    },
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

    /// Queues a message for the request's subject (nothing when no address is known).
    pub async fn queue(
        &self,
        req: &request::Model,
        topic: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let Some(email) = self.address(req)? else {
            tracing::info!(request_id = %req.request_id, topic, "no contact address: message not queued");
            return Ok(());
        };
        let message = self.compose(req, &email, topic, body, now)?;
        self.store.enqueue(message).await
    }

    /// The contact address the request holds for its subject, if any.
    pub fn address(&self, req: &request::Model) -> Result<Option<String>> {
        let key = sealed::key(&self.keyring, &req.request_id, &req.wrapped_key)?;
        Ok(sealed::open_details(&key, &req.details)?.contact_email)
    }

    /// Forgets the contact address a request holds, once the messages it owes are queued.
    pub async fn forget_contact(&self, req: &request::Model) -> Result<()> {
        let key = sealed::key(&self.keyring, &req.request_id, &req.wrapped_key)?;
        let mut details = sealed::open_details(&key, &req.details)?;
        if details.contact_email.take().is_some() {
            self.store
                .set_details(&req.request_id, sealed::seal_details(&key, &details)?)
                .await?;
        }
        Ok(())
    }

    /// A message to `email` about the request, sealed, ready to be stored (in the same
    /// transaction as the change it tells of).
    pub fn compose(
        &self,
        req: &request::Model,
        email: &str,
        topic: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<outbox::Model> {
        let key = sealed::key(&self.keyring, &req.request_id, &req.wrapped_key)?;
        let message_id = uuid::Uuid::now_v7().to_string();
        // The mailbox key exists from the start, so shredding it at erasure also covers
        // a message being written at that moment.
        let file_key = match &self.sink {
            Sink::File(_) => Some(mailbox::new_key(&self.keyring, &message_id)?),
            Sink::Smtp { .. } => None,
        };
        Ok(outbox::Model {
            message_id,
            request_id: req.request_id.clone(),
            topic: topic.to_owned(),
            recipient: Some(key.seal_str(F_RECIPIENT, email)?),
            body: key.seal_str(F_BODY, body)?,
            status: "pending".to_owned(),
            attempts: 0,
            created_at: now,
            sent_at: None,
            file_key,
        })
    }

    /// Sends what is pending.
    pub async fn send_pending(&self) {
        let Ok(messages) = self.store.pending_messages(50).await else {
            return;
        };
        for m in messages {
            let what = match self.store.request(&m.request_id).await {
                Ok(Some(req)) => self.disposition(&req).await.map(|d| (Some(req), d)),
                Ok(None) => Ok((None, Disposition::Drop)),
                Err(e) => Err(e),
            };
            let (req, keep_readable) = match what {
                Ok((Some(req), Disposition::Deliver { keep_readable })) => (req, keep_readable),
                Ok(_) => {
                    match self.store.drop_message(&m.message_id).await {
                        Ok(()) => {
                            tracing::info!(message_id = %m.message_id, "message dropped: its subject was erased")
                        }
                        Err(e) => tracing::warn!(error = %e, "dropping a message failed"),
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(message_id = %m.message_id, error = %e, "message not sent; will retry");
                    continue;
                }
            };
            let sent = match self.open(&req, &m) {
                Ok(Some((to, body))) => self.deliver(&m, &to, &body).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
            let ok = sent.is_ok();
            if let Err(error) = sent {
                tracing::warn!(message_id = %m.message_id, %error, "message not sent; will retry");
            } else {
                tracing::info!(message_id = %m.message_id, request_id = %m.request_id, topic = %m.topic, "message sent");
            }
            if let Err(e) = self
                .store
                .message_sent(&m.message_id, ok, keep_readable, Utc::now())
                .await
            {
                tracing::warn!(error = %e, "recording a sent message failed");
            }
        }
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

    fn open(&self, req: &request::Model, m: &outbox::Model) -> Result<Option<(String, String)>> {
        let key = sealed::key(&self.keyring, &req.request_id, &req.wrapped_key)?;
        let Some(recipient) = &m.recipient else {
            return Ok(None);
        };
        Ok(Some((
            key.open_string(F_RECIPIENT, recipient)?,
            key.open_string(F_BODY, &m.body)?,
        )))
    }

    async fn deliver(
        &self,
        m: &outbox::Model,
        to: &str,
        body: &str,
    ) -> std::result::Result<(), String> {
        let subject = format!("Your privacy request ({})", m.topic);
        match &self.sink {
            Sink::File(path) => {
                let letter = Letter {
                    to: to.to_owned(),
                    subject,
                    body: body.to_owned(),
                };
                let line = mailbox::line(
                    &self.keyring,
                    &m.message_id,
                    &m.request_id,
                    &m.topic,
                    m.file_key.as_deref(),
                    &letter,
                )
                .map_err(|e| format!("outbox file: {e}"))?;
                mailbox::append(path, &line).map_err(|e| format!("outbox file: {e}"))
            }
            Sink::Smtp { relay, from } => smtp_send(relay, from, to, &subject, body).await,
        }
    }
}

/// A minimal SMTP client (RFC 5321): EHLO, MAIL, RCPT, DATA, QUIT, over plain TCP to a
/// local relay.
pub async fn smtp_send(
    relay: &str,
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
) -> std::result::Result<(), String> {
    let connect = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(relay));
    let stream = connect
        .await
        .map_err(|_| "smtp: connect timed out".to_owned())?
        .map_err(|e| format!("smtp: {e}"))?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    async fn expect(
        lines: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
        code: &str,
    ) -> std::result::Result<(), String> {
        loop {
            let line = lines
                .next_line()
                .await
                .map_err(|e| format!("smtp: {e}"))?
                .ok_or_else(|| "smtp: connection closed".to_owned())?;
            if !line.starts_with(code) {
                return Err(format!(
                    "smtp: expected {code}, got {}",
                    line.chars().take(3).collect::<String>()
                ));
            }
            // Multi-line replies continue with "250-".
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    }
    let mut send =
        async |text: String,
               code: &str,
               lines: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>|
               -> std::result::Result<(), String> {
            write
                .write_all(text.as_bytes())
                .await
                .map_err(|e| format!("smtp: {e}"))?;
            expect(lines, code).await
        };
    expect(&mut lines, "220").await?;
    send("EHLO pdm\r\n".into(), "250", &mut lines).await?;
    send(format!("MAIL FROM:<{from}>\r\n"), "250", &mut lines).await?;
    send(format!("RCPT TO:<{to}>\r\n"), "250", &mut lines).await?;
    send("DATA\r\n".into(), "354", &mut lines).await?;
    // Dot-stuffing: a line starting with "." gets another.
    let body: String = body
        .lines()
        .map(|l| {
            if l.starts_with('.') {
                format!(".{l}\r\n")
            } else {
                format!("{l}\r\n")
            }
        })
        .collect();
    let message = format!("From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\r\n{body}.\r\n");
    send(message, "250", &mut lines).await?;
    send("QUIT\r\n".into(), "221", &mut lines).await?;
    Ok(())
}
