//! One erasure contract across the mesh (`pdm_runtime::erasure`): every service that erases
//! answers a retried `EraseSubject` with its first receipt, refuses a request id that erased
//! another subject with the same field violation, and gives concurrent calls under one
//! request id one receipt. Policy: "Right to erasure" — an erasure done once stays done, and
//! a retry (rights' fan-out retries until every service answered) must not do it twice.

use base64::{Engine, engine::general_purpose::STANDARD};
use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::subject::v1::{EraseSubjectRequest, ErasureReceipt};
use pdm_runtime::{erasure::entity, tonic_types::StatusExt};
use pdm_telemetry::Telemetry;
use pdm_testkit::{Mesh, TestMesh, assert::field_violations};
use pdm_transfers::Transfers;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tonic::Code;

const ERASING: [&str; 4] = [
    pdm_identity::NAME,
    pdm_consent::NAME,
    pdm_telemetry::NAME,
    pdm_transfers::NAME,
];

async fn mesh() -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(Identity)
        .with(Consent)
        .with(Telemetry)
        .with(Transfers)
        .start()
        .await
}

async fn erase(
    mesh: &Mesh,
    service: &str,
    request_id: &str,
    subject: &str,
) -> Result<ErasureReceipt, tonic::Status> {
    let receipt = mesh
        .subject_data(service)
        .erase_subject(EraseSubjectRequest {
            request_id: request_id.to_owned(),
            subject_id: subject.to_owned(),
        })
        .await?
        .into_inner()
        .receipt;
    receipt.ok_or_else(|| tonic::Status::internal("no receipt"))
}

#[tokio::test]
async fn a_retried_erasure_answers_with_its_first_receipt_in_every_service() -> anyhow::Result<()> {
    let mesh = mesh().await?;
    let (_, subject) = mesh.person_with_data().await?;
    for service in ERASING {
        let request_id = format!("erase-{service}");
        let first = erase(&mesh, service, &request_id, &subject).await?;
        assert_eq!(first.service, service);
        assert_eq!(
            first.subject_id, subject,
            "{service}: the caller gets the id back"
        );
        let again = erase(&mesh, service, &request_id, &subject).await?;
        assert_eq!(again, first, "{service}: a retry gets the first receipt");
    }
    Ok(())
}

#[tokio::test]
async fn a_request_id_that_erased_another_subject_is_refused_in_every_service() -> anyhow::Result<()>
{
    let mesh = mesh().await?;
    let (_, subject) = mesh.person_with_data().await?;
    let other = mesh.sign_up(&pdm_testkit::fake::Person::new()).await?;
    for service in ERASING {
        let request_id = format!("erase-{service}");
        erase(&mesh, service, &request_id, &subject).await?;
        let refused = erase(&mesh, service, &request_id, &other)
            .await
            .expect_err("request id reused for another subject");
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{service}: {refused:?}"
        );
        assert_eq!(field_violations(&refused), ["request_id"], "{service}");
        let described = refused
            .get_details_bad_request()
            .map(|b| b.field_violations[0].description.clone());
        assert_eq!(
            described.as_deref(),
            Some(pdm_runtime::erasure::REUSED),
            "{service}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn concurrent_erasures_under_one_request_id_give_one_receipt() -> anyhow::Result<()> {
    let mesh = mesh().await?;
    let (_, subject) = mesh.person_with_data().await?;
    for service in ERASING {
        let request_id = format!("race-{service}");
        let calls = (0..4).map(|_| erase(&mesh, service, &request_id, &subject));
        let receipts = futures_util::future::try_join_all(calls).await?;
        assert!(
            receipts.windows(2).all(|w| w[0] == w[1]),
            "{service}: {receipts:?}"
        );
        let db = mesh.connect_db(service).await?;
        let rows = entity::Entity::find()
            .filter(entity::Column::RequestId.eq(request_id.as_str()))
            .all(&db)
            .await?;
        assert_eq!(rows.len(), 1, "{service}: one receipt row");
        let row = &rows[0];
        assert_ne!(
            row.subject_ref, subject,
            "{service}: a reference, not the id"
        );
        let stored = STANDARD.decode(&row.receipt)?;
        assert!(
            !String::from_utf8_lossy(&stored).contains(&subject),
            "{service}: the stored receipt holds no subject id"
        );
    }
    Ok(())
}
