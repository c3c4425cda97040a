//! Crash reports ("For Customer Support": analysing crash reports to resolve technical
//! issues): scrubbed of emails, tokens, card numbers and paths naming the user before
//! anything is stored, and taken without analytics consent (legitimate interests in fixing
//! problems, purpose "crash_reports"), unless the subject objected.

mod support;

use chrono::Duration;
use pdm_proto::{
    common::v1::{LegalBasis, Region},
    consent::v1::{RecordObjectionRequest, SetRestrictionRequest, Source},
    telemetry::v1::DropReason,
};
use pdm_testkit::assert::{contains, field_violations, raw_storage, rows, rows_where};
use pdm_testkit::start_clock;
use support::{RAW_IP, crash, export, mesh, now, report_crash, secrets, sign_up};

/// Card numbers as they turn up in crash reports, and how each would be found if stored.
const CARDS: [(&str, &str); 4] = [
    ("4111111111111111", "4111111111111111"),
    ("4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("5500-0000-0000-0004", "5500-0000-0000-0004"),
    ("qty 2 4012 8888 8888 1881", "4012 8888 8888 1881"),
];

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N";
const API_KEY: &str = "sk_live_51HqLyjWDarjtT1zdp7dc";

#[tokio::test]
async fn crash_reports_are_scrubbed_and_need_no_analytics_consent() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    // An EEA subject who never agreed to product analytics.
    let (person, subject) = sign_up(&mesh, Region::Eea).await?;
    let user = person.first_name.to_lowercase();
    let mut client = mesh.telemetry();
    let at = now(&clock);

    let message = format!(
        "sync failed for {} (Authorization: Bearer {JWT})",
        person.email
    );
    let stack = format!(
        "at sync (/home/{user}/projects/app/src/sync.rs:42)\n\
         at C:\\Users\\{user}\\AppData\\Local\\app\\main.js:7\n\
         config api_key={API_KEY}"
    );
    let tied = report_crash(&mut client, crash(&subject, at, &message, &stack)).await?;
    assert!(!tied.crash_id.is_empty());
    assert!(
        tied.scrubbed >= 5,
        "email, token, two paths, key: {}",
        tied.scrubbed
    );
    // Anonymous reports are stored unsealed: the raw bytes show what scrubbing kept.
    let mut anonymous = crash("", at, &message, &stack);
    anonymous.error_type = format!("InvalidRecipient({})", person.email);
    let loose = report_crash(&mut client, anonymous).await?;
    assert!(
        loose.scrubbed > tied.scrubbed,
        "the error type is scrubbed too"
    );

    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(rows(&db, "crashes").await, 2);
    assert_eq!(rows_where(&db, "crashes", "subject_id", &subject).await, 1);
    let raw = raw_storage(&mesh, "telemetry").await;
    for (what, value) in [
        ("email", person.email.as_str()),
        ("bearer token", JWT),
        ("api key", API_KEY),
        ("user name in a path", &format!("/home/{user}")),
        ("user name in a path", &format!("Users\\{user}")),
        ("raw IP address", RAW_IP),
    ] {
        assert!(!contains(&raw, value), "{what} found in raw storage");
    }
    for kept in [
        "/home/<user>/projects/app/src/sync.rs:42",
        "<email>",
        "sync failed for",
    ] {
        assert!(contains(&raw, kept), "{kept} missing from raw storage");
    }

    // Tied to the subject: in the access report, and erased with them.
    let records = export(&mesh, &subject).await?;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record_id, tied.crash_id);

    mesh.logs().assert_clean(&secrets(
        &person,
        &[("bearer token", JWT), ("api key", API_KEY)],
    ));
    Ok(())
}

#[tokio::test]
async fn bad_crash_reports_are_refused_field_by_field_and_nothing_is_stored() -> anyhow::Result<()>
{
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);

    let mut bad = crash("not-a-uuid", at + Duration::hours(1), "", "");
    bad.error_type = "  ".into();
    bad.message = "m".repeat(4 * 1024 + 1);
    bad.stack_trace = "s".repeat(64 * 1024 + 1);
    if let Some(device) = bad.device.as_mut() {
        device.ip_address = "10.0.0.300".into();
        device.exit_url = "ftp://files.example.com/".into();
    }
    let err = report_crash(&mut client, bad)
        .await
        .expect_err("every field is wrong");
    assert_eq!(
        field_violations(&err),
        [
            "subject_id",
            "error_type",
            "message",
            "stack_trace",
            "occurred_at",
            "device.ip_address",
            "device.exit_url"
        ]
    );
    let mut long_type = crash("", at, "boom", "");
    long_type.error_type = "E".repeat(257);
    let err = report_crash(&mut client, long_type)
        .await
        .expect_err("error type too long");
    assert_eq!(field_violations(&err), ["error_type"]);

    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(rows(&db, "crashes").await, 0);
    Ok(())
}

