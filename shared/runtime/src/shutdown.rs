//! Process signals that start a graceful shutdown.

use std::future::Future;

/// Resolves on SIGTERM (Kubernetes) or SIGINT (Ctrl-C). The handlers are installed when
/// this is called, not when the future is first polled: a signal that arrives while the
/// services are still starting is then a graceful stop too, instead of the default action
/// (the process killed outright).
pub fn signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let terminate = async {
                match term.as_mut() {
                    Some(term) => {
                        term.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let interrupt = async {
                match int.as_mut() {
                    Some(int) => {
                        int.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = interrupt => tracing::info!(signal = "SIGINT", "shutting down"),
                () = terminate => tracing::info!(signal = "SIGTERM", "shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!(signal = "SIGINT", "shutting down");
            } else {
                std::future::pending::<()>().await;
            }
        }
    }
}
