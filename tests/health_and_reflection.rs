//! Health and reflection of every server, the readiness gate while the database is being
//! prepared, and the graceful stop (README: "Every server has grpc.health.v1 health
//! (NOT_SERVING until its migrations ran and its database answers, and again while
//! draining) and server reflection (v1 and v1alpha)").

mod support;

use std::{collections::BTreeSet, time::Duration};

use futures_util::stream;
use pdm_identity::Identity;
use pdm_testkit::TestMesh;
use support::{HandBuilt, erase, health_of};
use tokio::sync::oneshot;
use tonic::{Code, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

const IDENTITY: &str = "pdm.identity.v1.IdentityService";
const SUBJECT_DATA: &str = "pdm.subject.v1.SubjectDataService";
const HEALTH: &str = "grpc.health.v1.Health";
const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_started_identity_server_reports_serving_for_itself_and_each_service()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let mut health = mesh.health("identity");
    for service in ["", IDENTITY, SUBJECT_DATA] {
        assert_eq!(
            health_of(&mut health, service).await?,
            ServingStatus::Serving,
            "{service:?}"
        );
    }
    // A service this server does not run is unknown to its health service.
    let err = health_of(&mut health, "pdm.consent.v1.ConsentService")
        .await
        .expect_err("not served here");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    Ok(())
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_exactly_the_services_served() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).start().await?;
    let channel = mesh.channel("identity");

    let v1 = list_services_v1(channel.clone()).await?;
    assert_eq!(
        v1,
        names(&[
            IDENTITY,
            SUBJECT_DATA,
            "pdm.audit.v1.AuditService",
            HEALTH,
            "grpc.reflection.v1.ServerReflection"
        ]),
        "v1 lists the services this server runs, and no other pdm service"
    );
    let v1alpha = list_services_v1alpha(channel.clone()).await?;
    assert_eq!(
        v1alpha,
        names(&[
            IDENTITY,
            SUBJECT_DATA,
            "pdm.audit.v1.AuditService",
            HEALTH,
            "grpc.reflection.v1alpha.ServerReflection"
        ]),
        "v1alpha (what grpcurl 1.8 asks) lists the same services"
    );

    // What is listed can be described: grpcurl needs the file declaring each service.
    for service in [IDENTITY, SUBJECT_DATA, HEALTH] {
        let files = file_containing_symbol_v1(channel.clone(), service).await?;
        assert!(!files.is_empty(), "no descriptor for {service}");
    }
    Ok(())
}

#[tokio::test]
async fn health_and_calls_wait_for_the_database_then_serve() -> anyhow::Result<()> {
    let (release, released) = oneshot::channel::<()>();
    let server = HandBuilt::start(&[], async move {
        let _ = released.await;
    })
    .await?;
    let mut health = server.health()?;
    let mut client = server.client()?;

    // Before the database is ready: the port answers, but nothing is served.
    for service in ["", SUBJECT_DATA] {
        assert_eq!(
            health_of(&mut health, service).await?,
            ServingStatus::NotServing,
            "{service:?} before the database is ready"
        );
    }
    let err = client
        .erase_subject(erase("before-ready"))
        .await
        .expect_err("not ready yet");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(server.gated.running(), 0, "the handler must not run yet");
    // Reflection answers while starting, so tools can already look around.
    assert!(
        list_services_v1(server.channel()?)
            .await?
            .contains(SUBJECT_DATA)
    );

    release
        .send(())
        .map_err(|()| anyhow::anyhow!("prepare is gone"))?;
    pdm_runtime::client::wait_serving(&server.channel()?, LIMIT).await?;
    assert_eq!(
        health_of(&mut health, SUBJECT_DATA).await?,
        ServingStatus::Serving
    );
    server.gated.open();
    let receipt = client
        .erase_subject(erase("after-ready"))
        .await?
        .into_inner()
        .receipt
        .ok_or_else(|| anyhow::anyhow!("no receipt"))?;
    assert_eq!(receipt.request_id, "after-ready");
    Ok(())
}

#[tokio::test]
async fn on_shutdown_health_turns_not_serving_and_serve_returns_ok() -> anyhow::Result<()> {
    // A long grace period: `serve` must return because the drain finished, not because
    // the grace period ran out.
    let mut server = HandBuilt::ready(&[("server.grace_period_ms", "60000")]).await?;
    let mut watch = server
        .health()?
        .watch(HealthCheckRequest {
            service: SUBJECT_DATA.to_owned(),
        })
        .await?
        .into_inner();
    assert_eq!(next_status(&mut watch).await?, ServingStatus::Serving);

    server.stop.cancel();
    assert_eq!(
        next_status(&mut watch).await?,
        ServingStatus::NotServing,
        "health must turn NOT_SERVING when the drain starts"
    );
    drop(watch);

    let served = server.served(LIMIT).await?;
    assert!(served.is_ok(), "serve returned {served:?}");
    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "the port is closed once serve returned"
    );
    Ok(())
}

