//! An SMTP relay that speaks just enough SMTP for the outbox, on an ephemeral port.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

use super::eventually;

/// A message as the relay received it.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// MAIL FROM.
    pub from: String,
    /// RCPT TO.
    pub to: Vec<String>,
    /// DATA.
    pub data: String,
}

/// A relay that speaks just enough SMTP, and can be told to refuse mail for a while.
#[derive(Debug, Clone, Default)]
pub struct Relay {
    delivered: Arc<Mutex<Vec<Mail>>>,
    /// Refuse mail while set.
    pub refusing: Arc<AtomicBool>,
    /// Mail refused so far.
    pub refused: Arc<AtomicUsize>,
}

impl Relay {
    /// Listens on an ephemeral port; returns `host:port`.
    pub async fn start(&self) -> anyhow::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let relay = self.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let relay = relay.clone();
                tokio::spawn(async move {
                    let _ = relay.session(stream).await;
                });
            }
        });
        Ok(addr)
    }

    async fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 relay.test ESMTP\r\n").await?;
        let mut mail = Mail::default();
        let mut in_data = false;
        while let Some(line) = lines.next_line().await? {
            if in_data {
                if line == "." {
                    in_data = false;
                    self.delivered
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(std::mem::take(&mut mail));
                    write.write_all(b"250 2.0.0 queued\r\n").await?;
                } else {
                    // Dot-stuffing undone.
                    let text = if line.starts_with("..") {
                        &line[1..]
                    } else {
                        line.as_str()
                    };
                    mail.data.push_str(text);
                    mail.data.push('\n');
                }
                continue;
            }
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                b"250-relay.test\r\n250 8BITMIME\r\n"
            } else if let Some(from) = upper.strip_prefix("MAIL FROM:") {
                if self.refusing.load(Ordering::SeqCst) {
                    self.refused.fetch_add(1, Ordering::SeqCst);
                    b"451 4.3.0 try again later\r\n"
                } else {
                    mail.from = line[line.len() - from.len()..].trim().to_owned();
                    b"250 2.1.0 ok\r\n"
                }
            } else if let Some(to) = upper.strip_prefix("RCPT TO:") {
                mail.to.push(
                    line[line.len() - to.len()..]
                        .trim()
                        .trim_matches(['<', '>'])
                        .to_owned(),
                );
                b"250 2.1.5 ok\r\n"
            } else if upper == "DATA" {
                in_data = true;
                b"354 end data with <CR><LF>.<CR><LF>\r\n"
            } else if upper == "QUIT" {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            } else {
                b"502 5.5.2 command not recognised\r\n"
            };
            write.write_all(reply).await?;
        }
        Ok(())
    }

    pub fn delivered(&self) -> Vec<Mail> {
        self.delivered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for a delivered message whose data contains every one of `needles`.
    pub async fn wait_for(&self, needles: &[&str]) -> anyhow::Result<Mail> {
        eventually(
            "a message at the relay",
            Duration::from_secs(30),
            || async {
                Ok(self
                    .delivered()
                    .into_iter()
                    .find(|m| needles.iter().all(|n| m.data.contains(n))))
            },
        )
        .await
    }
}
