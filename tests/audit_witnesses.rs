//! A trail nobody can rewrite: entries are chained with a keyed MAC, every service's head
//! is witnessed by another service of the mesh, and checkpoints are signed. Each attack
//! below is one that the public SHA-256 chain let through; `pdm audit verify` catches it.

use std::{process::Command, time::Duration};

use pdm_access_trail::{
    Seal,
    migration::{AccessLog, AccessLogHead},
    seal_migration::HeadScheme,
    store,
};
use pdm_proto::{
    audit::v1::{
        ListWitnessedHeadsRequest, VerifyAccessLogRequest, VerifyAccessLogResponse,
        audit_service_client::AuditServiceClient, problem::Kind,
    },
    identity::v1::GetAccountRequest,
};
use pdm_runtime::sea_orm::{
    ConnectionTrait, DatabaseConnection,
    sea_query::{Expr, ExprTrait, Query},
};
use pdm_testkit::{Mesh, TestMesh, fake::Person};
use pdm_tls::identity::Caller;
use tonic::transport::Channel;

const LIMIT: Duration = Duration::from_secs(20);

/// Identity and consent, witnessing each other every 100 ms.
async fn mesh() -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(pdm_identity::Identity)
        .with(pdm_consent::Consent)
        .setting("audit.witness_interval_ms", 100)
        .start()
        .await
}

fn audit(mesh: &Mesh, service: &str) -> anyhow::Result<AuditServiceClient<Channel>> {
    Ok(AuditServiceClient::new(
        mesh.channel_as(service, &Caller::Admin)?,
    ))
}

/// A subject and `n` reads of it in identity.
async fn activity(mesh: &Mesh, n: usize) -> anyhow::Result<String> {
    let subject = mesh.sign_up(&Person::new()).await?;
    for _ in 0..n {
        mesh.identity()
            .get_account(GetAccountRequest {
                subject_id: subject.clone(),
            })
            .await?;
    }
    Ok(subject)
}

