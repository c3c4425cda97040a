//! Two personas against `pdm serve all`, across every method:
//! - **another company client** (`client-intruder`, a valid certificate of the mesh) that
//!   no subject of the world ever used: every call naming a subject or a request of the
//!   world is refused (`NOT_FOUND`, `PERMISSION_DENIED` or `UNAUTHENTICATED`, the
//!   answers for a subject that does not exist), answers carry none of their personal
//!   data, and no table changes;
//! - **an attacker holding a request id** (the same client, with the world's request
//!   ids and the download token): rights requests are as invisible to it.
//!
//! Calls that carry the subject's own credential (its password or live session) are the
//! subject acting through that client, and link it by design: they run last.
//! Policy, "Data Security & Protection": "Restricted access"; service providers get "only
//! the information they need".

use std::collections::BTreeMap;

use pdm_e2e::{Caller, Suite, grpc, world};
use tonic::Code;

const REFUSED: [Code; 3] = [
    Code::NotFound,
    Code::PermissionDenied,
    Code::Unauthenticated,
];

/// Methods that answer OK for a subject that does not exist, with what that means: a
/// decision of `UNKNOWN_SUBJECT`, an empty history or list, an event dropped as unknown.
/// For these the answer must be the one for a subject that does not exist.
const ANSWERED_AS_UNKNOWN: [&str; 7] = [
    "pdm.consent.v1.ConsentService/CheckProcessing",
    "pdm.consent.v1.ConsentService/BatchCheckProcessing",
    "pdm.consent.v1.ConsentService/CanContact",
    "pdm.consent.v1.ConsentService/GetConsentHistory",
    "pdm.telemetry.v1.TelemetryService/IngestEvents",
    "pdm.telemetry.v1.TelemetryService/ReportCrash",
    "pdm.transfers.v1.TransfersService/ListRecipients",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_client_sees_nothing_of_subjects_and_requests_it_has_no_link_with()
-> anyhow::Result<()> {
    let mut suite = Suite::start().await?;
    suite.set_up_world().await?;
    let fixtures = world::fixtures();
    // The world, as the client that made it (and its services) see it.
    for fixture in &fixtures {
        suite.run(fixture).await?;
    }
    let w = suite.world.clone();
    let named = [
        &w.subject,
        &w.subject_delete,
        &w.subject_erase,
        &w.request_id,
        &w.request_pending,
        &w.request_cancel,
    ];
    let credentials = [&w.session, &w.password, &w.password_delete];

    let before = suite.settled_row_counts().await?;
    let mut table: BTreeMap<String, Code> = BTreeMap::new();
    let mut leaked = Vec::new();
    let mut answered = Vec::new();
    for fixture in &fixtures {
        let request = (fixture.request)(&w);
        let text = request.to_string();
        let names_someone = named
            .iter()
            .any(|v| !v.is_empty() && text.contains(v.as_str()));
        let carries_credential = credentials
            .iter()
            .any(|v| !v.is_empty() && text.contains(v.as_str()));
        if !names_someone || carries_credential {
            continue;
        }
        // The same call about subjects and requests that do not exist: the answers must
        // not tell the two apart.
        let mut nobody = text.clone();
        for value in named.iter().filter(|v| !v.is_empty()) {
            nobody = nobody.replace(value.as_str(), &uuid::Uuid::now_v7().to_string());
        }
        let nobody: serde_json::Value = serde_json::from_str(&nobody)?;
        let method = grpc::method(fixture.method)?;
        for server in suite.servers_of(method.parent_service().full_name()) {
            let answer = suite
                .call(
                    &server,
                    Caller::OtherClient,
                    &method,
                    &request,
                    fixture.read,
                )
                .await?;
            let unknown = suite
                .call(&server, Caller::OtherClient, &method, &nobody, fixture.read)
                .await?;
            table.insert(fixture.method.to_owned(), answer.code);
            let refused = REFUSED.contains(&answer.code);
            let as_unknown =
                answer.code == Code::Ok && ANSWERED_AS_UNKNOWN.contains(&fixture.method);
            if answer.code != unknown.code || !(refused || as_unknown) {
                answered.push(format!(
                    "{} on {server}: {:?} {} (for a subject that does not exist: {:?})",
                    fixture.method, answer.code, answer.message, unknown.code
                ));
            }
            let body = format!(
                "{:?} {}",
                answer.json(&method.output()).unwrap_or_default(),
                answer.message
            );
            for value in w.personal.iter().filter(|v| v.len() >= 6) {
                if body.contains(value.as_str()) {
                    leaked.push(format!(
                        "{}: a personal value in the answer",
                        fixture.method
                    ));
                }
            }
        }
    }
    for (method, code) in &table {
        println!("client-intruder {method}: {code:?}");
    }
    println!(
        "calls naming the world's subjects or requests: {}",
        table.len()
    );
    anyhow::ensure!(
        answered.is_empty(),
        "another client was answered: {answered:#?}"
    );
    anyhow::ensure!(leaked.is_empty(), "answers leaked: {leaked:#?}");
    let after = suite.settled_row_counts().await?;
    let grown: Vec<String> = after
        .iter()
        // A crash report is kept naming nobody, as for a subject that does not exist.
        .filter(|(table, _)| !table.ends_with("telemetry.crashes"))
        .filter(|(table, n)| before.get(*table).is_none_or(|b| b != *n))
        .map(|(table, n)| format!("{table}: {:?} -> {n}", before.get(table)))
        .collect();
    anyhow::ensure!(
        grown.is_empty(),
        "another client's calls changed tables: {grown:?}"
    );

    // With the subject's session, the client is linked, and sees the subject.
    suite
        .ok(
            Caller::OtherClient,
            "pdm.identity.v1.IdentityService/LinkSubject",
            serde_json::json!({"sessionToken": w.session}),
        )
        .await?;
    suite
        .ok(
            Caller::OtherClient,
            "pdm.identity.v1.IdentityService/GetAccount",
            serde_json::json!({"subjectId": w.subject}),
        )
        .await?;
    suite.finish().await
}
