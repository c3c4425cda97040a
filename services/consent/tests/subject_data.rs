//! The SubjectData contract for the consent service: access ("GDPR Data Protection
//! Rights": the right to access), erasure that keeps a pseudonymised proof of consent
//! ("The right to erasure"; Art. 7(1) GDPR: we must be able to show consent was given),
//! restriction, and purging that proof when retention says so.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    common::v1::{LegalBasis, Region},
    consent::v1::{
        self as pb, Channel, LedgerEntryKind, Reason, Source,
        consent_service_client::ConsentServiceClient,
    },
    subject::v1::{
        self as subject_pb, LegalHold, PurgeExpiredRequest, PurgeResult, PurgeRule,
        RetentionTrigger, subject_data_service_client::SubjectDataServiceClient,
    },
};
use pdm_runtime::{ManualClock, convert::timestamp};
use pdm_testkit::{
    Mesh, TestMesh,
    assert::{field_violations, rows, rows_where},
    fake::Person,
    start_time,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tonic::transport::Channel as GrpcChannel;

type Client = ConsentServiceClient<GrpcChannel>;
type SubjectData = SubjectDataServiceClient<GrpcChannel>;

const TEXT_HASH: &str = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea";
const POLICY_VERSION: &str = "2024-06-28";
const PROOF: &str = "consent.proof";

fn clock_now(clock: &Arc<ManualClock>) -> DateTime<Utc> {
    pdm_runtime::Clock::now(clock.as_ref())
}

async fn grant(consent: &mut Client, subject: &str, purpose: &str) -> anyhow::Result<()> {
    consent
        .grant_consent(pb::GrantConsentRequest {
            subject_id: subject.to_owned(),
            purpose: purpose.to_owned(),
            source: Source::WebForm as i32,
            policy_version: POLICY_VERSION.to_owned(),
            text_hash: TEXT_HASH.to_owned(),
            actor: "web-signup".to_owned(),
            occurred_at: None,
        })
        .await?;
    Ok(())
}

async fn decide(
    consent: &mut Client,
    subject: &str,
    purpose: &str,
) -> anyhow::Result<pb::Decision> {
    Ok(consent
        .check_processing(pb::CheckProcessingRequest {
            subject_id: subject.to_owned(),
            purpose: purpose.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .expect("decision"))
}

async fn history(consent: &mut Client, subject: &str) -> anyhow::Result<Vec<pb::LedgerEntry>> {
    Ok(consent
        .get_consent_history(pb::GetConsentHistoryRequest {
            subject_id: subject.to_owned(),
            page_size: 1000,
            ..Default::default()
        })
        .await?
        .into_inner()
        .entries)
}

/// A subject with a little history: two grants, an opt-out.
async fn subject_with_history(mesh: &Mesh, person: &Person) -> anyhow::Result<String> {
    let subject = mesh.sign_up(person).await?;
    let mut consent = mesh.consent();
    grant(&mut consent, &subject, "product_analytics").await?;
    grant(&mut consent, &subject, "marketing_email").await?;
    consent
        .set_contact_preference(pb::SetContactPreferenceRequest {
            subject_id: subject.clone(),
            channel: Channel::Sms as i32,
            opted_out: true,
            source: Source::EmailLink as i32,
            actor: "unsubscribe-link".to_owned(),
        })
        .await?;
    Ok(subject)
}

async fn export(
    subject_data: &mut SubjectData,
    subject: &str,
) -> anyhow::Result<Vec<subject_pb::SubjectRecord>> {
    let mut stream = subject_data
        .export_subject(subject_pb::ExportSubjectRequest {
            subject_id: subject.to_owned(),
            request_id: "dsr-access".to_owned(),
        })
        .await?
        .into_inner();
    let mut records = Vec::new();
    while let Some(message) = stream.message().await? {
        records.push(message.record.expect("record"));
    }
    Ok(records)
}

async fn erase(
    subject_data: &mut SubjectData,
    request_id: &str,
    subject: &str,
) -> anyhow::Result<subject_pb::ErasureReceipt> {
    Ok(subject_data
        .erase_subject(subject_pb::EraseSubjectRequest {
            request_id: request_id.to_owned(),
            subject_id: subject.to_owned(),
        })
        .await?
        .into_inner()
        .receipt
        .expect("receipt"))
}

/// Ledger rows kept as pseudonymised proof: no subject id, but purpose, policy version and
/// text hash still there.
async fn proof_rows(db: &DatabaseConnection) -> anyhow::Result<u64> {
    let sql = format!(
        "SELECT COUNT(*) AS n FROM consent_events WHERE subject_id LIKE 'erased:%' \
         AND purpose IS NOT NULL AND policy_version = '{POLICY_VERSION}' \
         AND text_hash = '{TEXT_HASH}' AND actor IS NULL"
    );
    count(db, &sql).await
}

async fn pseudonymised_rows(db: &DatabaseConnection) -> anyhow::Result<u64> {
    count(
        db,
        "SELECT COUNT(*) AS n FROM consent_events WHERE subject_id LIKE 'erased:%'",
    )
    .await
}

async fn count(db: &DatabaseConnection, sql: &str) -> anyhow::Result<u64> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no count row"))?;
    let n: i64 = row.try_get("", "n")?;
    Ok(u64::try_from(n)?)
}

fn purge(
    run_id: &str,
    cutoff: DateTime<Utc>,
    holds: Vec<LegalHold>,
    dry_run: bool,
) -> PurgeExpiredRequest {
    PurgeExpiredRequest {
        run_id: run_id.to_owned(),
        rules: vec![PurgeRule {
            category: PROOF.to_owned(),
            trigger: RetentionTrigger::AccountClosed as i32,
            cutoff: Some(timestamp(cutoff)),
        }],
        holds,
        dry_run,
    }
}

async fn purge_result(
    subject_data: &mut SubjectData,
    request: PurgeExpiredRequest,
) -> anyhow::Result<PurgeResult> {
    let results = subject_data
        .purge_expired(request)
        .await?
        .into_inner()
        .results;
    assert_eq!(results.len(), 1, "{results:?}");
    Ok(results.into_iter().next().expect("a result"))
}

#[tokio::test]
async fn an_export_holds_the_ledger_and_the_current_state() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let subject = subject_with_history(&mesh, &person).await?;
    let mut consent = mesh.consent();
    let entries = history(&mut consent, &subject).await?;
    let mut subject_data = mesh.subject_data("consent");

    // "GDPR Data Protection Rights": what we hold, why, on what basis, from where and for
    // how long.
    let records = export(&mut subject_data, &subject).await?;
    let state: Vec<_> = records
        .iter()
        .filter(|r| r.category == "consent.state")
        .collect();
    let ledger: Vec<_> = records
        .iter()
        .filter(|r| r.category == "consent.record")
        .collect();
    assert_eq!(state.len(), 1);
    assert_eq!(ledger.len(), entries.len());
    assert_eq!(records.len(), state.len() + ledger.len());
    for record in &records {
        assert_eq!(record.service, "consent");
        assert!(!record.purposes.is_empty(), "{}", record.category);
        assert_ne!(record.legal_basis, LegalBasis::Unspecified as i32);
        assert!(!record.source.is_empty());
        assert!(
            record
                .retention
                .as_ref()
                .is_some_and(|r| !r.rule.is_empty()),
            "{}",
            record.category
        );
        assert!(record.data.is_some());
    }
    for (record, entry) in ledger.iter().zip(&entries) {
        assert_eq!(record.record_id, entry.sequence.to_string());
        let data = pdm_runtime::convert::struct_to_json(record.data.as_ref().expect("data"));
        assert_eq!(
            data["kind"],
            LedgerEntryKind::try_from(entry.kind)?.as_str_name()
        );
        assert_eq!(data["purpose"], entry.purpose);
        assert_eq!(data["text_hash"], entry.text_hash);
        assert_eq!(data["policy_version"], entry.policy_version);
    }
    let data = pdm_runtime::convert::struct_to_json(state[0].data.as_ref().expect("data"));
    assert_eq!(data["region"], "REGION_EEA");
    let analytics = data["purposes"]
        .as_array()
        .expect("purposes")
        .iter()
        .find(|p| p["purpose"] == "product_analytics")
        .expect("product_analytics");
    assert_eq!(analytics["consent"], "CONSENT_STATUS_GRANTED");
    assert_eq!(analytics["allowed_now"], true);

    // An unknown subject's export is empty: it does not reveal whether they exist.
    let nobody = uuid::Uuid::now_v7().to_string();
    assert!(export(&mut subject_data, &nobody).await?.is_empty());
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn erasure_keeps_only_a_pseudonymised_proof_and_says_so() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let subject = subject_with_history(&mesh, &person).await?;
    let bystander_person = Person::new();
    let bystander = subject_with_history(&mesh, &bystander_person).await?;
    let mut consent = mesh.consent();
    let entries = history(&mut consent, &subject).await?.len();
    assert_eq!(entries, 3);
    let db = mesh.connect_db("consent").await?;
    assert_eq!(
        rows_where(&db, "consent_events", "subject_id", &subject).await,
        3
    );
    let mut subject_data = mesh.subject_data("consent");

    let request_id = format!("dsr-{}", uuid::Uuid::now_v7());
    let receipt = erase(&mut subject_data, &request_id, &subject).await?;
    assert_eq!(receipt.request_id, request_id);
    assert_eq!(receipt.subject_id, subject);
    assert_eq!(receipt.service, "consent");
    assert!(receipt.completed_at.is_some());
    let erased: u64 = receipt.erased.iter().map(|e| e.count).sum();
    assert_eq!(erased, 3, "{:?}", receipt.erased);
    // Art. 7(1) GDPR: we must be able to demonstrate consent; the receipt says what is
    // kept and on which basis.
    let proof = receipt
        .retained
        .iter()
        .find(|r| r.category == PROOF)
        .expect("the receipt names the proof it keeps");
    assert_eq!(proof.legal_basis, LegalBasis::LegalObligation as i32);
    assert!(!proof.reason.is_empty());
    assert!(proof.count >= 3, "{proof:?}");

    // The subject is gone from the proof...
    assert!(history(&mut consent, &subject).await?.is_empty());
    assert_eq!(
        rows_where(&db, "consent_events", "subject_id", &subject).await,
        0
    );
    assert_eq!(rows_where(&db, "subjects", "subject_id", &subject).await, 0);
    // ...but what was consented to, under which policy and text, is still provable.
    assert_eq!(proof_rows(&db).await?, 2, "both grants kept as proof");
    assert!(pseudonymised_rows(&db).await? >= 3);
    // Nobody else is touched.
    assert_eq!(history(&mut consent, &bystander).await?.len(), 3);

    // Every later check treats the subject as unknown; writes are refused.
    let d = decide(&mut consent, &subject, "product_analytics").await?;
    assert!(!d.allowed);
    assert_eq!(d.reason, Reason::UnknownSubject as i32);
    let err = grant(&mut consent, &subject, "product_analytics")
        .await
        .expect_err("erased");
    assert_eq!(
        err.downcast_ref::<tonic::Status>().map(tonic::Status::code),
        Some(tonic::Code::NotFound)
    );
    assert!(export(&mut subject_data, &subject).await?.is_empty());

    // Idempotent by request id: the same receipt, nothing changed.
    let rows_before = rows(&db, "consent_events").await;
    let again = erase(&mut subject_data, &request_id, &subject).await?;
    assert_eq!(again, receipt);
    assert_eq!(rows(&db, "consent_events").await, rows_before);
    // A request id names one erasure: it cannot be reused for someone else.
    let err = subject_data
        .erase_subject(subject_pb::EraseSubjectRequest {
            request_id: request_id.clone(),
            subject_id: bystander.clone(),
        })
        .await
        .expect_err("request id reused");
    assert_eq!(field_violations(&err), ["request_id"]);
    assert_eq!(history(&mut consent, &bystander).await?.len(), 3);

    // The same request sent twice at once: one erasure, one receipt.
    let twin_id = format!("dsr-{}", uuid::Uuid::now_v7());
    let mut twin = mesh.subject_data("consent");
    let (first, second) = tokio::join!(
        erase(&mut subject_data, &twin_id, &bystander),
        erase(&mut twin, &twin_id, &bystander),
    );
    let (first, second) = (first?, second?);
    assert_eq!(first, second);
    assert_eq!(first.erased.iter().map(|e| e.count).sum::<u64>(), 3);
    assert!(history(&mut consent, &bystander).await?.is_empty());
    let ledger_rows = rows(&db, "consent_events").await;

    // A new request for the same subject finds nothing left to erase.
    let later = erase(&mut subject_data, "dsr-erase-again", &subject).await?;
    assert!(later.erased.is_empty(), "{later:?}");
    assert_eq!(rows(&db, "consent_events").await, ledger_rows);
    mesh.logs().assert_clean(&person.secrets());
    mesh.logs().assert_clean(&bystander_person.secrets());
    Ok(())
}

/// An erasure is stored with its receipt or not at all: apart, a stop between the two left
/// the retry to find nothing to pseudonymise and a receipt counting nothing erased. The
/// table refusing the receipt stands in for the stop.
#[tokio::test]
async fn an_erasure_is_stored_with_its_receipt_or_not_at_all() -> anyhow::Result<()> {
    use pdm_testkit::faults::{allow_inserts, refuse_inserts};
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let subject = subject_with_history(&mesh, &Person::new()).await?;
    let db = mesh.connect_db("consent").await?;
    let mut subject_data = mesh.subject_data("consent");

    refuse_inserts(&db, "erasures").await?;
    assert!(
        erase(&mut subject_data, "dsr-stop", &subject)
            .await
            .is_err()
    );
    assert_eq!(
        rows_where(&db, "consent_events", "subject_id", &subject).await,
        3,
        "nothing is pseudonymised without its receipt"
    );
    assert_eq!(pseudonymised_rows(&db).await?, 0);
    allow_inserts(&db, "erasures").await?;

    let receipt = erase(&mut subject_data, "dsr-stop", &subject).await?;
    let erased: u64 = receipt.erased.iter().map(|e| e.count).sum();
    assert_eq!(erased, 3, "the receipt says what was done");
    assert_eq!(
        rows_where(&db, "consent_events", "subject_id", &subject).await,
        0
    );
    assert_eq!(
        erase(&mut subject_data, "dsr-stop", &subject).await?,
        receipt
    );
    Ok(())
}

#[tokio::test]
async fn erasing_a_subject_without_consent_records_erases_nothing() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let nobody = uuid::Uuid::now_v7().to_string();
    let mut subject_data = mesh.subject_data("consent");
    for (request_id, who) in [("dsr-quiet", &subject), ("dsr-nobody", &nobody)] {
        let receipt = erase(&mut subject_data, request_id, who).await?;
        assert_eq!(receipt.request_id, request_id);
        assert!(receipt.erased.is_empty(), "{receipt:?}");
    }
    let db = mesh.connect_db("consent").await?;
    assert_eq!(
        rows_where(&db, "consent_events", "subject_id", &subject).await,
        0
    );
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn restrict_subject_works_like_set_restriction() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let person = Person {
        region: Region::Eea,
        ..Person::new()
    };
    let subject = subject_with_history(&mesh, &person).await?;
    let mut consent = mesh.consent();
    let mut subject_data = mesh.subject_data("consent");
    assert!(
        decide(&mut consent, &subject, "product_analytics")
            .await?
            .allowed
    );

    // "GDPR Data Protection Rights": the right to restrict processing, as the rights
    // service asks for it.
    let answer = subject_data
        .restrict_subject(subject_pb::RestrictSubjectRequest {
            subject_id: subject.clone(),
            restricted: true,
            request_id: "dsr-restrict-1".to_owned(),
        })
        .await?
        .into_inner();
    assert!(answer.restricted && answer.subject_known);
    for purpose in ["product_analytics", "service_provision", "marketing_email"] {
        let d = decide(&mut consent, &subject, purpose).await?;
        assert_eq!(d.reason, Reason::Restricted as i32, "{purpose}");
    }
    assert!(
        decide(&mut consent, &subject, "legal_compliance")
            .await?
            .allowed
    );
    let state = consent
        .get_consents(pb::GetConsentsRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner();
    assert!(state.restricted);
    let last = history(&mut consent, &subject)
        .await?
        .pop()
        .expect("an entry");
    assert_eq!(last.kind, LedgerEntryKind::Restrict as i32);
    assert_eq!(last.source, Source::PrivacyRequest as i32);

    let answer = subject_data
        .restrict_subject(subject_pb::RestrictSubjectRequest {
            subject_id: subject.clone(),
            restricted: false,
            request_id: "dsr-restrict-2".to_owned(),
        })
        .await?
        .into_inner();
    assert!(!answer.restricted && answer.subject_known);
    let d = decide(&mut consent, &subject, "product_analytics").await?;
    assert!(d.allowed);
    assert_eq!(d.reason, Reason::ConsentGiven as i32);

    // An unknown subject: nothing to restrict, nothing recorded.
    let nobody = uuid::Uuid::now_v7().to_string();
    let db = mesh.connect_db("consent").await?;
    let before = rows(&db, "consent_events").await;
    let answer = subject_data
        .restrict_subject(subject_pb::RestrictSubjectRequest {
            subject_id: nobody,
            restricted: true,
            request_id: String::new(),
        })
        .await?
        .into_inner();
    assert!(!answer.restricted && !answer.subject_known);
    assert_eq!(rows(&db, "consent_events").await, before);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn the_proof_is_purged_when_retention_says_unless_a_legal_hold_blocks_it()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = TestMesh::new()
        .with(Identity)
        .with(Consent)
        .clock(clock.clone())
        .start()
        .await?;
    let person = Person::new();
    let subject = subject_with_history(&mesh, &person).await?;
    let keeper = Person::new();
    let kept = subject_with_history(&mesh, &keeper).await?;
    let mut subject_data = mesh.subject_data("consent");
    let db = mesh.connect_db("consent").await?;

    clock.advance(Duration::days(1));
    let erased_at = clock_now(&clock);
    erase(&mut subject_data, "dsr-erase-1", &subject).await?;
    let proof = pseudonymised_rows(&db).await?;
    assert!(proof >= 3);
    let all = rows(&db, "consent_events").await;
    clock.advance(Duration::days(3000));

    // A cutoff before the erasure: nothing has expired.
    let result = purge_result(
        &mut subject_data,
        purge("run-1", erased_at - Duration::hours(1), Vec::new(), false),
    )
    .await?;
    assert_eq!((result.category.as_str(), result.purged), (PROOF, 0));
    assert_eq!(rows(&db, "consent_events").await, all);

    // A legal hold on the subject blocks the purge and is named.
    let hold = LegalHold {
        hold_id: "hold-litigation-7".to_owned(),
        subject_id: subject.clone(),
        category: String::new(),
    };
    let cutoff = erased_at + Duration::hours(1);
    let result = purge_result(&mut subject_data, purge("run-2", cutoff, vec![hold], false)).await?;
    assert_eq!((result.purged, result.held), (0, proof));
    assert_eq!(result.hold_ids, ["hold-litigation-7"]);
    assert_eq!(rows(&db, "consent_events").await, all);

    // So does a hold on every subject.
    let blanket = LegalHold {
        hold_id: "hold-regulator-audit".to_owned(),
        subject_id: String::new(),
        category: PROOF.to_owned(),
    };
    let result = purge_result(
        &mut subject_data,
        purge("run-2b", cutoff, vec![blanket], false),
    )
    .await?;
    assert_eq!((result.purged, result.held), (0, proof));
    assert_eq!(result.hold_ids, ["hold-regulator-audit"]);
    assert_eq!(rows(&db, "consent_events").await, all);

    // A dry run counts and changes nothing.
    let result = purge_result(&mut subject_data, purge("run-3", cutoff, Vec::new(), true)).await?;
    assert_eq!((result.purged, result.held), (proof, 0));
    assert_eq!(rows(&db, "consent_events").await, all);
    assert_eq!(pseudonymised_rows(&db).await?, proof);

    // Rules for categories the service does not hold are ignored.
    let other = subject_data
        .purge_expired(PurgeExpiredRequest {
            run_id: "run-4".to_owned(),
            rules: vec![PurgeRule {
                category: "telemetry.event".to_owned(),
                trigger: RetentionTrigger::EventTime as i32,
                cutoff: Some(timestamp(cutoff)),
            }],
            holds: Vec::new(),
            dry_run: false,
        })
        .await?
        .into_inner();
    assert!(other.results.is_empty(), "{other:?}");
    assert_eq!(rows(&db, "consent_events").await, all);

    // The purge itself: the proof goes, the other subject's ledger stays.
    let result = purge_result(&mut subject_data, purge("run-5", cutoff, Vec::new(), false)).await?;
    assert_eq!((result.purged, result.held), (proof, 0));
    assert_eq!(pseudonymised_rows(&db).await?, 0);
    assert_eq!(rows(&db, "consent_events").await, all - proof);
    assert_eq!(
        rows_where(&db, "consent_events", "subject_id", &kept).await,
        3
    );
    mesh.logs().assert_clean(&person.secrets());
    mesh.logs().assert_clean(&keeper.secrets());
    Ok(())
}
