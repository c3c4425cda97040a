//! The recipients register ("How we share information we collect": service providers,
//! advertising partners, our offices; Art. 30(1)(d) GDPR: the categories of recipients):
//! created and updated by key, every field validated, listed by country.

mod support;

use chrono::Duration;
use pdm_proto::transfers::v1::{self as pb, RecipientRole};
use pdm_runtime::{ManualClock, convert::from_timestamp};
use pdm_testkit::assert::{field_violations, rows};
use pdm_testkit::start_time;
use support::{Client, mesh, recipient, register, strings};
use tonic::Code;

async fn refused(client: &mut Client, recipient: Option<pb::Recipient>) -> Vec<String> {
    let err = client
        .register_recipient(pb::RegisterRecipientRequest { recipient })
        .await
        .expect_err("invalid recipient");
    field_violations(&err)
}

#[tokio::test]
async fn a_recipient_is_created_then_updated_by_its_key() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();

    let created = client
        .register_recipient(pb::RegisterRecipientRequest {
            recipient: Some(pb::Recipient {
                country: " in ".into(),
                certifications: strings(&["ISO 27001"]),
                ..recipient("hosting-in", "")
            }),
        })
        .await?
        .into_inner();
    assert!(created.created);
    let first = created.recipient.expect("recipient");
    assert!(uuid::Uuid::parse_str(&first.recipient_id).is_ok());
    assert_eq!(first.country, "IN", "country codes are normalised");
    assert_eq!(first.role, RecipientRole::Processor as i32);
    assert_eq!(first.purposes, ["service_provision", "support"]);
    assert_eq!(first.data_categories, ["account.profile", "support.ticket"]);
    assert_eq!(first.certifications, ["ISO 27001"]);
    assert_eq!(first.created_at, first.updated_at);

    clock.advance(Duration::days(3));
    let updated = client
        .register_recipient(pb::RegisterRecipientRequest {
            recipient: Some(pb::Recipient {
                name: "Hosting provider, renamed".into(),
                purposes: strings(&["service_provision"]),
                // An id in the request is ignored: the key decides.
                recipient_id: "something-else".into(),
                ..recipient("hosting-in", "IN")
            }),
        })
        .await?
        .into_inner();
    assert!(!updated.created, "the same key updates");
    let second = updated.recipient.expect("recipient");
    assert_eq!(second.recipient_id, first.recipient_id);
    assert_eq!(second.name, "Hosting provider, renamed");
    assert_eq!(second.purposes, ["service_provision"]);
    assert!(second.certifications.is_empty());
    assert_eq!(second.created_at, first.created_at);
    assert_eq!(
        second.updated_at.as_ref().and_then(from_timestamp),
        Some(start_time() + Duration::days(3))
    );

    let listed = client
        .list_recipients(pb::ListRecipientsRequest::default())
        .await?
        .into_inner()
        .recipients;
    assert_eq!(listed, [second]);
    assert_eq!(
        rows(&mesh.connect_db("transfers").await?, "recipients").await,
        1
    );
    Ok(())
}

#[tokio::test]
async fn every_bad_field_is_reported_and_nothing_is_stored() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();

    assert_eq!(refused(&mut client, None).await, ["recipient"]);
    assert_eq!(
        refused(
            &mut client,
            Some(pb::Recipient {
                key: "Hosting In".into(),
                name: " ".into(),
                role: 99,
                country: "XX".into(),
                purposes: Vec::new(),
                data_categories: Vec::new(),
                ..recipient("x", "IN")
            })
        )
        .await,
        [
            "recipient.key",
            "recipient.name",
            "recipient.role",
            "recipient.country",
            "recipient.purposes",
            "recipient.data_categories",
        ]
    );
    // "UK" is not the ISO 3166-1 code of the United Kingdom ("GB").
    assert_eq!(
        refused(&mut client, Some(recipient("office-uk", "UK"))).await,
        ["recipient.country"]
    );
    assert_eq!(
        refused(
            &mut client,
            Some(pb::Recipient {
                role: RecipientRole::Unspecified as i32,
                purposes: strings(&["Service Provision"]),
                data_categories: strings(&["account.profile", ""]),
                ..recipient("hosting-in", "IN")
            })
        )
        .await,
        [
            "recipient.role",
            "recipient.purposes[0]",
            "recipient.data_categories[1]",
        ]
    );
    // Art. 28(3) GDPR: a processor works under a contract, so its reference and date are
    // required.
    for role in [RecipientRole::Processor, RecipientRole::SubProcessor] {
        assert_eq!(
            refused(
                &mut client,
                Some(pb::Recipient {
                    role: role as i32,
                    contract_reference: String::new(),
                    contract_date: String::new(),
                    ..recipient("hosting-in", "IN")
                })
            )
            .await,
            ["recipient.contract_reference", "recipient.contract_date"]
        );
    }
    assert_eq!(
        refused(
            &mut client,
            Some(pb::Recipient {
                contract_date: "10/01/2024".into(),
                ..recipient("hosting-in", "IN")
            })
        )
        .await,
        ["recipient.contract_date"]
    );
    assert_eq!(
        rows(&mesh.connect_db("transfers").await?, "recipients").await,
        0
    );

    // A public authority may have no contract at all.
    let authority = register(
        &mut client,
        pb::Recipient {
            role: RecipientRole::PublicAuthority as i32,
            contract_reference: String::new(),
            contract_date: String::new(),
            ..recipient("regulator-ie", "IE")
        },
    )
    .await?;
    assert!(authority.contract_reference.is_empty());
    Ok(())
}

#[tokio::test]
async fn recipients_are_listed_by_key_and_filtered_by_country() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    for (key, country) in [
        ("support-desk", "US"),
        ("office-in", "IN"),
        ("backup-de", "DE"),
        ("hosting-in", "IN"),
    ] {
        register(&mut client, recipient(key, country)).await?;
    }
    let keys = |recipients: Vec<pb::Recipient>| -> Vec<String> {
        recipients.into_iter().map(|r| r.key).collect()
    };

    let all = client
        .list_recipients(pb::ListRecipientsRequest::default())
        .await?
        .into_inner()
        .recipients;
    assert_eq!(
        keys(all),
        ["backup-de", "hosting-in", "office-in", "support-desk"]
    );
    for country in ["IN", "in"] {
        let india = client
            .list_recipients(pb::ListRecipientsRequest {
                country: country.into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .recipients;
        assert_eq!(keys(india), ["hosting-in", "office-in"]);
    }
    let none = client
        .list_recipients(pb::ListRecipientsRequest {
            country: "JP".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .recipients;
    assert!(none.is_empty());

    let err = client
        .list_recipients(pb::ListRecipientsRequest {
            country: "XX".into(),
            subject_id: "not-a-subject".into(),
        })
        .await
        .expect_err("bad filters");
    assert_eq!(field_violations(&err), ["subject_id", "country"]);
    assert_eq!(err.code(), Code::InvalidArgument);
    Ok(())
}
