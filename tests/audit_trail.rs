//! The access trail ("Data Security & Protection", "Performing audit functions"): calls
//! that read or change a subject's data are recorded with caller, method, subject,
//! purpose and trace id in a hash chain; an edited, deleted or moved entry is detected,
//! by the API and by `pdm audit verify`.

use std::{process::Command, time::Duration};

use pdm_proto::{
    audit::v1::{
        ListAccessesRequest, VerifyAccessLogRequest, audit_service_client::AuditServiceClient,
        problem::Kind,
    },
    consent::v1::{CheckProcessingRequest, consent_service_client::ConsentServiceClient},
    identity::v1::{GetAccountRequest, identity_service_client::IdentityServiceClient},
};
use pdm_runtime::sea_orm::ConnectionTrait;
use pdm_testkit::{Mesh, TestMesh, fake::Person};
use pdm_tls::identity::Caller;
use tonic::{Code, transport::Channel};

const LIMIT: Duration = Duration::from_secs(10);

async fn mesh() -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(pdm_identity::Identity)
        .with(pdm_consent::Consent)
        .start()
        .await
}

fn audit(mesh: &Mesh, service: &str) -> anyhow::Result<AuditServiceClient<Channel>> {
    Ok(AuditServiceClient::new(
        mesh.channel_as(service, &Caller::Admin)?,
    ))
}

