//! Accepting connections: TCP, then (with mTLS) the TLS handshake, done concurrently so a
//! slow or hostile client never holds up the others. Each connection carries who is
//! calling ([`PeerInfo`]) into every request's extensions.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use rustls::ServerConfig;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

use crate::{config::Reloading, identity::Caller};

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a connection knows about its peer, in every request's extensions.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Remote address.
    pub remote_addr: Option<SocketAddr>,
    /// The authenticated caller (None on plaintext connections).
    pub caller: Option<Caller>,
}

/// A plaintext or TLS connection.
pub enum MeshIo {
    /// Plaintext (explicitly configured, e.g. behind a sidecar).
    Plain(TcpStream, PeerInfo),
    /// Mutual TLS.
    Tls(Box<TlsStream<TcpStream>>, PeerInfo),
}

impl Connected for MeshIo {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        match self {
            Self::Plain(_, info) | Self::Tls(_, info) => info.clone(),
        }
    }
}

impl AsyncRead for MeshIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io, _) => Pin::new(io).poll_read(cx, buf),
            Self::Tls(io, _) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MeshIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io, _) => Pin::new(io).poll_write(cx, buf),
            Self::Tls(io, _) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io, _) => Pin::new(io).poll_write_vectored(cx, bufs),
            Self::Tls(io, _) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(io, _) => io.is_write_vectored(),
            Self::Tls(io, _) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io, _) => Pin::new(io).poll_flush(cx),
            Self::Tls(io, _) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io, _) => Pin::new(io).poll_shutdown(cx),
            Self::Tls(io, _) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Accepts connections until `stop`; with `tls`, only those that complete a mutual TLS
/// handshake with a certificate naming a caller of `trust_domain`.
pub fn incoming(
    listener: TcpListener,
    tls: Option<Arc<Reloading<ServerConfig>>>,
    trust_domain: String,
    stop: CancellationToken,
) -> ReceiverStream<io::Result<MeshIo>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (stream, remote) = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let Some(tls) = &tls else {
                let info = PeerInfo {
                    remote_addr: Some(remote),
                    caller: None,
                };
                if tx.send(Ok(MeshIo::Plain(stream, info))).await.is_err() {
                    return;
                }
                continue;
            };
            let acceptor = TlsAcceptor::from(tls.current());
            let tx = tx.clone();
            let trust_domain = trust_domain.clone();
            tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                let stream = match handshake {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(err)) => {
                        tracing::info!(peer = %remote.ip(), error = %err, "TLS handshake refused");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(peer = %remote.ip(), "TLS handshake timed out");
                        return;
                    }
                };
                let caller = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .and_then(|leaf| Caller::from_certificate(leaf, &trust_domain));
                if caller.is_none() {
                    tracing::info!(peer = %remote.ip(), "client certificate names no caller of this trust domain");
                    return;
                }
                let info = PeerInfo {
                    remote_addr: Some(remote),
                    caller,
                };
                let _ = tx.send(Ok(MeshIo::Tls(Box::new(stream), info))).await;
            });
        }
    });
    ReceiverStream::new(rx)
}
