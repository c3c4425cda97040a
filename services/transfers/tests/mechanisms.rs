//! Transfer mechanisms ("How we transfer information we collect internationally": standard
//! contractual clauses approved by the European Commission, and equivalent UK and Swiss
//! mechanisms; Decision 2021/914 modules 1-4; Art. 49 derogations for occasional
//! transfers): every rule of a record checked before anything is stored, and the review
//! calendar the privacy team works from.

mod support;

use chrono::Duration;
use pdm_proto::transfers::v1::{
    self as pb, MechanismKind, MechanismStatus, PartyRole, Regime, TiaOutcome,
};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_testkit::assert::{field_violations, rows};
use pdm_testkit::start_time;
use support::{Client, mesh, recipient, record, register, scc, strings};
use tonic::Code;

async fn refused(client: &mut Client, mechanism: pb::Mechanism) -> Vec<String> {
    let err = client
        .record_mechanism(pb::RecordMechanismRequest {
            mechanism: Some(mechanism),
        })
        .await
        .expect_err("invalid mechanism");
    field_violations(&err)
}

#[tokio::test]
async fn a_mechanism_reads_back_with_the_defaults_of_its_kind() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let hosting = register(&mut client, recipient("hosting-in", "IN")).await?;
    let other = register(&mut client, recipient("office-in", "IN")).await?;

    let eu = record(&mut client, scc(&hosting.recipient_id, clock.now())).await?;
    assert!(uuid::Uuid::parse_str(&eu.mechanism_id).is_ok());
    assert_eq!(eu.regimes, [Regime::Eu as i32], "EU SCCs serve the EU");
    assert_eq!(eu.status, MechanismStatus::Active as i32);
    assert_eq!(eu.exporter_role, PartyRole::Controller as i32);
    assert_eq!(eu.scc_module, 2);
    assert_eq!(eu.created_at, Some(timestamp(clock.now())));
    let tia = eu.tia.clone().expect("tia");
    assert_eq!(tia.outcome, TiaOutcome::AdequateWithMeasures as i32);
    assert_eq!(
        tia.supplementary_measures,
        ["encryption in transit", "encryption at rest"]
    );

    let idta = record(
        &mut client,
        pb::Mechanism {
            kind: MechanismKind::UkIdta as i32,
            scc_module: 0,
            ..scc(&hosting.recipient_id, clock.now())
        },
    )
    .await?;
    assert_eq!(idta.regimes, [Regime::Uk as i32]);
    let swiss = record(
        &mut client,
        pb::Mechanism {
            kind: MechanismKind::SwissScc as i32,
            ..scc(&other.recipient_id, clock.now())
        },
    )
    .await?;
    assert_eq!(swiss.regimes, [Regime::Ch as i32]);

    let of_hosting = client
        .list_mechanisms(pb::ListMechanismsRequest {
            recipient_id: hosting.recipient_id.clone(),
        })
        .await?
        .into_inner()
        .mechanisms;
    assert_eq!(of_hosting, [eu, idta]);
    let all = client
        .list_mechanisms(pb::ListMechanismsRequest::default())
        .await?
        .into_inner()
        .mechanisms;
    assert_eq!(all.len(), 3);
    Ok(())
}

#[tokio::test]
async fn every_bad_field_is_reported_and_nothing_is_stored() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let hosting = register(&mut client, recipient("hosting-in", "IN")).await?;
    let good = scc(&hosting.recipient_id, clock.now());
    let now = clock.now();

    let err = client
        .record_mechanism(pb::RecordMechanismRequest { mechanism: None })
        .await
        .expect_err("no mechanism");
    assert_eq!(field_violations(&err), ["mechanism"]);

    let cases: Vec<(&str, pb::Mechanism, Vec<&str>)> = vec![
        (
            "SCCs without a module",
            pb::Mechanism {
                scc_module: 0,
                ..good.clone()
            },
            vec!["mechanism.scc_module"],
        ),
        (
            "Decision 2021/914 has modules 1 to 4",
            pb::Mechanism {
                scc_module: 5,
                ..good.clone()
            },
            vec!["mechanism.scc_module"],
        ),
        (
            "the IDTA has no modules",
            pb::Mechanism {
                kind: MechanismKind::UkIdta as i32,
                scc_module: 2,
                ..good.clone()
            },
            vec!["mechanism.scc_module"],
        ),
        (
            "a derogation is for occasional transfers only",
            pb::Mechanism {
                kind: MechanismKind::DerogationExplicitConsent as i32,
                regimes: vec![Regime::Eu as i32],
                scc_module: 0,
                tia: None,
                occasional: false,
                ..good.clone()
            },
            vec!["mechanism.occasional"],
        ),
        (
            "binding corporate rules name their regimes",
            pb::Mechanism {
                kind: MechanismKind::Bcr as i32,
                regimes: Vec::new(),
                scc_module: 0,
                ..good.clone()
            },
            vec!["mechanism.regimes"],
        ),
        (
            "an assessment that relies on measures lists them",
            pb::Mechanism {
                tia: Some(pb::TransferImpactAssessment {
                    supplementary_measures: Vec::new(),
                    ..good.tia.clone().expect("tia")
                }),
                ..good.clone()
            },
            vec!["mechanism.tia.supplementary_measures"],
        ),
        (
            "an assessment has a reference, a date and an outcome",
            pb::Mechanism {
                tia: Some(pb::TransferImpactAssessment {
                    reference: String::new(),
                    assessed_on: "yesterday".into(),
                    outcome: TiaOutcome::Unspecified as i32,
                    supplementary_measures: Vec::new(),
                }),
                ..good.clone()
            },
            vec![
                "mechanism.tia.reference",
                "mechanism.tia.assessed_on",
                "mechanism.tia.outcome",
            ],
        ),
        (
            "expiry before the start of validity",
            pb::Mechanism {
                expires_at: Some(timestamp(now - Duration::days(31))),
                ..good.clone()
            },
            vec!["mechanism.expires_at"],
        ),
        (
            "unknown and missing enum values",
            pb::Mechanism {
                recipient_id: String::new(),
                kind: 99,
                regimes: vec![Regime::Other as i32, 17],
                exporter_role: 9,
                status: 8,
                valid_from: None,
                ..good.clone()
            },
            vec![
                "mechanism.recipient_id",
                "mechanism.kind",
                "mechanism.regimes[0]",
                "mechanism.regimes[1]",
                "mechanism.exporter_role",
                "mechanism.valid_from",
                "mechanism.status",
            ],
        ),
        (
            "clauses are signed by two parties at least, on a date",
            pb::Mechanism {
                parties: strings(&["DigitalAPICraft (exporter)"]),
                signed_on: String::new(),
                ..good.clone()
            },
            vec!["mechanism.parties", "mechanism.signed_on"],
        ),
    ];
    for (why, mechanism, expected) in cases {
        assert_eq!(refused(&mut client, mechanism).await, expected, "{why}");
    }

    let err = client
        .record_mechanism(pb::RecordMechanismRequest {
            mechanism: Some(scc(&uuid::Uuid::now_v7().to_string(), now)),
        })
        .await
        .expect_err("unknown recipient");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        rows(&mesh.connect_db("transfers").await?, "mechanisms").await,
        0
    );
    Ok(())
}

