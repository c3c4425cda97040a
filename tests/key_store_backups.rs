//! Key deletion reaches backups (policy, "How long we keep your information": "we may
//! retain all personal data you submit for longer period of time for backups"; "If you
//! ever decide to delete your account": "your account and all associated data will be
//! permanently deleted"). Subjects' data keys live in a key store apart from the data, so
//! a backup of every data database, restored after an erasure, opens nothing of the
//! erased subject; only a key store backup can, and those are deleted after
//! `crypto.key_backup_days` by `pdm keys backup`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    identity::v1::GetAccountRequest,
    subject::v1::{EraseSubjectRequest, ExportSubjectRequest},
};
use pdm_telemetry::Telemetry;
use pdm_testkit::{Backend, Mesh, TestMesh, assert::contains, fake::Person};
use sea_orm::ConnectionTrait;
use tonic::Code;

/// The services whose data databases hold data sealed with subjects' keys, or about them.
const DATA: [&str; 3] = ["identity", "consent", "telemetry"];

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(program).args(args).output()?;
    anyhow::ensure!(
        output.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Copies every data database (never a key store) the way an operator's backup would:
/// `VACUUM INTO` a file on SQLite, `pg_dump` of the service's schema on PostgreSQL.
async fn back_up(mesh: &Mesh, dir: &Path) -> anyhow::Result<Vec<(&'static str, PathBuf)>> {
    let mut copies = Vec::new();
    for service in DATA {
        let path = dir.join(format!("{service}.backup"));
        match mesh.backend() {
            Backend::Sqlite => {
                let db = mesh.connect_db(service).await?;
                db.execute_unprepared(&format!("VACUUM INTO '{}'", path.display()))
                    .await?;
            }
            Backend::Postgres => run(
                "pg_dump",
                &[
                    "--dbname",
                    &mesh.settings().database.url,
                    "--schema",
                    service,
                    "--format=custom",
                    "--file",
                    &path.display().to_string(),
                ],
            )?,
        }
        copies.push((service, path));
    }
    Ok(copies)
}

/// Stops the services, puts the copies back in place of their databases, starts them.
async fn restore(mesh: &mut Mesh, copies: &[(&'static str, PathBuf)]) -> anyhow::Result<()> {
    for (service, _) in copies {
        mesh.stop(service).await?;
    }
    for (service, path) in copies {
        match mesh.backend() {
            Backend::Sqlite => {
                for file in mesh.sqlite_files(service) {
                    std::fs::remove_file(file)?;
                }
                let live = mesh.settings().data_dir.join(format!("{service}.db"));
                std::fs::copy(path, live)?;
            }
            Backend::Postgres => {
                let url = &mesh.settings().database.url;
                run(
                    "psql",
                    &[url, "-c", &format!("DROP SCHEMA \"{service}\" CASCADE")],
                )?;
                run(
                    "pg_restore",
                    &["--dbname", url, &path.display().to_string()],
                )?;
            }
        }
    }
    for (service, _) in copies {
        mesh.restart(service).await?;
    }
    Ok(())
}

async fn erase(mesh: &Mesh, subject: &str) -> anyhow::Result<()> {
    for service in DATA {
        mesh.subject_data(service)
            .erase_subject(EraseSubjectRequest {
                request_id: format!("dsr-backup-{service}"),
                subject_id: subject.to_owned(),
            })
            .await?;
    }
    Ok(())
}

/// What an export of `subject` from `service` gives back: every record's text, or the
/// error that stopped it.
async fn exported(mesh: &Mesh, service: &str, subject: &str) -> String {
    let stream = mesh
        .subject_data(service)
        .export_subject(ExportSubjectRequest {
            subject_id: subject.to_owned(),
            request_id: String::new(),
        })
        .await;
    let mut text = String::new();
    match stream {
        Ok(stream) => {
            let mut stream = stream.into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(message)) => text.push_str(&format!("{message:?}")),
                    Ok(None) => break,
                    Err(status) => {
                        text.push_str(&format!("error {:?}", status.code()));
                        break;
                    }
                }
            }
        }
        Err(status) => text.push_str(&format!("error {:?}", status.code())),
    }
    text
}

