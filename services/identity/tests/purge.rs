//! Purging expired records by the retention service's rules ("How we store and secure
//! information we collect": "We only ever retain personal data for as long as is necessary",
//! billing records "for eight years after that"), sparing records under a legal hold.

use std::{collections::BTreeMap, sync::Arc};

use chrono::{DateTime, Duration, Months, Utc};
use pdm_identity::Identity;
use pdm_proto::{
    identity::v1::{self as pb, identity_service_client::IdentityServiceClient},
    subject::v1::{
        LegalHold, PurgeExpiredRequest, PurgeExpiredResponse, PurgeRule, RetentionTrigger,
    },
};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_testkit::{
    Mesh, TestMesh,
    assert::{field_violations, rows, rows_where},
    fake::{self, Person},
    start_time,
};
use tonic::transport::Channel;

const SESSION: &str = "account.session";
const TICKET: &str = "support.ticket";
const BILLING: &str = "billing.record";

async fn mesh_with_clock(clock: &Arc<ManualClock>) -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(Identity)
        .clock(clock.clone())
        .start()
        .await
}

/// Signs `person` up (once) and leaves a session and a ticket with one attachment.
async fn activity(
    identity: &mut IdentityServiceClient<Channel>,
    person: &Person,
    subject: Option<&str>,
) -> anyhow::Result<String> {
    let subject = match subject {
        Some(s) => s.to_owned(),
        None => {
            identity
                .create_account(person.sign_up())
                .await?
                .into_inner()
                .account
                .expect("account")
                .subject_id
        }
    };
    identity
        .authenticate(pb::AuthenticateRequest {
            email: person.email.clone(),
            password: person.password.clone(),
        })
        .await?;
    identity
        .create_support_ticket(pb::CreateSupportTicketRequest {
            subject_id: subject.clone(),
            contact: person.email.clone(),
            summary: fake::phrase("Slow page"),
            description: "The settings page takes a minute to load.".into(),
            attachments: vec![pb::TicketAttachment {
                file_name: "timing.pdf".into(),
                content: fake::pdf(),
                ..Default::default()
            }],
            special_categories: Vec::new(),
        })
        .await?;
    Ok(subject)
}

fn rule(category: &str, trigger: RetentionTrigger, cutoff: DateTime<Utc>) -> PurgeRule {
    PurgeRule {
        category: category.to_owned(),
        trigger: trigger as i32,
        cutoff: Some(timestamp(cutoff)),
    }
}

fn event_rules(cutoff: DateTime<Utc>) -> Vec<PurgeRule> {
    vec![
        rule(SESSION, RetentionTrigger::EventTime, cutoff),
        rule(TICKET, RetentionTrigger::EventTime, cutoff),
    ]
}

fn request(rules: Vec<PurgeRule>, holds: Vec<LegalHold>, dry_run: bool) -> PurgeExpiredRequest {
    PurgeExpiredRequest {
        run_id: format!("purge-{}", uuid::Uuid::now_v7()),
        rules,
        holds,
        dry_run,
    }
}

fn hold(hold_id: &str, subject_id: &str, category: &str) -> LegalHold {
    LegalHold {
        hold_id: hold_id.to_owned(),
        subject_id: subject_id.to_owned(),
        category: category.to_owned(),
    }
}

/// `category -> (purged, held, hold ids)`.
fn results(response: PurgeExpiredResponse) -> BTreeMap<String, (u64, u64, Vec<String>)> {
    response
        .results
        .into_iter()
        .map(|r| (r.category, (r.purged, r.held, r.hold_ids)))
        .collect()
}

fn outcome(purged: u64, held: u64, hold_ids: &[&str]) -> (u64, u64, Vec<String>) {
    (
        purged,
        held,
        hold_ids.iter().map(|h| (*h).to_owned()).collect(),
    )
}

async fn counts(mesh: &Mesh, subject: &str) -> anyhow::Result<[u64; 3]> {
    let db = mesh.connect_db("identity").await?;
    Ok([
        rows_where(&db, "sessions", "subject_id", subject).await,
        rows_where(&db, "support_tickets", "subject_id", subject).await,
        rows_where(&db, "ticket_attachments", "subject_id", subject).await,
    ])
}

