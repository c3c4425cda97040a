//! The transfer log as the privacy team and access requests read it: filtered by
//! recipient, country, subject and time, paged without gaps or repeats; and the
//! recipients a subject's data was actually disclosed to ("GDPR Data Protection Rights":
//! the right of access; Art. 15(1)(c) GDPR: "the recipients … to whom the personal data
//! have been or will be disclosed").

mod support;

use std::collections::BTreeSet;

use chrono::Duration;
use pdm_proto::transfers::v1::{self as pb, Outcome, Regime};
use pdm_runtime::{Clock, ManualClock, convert::timestamp};
use pdm_testkit::{assert::field_violations, start_time};
use support::{
    Client, authorize, log, mesh, person, recipient, record, register, scc, strings, subject,
    transfer,
};

fn ids(entries: &[pb::TransferLogEntry]) -> Vec<String> {
    entries.iter().map(|e| e.log_id.clone()).collect()
}

#[tokio::test]
async fn the_log_is_filtered_by_recipient_country_subject_and_time() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    // Off the whole second, so the time filters are checked to the microsecond.
    clock.advance(Duration::microseconds(250_001));
    let start = clock.now();
    let germany = register(&mut client, recipient("backup-de", "DE")).await?;
    let india = register(&mut client, recipient("hosting-in", "IN")).await?;
    record(&mut client, scc(&india.recipient_id, start)).await?;
    let japan = register(&mut client, recipient("support-jp", "JP")).await?;
    let (ada, bob) = (person(&mesh).await?, person(&mesh).await?);

    // One decision a day, from `start`.
    let requests = [
        (ada.as_str(), &germany, strings(&["account.profile"])),
        (ada.as_str(), &india, strings(&["account.profile"])),
        (bob.as_str(), &japan, strings(&["support.ticket"])),
        (bob.as_str(), &india, strings(&["billing.record"])),
        ("", &germany, strings(&["support.ticket"])),
    ];
    let mut decided = Vec::new();
    for (day, (subject_id, to, categories)) in requests.into_iter().enumerate() {
        let d = authorize(
            &mut client,
            pb::AuthorizeTransferRequest {
                subject_id: subject_id.to_owned(),
                data_categories: categories,
                reference: format!("day-{day}"),
                ..transfer(Regime::Eu, &to.recipient_id)
            },
        )
        .await?;
        decided.push(d.log_id);
        clock.advance(Duration::days(1));
    }
    // Newest first.
    let day = |n: usize| decided[n].clone();

    let all = log(&mut client, pb::ListTransferLogRequest::default()).await?;
    assert_eq!(ids(&all), [day(4), day(3), day(2), day(1), day(0)]);
    let entry = &all[3];
    assert_eq!(entry.recipient_id, india.recipient_id);
    assert_eq!(entry.recipient_name, india.name);
    assert_eq!(entry.country, "IN");
    assert_eq!(entry.regime, Regime::Eu as i32);
    assert_eq!(entry.purpose, "service_provision");
    assert_eq!(entry.data_categories, ["account.profile"]);
    assert_eq!(entry.subject_id, ada);
    assert_eq!(entry.reference, "day-1");
    let decision = entry.decision.clone().expect("decision");
    assert_eq!(decision.outcome, Outcome::AllowedMechanism as i32);
    assert_eq!(
        decision.decided_at,
        Some(timestamp(start + Duration::days(1)))
    );
    assert_eq!(
        all[1].decision.as_ref().map(|d| d.outcome),
        Some(Outcome::DeniedCategoryNotCovered as i32),
        "denials are logged too"
    );

    // A renamed recipient keeps its old name in the entries decided before.
    register(
        &mut client,
        pb::Recipient {
            name: "Hosting provider, renamed".into(),
            ..recipient("hosting-in", "IN")
        },
    )
    .await?;
    let by_recipient = log(
        &mut client,
        pb::ListTransferLogRequest {
            recipient_id: india.recipient_id.clone(),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(ids(&by_recipient), [day(3), day(1)]);
    assert!(by_recipient.iter().all(|e| e.recipient_name == india.name));
    for country in ["IN", "in"] {
        let by_country = log(
            &mut client,
            pb::ListTransferLogRequest {
                country: country.into(),
                ..Default::default()
            },
        )
        .await?;
        assert_eq!(ids(&by_country), [day(3), day(1)]);
    }
    let by_country = log(
        &mut client,
        pb::ListTransferLogRequest {
            country: "DE".into(),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(ids(&by_country), [day(4), day(0)]);
    let by_subject = log(
        &mut client,
        pb::ListTransferLogRequest {
            subject_id: bob.clone(),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(ids(&by_subject), [day(3), day(2)]);
    let combined = log(
        &mut client,
        pb::ListTransferLogRequest {
            subject_id: ada.clone(),
            country: "DE".into(),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(ids(&combined), [day(0)]);

    // From is inclusive, to is exclusive.
    let window = log(
        &mut client,
        pb::ListTransferLogRequest {
            from: Some(timestamp(start + Duration::days(1))),
            to: Some(timestamp(start + Duration::days(3))),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(ids(&window), [day(2), day(1)]);
    let since = log(
        &mut client,
        pb::ListTransferLogRequest {
            from: Some(timestamp(start + Duration::days(3))),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(ids(&since), [day(4), day(3)]);
    let just_after = log(
        &mut client,
        pb::ListTransferLogRequest {
            from: Some(timestamp(
                start + Duration::days(3) + Duration::microseconds(1),
            )),
            to: Some(timestamp(
                start + Duration::days(4) + Duration::microseconds(1),
            )),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(ids(&just_after), [day(4)]);
    let until = log(
        &mut client,
        pb::ListTransferLogRequest {
            to: Some(timestamp(start + Duration::hours(36))),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(ids(&until), [day(1), day(0)]);

    let err = client
        .list_transfer_log(pb::ListTransferLogRequest {
            country: "XX".into(),
            subject_id: "someone".into(),
            page_size: 1001,
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad filters");
    assert_eq!(
        field_violations(&err),
        ["subject_id", "country", "page_size", "page_token"]
    );
    Ok(())
}

#[tokio::test]
async fn pages_chain_through_every_entry_exactly_once() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let germany = register(&mut client, recipient("backup-de", "DE")).await?;
    for _ in 0..5 {
        authorize(&mut client, transfer(Regime::Eu, &germany.recipient_id)).await?;
        clock.advance(Duration::minutes(1));
    }
    let all = ids(&log(&mut client, pb::ListTransferLogRequest::default()).await?);
    assert_eq!(all.len(), 5);

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_transfer_log(pb::ListTransferLogRequest {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        sizes.push(page.entries.len());
        seen.extend(ids(&page.entries));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        assert!(sizes.len() < 10, "the pages never end");
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, all, "every entry once, newest first");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 5);
    Ok(())
}

async fn recipients_of(client: &mut Client, subject_id: &str) -> anyhow::Result<Vec<String>> {
    Ok(client
        .list_recipients(pb::ListRecipientsRequest {
            subject_id: subject_id.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .recipients
        .into_iter()
        .map(|r| r.key)
        .collect())
}

#[tokio::test]
async fn a_subjects_recipients_are_those_its_data_was_actually_sent_to() -> anyhow::Result<()> {
    let clock = ManualClock::new(start_time());
    let mesh = mesh(&clock).await?;
    let mut client = mesh.transfers();
    let germany = register(&mut client, recipient("backup-de", "DE")).await?;
    let india = register(&mut client, recipient("hosting-in", "IN")).await?;
    let japan = register(&mut client, recipient("support-jp", "JP")).await?;
    register(&mut client, recipient("unused-fr", "FR")).await?;
    let (ada, bob) = (person(&mesh).await?, person(&mesh).await?);

    for (subject_id, to) in [
        (&ada, &japan),
        (&ada, &germany),
        (&ada, &germany),
        // Denied (no mechanism for India yet): nothing was disclosed.
        (&ada, &india),
        (&bob, &india),
    ] {
        authorize(
            &mut client,
            pb::AuthorizeTransferRequest {
                subject_id: subject_id.clone(),
                ..transfer(Regime::Eu, &to.recipient_id)
            },
        )
        .await?;
    }
    assert_eq!(
        recipients_of(&mut client, &ada).await?,
        ["backup-de", "support-jp"]
    );
    assert!(recipients_of(&mut client, &bob).await?.is_empty());
    assert!(recipients_of(&mut client, &subject()).await?.is_empty());

    record(&mut client, scc(&india.recipient_id, clock.now())).await?;
    authorize(
        &mut client,
        pb::AuthorizeTransferRequest {
            subject_id: bob.clone(),
            ..transfer(Regime::Eu, &india.recipient_id)
        },
    )
    .await?;
    assert_eq!(recipients_of(&mut client, &bob).await?, ["hosting-in"]);

    let in_japan = client
        .list_recipients(pb::ListRecipientsRequest {
            subject_id: ada.clone(),
            country: "JP".into(),
        })
        .await?
        .into_inner()
        .recipients;
    assert_eq!(in_japan.len(), 1);
    assert_eq!(in_japan[0].recipient_id, japan.recipient_id);
    Ok(())
}
