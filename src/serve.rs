//! `pdm serve`: runs the chosen services in one process, each on its own port with its
//! own database, until SIGTERM or SIGINT.

use std::{fmt::Write as _, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use anyhow::Context as _;
use pdm_runtime::{
    ServiceContext, Settings, SystemClock, client,
    db::DatabaseTarget,
    keys::{self, KekSource},
    security::Security,
    shutdown,
    telemetry::{self, ServiceIdentity},
};
use pdm_tls::identity::Caller;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{catalogue, cli::ServeArgs};

/// Runs `pdm serve`.
pub async fn run(config: Option<&Path>, args: ServeArgs) -> anyhow::Result<()> {
    // Every section, the services' not started here included, before anything starts.
    let settings = Arc::new(crate::sections::load(config)?);
    let services = catalogue::select(&args.services)?;
    let names: Vec<&'static str> = services.iter().map(|s| s.name()).collect();
    let process = ServiceIdentity {
        name: match names.as_slice() {
            [one] => format!("pdm-{one}"),
            _ => "pdm".to_owned(),
        },
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let telemetry = telemetry::init(&settings, &process)?;
    // From here (before the first log line) a SIGTERM stops gracefully, even while the
    // services are still starting.
    let shutdown = shutdown::signal();
    tokio::pin!(shutdown);
    // Panics are logged without their formatted messages, which may hold request data.
    pdm_runtime::panic::install_hook();
    let (kek, kek_source) = keys::load_kek(&settings).context("loading the key-encryption key")?;
    if let KekSource::Generated(path) = &kek_source {
        tracing::warn!(path = %path.display(), "generated a development key-encryption key; set crypto.kek or crypto.kek_file in production");
    }

    if settings.tls.enabled {
        let dir = settings.tls.dir(&settings.data_dir);
        let written = pdm_dev_pki::init_certificates(
            &dir,
            &settings.tls.trust_domain,
            &settings.tls.namespace,
            &crate::catalogue::identities(),
            &[crate::admin::certs::DEMO_CLIENT],
            false,
        )?;
        if !written.is_empty() {
            tracing::warn!(dir = %dir.display(), "wrote a development PKI (no certificates were there); production mounts certificates from cert-manager");
        }
    }
    let security = Security::load(&settings)?;

    // Bind every port before starting anything: a port in use fails the whole start.
    let mut bound = Vec::new();
    for service in &services {
        let addr = catalogue::listen_addr(&settings, service.name())?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("{}: cannot listen on {addr}", service.name()))?;
        // Port 0 (a front's "any free port") is known once bound.
        let addr = listener.local_addr()?;
        bound.push((service.clone(), listener, addr));
    }
    // One /metrics per process, whatever the services it runs; it outlives their drain.
    let metrics = match settings.metrics.listen_addr() {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("metrics.listen: cannot listen on {addr}"))?,
        ),
        None => None,
    };
    let metrics_addr = match &metrics {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    let metrics_stop = CancellationToken::new();
    // Whichever way this function returns, the endpoint stops with it.
    let _metrics_guard = metrics_stop.clone().drop_guard();
    if let Some(listener) = metrics {
        tokio::spawn(pdm_metrics::serve(
            listener,
            metrics_stop.clone().cancelled_owned(),
        ));
    }

    let stop = CancellationToken::new();
    let ctx = ServiceContext {
        name: "pdm",
        security: security.clone(),
        settings: settings.clone(),
        clock: Arc::new(SystemClock),
        kek: Arc::new(kek),
    };
    let mut tasks = JoinSet::new();
    let mut addrs = Vec::new();
    for (service, listener, addr) in bound {
        let name = service.name();
        let future = service.run(
            ctx.for_service(name),
            listener,
            Box::pin(stop.clone().cancelled_owned()),
        );
        tasks.spawn(async move { (name, future.await) });
        addrs.push((name, addr));
    }

    tokio::select! {
        ready = wait_all_serving(&security, &addrs) => {
            if let Err(err) = ready {
                stop.cancel();
                while tasks.join_next().await.is_some() {}
                telemetry.shutdown();
                return Err(err);
            }
            println!("{}", banner(&settings, &addrs, metrics_addr));
        }
        () = &mut shutdown => {
            stop.cancel();
            while tasks.join_next().await.is_some() {}
            telemetry.shutdown();
            return Ok(());
        }
        Some(finished) = tasks.join_next() => {
            stop.cancel();
            while tasks.join_next().await.is_some() {}
            telemetry.shutdown();
            let (name, result) = finished.context("service task")?;
            result.with_context(|| format!("{name} stopped while starting"))?;
            anyhow::bail!("{name} stopped while starting");
        }
    }

    let outcome = tokio::select! {
        () = &mut shutdown => Ok(()),
        Some(finished) = tasks.join_next() => {
            // One service stopping takes the process down: the orchestrator restarts it.
            let (name, result) = finished.context("service task")?;
            match result {
                Ok(()) => Err(anyhow::anyhow!("{name} stopped unexpectedly")),
                Err(err) => Err(err.context(format!("{name} failed"))),
            }
        }
    };
    stop.cancel();
    while let Some(finished) = tasks.join_next().await {
        if let Ok((name, Err(err))) = finished {
            tracing::error!(service = name, error = %format!("{err:#}"), "service stopped with an error");
        }
    }
    security.shutdown();
    telemetry.shutdown();
    outcome
}

