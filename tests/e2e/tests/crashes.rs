//! Real crashes: the process is killed with `SIGKILL` (no drain, no flush) and started
//! again in the same directory, on the same database.
//!
//! - During erasure fan-outs: every request still completes, every service erased each
//!   subject exactly once (one receipt per service, the one rights holds), and an access
//!   request afterwards finds nothing personal.
//! - Right after `IngestEvents` acknowledged a batch: every acknowledged event is there.

use std::time::Duration;

use pdm_e2e::{Caller, Suite, checks, people, suite::random_below};
use serde_json::json;

const ROUNDS: usize = 10;
const PEOPLE_PER_ROUND: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_fan_outs_survive_sigkill_and_erase_each_subject_exactly_once() -> anyhow::Result<()>
{
    let mut suite = Suite::start().await?;
    let recipient = people::register_recipient(&suite).await?;
    let mut requests: Vec<(String, people::Person)> = Vec::new();
    let mut kills = Vec::new();
    for _ in 0..ROUNDS {
        for _ in 0..PEOPLE_PER_ROUND {
            let person = people::person_with_data(&suite, &recipient).await?;
            let request = people::submit(&suite, "REQUEST_KIND_ERASURE", &person.subject).await?;
            suite.world.personal.extend(person.values.clone());
            requests.push((request, person));
        }
        // Anywhere from before the first task runs to after the last one.
        let delay = random_below(400);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        suite.pdm.restart().await?;
        kills.push(delay);
    }
    println!("SIGKILL rounds: {} (after {kills:?} ms)", kills.len());

    for (request, person) in &requests {
        checks::erased_exactly_once(&suite, request, person).await?;
    }

    // Afterwards an access request finds nothing personal of any of them.
    for (_, person) in requests.iter().step_by(3) {
        let access = people::submit(&suite, "REQUEST_KIND_ACCESS", &person.subject).await?;
        suite.wait_completed(&access).await?;
        let download = pdm_e2e::grpc::method("pdm.rights.v1.RightsService/DownloadExport")?;
        let package = suite
            .call(
                "rights",
                Caller::Admin,
                &download,
                &json!({"requestId": access}),
                pdm_e2e::world::Read::All,
            )
            .await?;
        anyhow::ensure!(package.code == tonic::Code::Ok, "download: {package:?}");
        let mut bytes = Vec::new();
        for message in &package.messages {
            let chunk = prost_reflect::DynamicMessage::decode(download.output(), message.as_ref())?;
            if let Some(value) = chunk.get_field_by_name("chunk")
                && let Some(b) = value.as_bytes()
            {
                bytes.extend_from_slice(b);
            }
        }
        anyhow::ensure!(!bytes.is_empty(), "an empty package");
        let text = String::from_utf8_lossy(&bytes);
        for value in &person.values {
            anyhow::ensure!(
                !text.contains(value.as_str()),
                "the access package after erasure holds {value:?}"
            );
        }
    }
    suite.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill() -> anyhow::Result<()> {
    let mut suite = Suite::start().await?;
    let recipient = people::register_recipient(&suite).await?;
    let person = people::person_with_data(&suite, &recipient).await?;
    suite.world.personal.extend(person.values.clone());
    // person_with_data ingested 3 events.
    let mut acknowledged = 3;
    for round in 0..5 {
        let events: Vec<_> = (0..25)
            .map(|i| {
                json!({"subjectId": person.subject, "kind": "EVENT_KIND_FEATURE_USED",
                    "occurredAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "feature": format!("feature-{}", i % 5), "device": {"osName": "Linux"}})
            })
            .collect();
        let ack = suite
            .ok(
                Caller::Client,
                "pdm.telemetry.v1.TelemetryService/IngestEvents",
                json!({"batchId": format!("kill-{round}-{}", person.subject), "events": events}),
            )
            .await?;
        acknowledged += ack["accepted"].as_u64().unwrap_or(0);
        // No drain, no flush: the acknowledgement is all the client has.
        suite.pdm.restart().await?;
        let stored = count_events(&suite, &person.subject).await?;
        anyhow::ensure!(
            stored == acknowledged,
            "round {round}: {acknowledged} events acknowledged, {stored} there after SIGKILL"
        );
    }
    println!("SIGKILL right after IngestEvents: 5 rounds, {acknowledged} events all there");
    suite.finish().await
}

/// The subject's events as telemetry exports them.
async fn count_events(suite: &Suite, subject: &str) -> anyhow::Result<u64> {
    let telemetry = suite.pdm.channel("telemetry", Caller::Service("rights"))?;
    checks::count_events(&telemetry, subject).await
}
