//! Background jobs run supervised by the service skeleton (`pdm_runtime::jobs`): a job the
//! service cannot do without that dies turns health `NOT_SERVING` (a dead ledger follower
//! must not leave a replica answering from a stale cache); one that can pick up again is
//! started again; a SIGTERM lets busy jobs finish within the grace period. A real server
//! on an ephemeral port, asked over gRPC.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use pdm_runtime::{
    GrpcServer, Settings,
    jobs::{Jobs, OnFailure},
};
use sea_orm::{Database, DatabaseConnection};
use tokio::{net::TcpListener, sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const LIMIT: Duration = Duration::from_secs(10);

/// A server with no service of its own but its health, whose start spawns what `jobs`
/// says on the skeleton's job set.
struct Server {
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(
        grace_ms: &str,
        jobs: impl FnOnce(&Jobs) + Send + 'static,
    ) -> anyhow::Result<Self> {
        let settings = Settings::with_overrides([("server.grace_period_ms", grace_ms)])
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = GrpcServer::new("jobs", &settings.server);
        let set = server.jobs();
        let shutdown = CancellationToken::new();
        let prepare = async move {
            let db: DatabaseConnection = Database::connect("sqlite::memory:").await?;
            jobs(&set);
            Ok(db)
        };
        let task =
            tokio::spawn(server.serve(listener, shutdown.clone().cancelled_owned(), prepare));
        let server = Self {
            addr,
            shutdown,
            task,
        };
        server.wait_for(ServingStatus::Serving).await?;
        Ok(server)
    }

    fn channel(&self) -> anyhow::Result<Channel> {
        Ok(Endpoint::from_shared(format!("http://{}", self.addr))?
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy())
    }

    async fn health(&self) -> anyhow::Result<ServingStatus> {
        let status = HealthClient::new(self.channel()?)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?
            .into_inner()
            .status;
        Ok(ServingStatus::try_from(status)?)
    }

    async fn wait_for(&self, wanted: ServingStatus) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if matches!(self.health().await, Ok(status) if status == wanted) {
                return Ok(());
            }
            anyhow::ensure!(started.elapsed() < LIMIT, "health never turned {wanted:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, as `pdm serve` turns it into the shutdown future; waits for `serve`.
    async fn stop(self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.shutdown.cancel();
        tokio::time::timeout(LIMIT, self.task).await???;
        Ok(started.elapsed())
    }
}

#[tokio::test]
async fn a_job_the_service_cannot_do_without_dying_turns_health_not_serving() -> anyhow::Result<()>
{
    let die = Arc::new(Notify::new());
    let trigger = die.clone();
    let server = Server::start("2000", move |jobs| {
        jobs.spawn("follower", OnFailure::StopServing, move |stop| {
            let die = die.clone();
            async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = die.notified() => panic!("the follower hits a bug"),
                }
            }
        });
    })
    .await?;
    assert_eq!(server.health().await?, ServingStatus::Serving);
    trigger.notify_one();
    server.wait_for(ServingStatus::NotServing).await?;
    // It stays so: the database still answers, but the job is gone.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.health().await?, ServingStatus::NotServing);
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_job_that_can_pick_up_again_is_started_again_and_the_service_keeps_serving()
-> anyhow::Result<()> {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let server = Server::start("2000", move |jobs| {
        jobs.spawn("worker", OnFailure::Restart, move |stop| {
            let runs = counted.clone();
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("the first run hits a bug");
                }
                stop.cancelled().await;
            }
        });
    })
    .await?;
    let started = Instant::now();
    while runs.load(Ordering::SeqCst) < 2 {
        anyhow::ensure!(started.elapsed() < LIMIT, "the job was not started again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.health().await?, ServingStatus::Serving);
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn sigterm_lets_busy_jobs_finish_their_work_within_the_grace_period() -> anyhow::Result<()> {
    let finished = Arc::new(AtomicUsize::new(0));
    let done = finished.clone();
    let server = Server::start("3000", move |jobs| {
        for name in ["ledger follower", "row deleter", "scheduler", "worker"] {
            let done = done.clone();
            jobs.spawn(name, OnFailure::Restart, move |stop| {
                let done = done.clone();
                async move {
                    stop.cancelled().await;
                    // The work in flight when the stop came.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    })
    .await?;
    server.stop().await?;
    assert_eq!(finished.load(Ordering::SeqCst), 4, "every job finished");
    Ok(())
}

#[tokio::test]
async fn a_job_that_ignores_the_stop_holds_the_shutdown_no_longer_than_the_grace_period()
-> anyhow::Result<()> {
    let server = Server::start("500", |jobs| {
        jobs.spawn("stuck", OnFailure::Restart, |_stop| std::future::pending());
    })
    .await?;
    let took = server.stop().await?;
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    Ok(())
}
