//! The SubjectData contract for the telemetry service: access ("GDPR Data Protection
//! Rights": the right of access) to the subject's events and crash reports; erasure that
//! destroys the key at once and deletes the rows in the background ("The right to
//! erasure"), with late events for an erased subject dropped; and purging expired events
//! and crash reports by the retention service's rules, sparing those under a legal hold.

mod support;

use chrono::{DateTime, Duration, Utc};
use pdm_proto::{
    common::v1::LegalBasis,
    subject::v1::{
        ExportSubjectRequest, LegalHold, PurgeExpiredRequest, PurgeExpiredResponse, PurgeResult,
        PurgeRule, RetentionTrigger,
    },
    telemetry::v1::{self as pb, DropReason, EventKind},
};
use pdm_runtime::convert::{from_timestamp, struct_to_json, timestamp};
use pdm_testkit::{
    Backend, Mesh,
    assert::{field_violations, rows, rows_where},
    eventually, start_clock,
};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::Value;
use support::{
    WAIT, consenting, crash, dropped, erase, event, events, export, feature, ingest, mesh,
    mesh_with, necessary, now, report_crash, secrets,
};

const EVENTS: &str = "telemetry.event";
const CRASHES: &str = "telemetry.crash";
const EMAIL_IN_TRACE: &str = "ada.byron@example.org";

fn data(record: &pdm_proto::subject::v1::SubjectRecord) -> Value {
    struct_to_json(record.data.as_ref().expect("record data"))
}

fn interaction(subject: &str, peer: &str, at: DateTime<Utc>) -> pb::Event {
    pb::Event {
        subject_id: subject.to_owned(),
        kind: EventKind::Interaction as i32,
        occurred_at: Some(timestamp(at)),
        peer_subject_id: peer.to_owned(),
        ..Default::default()
    }
}

#[tokio::test]
async fn export_returns_the_subjects_events_and_crash_reports_opened() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (person, subject) = consenting(&mesh).await?;
    let (other_person, other) = consenting(&mesh).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);

    let batch = vec![
        feature(&subject, "export", at),
        pb::Event {
            kind: EventKind::LinkClicked as i32,
            link_url: "https://docs.example.com/api?key=secret".into(),
            ..feature(&subject, "", at)
        },
        pb::Event {
            kind: EventKind::PageView as i32,
            screen: "billing".into(),
            ..feature(&subject, "", at - Duration::hours(1))
        },
        interaction(&subject, &other, at),
        feature(&other, "import", at),
        necessary(feature("", "import", at)),
    ];
    assert_eq!(ingest(&mut client, "export-1", batch).await?.accepted, 6);
    let crashed = report_crash(
        &mut client,
        crash(
            &subject,
            at,
            &format!("cannot sync for {EMAIL_IN_TRACE}"),
            "at /home/adabyron/app/sync.rs:10",
        ),
    )
    .await?;

    let records = export(&mesh, &subject).await?;
    let (events, crashes): (Vec<_>, Vec<_>) = records.iter().partition(|r| r.category == EVENTS);
    assert_eq!((events.len(), crashes.len()), (4, 1), "{records:?}");
    for r in &events {
        assert_eq!(r.service, "telemetry");
        assert_eq!(r.purposes, ["product_analytics"]);
        assert_eq!(r.legal_basis, LegalBasis::Consent as i32);
        assert!(!r.source.is_empty() && r.retention.is_some() && r.created_at.is_some());
    }
    let kinds: Vec<Value> = events.iter().map(|r| data(r)["kind"].clone()).collect();
    assert_eq!(
        kinds,
        [
            "EVENT_KIND_FEATURE_USED",
            "EVENT_KIND_LINK_CLICKED",
            "EVENT_KIND_PAGE_VIEW",
            "EVENT_KIND_INTERACTION"
        ]
    );
    assert_eq!(data(events[0])["details"]["feature"], "export");
    assert_eq!(
        data(events[1])["details"]["link_url"],
        "https://docs.example.com/api"
    );
    assert_eq!(data(events[2])["details"]["screen"], "billing");
    assert_eq!(
        events[2].created_at.as_ref().and_then(from_timestamp),
        Some(at - Duration::hours(1)),
        "the record is dated when the event occurred"
    );
    assert_eq!(
        data(events[0])["details"]["device"]["ip_network"],
        support::IP_NETWORK
    );

    let crash = crashes[0];
    assert_eq!(crash.record_id, crashed.crash_id);
    // Filed and exported under one purpose and one basis (issue 15).
    assert_eq!(crash.purposes, ["crash_reports"]);
    assert_eq!(crash.legal_basis, LegalBasis::LegitimateInterests as i32);
    let details = data(crash);
    assert_eq!(details["error_type"], "NullPointerException");
    let message = details["details"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("cannot sync for ") && !message.contains(EMAIL_IN_TRACE));
    assert_eq!(
        details["details"]["stack_trace"],
        "at /home/<user>/app/sync.rs:10"
    );

    let others = export(&mesh, &other).await?;
    assert_eq!(
        others.len(),
        1,
        "only the subject's own events, not those naming them"
    );
    assert!(
        export(&mesh, &uuid::Uuid::now_v7().to_string())
            .await?
            .is_empty(),
        "an unknown subject has an empty export"
    );
    let err = mesh
        .subject_data("telemetry")
        .export_subject(ExportSubjectRequest {
            subject_id: "not-a-uuid".into(),
            request_id: String::new(),
        })
        .await
        .expect_err("bad subject id");
    assert_eq!(field_violations(&err), ["subject_id"]);
    mesh.logs()
        .assert_clean(&secrets(&person, &[("email", EMAIL_IN_TRACE)]));
    mesh.logs().assert_clean(&secrets(&other_person, &[]));
    Ok(())
}