/// Waits until consent has witnessed identity's trail at position `seq` or later.
async fn witnessed_at_least(mesh: &Mesh, seq: i64) -> anyhow::Result<i64> {
    let started = std::time::Instant::now();
    loop {
        let heads = audit(mesh, "consent")?
            .list_witnessed_heads(ListWitnessedHeadsRequest {
                service: "identity".into(),
                page_size: 0,
                page_token: String::new(),
            })
            .await?
            .into_inner()
            .heads;
        if let Some(top) = heads.iter().map(|h| h.seq).max()
            && top >= seq
        {
            assert!(heads.iter().all(|h| h.witness == "consent"), "{heads:?}");
            return Ok(top);
        }
        anyhow::ensure!(started.elapsed() < LIMIT, "not witnessed: {heads:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Identity's head from its own database.
async fn head(db: &DatabaseConnection) -> anyhow::Result<(i64, Vec<u8>)> {
    Ok(store::head(db).await?.unwrap_or_default())
}

/// Runs `pdm audit <args>` as the privacy team against the mesh's services.
async fn pdm_audit(mesh: &Mesh, args: &[&str]) -> anyhow::Result<(bool, String)> {
    let dir = tempfile::tempdir()?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_pdm"));
    command
        .env_clear()
        .current_dir(dir.path())
        .env("PDM__TLS__DIR", mesh.certificate_dir())
        .arg("audit")
        .args(args);
    for name in ["identity", "consent"] {
        if let Some(addr) = mesh.addr(name) {
            command.env(
                format!("PDM__SERVICES__{}__ENDPOINT", name.to_uppercase()),
                format!("http://{addr}"),
            );
        }
    }
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

/// `pdm audit verify` of both services; must fail naming `expected`.
async fn verify_fails(mesh: &Mesh, args: &[&str], expected: &str) -> anyhow::Result<String> {
    let mut all = vec!["verify", "--services", "identity,consent"];
    all.extend_from_slice(args);
    let (ok, out) = pdm_audit(mesh, &all).await?;
    assert!(!ok, "pdm audit verify passed a tampered trail: {out}");
    assert!(
        out.contains("TAMPERED") && out.contains(expected),
        "{expected:?} not in: {out}"
    );
    Ok(out)
}

/// Identity's trail checked through the API against what consent witnessed.
async fn verify_identity(mesh: &Mesh) -> anyhow::Result<VerifyAccessLogResponse> {
    let mut witnessed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = audit(mesh, "consent")?
            .list_witnessed_heads(ListWitnessedHeadsRequest {
                service: "identity".into(),
                page_size: 0,
                page_token,
            })
            .await?
            .into_inner();
        witnessed.extend(page.heads);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(audit(mesh, "identity")?
        .verify_access_log(VerifyAccessLogRequest {
            witnessed,
            checkpoint: None,
        })
        .await?
        .into_inner())
}

/// Whether a problem says the trail lost what consent witnessed: cut back (ROLLED_BACK)
/// or, once identity wrote again past the cut, rewritten (REWRITTEN).
fn lost_what_consent_saw(report: &VerifyAccessLogResponse) -> bool {
    report.problems.iter().any(|p| {
        matches!(p.kind(), Kind::RolledBack | Kind::Rewritten)
            && p.description.contains("witness consent")
    })
}

/// Rewrites identity's chain from scratch with `seal`, as an attacker with the database
/// and the public formula would, the head included.
async fn reseal_with(db: &DatabaseConnection, seal: &Seal) -> anyhow::Result<()> {
    let rows = store::page(db, 0, 100_000).await?;
    let mut prev = pdm_access_trail::chain::GENESIS.to_vec();
    for row in &rows {
        let mac = seal.seal(&prev, row.seq, &row.entry);
        db.execute(
            &Query::update()
                .table(AccessLog::Table)
                .values([
                    (AccessLog::PrevHash, prev.clone().into()),
                    (AccessLog::Hash, mac.clone().into()),
                ])
                .and_where(Expr::col(AccessLog::Seq).eq(row.seq))
                .to_owned(),
        )
        .await?;
        prev = mac;
    }
    let last = rows.last().map_or(0, |r| r.seq);
    db.execute(
        &Query::update()
            .table(AccessLogHead::Table)
            .values([
                (AccessLogHead::Seq, last.into()),
                (AccessLogHead::Hash, prev.into()),
            ])
            .to_owned(),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn heads_are_witnessed_and_an_untouched_mesh_verifies() -> anyhow::Result<()> {
    let mesh = mesh().await?;
    activity(&mesh, 3).await?;
    witnessed_at_least(&mesh, 4).await?;
    let report = verify_identity(&mesh).await?;
    assert!(report.intact, "{report:?}");
    // Consent is witnessed by identity in turn, in identity's trail (once consent's head
    // moved: it has entries of its own now, the witnessings).
    let started = std::time::Instant::now();
    loop {
        let by_identity = audit(&mesh, "identity")?
            .list_witnessed_heads(ListWitnessedHeadsRequest {
                service: "consent".into(),
                page_size: 0,
                page_token: String::new(),
            })
            .await?
            .into_inner()
            .heads;
        if !by_identity.is_empty() {
            break;
        }
        anyhow::ensure!(started.elapsed() < LIMIT, "consent never witnessed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (ok, out) = pdm_audit(&mesh, &["verify", "--services", "identity,consent"]).await?;
    assert!(ok, "{out}");
    assert!(out.contains("intact"), "{out}");
    // Only a service has its head witnessed, and only its own.
    let err = AuditServiceClient::new(mesh.channel_as("consent", &Caller::Admin)?)
        .witness_head(pdm_proto::audit::v1::WitnessHeadRequest {
            seq: 1,
            mac: vec![0; 32],
        })
        .await
        .expect_err("not a service");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let err =
        AuditServiceClient::new(mesh.channel_as("consent", &Caller::Service("identity".into()))?)
            .witness_head(pdm_proto::audit::v1::WitnessHeadRequest {
                seq: 0,
                mac: vec![0; 3],
            })
            .await
            .expect_err("bad head");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    Ok(())
}

#[tokio::test]
async fn an_edit_with_every_later_hash_and_the_head_recomputed_is_detected() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(pdm_identity::Identity).start().await?;
    activity(&mesh, 4).await?;
    let db = mesh.connect_db("identity").await?;
    let started = std::time::Instant::now();
    while head(&db).await?.0 < 5 {
        anyhow::ensure!(started.elapsed() < LIMIT, "trail not written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The old attack: make it look as if the privacy team read the data, then recompute
    // every hash after it and the head with the public SHA-256 formula.
    db.execute_unprepared("UPDATE access_log SET caller = 'admin' WHERE seq = 2")
        .await?;
    reseal_with(&db, &Seal::Legacy).await?;
    let report = audit(&mesh, "identity")?
        .verify_access_log(VerifyAccessLogRequest::default())
        .await?
        .into_inner();
    assert!(!report.intact);
    let edited: Vec<i64> = report
        .problems
        .iter()
        .filter(|p| p.kind() == Kind::Edited)
        .map(|p| p.seq)
        .collect();
    assert_eq!(edited, [1, 2, 3, 4, 5], "{report:?}");
    let (ok, out) = pdm_audit(&mesh, &["verify", "--services", "identity"]).await?;
    assert!(!ok && out.contains("entry 2 was edited"), "{out}");
    Ok(())
}

#[tokio::test]
async fn the_last_entry_deleted_and_the_head_moved_back_is_caught_by_the_witness()
-> anyhow::Result<()> {
    let mesh = mesh().await?;
    activity(&mesh, 4).await?;
    let top = witnessed_at_least(&mesh, 5).await?;
    let db = mesh.connect_db("identity").await?;
    // Cut the chain back before what consent saw, head included: the chain alone is whole.
    let cut = top - 1;
    db.execute_unprepared(&format!("DELETE FROM access_log WHERE seq > {cut}"))
        .await?;
    db.execute_unprepared(&format!(
        "UPDATE access_log_head SET seq = {cut}, hash = \
         (SELECT hash FROM access_log WHERE seq = {cut})"
    ))
    .await?;
    let report = verify_identity(&mesh).await?;
    assert!(!report.intact);
    assert!(lost_what_consent_saw(&report), "{report:?}");
    verify_fails(&mesh, &[], "witness consent").await?;
    Ok(())
}

#[tokio::test]
async fn a_wiped_trail_is_caught_by_the_witness() -> anyhow::Result<()> {
    let mesh = mesh().await?;
    activity(&mesh, 2).await?;
    witnessed_at_least(&mesh, 3).await?;
    let db = mesh.connect_db("identity").await?;
    db.execute_unprepared("DELETE FROM access_log").await?;
    db.execute_unprepared("DELETE FROM access_log_head").await?;
    let report = verify_identity(&mesh).await?;
    assert!(!report.intact);
    assert!(lost_what_consent_saw(&report), "{report:?}");
    verify_fails(&mesh, &[], "witness consent").await?;
    Ok(())
}

#[tokio::test]
async fn a_database_restored_from_an_older_copy_is_caught_by_witness_and_checkpoint()
-> anyhow::Result<()> {
    let mut mesh = mesh().await?;
    let subject = activity(&mesh, 2).await?;
    // The copy: identity's trail as it is now (a backup, or a snapshot of the file).
    mesh.stop("identity").await?;
    let db = mesh.connect_db("identity").await?;
    db.execute_unprepared("CREATE TABLE old_log AS SELECT * FROM access_log")
        .await?;
    db.execute_unprepared("CREATE TABLE old_head AS SELECT * FROM access_log_head")
        .await?;
    let copied = head(&db).await?.0;
    mesh.restart("identity").await?;
    for _ in 0..3 {
        mesh.identity()
            .get_account(GetAccountRequest {
                subject_id: subject.clone(),
            })
            .await?;
    }
    witnessed_at_least(&mesh, copied + 3).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("checkpoint.json");
    let file = file.to_str().expect("utf-8 path");
    let (ok, out) = pdm_audit(
        &mesh,
        &[
            "checkpoint",
            "--services",
            "identity,consent",
            "--out",
            file,
        ],
    )
    .await?;
    assert!(ok, "{out}");
    let (ok, out) = pdm_audit(
        &mesh,
        &[
            "verify",
            "--services",
            "identity,consent",
            "--checkpoint",
            file,
        ],
    )
    .await?;
    assert!(ok, "a fresh checkpoint verifies: {out}");

    // Restore the copy: every row of the trail as it was, a valid chain under the key.
    mesh.stop("identity").await?;
    db.execute_unprepared("DELETE FROM access_log").await?;
    db.execute_unprepared("DELETE FROM access_log_head").await?;
    db.execute_unprepared("INSERT INTO access_log SELECT * FROM old_log")
        .await?;
    db.execute_unprepared("INSERT INTO access_log_head SELECT * FROM old_head")
        .await?;
    mesh.restart("identity").await?;
    let alone = audit(&mesh, "identity")?
        .verify_access_log(VerifyAccessLogRequest::default())
        .await?
        .into_inner();
    assert!(
        alone.intact,
        "the copy is a whole chain by itself: {alone:?}"
    );
    let report = verify_identity(&mesh).await?;
    assert!(lost_what_consent_saw(&report), "{report:?}");
    verify_fails(&mesh, &[], "witness consent").await?;
    // The checkpoint catches it without any witness.
    let (ok, out) = pdm_audit(
        &mesh,
        &["verify", "--services", "identity", "--checkpoint", file],
    )
    .await?;
    assert!(!ok && out.contains("the checkpoint of"), "{out}");

    // An altered checkpoint does not verify.
    let text = std::fs::read_to_string(file)?;
    let forged = dir.path().join("forged.json");
    std::fs::write(&forged, text.replacen("\"seq\": ", "\"seq\": 1", 1))?;
    let (ok, out) = pdm_audit(
        &mesh,
        &[
            "verify",
            "--services",
            "identity",
            "--checkpoint",
            forged.to_str().expect("utf-8 path"),
        ],
    )
    .await?;
    assert!(!ok && out.contains("signature does not verify"), "{out}");
    Ok(())
}

#[tokio::test]
async fn a_trail_written_before_keys_is_resealed_once_and_a_broken_one_is_not() -> anyhow::Result<()>
{
    let mut mesh = TestMesh::new().with(pdm_identity::Identity).start().await?;
    let subject = activity(&mesh, 2).await?;
    mesh.stop("identity").await?;
    // As the previous release left it: a SHA-256 chain, the head's scheme 1.
    let db = mesh.connect_db("identity").await?;
    reseal_with(&db, &Seal::Legacy).await?;
    db.execute(
        &Query::update()
            .table(AccessLogHead::Table)
            .values([(HeadScheme::Scheme, 1.into())])
            .to_owned(),
    )
    .await?;
    mesh.restart("identity").await?;
    mesh.identity()
        .get_account(GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await?;
    let started = std::time::Instant::now();
    while head(&db).await?.0 < 4 {
        anyhow::ensure!(started.elapsed() < LIMIT, "trail not written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = audit(&mesh, "identity")?
        .verify_access_log(VerifyAccessLogRequest::default())
        .await?
        .into_inner();
    assert!(report.intact, "{report:?}");
    assert_eq!(report.entries, 4);

    // A legacy trail that was already tampered with is not blessed with the key.
    mesh.stop("identity").await?;
    reseal_with(&db, &Seal::Legacy).await?;
    db.execute_unprepared("UPDATE access_log SET caller = 'admin' WHERE seq = 2")
        .await?;
    db.execute(
        &Query::update()
            .table(AccessLogHead::Table)
            .values([(HeadScheme::Scheme, 1.into())])
            .to_owned(),
    )
    .await?;
    mesh.restart("identity").await?;
    let report = audit(&mesh, "identity")?
        .verify_access_log(VerifyAccessLogRequest::default())
        .await?
        .into_inner();
    assert!(!report.intact, "{report:?}");
    Ok(())
}