async fn wait_all_serving(
    security: &Security,
    addrs: &[(&'static str, SocketAddr)],
) -> anyhow::Result<()> {
    let tls = security.client_tls(&Caller::Admin)?;
    for (name, addr) in addrs {
        let host = if addr.ip().is_unspecified() {
            format!("127.0.0.1:{}", addr.port())
        } else {
            addr.to_string()
        };
        if catalogue::is_front(name) {
            wait_http(&host, Duration::from_secs(120))
                .await
                .with_context(|| format!("{name} did not become ready"))?;
            continue;
        }
        let channel = client::plain_channel_with(
            &format!("http://{host}"),
            Duration::from_secs(5),
            tls.clone(),
        )?;
        client::wait_serving(&channel, Duration::from_secs(120))
            .await
            .with_context(|| format!("{name} did not become ready"))?;
    }
    Ok(())
}

/// Waits until an HTTP front answers `GET /healthz` with 200 (HTTP/1.1 on a plain TCP
/// connection: the fronts speak HTTP, not gRPC).
async fn wait_http(host: &str, limit: Duration) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let started = std::time::Instant::now();
    loop {
        let attempt = async {
            let mut stream = tokio::net::TcpStream::connect(host).await?;
            stream
                .write_all(
                    format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await?;
            let mut head = [0u8; 12];
            stream.read_exact(&mut head).await?;
            anyhow::Ok(head.starts_with(b"HTTP/1.1 200"))
        };
        if let Ok(Ok(true)) = tokio::time::timeout(Duration::from_secs(2), attempt).await {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "no answer on /healthz after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn banner(
    settings: &Settings,
    addrs: &[(&'static str, SocketAddr)],
    metrics: Option<SocketAddr>,
) -> String {
    let mut out = String::new();
    let storage = DatabaseTarget::resolve(settings, "identity")
        .map(|t| match t {
            DatabaseTarget::Sqlite { .. } => {
                format!("SQLite files under {}", settings.data_dir.display())
            }
            DatabaseTarget::Postgres { .. } => "PostgreSQL".to_owned(),
        })
        .unwrap_or_else(|_| "?".to_owned());
    let _ = writeln!(
        out,
        "\npdm {} is serving ({storage})\n",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(out, "  {:<10} {:<22} STATUS", "SERVICE", "ENDPOINT");
    for name in catalogue::ALL {
        match addrs.iter().find(|(n, _)| *n == name) {
            Some((_, addr)) => {
                let _ = writeln!(out, "  {name:<10} {:<22} serving", addr.to_string());
            }
            None if catalogue::implementation(name).is_none() => {
                let _ = writeln!(out, "  {name:<10} {:<22} not built yet", "-");
            }
            None => {
                let _ = writeln!(out, "  {name:<10} {:<22} not selected", "-");
            }
        }
    }
    for name in catalogue::FRONTS {
        match addrs.iter().find(|(n, _)| *n == name) {
            Some((_, addr)) => {
                let _ = writeln!(
                    out,
                    "  {name:<10} {:<22} serving",
                    format!("http://{addr}/")
                );
            }
            None => {
                let _ = writeln!(out, "  {name:<10} {:<22} not selected", "-");
            }
        }
    }
    if let Some(addr) = metrics {
        let _ = writeln!(out, "  {:<10} http://{addr}/metrics", "metrics");
    }
    if let Some((_, addr)) = addrs.iter().find(|(n, _)| *n == "identity") {
        let flags = if settings.tls.enabled {
            let dir = settings.tls.dir(&settings.data_dir);
            let (cert, key) = pdm_tls::layout::paths(
                &dir,
                &Caller::Client(crate::admin::certs::DEMO_CLIENT.to_owned()),
            );
            format!(
                "-cacert {} -cert {} -key {}",
                pdm_tls::layout::ca_path(&dir).display(),
                cert.display(),
                key.display()
            )
        } else {
            "-plaintext".to_owned()
        };
        let _ = writeln!(
            out,
            "\nTry it (`make grpcurl` puts grpcurl in .tools/bin; calls use mutual TLS as the\n\
             company client `demo`, whose certificate `pdm certs init` wrote):\n  \
             grpcurl {flags} {addr} list\n  \
             grpcurl {flags} -d '{{\"first_name\":\"Ada\",\"last_name\":\"Lovelace\",\"email\":\"ada@example.org\",\"region\":\"REGION_UK\",\"password\":\"correct horse battery\"}}' \\\n    \
             {addr} pdm.identity.v1.IdentityService/CreateAccount"
        );
        if let Ok(health) = settings.service("identity")
            && health.health_port != 0
        {
            let _ = writeln!(
                out,
                "  grpcurl -plaintext 127.0.0.1:{} grpc.health.v1.Health/Check   (health port, no certificate)",
                health.health_port
            );
        }
    }
    let _ = write!(
        out,
        "\nStop with Ctrl-C (graceful: in-flight calls finish)."
    );
    out
}
