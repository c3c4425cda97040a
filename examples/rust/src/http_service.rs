//! An HTTP/1 service that records usage events, behind the consent gate.
//!
//! Every request names its subject in the `x-subject-id` header. The handler sits behind
//! `pdm_client::layer::ConsentLayer` for the service's purpose (`product_analytics` by
//! default), so a request about a subject who has not allowed that purpose (never asked,
//! withdrawn, objected …) is refused with 403 and the reason before the handler runs; one
//! without a subject gets 400. `GET /healthz` answers without a subject, for probes.
//!
//! [`run`] serves a pre-bound listener until its shutdown future completes, then stops
//! accepting and lets open connections finish within a grace period.

use std::{
    collections::BTreeMap, convert::Infallible, future::Future, net::SocketAddr, time::Duration,
};

use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use pdm_client::{
    ConsentGate, Verdict,
    layer::{ConsentLayer, Refused},
};
use tokio::{net::TcpListener, task::JoinSet};
use tower::{BoxError, ServiceBuilder, ServiceExt, util::BoxCloneSyncService};

use crate::reason_label;

/// The header that names the subject a request is about.
pub const SUBJECT_HEADER: &str = "x-subject-id";
/// Where the service listens unless `EXAMPLE_LISTEN` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
/// The purpose requests are checked for unless `EXAMPLE_PURPOSE` says otherwise.
pub const DEFAULT_PURPOSE: &str = "product_analytics";
/// The largest request body read (bigger ones get 413).
pub const MAX_BODY: usize = 64 * 1024;

/// The body of every answer.
pub type ResponseBody = Full<Bytes>;

/// The service as one cloneable tower service that never fails (errors are answers).
pub type App = BoxCloneSyncService<Request<Incoming>, Response<ResponseBody>, Infallible>;

// === Config ===

/// The HTTP side's settings (the pdm client has its own, `PDM_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `EXAMPLE_LISTEN`: where to listen.
    pub listen: SocketAddr,
    /// `EXAMPLE_PURPOSE`: the purpose every request's subject must allow.
    pub purpose: String,
    /// `EXAMPLE_GRACE_MS`: how long open connections may take to finish at shutdown.
    pub grace: Duration,
}

/// What is wrong with the settings: every problem, each starting with its key.
#[derive(Debug)]
pub struct ConfigError {
    /// `KEY: what is wrong`, one per problem.
    pub problems: Vec<String>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "http-service configuration: {}",
            self.problems.join("; ")
        )
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// From any set of variables; unset ones take their defaults.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("EXAMPLE_"))
            .collect();
        let get = |key: &str, default: &str| vars.get(key).map_or(default.to_owned(), Clone::clone);
        let mut problems = Vec::new();
        let listen = get("EXAMPLE_LISTEN", DEFAULT_LISTEN).parse().map_err(|_| {
            problems.push("EXAMPLE_LISTEN: an address and port, e.g. 127.0.0.1:8090".to_owned())
        });
        let purpose = get("EXAMPLE_PURPOSE", DEFAULT_PURPOSE);
        if purpose.is_empty() {
            problems.push("EXAMPLE_PURPOSE: a purpose key, e.g. product_analytics".to_owned());
        }
        let grace = match get("EXAMPLE_GRACE_MS", "5000").parse::<u64>() {
            Ok(ms) if ms <= 600_000 => Ok(Duration::from_millis(ms)),
            _ => {
                problems.push(
                    "EXAMPLE_GRACE_MS: a whole number of milliseconds, 0 to 600000".to_owned(),
                );
                Err(())
            }
        };
        match (listen, grace) {
            (Ok(listen), Ok(grace)) if problems.is_empty() => Ok(Self {
                listen,
                purpose,
                grace,
            }),
            _ => Err(ConfigError { problems }),
        }
    }
}

// === The service ===

