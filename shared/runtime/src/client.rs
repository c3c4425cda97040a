//! Channels for calls between services: lazily connected, with deadlines, and carrying
//! the caller's trace context.

use std::time::Duration;

use tonic::{
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};

use crate::propagation::TraceContext;

/// A channel whose calls carry W3C trace context.
pub type TracedChannel = InterceptedService<Channel, TraceContext>;

/// A lazily connected channel to `endpoint` (connection errors surface on the first call
/// as `UNAVAILABLE`), with a per-call timeout.
pub fn channel(endpoint: &str, call_timeout: Duration) -> anyhow::Result<TracedChannel> {
    let channel = Endpoint::from_shared(endpoint.to_owned())?
        .connect_timeout(Duration::from_secs(3))
        .timeout(call_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect_lazy();
    Ok(InterceptedService::new(channel, TraceContext))
}

/// Waits until the server behind `channel` reports `SERVING` for the whole server (the
/// empty service name), or `limit` passes.
pub async fn wait_serving(channel: &Channel, limit: Duration) -> anyhow::Result<()> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let started = std::time::Instant::now();
    let mut health = HealthClient::new(channel.clone());
    loop {
        if let Ok(response) = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            && response.into_inner().status == ServingStatus::Serving as i32
        {
            return Ok(());
        }
        anyhow::ensure!(started.elapsed() < limit, "not serving after {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
