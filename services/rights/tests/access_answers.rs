//! The six answers of an access request, field by field ("How to access and control your
//! information": what personal data we hold, the purposes, the categories, the recipients
//! "to whom the personal data has/will be disclosed", how long, and the source). Issue 15:
//! the purposes consented to, the register's standing recipients and the retention rule
//! that really applies are in the answers, not only what the records name.

mod support;

use std::collections::BTreeSet;

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    consent::v1::{GrantConsentRequest, Source},
    identity::v1::CreateSupportTicketRequest,
    rights::v1::{self as pb, Regime, RequestKind},
    transfers::v1::{Recipient, RecipientRole, RegisterRecipientRequest},
};
use pdm_retention::Retention;
use pdm_rights::Rights;
use pdm_telemetry::Telemetry;
use pdm_testkit::TestMesh;
use pdm_transfers::Transfers;
use serde_json::Value;
use support::{disclose, download, request, submit, wait_closed};

/// A recipient of the register, as `pdm transfers seed` loads them (seed/transfers.toml).
async fn register(
    mesh: &pdm_testkit::Mesh,
    key: &str,
    name: &str,
    role: RecipientRole,
    country: &str,
    categories: &[&str],
) -> anyhow::Result<()> {
    mesh.transfers()
        .register_recipient(RegisterRecipientRequest {
            recipient: Some(Recipient {
                key: key.into(),
                name: name.into(),
                role: role as i32,
                country: country.into(),
                purposes: vec!["service_provision".into()],
                data_categories: categories.iter().map(|c| (*c).to_owned()).collect(),
                contract_reference: format!("DPA-{key}"),
                contract_date: "2024-01-10".into(),
                ..Default::default()
            }),
        })
        .await?;
    Ok(())
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn an_access_request_answers_the_six_questions_field_by_field() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = TestMesh::new()
        .with(Identity)
        .with(Consent)
        .with(Telemetry)
        .with(Transfers)
        .with(Retention)
        .with(Rights)
        .setting(
            "rights.outbox_file",
            dir.path().join("outbox.jsonl").display(),
        )
        .start()
        .await?;
    // The register's standing recipients (hosting in India, payments, backups, an office)
    // and an advertising partner that decides its own purposes.
    register(
        &mesh,
        "hosting-in",
        "Primary hosting (India)",
        RecipientRole::Processor,
        "IN",
        &["account.profile", "support.ticket", "telemetry.event"],
    )
    .await?;
    register(
        &mesh,
        "payments",
        "Payment processor",
        RecipientRole::Processor,
        "US",
        &["billing.record"],
    )
    .await?;
    register(
        &mesh,
        "backups",
        "Backup provider",
        RecipientRole::SubProcessor,
        "DE",
        &["account.profile", "support.ticket"],
    )
    .await?;
    register(
        &mesh,
        "office-uk",
        "DigitalAPICraft Ltd (UK office)",
        RecipientRole::JointController,
        "GB",
        &["support.ticket"],
    )
    .await?;
    register(
        &mesh,
        "ads",
        "Advertising partner",
        RecipientRole::IndependentController,
        "US",
        &["account.profile"],
    )
    .await?;

    // Identity (profile), consent (analytics), telemetry (five events); then marketing
    // email consent, a support ticket, and one logged transfer.
    let (person, subject) = support::person_with_data(&mesh).await?;
    mesh.consent()
        .grant_consent(GrantConsentRequest {
            subject_id: subject.clone(),
            purpose: "marketing_email".into(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".into(),
            text_hash: "c".repeat(64),
            actor: "newsletter-form".into(),
            occurred_at: None,
        })
        .await?;
    mesh.identity()
        .create_support_ticket(CreateSupportTicketRequest {
            subject_id: subject.clone(),
            contact: person.email.clone(),
            summary: "cannot export my project".into(),
            description: "the export button does nothing".into(),
            ..Default::default()
        })
        .await?;
    let logged = disclose(&mesh, &subject, "nightly").await?;

    let submitted = submit(
        &mesh,
        request(RequestKind::Access, Regime::Gdpr, &subject, &person),
    )
    .await?;
    let done = wait_closed(&mesh, &submitted.request_id).await?;
    assert_eq!(done.status, pb::Status::Completed as i32, "{done:?}");
    let package = download(&mesh, &submitted.request_id).await?;
    let s = &package["summary"];

    // 1. What personal data we hold: per service, its records and their categories.
    let what: Vec<&Value> = s["what_data"]
        .as_array()
        .expect("what_data")
        .iter()
        .collect();
    let services: BTreeSet<&str> = what.iter().filter_map(|w| w["service"].as_str()).collect();
    assert_eq!(
        services,
        ["consent", "identity", "telemetry", "transfers"].into(),
        "{what:?}"
    );
    let identity = what
        .iter()
        .find(|w| w["service"] == "identity")
        .expect("identity");
    assert_eq!(identity["categories"]["support.ticket"], 1, "{identity}");
    assert!(identity["categories"]["account.profile"].as_u64() >= Some(1));
    let telemetry = what
        .iter()
        .find(|w| w["service"] == "telemetry")
        .expect("telemetry");
    assert!(telemetry["records"].as_u64() >= Some(5), "{telemetry}");

    // 2. The purposes: every purpose consented to, though no record names marketing.
    let purposes = strings(&s["purposes"]);
    for p in [
        "marketing_email",
        "product_analytics",
        "support",
        "service_provision",
    ] {
        assert!(purposes.contains(p), "{p} missing from {purposes:?}");
    }
    let consented: BTreeSet<String> = s["consented_purposes"]
        .as_array()
        .expect("consented_purposes")
        .iter()
        .filter_map(|c| c["purpose"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        consented,
        ["marketing_email".to_owned(), "product_analytics".to_owned()].into()
    );

    // 3. The categories, counted.
    let categories: BTreeSet<&str> = s["categories"]
        .as_object()
        .expect("categories")
        .keys()
        .map(String::as_str)
        .collect();
    for c in [
        "account.profile",
        "support.ticket",
        "telemetry.event",
        "transfers.log",
    ] {
        assert!(categories.contains(c), "{c} missing from {categories:?}");
    }
    assert!(!categories.contains("billing.record"), "no billing data");

    // 4. The recipients: the standing ones of the subject's categories and the logged
    // transfer; not the payment processor (no billing data), not the advertising partner
    // (no transfer of this person's data was logged).
    let recipients = strings(&s["recipients"]);
    for r in [
        "Primary hosting (India)",
        "Backup provider",
        "DigitalAPICraft Ltd (UK office)",
        logged.as_str(),
    ] {
        assert!(recipients.contains(r), "{r} missing from {recipients:?}");
    }
    assert!(!recipients.contains("Payment processor"), "{recipients:?}");
    assert!(
        !recipients.contains("Advertising partner"),
        "{recipients:?}"
    );
    let hosting = s["standing_recipients"]
        .as_array()
        .expect("standing_recipients")
        .iter()
        .find(|r| r["name"] == "Primary hosting (India)")
        .expect("hosting");
    assert_eq!(hosting["country"], "IN");
    assert_eq!(hosting["role"], "processor");

    // 5. How long: the rule that really applies, from the retention schedule (tickets:
    // not "while the account exists" alone).
    assert_eq!(
        s["how_long"]["support.ticket"],
        "while the account exists, and at most eight years after the ticket was opened"
    );
    assert!(
        s["how_long"]["account.profile"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{}",
        s["how_long"]
    );
    // Every category has one, but the list of recipients transfers derives from its log
    // (nothing stored of its own).
    for c in categories.iter().filter(|c| **c != "transfers.recipients") {
        assert!(
            s["how_long"][*c].is_string(),
            "no retention for {c}: {}",
            s["how_long"]
        );
    }

    // 6. The source of each category.
    let sources = strings(&s["sources"]);
    assert!(!sources.is_empty());
    assert!(
        sources.iter().any(|x| x.contains("transfer")),
        "the transfer log's source: {sources:?}"
    );

    // And the words say the same.
    let text = package["human_readable"].as_str().unwrap_or_default();
    assert!(
        text.contains("marketing_email") && text.contains("Primary hosting (India)"),
        "{text}"
    );
    assert!(
        text.contains("at most eight years after the ticket was opened"),
        "{text}"
    );
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
