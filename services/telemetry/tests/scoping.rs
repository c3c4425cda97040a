//! Least privilege per subject. Policy, "Data Security & Protection": "Restricted access"
//! to personal data, and service providers get "only the information they need". A
//! company client may send usage data and crash reports only about the subjects it is
//! linked with in identity (it created the account, the subject signed in through it, or
//! it presented the subject's session to LinkSubject). Data about any other subject is
//! treated as data about a subject that does not exist: events are dropped as of an
//! unknown subject, a crash report is kept naming nobody, and nothing is stored under the
//! subject.

mod support;

use pdm_proto::{
    identity::v1::{AuthenticateRequest, identity_service_client::IdentityServiceClient},
    telemetry::v1::{DropReason, telemetry_service_client::TelemetryServiceClient},
};
use pdm_testkit::{
    Mesh,
    assert::{rows, rows_where},
    start_clock,
};
use pdm_tls::identity::Caller;
use support::{Client, consenting, crash, dropped, events, ingest, mesh, now, report_crash};

fn telemetry_as(mesh: &Mesh, client: &str) -> anyhow::Result<Client> {
    Ok(TelemetryServiceClient::new(mesh.channel_as(
        pdm_telemetry::NAME,
        &Caller::Client(client.to_owned()),
    )?))
}

/// Rows stored about `subject`, and the rows of the per-subject tables overall.
async fn stored(mesh: &Mesh, subject: &str) -> anyhow::Result<Vec<u64>> {
    let db = mesh.connect_db(pdm_telemetry::NAME).await?;
    let keys = mesh.connect_key_store(pdm_telemetry::NAME).await?;
    Ok(vec![
        rows_where(&db, "events", "subject_id", subject).await,
        rows_where(&db, "crashes", "subject_id", subject).await,
        rows_where(&keys, "subject_keys", "subject_id", subject).await,
        rows(&db, "events").await,
        rows(&db, "aggregates").await,
        rows(&keys, "subject_keys").await,
    ])
}

#[tokio::test]
async fn restricted_access_another_clients_data_about_a_subject_is_treated_as_about_nobody()
-> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    // Created by the test kit's client, with analytics consent and data of its own.
    let (_, subject) = consenting(&mesh).await?;
    let at = now(&clock);
    let mine = ingest(&mut mesh.telemetry(), "owner-1", events(&subject, at, 2)).await?;
    assert_eq!(mine.accepted, 2);
    let before = stored(&mesh, &subject).await?;

    let mut stranger = telemetry_as(&mesh, "stranger")?;
    let nobody = uuid::Uuid::now_v7().to_string();
    let for_nobody = ingest(&mut stranger, "stranger-1", events(&nobody, at, 3)).await?;
    let for_subject = ingest(&mut stranger, "stranger-2", events(&subject, at, 3)).await?;
    assert_eq!(for_subject, for_nobody);
    assert_eq!(for_subject.accepted, 0);
    assert_eq!(dropped(&for_subject, DropReason::UnknownSubject), 3);

    // A crash report naming the subject gets the same answer shape and is kept untied.
    let crash_nobody =
        report_crash(&mut stranger, crash(&nobody, at, "boom", "at main.rs:1")).await?;
    let crash_subject =
        report_crash(&mut stranger, crash(&subject, at, "boom", "at main.rs:1")).await?;
    assert_eq!(crash_subject.scrubbed, crash_nobody.scrubbed);
    assert!(!crash_subject.crash_id.is_empty());

    // Nothing was stored under the subject: no event, crash or key; no aggregate moved.
    assert_eq!(stored(&mesh, &subject).await?, before);
    let db = mesh.connect_db(pdm_telemetry::NAME).await?;
    let keys = mesh.connect_key_store(pdm_telemetry::NAME).await?;
    assert_eq!(rows_where(&db, "crashes", "subject_id", &nobody).await, 0);
    assert_eq!(
        rows_where(&keys, "subject_keys", "subject_id", &nobody).await,
        0
    );
    Ok(())
}

#[tokio::test]
async fn restricted_access_a_client_the_subject_signed_in_through_gets_the_normal_answers()
-> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (person, subject) = consenting(&mesh).await?;
    let (_, other) = consenting(&mesh).await?;
    IdentityServiceClient::new(
        mesh.channel_as(pdm_identity::NAME, &Caller::Client("shop".into()))?,
    )
    .authenticate(AuthenticateRequest {
        email: person.email.clone(),
        password: person.password.clone(),
    })
    .await?;
    let mut shop = telemetry_as(&mesh, "shop")?;
    let at = now(&clock);

    // One batch naming both: the linked subject's events count, the other's are dropped
    // as of an unknown subject.
    let mut batch = events(&subject, at, 3);
    batch.extend(events(&other, at, 2));
    let r = ingest(&mut shop, "shop-1", batch).await?;
    assert_eq!(r.accepted, 3);
    assert_eq!(dropped(&r, DropReason::UnknownSubject), 2);

    report_crash(&mut shop, crash(&subject, at, "boom", "at main.rs:1")).await?;
    let db = mesh.connect_db(pdm_telemetry::NAME).await?;
    assert_eq!(rows_where(&db, "events", "subject_id", &subject).await, 3);
    assert_eq!(rows_where(&db, "events", "subject_id", &other).await, 0);
    assert_eq!(rows_where(&db, "crashes", "subject_id", &subject).await, 1);
    Ok(())
}
