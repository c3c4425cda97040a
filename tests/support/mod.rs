//! What the end-to-end tests of the shared server stack share: a `SubjectDataService`
//! whose `EraseSubject` waits at a gate the test opens, and a [`GrpcServer`] built by hand
//! around it on an ephemeral port.
//!
//! Each test file uses a different part of this module.
#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use pdm_proto::subject::v1::{
    self as pb,
    subject_data_service_client::SubjectDataServiceClient,
    subject_data_service_server::{SubjectDataService, SubjectDataServiceServer},
};
use pdm_runtime::{
    Deferred, GrpcServer, Settings,
    sea_orm::{Database, DatabaseConnection},
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::{
    Request, Response, Status,
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A `SubjectDataService` whose `EraseSubject` calls wait until the gate opens, so a test
/// can hold calls in flight, outlive deadlines and count what is running — no sleeps.
#[derive(Debug, Clone)]
pub struct Gated {
    /// Calls currently inside `EraseSubject`.
    running: watch::Sender<usize>,
    /// Whether `EraseSubject` calls may return.
    open: watch::Sender<bool>,
}

impl Default for Gated {
    fn default() -> Self {
        Self {
            running: watch::Sender::new(0),
            open: watch::Sender::new(false),
        }
    }
}

impl Gated {
    /// Lets every waiting and later `EraseSubject` call return.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Calls currently inside the handler.
    pub fn running(&self) -> usize {
        *self.running.borrow()
    }

    /// Waits until exactly `n` calls are inside the handler (or fails after `limit`).
    pub async fn wait_running(&self, n: usize, limit: Duration) -> anyhow::Result<()> {
        let mut rx = self.running.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|running| *running == n))
            .await
            .with_context(|| {
                format!(
                    "expected {n} calls in the handler, found {}",
                    self.running()
                )
            })?
            .context("gate dropped")?;
        Ok(())
    }

    /// The generated server around this handler.
    pub fn server(&self) -> SubjectDataServiceServer<Self> {
        SubjectDataServiceServer::new(self.clone())
    }
}

/// Decrements the running count when a call ends, whether it returned or was dropped
/// (a timed-out call's future is dropped by the timeout layer).
struct Running(watch::Sender<usize>);

impl Running {
    fn enter(counter: &watch::Sender<usize>) -> Self {
        counter.send_modify(|n| *n += 1);
        Self(counter.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// The subject id that makes [`Gated`]'s handlers panic (the panic tests): its
/// `RestrictSubject` panics in the handler, its `ExportSubject` stream after one record.
pub const PANIC_SUBJECT: &str = "0190aaaa-0000-7000-8000-00000000dead";

#[tonic::async_trait]
impl SubjectDataService for Gated {
    type ExportSubjectStream =
        futures_util::stream::BoxStream<'static, Result<pb::ExportSubjectResponse, Status>>;

    async fn export_subject(
        &self,
        request: Request<pb::ExportSubjectRequest>,
    ) -> Result<Response<Self::ExportSubjectStream>, Status> {
        use futures_util::StreamExt as _;
        let subject = request.into_inner().subject_id;
        if subject != PANIC_SUBJECT {
            return Ok(Response::new(futures_util::stream::empty().boxed()));
        }
        let records = futures_util::stream::iter(0..2).map(move |i| {
            if i == 1 {
                #[allow(clippy::panic)]
                {
                    panic!("export failed for {subject}");
                }
            }
            Ok(pb::ExportSubjectResponse::default())
        });
        Ok(Response::new(records.boxed()))
    }

    async fn erase_subject(
        &self,
        request: Request<pb::EraseSubjectRequest>,
    ) -> Result<Response<pb::EraseSubjectResponse>, Status> {
        let _running = Running::enter(&self.running);
        let mut open = self.open.subscribe();
        open.wait_for(|open| *open)
            .await
            .map_err(|_| Status::internal("gate dropped"))?;
        let request = request.into_inner();
        Ok(Response::new(pb::EraseSubjectResponse {
            receipt: Some(pb::ErasureReceipt {
                request_id: request.request_id,
                subject_id: request.subject_id,
                service: "gated".to_owned(),
                ..Default::default()
            }),
        }))
    }

    async fn restrict_subject(
        &self,
        request: Request<pb::RestrictSubjectRequest>,
    ) -> Result<Response<pb::RestrictSubjectResponse>, Status> {
        let subject = request.into_inner().subject_id;
        if subject == PANIC_SUBJECT {
            #[allow(clippy::panic)]
            {
                panic!("restriction failed for {subject}");
            }
        }
        Err(Status::unimplemented("not in this test"))
    }

    async fn purge_expired(
        &self,
        _request: Request<pb::PurgeExpiredRequest>,
    ) -> Result<Response<pb::PurgeExpiredResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

/// A [`GrpcServer`] serving [`Gated`] (as a [`Deferred`] service, like every real one) on
/// an ephemeral port, in this process.
pub struct HandBuilt {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The handler.
    pub gated: Gated,
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
        let gated = Gated::default();
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
