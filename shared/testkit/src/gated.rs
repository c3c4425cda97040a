//! A `SubjectDataService` whose `EraseSubject` and `PurgeExpired` calls wait at a gate the
//! test opens, so a test can hold calls in flight, outlive deadlines, hold a purge run in
//! progress and count what is running — no sleeps.
//!
//! Serve it inside a server of the test's own ([`GatedSubjectData::server`]) or on a
//! plaintext server of its own that a mesh reaches as one more service
//! ([`GatedServer::start`], [`GatedServer::settings`]).

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use pdm_proto::subject::v1::{
    self as pb,
    subject_data_service_server::{SubjectDataService, SubjectDataServiceServer},
};
use tokio::{net::TcpListener, sync::watch};
use tokio_stream::{
    Stream, StreamExt as _,
    wrappers::{ReceiverStream, TcpListenerStream},
};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// The subject id that makes [`GatedSubjectData`]'s handlers panic (the panic tests): its
/// `RestrictSubject` panics in the handler, its `ExportSubject` stream after one record.
pub const PANIC_SUBJECT: &str = "0190aaaa-0000-7000-8000-00000000dead";

// === impl GatedSubjectData ===

/// The handler: `EraseSubject` and `PurgeExpired` wait until [`open`](Self::open); an
/// erasure then answers with a receipt from the service `gated`, a purge with nothing
/// purged for each rule. `ExportSubject` gives no records (or stalls, see
/// [`stall_exports`](Self::stall_exports)), `RestrictSubject` is
/// unimplemented (both panic for [`PANIC_SUBJECT`]). Clones share the gate and the counts.
#[derive(Debug, Clone, Default)]
pub struct GatedSubjectData {
    state: Arc<GateState>,
}

#[derive(Debug)]
struct GateState {
    /// Gated calls currently inside a handler.
    running: watch::Sender<usize>,
    /// Gated calls received so far.
    calls: watch::Sender<usize>,
    /// Whether gated calls may return.
    open: watch::Sender<bool>,
    /// The `PurgeExpired` requests received.
    purges: Mutex<Vec<pb::PurgeExpiredRequest>>,
    /// Whether `ExportSubject` sends a record and then waits at the gate.
    stall_exports: AtomicBool,
}

impl Default for GateState {
    fn default() -> Self {
        Self {
            running: watch::Sender::new(0),
            calls: watch::Sender::new(0),
            open: watch::Sender::new(false),
            purges: Mutex::new(Vec::new()),
            stall_exports: AtomicBool::new(false),
        }
    }
}

impl GatedSubjectData {
    /// A closed gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets every waiting and later call return.
    pub fn open(&self) {
        self.state.open.send_replace(true);
    }

    /// Gated calls (`EraseSubject`, `PurgeExpired`) currently inside a handler.
    pub fn running(&self) -> usize {
        *self.state.running.borrow()
    }

    /// From now on `ExportSubject` sends one record and then, its stream still open, waits
    /// at the gate (a gated call) before ending: a peer that stops sending mid-export.
    pub fn stall_exports(&self) {
        self.state.stall_exports.store(true, Ordering::Relaxed);
    }

    /// Gated calls received so far, returned or not.
    pub fn calls(&self) -> usize {
        *self.state.calls.borrow()
    }