/// The accesses to `subject` in `service` once there are at least `n` (the trail is
/// written just after the answer).
async fn accesses(
    mesh: &Mesh,
    service: &str,
    subject: &str,
    n: usize,
) -> anyhow::Result<Vec<pdm_proto::audit::v1::Access>> {
    let started = std::time::Instant::now();
    loop {
        let page = audit(mesh, service)?
            .list_accesses(ListAccessesRequest {
                subject_id: subject.to_owned(),
                page_size: 0,
                page_token: String::new(),
            })
            .await?
            .into_inner();
        if page.accesses.len() >= n {
            return Ok(page.accesses);
        }
        anyhow::ensure!(
            started.elapsed() < LIMIT,
            "{} accesses after {LIMIT:?}, wanted {n}",
            page.accesses.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn reads_and_changes_are_recorded_with_caller_method_and_trace() -> anyhow::Result<()> {
    let mesh = mesh().await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    // Rights reads the account (a client would first need a link with the subject).
    IdentityServiceClient::new(mesh.channel_as("identity", &Caller::Service("rights".into()))?)
        .get_account(GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await?;
    // A decision check discloses nothing and is not recorded.
    ConsentServiceClient::new(mesh.channel_as("consent", &Caller::Service("telemetry".into()))?)
        .check_processing(CheckProcessingRequest {
            subject_id: subject.clone(),
            purpose: "product_analytics".into(),
            ..Default::default()
        })
        .await?;

    let trail = accesses(&mesh, "identity", &subject, 2).await?;
    let methods: Vec<&str> = trail.iter().map(|a| a.method.as_str()).collect();
    assert!(
        methods.starts_with(&[
            "/pdm.identity.v1.IdentityService/CreateAccount",
            "/pdm.identity.v1.IdentityService/GetAccount"
        ]),
        "{methods:?}"
    );
    let read = &trail[1];
    assert_eq!(read.caller, "rights");
    assert_eq!(read.service, "identity");
    assert_eq!(read.trace_id.len(), 32, "{read:?}");
    assert!(read.at.is_some());
    assert!(trail[0].seq < trail[1].seq);
    let consent = audit(&mesh, "consent")?
        .list_accesses(ListAccessesRequest {
            subject_id: subject.clone(),
            page_size: 0,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    assert!(
        consent
            .accesses
            .iter()
            .all(|a| !a.method.ends_with("/CheckProcessing")),
        "{consent:?}"
    );

    // Bad input: one violation per bad field.
    let err = audit(&mesh, "identity")?
        .list_accesses(ListAccessesRequest {
            subject_id: "someone".into(),
            page_size: 5000,
            page_token: "x".into(),
        })
        .await
        .expect_err("bad input");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        pdm_testkit::assert::field_violations(&err),
        ["subject_id", "page_size", "page_token"]
    );
    // Only the privacy team verifies; a company client may not read the trail.
    let err =
        AuditServiceClient::new(mesh.channel_as("identity", &Caller::Client("support".into()))?)
            .verify_access_log(VerifyAccessLogRequest::default())
            .await
            .expect_err("not for clients");
    assert_eq!(err.code(), Code::PermissionDenied);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

async fn verify(mesh: &Mesh) -> anyhow::Result<pdm_proto::audit::v1::VerifyAccessLogResponse> {
    Ok(audit(mesh, "identity")?
        .verify_access_log(VerifyAccessLogRequest::default())
        .await?
        .into_inner())
}

/// Runs `pdm audit verify --services identity` against the mesh as the privacy team.
async fn pdm_audit_verify(mesh: &Mesh) -> anyhow::Result<(bool, String)> {
    let addr = mesh.addr("identity").expect("identity runs");
    let dir = tempfile::tempdir()?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_pdm"));
    command
        .env_clear()
        .current_dir(dir.path())
        .env(
            "PDM__SERVICES__IDENTITY__ENDPOINT",
            format!("http://{addr}"),
        )
        .env("PDM__TLS__DIR", mesh.certificate_dir())
        .args(["audit", "verify", "--services", "identity"]);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    Ok((
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    ))
}

#[tokio::test]
async fn an_edited_deleted_or_moved_entry_is_detected() -> anyhow::Result<()> {
    let mesh = mesh().await?;
    let subject = mesh.sign_up(&Person::new()).await?;
    for _ in 0..4 {
        mesh.identity()
            .get_account(GetAccountRequest {
                subject_id: subject.clone(),
            })
            .await?;
    }
    accesses(&mesh, "identity", &subject, 5).await?;
    let intact = verify(&mesh).await?;
    assert!(intact.intact, "{intact:?}");
    assert_eq!(intact.entries, 5);
    let (ok, out) = pdm_audit_verify(&mesh).await?;
    assert!(ok, "{out}");
    assert!(out.contains("intact"), "{out}");

    let db = mesh.connect_db("identity").await?;
    let exec = |sql: &'static str| {
        let db = db.clone();
        async move { db.execute_unprepared(sql).await }
    };

    // Edited: someone makes it look as if another caller read the data.
    exec("UPDATE access_log SET caller = 'admin' WHERE seq = 2").await?;
    let found = verify(&mesh).await?;
    assert!(!found.intact);
    assert_eq!(
        found
            .problems
            .iter()
            .map(|p| (p.seq, p.kind()))
            .collect::<Vec<_>>(),
        [(2, Kind::Edited)]
    );
    let (ok, out) = pdm_audit_verify(&mesh).await?;
    assert!(!ok, "pdm audit verify passed a tampered trail: {out}");
    assert!(
        out.contains("TAMPERED") && out.contains("entry 2 was edited"),
        "{out}"
    );
    exec("UPDATE access_log SET caller = 'client:testkit' WHERE seq = 2").await?;
    assert!(verify(&mesh).await?.intact, "restored");

    // Moved: two entries swap places (their positions kept in order).
    exec("UPDATE access_log SET seq = -3 WHERE seq = 3").await?;
    exec("UPDATE access_log SET seq = 3 WHERE seq = 4").await?;
    exec("UPDATE access_log SET seq = 4 WHERE seq = -3").await?;
    let found = verify(&mesh).await?;
    assert!(
        found
            .problems
            .iter()
            .any(|p| p.seq == 3 && p.kind() == Kind::BrokenLink),
        "{found:?}"
    );

    // Deleted: an entry in the middle, and the newest one.
    exec("DELETE FROM access_log WHERE seq = 2").await?;
    exec("DELETE FROM access_log WHERE seq = 5").await?;
    let found = verify(&mesh).await?;
    let kinds: Vec<(i64, Kind)> = found.problems.iter().map(|p| (p.seq, p.kind())).collect();
    assert!(kinds.contains(&(3, Kind::Missing)), "{kinds:?}");
    assert!(kinds.contains(&(4, Kind::Truncated)), "{kinds:?}");
    Ok(())
}

#[tokio::test]
async fn entries_queued_at_a_graceful_stop_are_written_and_the_chain_continues()
-> anyhow::Result<()> {
    let mut mesh = mesh().await?;
    let subject = mesh.sign_up(&Person::new()).await?;
    mesh.identity()
        .get_account(GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await?;
    mesh.restart("identity").await?;
    mesh.identity()
        .get_account(GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await?;
    let trail = accesses(&mesh, "identity", &subject, 3).await?;
    assert_eq!(trail.len(), 3, "{trail:?}");
    let report = verify(&mesh).await?;
    assert!(report.intact, "{report:?}");
    assert_eq!(report.entries, 3);
    Ok(())
}