#[tokio::test]
async fn expiring_mechanisms_are_listed_soonest_first_and_flagged_once_overdue()
-> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let now = clock.now();
    let hosting = register(&mut client, recipient("hosting-in", "IN")).await?;
    let office = register(&mut client, recipient("office-in", "IN")).await?;
    let in_days = |days: i64| Some(timestamp(now + Duration::days(days)));

    let review_10 = record(
        &mut client,
        pb::Mechanism {
            review_due: in_days(10),
            ..scc(&hosting.recipient_id, now)
        },
    )
    .await?;
    let expires_5 = record(
        &mut client,
        pb::Mechanism {
            expires_at: in_days(5),
            review_due: in_days(200),
            ..scc(&office.recipient_id, now)
        },
    )
    .await?;
    // Both dates ahead: the earlier one is the one to act on.
    let review_20 = record(
        &mut client,
        pb::Mechanism {
            expires_at: in_days(40),
            review_due: in_days(20),
            ..scc(&office.recipient_id, now)
        },
    )
    .await?;
    // Too far ahead, or no longer in force: not listed.
    record(
        &mut client,
        pb::Mechanism {
            review_due: in_days(100),
            ..scc(&hosting.recipient_id, now)
        },
    )
    .await?;
    record(
        &mut client,
        pb::Mechanism {
            expires_at: in_days(3),
            status: MechanismStatus::Suspended as i32,
            ..scc(&hosting.recipient_id, now)
        },
    )
    .await?;

    let expiring = async |client: &mut Client, within_days: i32| {
        anyhow::Ok(
            client
                .list_expiring_mechanisms(pb::ListExpiringMechanismsRequest { within_days })
                .await?
                .into_inner()
                .mechanisms,
        )
    };
    let summary = |due: &[pb::ExpiringMechanism]| -> Vec<(String, String, bool)> {
        due.iter()
            .map(|d| {
                (
                    d.mechanism
                        .as_ref()
                        .expect("mechanism")
                        .mechanism_id
                        .clone(),
                    d.due.clone(),
                    d.overdue,
                )
            })
            .collect()
    };

    let due = expiring(&mut client, 30).await?;
    assert_eq!(
        summary(&due),
        [
            (expires_5.mechanism_id.clone(), "expires".to_owned(), false),
            (review_10.mechanism_id.clone(), "review".to_owned(), false),
            (review_20.mechanism_id.clone(), "review".to_owned(), false),
        ]
    );
    assert_eq!(due[0].due_at, in_days(5));
    assert_eq!(due[0].recipient_name, office.name);
    assert_eq!(due[1].recipient_name, hosting.name);
    assert_eq!(due[2].due_at, in_days(20));
    assert_eq!(summary(&expiring(&mut client, 7).await?).len(), 1);
    assert!(expiring(&mut client, 0).await?.is_empty());

    clock.advance(Duration::days(12));
    let due = expiring(&mut client, 0).await?;
    assert_eq!(
        summary(&due),
        [
            (expires_5.mechanism_id.clone(), "expires".to_owned(), true),
            (review_10.mechanism_id.clone(), "review".to_owned(), true),
        ],
        "passed dates stay listed, flagged overdue"
    );
    let due = expiring(&mut client, 30).await?;
    assert_eq!(due.len(), 3);
    assert!(!due[2].overdue);

    for within_days in [-1, 3651] {
        let err = client
            .list_expiring_mechanisms(pb::ListExpiringMechanismsRequest { within_days })
            .await
            .expect_err("out of range");
        assert_eq!(field_violations(&err), ["within_days"]);
    }
    Ok(())
}
