//! Messages to subjects: the CCPA confirmation of receipt, the deletion confirmation of the
//! account deletion steps ("You will receive an email confirming the deletion"), sent to a
//! file by default or through an SMTP relay; a sent message forgets its recipient.

mod support;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use pdm_proto::{
    common::v1::Region,
    rights::v1::{self as pb, Regime, RequestKind, Status},
};
use pdm_testkit::{Mesh, fake::Person};
use support::{
    builder, count, eventually, mesh, password, person_with_data, sent_message, submit, wait_closed,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

fn request(
    kind: RequestKind,
    regime: Regime,
    subject: &str,
    person: &Person,
) -> pb::SubmitRequestRequest {
    pb::SubmitRequestRequest {
        kind: kind as i32,
        regime: regime as i32,
        subject_id: subject.to_owned(),
        credential: password(person),
        ..Default::default()
    }
}

fn californian() -> Person {
    Person {
        region: Region::UsCa,
        ..Person::new()
    }
}

/// Outbox rows of a request: (all, sent, without a recipient).
async fn outbox_rows(mesh: &Mesh, request_id: &str) -> anyhow::Result<(u64, u64, u64)> {
    let db = mesh.connect_db("rights").await?;
    let all = count(
        &db,
        "SELECT COUNT(*) AS n FROM outbox WHERE request_id = ?",
        &[request_id],
    )
    .await?;
    let sent = count(
        &db,
        "SELECT COUNT(*) AS n FROM outbox WHERE request_id = ? AND status = 'sent'",
        &[request_id],
    )
    .await?;
    let forgotten = count(
        &db,
        "SELECT COUNT(*) AS n FROM outbox WHERE request_id = ? AND recipient IS NULL",
        &[request_id],
    )
    .await?;
    Ok((all, sent, forgotten))
}

#[tokio::test]
async fn ccpa_requests_confirm_receipt_and_erasure_confirms_the_deletion() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    let mesh = mesh(&outbox).await?;
    let ccpa_person = californian();
    let ccpa_subject = mesh.sign_up(&ccpa_person).await?;
    let (person, subject) = person_with_data(&mesh).await?;

    let know = submit(
        &mesh,
        request(
            RequestKind::CcpaKnow,
            Regime::Ccpa,
            &ccpa_subject,
            &ccpa_person,
        ),
    )
    .await?;
    let received = sent_message(&outbox, &[&know.request_id, "(received)"]).await?;
    assert_eq!(received["to"], ccpa_person.email.as_str());
    let body = received["body"].as_str().unwrap_or_default();
    let due = know
        .due_at
        .as_ref()
        .and_then(pdm_runtime::convert::from_timestamp)
        .expect("due")
        .format("%Y-%m-%d")
        .to_string();
    assert!(
        body.contains("We received your request") && body.contains(&due),
        "{body}"
    );
    assert_eq!(
        wait_closed(&mesh, &know.request_id).await?.status,
        Status::Completed as i32
    );
    let ready = sent_message(&outbox, &[&know.request_id, "(completed)"]).await?;
    assert_eq!(ready["to"], ccpa_person.email.as_str());
    assert!(
        ready["body"]
            .as_str()
            .is_some_and(|b| b.contains("ready to download")),
        "{ready}"
    );

    let erasure = submit(
        &mesh,
        request(RequestKind::Erasure, Regime::Gdpr, &subject, &person),
    )
    .await?;
    assert_eq!(
        wait_closed(&mesh, &erasure.request_id).await?.status,
        Status::Completed as i32
    );
    // The address was learned before the account went: the confirmation still reaches it.
    let confirmation = sent_message(&outbox, &[&erasure.request_id, "(completed)"]).await?;
    assert_eq!(confirmation["to"], person.email.as_str());
    let body = confirmation["body"].as_str().unwrap_or_default();
    assert!(body.contains("have been deleted"), "{body}");
    assert!(
        body.contains("Kept by law") && body.contains("consent.proof"),
        "what is kept, and why: {body}"
    );
    // Only CCPA requests are confirmed on receipt.
    let sent = std::fs::read_to_string(&outbox)?;
    assert!(
        !sent
            .lines()
            .any(|l| l.contains(&erasure.request_id) && l.contains("(received)")),
        "{sent}"
    );
    for id in [&know.request_id, &erasure.request_id] {
        let (all, sent, forgotten) = outbox_rows(&mesh, id).await?;
        assert!(all > 0);
        assert_eq!(
            (sent, forgotten),
            (all, all),
            "sent messages forget the address"
        );
    }
    mesh.logs().assert_clean(&person.secrets());
    mesh.logs().assert_clean(&ccpa_person.secrets());
    Ok(())
}

