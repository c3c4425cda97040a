//! Closing a request stores what it tells with it: the request completes together with
//! the message owed to the subject and with its contact address forgotten, or nothing of
//! the three is stored (Account deletion, step 5: "You will receive an email confirming
//! the deletion").

mod support;

use chrono::{Duration, DurationRound as _, Utc};
use pdm_rights::{
    outbox::Outbox,
    sealed::{self, Details},
    store::{
        KeyOf, MessageStatus, RequestStatus, Store, Told,
        entities::{outbox, request},
    },
};

const CONTACT: &str = "someone@example.org";

fn open_request(id: &str, details: Vec<u8>, now: chrono::DateTime<Utc>) -> request::Model {
    request::Model {
        request_id: id.to_owned(),
        client_reference: None,
        kind: "ACCESS".into(),
        regime: "GDPR".into(),
        subject_id: None,
        status: RequestStatus::InProgress,
        priority: 0,
        received_at: now,
        verified_at: Some(now),
        due_at: now + Duration::days(30),
        original_due_at: now + Duration::days(30),
        extension_reason: None,
        confirm_by: None,
        closed_at: None,
        outcome_reason: None,
        wrapped_key: Vec::new(),
        details,
        trace_parent: None,
        package_expires_at: None,
        updated_at: now,
        deletion_reason: None,
        subject_ref: None,
        forgotten_at: None,
    }
}

fn message(id: &str, request_id: &str, now: chrono::DateTime<Utc>) -> outbox::Model {
    outbox::Model {
        message_id: id.to_owned(),
        request_id: request_id.to_owned(),
        topic: "completed".into(),
        recipient: None,
        body: b"sealed body".to_vec(),
        status: MessageStatus::Pending,
        attempts: 0,
        created_at: now,
        sent_at: None,
        file_key: None,
        next_attempt_at: None,
        last_error: None,
        notice_id: None,
    }
}

#[tokio::test]
async fn a_request_completes_with_its_message_and_without_its_address_or_not_at_all()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut mesh = support::mesh(&dir.path().join("outbox.jsonl")).await?;
    // Only this test closes the request.
    mesh.stop("rights").await?;
    let store = Store::connect(mesh.settings()).await?;
    let now = Utc::now().duration_trunc(Duration::microseconds(1))?;
    let id = "closing-1";
    let key = store.new_key(KeyOf::Request(id), now).await?;
    let details = sealed::seal_details(
        &key,
        &Details {
            contact_email: Some(CONTACT.into()),
            notes: Some("kept".into()),
            ..Details::default()
        },
    )?;
    store
        .insert_request(open_request(id, details.clone(), now), Vec::new(), None)
        .await?;
    let row = store.request(id).await?.expect("stored");
    let told = |message_id: &str| -> anyhow::Result<Told> {
        Ok(Told {
            message: Some(message(message_id, id, now)),
            forgotten: Outbox::without_contact(&key, &row)?,
        })
    };
    let expires = now + Duration::days(7);

    // The message cannot be stored (its id is taken): the close is not stored either,
    // and the address the message needs is still there for the next attempt.
    store
        .enqueue(message("taken", "another-request", now))
        .await?;
    assert!(
        store
            .complete(id, Some(expires), told("taken")?, now)
            .await
            .is_err()
    );
    let after = store.request(id).await?.expect("still there");
    assert_eq!(after.status, RequestStatus::InProgress);
    assert_eq!((after.closed_at, after.package_expires_at), (None, None));
    assert_eq!(
        sealed::open_details(&key, &after.details)?
            .contact_email
            .as_deref(),
        Some(CONTACT)
    );
    assert!(store.messages_of(id).await?.is_empty());

    // Stored: all three at once.
    assert!(
        store
            .complete(id, Some(expires), told("first")?, now)
            .await?
    );
    let closed = store.request(id).await?.expect("still there");
    assert_eq!(closed.status, RequestStatus::Completed);
    assert_eq!(closed.closed_at, Some(now));
    assert_eq!(closed.package_expires_at, Some(expires));
    let kept = sealed::open_details(&key, &closed.details)?;
    assert_eq!(kept.contact_email, None, "the address is forgotten");
    assert_eq!(kept.notes.as_deref(), Some("kept"), "the rest is kept");
    let queued: Vec<String> = store
        .messages_of(id)
        .await?
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(queued, ["first"]);

    // Closed already: a second close stores nothing, so the subject is told once.
    assert!(
        !store
            .complete(id, Some(expires), told("second")?, now)
            .await?
    );
    assert_eq!(store.messages_of(id).await?.len(), 1);
    assert_eq!(
        store.request(id).await?.expect("there").details,
        closed.details
    );
    Ok(())
}

#[test]
fn details_without_an_address_are_left_as_they_are() -> anyhow::Result<()> {
    let (key, _) = pdm_crypto::Keyring::new(&[7; 32]).generate("subject")?;
    let now = Utc::now();
    let details = sealed::seal_details(&key, &Details::default())?;
    assert_eq!(
        Outbox::without_contact(&key, &open_request("r", details, now))?,
        None
    );
    Ok(())
}
