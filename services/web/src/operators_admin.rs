//! What `pdm web operator add|list|disable` does, on the web's own database (like a
//! migration tool: the web front need not run). Tests call the same functions.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use pdm_runtime::Settings;
use sea_orm_migration::MigratorTrait as _;

use crate::{
    domain::{password, totp},
    settings::WebSettings,
    store::operators::{OperatorRow, Operators, TOTP_FIELD},
};

/// The issuer authenticator apps show beside the operator's name.
pub const ISSUER: &str = "pdm console";

/// The operators table of the web front `settings` configure, migrated.
pub async fn open(settings: &Settings) -> anyhow::Result<Operators> {
    let web: WebSettings = settings.checked()?;
    let target = crate::database_target(settings)?;
    let db = pdm_runtime::db::connect(settings, &target).await?;
    crate::store::migration::Migrator::up(&db, None)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "migrations failed: {}",
                pdm_runtime::error::db_error_kind(&e)
            )
        })?;
    Ok(Operators::new(
        db,
        chrono::Duration::minutes(i64::from(web.session_idle_minutes)),
        chrono::Duration::hours(i64::from(web.session_absolute_hours)),
    ))
}

/// Adds operator `name` with `password` and a fresh TOTP secret, sealed under `keyring`;
/// returns the provisioning URI (`otpauth://totp/…`), shown once and never kept in clear.
pub async fn add(
    operators: &Operators,
    keyring: &pdm_crypto::Keyring,
    name: &str,
    password_text: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    anyhow::ensure!(
        pdm_tls::identity::valid_operator(name),
        "the name: 1 to 64 lowercase letters, digits, '.', '-' or '_', starting with a letter"
    );
    password::check(password_text).map_err(|e| anyhow::anyhow!("the password: {e}"))?;
    let owned = password_text.to_owned();
    let hash = tokio::task::spawn_blocking(move || password::hash(&owned))
        .await?
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
    let mut secret = [0u8; totp::SECRET_LEN];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("randomness: {e}"))?;
    let (key, wrapped) = keyring
        .generate(&format!("operator:{name}"))
        .map_err(|e| anyhow::anyhow!("a data key: {e}"))?;
    let sealed = key
        .seal(TOTP_FIELD, &secret)
        .map_err(|e| anyhow::anyhow!("sealing the secret: {e}"))?;
    let added = operators
        .add(name, &hash, wrapped, sealed, now)
        .await
        .context("the operators table")?;
    anyhow::ensure!(added, "there is an operator {name} already");
    Ok(totp::provisioning_uri(ISSUER, name, &secret))
}

/// Every operator.
pub async fn list(operators: &Operators) -> anyhow::Result<Vec<OperatorRow>> {
    operators.list().await.context("the operators table")
}

/// Disables `name` and ends their sessions.
pub async fn disable(operators: &Operators, name: &str) -> anyhow::Result<()> {
    let done = operators
        .disable(name)
        .await
        .context("the operators table")?;
    anyhow::ensure!(done, "there is no operator {name}");
    Ok(())
}
