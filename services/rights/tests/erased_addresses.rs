//! The outbox never keeps an erased subject's address. The policy, account deletion step 5:
//! "After confirming, your account and all associated data will be permanently deleted.
//! You will receive an email confirming the deletion."; and on retention: "We only ever
//! retain personal data for as long as is necessary". So: no address in clear in the
//! mailbox file or any table once a message is sent, the mailbox's keys of an erased
//! subject's messages destroyed, their waiting messages dropped, and only the confirmation
//! still sent. Every search is over raw bytes: the file, the SQLite files or a dump of
//! every PostgreSQL table.

mod support;

use std::{path::Path, sync::atomic::Ordering, time::Duration};

use pdm_proto::rights::v1::{Regime, RequestKind, Status};
use pdm_testkit::{
    Mesh,
    assert::{contains, raw_storage},
};
use support::{
    builder_with_relay, californian, count, eventually, mailbox, mesh, person_with_data,
    relay::Relay, request, sent_message, submit, wait_closed,
};

/// Outbox rows of the subject's requests that still hold an address or a mailbox key.
async fn rows_holding_an_address(mesh: &Mesh, subject: &str) -> anyhow::Result<u64> {
    count(
        &mesh.connect_db("rights").await?,
        "SELECT COUNT(*) AS n FROM outbox o JOIN requests r ON r.request_id = o.request_id \
         WHERE r.subject_id = ? AND (o.recipient IS NOT NULL OR o.file_key IS NOT NULL)",
        &[subject],
    )
    .await
}

/// Fails if `email` is in the mailbox file or in the raw storage of `services`.
async fn assert_nowhere(mesh: &Mesh, outbox: &Path, email: &str, services: &[&str]) {
    let file = std::fs::read(outbox).unwrap_or_default();
    assert!(
        !contains(&file, email),
        "the mailbox file holds an address in clear"
    );
    for service in services {
        assert!(
            !contains(&raw_storage(mesh, service).await, email),
            "{service}'s storage holds an address in clear"
        );
    }
}

/// Messages of `requests` in the mailbox, opened where they still can be.
async fn messages_of(
    mesh: &Mesh,
    outbox: &Path,
    requests: &[&str],
) -> anyhow::Result<Vec<serde_json::Value>> {
    Ok(mailbox(mesh, outbox)
        .await?
        .into_iter()
        .filter(|m| requests.iter().any(|r| m["request_id"] == *r))
        .collect())
}

#[tokio::test]
async fn policy_all_associated_data_permanently_deleted_so_the_mailbox_file_keeps_no_erased_address()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    let mesh = mesh(&outbox).await?;
    let (leaving, staying) = (californian(), californian());
    let leaving_id = mesh.sign_up(&leaving).await?;
    let staying_id = mesh.sign_up(&staying).await?;

    let mut know = Vec::new();
    for (person, subject) in [(&leaving, &leaving_id), (&staying, &staying_id)] {
        let r = submit(
            &mesh,
            request(RequestKind::CcpaKnow, Regime::Ccpa, subject, person),
        )
        .await?;
        assert_eq!(
            wait_closed(&mesh, &r.request_id).await?.status,
            Status::Completed as i32
        );
        // Readable through the mailbox reader while the subject exists...
        for topic in ["(received)", "(completed)"] {
            let m = sent_message(&mesh, &outbox, &[&r.request_id, topic]).await?;
            assert_eq!(m["to"], person.email.as_str());
        }
        know.push(r.request_id);
    }
    // ...but once sent, no address in clear in the file or any table, and the rows keep
    // only the mailbox key.
    for person in [&leaving, &staying] {
        assert_nowhere(&mesh, &outbox, &person.email, &["rights"]).await;
    }
    let db = mesh.connect_db("rights").await?;
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) AS n FROM outbox WHERE recipient IS NOT NULL",
            &[]
        )
        .await?,
        0,
        "sent messages forget the recipient"
    );

    let deletion = submit(
        &mesh,
        request(RequestKind::CcpaDelete, Regime::Ccpa, &leaving_id, &leaving),
    )
    .await?;
    assert_eq!(
        wait_closed(&mesh, &deletion.request_id).await?.status,
        Status::Completed as i32
    );
    // The confirmation was written, and is unreadable like every other message to them.
    sent_message(
        &mesh,
        &outbox,
        &[&deletion.request_id, r#""topic":"completed""#],
    )
    .await?;
    let theirs = [know[0].as_str(), deletion.request_id.as_str()];
    let shredded = eventually("messages shredded", Duration::from_secs(10), || async {
        let ms = messages_of(&mesh, &outbox, &theirs).await?;
        Ok(ms.iter().all(|m| m["to"].is_null()).then_some(ms))
    })
    .await?;
    assert!(
        shredded.len() >= 4,
        "received and completed, twice: {shredded:?}"
    );
    assert!(shredded.iter().all(|m| m["body"].is_null()), "{shredded:?}");
    assert_eq!(rows_holding_an_address(&mesh, &leaving_id).await?, 0);
    assert_nowhere(&mesh, &outbox, &leaving.email, &["rights", "identity"]).await;
    // Another subject's messages stay readable.
    let kept = messages_of(&mesh, &outbox, &[know[1].as_str()]).await?;
    assert_eq!(kept.len(), 2);
    assert!(
        kept.iter().all(|m| m["to"] == staying.email.as_str()),
        "{kept:?}"
    );

    mesh.logs().assert_clean(&leaving.secrets());
    mesh.logs().assert_clean(&staying.secrets());
    Ok(())
}

