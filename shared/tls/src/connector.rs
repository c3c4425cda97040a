//! The client side: channels that open TCP, then mutual TLS with the latest client
//! configuration (so rotated certificates are used by new connections).

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};

use crate::config::Reloading;

/// Connects to the host and port of a URI over mutual TLS.
#[derive(Debug, Clone)]
pub struct MtlsConnector {
    config: Arc<Reloading<ClientConfig>>,
}

impl MtlsConnector {
    /// A connector using `config`.
    pub fn new(config: Arc<Reloading<ClientConfig>>) -> Self {
        Self { config }
    }
}

impl tower::Service<Uri> for MtlsConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let config = self.config.current();
        Box::pin(async move {
            let invalid =
                |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
            let host = uri
                .host()
                .ok_or_else(|| invalid("endpoint without a host"))?
                .trim_matches(['[', ']'])
                .to_owned();
            let port = uri
                .port_u16()
                .ok_or_else(|| invalid("endpoint without a port"))?;
            let tcp = tokio::time::timeout(
                Duration::from_secs(5),
                TcpStream::connect((host.as_str(), port)),
            )
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(host).map_err(|_| invalid("bad server name"))?;
            let tls = TlsConnector::from(config).connect(name, tcp).await?;
            Ok(TokioIo::new(tls))
        })
    }
}
