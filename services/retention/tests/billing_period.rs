//! One source of truth for how long billing records are kept after an account closes
//! (policy, "How long we keep your information": "for eight years after that ... unless a
//! longer retention period is required or permitted by law (such as tax, accounting or
//! other legal requirements)"): the retention service's policy `billing.record`. Identity
//! archives the record with the closure time only; the date in the schedule and the purge
//! both come from the policy in force, so a change made with UpsertPolicy reaches records
//! archived before it.

mod support;

use chrono::{DateTime, Duration, Months, Utc};
use pdm_proto::{
    common::v1::LegalBasis,
    identity::v1 as identity_pb,
    retention::v1::{self as pb, GetScheduleRequest, RecordTriggerRequest, UpsertPolicyRequest},
    subject::v1::RetentionTrigger,
};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_testkit::{assert::rows, fake::Person, start_time};
use support::{Client, count, mesh, period, run_purge};

fn years_after(t: DateTime<Utc>, years: u32) -> DateTime<Utc> {
    t.checked_add_months(Months::new(12 * years)).expect("date")
}

async fn billing_entry(client: &mut Client, subject: &str) -> anyhow::Result<pb::ScheduleEntry> {
    Ok(client
        .get_schedule(GetScheduleRequest {
            subject_id: subject.to_owned(),
        })
        .await?
        .into_inner()
        .entries
        .into_iter()
        .find(|e| e.category == "billing.record")
        .expect("a billing.record entry"))
}

async fn set_billing_period(client: &mut Client, years: i32) -> anyhow::Result<pb::Policy> {
    Ok(client
        .upsert_policy(UpsertPolicyRequest {
            policy: Some(pb::Policy {
                category: "billing.record".into(),
                period: period(years, 0, 0),
                trigger: RetentionTrigger::AccountClosed as i32,
                legal_basis: LegalBasis::LegalObligation as i32,
                changed_by: "dpo@example.org".into(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .policy
        .expect("policy"))
}

#[tokio::test]
async fn an_upsert_of_billing_record_moves_the_date_and_the_purge_of_records_archived_before_it()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock, Vec::new()).await?;
    let mut identity = mesh.identity();
    let mut retention = mesh.retention();
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let billing_name = "Ledger Keeper Zyxwv";
    identity
        .set_billing_contact(identity_pb::SetBillingContactRequest {
            subject_id: subject.clone(),
            billing_contact: Some(identity_pb::BillingContact {
                name: billing_name.into(),
                email: "ledger@example.com".into(),
                phone: String::new(),
                payment_processor_ref: "cus_one_source".into(),
            }),
        })
        .await?;
    let receipt = identity
        .delete_account(identity_pb::DeleteAccountRequest {
            subject_id: subject.clone(),
            password: person.password.clone(),
            reason: identity_pb::DeletionReason::SwitchingService as i32,
            request_id: String::new(),
        })
        .await?
        .into_inner()
        .receipt
        .expect("receipt");
    // Identity names the policy and gives no date of its own: a date computed at erasure
    // would be wrong after the next UpsertPolicy.
    let kept = &receipt.retained[0];
    assert_eq!(kept.category, "billing.record");
    assert_eq!(kept.retain_until, None);
    assert!(kept.reason.contains("billing.record"), "{}", kept.reason);
    let identity_db = mesh.connect_db("identity").await?;
    assert_eq!(rows(&identity_db, "billing_archive").await, 1);
    let closed = clock.now();
    // What rights records when the erasure request completes.
    retention
        .record_trigger(RecordTriggerRequest {
            subject_id: subject.clone(),
            trigger: RetentionTrigger::AccountClosed as i32,
            occurred_at: Some(timestamp(closed)),
        })
        .await?;
    assert_eq!(
        billing_entry(&mut retention, &subject).await?.delete_after,
        Some(timestamp(years_after(closed, 8))),
        "the seed: eight years after closure"
    );

    // A year later the privacy team's accountants ask for ten years.
    clock.advance(Duration::days(365));
    let v2 = set_billing_period(&mut retention, 10).await?;
    assert_eq!(v2.version, 2);
    let entry = billing_entry(&mut retention, &subject).await?;
    assert_eq!(
        entry.delete_after,
        Some(timestamp(years_after(closed, 10))),
        "the schedule (what an access answer shows) follows the policy in force"
    );
    assert_eq!(entry.rule, v2.description);

    // Past the old eight years, the record archived under version 1 stays.
    clock.set(years_after(closed, 8) + Duration::days(1));
    let (_, run) = run_purge(&mut retention, false).await?;
    assert_eq!(
        count(&run, "identity", "billing.record"),
        (0, 0, Vec::new())
    );
    assert_eq!(rows(&identity_db, "billing_archive").await, 1);
    // Past the new ten years, it goes.
    clock.set(years_after(closed, 10) + Duration::days(1));
    let (_, run) = run_purge(&mut retention, false).await?;
    assert_eq!(
        count(&run, "identity", "billing.record"),
        (1, 0, Vec::new())
    );
    assert_eq!(rows(&identity_db, "billing_archive").await, 0);

    let mut secrets = person.secrets();
    secrets.push(("billing name", billing_name));
    mesh.logs().assert_clean(&secrets);
    Ok(())
}

#[tokio::test]
async fn a_shorter_billing_record_period_purges_records_archived_under_the_longer_one()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock, Vec::new()).await?;
    let mut identity = mesh.identity();
    let mut retention = mesh.retention();
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    identity
        .set_billing_contact(identity_pb::SetBillingContactRequest {
            subject_id: subject.clone(),
            billing_contact: Some(identity_pb::BillingContact {
                name: "Ledger Keeper Qwert".into(),
                email: "ledger@example.com".into(),
                phone: String::new(),
                payment_processor_ref: "cus_shorter".into(),
            }),
        })
        .await?;
    identity
        .delete_account(identity_pb::DeleteAccountRequest {
            subject_id: subject.clone(),
            password: person.password.clone(),
            reason: identity_pb::DeletionReason::SwitchingService as i32,
            request_id: String::new(),
        })
        .await?;
    let closed = clock.now();
    retention
        .record_trigger(RecordTriggerRequest {
            subject_id: subject.clone(),
            trigger: RetentionTrigger::AccountClosed as i32,
            occurred_at: Some(timestamp(closed)),
        })
        .await?;
    let identity_db = mesh.connect_db("identity").await?;

    // The law is read again: six years are enough.
    set_billing_period(&mut retention, 6).await?;
    assert_eq!(
        billing_entry(&mut retention, &subject).await?.delete_after,
        Some(timestamp(years_after(closed, 6)))
    );
    clock.set(years_after(closed, 6) - Duration::days(1));
    let (_, run) = run_purge(&mut retention, false).await?;
    assert_eq!(
        count(&run, "identity", "billing.record"),
        (0, 0, Vec::new())
    );
    clock.set(years_after(closed, 6) + Duration::days(1));
    let (_, run) = run_purge(&mut retention, false).await?;
    assert_eq!(
        count(&run, "identity", "billing.record"),
        (1, 0, Vec::new()),
        "gone at six years, not kept to the eight the record was archived under"
    );
    assert_eq!(rows(&identity_db, "billing_archive").await, 0);
    Ok(())
}
