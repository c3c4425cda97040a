//! Identity's erasure receipts move from their own JSON shape to the mesh's
//! (`pdm_runtime::erasure`) without losing one: a receipt given out before the move answers
//! a retry of its request id after it, and the reason the person gave stays (policy,
//! account deletion: "provide a reason for deleting your account").

use chrono::{TimeZone, Utc};
use pdm_identity::migration::Migrator;
use pdm_runtime::erasure::{ReceiptError, Receipts, hex_ref};
use pdm_testkit::{Backend, TestDatabase};
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection,
    sea_query::{Alias, Query},
};
use sea_orm_migration::{MigratorTrait, SchemaManager};

/// The migrations released before the move.
const BEFORE_THE_MOVE: u32 = 6;

async fn database(
    test_db: &TestDatabase,
) -> anyhow::Result<(DatabaseConnection, Option<std::path::PathBuf>)> {
    match test_db.backend() {
        Backend::Sqlite => {
            let file =
                std::env::temp_dir().join(format!("pdm-receipts-{}.db", uuid::Uuid::now_v7()));
            let db = Database::connect(format!("sqlite://{}?mode=rwc", file.display())).await?;
            Ok((db, Some(file)))
        }
        Backend::Postgres => {
            let url = test_db
                .url()
                .ok_or_else(|| anyhow::anyhow!("no PostgreSQL url"))?;
            Ok((Database::connect(url).await?, None))
        }
    }
}

#[tokio::test]
async fn receipts_stored_before_the_move_answer_retries_after_it() -> anyhow::Result<()> {
    let test_db = TestDatabase::create(Backend::from_env()).await?;
    let (db, file) = database(&test_db).await?;
    Migrator::up(&db, Some(BEFORE_THE_MOVE)).await?;

    let subject = "0190a2b4-0000-7000-8000-000000000001";
    let blind = vec![0xde, 0xad, 0xbe, 0xef, 0x01];
    let completed = Utc
        .with_ymd_and_hms(2026, 11, 30, 9, 15, 0)
        .single()
        .expect("a time");
    let json = serde_json::json!({
        "request_id": "req-1",
        "erased": [["account.profile", 1], ["account.session", 3]],
        "retained": [{
            "category": "billing.record",
            "legal_basis": "LEGAL_BASIS_LEGAL_OBLIGATION",
            "reason": "kept for tax law",
            "count": 2,
            // Receipts from before the schedule moved to retention carried a date.
            "retain_until": "2034-11-30T09:15:00Z",
        }],
        "completed_at": completed,
        "key_destroyed": true,
        "key_backups_gone_by": "2026-12-30T09:15:00Z",
    });
    for (request_id, reason) in [
        ("req-1", "DELETION_REASON_PRIVACY_CONCERNS"),
        ("req-2", "erasure_request"),
    ] {
        let mut receipt = json.clone();
        receipt["request_id"] = request_id.into();
        let insert = Query::insert()
            .into_table(Alias::new("erasures"))
            .columns(
                [
                    "request_id",
                    "subject_ref",
                    "receipt",
                    "reason",
                    "completed_at",
                ]
                .map(Alias::new),
            )
            .values_panic([
                request_id.into(),
                blind.clone().into(),
                receipt.to_string().into(),
                reason.into(),
                completed.into(),
            ])
            .to_owned();
        db.execute(&insert).await?;
    }

    Migrator::up(&db, None).await?;

    let manager = SchemaManager::new(&db);
    assert!(!manager.has_column("erasures", "reason").await?);
    let receipts = Receipts::new(db.clone());
    let receipt = receipts
        .find("req-1", subject, &hex_ref(&blind))
        .await?
        .expect("the receipt moved");
    assert_eq!(receipt.subject_id, subject);
    assert_eq!(receipt.service, "identity");
    assert_eq!(
        receipt
            .erased
            .iter()
            .map(|e| (e.category.as_str(), e.count))
            .collect::<Vec<_>>(),
        [("account.profile", 1), ("account.session", 3)]
    );
    assert_eq!(receipt.retained.len(), 1);
    assert_eq!(receipt.retained[0].category, "billing.record");
    assert_eq!(receipt.retained[0].count, 2);
    assert_eq!(receipt.retained[0].retain_until, None);
    assert_eq!(
        receipt.retained[0].legal_basis,
        pdm_proto::common::v1::LegalBasis::LegalObligation as i32
    );
    assert!(receipt.key_destroyed);
    assert_eq!(
        receipt.completed_at,
        Some(pdm_runtime::convert::timestamp(completed))
    );
    assert!(receipt.key_backups_gone_by.is_some());
    assert!(matches!(
        receipts.find("req-1", subject, "another").await,
        Err(ReceiptError::Reused)
    ));

    let reasons = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT request_id, reason FROM deletion_reasons ORDER BY request_id",
        ))
        .await?
        .into_iter()
        .map(|row| -> Result<(String, String), sea_orm::DbErr> {
            Ok((row.try_get("", "request_id")?, row.try_get("", "reason")?))
        })
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(
        reasons,
        [
            (
                "req-1".to_owned(),
                "DELETION_REASON_PRIVACY_CONCERNS".to_owned()
            ),
            ("req-2".to_owned(), "erasure_request".to_owned()),
        ]
    );
    db.close().await?;
    if let Some(file) = file {
        std::fs::remove_file(file)?;
    }
    Ok(())
}