#[tokio::test]
async fn expired_sessions_and_tickets_are_purged_and_newer_ones_kept() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let mut subject_data = mesh.subject_data("identity");
    let person = Person::new();
    let subject = activity(&mut identity, &person, None).await?;
    clock.advance(Duration::days(10));
    activity(&mut identity, &person, Some(&subject)).await?;
    assert_eq!(counts(&mesh, &subject).await?, [2, 2, 2]);

    let mut rules = event_rules(start_time() + Duration::days(5));
    // Categories this service does not hold are ignored.
    rules.push(rule(
        "telemetry.event",
        RetentionTrigger::EventTime,
        clock.now(),
    ));
    let done = subject_data
        .purge_expired(request(rules.clone(), Vec::new(), false))
        .await?
        .into_inner();
    assert_eq!(
        results(done),
        BTreeMap::from([
            (SESSION.to_owned(), outcome(1, 0, &[])),
            (TICKET.to_owned(), outcome(1, 0, &[])),
        ])
    );
    assert_eq!(
        counts(&mesh, &subject).await?,
        [1, 1, 1],
        "the old session, ticket and attachment went; the newer ones stay"
    );
    let left = identity
        .list_support_tickets(pb::ListSupportTicketsRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner()
        .tickets;
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0].created_at,
        Some(timestamp(start_time() + Duration::days(10)))
    );

    let again = subject_data
        .purge_expired(request(rules, Vec::new(), false))
        .await?
        .into_inner();
    assert_eq!(
        results(again),
        BTreeMap::from([
            (SESSION.to_owned(), outcome(0, 0, &[])),
            (TICKET.to_owned(), outcome(0, 0, &[])),
        ]),
        "a second run finds nothing more"
    );

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn a_legal_hold_on_a_subject_spares_its_records_and_names_the_hold() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let mut subject_data = mesh.subject_data("identity");
    let (ada, bob) = (Person::new(), Person::new());
    let a = activity(&mut identity, &ada, None).await?;
    let b = activity(&mut identity, &bob, None).await?;
    clock.advance(Duration::days(30));

    let holds = vec![
        hold("hold-ada", &a, ""),
        // A hold on someone with nothing expired blocks nothing and is not reported.
        hold("hold-nobody", &uuid::Uuid::now_v7().to_string(), ""),
        // A hold on Bob's billing records does not protect his tickets.
        hold("hold-bob-billing", &b, BILLING),
    ];
    let done = subject_data
        .purge_expired(request(event_rules(clock.now()), holds, false))
        .await?
        .into_inner();
    assert_eq!(
        results(done),
        BTreeMap::from([
            (SESSION.to_owned(), outcome(1, 1, &["hold-ada"])),
            (TICKET.to_owned(), outcome(1, 1, &["hold-ada"])),
        ])
    );
    assert_eq!(counts(&mesh, &a).await?, [1, 1, 1], "held, not deleted");
    assert_eq!(counts(&mesh, &b).await?, [0, 0, 0]);

    // Once the hold is released, the next run purges.
    let done = subject_data
        .purge_expired(request(event_rules(clock.now()), Vec::new(), false))
        .await?
        .into_inner();
    assert_eq!(
        results(done),
        BTreeMap::from([
            (SESSION.to_owned(), outcome(1, 0, &[])),
            (TICKET.to_owned(), outcome(1, 0, &[])),
        ])
    );
    assert_eq!(counts(&mesh, &a).await?, [0, 0, 0]);

    mesh.logs().assert_clean(&ada.secrets());
    mesh.logs().assert_clean(&bob.secrets());
    Ok(())
}

#[tokio::test]
async fn a_category_wide_hold_blocks_that_whole_category_only() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let mut subject_data = mesh.subject_data("identity");
    let (ada, bob) = (Person::new(), Person::new());
    let a = activity(&mut identity, &ada, None).await?;
    let b = activity(&mut identity, &bob, None).await?;
    clock.advance(Duration::days(30));

    let done = subject_data
        .purge_expired(request(
            event_rules(clock.now()),
            vec![hold("litigation-7", "", TICKET)],
            false,
        ))
        .await?
        .into_inner();
    assert_eq!(
        results(done),
        BTreeMap::from([
            (SESSION.to_owned(), outcome(2, 0, &[])),
            (TICKET.to_owned(), outcome(0, 2, &["litigation-7"])),
        ])
    );
    assert_eq!(counts(&mesh, &a).await?, [0, 1, 1]);
    assert_eq!(counts(&mesh, &b).await?, [0, 1, 1]);

    // A hold on everything (no subject, no category) blocks every category.
    activity(&mut identity, &ada, Some(&a)).await?;
    clock.advance(Duration::days(1));
    let done = subject_data
        .purge_expired(request(
            event_rules(clock.now()),
            vec![hold("freeze-all", "", "")],
            false,
        ))
        .await?
        .into_inner();
    assert_eq!(
        results(done),
        BTreeMap::from([
            (SESSION.to_owned(), outcome(0, 1, &["freeze-all"])),
            (TICKET.to_owned(), outcome(0, 3, &["freeze-all"])),
        ])
    );
    assert_eq!(counts(&mesh, &a).await?, [1, 2, 2]);

    mesh.logs().assert_clean(&ada.secrets());
    mesh.logs().assert_clean(&bob.secrets());
    Ok(())
}

