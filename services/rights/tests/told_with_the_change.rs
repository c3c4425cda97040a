//! A request's changes are stored together with what goes with them, or not at all: a
//! request is received with the confirmation owed to its subject (CCPA: receipt confirmed
//! within 10 business days) and verified with it; it completes with the message owed to
//! the subject and its contact address forgotten (Account deletion, step 5: "You will
//! receive an email confirming the deletion"); it is cancelled with its tasks still to
//! run.

mod support;

use chrono::{Duration, DurationRound as _, Utc};
use pdm_rights::{
    outbox::Outbox,
    sealed::{self, Details},
    store::{
        KeyOf, MessageStatus, RequestStatus, Store, TaskStatus, Told,
        entities::{outbox, request, task},
    },
};

const CONTACT: &str = "someone@example.org";

/// The rights service's store with its worker stopped, so only the test changes it (the
/// directory and the mesh live as long as they are held).
async fn store_alone() -> anyhow::Result<(tempfile::TempDir, pdm_testkit::Mesh, Store)> {
    let dir = tempfile::tempdir()?;
    let mut mesh = support::mesh(&dir.path().join("outbox.jsonl")).await?;
    mesh.stop("rights").await?;
    let store = Store::connect(mesh.settings()).await?;
    Ok((dir, mesh, store))
}

