//! What the rights service's tests share: a mesh of every data-holding service with the
//! rights service, people with data in each service, and short calls for submitting,
//! watching and downloading requests.
//!
//! Each test file uses a different part of this module.
#![allow(dead_code)]

pub mod relay;

use std::{path::Path, time::Duration};

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    rights::v1::{self as pb, Credential, credential},
    transfers::v1::{
        AuthorizeTransferRequest, PartyRole, RecipientRole, Regime, RegisterRecipientRequest,
    },
};
use pdm_rights::Rights;
use pdm_telemetry::Telemetry;
use pdm_testkit::{Mesh, TestMesh, fake::Person};
use pdm_transfers::Transfers;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

pub use pdm_testkit::eventually;

/// The data-holding services every test mesh runs, in the order tasks are listed.
pub const DATA_SERVICES: [&str; 4] = ["consent", "identity", "telemetry", "transfers"];

/// Every service with the rights service, without retention (built elsewhere), messages
/// written to `outbox`. Add settings or a clock before starting.
pub fn builder(outbox: &Path) -> TestMesh {
    TestMesh::new()
        .with(Identity)
        .with(Consent)
        .with(Telemetry)
        .with(Transfers)
        .with(Rights)
        .setting("rights.retention", "false")
        .setting("rights.outbox_file", outbox.display())
}

/// [`builder`] sending messages through the plaintext test relay at `addr` ([`relay`]):
/// loopback, so `rights.smtp_tls = none` is allowed (TLS is tested against a real server
/// in smtp_delivery.rs). Failed attempts are retried every second or two, and not given up.
pub fn builder_with_relay(outbox: &Path, addr: &str) -> TestMesh {
    builder(outbox)
        .setting("rights.smtp_relay", addr)
        .setting("rights.smtp_tls", "none")
        .setting("rights.smtp_retry_secs", "1")
        .setting("rights.smtp_max_retry_secs", "2")
        .setting("rights.smtp_max_attempts", "100")
}

/// [`builder`], started.
pub async fn mesh(outbox: &Path) -> anyhow::Result<Mesh> {
    builder(outbox).start().await
}

/// A person in the EEA with an account, analytics consent and five usage events.
pub async fn person_with_data(mesh: &Mesh) -> anyhow::Result<(Person, String)> {
    mesh.person_with_data().await
}

