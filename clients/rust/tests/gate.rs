//! The Rust client against real services (identity and consent on ephemeral ports, over
//! mutual TLS as company client `testkit`): the consent gate follows the ledger ("You may
//! withdraw your consent at any time": a withdrawal reaches every gate), resumes after a
//! cut without losing or repeating a change, fails closed when it cannot know; errors
//! arrive typed, with their field violations; tokens give read-your-writes.

use std::time::{Duration, Instant};

use pdm_client::{
    ConsentGate, GateOptions, PdmClient, PdmError, Verdict,
    consent::Grant,
    layer::{ConsentLayer, Refused},
    types::{Channel as ContactChannel, MessageKind, Reason},
};
use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::common::v1::Region;
use pdm_testkit::{Mesh, TEST_CLIENT, TestMesh, eventually, fake::Person};
use tower::{Service, ServiceExt};

const PURPOSE: &str = "product_analytics";
const BOUND: Duration = Duration::from_secs(5);

/// A client of `addr`, as a company service configures it.
fn client_of(mesh: &Mesh, addr: std::net::SocketAddr) -> anyhow::Result<PdmClient> {
    let mut builder = PdmClient::builder().endpoint("consent", format!("http://{addr}"));
    if mesh.settings().tls.enabled {
        builder = builder.client_certificates(mesh.certificate_dir(), TEST_CLIENT);
    }
    Ok(builder.build()?)
}

fn addr(mesh: &Mesh) -> anyhow::Result<std::net::SocketAddr> {
    mesh.addr("consent")
        .ok_or_else(|| anyhow::anyhow!("consent is not running"))
}

fn grant(subject: &str) -> Grant {
    Grant {
        subject_id: subject.to_owned(),
        purpose: PURPOSE.to_owned(),
        policy_version: "2024-06-28".to_owned(),
        text_hash: "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea".to_owned(),
        actor: "checkout".to_owned(),
    }
}

async fn eea_subject(mesh: &Mesh) -> anyhow::Result<String> {
    mesh.sign_up(&Person {
        region: Region::Eea,
        ..Person::new()
    })
    .await
}

async fn until(gate: &ConsentGate, subject: &str, allowed: bool) -> anyhow::Result<Duration> {
    let started = Instant::now();
    eventually("the gate's verdict", BOUND, || async {
        Ok(gate.allowed(subject, PURPOSE).await.allowed() == allowed)
    })
    .await?;
    Ok(started.elapsed())
}

#[tokio::test]
async fn a_grant_opens_the_gate_and_a_withdrawal_closes_it() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let client = client_of(&mesh, addr(&mesh)?)?;
    let consent = client.consent()?;
    let gate = ConsentGate::start(consent.clone(), GateOptions::default());
    let subject = eea_subject(&mesh).await?;
    eventually("the gate's stream", BOUND, || async {
        Ok(gate.connected())
    })
    .await?;

    let verdict = gate.allowed(&subject, PURPOSE).await;
    assert_eq!(
        verdict,
        Verdict::Decided(consent.check(&subject, PURPOSE, None).await?)
    );
    assert!(!verdict.allowed());
    assert!(gate.cached(&subject, PURPOSE).is_some(), "a miss is cached");

    consent.grant(&grant(&subject)).await?;
    until(&gate, &subject, true).await?;
    let withdrawn = consent.withdraw(&subject, PURPOSE, "settings-page").await?;
    until(&gate, &subject, false).await?;
    match gate.allowed(&subject, PURPOSE).await {
        Verdict::Decided(d) => assert_eq!(d.reason, Reason::Withdrawn),
        other => panic!("{other:?}"),
    }
    // The token of the withdrawal, on the service itself: read-your-writes.
    assert!(
        !consent
            .check(&subject, PURPOSE, Some(&withdrawn.token))
            .await?
            .allowed
    );

    // CanContact through the gate: a transactional message goes out whatever the choices.
    let verdict = gate
        .can_contact(&subject, ContactChannel::Email, MessageKind::Transactional)
        .await;
    assert!(verdict.allowed(), "{verdict:?}");
    Ok(())
}

