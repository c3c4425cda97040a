//! The privacy team's console starts dry runs only (issue 20): the web front acting for a
//! signed-in operator may preview a purge, never run one; the command line still can.

mod support;

use std::sync::Arc;

use pdm_proto::retention::v1::{RunPurgeRequest, retention_service_client::RetentionServiceClient};
use pdm_runtime::ManualClock;
use pdm_testkit::start_time;
use pdm_tls::identity::{ACTOR, Actor, Caller};
use support::{retention_only, run_purge};
use tonic::{Code, Request};

/// A RunPurge as the web front sends it for the operator `alice`.
fn for_alice(dry_run: bool) -> Request<RunPurgeRequest> {
    let mut request = Request::new(RunPurgeRequest {
        dry_run,
        triggered_by: "web/operator:alice".into(),
    });
    request
        .metadata_mut()
        .insert(ACTOR, Actor::header_value("alice").parse().expect("ascii"));
    request
}

#[tokio::test]
async fn the_console_previews_a_purge_but_only_the_command_line_runs_one() -> anyhow::Result<()> {
    let clock = Arc::new(ManualClock::new(start_time()));
    let mesh = retention_only(&clock, Vec::new()).await?;
    let mut web = RetentionServiceClient::new(
        mesh.channel_as(pdm_retention::NAME, &Caller::Service("web".into()))?,
    );

    let refused = web
        .run_purge(for_alice(false))
        .await
        .expect_err("the console ran a real purge");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("dry runs only"), "{refused:?}");

    let mut preview = web.run_purge(for_alice(true)).await?.into_inner();
    let mut last = None;
    while let Some(message) = preview.message().await? {
        last = message.run.or(last);
    }
    let run = last.expect("the dry run's record");
    assert!(run.dry_run, "{run:?}");

    // The refused call stored nothing: the dry run is the only run; the command line
    // (admin) still runs a real purge.
    let mut admin = mesh.retention();
    let listed = admin
        .list_purge_runs(pdm_proto::retention::v1::ListPurgeRunsRequest::default())
        .await?
        .into_inner();
    assert_eq!(listed.runs.len(), 1, "{listed:?}");
    let (_, real) = run_purge(&mut admin, false).await?;
    assert!(!real.dry_run);
    Ok(())
}