/// An export reads the crash reports after the events: the events' stream must give its
/// connection back first, or with every pooled connection held by exports (here a pool
/// of one) the export waits on itself until the pool gives up (UNAVAILABLE).
#[tokio::test]
async fn an_export_needs_only_one_pooled_connection_at_a_time() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh_with(&clock, &[("database.max_connections", "1")]).await?;
    let (_, subject) = consenting(&mesh).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);
    let batch = vec![
        feature(&subject, "export", at),
        feature(&subject, "print", at),
    ];
    assert_eq!(
        ingest(&mut client, "one-connection", batch).await?.accepted,
        2
    );
    report_crash(
        &mut client,
        crash(&subject, at, "sync failed", "at sync.rs:10"),
    )
    .await?;
    let records = tokio::time::timeout(WAIT, export(&mesh, &subject)).await??;
    let categories: Vec<&str> = records.iter().map(|r| r.category.as_str()).collect();
    assert_eq!(categories, [EVENTS, EVENTS, CRASHES]);
    Ok(())
}

#[tokio::test]
async fn erasure_destroys_the_key_at_once_and_the_rows_follow_in_the_background()
-> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (person, subject) = consenting(&mesh).await?;
    let (other_person, other) = consenting(&mesh).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);

    let mut batch = events(&subject, at, 10);
    batch.extend(events(&other, at, 3));
    batch.push(interaction(&other, &subject, at));
    assert_eq!(ingest(&mut client, "erase-1", batch).await?.accepted, 14);
    report_crash(&mut client, crash(&subject, at, "boom", "")).await?;
    assert_eq!(export(&mesh, &subject).await?.len(), 11);

    let receipt = erase(&mesh, "dsr-erase-1", &subject).await?;
    assert!(
        receipt.key_destroyed,
        "crypto-shredding: the key goes at once"
    );
    assert_eq!(
        (
            receipt.request_id.as_str(),
            receipt.subject_id.as_str(),
            receipt.service.as_str()
        ),
        ("dsr-erase-1", subject.as_str(), "telemetry")
    );
    assert!(
        receipt
            .erased
            .iter()
            .any(|e| e.category.starts_with(EVENTS))
    );
    assert!(
        receipt
            .erased
            .iter()
            .any(|e| e.category == CRASHES && e.count == 1)
    );
    assert!(
        export(&mesh, &subject).await?.is_empty(),
        "nothing is readable right after the erasure"
    );

    let db = mesh.connect_db("telemetry").await?;
    assert_eq!(rows_where(&db, "crashes", "subject_id", &subject).await, 0);
    eventually("the erased subject's rows are deleted", WAIT, || {
        let db = db.clone();
        let subject = subject.clone();
        async move { Ok(rows_where(&db, "events", "subject_id", &subject).await == 0) }
    })
    .await?;
    eventually("the erasure queue is empty", WAIT, || {
        let db = db.clone();
        async move { Ok(rows(&db, "erasure_queue").await == 0) }
    })
    .await?;
    assert_eq!(
        rows_where(&db, "events", "subject_id", &other).await,
        3,
        "other subjects' events stay, but not the interaction naming the erased subject"
    );
    assert_eq!(export(&mesh, &other).await?.len(), 3);

    // Idempotent per request id; a new request for the same subject finds nothing left.
    let again = erase(&mesh, "dsr-erase-1", &subject).await?;
    assert_eq!(again, receipt);
    let later = erase(&mesh, "dsr-erase-2", &subject).await?;
    assert!(!later.key_destroyed);
    let err = mesh
        .subject_data("telemetry")
        .erase_subject(pdm_proto::subject::v1::EraseSubjectRequest {
            request_id: "dsr-erase-1".into(),
            subject_id: other.clone(),
        })
        .await
        .expect_err("a request id names one subject");
    assert_eq!(field_violations(&err), ["request_id"]);
    let err = mesh
        .subject_data("telemetry")
        .erase_subject(pdm_proto::subject::v1::EraseSubjectRequest {
            request_id: String::new(),
            subject_id: "nope".into(),
        })
        .await
        .expect_err("bad erasure");
    assert_eq!(field_violations(&err), ["request_id", "subject_id"]);

    mesh.logs().assert_clean(&secrets(&person, &[]));
    mesh.logs().assert_clean(&secrets(&other_person, &[]));
    Ok(())
}