#[tokio::test]
async fn a_dry_run_counts_what_would_go_and_deletes_nothing() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let mut subject_data = mesh.subject_data("identity");
    let (ada, bob) = (Person::new(), Person::new());
    let a = activity(&mut identity, &ada, None).await?;
    let b = activity(&mut identity, &bob, None).await?;
    clock.advance(Duration::days(30));
    let holds = vec![hold("hold-bob", &b, "")];

    let preview = subject_data
        .purge_expired(request(event_rules(clock.now()), holds.clone(), true))
        .await?
        .into_inner();
    let expected = BTreeMap::from([
        (SESSION.to_owned(), outcome(1, 1, &["hold-bob"])),
        (TICKET.to_owned(), outcome(1, 1, &["hold-bob"])),
    ]);
    assert_eq!(results(preview), expected);
    assert_eq!(
        counts(&mesh, &a).await?,
        [1, 1, 1],
        "a dry run deletes nothing"
    );
    assert_eq!(counts(&mesh, &b).await?, [1, 1, 1]);

    let done = subject_data
        .purge_expired(request(event_rules(clock.now()), holds, false))
        .await?
        .into_inner();
    assert_eq!(
        results(done),
        expected,
        "the real run does what the preview said"
    );
    assert_eq!(counts(&mesh, &a).await?, [0, 0, 0]);
    assert_eq!(counts(&mesh, &b).await?, [1, 1, 1]);

    mesh.logs().assert_clean(&ada.secrets());
    mesh.logs().assert_clean(&bob.secrets());
    Ok(())
}

#[tokio::test]
async fn archived_billing_records_go_once_eight_years_after_closure_have_passed()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let mut subject_data = mesh.subject_data("identity");
    let person = Person::new();
    let subject = identity
        .create_account(person.sign_up())
        .await?
        .into_inner()
        .account
        .expect("account")
        .subject_id;
    let billing_name = fake::phrase("Finance Team");
    identity
        .set_billing_contact(pb::SetBillingContactRequest {
            subject_id: subject.clone(),
            billing_contact: Some(pb::BillingContact {
                name: billing_name.clone(),
                email: "finance@example.com".into(),
                phone: String::new(),
                payment_processor_ref: "cus_purge".into(),
            }),
        })
        .await?;
    identity
        .delete_account(pb::DeleteAccountRequest {
            subject_id: subject.clone(),
            password: person.password.clone(),
            reason: pb::DeletionReason::SwitchingService as i32,
            request_id: String::new(),
        })
        .await?;
    let db = mesh.connect_db("identity").await?;
    let keys = mesh.connect_key_store("identity").await?;
    assert_eq!(rows(&db, "billing_archive").await, 1);
    assert_eq!(
        rows(&keys, "subject_keys").await,
        1,
        "the subject's key is gone, the archive entry's own key is in the key store"
    );
    // What the retention service sends: closed more than eight years ago has expired.
    let eight_years_before =
        |now: DateTime<Utc>| now.checked_sub_months(Months::new(96)).expect("date");
    let billing_rule = |now| {
        vec![rule(
            BILLING,
            RetentionTrigger::AccountClosed,
            eight_years_before(now),
        )]
    };

    clock.advance(Duration::days(365 * 4));
    let done = subject_data
        .purge_expired(request(billing_rule(clock.now()), Vec::new(), false))
        .await?
        .into_inner();
    assert_eq!(
        results(done),
        BTreeMap::from([(BILLING.to_owned(), outcome(0, 0, &[]))])
    );
    assert_eq!(rows(&db, "billing_archive").await, 1, "kept four years in");

    clock.set(
        start_time()
            .checked_add_months(Months::new(96))
            .expect("date")
            + Duration::days(1),
    );
    // A hold names the erased subject by id; the archive is found by its blind index.
    let held = subject_data
        .purge_expired(request(
            billing_rule(clock.now()),
            vec![hold("tax-audit-2034", &subject, BILLING)],
            false,
        ))
        .await?
        .into_inner();
    assert_eq!(
        results(held),
        BTreeMap::from([(BILLING.to_owned(), outcome(0, 1, &["tax-audit-2034"]))])
    );
    assert_eq!(rows(&db, "billing_archive").await, 1);

    // A key a purge that died after its commit left behind (its entry gone): swept by
    // the next billing purge, so no data backup opens that entry any more.
    let (root, _) = pdm_runtime::keys::load_kek(mesh.settings())?;
    let store = pdm_runtime::key_store::connect(mesh.settings(), "identity", &root).await?;
    store
        .import(&[pdm_crypto::key_store::StoredKey {
            subject_id: "archive:00000000-0000-7000-8000-000000000000".to_owned(),
            kek_version: 1,
            wrapped_key: vec![1; 60],
            created_at: start_time(),
        }])
        .await?;
    assert_eq!(rows(&keys, "subject_keys").await, 2);
    let done = subject_data
        .purge_expired(request(billing_rule(clock.now()), Vec::new(), false))
        .await?
        .into_inner();
    assert_eq!(
        results(done),
        BTreeMap::from([(BILLING.to_owned(), outcome(1, 0, &[]))])
    );
    assert_eq!(rows(&db, "billing_archive").await, 0);
    assert_eq!(
        rows(&keys, "subject_keys").await,
        0,
        "the purged entry's key goes with it: no data backup opens it any more"
    );

    let mut secrets = person.secrets();
    secrets.push(("billing name", &billing_name));
    mesh.logs().assert_clean(&secrets);
    Ok(())
}

