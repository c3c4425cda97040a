//! The privacy team's console previews purges and never runs one, against `pdm serve all`:
//! the web front's own certificate with the operator metadata it sends for a signed-in
//! operator (`x-pdm-actor: operator:<name>`) gets a dry run and is refused a real one;
//! without that metadata (the web front acting for a person) it gets neither; the refused
//! calls leave no run behind. What an attacker holding the web pod's key meets.

use pdm_e2e::{Caller, Suite};
use pdm_proto::retention::v1::{
    ListPurgeRunsRequest, RunPurgeRequest, retention_service_client::RetentionServiceClient,
};
use tonic::{Code, Request, transport::Channel};

/// A RunPurge as the web front sends it, for the operator `alice` or for no one.
fn run_purge(dry_run: bool, operator: bool) -> Request<RunPurgeRequest> {
    let mut request = Request::new(RunPurgeRequest {
        dry_run,
        triggered_by: "web/operator:alice".into(),
    });
    if operator {
        request
            .metadata_mut()
            .insert("x-pdm-actor", "operator:alice".parse().expect("ascii"));
    }
    request
}

/// Reads a RunPurge stream to its end; the finished run's `dry_run`.
async fn finished(
    client: &mut RetentionServiceClient<Channel>,
    request: Request<RunPurgeRequest>,
) -> Result<bool, tonic::Status> {
    let mut stream = client.run_purge(request).await?.into_inner();
    let mut dry_run = None;
    while let Some(message) = stream.message().await? {
        dry_run = message.run.map(|r| r.dry_run).or(dry_run);
    }
    dry_run.ok_or_else(|| tonic::Status::internal("no run in the stream"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_front_previews_a_purge_for_an_operator_and_never_runs_one() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let mut web =
        RetentionServiceClient::new(suite.pdm.channel("retention", Caller::Service("web"))?);

    for (dry_run, operator, code) in [
        (false, true, Code::PermissionDenied),
        (false, false, Code::PermissionDenied),
        (true, false, Code::PermissionDenied),
    ] {
        let refused = finished(&mut web, run_purge(dry_run, operator))
            .await
            .expect_err("the web front started a purge it may not");
        assert_eq!(
            refused.code(),
            code,
            "dry_run {dry_run}, operator {operator}: {refused:?}"
        );
    }
    assert!(
        finished(&mut web, run_purge(true, true)).await?,
        "not a dry run"
    );

    let mut admin = RetentionServiceClient::new(suite.pdm.channel("retention", Caller::Admin)?);
    let runs = admin
        .list_purge_runs(ListPurgeRunsRequest::default())
        .await?
        .into_inner()
        .runs;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].dry_run);
    suite.finish().await
}
