//! Every RPC of every service, enumerated from what the servers serve (reflection) and
//! the descriptors: one valid call each answers `OK`; then bodies that are not the
//! method's message are refused with `INVALID_ARGUMENT` (or `RESOURCE_EXHAUSTED` past the
//! size limit), never `INTERNAL`, `UNKNOWN` or `CANCELLED`; the process stays up and no
//! table gains a row. README: "Bad input answers INVALID_ARGUMENT … and nothing is stored."

use std::collections::BTreeMap;

use pdm_e2e::{
    Suite,
    bodies::{self, BadBody},
    grpc,
    suite::MAX_MESSAGE,
    world,
};
use prost::Message as _;
use tonic::Code;

fn full_name(method: &prost_reflect::MethodDescriptor) -> String {
    format!("{}/{}", method.parent_service().full_name(), method.name())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_a_valid_call_and_refuses_every_bad_body() -> anyhow::Result<()> {
    let mut suite = Suite::start().await?;
    suite.set_up_world().await?;
    let fixtures = world::fixtures();

    let missing: Vec<String> = suite
        .methods()?
        .iter()
        .map(|(_, m)| full_name(m))
        .filter(|name| !fixtures.iter().any(|f| f.method == name))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "methods without a valid call in tests/e2e/src/world.rs: {missing:?}"
    );

    // One valid call per method, on every server that serves it.
    let mut refused = Vec::new();
    let mut valid: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut calls = 0;
    for fixture in &fixtures {
        let method = grpc::method(fixture.method)?;
        let request = (fixture.request)(&suite.world);
        valid.insert(
            fixture.method.to_owned(),
            grpc::from_json(&method.input(), &request)?.encode_to_vec(),
        );
        for (server, answer) in suite.run(fixture).await? {
            calls += 1;
            if answer.code != Code::Ok {
                refused.push(format!(
                    "{} on {server}: {:?} {} {:?}",
                    fixture.method, answer.code, answer.message, answer.violations
                ));
            }
        }
    }
    anyhow::ensure!(refused.is_empty(), "valid calls refused: {refused:#?}");
    println!("valid calls: {calls}, all OK");

    // Bad bodies: the tables must not change.
    let before = suite.settled_row_counts().await?;
    let mut tally: BTreeMap<(BadBody, String), usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (server, method) in suite.methods()? {
        let name = full_name(&method);
        let fixture = fixtures
            .iter()
            .find(|f| f.method == name)
            .ok_or_else(|| anyhow::anyhow!("no fixture for {name}"))?;
        let input = method.input();
        let others: Vec<Vec<u8>> = fixtures
            .iter()
            .filter(|f| grpc::method(f.method).is_ok_and(|m| m.input() != input))
            .filter_map(|f| valid.get(f.method).cloned())
            .collect();
        for kind in BadBody::ALL {
            let (body, decodes) = bodies::body(kind, &input, &valid[&name], &others, MAX_MESSAGE)?;
            let expected = match kind {
                _ if decodes => Code::Ok,
                BadBody::Oversize => Code::ResourceExhausted,
                _ => Code::InvalidArgument,
            };
            match suite.send_raw(&server, fixture.caller, &method, body).await {
                Ok(answer) => {
                    *tally
                        .entry((kind, format!("{:?}", answer.code)))
                        .or_default() += 1;
                    if answer.code != expected {
                        wrong.push(format!(
                            "{name} on {server}, {kind:?}: {:?} {}",
                            answer.code, answer.message
                        ));
                    }
                }
                Err(e) => {
                    *tally.entry((kind, "no status".to_owned())).or_default() += 1;
                    wrong.push(format!("{name} on {server}, {kind:?}: no status ({e:#})"));
                }
            }
        }
        anyhow::ensure!(
            suite.pdm.is_running(),
            "pdm died after the bad bodies of {name}"
        );
    }
    for ((kind, code), n) in &tally {
        println!("bad body {kind:?}: {n} calls answered {code}");
    }
    anyhow::ensure!(wrong.is_empty(), "bad bodies answered wrongly: {wrong:#?}");
    let after = suite.settled_row_counts().await?;
    let grown: Vec<String> = after
        .iter()
        .filter(|(table, n)| before.get(*table).is_none_or(|b| b != *n))
        .map(|(table, n)| format!("{table}: {:?} -> {n}", before.get(table)))
        .collect();
    anyhow::ensure!(grown.is_empty(), "refused calls changed tables: {grown:?}");
    suite.finish().await
}
