//! People told (issue 21; GDPR/UK GDPR Art. 34; the policy: "If we learn of a security
//! systems breach, we will inform you of the occurrence of the breach in accordance with
//! applicable law"): NotifyPeople sends each affected subject of a high-risk incident a
//! notice through the rights service's outbox, exactly once, even when the incidents
//! service stops in the middle of a run and a new one resumes it on the same database;
//! ListAffected shows where each notice stands; bad input is refused field by field; no
//! texts, addresses or subject ids in the logs.

mod support;

use std::{sync::Arc, time::Duration};

use chrono::Duration as Span;
use pdm_identity::Identity;
use pdm_incidents::{Incidents, store::entities::affected_subject};
use pdm_proto::{
    incidents::v1::{self as pb, NoticeStatus, RiskLevel},
    rights::v1::{SendNoticeRequest, rights_service_client::RightsServiceClient},
};
use pdm_rights::Rights;
use pdm_runtime::{Clock, ManualClock};
use pdm_testkit::{
    Mesh, TestMesh, assert::field_violations, eventually, fake::Person, start_clock,
};
use pdm_tls::identity::Caller;
use sea_orm::{ConnectionTrait, EntityTrait, IntoActiveModel, Statement};
use support::{Client, DESCRIPTION, admin, details, open, strings};

const WHAT: &str =
    "A file with your account name and email address was sent to the wrong partner on 2 December.";
/// Subjects recorded besides the people with accounts: no address known for them.
const STRANGERS: usize = 150;

async fn mesh(clock: &Arc<ManualClock>, outbox: &std::path::Path) -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(Identity)
        .with(Rights)
        .with(Incidents)
        .clock(clock.clone())
        .setting("rights.retention", "false")
        .setting("rights.outbox_file", outbox.display())
        .setting("incidents.dpo.name", "Ada Officer")
        .setting("incidents.dpo.email", "dpo@example.org")
        // A stop cuts a call in flight short quickly, as a crash would.
        .setting("server.grace_period_ms", 50)
        .start()
        .await
}

fn notify(incident_id: &str, what: &str) -> pb::NotifyPeopleRequest {
    pb::NotifyPeopleRequest {
        incident_id: incident_id.to_owned(),
        what_happened: what.to_owned(),
        actor: "dpo-office".into(),
        max_subjects: 0,
    }
}

