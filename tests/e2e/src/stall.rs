//! A TCP proxy that stands for a service in another process's configuration
//! (`PDM__SERVICES__<NAME>__ENDPOINT`) and either holds every connection unanswered, so
//! the service looks hung to its callers (a call then lasts until its deadline), or passes
//! connections through to the service's real port. Mutual TLS passes through untouched.

use std::time::Duration;

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// The proxy; it stops (and drops every connection) when dropped.
#[derive(Debug)]
pub struct Stall {
    port: u16,
    /// `None`: hold connections; `Some(port)`: pass them to that port.
    mode: watch::Sender<Option<u16>>,
    accept: JoinHandle<()>,
}

impl Stall {
    /// A proxy on a free local port, holding every connection until [`Stall::pass_to`].
    pub async fn holding() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (mode, watching) = watch::channel(None);
        let accept = tokio::spawn(accept_loop(listener, watching));
        Ok(Self { port, mode, accept })
    }

    /// The port callers are pointed at.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The endpoint to configure in place of the service's (`http://127.0.0.1:<port>`; the
    /// processes' TLS connector adds TLS).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// From now on connections go through to `port`. Every connection of the previous
    /// mode is dropped, so callers connect again and reach the service.
    pub fn pass_to(&self, port: u16) {
        self.mode.send_replace(Some(port));
    }

    /// From now on connections are held unanswered; connections passed through so far are
    /// dropped, so a caller's next connection hangs.
    pub fn hold(&self) {
        self.mode.send_replace(None);
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, mode: watch::Receiver<Option<u16>>) {
    // The connections live in this set: aborting the loop drops them all.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                connections.spawn(connection(inbound, mode.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves one connection in the mode of its arrival, until the mode changes.
async fn connection(mut inbound: TcpStream, mut mode: watch::Receiver<Option<u16>>) {
    let target = *mode.borrow_and_update();
    let work = async {
        match target {
            // Held: nothing is read or written; the caller waits for a TLS answer.
            None => std::future::pending::<()>().await,
            Some(port) => {
                if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            }
        }
    };
    tokio::select! {
        () = work => {}
        _ = mode.changed() => {}
    }
}
