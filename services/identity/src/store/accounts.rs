//! Accounts, profile photos, credentials and restriction.

use chrono::{DateTime, Utc};
use pdm_crypto::DataKey;
use pdm_proto::common::v1::Region;
use pdm_runtime::SubjectId;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect,
};

use super::{
    NewAccount, Profile, ProfileChanges, Store,
    entities::{account, profile_photo},
    open_opt,
};
use crate::{
    domain::{email::Email, organisation},
    error::{IdentityError, Result},
};

// Field names bound into each ciphertext's associated data.
const F_EMAIL: &str = "accounts.email";
const F_FIRST: &str = "accounts.first_name";
const F_LAST: &str = "accounts.last_name";
const F_PHONE: &str = "accounts.phone";
const F_BIRTH: &str = "accounts.birth_date";
const F_PHOTO: &str = "profile_photos.photo";
const F_ORGANISATION: &str = "accounts.organisation";

/// What sign-in needs of an account.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Subject id.
    pub subject_id: String,
    /// Blind index of the email.
    pub email_index: Vec<u8>,
    /// argon2id hash.
    pub password_hash: String,
}

impl Store {
    /// Creates an account, its data key and its sealed fields in one transaction.
    pub async fn create_account(&self, new: NewAccount, now: DateTime<Utc>) -> Result<Profile> {
        let email_index = self.email_index(new.email.as_str());
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        // The key store is another database: a key made here for a sign-up that is then
        // refused (a taken email) would outlive it, so it is destroyed again. Only a key
        // made here: a subject id that already has one keeps it.
        let subject = new.subject_id;
        let key_id = subject.to_string();
        let (key, made) = match self.keys.find(&key_id).await? {
            Some(key) => (key, false),
            None => (self.keys.create_or_find(&key_id, now).await?, true),
        };
        let stored = self.insert_account(txn, new, email_index, &key, now).await;
        if stored.is_err() && made {
            self.keys.destroy(&key_id).await?;
        }
        stored?;
        self.profile(&subject)
            .await?
            .ok_or(IdentityError::Internal("account vanished after insert"))
    }

    async fn insert_account(
        &self,
        txn: sea_orm::DatabaseTransaction,
        new: NewAccount,
        email_index: Vec<u8>,
        key: &DataKey,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let row = account::ActiveModel {
            subject_id: Set(new.subject_id.to_string()),
            email_index: Set(email_index),
            email: Set(key.seal_str(F_EMAIL, new.email.as_str())?),
            first_name: Set(key.seal_str(F_FIRST, &new.first_name)?),
            last_name: Set(key.seal_str(F_LAST, &new.last_name)?),
            phone: Set(new
                .phone
                .as_deref()
                .map(|p| key.seal_str(F_PHONE, p))
                .transpose()?),
            birth_date: Set(new
                .birth_date
                .map(|d| key.seal_str(F_BIRTH, &d.format("%Y-%m-%d").to_string()))
                .transpose()?),
            organisation: Set(seal_organisation(key, &new.email)?),
            region: Set(new.region.as_str_name().to_owned()),
            password_hash: Set(new.password_hash),
            restricted: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
        };
        match account::Entity::insert(row).exec(&txn).await {
            Ok(_) => {}
            Err(e) if pdm_runtime::error::is_unique_violation(&e) => {
                return Err(IdentityError::EmailTaken);
            }
            Err(e) => return Err(e.into()),
        }
        txn.commit().await?;
        Ok(())
    }

    /// The account's profile, opened.
    pub async fn profile(&self, subject: &SubjectId) -> Result<Option<Profile>> {
        let Some(row) = account::Entity::find_by_id(subject.to_string())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        // Whether there is a photo, without reading it.
        let has_photo = profile_photo::Entity::find_by_id(subject.to_string())
            .select_only()
            .column(profile_photo::Column::SubjectId)
            .into_tuple::<String>()
            .one(&self.db)
            .await?
            .is_some();
        let key = self.key(subject).await?;
        Ok(Some(open_profile(&key, &row, has_photo)?))
    }

    /// The profile and the photo (its content type and bytes) together, reading each row
    /// and the key once: what an export needs of both.
    pub async fn profile_and_photo(
        &self,
        subject: &SubjectId,
    ) -> Result<Option<(Profile, Option<(String, Vec<u8>)>)>> {
        let Some(row) = account::Entity::find_by_id(subject.to_string())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let photo = profile_photo::Entity::find_by_id(subject.to_string())
            .one(&self.db)
            .await?;
        let key = self.key(subject).await?;
        let profile = open_profile(&key, &row, photo.is_some())?;
        let photo = match photo {
            Some(photo) => Some(open_photo(key, photo).await?),
            None => None,
        };
        Ok(Some((profile, photo)))
    }

    /// Applies profile changes; `None` when the account does not exist.
    pub async fn update_profile(
        &self,
        subject: &SubjectId,
        changes: ProfileChanges,
        now: DateTime<Utc>,
    ) -> Result<Option<Profile>> {
        let txn = pdm_runtime::db::begin_write(&self.db).await?;
        let Some(row) = account::Entity::find_by_id(subject.to_string())
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        let key = self.key(subject).await?;
        let mut active = row.into_active_model();
        if let Some(first) = &changes.first_name {
            active.first_name = Set(key.seal_str(F_FIRST, first)?);
        }
        if let Some(last) = &changes.last_name {
            active.last_name = Set(key.seal_str(F_LAST, last)?);
        }
        if let Some(email) = &changes.email {
            active.email_index = Set(self.email_index(email.as_str()));
            active.email = Set(key.seal_str(F_EMAIL, email.as_str())?);
            active.organisation = Set(seal_organisation(&key, email)?);
        }
        if let Some(phone) = &changes.phone {
            active.phone = Set(phone
                .as_deref()
                .map(|p| key.seal_str(F_PHONE, p))
                .transpose()?);
        }
        if let Some(region) = changes.region {
            active.region = Set(region.as_str_name().to_owned());
        }
        if let Some(birth) = changes.birth_date {
            active.birth_date = Set(Some(
                key.seal_str(F_BIRTH, &birth.format("%Y-%m-%d").to_string())?,
            ));
        }
        active.updated_at = Set(now);
        match active.update(&txn).await {
            Ok(_) => {}
            Err(e) if pdm_runtime::error::is_unique_violation(&e) => {
                return Err(IdentityError::EmailTaken);
            }
            Err(e) => return Err(e.into()),
        }
        txn.commit().await?;
        self.profile(subject).await
    }

