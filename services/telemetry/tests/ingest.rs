//! Ingestion behind the consent gate ("Information we collect automatically", "Consent
//! to be obtained", "Legal Basis for Processing (For UK/EEA/Swiss Users)", "GDPR Data
//! Protection Rights": restriction and objection), and idempotent retries.

mod support;

use pdm_proto::{
    common::v1::{LegalBasis, Region},
    subject::v1::RestrictSubjectRequest,
    telemetry::v1::{self as pb, DropReason},
};
use pdm_testkit::assert::{rows, rows_where};
use pdm_testkit::start_clock;
use sea_orm::{ConnectionTrait, Statement};
use support::{
    consenting, dropped, dropped_total, event, events, export, grant, ingest, mesh, necessary, now,
    object, restrict_in_consent, secrets, sign_up, withdraw,
};
use tonic::Code;

#[tokio::test]
async fn events_need_analytics_consent_and_a_withdrawal_stops_the_next_batch() -> anyhow::Result<()>
{
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (person, subject) = sign_up(&mesh, Region::Eea).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);

    let r = ingest(&mut client, "b1", events(&subject, at, 3)).await?;
    assert_eq!(
        (r.accepted, dropped(&r, DropReason::NoConsent), r.duplicate),
        (0, 3, false),
        "an EEA subject's events need consent to product analytics"
    );

    grant(&mesh, &subject).await?;
    let r = ingest(&mut client, "b2", events(&subject, at, 3)).await?;
    assert_eq!((r.accepted, dropped_total(&r)), (3, 0));

    withdraw(&mesh, &subject).await?;
    let r = ingest(&mut client, "b3", events(&subject, at, 2)).await?;
    assert_eq!(
        (r.accepted, dropped(&r, DropReason::Withdrawn)),
        (0, 2),
        "the batch right after the withdrawal is already refused"
    );

    grant(&mesh, &subject).await?;
    let r = ingest(&mut client, "b4", events(&subject, at, 1)).await?;
    assert_eq!(r.accepted, 1, "consent given again counts at once");

    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(rows_where(&db, "events", "subject_id", &subject).await, 4);
    assert_eq!(rows_where(&db, "events", "batch_id", "b1").await, 0);
    assert_eq!(rows_where(&db, "events", "batch_id", "b3").await, 0);
    mesh.logs().assert_clean(&secrets(&person, &[]));
    Ok(())
}

#[tokio::test]
async fn us_subjects_are_admitted_on_legitimate_interests_until_they_object() -> anyhow::Result<()>
{
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (person, subject) = sign_up(&mesh, Region::Us).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);

    let r = ingest(&mut client, "us-1", events(&subject, at, 2)).await?;
    assert_eq!(
        (r.accepted, dropped_total(&r)),
        (2, 0),
        "outside UK/EEA/CH product analytics rests on legitimate interests: no consent needed"
    );

    object(&mesh, &subject, false).await?;
    let r = ingest(&mut client, "us-2", events(&subject, at, 3)).await?;
    assert_eq!((r.accepted, dropped(&r, DropReason::Objected)), (0, 3));

    object(&mesh, &subject, true).await?;
    let r = ingest(&mut client, "us-3", events(&subject, at, 1)).await?;
    assert_eq!(r.accepted, 1, "a withdrawn objection lets events in again");

    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(rows_where(&db, "events", "subject_id", &subject).await, 3);
    assert_eq!(rows_where(&db, "events", "batch_id", "us-2").await, 0);
    // The access report names the basis the events were collected on.
    let records = export(&mesh, &subject).await?;
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|r| r.legal_basis == LegalBasis::LegitimateInterests as i32),
        "{records:?}"
    );
    mesh.logs().assert_clean(&secrets(&person, &[]));
    Ok(())
}

#[tokio::test]
async fn restricted_subjects_events_are_dropped_whoever_restricted_them() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (person, subject) = consenting(&mesh).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);

    // Restriction recorded in consent (the ledger), seen through the gate.
    restrict_in_consent(&mesh, &subject, true).await?;
    let r = ingest(&mut client, "r-1", events(&subject, at, 2)).await?;
    assert_eq!((r.accepted, dropped(&r, DropReason::Restricted)), (0, 2));
    restrict_in_consent(&mesh, &subject, false).await?;
    let r = ingest(&mut client, "r-2", events(&subject, at, 1)).await?;
    assert_eq!(r.accepted, 1);

    // Restriction through telemetry's own SubjectData contract (the rights service).
    let restricted = mesh
        .subject_data("telemetry")
        .restrict_subject(RestrictSubjectRequest {
            subject_id: subject.clone(),
            restricted: true,
            request_id: "dsr-restrict-1".into(),
        })
        .await?
        .into_inner();
    assert!(restricted.restricted && restricted.subject_known);
    let r = ingest(&mut client, "r-3", events(&subject, at, 2)).await?;
    assert_eq!((r.accepted, dropped(&r, DropReason::Restricted)), (0, 2));
    mesh.subject_data("telemetry")
        .restrict_subject(RestrictSubjectRequest {
            subject_id: subject.clone(),
            restricted: false,
            request_id: "dsr-restrict-2".into(),
        })
        .await?;
    let r = ingest(&mut client, "r-4", events(&subject, at, 1)).await?;
    assert_eq!(r.accepted, 1);

    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(rows_where(&db, "events", "subject_id", &subject).await, 2);
    mesh.logs().assert_clean(&secrets(&person, &[]));
    Ok(())
}

