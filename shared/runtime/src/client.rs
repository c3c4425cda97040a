//! Channels for calls between services: lazily connected, with deadlines, and traced (a
//! client span per call, whose W3C trace context the server continues).

use std::{sync::Arc, time::Duration};

use rustls::ClientConfig;
use tonic::transport::{Channel, Endpoint};
use tower::Layer;

use pdm_tls::{config::Reloading, connector::MtlsConnector};

use crate::layers::client_trace::{ClientTrace, ClientTraceLayer};

/// A channel that opens a client span per call and sends its context as `traceparent`
/// (see [`crate::layers::client_trace`]).
pub type TracedChannel = ClientTrace<Channel>;

/// A lazily connected plaintext channel to `endpoint` (connection errors surface on the
/// first call as `UNAVAILABLE`), with a per-call timeout.
pub fn channel(endpoint: &str, call_timeout: Duration) -> anyhow::Result<TracedChannel> {
    channel_with(endpoint, call_timeout, None)
}

/// A lazily connected channel, over mutual TLS with `tls` (the caller's certificate, the
/// latest one for each new connection) or in plaintext without it.
pub fn channel_with(
    endpoint: &str,
    call_timeout: Duration,
    tls: Option<Arc<Reloading<ClientConfig>>>,
) -> anyhow::Result<TracedChannel> {
    channel_for(endpoint, call_timeout, tls, None)
}

/// [`channel_with`] that also names the caller with `identity` on every call (plaintext
/// mode: see [`crate::security::Security::identity_header`]).
pub fn channel_for(
    endpoint: &str,
    call_timeout: Duration,
    tls: Option<Arc<Reloading<ClientConfig>>>,
    identity: Option<(http::HeaderName, http::HeaderValue)>,
) -> anyhow::Result<TracedChannel> {
    let channel = plain_channel_with(endpoint, call_timeout, tls)?;
    Ok(ClientTraceLayer::new(&endpoint.parse()?)
        .with_identity(identity)
        .layer(channel))
}

/// [`channel_with`] without client spans or trace context (for health checks).
pub fn plain_channel_with(
    endpoint: &str,
    call_timeout: Duration,
    tls: Option<Arc<Reloading<ClientConfig>>>,
) -> anyhow::Result<Channel> {
    let builder = Endpoint::from_shared(endpoint.to_owned())?
        .connect_timeout(Duration::from_secs(3))
        .timeout(call_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(match tls {
        Some(config) => builder.connect_with_connector_lazy(MtlsConnector::new(config)),
        None => builder.connect_lazy(),
    })
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