    /// Stores or replaces the photo (already checked). Sealing a 2 MiB photo takes a few
    /// milliseconds, so it runs on the blocking pool.
    pub async fn set_photo(
        &self,
        subject: &SubjectId,
        content_type: &'static str,
        photo: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let key = self.key(subject).await?;
        let size = i64::try_from(photo.len()).unwrap_or(i64::MAX);
        let sealed = tokio::task::spawn_blocking(move || key.seal(F_PHOTO, &photo))
            .await
            .map_err(|_| IdentityError::Internal("sealing task failed"))??;
        let row = profile_photo::ActiveModel {
            subject_id: Set(subject.to_string()),
            content_type: Set(content_type.to_owned()),
            size_bytes: Set(size),
            photo: Set(sealed),
            updated_at: Set(now),
        };
        profile_photo::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(profile_photo::Column::SubjectId)
                    .update_columns([
                        profile_photo::Column::ContentType,
                        profile_photo::Column::SizeBytes,
                        profile_photo::Column::Photo,
                        profile_photo::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The photo and its MIME type.
    pub async fn photo(&self, subject: &SubjectId) -> Result<Option<(String, Vec<u8>)>> {
        let Some(row) = profile_photo::Entity::find_by_id(subject.to_string())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let key = self.key(subject).await?;
        Ok(Some(open_photo(key, row).await?))
    }

    /// Sign-in data of the account with this email.
    pub async fn credentials_by_email(&self, email_index: &[u8]) -> Result<Option<Credentials>> {
        let row = account::Entity::find()
            .filter(account::Column::EmailIndex.eq(email_index.to_vec()))
            .one(&self.db)
            .await?;
        Ok(row.map(credentials))
    }

    /// Sign-in data of an account.
    pub async fn credentials(&self, subject: &SubjectId) -> Result<Option<Credentials>> {
        let row = account::Entity::find_by_id(subject.to_string())
            .one(&self.db)
            .await?;
        Ok(row.map(credentials))
    }

    /// The account's region, without opening any sealed field.
    pub async fn region(&self, subject: &SubjectId) -> Result<Option<Region>> {
        let row = account::Entity::find_by_id(subject.to_string())
            .one(&self.db)
            .await?;
        Ok(row.map(|r| Region::from_str_name(&r.region).unwrap_or(Region::Other)))
    }

    /// Whether the account is restricted; `None` when it does not exist.
    pub async fn restricted(&self, subject: &SubjectId) -> Result<Option<bool>> {
        let row = account::Entity::find_by_id(subject.to_string())
            .one(&self.db)
            .await?;
        Ok(row.map(|r| r.restricted))
    }

    /// Sets or lifts the restriction; returns whether the account exists.
    pub async fn set_restricted(&self, subject: &SubjectId, restricted: bool) -> Result<bool> {
        let result = account::Entity::update_many()
            .col_expr(
                account::Column::Restricted,
                sea_orm::sea_query::Expr::value(restricted),
            )
            .filter(account::Column::SubjectId.eq(subject.to_string()))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected > 0)
    }
}

/// The organisation key of the email, sealed: derived again at every email change so it
/// never outlives the address it came from.
fn seal_organisation(key: &pdm_crypto::DataKey, email: &Email) -> Result<Option<Vec<u8>>> {
    organisation::organisation_key(email)
        .map(|org| key.seal_str(F_ORGANISATION, &org))
        .transpose()
        .map_err(IdentityError::from)
}

fn credentials(row: account::Model) -> Credentials {
    Credentials {
        subject_id: row.subject_id,
        email_index: row.email_index,
        password_hash: row.password_hash,
    }
}

/// A photo's content type and bytes, opened off the async threads (photos are large).
async fn open_photo(key: DataKey, row: profile_photo::Model) -> Result<(String, Vec<u8>)> {
    let photo = tokio::task::spawn_blocking(move || key.open(F_PHOTO, &row.photo))
        .await
        .map_err(|_| IdentityError::Internal("opening task failed"))??;
    Ok((row.content_type, photo))
}

pub(super) fn open_profile(
    key: &pdm_crypto::DataKey,
    row: &account::Model,
    has_photo: bool,
) -> Result<Profile> {
    Ok(Profile {
        subject_id: row.subject_id.clone(),
        first_name: key.open_string(F_FIRST, &row.first_name)?,
        last_name: key.open_string(F_LAST, &row.last_name)?,
        email: key.open_string(F_EMAIL, &row.email)?,
        phone: open_opt(key, F_PHONE, row.phone.as_ref())?,
        region: Region::from_str_name(&row.region).unwrap_or(Region::Other),
        birth_date: open_opt(key, F_BIRTH, row.birth_date.as_ref())?,
        organisation: open_opt(key, F_ORGANISATION, row.organisation.as_ref())?,
        has_photo,
        restricted: row.restricted,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