#[tokio::test]
async fn an_in_flight_call_finishes_during_the_drain() -> anyhow::Result<()> {
    let mut server = HandBuilt::ready(&[("server.grace_period_ms", "60000")]).await?;
    let mut client = server.client()?;
    let call = tokio::spawn(async move { client.erase_subject(erase("draining")).await });
    server.gated.wait_running(1, LIMIT).await?;

    server.stop.cancel();
    // While the call is in flight the server drains: serve has not returned.
    let mut health = server.health()?;
    let not_serving = async {
        loop {
            // New connections may already be refused; an error means "stopped accepting".
            match health_of(&mut health, "").await {
                Ok(ServingStatus::Serving) => tokio::task::yield_now().await,
                _ => return,
            }
        }
    };
    tokio::time::timeout(LIMIT, not_serving).await?;
    assert!(
        !server.task.is_finished(),
        "serve returned with a call in flight"
    );

    server.gated.open();
    let answered = tokio::time::timeout(LIMIT, call).await??;
    assert!(
        answered.is_ok(),
        "the in-flight call must complete: {answered:?}"
    );
    server.served(LIMIT).await??;
    Ok(())
}

#[tokio::test]
async fn after_the_grace_period_serve_returns_even_with_calls_stuck() -> anyhow::Result<()> {
    // The call's own deadline is far away: only the end of the grace period can end it.
    let mut server = HandBuilt::ready(&[
        ("server.grace_period_ms", "300"),
        ("server.request_timeout_ms", "600000"),
    ])
    .await?;
    let mut client = server.client()?;
    let call = tokio::spawn(async move { client.erase_subject(erase("stuck")).await });
    server.gated.wait_running(1, LIMIT).await?;

    server.stop.cancel();
    let served = server.served(LIMIT).await?;
    assert!(served.is_ok(), "serve returned {served:?}");
    // The call's connection is dropped: the call ends (in error) and its handler stops.
    let answered = tokio::time::timeout(LIMIT, call)
        .await
        .map_err(|_| anyhow::anyhow!("the stuck call outlived the grace period"))??;
    assert!(answered.is_err(), "{answered:?}");
    server.gated.wait_running(0, LIMIT).await?;
    Ok(())
}

#[tokio::test]
async fn a_shutdown_while_starting_returns_ok() -> anyhow::Result<()> {
    let mut server =
        HandBuilt::start(&[("server.grace_period_ms", "300")], std::future::pending()).await?;
    let mut health = server.health()?;
    assert_eq!(health_of(&mut health, "").await?, ServingStatus::NotServing);
    // A probe watching health holds a stream open: the drain must still end.
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(next_status(&mut watch).await?, ServingStatus::NotServing);

    server.stop.cancel();
    let served = server.served(LIMIT).await?;
    assert!(served.is_ok(), "serve returned {served:?}");
    Ok(())
}

// === reflection helpers ===

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

async fn list_services_v1(channel: Channel) -> anyhow::Result<BTreeSet<String>> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(stream::iter([request]))
        .await?
        .into_inner();
    let response = responses
        .message()
        .await?
        .ok_or_else(|| anyhow::anyhow!("no reflection response"))?;
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => anyhow::bail!("unexpected reflection response {other:?}"),
    }
}

async fn list_services_v1alpha(channel: Channel) -> anyhow::Result<BTreeSet<String>> {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(stream::iter([request]))
        .await?
        .into_inner();
    let response = responses
        .message()
        .await?
        .ok_or_else(|| anyhow::anyhow!("no reflection response"))?;
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => anyhow::bail!("unexpected reflection response {other:?}"),
    }
}

async fn file_containing_symbol_v1(channel: Channel, symbol: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.to_owned())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(stream::iter([request]))
        .await?
        .into_inner();
    let response = responses
        .message()
        .await?
        .ok_or_else(|| anyhow::anyhow!("no reflection response"))?;
    match response.message_response {
        Some(MessageResponse::FileDescriptorResponse(files)) => Ok(files.file_descriptor_proto),
        other => anyhow::bail!("unexpected reflection response for {symbol}: {other:?}"),
    }
}

async fn next_status(
    watch: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
) -> anyhow::Result<ServingStatus> {
    let message = tokio::time::timeout(LIMIT, watch.message())
        .await
        .map_err(|_| anyhow::anyhow!("no health update"))??
        .ok_or_else(|| anyhow::anyhow!("health watch ended"))?;
    Ok(ServingStatus::try_from(message.status)?)
}