/// The subject a request is about: its `x-subject-id` header.
fn subject_of<B>(request: &Request<B>) -> Option<String> {
    let value = request.headers().get(SUBJECT_HEADER)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

fn answer(status: StatusCode, text: impl Into<String>) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::from(text.into() + "\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The handler: reached only for subjects who allowed the purpose. It accepts usage
/// events (`POST /events`); a real service would store them.
async fn record_events(request: Request<Incoming>) -> Result<Response<ResponseBody>, Infallible> {
    if request.method() != Method::POST || request.uri().path() != "/events" {
        return Ok(answer(StatusCode::NOT_FOUND, "not found: POST /events"));
    }
    match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => {
            let bytes = body.to_bytes().len();
            Ok(answer(
                StatusCode::OK,
                format!("accepted {bytes} bytes of events"),
            ))
        }
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Ok(answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("events: at most {MAX_BODY} bytes"),
        )),
        Err(_) => Ok(answer(
            StatusCode::BAD_REQUEST,
            "events: the body could not be read",
        )),
    }
}

/// The layer's refusals as answers: no subject is 400, a subject who did not allow the
/// purpose 403 with the reason.
fn refusal(err: &BoxError) -> Response<ResponseBody> {
    let Some(refused) = err.downcast_ref::<Refused>() else {
        tracing::error!(error = %err, "request failed");
        return answer(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    };
    match refused {
        Refused::NoSubject => answer(
            StatusCode::BAD_REQUEST,
            format!("the {SUBJECT_HEADER} header names no subject"),
        ),
        Refused::NotAllowed(Verdict::Decided(decision)) => answer(
            StatusCode::FORBIDDEN,
            format!("refused: {}", reason_label(decision.reason)),
        ),
        Refused::NotAllowed(Verdict::FailedClosed { why }) => {
            // The reason goes to the log; the caller learns only that consent could not
            // be checked.
            tracing::warn!(why = %why, "consent gate failed closed; request refused");
            answer(
                StatusCode::FORBIDDEN,
                "refused: consent could not be checked",
            )
        }
    }
}

/// The service for `purpose`: health first, everything else behind the consent layer.
pub fn app(gate: ConsentGate, purpose: &str) -> App {
    let gated = ServiceBuilder::new()
        .layer(ConsentLayer::new(gate, purpose, subject_of::<Incoming>))
        .service_fn(record_events);
    let service = tower::service_fn(move |request: Request<Incoming>| {
        let gated = gated.clone();
        async move {
            if request.method() == Method::GET && request.uri().path() == "/healthz" {
                return Ok(answer(StatusCode::OK, "ok"));
            }
            // The layer's refusals become answers here.
            Ok::<_, Infallible>(gated.oneshot(request).await.unwrap_or_else(|e| refusal(&e)))
        }
    });
    BoxCloneSyncService::new(service)
}

// === Serving ===

/// Serves `app` on `listener` (HTTP/1) until `shutdown` completes; then stops accepting,
/// asks open connections to finish their request and close, and after `grace` drops
/// whatever is still open.
pub async fn run(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut connections = JoinSet::new();
    let (draining, drain) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            // Reap finished connections so the set does not grow with the traffic.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut drain = drain.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| app.clone().oneshot(request));
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                // A client that never finishes its headers does not hold a connection.
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                _ = drain.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = served {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = draining.send(true);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the grace period; closing them"
        );
        connections.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_settings_have_defaults_and_every_bad_one_is_named() {
        let config = Config::from_vars(vars(&[("HOME", "/root")]));
        assert_eq!(
            config.ok(),
            Some(Config {
                listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
                purpose: "product_analytics".to_owned(),
                grace: Duration::from_secs(5),
            })
        );
        let err = Config::from_vars(vars(&[
            ("EXAMPLE_LISTEN", "everywhere"),
            ("EXAMPLE_PURPOSE", ""),
            ("EXAMPLE_GRACE_MS", "soon"),
        ]))
        .err()
        .map(|e| e.problems)
        .unwrap_or_default();
        let keys: Vec<&str> = err.iter().filter_map(|p| p.split(':').next()).collect();
        assert_eq!(
            keys,
            ["EXAMPLE_LISTEN", "EXAMPLE_PURPOSE", "EXAMPLE_GRACE_MS"]
        );
    }

    #[test]
    fn the_subject_is_the_header_trimmed_and_never_empty() -> Result<(), http::Error> {
        let with = |value: &str| Request::builder().header(SUBJECT_HEADER, value).body(());
        assert_eq!(subject_of(&with(" s-1 ")?), Some("s-1".to_owned()));
        assert_eq!(subject_of(&with("")?), None);
        assert_eq!(subject_of(&Request::new(())), None);
        Ok(())
    }
}
