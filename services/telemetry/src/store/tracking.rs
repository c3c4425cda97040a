//! Logged-out visitors' tracking choices, keyed by the device pseudonym.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Statement,
};

use super::{Store, entities::tracking_choice};
use crate::{domain::tracking::Choice, error::Result};

/// Choices kept per device: a device recording choices in a loop cannot grow the table
/// past this many rows of its own.
pub const MAX_CHOICES_PER_DEVICE: u64 = 20;

/// A choice to record.
#[derive(Debug, Clone)]
pub struct NewChoice {
    /// What was chosen.
    pub choice: Choice,
    /// Cookie policy version shown.
    pub policy_version: String,
    /// SHA-256 of the banner text shown.
    pub text_hash: String,
}

impl Store {
    /// Records a device's choice (the latest counts) and deletes its choices beyond the
    /// last [`MAX_CHOICES_PER_DEVICE`].
    pub async fn record_choice(
        &self,
        device_hash: Vec<u8>,
        new: NewChoice,
        now: DateTime<Utc>,
    ) -> Result<tracking_choice::Model> {
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        let model = tracking_choice::Entity::insert(tracking_choice::ActiveModel {
            choice_id: NotSet,
            device_hash: Set(device_hash.clone()),
            analytics: Set(new.choice.analytics),
            advertising: Set(new.choice.advertising),
            gpc: Set(new.choice.gpc),
            policy_version: Set(new.policy_version),
            text_hash: Set(new.text_hash),
            recorded_at: Set(now),
        })
        .exec_with_returning(&txn)
        .await?;
        let (p1, p2, p3) = if self.postgres() {
            ("$1", "$2", "$3")
        } else {
            ("?", "?", "?")
        };
        txn.execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            format!(
                "DELETE FROM tracking_choices WHERE device_hash = {p1} AND choice_id NOT IN \
                 (SELECT choice_id FROM tracking_choices WHERE device_hash = {p2} \
                  ORDER BY choice_id DESC LIMIT {p3})"
            ),
            [
                device_hash.clone().into(),
                device_hash.into(),
                i64::try_from(MAX_CHOICES_PER_DEVICE)
                    .unwrap_or(i64::MAX)
                    .into(),
            ],
        ))
        .await?;
        txn.commit().await?;
        Ok(model)
    }

    /// The latest choice of each device among `device_hashes` recorded at or after
    /// `since` (older ones have lapsed).
    pub async fn current_choices(
        &self,
        device_hashes: &[Vec<u8>],
        since: DateTime<Utc>,
    ) -> Result<HashMap<Vec<u8>, tracking_choice::Model>> {
        let mut current = HashMap::with_capacity(device_hashes.len());
        for chunk in device_hashes.chunks(500) {
            let rows = tracking_choice::Entity::find()
                .filter(tracking_choice::Column::DeviceHash.is_in(chunk.to_vec()))
                .filter(tracking_choice::Column::RecordedAt.gte(since))
                .order_by_asc(tracking_choice::Column::ChoiceId)
                .all(&self.db)
                .await?;
            for row in rows {
                // In id order: the last one seen is the latest.
                current.insert(row.device_hash.clone(), row);
            }
        }
        Ok(current)
    }

    /// Deletes the choices recorded before `before` (lapsed). Returns how many.
    pub async fn purge_choices(&self, before: DateTime<Utc>) -> Result<u64> {
        Ok(tracking_choice::Entity::delete_many()
            .filter(tracking_choice::Column::RecordedAt.lt(before))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