/// An erasure is stored with its receipt or not at all ("The right to erasure": the
/// receipt is the proof it was done): apart, a stop between the two left the retry to find
/// nothing to erase and a receipt saying no key was destroyed. The key store is another
/// database, so the key goes after that commit, and the retry destroys a key a stop left
/// behind. The table refusing the receipt stands in for the stop.
#[tokio::test]
async fn an_erasure_is_stored_with_its_receipt_and_its_retry_destroys_a_key_left_behind()
-> anyhow::Result<()> {
    use pdm_testkit::faults::{allow_inserts, refuse_inserts};
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (_, subject) = consenting(&mesh).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);
    assert_eq!(
        ingest(&mut client, "stop-1", events(&subject, at, 4))
            .await?
            .accepted,
        4
    );
    report_crash(&mut client, crash(&subject, at, "boom", "")).await?;
    let db = mesh.connect_db("telemetry").await?;
    let (root, _) = pdm_runtime::keys::load_kek(mesh.settings())?;
    let keys = pdm_runtime::key_store::connect(mesh.settings(), "telemetry", &root).await?;
    let before_erasure = keys.export().await?;

    refuse_inserts(&db, "erasures").await?;
    assert!(erase(&mesh, "dsr-stop", &subject).await.is_err());
    assert_eq!(
        export(&mesh, &subject).await?.len(),
        5,
        "nothing is erased without its receipt"
    );
    assert_eq!(rows_where(&db, "crashes", "subject_id", &subject).await, 1);
    assert!(keys.exists(&subject).await?);
    allow_inserts(&db, "erasures").await?;

    let receipt = erase(&mesh, "dsr-stop", &subject).await?;
    assert!(
        receipt.key_destroyed,
        "the receipt says what the erasure did"
    );
    assert!(
        receipt
            .erased
            .iter()
            .any(|e| e.category == CRASHES && e.count == 1)
    );
    assert!(!keys.exists(&subject).await?);
    assert!(export(&mesh, &subject).await?.is_empty());

    // As if the process stopped between the commit and the key's destruction.
    keys.import(&before_erasure).await?;
    assert!(keys.exists(&subject).await?);
    let retried = erase(&mesh, "dsr-stop", &subject).await?;
    assert_eq!(retried, receipt, "the retry answers with the first receipt");
    assert!(
        !keys.exists(&subject).await?,
        "and destroys the key left behind"
    );
    Ok(())
}