#[tokio::test]
async fn card_numbers_in_crash_reports_are_scrubbed_policy_we_dont_store_payment_information()
-> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (person, subject) = sign_up(&mesh, Region::Eea).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);

    for (card, _) in CARDS {
        for who in ["", subject.as_str()] {
            let mut report = crash(
                who,
                at,
                &format!("payment failed for {card}"),
                &format!("at checkout.charge({card})\nat main"),
            );
            report.error_type = format!("CardDeclined({card})");
            let answer = report_crash(&mut client, report).await?;
            assert_eq!(
                answer.scrubbed, 3,
                "message, stack trace, error type: {card:?}"
            );
        }
    }

    // Anonymous reports are stored unsealed: the raw bytes show what was kept.
    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(rows(&db, "crashes").await, 8);
    let raw = raw_storage(&mesh, "telemetry").await;
    for (_, stored) in CARDS {
        let digits: String = stored.chars().filter(char::is_ascii_digit).collect();
        for form in [stored, digits.as_str()] {
            assert!(!contains(&raw, form), "{form} found in raw storage");
        }
    }
    for kept in [
        "payment failed for <card>",
        "checkout.charge(<card>)",
        "CardDeclined(<card>)",
        "payment failed for qty 2 <card>",
    ] {
        assert!(contains(&raw, kept), "{kept} missing from raw storage");
    }
    // The subject's own reports (sealed), as their access report shows them.
    let records = export(&mesh, &subject).await?;
    assert_eq!(records.len(), 4);
    for record in records {
        let data = format!("{:?}", record.data);
        assert_eq!(data.matches("<card>").count(), 3, "{data}");
        for (_, stored) in CARDS {
            assert!(!data.contains(stored), "{stored} in {data}");
        }
    }
    mesh.logs().assert_clean(&secrets(
        &person,
        &CARDS.map(|(_, stored)| ("card number", stored)),
    ));
    Ok(())
}

async fn object_to_crash_reports(
    mesh: &pdm_testkit::Mesh,
    subject: &str,
    withdraw: bool,
) -> anyhow::Result<()> {
    mesh.consent()
        .record_objection(RecordObjectionRequest {
            subject_id: subject.to_owned(),
            purpose: "crash_reports".into(),
            withdraw,
            source: Source::PrivacyRequest as i32,
            actor: "privacy-team".into(),
        })
        .await?;
    Ok(())
}

/// Policy, "Information about any crashes or errors" and "Legal Basis for Processing":
/// crash reports are filed on legitimate interests, the basis the access report names,
/// and the subject's objection to them is honoured.
#[tokio::test]
async fn crash_reports_rest_on_legitimate_interests_and_an_objection_stops_them()
-> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (person, subject) = sign_up(&mesh, Region::Eea).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);
    let db = mesh.connect_db("telemetry").await?;

    let stored = report_crash(&mut client, crash(&subject, at, "boom", "")).await?;
    assert!(!stored.crash_id.is_empty());
    assert_eq!(stored.dropped, DropReason::Unspecified as i32);
    let records = export(&mesh, &subject).await?;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].purposes, ["crash_reports"]);
    assert_eq!(
        records[0].legal_basis,
        LegalBasis::LegitimateInterests as i32
    );

    object_to_crash_reports(&mesh, &subject, false).await?;
    let refused = report_crash(&mut client, crash(&subject, at, "boom again", "")).await?;
    assert!(refused.crash_id.is_empty(), "{refused:?}");
    assert_eq!(refused.dropped, DropReason::Objected as i32);
    assert_eq!(
        rows(&db, "crashes").await,
        1,
        "nothing stored, not even unnamed"
    );

    // Anonymous reports name nobody who could object.
    let anonymous = report_crash(&mut client, crash("", at, "boom", "")).await?;
    assert!(!anonymous.crash_id.is_empty());

    object_to_crash_reports(&mesh, &subject, true).await?;
    let again = report_crash(&mut client, crash(&subject, at, "boom", "")).await?;
    assert!(!again.crash_id.is_empty(), "the objection was withdrawn");

    mesh.consent()
        .set_restriction(SetRestrictionRequest {
            subject_id: subject.clone(),
            restricted: true,
            source: Source::PrivacyRequest as i32,
            actor: "privacy-team".into(),
        })
        .await?;
    let restricted = report_crash(&mut client, crash(&subject, at, "boom", "")).await?;
    assert_eq!(restricted.dropped, DropReason::Restricted as i32);
    assert_eq!(rows_where(&db, "crashes", "subject_id", &subject).await, 2);
    assert_eq!(rows(&db, "crashes").await, 3);
    mesh.logs().assert_clean(&secrets(&person, &[]));
    Ok(())
}