#[tokio::test]
async fn a_cut_stream_resumes_from_its_cursor_without_losing_or_repeating_a_change()
-> anyhow::Result<()> {
    let mut mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    // Writes go through a second replica, which keeps running while the gate's is down.
    let replica = mesh.start_replica("consent").await?;
    let writer = client_of(&mesh, replica.addr())?.consent()?;
    let gate = ConsentGate::start(
        client_of(&mesh, addr(&mesh)?)?.consent()?,
        GateOptions {
            // Trust the cache through the outage, to see the change arrive afterwards.
            stale_after: Duration::from_secs(60),
            ..GateOptions::default()
        },
    );
    let subject = eea_subject(&mesh).await?;
    eventually("the gate's stream", BOUND, || async {
        Ok(gate.connected())
    })
    .await?;
    let granted = writer.grant(&grant(&subject)).await?;
    until(&gate, &subject, true).await?;
    eventually("the grant in the gate", BOUND, || async {
        Ok(gate.position() >= granted.sequence)
    })
    .await?;
    let seen = gate.changes_applied();
    // Cached now that the grant's change is in (a decision fetched across a change is not).
    assert!(gate.allowed(&subject, PURPOSE).await.allowed());
    assert!(gate.cached(&subject, PURPOSE).is_some_and(|d| d.allowed));

    mesh.stop("consent").await?;
    eventually("the cut", BOUND, || async { Ok(!gate.connected()) }).await?;
    let withdrawn = writer.withdraw(&subject, PURPOSE, "settings-page").await?;
    // Down, within its trust bound: the gate still answers from its cache.
    assert!(gate.allowed(&subject, PURPOSE).await.allowed());

    mesh.restart("consent").await?;
    until(&gate, &subject, false).await?;
    eventually("the stream back", BOUND, || async { Ok(gate.connected()) }).await?;
    assert_eq!(gate.position(), withdrawn.sequence);
    // The withdrawal once: nothing lost, nothing replayed twice.
    assert_eq!(gate.changes_applied(), seen + 1);
    replica.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_gate_that_cannot_know_fails_closed() -> anyhow::Result<()> {
    let mut mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let consent = client_of(&mesh, addr(&mesh)?)?.consent()?;
    let gate = ConsentGate::start(
        consent.clone(),
        GateOptions {
            stale_after: Duration::from_millis(300),
            ..GateOptions::default()
        },
    );
    let subject = eea_subject(&mesh).await?;
    eventually("the gate's stream", BOUND, || async {
        Ok(gate.connected())
    })
    .await?;
    consent.grant(&grant(&subject)).await?;
    until(&gate, &subject, true).await?;

    mesh.stop("consent").await?;
    let verdict = eventually("the gate to fail closed", BOUND, || async {
        let verdict = gate.allowed(&subject, PURPOSE).await;
        Ok(matches!(verdict, Verdict::FailedClosed { .. }).then_some(verdict))
    })
    .await?;
    assert!(!verdict.allowed());
    let Verdict::FailedClosed { why } = verdict else {
        panic!("{verdict:?}")
    };
    assert!(why.contains("unreachable"), "{why}");
    Ok(())
}

#[tokio::test]
async fn errors_arrive_typed_with_their_field_violations() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let consent = client_of(&mesh, addr(&mesh)?)?.consent()?;
    let token = pdm_client::ConsistencyToken::new("not-a-token");
    let err = consent
        .check("not-a-uuid", PURPOSE, Some(&token))
        .await
        .expect_err("bad input");
    let fields: Vec<&str> = err
        .field_violations()
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["subject_id", "at_least"], "{err}");
    assert!(matches!(err, PdmError::InvalidArgument { .. }));
    Ok(())
}

#[tokio::test]
async fn the_layer_lets_through_only_what_the_subject_allowed() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let consent = client_of(&mesh, addr(&mesh)?)?.consent()?;
    let gate = ConsentGate::start(consent.clone(), GateOptions::default());
    let (granted, other) = (eea_subject(&mesh).await?, eea_subject(&mesh).await?);
    let written = consent.grant(&grant(&granted)).await?;
    assert!(
        consent
            .check(&granted, PURPOSE, Some(&written.token))
            .await?
            .allowed
    );
    until(&gate, &granted, true).await?;

    let mut service = tower::ServiceBuilder::new()
        .layer(ConsentLayer::new(gate, PURPOSE, |subject: &String| {
            Some(subject.clone())
        }))
        .service_fn(|subject: String| async move { Ok::<_, std::convert::Infallible>(subject) });
    let served = service.ready().await.map_err(anyhow::Error::from_boxed)?;
    assert_eq!(
        served
            .call(granted.clone())
            .await
            .map_err(anyhow::Error::from_boxed)?,
        granted
    );
    let refused = service
        .ready()
        .await
        .map_err(anyhow::Error::from_boxed)?
        .call(other)
        .await
        .expect_err("no consent");
    assert!(refused.downcast_ref::<Refused>().is_some(), "{refused}");
    Ok(())
}