#[tokio::test]
async fn late_events_for_an_erased_subject_are_dropped_even_after_a_restart() -> anyhow::Result<()>
{
    let clock = start_clock();
    let mut mesh = mesh(&clock).await?;
    let (person, subject) = consenting(&mesh).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);
    assert_eq!(
        ingest(&mut client, "late-1", events(&subject, at, 2))
            .await?
            .accepted,
        2
    );
    erase(&mesh, "dsr-late-1", &subject).await?;

    // Consent still allows analytics (only telemetry erased), yet nothing goes in.
    let r = ingest(&mut client, "late-2", events(&subject, at, 3)).await?;
    assert_eq!((r.accepted, dropped(&r, DropReason::Erased)), (0, 3));
    // A late crash report is kept for fixing the bug, but no longer tied to the subject.
    report_crash(&mut client, crash(&subject, at, "late crash", "")).await?;
    assert!(export(&mesh, &subject).await?.is_empty());

    mesh.restart("telemetry").await?;
    let mut client = mesh.telemetry();
    let r = ingest(&mut client, "late-3", events(&subject, at, 1)).await?;
    assert_eq!(
        (r.accepted, dropped(&r, DropReason::Erased)),
        (0, 1),
        "the suppression list is durable"
    );

    let db = mesh.connect_db("telemetry").await?;
    eventually("the erased subject's rows are deleted", WAIT, || {
        let db = db.clone();
        let subject = subject.clone();
        async move { Ok(rows_where(&db, "events", "subject_id", &subject).await == 0) }
    })
    .await?;
    assert_eq!(rows_where(&db, "crashes", "subject_id", &subject).await, 0);
    assert_eq!(rows(&db, "crashes").await, 1);
    assert!(export(&mesh, &subject).await?.is_empty());
    mesh.logs().assert_clean(&secrets(&person, &[]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erasure_racing_ingestion_leaves_nothing_readable_or_stored() -> anyhow::Result<()> {
    const SUBJECTS: usize = 16;
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let at = now(&clock);
    let mut client = mesh.telemetry();
    let mut people = Vec::with_capacity(SUBJECTS);
    for i in 0..SUBJECTS {
        let (person, subject) = consenting(&mesh).await?;
        // Each subject has a key and events before the race.
        let r = ingest(&mut client, &format!("before-{i}"), events(&subject, at, 2)).await?;
        assert_eq!(r.accepted, 2);
        people.push((person, subject));
    }

    // Batches and crash reports for each subject race the subject's erasure.
    let mut racing = tokio::task::JoinSet::new();
    for (i, (_, subject)) in people.iter().enumerate() {
        for j in 0..3 {
            let mut client = mesh.telemetry();
            let batch = events(subject, at, 50);
            racing.spawn(async move {
                match ingest(&mut client, &format!("race-{i}-{j}"), batch).await {
                    Ok(_) => Ok(()),
                    Err(s) if s.code() == tonic::Code::ResourceExhausted => Ok(()),
                    Err(s) => Err(anyhow::anyhow!("ingest: {s:?}")),
                }
            });
        }
        let mut client = mesh.telemetry();
        let report = crash(subject, at, "boom", "");
        racing.spawn(async move {
            report_crash(&mut client, report).await?;
            Ok(())
        });
        let mut subject_data = mesh.subject_data("telemetry");
        let request = pdm_proto::subject::v1::EraseSubjectRequest {
            request_id: format!("dsr-race-{i}"),
            subject_id: subject.clone(),
        };
        racing.spawn(async move {
            subject_data.erase_subject(request).await?;
            Ok(())
        });
    }
    while let Some(done) = racing.join_next().await {
        done??;
    }

    let db = mesh.connect_db("telemetry").await?;
    let keys = mesh.connect_key_store("telemetry").await?;
    for (_, subject) in &people {
        assert!(
            export(&mesh, subject).await?.is_empty(),
            "an erased subject's data is unreadable once the erasure returned"
        );
        assert_eq!(
            rows_where(&keys, "subject_keys", "subject_id", subject).await,
            0,
            "no key survives or comes back"
        );
        assert_eq!(rows_where(&db, "crashes", "subject_id", subject).await, 0);
    }
    eventually("every erased subject's rows are deleted", WAIT, || {
        let db = db.clone();
        let subjects: Vec<String> = people.iter().map(|(_, s)| s.clone()).collect();
        async move {
            for s in &subjects {
                if rows_where(&db, "events", "subject_id", s).await > 0 {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    })
    .await?;
    for (person, _) in &people {
        mesh.logs().assert_clean(&secrets(person, &[]));
    }
    Ok(())
}

fn rule(category: &str, cutoff: DateTime<Utc>) -> PurgeRule {
    PurgeRule {
        category: category.to_owned(),
        trigger: RetentionTrigger::EventTime as i32,
        cutoff: Some(timestamp(cutoff)),
    }
}

fn hold(hold_id: &str, subject: &str, category: &str) -> LegalHold {
    LegalHold {
        hold_id: hold_id.to_owned(),
        subject_id: subject.to_owned(),
        category: category.to_owned(),
    }
}

async fn purge(
    mesh: &Mesh,
    rules: Vec<PurgeRule>,
    holds: Vec<LegalHold>,
    dry_run: bool,
) -> anyhow::Result<PurgeExpiredResponse> {
    Ok(mesh
        .subject_data("telemetry")
        .purge_expired(PurgeExpiredRequest {
            run_id: format!("purge-{}", uuid::Uuid::now_v7()),
            rules,
            holds,
            dry_run,
        })
        .await?
        .into_inner())
}

fn result(r: &PurgeExpiredResponse, category: &str) -> (u64, u64, Vec<String>) {
    let found: &PurgeResult = r
        .results
        .iter()
        .find(|p| p.category == category)
        .unwrap_or_else(|| panic!("no result for {category}: {r:?}"));
    (found.purged, found.held, found.hold_ids.clone())
}

/// Event partitions (PostgreSQL) of the telemetry schema.
async fn partitions(mesh: &Mesh) -> anyhow::Result<Vec<String>> {
    let db = mesh.connect_db("telemetry").await?;
    let found = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT c.relname::text AS name FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
             JOIN pg_namespace n ON n.oid = p.relnamespace \
             WHERE p.relname = 'events' AND n.nspname = 'telemetry' ORDER BY 1",
        ))
        .await?;
    Ok(found
        .into_iter()
        .map(|r| r.try_get::<String>("", "name"))
        .collect::<Result<_, _>>()?)
}

#[tokio::test]
async fn purging_drops_expired_events_and_crashes_except_those_on_hold() -> anyhow::Result<()> {
    let clock = start_clock();
    let mesh = mesh(&clock).await?;
    let (held_person, held) = consenting(&mesh).await?;
    let (person, subject) = consenting(&mesh).await?;
    let mut client = mesh.telemetry();
    let at = now(&clock);
    let (old, older) = (at - Duration::days(15), at - Duration::days(20));

    let mut batch = events(&held, older, 2);
    batch.extend(events(&subject, older, 3));
    batch.extend(events(&subject, old, 4));
    batch.push(necessary(event("", old)));
    batch.extend(events(&held, at, 1));
    batch.extend(events(&subject, at, 1));
    assert_eq!(ingest(&mut client, "purge-1", batch).await?.accepted, 12);
    for (who, when) in [
        (&held, older),
        (&subject, older),
        (&String::new(), older),
        (&subject, at),
    ] {
        report_crash(&mut client, crash(who, when, "boom", "")).await?;
    }
    let db = mesh.connect_db("telemetry").await?;
    let cutoff = at - Duration::days(10);
    let rules = vec![
        rule(EVENTS, cutoff),
        rule(CRASHES, cutoff),
        rule("account.session", cutoff),
    ];
    let holds = vec![
        hold("hold-events", &held, EVENTS),
        hold("hold-crashes", &held, CRASHES),
        hold("hold-elsewhere", &subject, "billing.record"),
    ];

    let dry = purge(&mesh, rules.clone(), holds.clone(), true).await?;
    assert_eq!(
        dry.results.len(),
        2,
        "categories telemetry does not hold are ignored"
    );
    assert_eq!(result(&dry, EVENTS), (8, 2, vec!["hold-events".to_owned()]));
    assert_eq!(
        result(&dry, CRASHES),
        (2, 1, vec!["hold-crashes".to_owned()])
    );
    assert_eq!(
        (rows(&db, "events").await, rows(&db, "crashes").await),
        (12, 4)
    );

    // A blanket hold on events keeps every expired event.
    let blanket = purge(
        &mesh,
        vec![rule(EVENTS, cutoff)],
        vec![hold("litigation", "", "")],
        false,
    )
    .await?;
    assert_eq!(
        result(&blanket, EVENTS),
        (0, 10, vec!["litigation".to_owned()])
    );
    assert_eq!(rows(&db, "events").await, 12);

    let done = purge(&mesh, rules, holds, false).await?;
    assert_eq!(
        result(&done, EVENTS),
        (8, 2, vec!["hold-events".to_owned()])
    );
    assert_eq!(
        result(&done, CRASHES),
        (2, 1, vec!["hold-crashes".to_owned()])
    );
    assert_eq!(rows_where(&db, "events", "subject_id", &held).await, 3);
    assert_eq!(rows_where(&db, "events", "subject_id", &subject).await, 1);
    assert_eq!(rows(&db, "events").await, 4);
    assert_eq!(rows_where(&db, "crashes", "subject_id", &held).await, 1);
    assert_eq!(rows(&db, "crashes").await, 2);
    assert_eq!(export(&mesh, &held).await?.len(), 3 + 1);
    if mesh.backend() == Backend::Postgres {
        let day = |t: DateTime<Utc>| format!("events_p{}", t.format("%Y%m%d"));
        let left = partitions(&mesh).await?;
        assert!(
            !left.contains(&day(old)),
            "an expired day with nothing held is dropped whole: {left:?}"
        );
        assert!(
            left.contains(&day(older)) && left.contains(&day(at)),
            "{left:?}"
        );
    }

    // Purging again finds nothing more; ingestion into a dropped day's range still works.
    let again = purge(&mesh, vec![rule(EVENTS, cutoff)], Vec::new(), false).await?;
    assert_eq!(
        result(&again, EVENTS).0,
        2,
        "the hold is gone: the rest goes"
    );
    assert_eq!(
        ingest(&mut client, "purge-2", events(&subject, old, 1))
            .await?
            .accepted,
        1
    );

    let err = mesh
        .subject_data("telemetry")
        .purge_expired(PurgeExpiredRequest {
            run_id: String::new(),
            rules: vec![PurgeRule {
                category: String::new(),
                trigger: RetentionTrigger::EventTime as i32,
                cutoff: None,
            }],
            holds: vec![hold("", "not-a-uuid", EVENTS)],
            dry_run: false,
        })
        .await
        .expect_err("bad purge");
    assert_eq!(
        field_violations(&err),
        [
            "run_id",
            "rules[0].cutoff",
            "rules[0].category",
            "holds[0].hold_id",
            "holds[0].subject_id"
        ]
    );
    mesh.logs().assert_clean(&secrets(&held_person, &[]));
    mesh.logs().assert_clean(&secrets(&person, &[]));
    Ok(())
}
