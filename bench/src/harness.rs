//! The services a measurement runs: the test kit's mesh ([`TestMesh`]: in-process, on
//! ephemeral ports, over mutual TLS with its own PKI, in a throw-away data directory),
//! with the settings of a deployment where the kit shortens them for tests, without a
//! rate limit, and with no log output (the benchmark measures the services, not the
//! terminal or a log buffer).

use pdm_proto::{
    common::v1::Region,
    identity::v1::{CreateAccountRequest, identity_service_client::IdentityServiceClient},
};
use pdm_runtime::Settings;
use pdm_testkit::{Backend, Mesh, TestMesh, fake::Person};

/// Installs, as the global subscriber, one that discards every span and event. The test
/// kit's log capture (debug level, kept in memory for the tests' personal-data checks)
/// then stays empty and costs the measurements nothing. Call it before the first mesh.
/// With `PDM_BENCH_WARNINGS=1` the services' warnings go to stderr instead, to learn why a
/// run was slow (a refused connection, a task retried).
pub fn quiet() -> anyhow::Result<()> {
    if std::env::var_os("PDM_BENCH_WARNINGS").is_some_and(|v| v == "1") {
        return tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::WARN)
            .try_init()
            .map_err(|e| anyhow::anyhow!("cannot install the warnings' subscriber: {e}"));
    }
    tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default())
        .map_err(|e| anyhow::anyhow!("cannot silence the logs: {e}"))
}

/// Starts `names` on SQLite files, with extra settings (`database.url` for PostgreSQL,
/// service knobs), and waits until each serves.
pub async fn start(names: &[&str], settings: Vec<(String, String)>) -> anyhow::Result<Mesh> {
    // The test kit picks its backend from PDM_TEST_DATABASE; the benchmarks pick theirs
    // (what the report's `database` says).
    anyhow::ensure!(
        Backend::from_env() == Backend::Sqlite,
        "PDM_TEST_DATABASE selects PostgreSQL: the benchmarks choose their own databases \
         (SQLite, and PDM_BENCH_POSTGRES_URL for telemetry.* and rights.*); unset it"
    );
    let deployed = Settings::with_overrides(Vec::<(String, String)>::new())?;
    let mut mesh = TestMesh::new()
        // Measured as deployed (mutual TLS, caller policy), without a rate limit.
        .setting("server.concurrency_limit", 4096)
        .setting("security.rate_per_second", "1e12")
        .setting("security.burst", "1e12")
        // What the test kit shortens or narrows for tests, back to the defaults.
        .setting(
            "database.max_connections",
            deployed.database.max_connections,
        )
        .setting(
            "server.db_check_interval_ms",
            deployed.server.db_check_interval.as_millis(),
        )
        .setting(
            "tls.reload_interval_ms",
            deployed.tls.reload_interval.as_millis(),
        )
        .setting(
            "audit.witness_interval_ms",
            deployed.audit.witness_interval.as_millis(),
        );
    for name in names {
        mesh = match *name {
            pdm_identity::NAME => mesh.with(pdm_identity::Identity),
            pdm_consent::NAME => mesh.with(pdm_consent::Consent),
            pdm_telemetry::NAME => mesh.with(pdm_telemetry::Telemetry),
            pdm_transfers::NAME => mesh.with(pdm_transfers::Transfers),
            pdm_rights::NAME => mesh.with(pdm_rights::Rights),
            other => anyhow::bail!("the benchmarks do not run {other}"),
        };
    }
    for (key, value) in settings.into_iter().chain(experiment()?) {
        mesh = mesh.setting(&key, value);
    }
    mesh.start().await
}

/// Settings for an experiment from `PDM_BENCH_SET` (`key=value;key=value`), applied to
/// every mesh after the benchmark's own: to measure a knob before changing its default.
fn experiment() -> anyhow::Result<Vec<(String, String)>> {
    let Ok(set) = std::env::var("PDM_BENCH_SET") else {
        return Ok(Vec::new());
    };
    set.split(';')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| anyhow::anyhow!("PDM_BENCH_SET: {pair:?} is not key=value"))
        })
        .collect()
}

/// Stops every service gracefully (each drains its calls), then drops the mesh and its
/// data directory.
pub async fn stop(mut mesh: Mesh) {
    let running: Vec<String> = mesh
        .settings()
        .services
        .keys()
        .filter(|name| mesh.addr(name).is_some())
        .cloned()
        .collect();
    for name in running {
        let _ = mesh.stop(&name).await;
    }
}

/// 16 random hex digits.
pub fn uuid_like() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap_or_default();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A made-up account for benchmarks, every one with the same password. The address is
/// the test kit's made-up person's: its tag is letters only, where a hex tag could hold
/// digits that pass as a card number, which identity refuses in an email.
pub fn sample_account() -> CreateAccountRequest {
    CreateAccountRequest {
        first_name: "Bench".into(),
        last_name: "Mark".into(),
        email: Person::new().email,
        phone: String::new(),
        region: Region::Uk as i32,
        birth_date: String::new(),
        password: "benchmark password".into(),
    }
}

/// Signs up `n` subjects through identity; their ids.
pub async fn sign_up(mesh: &Mesh, n: usize) -> anyhow::Result<Vec<String>> {
    let mut identity = IdentityServiceClient::new(mesh.channel("identity"));
    let mut subjects = Vec::with_capacity(n);
    for _ in 0..n {
        let subject = identity
            .create_account(sample_account())
            .await?
            .into_inner()
            .account
            .map(|a| a.subject_id)
            .ok_or_else(|| anyhow::anyhow!("no account"))?;
        subjects.push(subject);
    }
    Ok(subjects)
}