    /// Waits until exactly `n` gated calls are inside a handler (or fails after `within`).
    pub async fn wait_running(&self, n: usize, within: Duration) -> anyhow::Result<()> {
        let mut rx = self.state.running.subscribe();
        tokio::time::timeout(within, rx.wait_for(|running| *running == n))
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

    /// Waits until at least `n` gated calls have arrived (or fails after `within`).
    pub async fn wait_for_calls(&self, n: usize, within: Duration) -> anyhow::Result<()> {
        let mut rx = self.state.calls.subscribe();
        tokio::time::timeout(within, rx.wait_for(|calls| *calls >= n))
            .await
            .map_err(|_| anyhow::anyhow!("{n} calls did not arrive"))?
            .context("gate dropped")?;
        Ok(())
    }

    /// The `PurgeExpired` requests received, in order.
    pub fn purge_requests(&self) -> Vec<pb::PurgeExpiredRequest> {
        self.state
            .purges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The generated server around this handler.
    pub fn server(&self) -> SubjectDataServiceServer<Self> {
        SubjectDataServiceServer::new(self.clone())
    }

    /// Counts a gated call in, waits for the gate, and counts it out when it returns or
    /// is dropped (a timed-out call's future is dropped by the timeout layer).
    async fn pass(&self) -> Result<(), Status> {
        let _running = Running::enter(&self.state.running);
        self.state.calls.send_modify(|n| *n += 1);
        let mut open = self.state.open.subscribe();
        open.wait_for(|open| *open)
            .await
            .map_err(|_| Status::unavailable("gate dropped"))?;
        Ok(())
    }
}

/// Decrements the running count when a call ends, whether it returned or was dropped.
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

#[tonic::async_trait]
impl SubjectDataService for GatedSubjectData {
    type ExportSubjectStream =
        Pin<Box<dyn Stream<Item = Result<pb::ExportSubjectResponse, Status>> + Send + 'static>>;

    async fn export_subject(
        &self,
        request: Request<pb::ExportSubjectRequest>,
    ) -> Result<Response<Self::ExportSubjectStream>, Status> {
        let subject = request.into_inner().subject_id;
        if self.state.stall_exports.load(Ordering::Relaxed) {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let gate = self.clone();
            tokio::spawn(async move {
                if tx
                    .send(Ok(pb::ExportSubjectResponse::default()))
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::select! {
                    passed = gate.pass() => {
                        if let Err(status) = passed {
                            tx.send(Err(status)).await.ok();
                        }
                    }
                    () = tx.closed() => {}
                }
            });
            return Ok(Response::new(Box::pin(ReceiverStream::new(rx))));
        }
        if subject != PANIC_SUBJECT {
            return Ok(Response::new(Box::pin(tokio_stream::empty())));
        }
        let records = tokio_stream::iter(0..2).map(move |i| {
            if i == 1 {
                #[allow(clippy::panic)]
                {
                    panic!("export failed for {subject}");
                }
            }
            Ok(pb::ExportSubjectResponse::default())
        });
        Ok(Response::new(Box::pin(records)))
    }

    async fn erase_subject(
        &self,
        request: Request<pb::EraseSubjectRequest>,
    ) -> Result<Response<pb::EraseSubjectResponse>, Status> {
        self.pass().await?;
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
        Err(Status::unimplemented("not in this fake"))
    }

    type ListSubjectsHeldStream =
        Pin<Box<dyn Stream<Item = Result<pb::ListSubjectsHeldResponse, Status>> + Send + 'static>>;

    async fn list_subjects_held(
        &self,
        _request: Request<pb::ListSubjectsHeldRequest>,
    ) -> Result<Response<Self::ListSubjectsHeldStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }

    async fn purge_expired(
        &self,
        request: Request<pb::PurgeExpiredRequest>,
    ) -> Result<Response<pb::PurgeExpiredResponse>, Status> {
        let request = request.into_inner();
        self.state
            .purges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request.clone());
        self.pass().await?;
        Ok(Response::new(pb::PurgeExpiredResponse {
            results: request
                .rules
                .iter()
                .map(|rule| pb::PurgeResult {
                    category: rule.category.clone(),
                    purged: 0,
                    held: 0,
                    hold_ids: Vec::new(),
                })
                .collect(),
        }))
    }
}

// === impl GatedServer ===

/// A [`GatedSubjectData`] on a plaintext server of its own, on an ephemeral port; dropping
/// it opens the gate and stops the server.
#[derive(Debug)]
pub struct GatedServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The handler: open the gate, count and read the calls here.
    pub gate: GatedSubjectData,
    stop: CancellationToken,
}

impl GatedServer {
    /// Serves a closed gate on 127.0.0.1, port 0.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let gate = GatedSubjectData::new();
        let stop = CancellationToken::new();
        let server = tonic::transport::Server::builder()
            .add_service(gate.server())
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                stop.clone().cancelled_owned(),
            );
        tokio::spawn(server);
        Ok(Self { addr, gate, stop })
    }

    /// The settings that add it to a mesh as the service `name`. It serves plaintext, so
    /// the mesh it joins does too.
    pub fn settings(&self, name: &str) -> Vec<(String, String)> {
        vec![
            ("tls.enabled".to_owned(), "false".to_owned()),
            (
                format!("services.{name}.port"),
                self.addr.port().to_string(),
            ),
            (
                format!("services.{name}.endpoint"),
                format!("http://{}", self.addr),
            ),
            (format!("services.{name}.database_url"), String::new()),
        ]
    }
}

impl Drop for GatedServer {
    fn drop(&mut self) {
        self.gate.open();
        self.stop.cancel();
    }
}
