//! Identity's erasure receipts move to the mesh's one shape (`pdm_runtime::erasure`):
//! the receipt as the protobuf `ErasureReceipt` (it was JSON of identity's own struct), the
//! subject's blind index as hex text (it was bytes). The deletion reason, which only
//! identity records, moves to `deletion_reasons`. Rows are converted one by one: receipts
//! already given out must keep answering retries of their request ids.

use chrono::{DateTime, Utc};
use pdm_proto::{
    common::v1::LegalBasis,
    subject::v1::{ErasedItem, ErasureReceipt, RetainedItem},
};
use pdm_runtime::{convert::timestamp, erasure};
use sea_orm::{ConnectionTrait, Statement};
use sea_orm_migration::{prelude::*, schema::*};
use serde::Deserialize;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Erasures {
    Table,
}

#[derive(DeriveIden)]
enum ErasuresV1 {
    Table,
}

/// The subject's own reason for an account deletion, by erasure request id.
#[derive(DeriveIden)]
pub enum DeletionReasons {
    /// Table.
    Table,
    /// The erasure's request id.
    RequestId,
    /// `DeletionReason` name, or `erasure_request` for rights' fan-out.
    Reason,
}

/// The receipt as identity stored it before (JSON), frozen here.
#[derive(Deserialize)]
struct ReceiptV1 {
    request_id: String,
    erased: Vec<(String, u64)>,
    retained: Vec<RetainedV1>,
    completed_at: DateTime<Utc>,
    key_destroyed: bool,
    key_backups_gone_by: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct RetainedV1 {
    category: String,
    legal_basis: String,
    reason: String,
    count: u64,
}

impl ReceiptV1 {
    fn into_proto(self) -> ErasureReceipt {
        ErasureReceipt {
            request_id: self.request_id,
            subject_id: String::new(),
            service: crate::NAME.to_owned(),
            erased: self
                .erased
                .into_iter()
                .map(|(category, count)| ErasedItem { category, count })
                .collect(),
            retained: self
                .retained
                .into_iter()
                .map(|k| RetainedItem {
                    category: k.category,
                    legal_basis: LegalBasis::from_str_name(&k.legal_basis)
                        .unwrap_or(LegalBasis::Unspecified) as i32,
                    reason: k.reason,
                    retain_until: None,
                    count: k.count,
                })
                .collect(),
            completed_at: Some(timestamp(self.completed_at)),
            key_destroyed: self.key_destroyed,
            key_backups_gone_by: self.key_backups_gone_by.map(timestamp),
        }
    }
}

async fn create_reasons(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(DeletionReasons::Table)
                .if_not_exists()
                .col(string(DeletionReasons::RequestId).primary_key())
                .col(string(DeletionReasons::Reason))
                .to_owned(),
        )
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_reasons(manager).await?;
        if !manager.has_column("erasures", "reason").await? {
            return erasure::migration::create_table(manager).await;
        }
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        db.execute_raw(Statement::from_string(
            backend,
            "INSERT INTO deletion_reasons (request_id, reason) \
             SELECT request_id, reason FROM erasures",
        ))
        .await?;
        manager
            .rename_table(
                Table::rename()
                    .table(Erasures::Table, ErasuresV1::Table)
                    .to_owned(),
            )
            .await?;
        erasure::migration::create_table(manager).await?;
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT subject_ref, receipt, completed_at FROM erasures_v1",
            ))
            .await?;
        for row in rows {
            let subject_ref: Vec<u8> = row.try_get("", "subject_ref")?;
            let json: String = row.try_get("", "receipt")?;
            let completed_at: DateTime<Utc> = row.try_get("", "completed_at")?;
            let old: ReceiptV1 = serde_json::from_str(&json)
                .map_err(|e| DbErr::Migration(format!("an identity erasure receipt: {e}")))?;
            erasure::Receipts::insert(
                db,
                &erasure::hex_ref(&subject_ref),
                &old.into_proto(),
                completed_at,
            )
            .await?;
        }
        manager
            .drop_table(Table::drop().table(ErasuresV1::Table).to_owned())
            .await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The JSON shape is gone from the code; receipts stay in the shared shape.
        Err(DbErr::Migration(
            "identity's erasure receipts cannot move back to their JSON shape".into(),
        ))
    }
}
