//! Channels for calls between services: lazily connected, with deadlines, traced (a
//! client span per call, whose W3C trace context the server continues), and spread over
//! the service's replicas when its endpoint names several (see [`crate::replicas`]).

use std::{sync::Arc, time::Duration};

use rustls::ClientConfig;
use tonic::transport::{Channel, Endpoint};
use tower::Layer;

use pdm_tls::{config::Reloading, connector::MtlsConnector};

use crate::{
    layers::client_trace::{ClientTrace, ClientTraceLayer},
    replicas::Replicas,
};

/// A channel that opens a client span per call and sends its context as `traceparent`
/// (see [`crate::layers::client_trace`]), over one or more replicas.
pub type TracedChannel = ClientTrace<Replicas>;

/// The addresses of an endpoint setting: one URL, or several separated by commas (one
/// per replica).
pub fn addresses(endpoint: &str) -> Vec<&str> {
    endpoint
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect()
}

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
    let replicas = replicas_with(endpoint, call_timeout, tls)?;
    // Spans name the first replica's address: the service, not the replica chosen.
    let first = addresses(endpoint).first().copied().unwrap_or(endpoint);
    Ok(ClientTraceLayer::new(&first.parse()?)
        .with_identity(identity)
        .layer(replicas))
}

/// A channel per address of `endpoint` (see [`addresses`]), calls spread over them.
pub fn replicas_with(
    endpoint: &str,
    call_timeout: Duration,
    tls: Option<Arc<Reloading<ClientConfig>>>,
) -> anyhow::Result<Replicas> {
    let channels = addresses(endpoint)
        .into_iter()
        .map(|address| plain_channel_with(address, call_timeout, tls.clone()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(
        !channels.is_empty(),
        "no address in the endpoint {endpoint:?}"
    );
    Ok(Replicas::new(channels))
}

/// [`channel_with`] without client spans or trace context (for health checks).
pub fn plain_channel_with(
    endpoint: &str,
    call_timeout: Duration,
    tls: Option<Arc<Reloading<ClientConfig>>>,
) -> anyhow::Result<Channel> {
    let builder = Endpoint::from_shared(endpoint.to_owned())?
        // A connection (TCP and the TLS handshake) takes at most the call's own bound.
        .connect_timeout(call_timeout.min(Duration::from_secs(3)))
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
