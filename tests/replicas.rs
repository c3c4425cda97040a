//! A service's endpoint naming several replicas: calls go round-robin among the serving
//! ones, a replica whose health says NOT_SERVING is left out until it serves again, and a
//! replica that went away is skipped after the first call it could not take. Real tonic
//! servers on ephemeral ports, called over the network.

use std::{net::SocketAddr, time::Duration};

use pdm_runtime::client::replicas_with;
use tokio::sync::oneshot;
use tonic::transport::Server;
use tonic_health::{
    ServingStatus,
    pb::{HealthCheckRequest, health_client::HealthClient},
    server::HealthReporter,
};

/// A server whose health knows one extra service, named after the server: asking for it
/// tells which replica answered.
struct Replica {
    addr: SocketAddr,
    health: HealthReporter,
    stop: Option<oneshot::Sender<()>>,
}

async fn replica(name: &str) -> anyhow::Result<Replica> {
    let (health, service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    health
        .set_service_status(name, ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    Ok(Replica {
        addr,
        health,
        stop: Some(stop),
    })
}

/// Which replica answered each of `n` calls ("a", "b", or "-" for a failed call).
async fn answers(client: &mut HealthClient<pdm_runtime::replicas::Replicas>, n: usize) -> String {
    let mut seen = String::new();
    for _ in 0..n {
        // Only replica a knows the service "a"; b answers NOT_FOUND.
        let who = match client
            .check(HealthCheckRequest {
                service: "a".into(),
            })
            .await
        {
            Ok(_) => "a",
            Err(status) if status.code() == tonic::Code::NotFound => "b",
            Err(_) => "-",
        };
        seen.push_str(who);
    }
    seen
}

async fn until_serving(
    replicas: &pdm_runtime::replicas::Replicas,
    expected: &[bool],
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while replicas.serving() != expected {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "replicas stayed {:?}, expected {expected:?}",
            replicas.serving()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn calls_go_round_robin_to_the_replicas_that_serve() -> anyhow::Result<()> {
    let a = replica("a").await?;
    let mut b = replica("b").await?;
    let endpoint = format!("http://{}, http://{}", a.addr, b.addr);
    let replicas = replicas_with(&endpoint, Duration::from_secs(2), None)?;
    assert_eq!(replicas.len(), 2);
    let mut client = HealthClient::new(replicas.clone());

    let both = answers(&mut client, 8).await;
    assert_eq!(both.matches('a').count(), 4, "{both}");
    assert_eq!(both.matches('b').count(), 4, "{both}");
    assert!(
        !both.contains("aa") && !both.contains("bb"),
        "alternates: {both}"
    );

    // A replica that says it is not serving (a consent replica whose ledger follower
    // stopped) gets no calls until it serves again.
    a.health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    until_serving(&replicas, &[false, true]).await?;
    assert_eq!(answers(&mut client, 6).await, "bbbbbb");
    a.health
        .set_service_status("", ServingStatus::Serving)
        .await;
    until_serving(&replicas, &[true, true]).await?;
    let back = answers(&mut client, 4).await;
    assert_eq!(back.matches('a').count(), 2, "{back}");

    // A replica that went away fails at most the call that found out; the rest go on.
    b.stop.take().expect("running").send(()).ok();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = answers(&mut client, 8).await;
    assert!(
        after.matches('-').count() <= 1 && after.ends_with("aaaaaa"),
        "after b went away: {after}"
    );
    Ok(())
}

#[test]
fn an_endpoint_names_one_replica_or_several_separated_by_commas() {
    use pdm_runtime::client::addresses;
    assert_eq!(addresses("http://a:1"), ["http://a:1"]);
    assert_eq!(
        addresses(" http://a:1 ,http://b:2,"),
        ["http://a:1", "http://b:2"]
    );
    assert!(addresses(" , ").is_empty());
}
