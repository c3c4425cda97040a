//! The telemetry facade against real identity, consent and telemetry services: events
//! admitted only with agreement and stored once per batch id, a crash report, a visitor's
//! tracking choice, k-anonymous aggregates, and a bad batch refused with its fields.

mod support;

use pdm_client::{
    consent::Grant,
    telemetry::{ChoiceMade, Crash, Dimension, DropReason, Event, Happened},
};
use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::common::v1::Region;
use pdm_telemetry::Telemetry;
use pdm_testkit::{TestMesh, fake::Person};
use support::{bad_fields, client};

#[tokio::test]
async fn events_choices_crashes_and_aggregates_in_domain_types() -> anyhow::Result<()> {
    let mesh = TestMesh::new()
        .with(Identity)
        .with(Consent)
        .with(Telemetry)
        .start()
        .await?;
    let pdm = client(&mesh)?;
    let telemetry = pdm.telemetry()?;
    let eea = || Person {
        region: Region::Eea,
        ..Person::new()
    };
    let (agreed, silent) = (mesh.sign_up(&eea()).await?, mesh.sign_up(&eea()).await?);
    pdm.consent()?
        .grant(&Grant {
            subject_id: agreed.clone(),
            purpose: "product_analytics".to_owned(),
            policy_version: "2024-06-28".to_owned(),
            text_hash: "b".repeat(64),
            actor: "cookie-banner".to_owned(),
        })
        .await?;

    let events = [
        Event::of(&agreed, Happened::FeatureUsed("export".to_owned())),
        Event::of(&silent, Happened::PageView("settings".to_owned())),
    ];
    let ingested = telemetry.ingest_events("batch-one", &events).await?;
    assert_eq!(ingested.accepted, 1, "{ingested:?}");
    assert_eq!(ingested.dropped, [(DropReason::NoConsent, 1)]);
    assert!(!ingested.duplicate);
    let again = telemetry.ingest_events("batch-one", &events).await?;
    assert!(again.duplicate && again.accepted == 1, "{again:?}");

    let crash = telemetry
        .report_crash(&Crash {
            subject_id: Some(agreed.clone()),
            error_type: "NullPointerException".to_owned(),
            message: "card 4111 1111 1111 1111 declined".to_owned(),
            stack_trace: "at Checkout.pay".to_owned(),
            occurred_at: std::time::SystemTime::now(),
            device: None,
        })
        .await?;
    assert!(
        crash.crash_id.is_some() && crash.dropped.is_none(),
        "{crash:?}"
    );
    assert!(crash.scrubbed >= 1, "{crash:?}");

    let choice = telemetry
        .record_tracking_choice(&ChoiceMade {
            device_id: "device-1".to_owned(),
            analytics: true,
            advertising: true,
            global_privacy_control: true,
            policy_version: "2024-06".to_owned(),
            text_hash: "c".repeat(64),
        })
        .await?;
    assert!(
        choice.analytics && !choice.advertising_effective,
        "{choice:?}"
    );
    let current = telemetry.get_tracking_choice("device-1").await?;
    assert_eq!(
        current.map(|c| c.policy_version),
        Some("2024-06".to_owned())
    );
    assert_eq!(telemetry.get_tracking_choice("device-2").await?, None);

    let today = chrono_free_today();
    let aggregates = telemetry
        .query_aggregates(Dimension::Feature, &today, &today)
        .await?;
    // One person is fewer than k: withheld, not shown.
    assert!(aggregates.k_threshold >= 5, "{aggregates:?}");
    assert!(
        aggregates.buckets.is_empty() && aggregates.suppressed >= 1,
        "{aggregates:?}"
    );

    let fields = bad_fields(
        telemetry
            .ingest_events(
                "",
                &[Event::of(
                    &agreed,
                    Happened::FeatureUsed("pay 4111 1111 1111 1111".to_owned()),
                )],
            )
            .await,
    );
    assert_eq!(fields, ["batch_id", "events[0].feature"]);
    Ok(())
}

/// Today's UTC date as YYYY-MM-DD (civil-from-days, so the test needs no date crate).
fn chrono_free_today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
