//! Who is affected (issue 21): every data service answers `ListSubjectsHeld` from its own
//! data, the subjects it held data of a category for at some instant of a window, ids
//! only, in id order, paged; nobody whose data came after the window or is of another
//! category; bad input a field violation per field.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_incidents::Incidents;
use pdm_proto::{
    common::v1::Region,
    consent::v1::{GrantConsentRequest, Source},
    incidents::v1::{FindAffectedRequest, ListAffectedRequest},
    subject::v1::{ListSubjectsHeldRequest, subject_data_service_client::SubjectDataServiceClient},
    telemetry::v1::{DeviceContext, Event, EventKind, IngestEventsRequest},
    transfers::v1::{self as tpb, PartyRole, RecipientRole, Regime},
};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_telemetry::Telemetry;
use pdm_testkit::{Mesh, TestMesh, assert::field_violations, fake::Person, start_clock};
use pdm_tls::identity::Caller;
use pdm_transfers::Transfers;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

const SERVICES: [&str; 4] = ["identity", "consent", "telemetry", "transfers"];

/// One category each service holds subjects by.
const CATEGORIES: [(&str, &str); 4] = [
    ("identity", "account.profile"),
    ("consent", "consent.record"),
    ("telemetry", "telemetry.event"),
    ("transfers", "transfers.log"),
];

async fn mesh(clock: &Arc<ManualClock>) -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(Identity)
        .with(Consent)
        .with(Telemetry)
        .with(Transfers)
        .with(Incidents)
        .clock(clock.clone())
        .start()
        .await
}

/// A client of `service`'s SubjectData, as the incidents service calls it.
fn client(mesh: &Mesh, service: &str) -> anyhow::Result<SubjectDataServiceClient<Channel>> {
    Ok(SubjectDataServiceClient::new(mesh.channel_as(
        service,
        &Caller::Service("incidents".to_owned()),
    )?))
}

