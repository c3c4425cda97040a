//! Services started in-process on ephemeral ports, with a throw-away data directory and
//! no log output (the benchmark measures the services, not the terminal).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::Context as _;
use pdm_proto::{common::v1::Region, identity::v1::CreateAccountRequest};
use pdm_runtime::{
    ServiceContext, Settings, SystemClock, client,
    security::{self, Security},
    tls::identity::Caller,
};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::catalogue;

/// The company client the benchmarks call as.
const BENCH_CLIENT: &str = "bench";

/// Running services.
pub struct Harness {
    channels: BTreeMap<&'static str, Channel>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    dir: std::path::PathBuf,
}

impl Harness {
    /// Starts `names` on SQLite in a fresh temporary directory.
    pub async fn start(names: &[&'static str]) -> anyhow::Result<Self> {
        Self::start_with(names, Vec::new()).await
    }

    /// Starts `names` with extra settings (`database.url` for PostgreSQL, service knobs).
    pub async fn start_with(
        names: &[&'static str],
        settings: Vec<(String, String)>,
    ) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("pdm-bench-{}", uuid_like()));
        let mut listeners = Vec::new();
        let mut overrides = vec![
            ("data_dir".to_owned(), dir.display().to_string()),
            ("server.concurrency_limit".to_owned(), "4096".to_owned()),
            // Measured as deployed (mutual TLS, caller policy), without a rate limit.
            ("security.rate_per_second".to_owned(), "1e12".to_owned()),
            ("security.burst".to_owned(), "1e12".to_owned()),
            (
                "security.allow_all".to_owned(),
                format!("client:{BENCH_CLIENT}"),
            ),
        ];
        for name in catalogue::ALL {
            overrides.push((format!("services.{name}.health_port"), "0".to_owned()));
        }
        overrides.extend(settings);
        for name in names {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            overrides.push((format!("services.{name}.port"), addr.port().to_string()));
            overrides.push((
                format!("services.{name}.endpoint"),
                format!("http://{addr}"),
            ));
            listeners.push((*name, listener));
        }
        let settings = Arc::new(Settings::with_overrides(overrides)?);
        let (kek, _) = pdm_runtime::keys::load_kek(&settings)?;
        let certs = settings.tls.dir(&settings.data_dir);
        security::init_certificates(
            &certs,
            &settings.tls.trust_domain,
            &settings.tls.namespace,
            &catalogue::ALL,
            &[BENCH_CLIENT],
            true,
        )?;
        let security = Security::load(&settings)?;
        let tls = security.client_tls(&Caller::Client(BENCH_CLIENT.to_owned()))?;
        let ctx = ServiceContext {
            name: "bench",
            security,
            settings,
            clock: Arc::new(SystemClock),
            kek: Arc::new(kek),
        };
        let stop = CancellationToken::new();
        let mut channels = BTreeMap::new();
        let mut tasks = Vec::new();
        for (name, listener) in listeners {
            let service =
                catalogue::implementation(name).with_context(|| format!("{name} is not built"))?;
            let addr = listener.local_addr()?;
            tasks.push(tokio::spawn(service.run(
                ctx.for_service(name),
                listener,
                Box::pin(stop.clone().cancelled_owned()),
            )));
            let channel = client::plain_channel_with(
                &format!("http://{addr}"),
                Duration::from_secs(60),
                tls.clone(),
            )?;
            client::wait_serving(&channel, Duration::from_secs(60)).await?;
            channels.insert(name, channel);
        }
        Ok(Self {
            channels,
            stop,
            tasks,
            dir,
        })
    }

    /// A channel to a service.
    pub fn channel(&self, name: &str) -> anyhow::Result<Channel> {
        self.channels
            .get(name)
            .cloned()
            .with_context(|| format!("{name} is not running"))
    }

    /// Stops everything and removes the data directory.
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// 16 random hex digits.
pub fn uuid_like() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap_or_default();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A made-up account for benchmarks.
pub fn sample_account() -> CreateAccountRequest {
    CreateAccountRequest {
        first_name: "Bench".into(),
        last_name: "Mark".into(),
        email: format!("bench-{}@example.org", uuid_like()),
        phone: String::new(),
        region: Region::Uk as i32,
        birth_date: String::new(),
        password: "benchmark password".into(),
    }
}
