//! What the end-to-end tests of the shared server stack share: a [`GrpcServer`] built by
//! hand on an ephemeral port around the test kit's [`GatedSubjectData`], a
//! `SubjectDataService` whose `EraseSubject` waits at a gate the test opens.
//!
//! Each test file uses a different part of this module.
#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use pdm_proto::subject::v1::{self as pb, subject_data_service_client::SubjectDataServiceClient};
use pdm_runtime::{
    Deferred, GrpcServer, Settings,
    sea_orm::{Database, DatabaseConnection},
};
use pdm_testkit::GatedSubjectData;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::{
    Status,
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A [`GrpcServer`] serving [`GatedSubjectData`] (as a [`Deferred`] service, like every
/// real one) on an ephemeral port, in this process.
pub struct HandBuilt {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The handler.
    pub gated: GatedSubjectData,
    /// Resolves the server's shutdown future.
    pub stop: CancellationToken,
    /// The `serve` task.
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl HandBuilt {
    /// Starts a server with `overrides` on the default settings. Its `prepare` future
    /// waits for `ready` to resolve, then opens an in-memory SQLite database and fills the
    /// deferred service.
    pub async fn start(
        overrides: &[(&str, &str)],
        ready: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<Self> {
        // Installs the process-wide subscriber (and the OpenTelemetry propagator).
        pdm_testkit::captured_logs();
        let settings = Settings::with_overrides(overrides.iter().copied())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let gated = GatedSubjectData::new();
        let deferred = Deferred::new();
        let server = GrpcServer::new("gated", &settings.server).with_service(deferred.clone());
        let stop = CancellationToken::new();
        let service = gated.server();
        let prepare = async move {
            ready.await;
            let db: DatabaseConnection = Database::connect("sqlite::memory:").await?;
            deferred.set(service);
            Ok(db)
        };
        let task = tokio::spawn(server.serve(listener, stop.clone().cancelled_owned(), prepare));
        Ok(Self {
            addr,
            gated,
            stop,
            task,
        })
    }

    /// Starts a server that is ready at once, and waits until it reports `SERVING`.
    pub async fn ready(overrides: &[(&str, &str)]) -> anyhow::Result<Self> {
        let server = Self::start(overrides, async {}).await?;
        pdm_runtime::client::wait_serving(&server.channel()?, Duration::from_secs(30)).await?;
        Ok(server)
    }

    /// Waits up to `limit` for `serve` to return, and gives what it returned.
    pub async fn served(&mut self, limit: Duration) -> anyhow::Result<anyhow::Result<()>> {
        let joined = tokio::time::timeout(limit, &mut self.task)
            .await
            .map_err(|_| anyhow::anyhow!("serve did not return within {limit:?}"))?;
        Ok(joined?)
    }

    /// A fresh connection to the server.
    pub fn channel(&self) -> anyhow::Result<Channel> {
        Ok(Endpoint::from_shared(format!("http://{}", self.addr))?
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy())
    }

    /// A SubjectData client on a fresh connection.
    pub fn client(&self) -> anyhow::Result<SubjectDataServiceClient<Channel>> {
        Ok(SubjectDataServiceClient::new(self.channel()?))
    }

    /// A health client on a fresh connection.
    pub fn health(&self) -> anyhow::Result<HealthClient<Channel>> {
        Ok(HealthClient::new(self.channel()?))
    }
}

impl Drop for HandBuilt {
    fn drop(&mut self) {
        self.stop.cancel();
        self.task.abort();
    }
}

/// A fresh random W3C trace id, as 32 lowercase hex digits.
pub fn random_trace_id() -> String {
    random_hex(16)
}

/// A `traceparent` header value for a new sampled trace `trace_id`.
pub fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-{}-01", random_hex(8))
}

fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).expect("randomness");
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// The captured JSON log lines logged inside a server span of trace `trace_id`.
pub fn lines_of_trace(trace_id: &str) -> Vec<serde_json::Value> {
    pdm_testkit::captured_logs()
        .contents()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["span"]["trace_id"].as_str() == Some(trace_id))
        .collect()
}

/// Waits until the server logged the end of a call of trace `trace_id` (a call's line
/// is written as it ends, which may be after the client saw its answer), and returns
/// that line.
pub async fn call_end_of_trace(
    trace_id: &str,
    limit: Duration,
) -> anyhow::Result<serde_json::Value> {
    let started = std::time::Instant::now();
    loop {
        let end = lines_of_trace(trace_id).into_iter().find(|line| {
            matches!(
                line["fields"]["message"].as_str(),
                Some("call finished" | "call failed" | "call refused" | "call cancelled")
            )
        });
        if let Some(end) = end {
            return Ok(end);
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "the server logged no end of the call of trace {trace_id}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An `EraseSubject` request.
pub fn erase(request_id: &str) -> pb::EraseSubjectRequest {
    pb::EraseSubjectRequest {
        request_id: request_id.to_owned(),
        subject_id: "01890a5d-ac96-774b-bcce-b302099a8057".to_owned(),
    }
}

/// The health status a server reports for `service` (`""` for the whole server).
pub async fn health_of(
    health: &mut HealthClient<Channel>,
    service: &str,
) -> Result<ServingStatus, Status> {
    let status = health
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?
        .into_inner()
        .status;
    ServingStatus::try_from(status).map_err(|_| Status::internal("unknown serving status"))
}
