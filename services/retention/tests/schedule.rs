//! A subject's schedule (the "how long we intend to store" answer of an access request):
//! for a closed account, billing records are kept eight years after closure ("and for
//! eight years after that"), and a purge after that date removes them.

mod support;

use chrono::{DateTime, Duration, Months, Utc};
use pdm_proto::{
    common::v1::LegalBasis,
    identity::v1 as identity_pb,
    retention::v1::{
        self as pb, GetScheduleRequest, PlaceLegalHoldRequest, RecordTriggerRequest,
        ReleaseLegalHoldRequest, RunStatus,
    },
    subject::v1::RetentionTrigger,
};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_testkit::{assert::rows, fake::Person, start_time};
use support::{Client, count, mesh, period, run_purge, status};

async fn schedule(client: &mut Client, subject: &str) -> anyhow::Result<Vec<pb::ScheduleEntry>> {
    let answer = client
        .get_schedule(GetScheduleRequest {
            subject_id: subject.to_owned(),
        })
        .await?
        .into_inner();
    assert_eq!(answer.subject_id, subject);
    Ok(answer.entries)
}

fn entry<'a>(entries: &'a [pb::ScheduleEntry], category: &str) -> &'a pb::ScheduleEntry {
    entries
        .iter()
        .find(|e| e.category == category)
        .unwrap_or_else(|| panic!("no entry for {category}"))
}

fn eight_years_after(t: DateTime<Utc>) -> DateTime<Utc> {
    t.checked_add_months(Months::new(96)).expect("date")
}

#[tokio::test]
async fn a_closed_account_shows_the_eight_year_date_and_billing_goes_after_it() -> anyhow::Result<()>
{
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock, Vec::new()).await?;
    let mut identity = mesh.identity();
    let mut retention = mesh.retention();
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;

    // Before closure: rules, but no dates.
    let open = schedule(&mut retention, &subject).await?;
    assert_eq!(open.len(), 14);
    assert!(
        open.iter()
            .all(|e| e.triggered_at.is_none() && e.delete_after.is_none())
    );

    let billing_name = "Finance Team Quux";
    identity
        .set_billing_contact(identity_pb::SetBillingContactRequest {
            subject_id: subject.clone(),
            billing_contact: Some(identity_pb::BillingContact {
                name: billing_name.into(),
                email: "finance@example.com".into(),
                phone: String::new(),
                payment_processor_ref: "cus_retention".into(),
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
    let identity_db = mesh.connect_db("identity").await?;
    assert_eq!(rows(&identity_db, "billing_archive").await, 1);
    let closed = clock.now();
    let recorded = retention
        .record_trigger(RecordTriggerRequest {
            subject_id: subject.clone(),
            trigger: RetentionTrigger::AccountClosed as i32,
            occurred_at: Some(timestamp(closed)),
        })
        .await?
        .into_inner();
    assert_eq!(recorded.occurred_at, Some(timestamp(closed)));
    // Recorded again later (a retried message): the first time stands.
    clock.advance(Duration::days(1));
    let again = retention
        .record_trigger(RecordTriggerRequest {
            subject_id: subject.clone(),
            trigger: RetentionTrigger::AccountClosed as i32,
            occurred_at: None,
        })
        .await?
        .into_inner();
    assert_eq!(again.occurred_at, Some(timestamp(closed)));

    let entries = schedule(&mut retention, &subject).await?;
    let billing = entry(&entries, "billing.record");
    assert_eq!(billing.triggered_at, Some(timestamp(closed)));
    assert_eq!(
        billing.delete_after,
        Some(timestamp(eight_years_after(closed))),
        "the 8-year date"
    );
    assert_eq!(billing.period, period(8, 0, 0));
    assert_eq!(billing.trigger, RetentionTrigger::AccountClosed as i32);
    assert_eq!(billing.legal_basis, LegalBasis::LegalObligation as i32);
    assert!(billing.rule.contains("eight years"), "{}", billing.rule);
    assert!(billing.hold_ids.is_empty());
    assert_eq!(
        entry(&entries, "consent.proof").delete_after,
        Some(timestamp(eight_years_after(closed)))
    );
    assert_eq!(
        entry(&entries, "account.profile").delete_after,
        Some(timestamp(closed)),
        "erased when the account is deleted"
    );
    for category in ["account.session", "telemetry.event", "transfers.log"] {
        let e = entry(&entries, category);
        assert!(
            e.triggered_at.is_none() && e.delete_after.is_none(),
            "{category} counts from each record's own time"
        );
    }
    for category in ["telemetry.aggregate", "backup"] {
        assert!(
            entry(&entries, category).delete_after.is_none(),
            "{category}"
        );
    }

    // A hold on the subject's billing records shows in the schedule.
    let hold = retention
        .place_legal_hold(PlaceLegalHoldRequest {
            hold: Some(pb::LegalHold {
                subject_id: subject.clone(),
                category: "billing.record".into(),
                reason: "tax audit".into(),
                reference: "HMRC-2034-1".into(),
                placed_by: "legal".into(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .hold
        .expect("hold");
    let entries = schedule(&mut retention, &subject).await?;
    assert_eq!(
        entry(&entries, "billing.record").hold_ids,
        std::slice::from_ref(&hold.hold_id)
    );
    assert!(entry(&entries, "support.ticket").hold_ids.is_empty());
    // Another subject's schedule does not show it.
    let stranger = schedule(&mut retention, &uuid::Uuid::now_v7().to_string()).await?;
    assert!(entry(&stranger, "billing.record").hold_ids.is_empty());

    // The day before the date, the record stays; the day after, held, it stays too.
    clock.set(eight_years_after(closed) - Duration::days(1));
    let (_, run) = run_purge(&mut retention, false).await?;
    assert_eq!(status(&run), RunStatus::Completed);
    assert_eq!(
        count(&run, "identity", "billing.record"),
        (0, 0, Vec::new())
    );
    clock.set(eight_years_after(closed) + Duration::days(1));
    let (_, run) = run_purge(&mut retention, false).await?;
    assert_eq!(
        count(&run, "identity", "billing.record"),
        (0, 1, vec![hold.hold_id.clone()])
    );
    assert_eq!(rows(&identity_db, "billing_archive").await, 1);

    // Released: it goes.
    retention
        .release_legal_hold(ReleaseLegalHoldRequest {
            hold_id: hold.hold_id.clone(),
            released_by: "legal".into(),
        })
        .await?;
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
