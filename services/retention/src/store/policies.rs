//! Policy versions: the latest version of each category is in force.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder};

use super::{CONFIG_AUTHOR, SEED_AUTHOR, Store, entities::policy_version};
use crate::{
    domain::policy::Policy,
    error::{Result, RetentionError},
};

/// Whether a stored version says what `policy` says.
fn same(row: &policy_version::Model, policy: &Policy) -> bool {
    row.years == i32::try_from(policy.period.years).unwrap_or(-1)
        && row.months == i32::try_from(policy.period.months).unwrap_or(-1)
        && row.days == i32::try_from(policy.period.days).unwrap_or(-1)
        && row.trigger == policy.trigger.as_str_name()
        && row.legal_basis == policy.legal_basis.as_str_name()
        && row.description == policy.description
}

fn row(
    policy: &Policy,
    version: i32,
    changed_by: &str,
    now: DateTime<Utc>,
) -> policy_version::Model {
    policy_version::Model {
        category: policy.category.clone(),
        version,
        years: i32::try_from(policy.period.years).unwrap_or(i32::MAX),
        months: i32::try_from(policy.period.months).unwrap_or(i32::MAX),
        days: i32::try_from(policy.period.days).unwrap_or(i32::MAX),
        trigger: policy.trigger.as_str_name().to_owned(),
        legal_basis: policy.legal_basis.as_str_name().to_owned(),
        description: policy.description.clone(),
        changed_by: changed_by.to_owned(),
        effective_from: now,
    }
}

impl Store {
    /// The policies in force: the latest version of each category, by category.
    pub async fn policies(&self) -> Result<Vec<policy_version::Model>> {
        let rows = policy_version::Entity::find()
            .order_by_asc(policy_version::Column::Category)
            .order_by_desc(policy_version::Column::Version)
            .all(&self.db)
            .await?;
        let mut latest: Vec<policy_version::Model> = Vec::new();
        for row in rows {
            if latest.last().is_none_or(|l| l.category != row.category) {
                latest.push(row);
            }
        }
        Ok(latest)
    }

    /// Every version of a category, newest first.
    pub async fn policy_versions(&self, category: &str) -> Result<Vec<policy_version::Model>> {
        Ok(policy_version::Entity::find()
            .filter(policy_version::Column::Category.eq(category))
            .order_by_desc(policy_version::Column::Version)
            .all(&self.db)
            .await?)
    }

    async fn latest_version(&self, category: &str) -> Result<Option<policy_version::Model>> {
        Ok(policy_version::Entity::find()
            .filter(policy_version::Column::Category.eq(category))
            .order_by_desc(policy_version::Column::Version)
            .one(&self.db)
            .await?)
    }

    /// Stores a version unless that version number exists already: `false` then.
    async fn insert_version(&self, row: policy_version::Model) -> Result<bool> {
        let result = policy_version::Entity::insert(row.into_active_model())
            .on_conflict_do_nothing()
            .exec(&self.db)
            .await?;
        Ok(!matches!(result, sea_orm::TryInsertResult::Conflicted))
    }

    /// Makes `policy` the one in force for its category, as a new version by
    /// `changed_by`; a policy identical to the one in force changes nothing. Returns the
    /// version in force and whether it is new.
    pub async fn upsert_policy(
        &self,
        policy: &Policy,
        changed_by: &str,
        now: DateTime<Utc>,
    ) -> Result<(policy_version::Model, bool)> {
        // Two concurrent changes of one category race for the next version number; the
        // loser reads again and goes on top.
        for _ in 0..5 {
            let current = self.latest_version(&policy.category).await?;
            if let Some(current) = &current
                && same(current, policy)
            {
                return Ok((current.clone(), false));
            }
            let version = current.map_or(1, |c| c.version.saturating_add(1));
            let new = row(policy, version, changed_by, now);
            if self.insert_version(new.clone()).await? {
                return Ok((new, true));
            }
        }
        Err(RetentionError::Internal("policy version kept changing"))
    }

    /// Writes the seed and configured policies at start: version 1 of every category
    /// that has none, and a new version where the configuration now says something else
    /// and no operator has changed the policy since (an operator's change wins over the
    /// configuration). Returns the categories whose configured policy was not applied.
    pub async fn seed_policies(
        &self,
        policies: &[Policy],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        let mut overridden = Vec::new();
        for policy in policies {
            match self.latest_version(&policy.category).await? {
                None => {
                    // Another replica starting at the same time may win: fine, same seed.
                    self.insert_version(row(policy, 1, SEED_AUTHOR, now))
                        .await?;
                }
                Some(current) if same(&current, policy) => {}
                Some(current)
                    if current.changed_by == SEED_AUTHOR || current.changed_by == CONFIG_AUTHOR =>
                {
                    let next = current.version.saturating_add(1);
                    self.insert_version(row(policy, next, CONFIG_AUTHOR, now))
                        .await?;
                }
                Some(_) => overridden.push(policy.category.clone()),
            }
        }
        Ok(overridden)
    }
}

/// A stored version as the rules see it.
pub fn to_policy(row: &policy_version::Model) -> Policy {
    use pdm_proto::{common::v1::LegalBasis, subject::v1::RetentionTrigger};
    let unsigned = |n: i32| u32::try_from(n).unwrap_or(0);
    Policy {
        category: row.category.clone(),
        period: crate::domain::period::Period {
            years: unsigned(row.years),
            months: unsigned(row.months),
            days: unsigned(row.days),
        },
        trigger: RetentionTrigger::from_str_name(&row.trigger).unwrap_or_default(),
        legal_basis: LegalBasis::from_str_name(&row.legal_basis).unwrap_or_default(),
        description: row.description.clone(),
    }
}
