//! Billing contacts.

use chrono::{DateTime, Utc};
use pdm_runtime::SubjectId;
use sea_orm::{ActiveValue::Set, EntityTrait, sea_query::OnConflict};

use super::{Billing, Store, entities::billing_contact, open_opt};
use crate::error::Result;

const F_NAME: &str = "billing_contacts.name";
const F_EMAIL: &str = "billing_contacts.email";
const F_PHONE: &str = "billing_contacts.phone";
const F_REF: &str = "billing_contacts.processor_ref";

impl Store {
    /// Stores or replaces the billing contact.
    pub async fn set_billing(
        &self,
        subject: &SubjectId,
        billing: &Billing,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let key = self.key(subject).await?;
        let row = billing_contact::ActiveModel {
            subject_id: Set(subject.to_string()),
            name: Set(key.seal_str(F_NAME, &billing.name)?),
            email: Set(key.seal_str(F_EMAIL, &billing.email)?),
            phone: Set(billing
                .phone
                .as_deref()
                .map(|p| key.seal_str(F_PHONE, p))
                .transpose()?),
            processor_ref: Set(key.seal_str(F_REF, &billing.processor_ref)?),
            updated_at: Set(now),
        };
        billing_contact::Entity::insert(row)
            .on_conflict(
                OnConflict::column(billing_contact::Column::SubjectId)
                    .update_columns([
                        billing_contact::Column::Name,
                        billing_contact::Column::Email,
                        billing_contact::Column::Phone,
                        billing_contact::Column::ProcessorRef,
                        billing_contact::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The billing contact.
    pub async fn billing(&self, subject: &SubjectId) -> Result<Option<Billing>> {
        let Some(row) = billing_contact::Entity::find_by_id(subject.to_string())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let key = self.key(subject).await?;
        Ok(Some(open_billing(&key, &row)?))
    }
}

pub(super) fn open_billing(
    key: &pdm_crypto::DataKey,
    row: &billing_contact::Model,
) -> Result<Billing> {
    Ok(Billing {
        name: key.open_string(F_NAME, &row.name)?,
        email: key.open_string(F_EMAIL, &row.email)?,
        phone: open_opt(key, F_PHONE, row.phone.as_ref())?,
        processor_ref: key.open_string(F_REF, &row.processor_ref)?,
    })
}
