//! Policy, "Payment information": "We don't actually collect or store this sensitive
//! payment information ourselves." A card number in any free-text field of the register,
//! a mechanism or a transfer (names, references, keys, list items) is refused with
//! INVALID_ARGUMENT naming the field, and nothing of the call is stored: no recipient, no
//! mechanism, no log entry.

mod support;

use pdm_proto::transfers::v1::{self as pb, Regime};
use pdm_runtime::ManualClock;
use pdm_testkit::assert::{contains, field_violations, raw_storage, rows};
use pdm_testkit::start_time;
use support::{recipient, record, register, scc, transfer};

/// A card number as people type it: plain, in groups, and after another number.
const CARDS: [&str; 4] = [
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "qty 2 4111 1111 1111 1111",
];

/// The card as it would be found in storage or logs.
const CARD_FORMS: [(&str, &str); 3] = [
    ("card number", "4111111111111111"),
    ("card number", "4111 1111 1111 1111"),
    ("card number", "4111-1111-1111-1111"),
];

/// A field, by proto path, and how to set it in a `T`.
type Field<T> = (&'static str, fn(&mut T, &str));

/// `list` with its first item replaced by `value` (or holding just `value`).
fn first(list: &mut Vec<String>, value: &str) {
    match list.first_mut() {
        Some(item) => *item = value.to_owned(),
        None => list.push(value.to_owned()),
    }
}

/// The free-text fields of a recipient.
const RECIPIENT_FIELDS: [Field<pb::Recipient>; 6] = [
    ("recipient.key", |r, v| r.key = v.to_owned()),
    ("recipient.name", |r, v| r.name = v.to_owned()),
    ("recipient.contract_reference", |r, v| {
        r.contract_reference = v.to_owned()
    }),
    ("recipient.purposes[0]", |r, v| first(&mut r.purposes, v)),
    ("recipient.data_categories[0]", |r, v| {
        first(&mut r.data_categories, v)
    }),
    ("recipient.certifications[0]", |r, v| {
        first(&mut r.certifications, v)
    }),
];

/// The free-text fields of a mechanism and its impact assessment.
const MECHANISM_FIELDS: [Field<pb::Mechanism>; 6] = [
    ("mechanism.parties[0]", |m, v| first(&mut m.parties, v)),
    ("mechanism.annex_references[0]", |m, v| {
        first(&mut m.annex_references, v)
    }),
    ("mechanism.purposes[0]", |m, v| first(&mut m.purposes, v)),
    ("mechanism.data_categories[0]", |m, v| {
        first(&mut m.data_categories, v)
    }),
    ("mechanism.tia.reference", |m, v| {
        if let Some(tia) = m.tia.as_mut() {
            tia.reference = v.to_owned();
        }
    }),
    ("mechanism.tia.supplementary_measures[0]", |m, v| {
        if let Some(tia) = m.tia.as_mut() {
            first(&mut tia.supplementary_measures, v);
        }
    }),
];

/// The free-text fields of a transfer.
const TRANSFER_FIELDS: [Field<pb::AuthorizeTransferRequest>; 3] = [
    ("purpose", |t, v| t.purpose = v.to_owned()),
    ("data_categories[0]", |t, v| {
        first(&mut t.data_categories, v)
    }),
    ("reference", |t, v| t.reference = v.to_owned()),
];

#[tokio::test]
async fn card_numbers_are_refused_in_every_free_text_field_policy_we_dont_store_payment_information()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = support::mesh(&clock).await?;
    let mut client = mesh.transfers();
    let now = start_time();
    let hosting = register(&mut client, recipient("hosting-in", "IN")).await?;
    record(&mut client, scc(&hosting.recipient_id, now)).await?;
    let good_recipient = pb::Recipient {
        certifications: vec!["ISO 27001".into()],
        ..recipient("support-us", "US")
    };
    let good_transfer = pb::AuthorizeTransferRequest {
        reference: "nightly-sync".into(),
        ..transfer(Regime::Eu, &hosting.recipient_id)
    };

    for card in CARDS {
        for (field, set) in RECIPIENT_FIELDS {
            let mut bad = good_recipient.clone();
            set(&mut bad, card);
            let what = format!("{field} = {card:?}");
            let err = client
                .register_recipient(pb::RegisterRecipientRequest {
                    recipient: Some(bad),
                })
                .await
                .expect_err(&what);
            assert_eq!(field_violations(&err), [field], "{what}");
        }
        for (field, set) in MECHANISM_FIELDS {
            let mut bad = scc(&hosting.recipient_id, now);
            set(&mut bad, card);
            let what = format!("{field} = {card:?}");
            let err = client
                .record_mechanism(pb::RecordMechanismRequest {
                    mechanism: Some(bad),
                })
                .await
                .expect_err(&what);
            assert_eq!(field_violations(&err), [field], "{what}");
        }
        for (field, set) in TRANSFER_FIELDS {
            let mut bad = good_transfer.clone();
            set(&mut bad, card);
            let what = format!("{field} = {card:?}");
            let err = client.authorize_transfer(bad).await.expect_err(&what);
            assert_eq!(field_violations(&err), [field], "{what}");
        }
    }

    // Nothing of them stored: the register holds what it held, the log nothing.
    let db = mesh.connect_db("transfers").await?;
    for (table, n) in [("recipients", 1), ("mechanisms", 1), ("transfer_log", 0)] {
        assert_eq!(rows(&db, table).await, n, "{table}");
    }
    // The same calls without the card go through.
    register(&mut client, good_recipient).await?;
    assert!(
        client
            .authorize_transfer(good_transfer)
            .await?
            .into_inner()
            .decision
            .is_some()
    );
    let raw = raw_storage(&mesh, "transfers").await;
    for (_, form) in CARD_FORMS {
        assert!(!contains(&raw, form), "{form} found in raw storage");
    }
    mesh.logs().assert_clean(&CARD_FORMS);
    Ok(())
}
