//! Messages to subjects, queued in the database with the request (so a crash loses none)
//! and sent by the worker. The default sender appends to a file; with `rights.smtp_relay`
//! set, messages go to that SMTP relay. The recipient is sealed with the request's key
//! and forgotten once the message is sent. Logs name the message, never the address.

use std::{io::Write as _, path::PathBuf, time::Duration};

use chrono::{DateTime, Utc};
use pdm_crypto::Keyring;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

use crate::{
    error::Result,
    sealed::{self, F_BODY, F_RECIPIENT},
    store::{
        Store,
        entities::{outbox, request},
    },
};

/// Where messages go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// Appended as JSON lines to a file (mode 0600).
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
        let key = sealed::key(&self.keyring, &req.request_id, &req.wrapped_key)?;
        let details = sealed::open_details(&key, &req.details)?;
        let Some(email) = details.contact_email else {
            tracing::info!(request_id = %req.request_id, topic, "no contact address: message not queued");
            return Ok(());
        };
        self.store
            .enqueue(outbox::Model {
                message_id: uuid::Uuid::now_v7().to_string(),
                request_id: req.request_id.clone(),
                topic: topic.to_owned(),
                recipient: Some(key.seal_str(F_RECIPIENT, &email)?),
                body: key.seal_str(F_BODY, body)?,
                status: "pending".to_owned(),
                attempts: 0,
                created_at: now,
                sent_at: None,
            })
            .await
    }

    /// Sends what is pending.
    pub async fn send_pending(&self) {
        let Ok(messages) = self.store.pending_messages(50).await else {
            return;
        };
        for m in messages {
            let sent = match self.open(&m).await {
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
            if let Err(e) = self.store.message_sent(&m.message_id, ok, Utc::now()).await {
                tracing::warn!(error = %e, "recording a sent message failed");
            }
        }
    }

    async fn open(&self, m: &outbox::Model) -> Result<Option<(String, String)>> {
        let Some(req) = self.store.request(&m.request_id).await? else {
            return Ok(None);
        };
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
                let line = serde_json::json!({
                    "message_id": m.message_id,
                    "request_id": m.request_id,
                    "to": to,
                    "subject": subject,
                    "body": body,
                })
                .to_string();
                append(path, &line).map_err(|e| format!("outbox file: {e}"))
            }
            Sink::Smtp { relay, from } => smtp_send(relay, from, to, &subject, body).await,
        }
    }
}

fn append(path: &PathBuf, line: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{line}")
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