/// The email identity answers for `subject` (None when the account has none).
async fn email_of(mesh: &Mesh, subject: &str) -> anyhow::Result<Option<String>> {
    let account = mesh
        .identity()
        .get_account(GetAccountRequest {
            subject_id: subject.to_owned(),
        })
        .await?
        .into_inner()
        .account;
    Ok(account.map(|a| a.email))
}

async fn key_store(mesh: &Mesh, service: &str) -> anyhow::Result<pdm_crypto::KeyStore> {
    let (root, _) = pdm_runtime::keys::load_kek(mesh.settings())?;
    pdm_runtime::key_store::connect(mesh.settings(), service, &root).await
}

#[tokio::test]
async fn a_restored_backup_of_every_data_database_opens_nothing_of_an_erased_subject()
-> anyhow::Result<()> {
    let mut mesh = TestMesh::new()
        .with(Identity)
        .with(Consent)
        .with(Telemetry)
        .start()
        .await?;
    let (person, subject) = mesh.person_with_data().await?;
    let bystander = Person::new();
    let other = mesh.sign_up(&bystander).await?;

    let dir = tempfile::tempdir()?;
    let copies = back_up(&mesh, dir.path()).await?;
    // A key store backup taken at the same time: the one thing that can undo an erasure.
    let identity_keys = key_store(&mesh, "identity").await?.export().await?;
    assert!(identity_keys.iter().any(|k| k.subject_id == subject));
    for (_, path) in &copies {
        let bytes = std::fs::read(path)?;
        for (what, value) in person.secrets() {
            assert!(
                !contains(&bytes, value),
                "a data backup holds the {what} in the clear"
            );
        }
    }

    erase(&mesh, &subject).await?;
    restore(&mut mesh, &copies).await?;

    // Through the APIs: the restored rows are there, but nothing of them opens.
    let err = mesh
        .identity()
        .get_account(GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await
        .expect_err("the restored account cannot be read");
    assert_eq!(err.code(), Code::NotFound);
    for service in ["identity", "telemetry"] {
        let text = exported(&mesh, service, &subject).await;
        for (what, value) in person.secrets() {
            assert!(
                !text.contains(value),
                "{service} exported the {what}: {text}"
            );
        }
    }
    // By reading the stores with the current KEK: no key for the subject anywhere, and no
    // data database holds keys at all.
    for service in ["identity", "telemetry"] {
        let store = key_store(&mesh, service).await?;
        assert!(
            store.find(&subject).await?.is_none(),
            "{service} key survived"
        );
        let db = mesh.connect_db(service).await?;
        let manager = sea_orm_migration::SchemaManager::new(&db);
        assert!(
            !manager.has_table("subject_keys").await?,
            "{service}'s data database holds keys"
        );
    }
    // Someone else restored with the same copies reads as before.
    assert_eq!(
        email_of(&mesh, &other).await?,
        Some(bystander.email.clone())
    );

    // The key store backup taken with the copies brings the erased person back: that is
    // the window `crypto.key_backup_days` bounds.
    key_store(&mesh, "identity")
        .await?
        .import(&identity_keys)
        .await?;
    assert_eq!(email_of(&mesh, &subject).await?, Some(person.email.clone()));
    Ok(())
}

/// `pdm keys` against the mesh's stores, with the mesh's configuration.
fn pdm_keys(mesh: &Mesh, extra: &[(&str, String)], args: &[&str]) -> anyhow::Result<String> {
    let settings = mesh.settings();
    let mut command = Command::new(env!("CARGO_BIN_EXE_pdm"));
    command
        .env_clear()
        .env("PDM__DATA_DIR", &settings.data_dir)
        .env("PDM__CRYPTO__KEK", &settings.crypto.kek)
        .arg("keys")
        .args(args);
    if !settings.database.url.is_empty() {
        command.env("PDM__DATABASE__URL", &settings.database.url);
        command.env("PDM__CRYPTO__KEY_STORE_URL", &settings.crypto.key_store_url);
    }
    for (key, value) in extra {
        command.env(key, value);
    }
    let output = command.output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    anyhow::ensure!(output.status.success(), "pdm keys {args:?} failed: {text}");
    Ok(text)
}

#[tokio::test]
async fn keys_are_rotated_to_a_new_kek_and_old_backups_are_purged_and_open_nothing()
-> anyhow::Result<()> {
    let mut mesh = TestMesh::new().with(Identity).start().await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let backups = tempfile::tempdir()?;
    let dir = (
        "PDM__CRYPTO__KEY_BACKUP_DIR",
        backups.path().display().to_string(),
    );

    // A backup from 40 days ago (past the default 35) and one from yesterday.
    let old = backups.path().join("keys-identity-20200101T000000Z.json");
    std::fs::write(&old, "{}")?;
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    let recent = backups.path().join(format!(
        "keys-identity-{}.json",
        yesterday.format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::write(&recent, "{}")?;
    let out = pdm_keys(&mesh, std::slice::from_ref(&dir), &["backup"])?;
    assert!(
        !old.exists(),
        "a backup past crypto.key_backup_days is deleted: {out}"
    );
    assert!(recent.exists(), "a recent backup stays: {out}");
    let written: Vec<PathBuf> = std::fs::read_dir(backups.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p != &recent)
        .collect();
    // identity's, telemetry's and rights' stores (the mesh's settings name all three).
    assert_eq!(written.len(), 3, "one backup per key store: {written:?}");
    let identity_backup = written
        .iter()
        .find(|p| p.display().to_string().contains("keys-identity-"))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no identity backup in {written:?}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&identity_backup)?.permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "a key backup is readable by its owner only"
        );
    }
    let text = std::fs::read_to_string(&identity_backup)?;
    assert!(text.contains(&subject) && !text.contains(&person.email));

    // Rotate to version 2 while the service runs, then retire version 1.
    let v2 = base64_key(7);
    let rotate = [("PDM__CRYPTO__WRAPPING_KEYS", format!("v2:{v2}"))];
    let out = pdm_keys(&mesh, &rotate, &["rotate"])?;
    assert!(
        out.contains("identity: 1 key(s) rewrapped under KEK version 2"),
        "{out}"
    );
    let retired = [
        ("PDM__CRYPTO__WRAPPING_KEYS", format!("v2:{v2}")),
        ("PDM__CRYPTO__RETIRE_KEK_BELOW", "2".to_owned()),
    ];
    let status = pdm_keys(&mesh, &retired, &["status"])?;
    assert!(status.contains("v2: 1"), "{status}");

    // The service, restarted on the retired configuration, still reads the person.
    mesh.stop("identity").await?;
    let crypto = &mut mesh.settings_mut().crypto;
    crypto.wrapping_keys = format!("v2:{v2}");
    crypto.retire_kek_below = 2;
    mesh.restart("identity").await?;
    assert_eq!(email_of(&mesh, &subject).await?, Some(person.email.clone()));

    // The backup from before the rotation is wrapped under the retired version: restored,
    // it opens nothing, and the tool says so.
    let store = key_store(&mesh, "identity").await?;
    assert!(store.destroy(&subject).await?);
    let out = pdm_keys(
        &mesh,
        &retired,
        &["restore", "--file", &identity_backup.display().to_string()],
    )?;
    assert!(out.contains("cannot be opened"), "{out}");
    assert!(
        store.find(&subject).await.is_err(),
        "a retired KEK opens nothing"
    );
    Ok(())
}

fn base64_key(byte: u8) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}
