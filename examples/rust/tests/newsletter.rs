//! The newsletter sender against real identity and consent (over mutual TLS as company
//! client `testkit`): "You can opt out of receiving promotional messages at any time" —
//! a subject who opted out of email is skipped with the reason, one who agreed gets the
//! message, and an opt-out made between two runs is honoured by the next.

use pdm_client::{
    ConsentGate, GateOptions, PdmClient,
    consent::Grant,
    types::{Channel, MessageKind, Reason},
};
use pdm_consent::Consent;
use pdm_examples::newsletter::{self, Outcome, Skip};
use pdm_identity::Identity;
use pdm_proto::common::v1::Region;
use pdm_testkit::{Mesh, TEST_CLIENT, TestMesh, fake::Person};

const PURPOSE: &str = "marketing_email";

/// A client of the mesh's consent, as a company service configures it.
fn client_of(mesh: &Mesh) -> anyhow::Result<PdmClient> {
    let addr = mesh
        .addr("consent")
        .ok_or_else(|| anyhow::anyhow!("consent is not running"))?;
    let mut builder = PdmClient::builder().endpoint("consent", format!("http://{addr}"));
    if mesh.settings().tls.enabled {
        builder = builder.client_certificates(mesh.certificate_dir(), TEST_CLIENT);
    }
    Ok(builder.build()?)
}

fn grant(subject: &str) -> Grant {
    Grant {
        subject_id: subject.to_owned(),
        purpose: PURPOSE.to_owned(),
        policy_version: "2024-06-28".to_owned(),
        text_hash: "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea".to_owned(),
        actor: "newsletter-signup".to_owned(),
    }
}

/// A person in the EEA (consent needed for marketing), signed up by the test's client,
/// which links it: a company client sees only its own subjects.
async fn eea_subject(mesh: &Mesh) -> anyhow::Result<String> {
    mesh.sign_up(&Person {
        region: Region::Eea,
        ..Person::new()
    })
    .await
}

#[tokio::test]
async fn the_newsletter_skips_an_email_opt_out_and_sends_to_who_agreed() -> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let consent = client_of(&mesh)?.consent()?;
    let gate = ConsentGate::start(consent.clone(), GateOptions::default());
    let agreed = eea_subject(&mesh).await?;
    let opted_out = eea_subject(&mesh).await?;
    let never_asked = eea_subject(&mesh).await?;
    consent.grant(&grant(&agreed)).await?;
    consent.grant(&grant(&opted_out)).await?;
    let opt_out = consent
        .set_contact_preference(&opted_out, Channel::Email, true, "preferences")
        .await?;
    // The service has applied every write (read-your-writes): the run below sees them.
    let promotional = |subject: &str| {
        let consent = consent.clone();
        let subject = subject.to_owned();
        let token = opt_out.token.clone();
        async move {
            consent
                .can_contact(
                    &subject,
                    Channel::Email,
                    MessageKind::Promotional,
                    Some(&token),
                )
                .await
        }
    };
    assert!(promotional(&agreed).await?.allowed);
    assert_eq!(promotional(&opted_out).await?.reason, Reason::OptedOut);

    let recipients = [&agreed, &opted_out, &never_asked, &agreed].map(|s| s.to_string());
    let mut delivered = Vec::new();
    let report = newsletter::send(&gate, &recipients, |number, subject| {
        delivered.push((number, subject.to_owned()));
    })
    .await;

    assert_eq!(delivered, [(1, agreed.clone())]);
    let outcomes: Vec<Outcome> = report.messages.iter().map(|m| m.outcome.clone()).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Sent,
            Outcome::Skipped(Skip::Refused(Reason::OptedOut)),
            Outcome::Skipped(Skip::Refused(Reason::NoConsent)),
            Outcome::Skipped(Skip::Duplicate),
        ]
    );
    assert_eq!(
        report.to_string(),
        "sent 1, skipped 3 (duplicate: 1, no_consent: 1, opted_out: 1)"
    );
    assert_eq!(report.failed_closed(), 0);

    // The one who got this issue opts out; the gate, which cached "allowed" for them,
    // learns it from the ledger's stream before the next run.
    let later = consent
        .set_contact_preference(&agreed, Channel::Email, true, "unsubscribe-link")
        .await?;
    pdm_testkit::eventually(
        "the opt-out in the gate",
        std::time::Duration::from_secs(5),
        || async { Ok(gate.position() >= later.sequence) },
    )
    .await?;
    let mut delivered = Vec::new();
    let report = newsletter::send(&gate, &recipients[..2], |number, subject| {
        delivered.push((number, subject.to_owned()));
    })
    .await;
    assert!(delivered.is_empty(), "{delivered:?}");
    assert_eq!(report.to_string(), "sent 0, skipped 2 (opted_out: 2)");
    Ok(())
}
