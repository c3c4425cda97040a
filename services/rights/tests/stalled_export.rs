//! A data service that stops sending in the middle of an export, its stream still open,
//! does not hold the request's task for ever (the task's lease is renewed while it runs,
//! so nothing else would take it back): after `rights.export_idle_ms` of silence the task
//! fails and is retried with backoff, the request waiting in progress meanwhile.

mod support;

use pdm_proto::rights::v1::{Regime, RequestKind, Status};
use pdm_testkit::GatedServer;
use support::{builder, person_with_data, request, submit, task, wait_for};

#[tokio::test]
async fn an_export_that_stops_sending_fails_its_task_which_is_retried() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let gated = GatedServer::start().await?;
    gated.gate.stall_exports();
    let mut mesh = builder(&dir.path().join("outbox.jsonl"))
        .setting(
            "rights.services",
            "consent,identity,telemetry,transfers,gated",
        )
        .setting("rights.export_idle_ms", "300")
        .setting("rights.max_backoff_secs", "1");
    for (key, value) in gated.settings("gated") {
        mesh = mesh.setting(&key, value);
    }
    let mesh = mesh.start().await?;
    let (person, subject) = person_with_data(&mesh).await?;
    let submitted = submit(
        &mesh,
        request(RequestKind::Access, Regime::Gdpr, &subject, &person),
    )
    .await?;

    let stalled = wait_for(
        &mesh,
        &submitted.request_id,
        "the stalled export retried",
        |r| {
            let t = task(r, "gated");
            t.status == "failed" && t.attempts > 1
        },
    )
    .await?;
    assert_eq!(stalled.status, Status::InProgress as i32, "{stalled:?}");
    let failing = task(&stalled, "gated");
    assert!(
        failing.last_error.contains("gated sent nothing for 300 ms"),
        "{failing:?}"
    );
    assert!(gated.gate.calls() >= 2, "each attempt called the service");

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