fn request(category: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> ListSubjectsHeldRequest {
    ListSubjectsHeldRequest {
        incident_id: "0190a3c4-2100-7000-8000-000000000021".to_owned(),
        category: category.to_owned(),
        window_start: Some(timestamp(start)),
        window_end: Some(timestamp(end)),
        after_subject_id: String::new(),
        page_size: 0,
    }
}

/// Every id of the answer, batches joined.
async fn held(
    mesh: &Mesh,
    service: &str,
    request: ListSubjectsHeldRequest,
) -> anyhow::Result<Vec<String>> {
    let mut stream = client(mesh, service)?
        .list_subjects_held(request)
        .await?
        .into_inner();
    let mut ids = Vec::new();
    while let Some(batch) = stream.next().await {
        ids.extend(batch?.subject_ids);
    }
    Ok(ids)
}

/// A person in the EEA with data in all four services at the clock's time: an account, a
/// consent, two usage events and a transfer of their profile to `recipient_id`.
async fn person_everywhere(
    mesh: &Mesh,
    clock: &ManualClock,
    recipient_id: &str,
) -> anyhow::Result<String> {
    let person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let subject = mesh.sign_up(&person).await?;
    mesh.consent()
        .grant_consent(GrantConsentRequest {
            subject_id: subject.clone(),
            purpose: "product_analytics".into(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".into(),
            text_hash: "b".repeat(64),
            actor: "cookie-banner".into(),
            occurred_at: None,
        })
        .await?;
    let events = (0..2)
        .map(|_| Event {
            subject_id: subject.clone(),
            kind: EventKind::FeatureUsed as i32,
            occurred_at: Some(timestamp(clock.now())),
            feature: "export".into(),
            device: Some(DeviceContext {
                os_name: "Linux".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let ingested = mesh
        .telemetry()
        .ingest_events(IngestEventsRequest {
            batch_id: format!("b-{subject}"),
            events,
        })
        .await?
        .into_inner();
    anyhow::ensure!(ingested.accepted == 2, "events refused: {ingested:?}");
    mesh.transfers()
        .authorize_transfer(tpb::AuthorizeTransferRequest {
            subject_id: subject.clone(),
            regime: Regime::Eu as i32,
            recipient_id: recipient_id.to_owned(),
            data_categories: vec!["account.profile".to_owned()],
            purpose: "service_provision".to_owned(),
            exporter_role: PartyRole::Controller as i32,
            ..Default::default()
        })
        .await?;
    Ok(subject)
}

async fn recipient(mesh: &Mesh) -> anyhow::Result<String> {
    let recipient = mesh
        .transfers()
        .register_recipient(tpb::RegisterRecipientRequest {
            recipient: Some(tpb::Recipient {
                key: "backup-de".to_owned(),
                name: "Backup DE".to_owned(),
                role: RecipientRole::Processor as i32,
                country: "DE".to_owned(),
                purposes: vec!["service_provision".to_owned()],
                data_categories: vec!["account.profile".to_owned()],
                contract_reference: "DPA-backup-de".to_owned(),
                contract_date: "2024-01-10".to_owned(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .recipient
        .ok_or_else(|| anyhow::anyhow!("no recipient"))?;
    Ok(recipient.recipient_id)
}

#[tokio::test]
async fn each_service_lists_whom_it_held_in_the_window_and_nobody_else() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let to = recipient(&mesh).await?;
    let t0 = clock.now();
    let ada = person_everywhere(&mesh, &clock, &to).await?;
    clock.advance(Duration::hours(4));
    let bob = person_everywhere(&mesh, &clock, &to).await?;

    for (service, category) in CATEGORIES {
        // Ada's data was held from t0 on; Bob's only from t0 + 4 h.
        let early = held(
            &mesh,
            service,
            request(category, t0 + Duration::hours(1), t0 + Duration::hours(3)),
        )
        .await?;
        assert_eq!(early, std::slice::from_ref(&ada), "{service} {category}");
        // Before anyone's data: nobody.
        let before = held(
            &mesh,
            service,
            request(category, t0 - Duration::hours(2), t0 - Duration::hours(1)),
        )
        .await?;
        assert!(before.is_empty(), "{service} {category}: {before:?}");
        // Both, in id order.
        let mut both = vec![ada.clone(), bob.clone()];
        both.sort();
        let late = held(
            &mesh,
            service,
            request(category, t0 + Duration::hours(3), t0 + Duration::hours(5)),
        )
        .await?;
        assert_eq!(late, both, "{service} {category}");

        // Paged: one at a time, resuming after the last id.
        let mut first = request(category, t0, t0 + Duration::hours(5));
        first.page_size = 1;
        let page = held(&mesh, service, first.clone()).await?;
        assert_eq!(page, [both[0].clone()], "{service}");
        let page = held(
            &mesh,
            service,
            ListSubjectsHeldRequest {
                after_subject_id: both[0].clone(),
                ..first.clone()
            },
        )
        .await?;
        assert_eq!(page, [both[1].clone()], "{service}");
        let page = held(
            &mesh,
            service,
            ListSubjectsHeldRequest {
                after_subject_id: both[1].clone(),
                ..first
            },
        )
        .await?;
        assert!(page.is_empty(), "{service}");
    }

    // Another category (nobody has a support ticket), one the service does not hold,
    // one nobody holds: an empty answer, not an error.
    let wide = |category: &str| request(category, t0, t0 + Duration::days(1));
    assert!(
        held(&mesh, "identity", wide("support.ticket"))
            .await?
            .is_empty()
    );
    assert!(
        held(&mesh, "identity", wide("telemetry.event"))
            .await?
            .is_empty()
    );
    for service in SERVICES {
        assert!(held(&mesh, service, wide("nothing.here")).await?.is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn bad_input_is_a_field_violation_per_field_in_every_service() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let now = clock.now();
    for service in SERVICES {
        let mut c = client(&mesh, service)?;
        let status = c
            .list_subjects_held(ListSubjectsHeldRequest {
                incident_id: String::new(),
                category: "Account Profile".to_owned(),
                window_start: None,
                window_end: Some(timestamp(now)),
                after_subject_id: "not-a-subject".to_owned(),
                page_size: 10_001,
            })
            .await
            .expect_err("bad input accepted");
        let mut fields = field_violations(&status);
        fields.sort();
        assert_eq!(
            fields,
            [
                "after_subject_id",
                "category",
                "incident_id",
                "page_size",
                "window_start"
            ],
            "{service}"
        );
        let status = c
            .list_subjects_held(request("account.profile", now, now))
            .await
            .expect_err("an empty window accepted");
        assert_eq!(field_violations(&status), ["window_end"], "{service}");
        let status = c
            .list_subjects_held(ListSubjectsHeldRequest {
                window_end: None,
                category: String::new(),
                ..request("account.profile", now, now)
            })
            .await
            .expect_err("no category accepted");
        let mut fields = field_violations(&status);
        fields.sort();
        assert_eq!(fields, ["category", "window_end"], "{service}");
    }
    Ok(())
}

#[tokio::test]
async fn find_affected_records_each_person_once_with_the_services_that_held_them()
-> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let to = recipient(&mesh).await?;
    let t0 = clock.now();
    let ada = person_everywhere(&mesh, &clock, &to).await?;
    clock.advance(Duration::hours(4));
    let bob = person_everywhere(&mesh, &clock, &to).await?;
    clock.advance(Duration::hours(1));

    let mut admin = support::admin(&mesh)?;
    let mut details = support::details(clock.now());
    details.data_categories = CATEGORIES.iter().map(|(_, c)| (*c).to_owned()).collect();
    details.services = SERVICES.map(str::to_owned).to_vec();
    details.window_start = Some(timestamp(t0 + Duration::hours(1)));
    details.window_end = Some(timestamp(t0 + Duration::hours(3)));
    let incident = support::open(&mut admin, details).await?;
    let id = incident.incident_id.clone();

    let found = admin
        .find_affected(FindAffectedRequest {
            incident_id: id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!((found.affected, found.added), (1, 1));
    let mut asked = found.services.clone();
    asked.sort();
    let mut all = SERVICES.map(str::to_owned).to_vec();
    all.sort();
    assert_eq!(asked, all);

    // Again: nobody added twice.
    let again = admin
        .find_affected(FindAffectedRequest {
            incident_id: id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!((again.affected, again.added), (1, 0));

    let listed = admin
        .list_affected(ListAffectedRequest {
            incident_id: id.clone(),
            page_size: 0,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    let ids: Vec<&str> = listed
        .subjects
        .iter()
        .map(|s| s.subject_id.as_str())
        .collect();
    assert_eq!(ids, [ada.as_str()], "bob ({bob}) came after the window");
    let mut services = listed.subjects[0].services.clone();
    services.sort();
    assert_eq!(services, all);
    assert!(listed.next_page_token.is_empty());

    // Bad input: a field violation per field.
    let status = admin
        .list_affected(ListAffectedRequest {
            incident_id: "nope".to_owned(),
            page_size: 501,
            page_token: "x".to_owned(),
        })
        .await
        .expect_err("bad input accepted");
    let mut fields = field_violations(&status);
    fields.sort();
    assert_eq!(fields, ["incident_id", "page_size", "page_token"]);
    let status = admin
        .find_affected(FindAffectedRequest {
            incident_id: String::new(),
        })
        .await
        .expect_err("no incident accepted");
    assert_eq!(field_violations(&status), ["incident_id"]);
    Ok(())
}

/// A person in `region` with an account and a consent at the clock's time.
async fn person_in(mesh: &Mesh, region: Region) -> anyhow::Result<(String, Person)> {
    let person = Person {
        region,
        ..Person::new()
    };
    let subject = mesh.sign_up(&person).await?;
    mesh.consent()
        .grant_consent(GrantConsentRequest {
            subject_id: subject.clone(),
            purpose: "testimonials".into(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".into(),
            text_hash: "b".repeat(64),
            actor: "cookie-banner".into(),
            occurred_at: None,
        })
        .await?;
    Ok((subject, person))
}

/// Each subject's region, by id, and the counts per region, as ListAffected answers.
async fn regions(
    admin: &mut support::Client,
    id: &str,
) -> anyhow::Result<(Vec<(String, Region)>, Vec<(Region, u64)>, u64)> {
    let listed = admin
        .list_affected(ListAffectedRequest {
            incident_id: id.to_owned(),
            page_size: 0,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    Ok((
        listed
            .subjects
            .iter()
            .map(|s| (s.subject_id.clone(), s.region()))
            .collect(),
        listed
            .by_region
            .iter()
            .map(|c| (c.region(), c.subjects))
            .collect(),
        listed.total,
    ))
}

/// Where the affected people live (issue 21; the policy's "in accordance with applicable
/// law": the region decides whose rules apply): FindAffected asks identity each person's
/// region once and records it, ids in and a region out; someone identity no longer knows
/// (their account deleted; consent still holds their record) is unknown. Identity down:
/// UNAVAILABLE, the people found stay recorded without a region, and the next run fills
/// the regions still missing.
#[tokio::test]
async fn find_affected_records_where_each_person_lives_and_fills_what_identity_missed()
-> anyhow::Result<()> {
    let clock = start_clock();
    let mut mesh = mesh(&clock).await?;
    let t0 = clock.now();
    let (ada, _) = person_in(&mesh, Region::Uk).await?;
    let (bob, _) = person_in(&mesh, Region::Us).await?;
    let (cy, cy_person) = person_in(&mesh, Region::Eea).await?;
    mesh.identity()
        .delete_account(pdm_proto::identity::v1::DeleteAccountRequest {
            subject_id: cy.clone(),
            password: cy_person.password.clone(),
            reason: pdm_proto::identity::v1::DeletionReason::NoLongerNeeded as i32,
            request_id: String::new(),
        })
        .await?;
    clock.advance(Duration::hours(1));

    let mut admin = support::admin(&mesh)?;
    let mut details = support::details(clock.now());
    details.data_categories = vec!["consent.record".to_owned()];
    details.services = vec!["consent".to_owned()];
    details.window_start = Some(timestamp(t0 - Duration::hours(1)));
    details.window_end = Some(timestamp(clock.now()));
    let incident = support::open(&mut admin, details).await?;
    let id = incident.incident_id.clone();

    // Identity down: consent answered, so the three are recorded, but without a region.
    mesh.stop("identity").await?;
    let status = admin
        .find_affected(FindAffectedRequest {
            incident_id: id.clone(),
        })
        .await
        .expect_err("identity down, yet regions answered");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let (listed, counts, total) = regions(&mut admin, &id).await?;
    assert_eq!(total, 3);
    assert!(listed.iter().all(|(_, r)| *r == Region::Unspecified));
    assert_eq!(counts, [(Region::Unspecified, 3)]);

    // Identity back: the next run adds nobody and fills the regions.
    mesh.restart("identity").await?;
    let found = admin
        .find_affected(FindAffectedRequest {
            incident_id: id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!((found.affected, found.added), (3, 0));
    let by_region: Vec<(Region, u64)> = found
        .by_region
        .iter()
        .map(|c| (c.region(), c.subjects))
        .collect();
    let expected = [(Region::Unspecified, 1), (Region::Uk, 1), (Region::Us, 1)];
    assert_eq!(by_region, expected);
    let (listed, counts, total) = regions(&mut admin, &id).await?;
    assert_eq!(total, 3);
    assert_eq!(counts, expected);
    let mut want = vec![
        (ada, Region::Uk),
        (bob, Region::Us),
        (cy, Region::Unspecified),
    ];
    want.sort();
    assert_eq!(listed, want);

    // Once known, a region is not asked again: identity down no longer matters.
    mesh.stop("identity").await?;
    let again = admin
        .find_affected(FindAffectedRequest {
            incident_id: id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!((again.affected, again.added), (3, 0));
    assert_eq!(again.by_region.len(), 3);
    Ok(())
}