#[tokio::test]
async fn a_rule_whose_trigger_does_not_fit_the_category_purges_nothing() -> anyhow::Result<()> {
    // Tickets are kept while the account exists: a rule counting from account closure, or
    // one saying "never", must not be read as counting from the ticket's own time.
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let mut subject_data = mesh.subject_data("identity");
    let person = Person::new();
    let subject = activity(&mut identity, &person, None).await?;
    clock.advance(Duration::days(30));

    for trigger in [
        RetentionTrigger::AccountClosed,
        RetentionTrigger::ConsentWithdrawn,
        RetentionTrigger::RequestCompleted,
        RetentionTrigger::Never,
    ] {
        let done = subject_data
            .purge_expired(request(
                vec![
                    rule(SESSION, trigger, clock.now()),
                    rule(TICKET, trigger, clock.now()),
                ],
                Vec::new(),
                false,
            ))
            .await?
            .into_inner();
        assert_eq!(
            results(done),
            BTreeMap::from([
                (SESSION.to_owned(), outcome(0, 0, &[])),
                (TICKET.to_owned(), outcome(0, 0, &[])),
            ]),
            "{trigger:?}"
        );
        assert_eq!(counts(&mesh, &subject).await?, [1, 1, 1], "{trigger:?}");
    }

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn bad_rules_and_holds_are_reported_per_field_and_nothing_is_purged() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh_with_clock(&clock).await?;
    let mut identity = mesh.identity();
    let mut subject_data = mesh.subject_data("identity");
    let person = Person::new();
    let subject = activity(&mut identity, &person, None).await?;
    clock.advance(Duration::days(30));
    let now = clock.now();

    let err = subject_data
        .purge_expired(PurgeExpiredRequest {
            run_id: String::new(),
            rules: vec![
                // A valid rule that would purge: the bad ones beside it stop it too.
                rule(SESSION, RetentionTrigger::EventTime, now),
                rule("", RetentionTrigger::EventTime, now),
                rule(TICKET, RetentionTrigger::Unspecified, now),
                PurgeRule {
                    cutoff: None,
                    ..rule(BILLING, RetentionTrigger::AccountClosed, now)
                },
                // At most one rule per category.
                rule(
                    SESSION,
                    RetentionTrigger::EventTime,
                    now - Duration::days(1),
                ),
            ],
            holds: vec![hold("", "not-a-uuid", "")],
            dry_run: false,
        })
        .await
        .expect_err("bad request");
    assert_eq!(
        field_violations(&err),
        [
            "run_id",
            "rules[1].category",
            "rules[2].trigger",
            "rules[3].cutoff",
            "rules[4].category",
            "holds[0].hold_id",
            "holds[0].subject_id",
        ]
    );
    assert_eq!(counts(&mesh, &subject).await?, [1, 1, 1]);

    let err = subject_data
        .purge_expired(PurgeExpiredRequest {
            run_id: "run 1".into(),
            rules: vec![PurgeRule {
                trigger: 42,
                ..rule(TICKET, RetentionTrigger::EventTime, now)
            }],
            holds: Vec::new(),
            dry_run: false,
        })
        .await
        .expect_err("bad request");
    assert_eq!(field_violations(&err), ["run_id", "rules[0].trigger"]);
    assert_eq!(counts(&mesh, &subject).await?, [1, 1, 1]);

    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
