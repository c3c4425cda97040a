//! Bad input is refused with a field violation per bad field, and nothing is stored:
//! no policy version, hold, trigger or run, and no service is asked anything.

mod support;

use std::sync::Arc;

use pdm_proto::{
    common::v1::LegalBasis,
    retention::v1::{
        self as pb, GetPurgeRunRequest, GetScheduleRequest, ListLegalHoldsRequest,
        ListPolicyVersionsRequest, ListPurgeRunsRequest, PlaceLegalHoldRequest,
        RecordTriggerRequest, ReleaseLegalHoldRequest, RetryPurgeRequest, RunPurgeRequest,
        UpsertPolicyRequest,
    },
    subject::v1::RetentionTrigger,
};
use pdm_runtime::{Clock, ManualClock, convert::timestamp, tonic_types::StatusExt};
use pdm_testkit::{
    GatedServer, Mesh,
    assert::{field_violations, rows},
    start_time,
};
use support::{period, retention_only, set};
use tonic::{Code, Status};

/// A card number as people type it: plain, grouped by spaces, by hyphens, and after
/// another number.
const CARDS: [&str; 4] = [
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "qty 2 4111 1111 1111 1111",
];

/// Asserts `answer` is INVALID_ARGUMENT with one violation: a card number in `field`.
fn assert_card_refused<T: std::fmt::Debug>(answer: Result<T, Status>, field: &str, card: &str) {
    let status = match answer {
        Ok(ok) => panic!("{field} = {card:?} was accepted: {ok:?}"),
        Err(status) => status,
    };
    assert_eq!(field_violations(&status), [field], "{field} = {card:?}");
    let descriptions: Vec<String> = status
        .get_details_bad_request()
        .map(|b| {
            b.field_violations
                .into_iter()
                .map(|v| v.description)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        descriptions,
        ["must not contain a payment card number"],
        "{field} = {card:?}"
    );
}

fn good_policy() -> pb::Policy {
    pb::Policy {
        category: "hr.application".into(),
        period: period(0, 6, 0),
        trigger: RetentionTrigger::RequestCompleted as i32,
        legal_basis: LegalBasis::LegitimateInterests as i32,
        description: String::new(),
        changed_by: "dpo".into(),
        ..Default::default()
    }
}

fn good_hold() -> pb::LegalHold {
    pb::LegalHold {
        subject_id: uuid::Uuid::now_v7().to_string(),
        category: "billing.record".into(),
        reason: "litigation".into(),
        reference: "Case 1".into(),
        placed_by: "legal".into(),
        ..Default::default()
    }
}

/// Retention alone, purging only the gated service `archive` (open), so a test sees
/// whether a refused request reached any service.
async fn retention_with_gate() -> anyhow::Result<(GatedServer, Arc<ManualClock>, Mesh)> {
    let gated = GatedServer::start().await?;
    gated.gate.open();
    let mut settings = gated.settings("archive");
    settings.push(set("retention.services", "archive"));
    let clock = ManualClock::new(start_time());
    let mesh = retention_only(&clock, settings).await?;
    Ok((gated, clock, mesh))
}

/// The policy versions the seed stores.
fn seeded() -> anyhow::Result<u64> {
    Ok(u64::try_from(
        pdm_retention::domain::seed::policies(13).len(),
    )?)
}

/// Nothing was stored (the seed's policy versions only), and no service was asked
/// anything.
async fn nothing_stored(mesh: &Mesh, gated: &GatedServer) -> anyhow::Result<()> {
    let db = mesh.connect_db("retention").await?;
    assert_eq!(
        rows(&db, "policy_versions").await,
        seeded()?,
        "the seed only"
    );
    assert_eq!(rows(&db, "legal_holds").await, 0);
    assert_eq!(rows(&db, "subject_triggers").await, 0);
    assert_eq!(rows(&db, "purge_runs").await, 0);
    assert_eq!(rows(&db, "purge_service_results").await, 0);
    assert_eq!(gated.gate.calls(), 0);
    Ok(())
}

#[tokio::test]
async fn bad_policies_name_every_bad_field_and_store_nothing() -> anyhow::Result<()> {
    let (gated, _clock, mesh) = retention_with_gate().await?;
    let mut retention = mesh.retention();
    let long = "x".repeat(501);
    let err = retention
        .upsert_policy(UpsertPolicyRequest { policy: None })
        .await
        .expect_err("no policy");
    assert_eq!(field_violations(&err), ["policy"]);
    let err = retention
        .upsert_policy(UpsertPolicyRequest {
            policy: Some(pb::Policy {
                category: "Bad Key".into(),
                period: period(-1, 0, 0),
                trigger: 0,
                legal_basis: 42,
                description: long.clone(),
                changed_by: String::new(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("bad policy");
    assert_eq!(
        field_violations(&err),
        [
            "policy.category",
            "policy.trigger",
            "policy.period",
            "policy.legal_basis",
            "policy.description",
            "policy.changed_by",
        ]
    );
    for (bad, field) in [
        (
            pb::Policy {
                period: period(101, 0, 0),
                ..good_policy()
            },
            "policy.period",
        ),
        (
            pb::Policy {
                trigger: RetentionTrigger::Never as i32,
                ..good_policy()
            },
            "policy.period",
        ),
        (
            pb::Policy {
                trigger: 17,
                ..good_policy()
            },
            "policy.trigger",
        ),
        (
            pb::Policy {
                category: "x".repeat(65),
                ..good_policy()
            },
            "policy.category",
        ),
        (
            pb::Policy {
                changed_by: "seed".into(),
                ..good_policy()
            },
            "policy.changed_by",
        ),
        (
            pb::Policy {
                changed_by: "y".repeat(129),
                ..good_policy()
            },
            "policy.changed_by",
        ),
    ] {
        let err = retention
            .upsert_policy(UpsertPolicyRequest { policy: Some(bad) })
            .await
            .expect_err("bad policy");
        assert_eq!(field_violations(&err), [field]);
    }
    let err = retention
        .list_policy_versions(ListPolicyVersionsRequest {
            category: String::new(),
        })
        .await
        .expect_err("no category");
    assert_eq!(field_violations(&err), ["category"]);

    nothing_stored(&mesh, &gated).await?;

    // The good version goes through.
    retention
        .upsert_policy(UpsertPolicyRequest {
            policy: Some(good_policy()),
        })
        .await?;
    let db = mesh.connect_db("retention").await?;
    assert_eq!(rows(&db, "policy_versions").await, seeded()? + 1);
    Ok(())
}

#[tokio::test]
async fn bad_legal_holds_name_every_bad_field_and_store_nothing() -> anyhow::Result<()> {
    let (gated, _clock, mesh) = retention_with_gate().await?;
    let mut retention = mesh.retention();
    let long = "x".repeat(501);
    let err = retention
        .place_legal_hold(PlaceLegalHoldRequest { hold: None })
        .await
        .expect_err("no hold");
    assert_eq!(field_violations(&err), ["hold"]);
    let err = retention
        .place_legal_hold(PlaceLegalHoldRequest {
            hold: Some(pb::LegalHold {
                subject_id: "not-a-uuid".into(),
                category: "no.such.category".into(),
                reason: String::new(),
                reference: long.clone(),
                placed_by: String::new(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("bad hold");
    assert_eq!(
        field_violations(&err),
        [
            "hold.subject_id",
            "hold.category",
            "hold.reason",
            "hold.reference",
            "hold.placed_by",
        ]
    );
    let err = retention
        .place_legal_hold(PlaceLegalHoldRequest {
            hold: Some(pb::LegalHold {
                subject_id: String::new(),
                category: String::new(),
                ..good_hold()
            }),
        })
        .await
        .expect_err("a hold on nothing");
    assert_eq!(field_violations(&err), ["hold.subject_id"]);
    let err = retention
        .release_legal_hold(ReleaseLegalHoldRequest {
            hold_id: "h1".into(),
            released_by: String::new(),
        })
        .await
        .expect_err("bad release");
    assert_eq!(field_violations(&err), ["hold_id", "released_by"]);
    let err = retention
        .release_legal_hold(ReleaseLegalHoldRequest {
            hold_id: uuid::Uuid::now_v7().to_string(),
            released_by: "legal".into(),
        })
        .await
        .expect_err("unknown hold");
    assert_eq!(err.code(), Code::NotFound);
    let err = retention
        .list_legal_holds(ListLegalHoldsRequest {
            include_released: false,
            subject_id: "nope".into(),
        })
        .await
        .expect_err("bad subject");
    assert_eq!(field_violations(&err), ["subject_id"]);

    nothing_stored(&mesh, &gated).await?;

    // The good version goes through.
    retention
        .place_legal_hold(PlaceLegalHoldRequest {
            hold: Some(good_hold()),
        })
        .await?;
    let db = mesh.connect_db("retention").await?;
    assert_eq!(rows(&db, "legal_holds").await, 1);
    Ok(())
}

#[tokio::test]
async fn bad_triggers_and_schedule_lookups_name_every_bad_field_and_store_nothing()
-> anyhow::Result<()> {
    let (gated, clock, mesh) = retention_with_gate().await?;
    let mut retention = mesh.retention();
    let err = retention
        .record_trigger(RecordTriggerRequest {
            subject_id: String::new(),
            trigger: RetentionTrigger::EventTime as i32,
            occurred_at: Some(timestamp(clock.now() + chrono::Duration::days(1))),
        })
        .await
        .expect_err("bad trigger");
    assert_eq!(
        field_violations(&err),
        ["subject_id", "trigger", "occurred_at"]
    );
    let err = retention
        .get_schedule(GetScheduleRequest {
            subject_id: "NOT-A-UUID".into(),
        })
        .await
        .expect_err("bad subject");
    assert_eq!(field_violations(&err), ["subject_id"]);

    nothing_stored(&mesh, &gated).await
}

#[tokio::test]
async fn bad_purge_run_requests_name_every_bad_field_and_start_no_run() -> anyhow::Result<()> {
    let (gated, _clock, mesh) = retention_with_gate().await?;
    let mut retention = mesh.retention();
    for triggered_by in [String::new(), "z".repeat(129)] {
        let err = retention
            .run_purge(RunPurgeRequest {
                dry_run: false,
                triggered_by,
            })
            .await
            .expect_err("bad run");
        assert_eq!(field_violations(&err), ["triggered_by"]);
    }
    let err = retention
        .retry_purge(RetryPurgeRequest {
            run_id: "run-1".into(),
        })
        .await
        .expect_err("bad run id");
    assert_eq!(field_violations(&err), ["run_id"]);
    let err = retention
        .retry_purge(RetryPurgeRequest {
            run_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown run");
    assert_eq!(err.code(), Code::NotFound);
    let err = retention
        .get_purge_run(GetPurgeRunRequest {
            run_id: String::new(),
        })
        .await
        .expect_err("no run id");
    assert_eq!(field_violations(&err), ["run_id"]);
    let err = retention
        .list_purge_runs(ListPurgeRunsRequest {
            page_size: 101,
            page_token: "page-2".into(),
        })
        .await
        .expect_err("bad page");
    assert_eq!(field_violations(&err), ["page_size", "page_token"]);

    nothing_stored(&mesh, &gated).await
}

#[tokio::test]
async fn card_numbers_are_refused_in_every_free_text_field_policy_we_dont_store_payment_information()
-> anyhow::Result<()> {
    // Policies, holds and runs are kept for years and shown to subjects and auditors: a
    // card number typed as a reason, a reference or a name would be kept with them. A
    // category key's format lets digits and hyphens through, so keys are checked too.
    let (gated, _clock, mesh) = retention_with_gate().await?;
    let mut retention = mesh.retention();
    let db = mesh.connect_db("retention").await?;
    let held = retention
        .place_legal_hold(PlaceLegalHoldRequest {
            hold: Some(good_hold()),
        })
        .await?
        .into_inner()
        .hold
        .ok_or_else(|| anyhow::anyhow!("no hold"))?;
    let policies = rows(&db, "policy_versions").await;

    type Set<R> = fn(&mut R, String);
    let policy_fields: [(&str, Set<pb::Policy>); 3] = [
        ("policy.category", |p, v| p.category = v),
        ("policy.description", |p, v| p.description = v),
        ("policy.changed_by", |p, v| p.changed_by = v),
    ];
    let hold_fields: [(&str, Set<pb::LegalHold>); 4] = [
        ("hold.category", |h, v| h.category = v),
        ("hold.reason", |h, v| h.reason = v),
        ("hold.reference", |h, v| h.reference = v),
        ("hold.placed_by", |h, v| h.placed_by = v),
    ];
    for card in CARDS {
        for (field, set) in policy_fields {
            let mut policy = good_policy();
            set(&mut policy, card.to_owned());
            let answer = retention
                .upsert_policy(UpsertPolicyRequest {
                    policy: Some(policy),
                })
                .await;
            assert_card_refused(answer, field, card);
        }
        let answer = retention
            .list_policy_versions(ListPolicyVersionsRequest {
                category: card.to_owned(),
            })
            .await;
        assert_card_refused(answer, "category", card);
        for (field, set) in hold_fields {
            let mut hold = good_hold();
            set(&mut hold, card.to_owned());
            let answer = retention
                .place_legal_hold(PlaceLegalHoldRequest { hold: Some(hold) })
                .await;
            assert_card_refused(answer, field, card);
        }
        let answer = retention
            .release_legal_hold(ReleaseLegalHoldRequest {
                hold_id: held.hold_id.clone(),
                released_by: card.to_owned(),
            })
            .await;
        assert_card_refused(answer, "released_by", card);
        let answer = retention
            .run_purge(RunPurgeRequest {
                dry_run: false,
                triggered_by: card.to_owned(),
            })
            .await;
        assert_card_refused(answer, "triggered_by", card);
    }

    // Nothing was stored or changed, and no service was asked anything.
    assert_eq!(rows(&db, "policy_versions").await, policies);
    assert_eq!(rows(&db, "legal_holds").await, 1, "the good hold only");
    let active = retention
        .list_legal_holds(ListLegalHoldsRequest {
            include_released: false,
            subject_id: String::new(),
        })
        .await?
        .into_inner()
        .holds;
    assert_eq!(
        active,
        std::slice::from_ref(&held),
        "the hold is still active, unchanged"
    );
    assert_eq!(rows(&db, "purge_runs").await, 0);
    assert_eq!(gated.gate.calls(), 0);

    // The good versions of the same requests go through.
    retention
        .upsert_policy(UpsertPolicyRequest {
            policy: Some(pb::Policy {
                description: "six months after the application is decided".into(),
                ..good_policy()
            }),
        })
        .await?;
    retention
        .release_legal_hold(ReleaseLegalHoldRequest {
            hold_id: held.hold_id.clone(),
            released_by: "legal".into(),
        })
        .await?;
    assert_eq!(rows(&db, "policy_versions").await, policies + 1);
    let secrets: Vec<(&str, &str)> = CARDS.iter().map(|c| ("card number", *c)).collect();
    mesh.logs().assert_clean(&secrets);
    Ok(())
}
