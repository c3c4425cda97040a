//! Several replicas of a service behind one channel. The endpoint setting may name more
//! than one address (`http://a:50052,http://b:50052`); each call goes to the next replica,
//! round-robin, among those that are serving. A replica is skipped once a call to it
//! could not be delivered (connection refused, reset) or its health check answers
//! anything but SERVING (a consent replica whose ledger follower stopped says so), and
//! taken back once its health check answers SERVING again. When no replica is known to be
//! serving, calls go round-robin over all of them rather than nowhere.
//!
//! A call that failed is not sent again here: the request body is gone, and whether a
//! call may be repeated is the caller's decision (its retry then reaches the next replica).

use std::{
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tonic::{body::Body, transport::Channel};
use tower::{Service, ServiceExt};

use crate::layers::BoxFuture;

/// How often every replica's health is asked (only with more than one replica).
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// How long a health check may take before the replica counts as not serving.
const HEALTH_TIMEOUT: Duration = Duration::from_millis(800);

#[derive(Debug)]
struct Member {
    channel: Channel,
    serving: AtomicBool,
}

/// A channel over one or more replicas of a service (see the module's documentation).
#[derive(Debug, Clone)]
pub struct Replicas {
    members: Arc<[Member]>,
    next: Arc<AtomicUsize>,
}

impl Replicas {
    /// Calls over `channels`, one per replica (at least one). With more than one, a task
    /// of the current Tokio runtime asks their health every [`HEALTH_INTERVAL`] until the
    /// last clone of this value is dropped.
    ///
    /// # Panics
    /// With no channel at all (the settings refuse an empty endpoint list).
    pub fn new(channels: Vec<Channel>) -> Self {
        assert!(!channels.is_empty(), "a service needs at least one replica");
        let members: Arc<[Member]> = channels
            .into_iter()
            .map(|channel| Member {
                channel,
                serving: AtomicBool::new(true),
            })
            .collect();
        if members.len() > 1
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(watch_health(Arc::downgrade(&members)));
        }
        Self {
            members,
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// How many replicas there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: there is at least one replica.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Which replicas are taken to be serving now, in the configured order.
    pub fn serving(&self) -> Vec<bool> {
        self.members
            .iter()
            .map(|m| m.serving.load(Ordering::Acquire))
            .collect()
    }

    /// The replica the next call goes to.
    fn pick(&self) -> usize {
        let n = self.members.len();
        if n == 1 {
            return 0;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|offset| (start + offset) % n)
            .find(|&i| self.members[i].serving.load(Ordering::Acquire))
            .unwrap_or(start % n)
    }
}

impl Service<http::Request<Body>> for Replicas {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is the chosen replica's, awaited in the call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let i = self.pick();
        let members = self.members.clone();
        Box::pin(async move {
            let member = &members[i];
            let result = member.channel.clone().oneshot(request).await;
            if result.is_err() && members.len() > 1 {
                // Not delivered: skip this replica until its health check says otherwise.
                member.serving.store(false, Ordering::Release);
            }
            result
        })
    }
}

/// Asks every replica's health until the [`Replicas`] are dropped.
async fn watch_health(members: Weak<[Member]>) {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    loop {
        tokio::time::sleep(HEALTH_INTERVAL).await;
        let Some(members) = members.upgrade() else {
            return;
        };
        let checks = members.iter().map(|member| async move {
            let mut health = HealthClient::new(member.channel.clone());
            let asked = health.check(HealthCheckRequest {
                service: String::new(),
            });
            let serving = matches!(
                tokio::time::timeout(HEALTH_TIMEOUT, asked).await,
                Ok(Ok(answer)) if answer.get_ref().status == ServingStatus::Serving as i32
            );
            let was = member.serving.swap(serving, Ordering::AcqRel);
            if was != serving {
                tracing::info!(serving, "a replica's health changed");
            }
        });
        futures_util::future::join_all(checks).await;
    }
}