#[tokio::test]
async fn policy_you_will_receive_an_email_confirming_the_deletion_and_then_no_address_is_kept()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    let relay = Relay::default();
    relay.refusing.store(true, Ordering::SeqCst);
    let addr = relay.start().await?;
    let mesh = builder_with_relay(&outbox, &addr).start().await?;
    let (person, subject) = person_with_data(&mesh).await?;

    // A message still waiting (the relay refuses it) when the subject is erased...
    let access = submit(
        &mesh,
        request(RequestKind::Access, Regime::Gdpr, &subject, &person),
    )
    .await?;
    assert_eq!(
        wait_closed(&mesh, &access.request_id).await?.status,
        Status::Completed as i32
    );
    eventually("a refused attempt", Duration::from_secs(30), || async {
        Ok((relay.refused.load(Ordering::SeqCst) >= 1).then_some(()))
    })
    .await?;
    let erasure = submit(
        &mesh,
        request(RequestKind::Erasure, Regime::Gdpr, &subject, &person),
    )
    .await?;
    assert_eq!(
        wait_closed(&mesh, &erasure.request_id).await?.status,
        Status::Completed as i32
    );
    // ...is dropped with its address.
    let db = mesh.connect_db("rights").await?;
    eventually(
        "the waiting message dropped",
        Duration::from_secs(10),
        || async {
            let dropped = count(
                &db,
                "SELECT COUNT(*) AS n FROM outbox WHERE request_id = ? AND status = 'dropped' \
             AND recipient IS NULL",
                &[&access.request_id],
            )
            .await?;
            Ok((dropped == 1).then_some(()))
        },
    )
    .await?;

    // The confirmation still goes out, saying what is kept and why.
    relay.refusing.store(false, Ordering::SeqCst);
    let confirmation = relay
        .wait_for(&[&erasure.request_id, "(completed)"])
        .await?;
    assert_eq!(confirmation.to, [person.email.as_str()]);
    assert!(
        confirmation.data.contains("have been deleted")
            && confirmation.data.contains("Kept by law")
            && confirmation.data.contains("consent.proof"),
        "{confirmation:?}"
    );
    eventually(
        "the confirmation recorded as sent",
        Duration::from_secs(10),
        || async {
            let sent = count(
                &db,
                "SELECT COUNT(*) AS n FROM outbox WHERE request_id = ? AND status = 'sent'",
                &[&erasure.request_id],
            )
            .await?;
            Ok((sent == 1).then_some(()))
        },
    )
    .await?;
    assert!(
        relay
            .delivered()
            .iter()
            .all(|m| !m.data.contains(&access.request_id)),
        "a message to an erased subject went out after the erasure"
    );
    assert_eq!(rows_holding_an_address(&mesh, &subject).await?, 0);
    assert_nowhere(&mesh, &outbox, &person.email, &["rights", "identity"]).await;
    assert!(!outbox.exists(), "SMTP replaces the file");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
