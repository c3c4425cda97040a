//! Messages to subjects: the CCPA confirmation of receipt, the deletion confirmation of the
//! account deletion steps ("You will receive an email confirming the deletion"), sent to the
//! mailbox file by default or through an SMTP relay; a sent message forgets its recipient.

mod support;

use std::{sync::atomic::Ordering, time::Duration};

use pdm_proto::rights::v1::{Regime, RequestKind, Status};
use pdm_testkit::Mesh;
use support::{
    builder_with_relay, californian, count, eventually, mesh, person_with_data, relay::Relay,
    request, sent_message, submit, wait_closed,
};

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
    let received = sent_message(&mesh, &outbox, &[&know.request_id, "(received)"]).await?;
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
    let ready = sent_message(&mesh, &outbox, &[&know.request_id, "(completed)"]).await?;
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
    // The address was learned before the account went: the confirmation still goes out,
    // but the subject is erased, so the mailbox keeps it unreadable (its text is checked
    // at an SMTP relay in erased_addresses.rs).
    let confirmation = sent_message(
        &mesh,
        &outbox,
        &[&erasure.request_id, r#""topic":"completed""#],
    )
    .await?;
    assert!(
        confirmation["to"].is_null() && confirmation["body"].is_null(),
        "{confirmation}"
    );
    // Only CCPA requests are confirmed on receipt.
    let sent = std::fs::read_to_string(&outbox)?;
    assert!(
        !sent
            .lines()
            .any(|l| l.contains(&erasure.request_id) && l.contains(r#""topic":"received""#)),
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

#[tokio::test]
async fn messages_go_through_the_smtp_relay_and_the_outbox_forgets_the_recipient()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    let relay = Relay::default();
    let addr = relay.start().await?;
    let mesh = builder_with_relay(&outbox, &addr)
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
    let mesh = builder_with_relay(&dir.path().join("outbox.jsonl"), &addr)
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
