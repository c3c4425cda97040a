//! A web front started in-process against a real mesh (identity and consent on
//! ephemeral ports, over mutual TLS as `svc/web`), with the test kit's small browser
//! (`pdm_testkit::web`: HTTP/1.1, a connection per request, a cookie jar).
#![allow(dead_code)]

use std::{net::SocketAddr, sync::Arc};

use pdm_runtime::SharedClock;
use pdm_testkit::{Mesh, TestMesh, fake::Person, web::Front};

pub use pdm_testkit::web::Browser;

/// A mesh with the web front in front of it.
pub struct Site {
    pub mesh: Mesh,
    pub addr: SocketAddr,
    /// The web front's key-encryption key (operators' TOTP secrets are sealed under it).
    pub kek: [u8; 32],
    front: Front,
}

impl Site {
    /// Identity and consent, then the web front on the mesh's settings plus `web`
    /// settings (`("web.sign_in_attempts", "3")`), reading `clock` (the system's if None).
    pub async fn start(
        settings: &[(&str, &str)],
        clock: Option<SharedClock>,
    ) -> anyhow::Result<Self> {
        let builder = TestMesh::new()
            .with(pdm_identity::Identity)
            .with(pdm_consent::Consent);
        Self::start_on(builder, settings, clock).await
    }

    /// [`Site::start`] with the rights service too (its requests fanning out to identity
    /// and consent; its messages to a file in the data directory).
    pub async fn start_with_rights(settings: &[(&str, &str)]) -> anyhow::Result<Self> {
        let builder = TestMesh::new()
            .with(pdm_identity::Identity)
            .with(pdm_consent::Consent)
            .with(pdm_rights::Rights)
            .setting("rights.services", "identity,consent")
            .setting("rights.retention", "false");
        Self::start_on(builder, settings, None).await
    }

    /// The console's mesh: identity, consent, rights, transfers and retention (purge runs
    /// asking identity and consent; no scheduled purge).
    pub async fn start_console(clock: SharedClock) -> anyhow::Result<Self> {
        let builder = TestMesh::new()
            .with(pdm_identity::Identity)
            .with(pdm_consent::Consent)
            .with(pdm_rights::Rights)
            .with(pdm_transfers::Transfers)
            .with(pdm_retention::Retention)
            .with(pdm_incidents::Incidents)
            .clock(clock.clone())
            .setting("rights.services", "identity,consent")
            .setting("rights.retention", "false")
            .setting("retention.services", "identity,consent")
            .setting("retention.purge_interval_minutes", 0);
        Self::start_on(builder, &[], Some(clock)).await
    }

    /// Adds a console operator through what `pdm web operator add` runs; the TOTP
    /// provisioning URI.
    pub async fn operator(&self, name: &str, password: &str) -> anyhow::Result<String> {
        let operators = pdm_web::operators_admin::open(self.mesh.settings()).await?;
        let keyring = pdm_crypto::Keyring::new(&self.kek);
        pdm_web::operators_admin::add(&operators, &keyring, name, password, chrono::Utc::now())
            .await
    }

    async fn start_on(
        mut builder: TestMesh,
        settings: &[(&str, &str)],
        clock: Option<SharedClock>,
    ) -> anyhow::Result<Self> {
        for (key, value) in settings {
            builder = builder.setting(key, value);
        }
        let mesh = builder.start().await?;
        let clock = clock.unwrap_or_else(|| Arc::new(pdm_runtime::SystemClock));
        let front = Front::start(&mesh, clock, pdm_web::run).await?;
        Ok(Self {
            mesh,
            addr: front.addr,
            kek: front.kek,
            front,
        })
    }

    /// Signs a fresh person up through identity.
    pub async fn person(&self) -> anyhow::Result<(Person, String)> {
        let person = Person::new();
        let subject = self.mesh.sign_up(&person).await?;
        Ok((person, subject))
    }

    /// A direct look at the web's own sessions table.
    pub async fn sessions(&self) -> anyhow::Result<pdm_web::store::Sessions> {
        let target = pdm_web::database_target(self.mesh.settings())?;
        let db = pdm_runtime::db::connect(self.mesh.settings(), &target).await?;
        Ok(pdm_web::store::Sessions::new(
            db,
            chrono::Duration::minutes(30),
            chrono::Duration::hours(12),
        ))
    }

    /// Stops the web front.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.front.stop().await
    }
}
