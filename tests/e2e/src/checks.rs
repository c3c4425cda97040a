//! What the crash and replica tests prove of the mesh once the dust settles: an erasure
//! request completed with each service's erasure done exactly once, and a subject's events
//! counted as telemetry exports them, and no personal value in a replica's log.

use std::collections::BTreeMap;

use serde_json::json;
use tonic::transport::Channel;

use crate::{Replica, Suite, grpc, people::Person};

/// Waits until the erasure `request` of `person` is completed, then requires that the
/// subject was told so once and that every service it fanned out to erased them, and
/// exactly once: each service holds one receipt
/// for the request (in its `erasures` table), the one rights recorded.
pub async fn erased_exactly_once(
    suite: &Suite,
    request: &str,
    person: &Person,
) -> anyhow::Result<()> {
    let done = suite.wait_completed(request).await?;
    let tasks = done["request"]["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    anyhow::ensure!(
        tasks.iter().any(|t| t["action"] == "erase"),
        "{request}: no erasure tasks: {tasks:?}"
    );
    // Account deletion, step 5: "You will receive an email confirming the deletion" --
    // once, whenever the service was killed (the close and its message are one commit).
    let messages = done["request"]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let told = messages
        .iter()
        .filter(|m| m["topic"] == "completed")
        .count();
    anyhow::ensure!(
        told == 1,
        "{request}: the subject was told {told} times that the erasure is done: {messages:?}"
    );
    let mut receipts = BTreeMap::new();
    for task in tasks.iter().filter(|t| t["action"] == "erase") {
        let service = task["service"].as_str().unwrap_or_default().to_owned();
        let receipt = &task["receipt"];
        anyhow::ensure!(
            receipt["requestId"] == request && receipt["subjectId"] == person.subject.as_str(),
            "{request}: {service} has no receipt for it: {task}"
        );
        receipts.insert(service, receipt.clone());
    }
    for service in receipts.keys() {
        // Rights keeps no `erasures` table: its receipt is the one on its task.
        if service == "rights" {
            continue;
        }
        let rows = suite
            .pdm
            .backend()
            .rows(&suite.pdm.data_dir(), service, "erasures", &["request_id"])
            .await?;
        let held = rows.iter().filter(|r| r[0] == request).count();
        anyhow::ensure!(held == 1, "{service} holds {held} receipts for {request}");
    }
    Ok(())
}

/// The subject's usage events as telemetry exports them to the rights service, over
/// `channel` (a telemetry server, called as `rights`).
pub async fn count_events(channel: &Channel, subject: &str) -> anyhow::Result<u64> {
    let method = grpc::method("pdm.subject.v1.SubjectDataService/ExportSubject")?;
    let request = json!({"subjectId": subject,
        "requestId": format!("count-{}", uuid::Uuid::now_v7())});
    let answer = grpc::call_json(channel, &method, &request).await?;
    anyhow::ensure!(answer.code == tonic::Code::Ok, "export: {answer:?}");
    let records = answer.json(&method.output())?;
    Ok(records
        .iter()
        .filter(|r| r["record"]["category"] == "telemetry.event")
        .count() as u64)
}

/// No personal value the suite used is in what the replica logged (the main's log is
/// checked by [`Suite::finish`]).
pub fn no_personal_data(suite: &Suite, replica: &Replica) -> anyhow::Result<()> {
    let log = replica.log()?;
    let leaked: Vec<&String> = suite
        .world
        .personal
        .iter()
        .filter(|value| !value.is_empty() && log.contains(value.as_str()))
        .collect();
    anyhow::ensure!(
        leaked.is_empty(),
        "personal data in the {} replica's log: {leaked:?}",
        replica.service()
    );
    Ok(())
}