fn open_request(id: &str, details: Vec<u8>, now: chrono::DateTime<Utc>) -> request::Model {
    support::request_row(id, "ACCESS", details, now)
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
    let (_dir, _mesh, store) = store_alone().await?;
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
        .insert_request(
            open_request(id, details.clone(), now),
            Vec::new(),
            None,
            None,
        )
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

fn task(
    request_id: &str,
    service: &str,
    status: TaskStatus,
    now: chrono::DateTime<Utc>,
) -> task::Model {
    support::task_row(request_id, service, "export", status, now)
}

/// Each task of the request as (service, status, error).
async fn tasks(
    store: &Store,
    id: &str,
) -> anyhow::Result<Vec<(String, TaskStatus, Option<String>)>> {
    let mut tasks: Vec<_> = store
        .tasks_of(id)
        .await?
        .into_iter()
        .map(|t| (t.service, t.status, t.last_error))
        .collect();
    tasks.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(tasks)
}

#[tokio::test]
async fn a_request_is_cancelled_with_its_tasks_still_to_run_and_a_closed_one_not_at_all()
-> anyhow::Result<()> {
    let (_dir, _mesh, store) = store_alone().await?;
    let now = Utc::now().duration_trunc(Duration::microseconds(1))?;
    let open = |id: &str| {
        (
            open_request(id, Vec::new(), now),
            vec![
                task(id, "consent", TaskStatus::Pending, now),
                task(id, "identity", TaskStatus::Running, now),
                task(id, "telemetry", TaskStatus::Failed, now),
            ],
        )
    };

    let (row, to_run) = open("cancelled-1");
    store.insert_request(row, to_run, None, None).await?;
    assert!(
        store
            .cancel("cancelled-1", "asked by the subject", now)
            .await?
    );
    let cancelled = store.request("cancelled-1").await?.expect("there");
    assert_eq!(cancelled.status, RequestStatus::Cancelled);
    assert_eq!(
        cancelled.outcome_reason.as_deref(),
        Some("asked by the subject")
    );
    assert_eq!(cancelled.closed_at, Some(now));
    let cancelled_task = |service: &str| {
        (
            service.to_owned(),
            TaskStatus::Rejected,
            Some("cancelled".to_owned()),
        )
    };
    assert_eq!(
        tasks(&store, "cancelled-1").await?,
        [
            cancelled_task("consent"),
            // A task running now ends on its own; the closed request ignores its end.
            ("identity".to_owned(), TaskStatus::Running, None),
            cancelled_task("telemetry"),
        ]
    );
    // Nothing is left for the worker to close as if its tasks had run.
    assert!(
        !store
            .finished_but_open()
            .await?
            .contains(&"cancelled-1".to_owned())
    );
    assert!(!store.cancel("cancelled-1", "again", now).await?);

    // Closed before the cancel arrived: nothing of it is stored.
    let (row, to_run) = open("completed-1");
    store.insert_request(row, to_run, None, None).await?;
    assert!(
        store
            .complete("completed-1", None, Told::default(), now)
            .await?
    );
    assert!(!store.cancel("completed-1", "too late", now).await?);
    let completed = store.request("completed-1").await?.expect("there");
    assert_eq!(
        (completed.status, completed.outcome_reason),
        (RequestStatus::Completed, None)
    );
    assert_eq!(
        tasks(&store, "completed-1").await?,
        [
            ("consent".to_owned(), TaskStatus::Pending, None),
            ("identity".to_owned(), TaskStatus::Running, None),
            ("telemetry".to_owned(), TaskStatus::Failed, None),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_request_is_received_and_verified_with_its_receipt_or_not_at_all() -> anyhow::Result<()> {
    let (_dir, _mesh, store) = store_alone().await?;
    let now = Utc::now().duration_trunc(Duration::microseconds(1))?;
    let receipt = |message_id: &str, request_id: &str| outbox::Model {
        topic: "received".into(),
        ..message(message_id, request_id, now)
    };
    store
        .enqueue(message("taken", "another-request", now))
        .await?;

    // Received: the receipt cannot be stored, so neither is the request.
    let tasks = || vec![task("received-1", "consent", TaskStatus::Pending, now)];
    let row = open_request("received-1", Vec::new(), now);
    let stored = store
        .insert_request(
            row.clone(),
            tasks(),
            None,
            Some(receipt("taken", "received-1")),
        )
        .await;
    assert!(stored.is_err());
    assert!(store.request("received-1").await?.is_none());
    assert!(store.tasks_of("received-1").await?.is_empty());
    store
        .insert_request(row, tasks(), None, Some(receipt("receipt-1", "received-1")))
        .await?;
    assert!(store.request("received-1").await?.is_some());
    let topics: Vec<(String, String)> = store
        .messages_of("received-1")
        .await?
        .into_iter()
        .map(|m| (m.message_id, m.topic))
        .collect();
    assert_eq!(topics, [("receipt-1".to_owned(), "received".to_owned())]);

    // Verified later: the same, and only once.
    let waiting = request::Model {
        status: RequestStatus::VerificationRequired,
        verified_at: None,
        ..open_request("waiting-1", Vec::new(), now)
    };
    store
        .insert_request(waiting, Vec::new(), None, None)
        .await?;
    let subject = pdm_runtime::SubjectId::new_v7();
    let verify = |message_id: &str| {
        store.verify(
            "waiting-1",
            &subject,
            b"details".to_vec(),
            vec![task("waiting-1", "consent", TaskStatus::Pending, now)],
            Some(receipt(message_id, "waiting-1")),
            now,
        )
    };
    assert!(verify("taken").await.is_err());
    let still = store.request("waiting-1").await?.expect("there");
    assert_eq!(
        (still.status, still.subject_id),
        (RequestStatus::VerificationRequired, None)
    );
    assert!(store.tasks_of("waiting-1").await?.is_empty());
    assert!(store.messages_of("waiting-1").await?.is_empty());

    assert!(verify("receipt-2").await?);
    let verified = store.request("waiting-1").await?.expect("there");
    assert_eq!(verified.status, RequestStatus::InProgress);
    assert_eq!(verified.subject_id, Some(subject.to_string()));
    assert_eq!(store.tasks_of("waiting-1").await?.len(), 1);
    assert!(!verify("receipt-3").await?, "verified once");
    let ids: Vec<String> = store
        .messages_of("waiting-1")
        .await?
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(ids, ["receipt-2"]);
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

/// A request is stored with its subject's address or not at all: the address comes from
/// identity at submission, and a request stored without it because identity did not
/// answer (killed, restarting) closed with its subject never told (Account deletion, step
/// 5: "You will receive an email confirming the deletion"; found by the churn soak).
/// Identity away, SubmitRequest answers UNAVAILABLE and stores nothing; back, the same
/// submission is stored and its subject told.
#[tokio::test]
async fn a_request_is_not_stored_without_the_address_identity_could_not_give() -> anyhow::Result<()>
{
    use pdm_proto::rights::v1::{self as pb, RequestKind, Status};
    let dir = tempfile::tempdir()?;
    let outbox_file = dir.path().join("outbox.jsonl");
    let mut mesh = support::mesh(&outbox_file).await?;
    let (_person, subject) = support::person_with_data(&mesh).await?;
    let erasure = || pb::SubmitRequestRequest {
        kind: RequestKind::Erasure as i32,
        regime: pb::Regime::Gdpr as i32,
        subject_id: subject.clone(),
        credential: support::operator("identity documents checked"),
        client_reference: "told-1".into(),
        ..Default::default()
    };
    let team = pdm_tls::identity::Caller::Admin;

    mesh.stop("identity").await?;
    let refused = support::submit_as(&mesh, &team, erasure())
        .await
        .expect_err("identity does not answer");
    let status = refused
        .downcast_ref::<tonic::Status>()
        .expect("a gRPC status");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let db = mesh.connect_db("rights").await?;
    assert_eq!(
        pdm_testkit::assert::rows(&db, "requests").await,
        0,
        "nothing is stored without the address"
    );

    mesh.restart("identity").await?;
    let stored = support::submit_as(&mesh, &team, erasure()).await?;
    let done = support::wait_closed_as(&mesh, &team, &stored.request_id).await?;
    assert_eq!(done.status, Status::Completed as i32);
    let told = done
        .messages
        .iter()
        .filter(|m| m.topic == "completed")
        .count();
    assert_eq!(told, 1, "the subject is told once: {:?}", done.messages);
    Ok(())
}
