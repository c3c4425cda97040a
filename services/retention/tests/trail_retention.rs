//! Access trails have a retention rule too (issue 16; policy, "How long we keep your
//! information": "for eight years after that to identify any issues, resolve any legal
//! proceedings"): a purge run deletes every service's trail entries past `audit.access`,
//! and the trail still verifies, against a checkpoint signed before the purge too;
//! deleting more than the purge did is still found.

mod support;

use chrono::Months;
use pdm_proto::audit::v1::{
    GetSignedHeadRequest, ListAccessesRequest, VerifyAccessLogRequest,
    audit_service_client::AuditServiceClient, problem::Kind,
};
use pdm_runtime::{
    ManualClock,
    sea_orm::{ConnectionTrait, Statement},
};
use pdm_testkit::{Mesh, assert::rows, eventually_every, start_time};
use pdm_tls::identity::Caller;
use support::{POLL, WAIT, analytics_user, count, mesh, run_purge, sign_in};
use tonic::transport::Channel;

const TRAIL: &str = "audit.access";

fn audit(mesh: &Mesh, service: &str) -> anyhow::Result<AuditServiceClient<Channel>> {
    Ok(AuditServiceClient::new(
        mesh.channel_as(service, &Caller::Admin)?,
    ))
}

/// Identity's trail once an entry from `year` on is written: `(entries before that
/// year, last position)`. The writer appends in order, so every earlier entry is in.
async fn settled(mesh: &Mesh, year: i32) -> anyhow::Result<(i64, i64)> {
    let db = mesh.connect_db("identity").await?;
    let since = format!("{year}-01-01");
    let count = |condition: String| {
        let db = db.clone();
        async move {
            let backend = db.get_database_backend();
            let row = db
                .query_one_raw(Statement::from_string(
                    backend,
                    format!(
                        "SELECT COUNT(*) AS n, MAX(seq) AS last FROM access_log WHERE {condition}"
                    ),
                ))
                .await?
                .ok_or_else(|| anyhow::anyhow!("no count"))?;
            Ok::<_, anyhow::Error>((
                row.try_get::<i64>("", "n")?,
                row.try_get::<Option<i64>>("", "last")?.unwrap_or(0),
            ))
        }
    };
    eventually_every("the trail's writer", WAIT, POLL, || {
        let count = &count;
        let since = since.clone();
        async move {
            let (recent, last) = count(format!("at >= '{since}'")).await?;
            if recent == 0 {
                return Ok(None);
            }
            let (before, _) = count(format!("at < '{since}'")).await?;
            Ok(Some((before, last)))
        }
    })
    .await
}

#[tokio::test]
async fn old_trail_entries_go_and_the_trail_still_verifies() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock, Vec::new()).await?;
    let (ada, a) = analytics_user(&mesh).await?;
    sign_in(&mesh, &ada).await?;
    // Retention's own trail records this read of the subject's schedule; its own run
    // purges it later.
    pdm_proto::retention::v1::retention_service_client::RetentionServiceClient::new(
        mesh.channel_as("retention", &Caller::Admin)?,
    )
    .get_schedule(pdm_proto::retention::v1::GetScheduleRequest {
        subject_id: a.clone(),
    })
    .await?;
    let (_, before_purge) = settled(&mesh, 2026).await?;
    let mut identity = audit(&mesh, "identity")?;
    let checkpoint = identity
        .get_signed_head(GetSignedHeadRequest::default())
        .await?
        .into_inner()
        .head;
    let old_accesses = identity
        .list_accesses(ListAccessesRequest {
            subject_id: a.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .accesses
        .len();
    assert!(old_accesses > 0, "the sign-up was recorded");
    // Eight years and a day on: past the eight years of an access.
    clock.set(start_time() + Months::new(12 * 8) + chrono::Duration::days(1));
    sign_in(&mesh, &ada).await?;
    let (old, head) = settled(&mesh, 2034).await?;
    assert!(old >= before_purge && head > old);

    // Retention is no target of its runs, yet its own trail obeys the same rule.
    let retention_db = mesh.connect_db("retention").await?;
    let old_in_retention = |db: pdm_runtime::sea_orm::DatabaseConnection| async move {
        let backend = db.get_database_backend();
        let row = db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT COUNT(*) AS n FROM access_log WHERE at < '2034-01-01'".to_owned(),
            ))
            .await?
            .ok_or_else(|| anyhow::anyhow!("no count"))?;
        Ok::<_, anyhow::Error>(row.try_get::<i64>("", "n")?)
    };
    eventually_every("retention's own trail", WAIT, POLL, || {
        let db = retention_db.clone();
        async move { Ok((old_in_retention(db).await? > 0).then_some(())) }
    })
    .await?;

    let mut retention = mesh.retention();
    let (_, dry) = run_purge(&mut retention, true).await?;
    assert_eq!(count(&dry, "identity", TRAIL).0, u64::try_from(old)?);
    let db = mesh.connect_db("identity").await?;
    assert_eq!(
        rows(&db, "access_log").await,
        u64::try_from(head)?,
        "a dry run deletes nothing"
    );

    let (_, run) = run_purge(&mut retention, false).await?;
    assert_eq!(
        count(&run, "identity", TRAIL),
        (u64::try_from(old)?, 0, Vec::new())
    );
    assert!(
        count(&run, "consent", TRAIL).0 > 0,
        "every service purges its trail"
    );

    // Only the recent accesses are left; the trail verifies from where it now starts,
    // with the checkpoint signed before the purge as well.
    let left = identity
        .list_accesses(ListAccessesRequest {
            subject_id: a.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .accesses;
    assert!(left.iter().all(|x| x.seq > old), "{left:?}");
    assert!(!left.is_empty(), "the recent sign-in is kept");
    let verified = identity
        .verify_access_log(VerifyAccessLogRequest {
            witnessed: Vec::new(),
            checkpoint,
        })
        .await?
        .into_inner();
    assert!(verified.intact, "{:?}", verified.problems);
    assert_eq!(
        verified.entries,
        u64::try_from(head - old + 1)?,
        "the kept entries and the purge entry"
    );

    assert_eq!(old_in_retention(retention_db.clone()).await?, 0);
    let own = audit(&mesh, "retention")?
        .verify_access_log(VerifyAccessLogRequest::default())
        .await?
        .into_inner();
    assert!(own.intact, "{:?}", own.problems);

    // Deleting one more entry is not a purge.
    db.execute_unprepared(&format!("DELETE FROM access_log WHERE seq = {}", old + 1))
        .await?;
    let tampered = identity
        .verify_access_log(VerifyAccessLogRequest::default())
        .await?
        .into_inner();
    assert!(!tampered.intact);
    assert!(
        tampered
            .problems
            .iter()
            .any(|p| p.kind == Kind::Missing as i32),
        "{:?}",
        tampered.problems
    );
    Ok(())
}