async fn count(mesh: &Mesh, service: &str, sql: &str) -> anyhow::Result<i64> {
    let db = mesh.connect_db(service).await?;
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no row"))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// Every affected subject, paging ListAffected.
async fn affected(
    client: &mut Client,
    incident_id: &str,
) -> anyhow::Result<Vec<pb::AffectedSubject>> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_affected(pb::ListAffectedRequest {
                incident_id: incident_id.to_owned(),
                page_size: 100,
                page_token: token,
            })
            .await?
            .into_inner();
        all.extend(page.subjects);
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        token = page.next_page_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_affected_person_is_told_exactly_once_across_a_restart_mid_send_art_34()
-> anyhow::Result<()> {
    let clock = start_clock();
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    let mut mesh = mesh(&clock, &outbox).await?;
    let people: Vec<Person> = (0..3).map(|_| Person::new()).collect();
    for person in &people {
        mesh.sign_up(person).await?;
    }
    clock.advance(Span::minutes(5));
    let now = clock.now();
    let mut client = admin(&mesh)?;
    let mut incident_details = pb::IncidentDetails {
        data_categories: strings(&["account.profile"]),
        services: strings(&["identity"]),
        ..details(now)
    };
    let incident = open(&mut client, incident_details.clone()).await?;
    let id = incident.incident_id.clone();

    // Not assessed as high risk yet: nobody is told (Art. 34(1)).
    let refused = client
        .notify_people(notify(&id, WHAT))
        .await
        .expect_err("not high risk");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );

    let found = client
        .find_affected(pb::FindAffectedRequest {
            incident_id: id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(found.affected, 3, "{found:?}");
    // Many more affected subjects, of whom identity knows nothing (no address).
    let db = mesh.connect_db("incidents").await?;
    for _ in 0..STRANGERS {
        affected_subject::Entity::insert(
            affected_subject::Model {
                incident_id: id.clone(),
                subject_id: uuid::Uuid::now_v7().to_string(),
                services: "identity".into(),
                found_at: now,
                notice_id: None,
                notice_status: None,
                notified_at: None,
                region: None,
            }
            .into_active_model(),
        )
        .exec(&db)
        .await?;
    }
    let total = 3 + STRANGERS as i64;
    incident_details.risk = RiskLevel::High as i32;
    incident_details.risk_reasoning = "Names and emails of many people: phishing likely.".into();
    client
        .assess_incident(pb::AssessIncidentRequest {
            incident_id: id.clone(),
            details: Some(incident_details),
            actor: "dpo-office".into(),
            expected_version: 0,
        })
        .await?;

    // The run, cut short by a stop of the incidents service in the middle of it.
    let run = {
        let mut client = client.clone();
        let request = notify(&id, WHAT);
        tokio::spawn(async move { client.notify_people(request).await })
    };
    let told = "SELECT COUNT(*) FROM affected_subjects WHERE notified_at IS NOT NULL";
    eventually("some people told", Duration::from_secs(30), || async {
        Ok((count(&mesh, "incidents", told).await? >= 5).then_some(()))
    })
    .await?;
    mesh.stop("incidents").await?;
    let cut = run.await?;
    let told_at_stop = count(&mesh, "incidents", told).await?;
    assert!(
        told_at_stop < total,
        "the stop came after the run ended ({cut:?}): nothing was resumed"
    );
    // As if the service had died between rights storing a notice and the register
    // recording it: rights holds a notice the register does not know of.
    let untold: String = {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT subject_id FROM affected_subjects WHERE notified_at IS NULL ORDER BY subject_id DESC",
            ))
            .await?
            .ok_or_else(|| anyhow::anyhow!("everyone told"))?;
        row.try_get_by_index(0)?
    };
    RightsServiceClient::new(mesh.channel_as("rights", &Caller::Service("incidents".into()))?)
        .send_notice(SendNoticeRequest {
            incident_id: id.clone(),
            subject_id: untold,
            what_happened: WHAT.into(),
            likely_consequences: details(now).likely_consequences,
            measures_taken: details(now).measures_taken,
        })
        .await?;

    // A new incidents service on the same database resumes the run.
    mesh.restart("incidents").await?;
    let mut client = admin(&mesh)?;
    let mut already = 0;
    let mut calls = 0;
    loop {
        let answer = client.notify_people(notify(&id, "")).await?.into_inner();
        already += answer.already_notified;
        calls += 1;
        assert_eq!(answer.affected, total as u64);
        if answer.remaining == 0 {
            break;
        }
        assert!(calls < 50, "the run does not end: {answer:?}");
    }
    assert!(
        already >= 1,
        "the notice rights stored before the restart was not found again"
    );

    // Exactly one notice per subject at rights, one message per person with an address.
    let notices = format!("SELECT COUNT(*) FROM notices WHERE incident_id = '{id}'");
    assert_eq!(count(&mesh, "rights", &notices).await?, total);
    let twice = format!(
        "SELECT COUNT(*) FROM (SELECT subject_id FROM notices WHERE incident_id = '{id}' \
         GROUP BY subject_id HAVING COUNT(*) > 1) t"
    );
    assert_eq!(count(&mesh, "rights", &twice).await?, 0);
    let messages = "SELECT COUNT(*) FROM outbox WHERE notice_id IS NOT NULL";
    assert_eq!(count(&mesh, "rights", messages).await?, 3);
    // Each person's letter: theirs alone, once, saying what happened and whom to ask.
    let store = pdm_rights::store::Store::connect(mesh.settings()).await?;
    let letters = eventually("three letters", Duration::from_secs(30), || async {
        let letters: Vec<_> = pdm_rights::mailbox::read(&store, &outbox)
            .await?
            .into_iter()
            .filter(|e| e.topic == "breach_notice")
            .collect();
        Ok((letters.len() >= 3).then_some(letters))
    })
    .await?;
    assert_eq!(letters.len(), 3);
    for person in &people {
        let theirs: Vec<_> = letters
            .iter()
            .filter_map(|l| l.letter.as_ref())
            .filter(|l| l.to == person.email)
            .collect();
        assert_eq!(theirs.len(), 1, "{} letters to one person", theirs.len());
        assert!(theirs[0].body.contains(WHAT));
        assert!(theirs[0].body.contains("dpo@example.org"));
    }

    // The register shows where each stands: the people with an address sent, the others
    // without one.
    let listed = eventually("the letters sent", Duration::from_secs(30), || async {
        let listed = affected(&mut admin(&mesh)?, &id).await?;
        let sent = listed
            .iter()
            .filter(|s| s.notice_status() == NoticeStatus::Sent)
            .count();
        Ok((sent == 3).then_some(listed))
    })
    .await?;
    assert_eq!(listed.len(), total as usize);
    assert!(
        listed
            .iter()
            .all(|s| !s.notice_id.is_empty() && s.notified_at.is_some())
    );
    let no_address = listed
        .iter()
        .filter(|s| s.notice_status() == NoticeStatus::NoAddress)
        .count();
    assert_eq!(no_address, STRANGERS);

    // Everyone is told the same: another text is refused once the notices started.
    let other = client
        .notify_people(notify(&id, "Something else"))
        .await
        .expect_err("another text");
    assert_eq!(other.code(), tonic::Code::FailedPrecondition);

    // Ids and counts in the logs; never the texts or the people's addresses.
    let logs = mesh.logs().contents();
    for secret in [WHAT, DESCRIPTION]
        .into_iter()
        .chain(people.iter().map(|p| p.email.as_str()))
    {
        assert!(!logs.contains(secret), "{secret} logged");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_notify_requests_are_refused_field_by_field() -> anyhow::Result<()> {
    let clock = start_clock();
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&clock, &dir.path().join("outbox.jsonl")).await?;
    let mut client = admin(&mesh)?;
    let refused = client
        .notify_people(pb::NotifyPeopleRequest {
            incident_id: "INC-1".into(),
            what_happened: "x".repeat(4001),
            actor: String::new(),
            max_subjects: -1,
        })
        .await
        .expect_err("bad input");
    assert_eq!(
        field_violations(&refused),
        ["incident_id", "what_happened", "actor", "max_subjects"]
    );
    let refused = client
        .notify_people(pb::NotifyPeopleRequest {
            what_happened: "Card 4111 1111 1111 1111 was exposed".into(),
            ..notify(&uuid::Uuid::now_v7().to_string(), "")
        })
        .await
        .expect_err("a card number");
    assert_eq!(field_violations(&refused), ["what_happened"]);
    let unknown = client
        .notify_people(notify(&uuid::Uuid::now_v7().to_string(), WHAT))
        .await
        .expect_err("no such incident");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    Ok(())
}
