//! Retention policies: seeded from the privacy policy at first start ("How long we keep
//! your information"), extended by configuration, changed by UpsertPolicy with every
//! change a new version, and the next run follows the version in force.

mod support;

use chrono::Duration;
use pdm_proto::{
    common::v1::LegalBasis,
    retention::v1::{
        self as pb, ListPoliciesRequest, ListPolicyVersionsRequest, UpsertPolicyRequest,
    },
    subject::v1::RetentionTrigger,
};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_testkit::{GatedServer, start_time};
use support::{Client, months_before, period, retention_only, run_purge, set};
use tonic::Code;

async fn policies(client: &mut Client) -> anyhow::Result<Vec<pb::Policy>> {
    Ok(client
        .list_policies(ListPoliciesRequest {})
        .await?
        .into_inner()
        .policies)
}

fn find<'a>(policies: &'a [pb::Policy], category: &str) -> &'a pb::Policy {
    policies
        .iter()
        .find(|p| p.category == category)
        .unwrap_or_else(|| panic!("no policy for {category}"))
}

#[tokio::test]
async fn the_seed_follows_the_privacy_policy_and_every_change_is_a_new_version()
-> anyhow::Result<()> {
    let gated = GatedServer::start().await?;
    gated.gate.open();
    let mut settings = gated.settings("archive");
    settings.push(set("retention.services", "archive"));
    let clock = ManualClock::new(start_time());
    let mesh = retention_only(&clock, settings).await?;
    let mut retention = mesh.retention();

    let seed = policies(&mut retention).await?;
    assert_eq!(seed.len(), 14);
    assert!(seed.iter().all(|p| p.version == 1
        && p.changed_by == "seed"
        && p.effective_from == Some(timestamp(start_time()))));
    let billing = find(&seed, "billing.record");
    assert_eq!(billing.period, period(8, 0, 0));
    assert_eq!(billing.trigger, RetentionTrigger::AccountClosed as i32);
    assert_eq!(billing.legal_basis, LegalBasis::LegalObligation as i32);
    assert!(
        billing
            .description
            .contains("eight years after it is closed")
    );
    for (category, trigger, length) in [
        (
            "account.profile",
            RetentionTrigger::AccountClosed,
            period(0, 0, 0),
        ),
        (
            "account.session",
            RetentionTrigger::EventTime,
            period(0, 0, 30),
        ),
        (
            "support.ticket",
            RetentionTrigger::EventTime,
            period(8, 0, 0),
        ),
        (
            "telemetry.event",
            RetentionTrigger::EventTime,
            period(0, 13, 0),
        ),
        (
            "telemetry.crash",
            RetentionTrigger::EventTime,
            period(0, 12, 0),
        ),
        (
            "consent.proof",
            RetentionTrigger::AccountClosed,
            period(8, 0, 0),
        ),
        (
            "transfers.log",
            RetentionTrigger::EventTime,
            period(8, 0, 0),
        ),
        // Issue 16: aggregates and the access trail have a limit too.
        (
            "telemetry.aggregate",
            RetentionTrigger::EventTime,
            period(10, 0, 0),
        ),
        ("audit.access", RetentionTrigger::EventTime, period(8, 0, 0)),
        (
            "rights.request",
            RetentionTrigger::RequestCompleted,
            period(2, 0, 0),
        ),
        ("backup", RetentionTrigger::Never, period(0, 0, 0)),
    ] {
        let p = find(&seed, category);
        assert_eq!(
            (p.trigger, p.period),
            (trigger as i32, length),
            "{category}"
        );
    }
    assert!(find(&seed, "backup").description.contains("key deletion"));

    // A change is a new version; the old one stays readable.
    clock.advance(Duration::days(3));
    let six_months = pb::Policy {
        category: "telemetry.event".into(),
        period: period(0, 6, 0),
        trigger: RetentionTrigger::EventTime as i32,
        legal_basis: LegalBasis::Consent as i32,
        description: "6 months from when the event happened".into(),
        changed_by: "dpo@example.org".into(),
        version: 99,
        ..Default::default()
    };
    let v2 = retention
        .upsert_policy(UpsertPolicyRequest {
            policy: Some(six_months.clone()),
        })
        .await?
        .into_inner()
        .policy
        .expect("policy");
    assert_eq!(v2.version, 2, "the server numbers versions");
    assert_eq!(v2.effective_from, Some(timestamp(clock.now())));
    assert_eq!(v2.changed_by, "dpo@example.org");

    // The same policy again changes nothing.
    clock.advance(Duration::days(1));
    let same = retention
        .upsert_policy(UpsertPolicyRequest {
            policy: Some(six_months),
        })
        .await?
        .into_inner()
        .policy
        .expect("policy");
    assert_eq!(same, v2);

    // A new category, its rule in words made from the period and trigger.
    let hr = retention
        .upsert_policy(UpsertPolicyRequest {
            policy: Some(pb::Policy {
                category: "hr.application".into(),
                period: period(0, 6, 0),
                trigger: RetentionTrigger::RequestCompleted as i32,
                legal_basis: LegalBasis::LegitimateInterests as i32,
                changed_by: "dpo@example.org".into(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .policy
        .expect("policy");
    assert_eq!(hr.version, 1);
    assert_eq!(hr.description, "6 months after the request is completed");

    let versions = retention
        .list_policy_versions(ListPolicyVersionsRequest {
            category: "telemetry.event".into(),
        })
        .await?
        .into_inner()
        .versions;
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.version, v.period, v.changed_by.as_str()))
            .collect::<Vec<_>>(),
        [
            (2, period(0, 6, 0), "dpo@example.org"),
            (1, period(0, 13, 0), "seed")
        ],
        "newest first"
    );
    let err = retention
        .list_policy_versions(ListPolicyVersionsRequest {
            category: "no.such".into(),
        })
        .await
        .expect_err("unknown category");
    assert_eq!(err.code(), Code::NotFound);

    let now = policies(&mut retention).await?;
    assert_eq!(now.len(), 15);
    assert_eq!(find(&now, "telemetry.event"), &v2);

    // The next run follows the version in force.
    let (_, run) = run_purge(&mut retention, true).await?;
    let sent = &gated.gate.purge_requests()[0];
    let rule = |category: &str| {
        sent.rules
            .iter()
            .find(|r| r.category == category)
            .cloned()
            .unwrap_or_else(|| panic!("no rule for {category}"))
    };
    assert_eq!(
        rule("telemetry.event").cutoff,
        Some(timestamp(months_before(clock.now(), 6)))
    );
    assert_eq!(
        rule("hr.application").trigger,
        RetentionTrigger::RequestCompleted as i32
    );
    assert_eq!(run.rules, sent.rules);
    Ok(())
}

#[tokio::test]
async fn configuration_extends_the_seed_and_sets_the_period_of_usage_events() -> anyhow::Result<()>
{
    let clock = ManualClock::new(start_time());
    let mesh = retention_only(
        &clock,
        vec![
            set("retention.services", "identity"),
            set("retention.telemetry_months", 9),
            set("retention.policies[0].category", "hr.application"),
            set("retention.policies[0].trigger", "request_completed"),
            set("retention.policies[0].months", 6),
            set("retention.policies[0].legal_basis", "legitimate_interests"),
            set("retention.policies[1].category", "support.ticket"),
            set("retention.policies[1].trigger", "event_time"),
            set("retention.policies[1].years", 3),
            set("retention.policies[1].legal_basis", "contract"),
            set("retention.policies[1].description", "three years"),
        ],
    )
    .await?;
    let mut retention = mesh.retention();
    let seed = policies(&mut retention).await?;
    assert_eq!(seed.len(), 15);
    assert_eq!(find(&seed, "telemetry.event").period, period(0, 9, 0));
    let hr = find(&seed, "hr.application");
    assert_eq!((hr.version, hr.changed_by.as_str()), (1, "seed"));
    assert_eq!(hr.description, "6 months after the request is completed");
    let tickets = find(&seed, "support.ticket");
    assert_eq!(tickets.period, period(3, 0, 0));
    assert_eq!(tickets.description, "three years");
    Ok(())
}