#[tokio::test]
async fn one_batch_is_judged_per_subject_and_counted_per_reason() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (yes_person, yes) = consenting(&mesh).await?;
    let (no_person, no) = sign_up(&mesh, Region::Eea).await?;
    let (gone_person, gone) = consenting(&mesh).await?;
    withdraw(&mesh, &gone).await?;
    let stranger = uuid::Uuid::now_v7().to_string();
    let mut client = mesh.telemetry();
    let at = now(&clock);

    let mut batch = Vec::new();
    batch.extend(events(&yes, at, 3));
    batch.extend(events(&no, at, 2));
    batch.extend(events(&gone, at, 4));
    batch.extend(events(&stranger, at, 1));
    batch.extend(vec![necessary(event("", at)); 5]);
    let r = ingest(&mut client, "mixed", batch).await?;
    assert_eq!(
        r.accepted,
        3 + 5,
        "the consenting subject's and strictly necessary anonymous events"
    );
    assert_eq!(dropped(&r, DropReason::NoConsent), 2);
    assert_eq!(dropped(&r, DropReason::Withdrawn), 4);
    assert_eq!(dropped(&r, DropReason::UnknownSubject), 1);
    assert_eq!(r.dropped.len(), 3, "one count per reason: {:?}", r.dropped);

    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(rows(&db, "events").await, 8);
    assert_eq!(rows_where(&db, "events", "subject_id", &no).await, 0);
    assert_eq!(rows_where(&db, "events", "subject_id", &gone).await, 0);
    assert_eq!(rows_where(&db, "events", "subject_id", &stranger).await, 0);
    for person in [&yes_person, &no_person, &gone_person] {
        mesh.logs().assert_clean(&secrets(person, &[]));
    }
    Ok(())
}

#[tokio::test]
async fn strictly_necessary_anonymous_events_need_no_consent_check() -> anyhow::Result<()> {
    let clock = start_clock();
    let mut mesh = mesh(&clock).await?;
    let (person, subject) = consenting(&mesh).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);

    let r = ingest(&mut client, "anon-1", vec![necessary(event("", at)); 4]).await?;
    assert_eq!((r.accepted, dropped_total(&r)), (4, 0));

    // With consent down, anonymous events still go in; a subject's events cannot be
    // judged, so the batch is refused whole (UNAVAILABLE: retry) and nothing is stored.
    mesh.stop("consent").await?;
    let r = ingest(&mut client, "anon-2", vec![necessary(event("", at)); 2]).await?;
    assert_eq!(r.accepted, 2);
    let mut mixed = vec![necessary(event("", at)); 2];
    mixed.push(event(&subject, at));
    let err = ingest(&mut client, "mixed-1", mixed)
        .await
        .expect_err("consent is down");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");

    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(rows(&db, "events").await, 6);
    assert_eq!(rows_where(&db, "events", "batch_id", "mixed-1").await, 0);
    assert_eq!(
        rows_where(&db, "batches", "batch_id", "mixed-1").await,
        0,
        "a refused batch can be retried"
    );
    mesh.logs().assert_clean(&secrets(&person, &[]));
    Ok(())
}

#[tokio::test]
async fn a_retried_batch_is_stored_once_and_answered_with_the_first_answer() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (person, subject) = consenting(&mesh).await?;
    let (late_person, late) = sign_up(&mesh, Region::Eea).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);

    let first = ingest(&mut client, "retry-1", events(&subject, at, 3)).await?;
    assert_eq!((first.accepted, first.duplicate), (3, false));
    let again = ingest(&mut client, "retry-1", events(&subject, at, 3)).await?;
    assert_eq!(
        again,
        pb::IngestEventsResponse {
            duplicate: true,
            ..first
        }
    );

    // Retries racing each other: one stores, the others hear its answer.
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let mut client = client.clone();
        let batch = events(&subject, at, 10);
        racing.spawn(async move { ingest(&mut client, "retry-2", batch).await });
    }
    let mut fresh = 0;
    while let Some(answer) = racing.join_next().await {
        let answer = answer??;
        assert_eq!(answer.accepted, 10);
        fresh += usize::from(!answer.duplicate);
    }
    assert_eq!(
        fresh, 1,
        "exactly one of the racing retries stored the batch"
    );

    // The first answer stands even when a retry would now be answered differently.
    let refused = ingest(&mut client, "retry-3", events(&late, at, 2)).await?;
    assert_eq!(dropped(&refused, DropReason::NoConsent), 2);
    grant(&mesh, &late).await?;
    let replay = ingest(&mut client, "retry-3", events(&late, at, 2)).await?;
    assert_eq!(
        (replay.accepted, dropped(&replay, DropReason::NoConsent)),
        (0, 2)
    );
    assert!(replay.duplicate);

    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(rows_where(&db, "events", "batch_id", "retry-1").await, 3);
    assert_eq!(rows_where(&db, "events", "batch_id", "retry-2").await, 10);
    assert_eq!(rows_where(&db, "events", "subject_id", &late).await, 0);
    // One person's bucket is never shown: the stored count is read.
    let counted: i64 = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(SUM(count) AS BIGINT) AS n FROM aggregates WHERE dimension = 'FEATURE'",
        ))
        .await?
        .map(|r| r.try_get("", "n"))
        .transpose()?
        .unwrap_or(0);
    assert_eq!(counted, 13, "aggregates count a retried batch once");
    mesh.logs().assert_clean(&secrets(&person, &[]));
    mesh.logs().assert_clean(&secrets(&late_person, &[]));
    Ok(())
}