/// Registers a processor in Germany (adequate for EU exports, so no mechanism is needed)
/// and sends the subject's profile to it; returns the recipient's name.
pub async fn disclose(mesh: &Mesh, subject: &str, key: &str) -> anyhow::Result<String> {
    let mut transfers = mesh.transfers();
    let recipient = transfers
        .register_recipient(RegisterRecipientRequest {
            recipient: Some(pdm_proto::transfers::v1::Recipient {
                key: key.to_owned(),
                name: format!("Backup GmbH {key}"),
                role: RecipientRole::Processor as i32,
                country: "DE".into(),
                purposes: vec!["service_provision".into()],
                data_categories: vec!["account.profile".into()],
                contract_reference: format!("DPA-{key}"),
                contract_date: "2024-01-10".into(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .recipient
        .expect("recipient");
    let decision = transfers
        .authorize_transfer(AuthorizeTransferRequest {
            regime: Regime::Eu as i32,
            recipient_id: recipient.recipient_id.clone(),
            data_categories: vec!["account.profile".into()],
            purpose: "service_provision".into(),
            subject_id: subject.to_owned(),
            exporter_role: PartyRole::Controller as i32,
            reference: format!("nightly-backup-{key}"),
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .expect("decision");
    assert!(decision.allowed, "{decision:?}");
    Ok(recipient.name)
}

/// The account password as a credential.
pub fn password(person: &Person) -> Option<Credential> {
    Some(Credential {
        credential: Some(credential::Credential::Password(person.password.clone())),
    })
}

/// A request of `kind` under `regime` for `subject`, proved by the person's password.
pub fn request(
    kind: pb::RequestKind,
    regime: pb::Regime,
    subject: &str,
    person: &Person,
) -> pb::SubmitRequestRequest {
    pb::SubmitRequestRequest {
        kind: kind as i32,
        regime: regime as i32,
        subject_id: subject.to_owned(),
        credential: password(person),
        ..Default::default()
    }
}

/// Someone living in California (CCPA requests).
pub fn californian() -> Person {
    Person {
        region: pdm_proto::common::v1::Region::UsCa,
        ..Person::new()
    }
}

/// A credential that does not prove anything.
pub fn wrong_password() -> Option<Credential> {
    Some(Credential {
        credential: Some(credential::Credential::Password(
            "not the password at all".into(),
        )),
    })
}

/// The privacy team vouches for the subject (checked out of band).
pub fn operator(reference: &str) -> Option<Credential> {
    Some(Credential {
        credential: Some(credential::Credential::OperatorReference(
            reference.to_owned(),
        )),
    })
}

/// Submits a request and returns it as stored.
pub async fn submit(
    mesh: &Mesh,
    request: pb::SubmitRequestRequest,
) -> anyhow::Result<pb::DataSubjectRequest> {
    Ok(mesh
        .rights()
        .submit_request(request)
        .await?
        .into_inner()
        .request
        .expect("request"))
}

/// Submits a request as `caller` (the privacy team vouches as `admin`).
pub async fn submit_as(
    mesh: &Mesh,
    caller: &pdm_tls::identity::Caller,
    request: pb::SubmitRequestRequest,
) -> anyhow::Result<pb::DataSubjectRequest> {
    Ok(
        pdm_proto::rights::v1::rights_service_client::RightsServiceClient::new(
            mesh.channel_as("rights", caller)?,
        )
        .submit_request(request)
        .await?
        .into_inner()
        .request
        .expect("request"),
    )
}

/// A request as GetRequest shows it.
pub async fn get(mesh: &Mesh, request_id: &str) -> anyhow::Result<pb::DataSubjectRequest> {
    Ok(mesh
        .rights()
        .get_request(pb::GetRequestRequest {
            request_id: request_id.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .request
        .expect("request"))
}

/// Watches a request until it ends (at most 60 s) and returns its last state.
pub async fn wait_closed(mesh: &Mesh, request_id: &str) -> anyhow::Result<pb::DataSubjectRequest> {
    wait_closed_with(mesh.rights(), request_id).await
}

/// [`wait_closed`] as `caller` (a request is visible to the client that submitted it).
pub async fn wait_closed_as(
    mesh: &Mesh,
    caller: &pdm_tls::identity::Caller,
    request_id: &str,
) -> anyhow::Result<pb::DataSubjectRequest> {
    let client = pdm_proto::rights::v1::rights_service_client::RightsServiceClient::new(
        mesh.channel_as("rights", caller)?,
    );
    wait_closed_with(client, request_id).await
}

async fn wait_closed_with(
    mut rights: pdm_proto::rights::v1::rights_service_client::RightsServiceClient<
        tonic::transport::Channel,
    >,
    request_id: &str,
) -> anyhow::Result<pb::DataSubjectRequest> {
    let mut stream = rights
        .watch_request(pb::WatchRequestRequest {
            request_id: request_id.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut last = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Ok(Ok(Some(message))) => last = message.request,
            Ok(Ok(None)) => break,
            Ok(Err(status)) => return Err(status.into()),
            Err(_) => anyhow::bail!("the request did not close within 60 s: {last:?}"),
        }
    }
    last.ok_or_else(|| anyhow::anyhow!("no request state"))
}

/// Polls GetRequest until `done` holds for the request (at most 30 s).
pub async fn wait_for(
    mesh: &Mesh,
    request_id: &str,
    what: &str,
    done: impl Fn(&pb::DataSubjectRequest) -> bool,
) -> anyhow::Result<pb::DataSubjectRequest> {
    eventually(what, Duration::from_secs(30), || async {
        let r = get(mesh, request_id).await?;
        Ok(done(&r).then_some(r))
    })
    .await
}

/// The messages of the mailbox file, opened as `pdm rights mailbox` opens them (with the
/// rights database and key store), each as JSON: message_id, request_id, topic, and
/// to, subject and body while its key exists (`null` once shredded).
pub async fn mailbox(mesh: &Mesh, outbox: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let store = pdm_rights::store::Store::connect(mesh.settings()).await?;
    let entries = pdm_rights::mailbox::read(&store, outbox).await?;
    Ok(entries
        .into_iter()
        .map(|e| {
            let letter = e.letter.as_ref();
            serde_json::json!({
                "message_id": e.message_id,
                "request_id": e.request_id,
                "topic": e.topic,
                "to": letter.map(|l| l.to.clone()),
                "subject": letter.map(|l| l.subject.clone()),
                "body": letter.map(|l| l.body.clone()),
            })
        })
        .collect())
}

/// Waits until the mailbox holds a message whose opened form (see [`mailbox`]) contains
/// every one of `needles` (at most 30 s) and returns it.
pub async fn sent_message(
    mesh: &Mesh,
    outbox: &Path,
    needles: &[&str],
) -> anyhow::Result<serde_json::Value> {
    eventually(
        "message in the outbox file",
        Duration::from_secs(30),
        || async {
            Ok(mailbox(mesh, outbox).await?.into_iter().find(|m| {
                let text = m.to_string();
                needles.iter().all(|n| text.contains(n))
            }))
        },
    )
    .await
}

/// Downloads a request's package as the privacy team (no download token needed) and
/// parses it.
pub async fn download(mesh: &Mesh, request_id: &str) -> anyhow::Result<serde_json::Value> {
    let mut stream = pdm_proto::rights::v1::rights_service_client::RightsServiceClient::new(
        mesh.channel_as("rights", &pdm_tls::identity::Caller::Admin)?,
    )
    .max_decoding_message_size(usize::MAX)
    .download_export(pb::DownloadExportRequest {
        request_id: request_id.to_owned(),
        ..Default::default()
    })
    .await?
    .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await? {
        assert_eq!(chunk.content_type, "application/json; schema=pdm.export.v1");
        bytes.extend(chunk.chunk);
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// A request's task for a service.
pub fn task<'a>(r: &'a pb::DataSubjectRequest, service: &str) -> &'a pb::Task {
    r.tasks
        .iter()
        .find(|t| t.service == service)
        .unwrap_or_else(|| panic!("no {service} task in {r:?}"))
}

/// A count from `sql` (which selects `COUNT(*) AS n`), with `?` placeholders for `values`
/// `sql` with `?` placeholders as `backend` writes them (`$1`, `$2`… on PostgreSQL).
pub fn placeholders(backend: sea_orm::DatabaseBackend, sql: &str) -> String {
    if backend != sea_orm::DatabaseBackend::Postgres {
        return sql.to_owned();
    }
    let mut numbered = String::new();
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            numbered.push_str(&format!("${n}"));
        } else {
            numbered.push(c);
        }
    }
    numbered
}

/// rewritten for PostgreSQL.
pub async fn count(db: &DatabaseConnection, sql: &str, values: &[&str]) -> anyhow::Result<u64> {
    let backend = db.get_database_backend();
    let sql = placeholders(backend, sql);
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            values.iter().map(|v| (*v).into()),
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no count row"))?;
    let n: i64 = row.try_get("", "n")?;
    Ok(u64::try_from(n)?)
}

/// A request row as the service stores one: `kind`, open (IN_PROGRESS), verified and
/// received at `now`, its details sealed already (`details`).
pub fn request_row(
    id: &str,
    kind: &str,
    details: Vec<u8>,
    now: chrono::DateTime<chrono::Utc>,
) -> pdm_rights::store::entities::request::Model {
    pdm_rights::store::entities::request::Model {
        request_id: id.to_owned(),
        client_reference: None,
        kind: kind.to_owned(),
        regime: "GDPR".into(),
        subject_id: None,
        status: pdm_rights::store::RequestStatus::InProgress,
        priority: 0,
        received_at: now,
        verified_at: Some(now),
        due_at: now + chrono::Duration::days(30),
        original_due_at: now + chrono::Duration::days(30),
        extension_reason: None,
        confirm_by: None,
        closed_at: None,
        outcome_reason: None,
        wrapped_key: Vec::new(),
        details,
        trace_parent: None,
        package_expires_at: None,
        updated_at: now,
        deletion_reason: None,
        subject_ref: None,
        forgotten_at: None,
    }
}

/// A task row of `request_id` for `service` and `action`, in `status`, never run.
pub fn task_row(
    request_id: &str,
    service: &str,
    action: &str,
    status: pdm_rights::store::TaskStatus,
    now: chrono::DateTime<chrono::Utc>,
) -> pdm_rights::store::entities::task::Model {
    pdm_rights::store::entities::task::Model {
        status,
        ..pdm_rights::store::entities::task::Model::pending(
            request_id,
            service.to_owned(),
            action,
            0,
            now,
        )
    }
}
