//! The rights service's keys live in its key store, apart from its data (issue 16; policy,
//! "How long we keep your information": backups "may retain data for a limited period"):
//! keys an earlier version kept wrapped in the rows move into the store at start, and the
//! records they seal still open.

mod support;

use pdm_proto::rights::v1::{Regime, RequestKind};
use pdm_rights::{
    sealed,
    store::{KeyOf, Store},
};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};
use support::{count, mailbox, mesh, person_with_data, placeholders, request, submit, wait_closed};

/// Runs `sql` with `?` placeholders.
async fn execute(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> anyhow::Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        placeholders(backend, sql),
        values,
    ))
    .await?;
    Ok(())
}

#[tokio::test]
async fn keys_an_earlier_version_kept_in_the_rows_move_into_the_key_store_at_start()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    let mut mesh = mesh(&outbox).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    let request = submit(
        &mesh,
        request(RequestKind::Access, Regime::Gdpr, &subject, &person),
    )
    .await?;
    wait_closed(&mesh, &request.request_id).await?;
    let id = request.request_id.clone();
    let opened = |messages: &[serde_json::Value]| {
        messages
            .iter()
            .filter(|m| m["request_id"] == id.as_str() && m["to"] == person.email.as_str())
            .count()
    };
    let sent = support::eventually(
        "the request's messages sent",
        std::time::Duration::from_secs(30),
        || {
            let (mesh, outbox, opened) = (&mesh, &outbox, &opened);
            async move {
                let n = opened(&mailbox(mesh, outbox).await?);
                Ok((n > 0).then_some(n))
            }
        },
    )
    .await?;

    // Put the request's and its messages' keys back into the rows, as an earlier version
    // kept them (wrapped under the root KEK, i.e. KEK version 1), and out of the store.
    mesh.stop("rights").await?;
    let (root, _) = pdm_runtime::keys::load_kek(mesh.settings())?;
    let keys = pdm_runtime::key_store::connect(mesh.settings(), "rights", &root).await?;
    let db = mesh.connect_db("rights").await?;
    let mut moved = 0;
    for key in keys.export().await? {
        assert_eq!(key.kek_version, 1);
        let wrapped = Value::from(key.wrapped_key.clone());
        if key.subject_id == KeyOf::Request(&id).id() {
            execute(
                &db,
                "UPDATE requests SET wrapped_key = ? WHERE request_id = ?",
                vec![wrapped, id.clone().into()],
            )
            .await?;
        } else if let Some(message) = key.subject_id.strip_prefix("mailbox:") {
            execute(
                &db,
                "UPDATE outbox SET file_key = ? WHERE message_id = ?",
                vec![wrapped, message.to_owned().into()],
            )
            .await?;
        } else {
            continue;
        }
        keys.destroy(&key.subject_id).await?;
        moved += 1;
    }
    assert!(moved > 1, "the request's key and its messages' keys");

    mesh.restart("rights").await?;
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) AS n FROM requests WHERE length(wrapped_key) > 0",
            &[]
        )
        .await?,
        0,
        "the rows keep no key after the start"
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) AS n FROM outbox WHERE length(file_key) > 0",
            &[]
        )
        .await?,
        0
    );
    let store = Store::connect(mesh.settings()).await?;
    let key = store.key(KeyOf::Request(&id)).await?;
    let row = store.request(&id).await?.expect("the request");
    sealed::open_details(&key, &row.details)?;
    assert_eq!(opened(&mailbox(&mesh, &outbox).await?), sent);
    Ok(())
}