/// A message as the relay received it.
#[derive(Debug, Clone, Default)]
struct Mail {
    from: String,
    to: Vec<String>,
    data: String,
}

/// A relay that speaks just enough SMTP, and can be told to refuse mail for a while.
#[derive(Debug, Clone, Default)]
struct Relay {
    delivered: Arc<Mutex<Vec<Mail>>>,
    refusing: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
}

impl Relay {
    /// Listens on an ephemeral port; returns `host:port`.
    async fn start(&self) -> anyhow::Result<String> {
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

    fn delivered(&self) -> Vec<Mail> {
        self.delivered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for a delivered message whose data contains every one of `needles`.
    async fn wait_for(&self, needles: &[&str]) -> anyhow::Result<Mail> {
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

#[tokio::test]
async fn messages_go_through_the_smtp_relay_and_the_outbox_forgets_the_recipient()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    let relay = Relay::default();
    let addr = relay.start().await?;
    let mesh = builder(&outbox)
        .setting("rights.smtp_relay", &addr)
        .setting("rights.mail_from", "privacy@example.com")
        .start()
        .await?;
    let person = californian();
    let subject = mesh.sign_up(&person).await?;

    let deletion = submit(
        &mesh,
        request(RequestKind::CcpaDelete, Regime::Ccpa, &subject, &person),
    )
    .await?;
    assert_eq!(
        wait_closed(&mesh, &deletion.request_id).await?.status,
        Status::Completed as i32
    );
    let received = relay
        .wait_for(&[
            &deletion.request_id,
            "Subject: Your privacy request (received)",
        ])
        .await?;
    assert_eq!(received.to, [person.email.as_str()]);
    assert_eq!(received.from, "<privacy@example.com>");
    assert!(
        received.data.contains(&format!("To: <{}>", person.email))
            && received.data.contains("We received your request"),
        "{received:?}"
    );
    let confirmation = relay
        .wait_for(&[
            &deletion.request_id,
            "Subject: Your privacy request (completed)",
        ])
        .await?;
    assert_eq!(confirmation.to, [person.email.as_str()]);
    assert!(
        confirmation.data.contains("have been deleted"),
        "{confirmation:?}"
    );
    let (all, sent, forgotten) =
        eventually("outbox rows sent", Duration::from_secs(10), || async {
            let rows = outbox_rows(&mesh, &deletion.request_id).await?;
            Ok((rows.1 == 2).then_some(rows))
        })
        .await?;
    assert_eq!((all, sent, forgotten), (2, 2, 2));
    assert!(!outbox.exists(), "SMTP replaces the file");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn a_message_the_relay_refuses_keeps_its_recipient_until_it_is_sent() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::default();
    relay.refusing.store(true, Ordering::SeqCst);
    let addr = relay.start().await?;
    let mesh = builder(&dir.path().join("outbox.jsonl"))
        .setting("rights.smtp_relay", &addr)
        .start()
        .await?;
    let person = californian();
    let subject = mesh.sign_up(&person).await?;
    let opt_out = submit(
        &mesh,
        request(RequestKind::CcpaOptOut, Regime::Ccpa, &subject, &person),
    )
    .await?;
    assert_eq!(
        wait_closed(&mesh, &opt_out.request_id).await?.status,
        Status::Completed as i32
    );
    eventually("retries", Duration::from_secs(30), || async {
        Ok((relay.refused.load(Ordering::SeqCst) >= 3).then_some(()))
    })
    .await?;
    let (all, sent, forgotten) = outbox_rows(&mesh, &opt_out.request_id).await?;
    assert_eq!(all, 2, "received and completed");
    assert_eq!(
        (sent, forgotten),
        (0, 0),
        "kept, with the address, until sent"
    );

    relay.refusing.store(false, Ordering::SeqCst);
    let done = relay
        .wait_for(&[&opt_out.request_id, "(completed)", "carried out"])
        .await?;
    assert_eq!(done.to, [person.email.as_str()]);
    eventually("outbox rows sent", Duration::from_secs(10), || async {
        let rows = outbox_rows(&mesh, &opt_out.request_id).await?;
        Ok((rows == (2, 2, 2)).then_some(()))
    })
    .await?;
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
