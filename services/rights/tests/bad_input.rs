//! Bad input is refused with INVALID_ARGUMENT and a field violation per bad field, and
//! nothing is stored; requests that do not exist are NOT_FOUND; downloads and changes
//! that the request's state does not allow are FAILED_PRECONDITION.

mod support;

use pdm_proto::rights::v1::{
    self as pb, Credential, Rectification, Regime, RequestKind, Status, credential,
};
use pdm_testkit::{
    Mesh,
    assert::{contains, field_violations, raw_storage, rows},
    fake::Person,
};
use support::{mesh, operator, password, submit, wait_closed, wait_for};
use tonic::Code;

/// A card number as people type it: plain, in groups, and after another number.
const CARDS: [&str; 4] = [
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "qty 2 4111 1111 1111 1111",
];

/// The card as it would be found in storage, messages or logs.
const CARD_FORMS: [(&str, &str); 3] = [
    ("card number", "4111111111111111"),
    ("card number", "4111 1111 1111 1111"),
    ("card number", "4111-1111-1111-1111"),
];

fn sorted(mut fields: Vec<String>) -> Vec<String> {
    fields.sort();
    fields
}

async fn nothing_stored(mesh: &Mesh) -> anyhow::Result<()> {
    let db = mesh.connect_db("rights").await?;
    for table in ["requests", "tasks", "outbox", "package_chunks"] {
        assert_eq!(rows(&db, table).await, 0, "{table}");
    }
    Ok(())
}

/// The mesh (its outbox in a directory kept as long as the first value) and a person
/// signed up on it, with their subject id.
async fn signed_up() -> anyhow::Result<(tempfile::TempDir, Mesh, Person, String)> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    Ok((dir, mesh, person, subject))
}

/// An access request of `person`'s, proven with the password: valid as it is.
fn good_submission(person: &Person, subject: &str) -> pb::SubmitRequestRequest {
    pb::SubmitRequestRequest {
        kind: RequestKind::Access as i32,
        regime: Regime::Gdpr as i32,
        subject_id: subject.to_owned(),
        credential: password(person),
        ..Default::default()
    }
}

/// `n` valid corrections of the first name.
fn correct(n: usize) -> Vec<Rectification> {
    (0..n)
        .map(|i| Rectification {
            field: "first_name".into(),
            value: format!("Ada{i}"),
        })
        .collect()
}

#[tokio::test]
async fn bad_submissions_are_refused_field_by_field_and_nothing_is_stored() -> anyhow::Result<()> {
    let (_dir, mesh, person, subject) = signed_up().await?;
    let good = good_submission(&person, &subject);
    let cases: Vec<(&str, pb::SubmitRequestRequest, Vec<&str>)> = vec![
        (
            "unknown kind",
            pb::SubmitRequestRequest {
                kind: 99,
                ..good.clone()
            },
            vec!["kind"],
        ),
        (
            "no kind",
            pb::SubmitRequestRequest {
                kind: 0,
                ..good.clone()
            },
            vec!["kind"],
        ),
        (
            "unknown regime",
            pb::SubmitRequestRequest {
                regime: 42,
                ..good.clone()
            },
            vec!["regime"],
        ),
        (
            "no regime",
            pb::SubmitRequestRequest {
                regime: 0,
                ..good.clone()
            },
            vec!["regime"],
        ),
        (
            "CCPA kind under GDPR",
            pb::SubmitRequestRequest {
                kind: RequestKind::CcpaDelete as i32,
                ..good.clone()
            },
            vec!["kind"],
        ),
        (
            "malformed subject",
            pb::SubmitRequestRequest {
                subject_id: "ada@example.org".into(),
                ..good.clone()
            },
            vec!["subject_id"],
        ),
        (
            "subject not in hyphenated form",
            pb::SubmitRequestRequest {
                subject_id: subject.replace('-', ""),
                ..good.clone()
            },
            vec!["subject_id"],
        ),
        (
            "password without subject",
            pb::SubmitRequestRequest {
                subject_id: String::new(),
                ..good.clone()
            },
            vec!["subject_id"],
        ),
        (
            "operator reference without subject",
            pb::SubmitRequestRequest {
                subject_id: String::new(),
                credential: operator("DPO-1"),
                ..good.clone()
            },
            vec!["subject_id"],
        ),
        (
            "empty password",
            pb::SubmitRequestRequest {
                credential: Some(Credential {
                    credential: Some(credential::Credential::Password(String::new())),
                }),
                ..good.clone()
            },
            vec!["credential.password"],
        ),
        (
            "overlong session token",
            pb::SubmitRequestRequest {
                credential: Some(Credential {
                    credential: Some(credential::Credential::SessionToken("t".repeat(257))),
                }),
                ..good.clone()
            },
            vec!["credential.session_token"],
        ),
        (
            "objection without purpose",
            pb::SubmitRequestRequest {
                kind: RequestKind::Objection as i32,
                ..good.clone()
            },
            vec!["purpose"],
        ),
        (
            "objection to a malformed purpose",
            pb::SubmitRequestRequest {
                kind: RequestKind::Objection as i32,
                purpose: "Product Research!".into(),
                ..good.clone()
            },
            vec!["purpose"],
        ),
        (
            "rectification without corrections",
            pb::SubmitRequestRequest {
                kind: RequestKind::Rectification as i32,
                ..good.clone()
            },
            vec!["rectifications"],
        ),
        (
            "more than 10 rectifications",
            pb::SubmitRequestRequest {
                kind: RequestKind::Rectification as i32,
                rectifications: correct(11),
                ..good.clone()
            },
            vec!["rectifications"],
        ),
        (
            "a rectification of a field that cannot be rectified",
            pb::SubmitRequestRequest {
                kind: RequestKind::Rectification as i32,
                rectifications: vec![Rectification {
                    field: "password".into(),
                    value: "correct horse battery".into(),
                }],
                ..good.clone()
            },
            vec!["rectifications[0].field"],
        ),
        (
            "a deletion reason that is no reason",
            pb::SubmitRequestRequest {
                deletion_reason: "because".into(),
                ..good.clone()
            },
            vec!["deletion_reason"],
        ),
        (
            "a deletion reason on a request that deletes nothing",
            pb::SubmitRequestRequest {
                kind: RequestKind::Access as i32,
                deletion_reason: "DELETION_REASON_PRIVACY_CONCERNS".into(),
                ..good.clone()
            },
            vec!["deletion_reason"],
        ),
        (
            "a birth date that is not a date",
            pb::SubmitRequestRequest {
                kind: RequestKind::Rectification as i32,
                rectifications: vec![Rectification {
                    field: "birth_date".into(),
                    value: "1 January 2001".into(),
                }],
                ..good.clone()
            },
            vec!["rectifications[0].value"],
        ),
        (
            "an overlong correction",
            pb::SubmitRequestRequest {
                kind: RequestKind::Rectification as i32,
                rectifications: vec![Rectification {
                    field: "last_name".into(),
                    value: "x".repeat(255),
                }],
                ..good.clone()
            },
            vec!["rectifications[0].value"],
        ),
        (
            "notes over 1,000 characters",
            pb::SubmitRequestRequest {
                notes: "é".repeat(1001),
                ..good.clone()
            },
            vec!["notes"],
        ),
        (
            "notes with control characters",
            pb::SubmitRequestRequest {
                notes: "please\u{7} hurry".into(),
                ..good.clone()
            },
            vec!["notes"],
        ),
        (
            "a client reference with spaces",
            pb::SubmitRequestRequest {
                client_reference: "my reference".into(),
                ..good.clone()
            },
            vec!["client_reference"],
        ),
        (
            "an overlong client reference",
            pb::SubmitRequestRequest {
                client_reference: "r".repeat(129),
                ..good.clone()
            },
            vec!["client_reference"],
        ),
        (
            "everything at once",
            pb::SubmitRequestRequest {
                kind: RequestKind::Objection as i32,
                regime: 7,
                subject_id: "nobody".into(),
                notes: "n".repeat(1001),
                ..good.clone()
            },
            vec!["notes", "purpose", "regime", "subject_id"],
        ),
    ];
    let mut rights = mesh.rights();
    for (what, request, fields) in cases {
        let status = rights.submit_request(request).await.expect_err(what);
        assert_eq!(
            sorted(field_violations(&status)),
            fields,
            "{what}: {status:?}"
        );
    }
    nothing_stored(&mesh).await?;
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn submissions_at_the_limits_are_accepted_and_complete() -> anyhow::Result<()> {
    let (_dir, mesh, person, subject) = signed_up().await?;
    let at_limits = submit(
        &mesh,
        pb::SubmitRequestRequest {
            kind: RequestKind::Rectification as i32,
            rectifications: correct(10),
            notes: "é".repeat(1000),
            client_reference: "r".repeat(128),
            ..good_submission(&person, &subject)
        },
    )
    .await?;
    assert_eq!(
        wait_closed(&mesh, &at_limits.request_id).await?.status,
        Status::Completed as i32
    );
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

/// The six calls that name a request, each with `request_id`: what each answered, when
/// it was an error.
async fn calls_naming(
    mesh: &Mesh,
    person: &Person,
    request_id: &str,
) -> [Option<tonic::Status>; 6] {
    let mut rights = mesh.rights();
    let id = request_id.to_owned();
    [
        rights
            .get_request(pb::GetRequestRequest {
                request_id: id.clone(),
                ..Default::default()
            })
            .await
            .err(),
        rights
            .verify_request(pb::VerifyRequestRequest {
                request_id: id.clone(),
                subject_id: String::new(),
                credential: password(person),
            })
            .await
            .err(),
        rights
            .extend_deadline(pb::ExtendDeadlineRequest {
                request_id: id.clone(),
                months: 1,
                reason: "complex".into(),
            })
            .await
            .err(),
        rights
            .cancel_request(pb::CancelRequestRequest {
                request_id: id.clone(),
                reason: "asked by the subject".into(),
            })
            .await
            .err(),
        rights
            .download_export(pb::DownloadExportRequest {
                request_id: id.clone(),
                ..Default::default()
            })
            .await
            .err(),
        rights
            .watch_request(pb::WatchRequestRequest {
                request_id: id,
                ..Default::default()
            })
            .await
            .err(),
    ]
}

#[tokio::test]
async fn malformed_request_ids_are_refused_by_every_call() -> anyhow::Result<()> {
    let (_dir, mesh, person, _) = signed_up().await?;
    for malformed in [
        "",
        "42",
        "not-a-request",
        "01a2294b-6459-7712-9ef3-133fdd402d5",
    ] {
        let errors = calls_naming(&mesh, &person, malformed).await;
        for (i, status) in errors.into_iter().enumerate() {
            let status = status.unwrap_or_else(|| panic!("call {i} accepted {malformed:?}"));
            assert_eq!(field_violations(&status), ["request_id"], "call {i}");
        }
    }
    nothing_stored(&mesh).await?;
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn unknown_requests_are_not_found_by_any_call() -> anyhow::Result<()> {
    let (_dir, mesh, person, _) = signed_up().await?;
    let unknown = uuid::Uuid::now_v7().to_string();
    let errors = calls_naming(&mesh, &person, &unknown).await;
    for (i, status) in errors.into_iter().enumerate() {
        let status = status.unwrap_or_else(|| panic!("call {i} found an unknown request"));
        assert_eq!(status.code(), Code::NotFound, "call {i}: {status:?}");
    }
    nothing_stored(&mesh).await?;
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn bad_arguments_of_calls_on_requests_are_refused_field_by_field() -> anyhow::Result<()> {
    let (_dir, mesh, person, _) = signed_up().await?;
    let mut rights = mesh.rights();
    let unknown = uuid::Uuid::now_v7().to_string();

    // Every bad field at once, whatever else is wrong.
    let cases = [
        (
            "verify: malformed subject, no credential",
            rights
                .verify_request(pb::VerifyRequestRequest {
                    request_id: unknown.clone(),
                    subject_id: "ada".into(),
                    credential: None,
                })
                .await
                .err(),
            vec!["credential", "subject_id"],
        ),
        (
            "verify: bad id, empty credential",
            rights
                .verify_request(pb::VerifyRequestRequest {
                    request_id: "42".into(),
                    subject_id: String::new(),
                    credential: Some(Credential { credential: None }),
                })
                .await
                .err(),
            vec!["credential", "request_id"],
        ),
        (
            "extend: no reason",
            rights
                .extend_deadline(pb::ExtendDeadlineRequest {
                    request_id: unknown.clone(),
                    months: 1,
                    reason: " ".into(),
                })
                .await
                .err(),
            vec!["reason"],
        ),
        (
            "extend: reason over 1,000 characters",
            rights
                .extend_deadline(pb::ExtendDeadlineRequest {
                    request_id: unknown.clone(),
                    months: 1,
                    reason: "r".repeat(1001),
                })
                .await
                .err(),
            vec!["reason"],
        ),
        (
            "extend: bad id, no reason",
            rights
                .extend_deadline(pb::ExtendDeadlineRequest {
                    request_id: "42".into(),
                    months: 1,
                    reason: String::new(),
                })
                .await
                .err(),
            vec!["reason", "request_id"],
        ),
        (
            "cancel: no reason",
            rights
                .cancel_request(pb::CancelRequestRequest {
                    request_id: unknown.clone(),
                    reason: String::new(),
                })
                .await
                .err(),
            vec!["reason"],
        ),
        (
            "cancel: bad id, reason over 1,000 characters",
            rights
                .cancel_request(pb::CancelRequestRequest {
                    request_id: String::new(),
                    reason: "r".repeat(1001),
                })
                .await
                .err(),
            vec!["reason", "request_id"],
        ),
        (
            "list: unknown status and kind, page too large, foreign token",
            rights
                .list_requests(pb::ListRequestsRequest {
                    status: 17,
                    kind: 99,
                    page_size: 501,
                    page_token: unknown.clone(),
                    ..Default::default()
                })
                .await
                .err(),
            vec!["kind", "page_size", "page_token", "status"],
        ),
        (
            "report: no year",
            rights
                .get_report(pb::GetReportRequest { year: 0 })
                .await
                .err(),
            vec!["year"],
        ),
    ];
    for (what, status, fields) in cases {
        let status = status.unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(sorted(field_violations(&status)), fields, "{what}");
    }
    nothing_stored(&mesh).await?;
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

async fn download(mesh: &Mesh, request_id: &str) -> Result<(), tonic::Status> {
    mesh.rights()
        .download_export(pb::DownloadExportRequest {
            request_id: request_id.to_owned(),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

#[tokio::test]
async fn only_completed_access_requests_can_be_downloaded_and_closed_ones_not_cancelled()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let request = |kind: RequestKind| pb::SubmitRequestRequest {
        kind: kind as i32,
        regime: Regime::UkGdpr as i32,
        subject_id: subject.clone(),
        credential: password(&person),
        ..Default::default()
    };
    let restricted = submit(&mesh, request(RequestKind::Restriction)).await?;
    assert_eq!(
        wait_closed(&mesh, &restricted.request_id).await?.status,
        Status::Completed as i32
    );
    // Any spelling of the id finds the request.
    let shouting = support::get(&mesh, &restricted.request_id.to_uppercase()).await?;
    assert_eq!(shouting.request_id, restricted.request_id);
    let status = download(&mesh, &restricted.request_id)
        .await
        .expect_err("a restriction has no package");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");

    // An access request still running (telemetry is down) or waiting for verification.
    mesh.stop("telemetry").await?;
    let running = submit(&mesh, request(RequestKind::Access)).await?;
    wait_for(&mesh, &running.request_id, "telemetry failed", |r| {
        r.tasks
            .iter()
            .any(|t| t.service == "telemetry" && t.status == "failed")
    })
    .await?;
    let waiting = submit(
        &mesh,
        pb::SubmitRequestRequest {
            credential: None,
            ..request(RequestKind::Portability)
        },
    )
    .await?;
    assert_eq!(waiting.status, Status::VerificationRequired as i32);
    for id in [&running.request_id, &waiting.request_id] {
        let status = download(&mesh, id).await.expect_err("still open");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    }

    // Cancelled: no package, and no second cancellation.
    let cancelled = mesh
        .rights()
        .cancel_request(pb::CancelRequestRequest {
            request_id: running.request_id.clone(),
            reason: "withdrawn by the subject".into(),
        })
        .await?
        .into_inner()
        .request
        .expect("request");
    assert_eq!(cancelled.status, Status::Cancelled as i32);
    assert_eq!(cancelled.outcome_reason, "withdrawn by the subject");
    assert!(cancelled.closed_at.is_some());
    let status = download(&mesh, &running.request_id)
        .await
        .expect_err("cancelled");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let status = mesh
        .rights()
        .cancel_request(pb::CancelRequestRequest {
            request_id: running.request_id.clone(),
            reason: "again".into(),
        })
        .await
        .expect_err("closed");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");

    // The erasure completes, but an erasure has no package.
    mesh.restart("telemetry").await?;
    let erased = submit(&mesh, request(RequestKind::Erasure)).await?;
    assert_eq!(
        wait_closed(&mesh, &erased.request_id).await?.status,
        Status::Completed as i32
    );
    let status = download(&mesh, &erased.request_id)
        .await
        .expect_err("an erasure has no package");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let status = mesh
        .rights()
        .cancel_request(pb::CancelRequestRequest {
            request_id: erased.request_id.clone(),
            reason: "too late".into(),
        })
        .await
        .expect_err("completed");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn card_numbers_are_refused_in_every_free_text_field_policy_we_dont_store_payment_information()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox.jsonl");
    let mesh = mesh(&outbox).await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let good = pb::SubmitRequestRequest {
        kind: RequestKind::Access as i32,
        regime: Regime::Gdpr as i32,
        subject_id: subject.clone(),
        credential: password(&person),
        ..Default::default()
    };
    let correction = |field: &str, value: &str| pb::SubmitRequestRequest {
        kind: RequestKind::Rectification as i32,
        rectifications: vec![Rectification {
            field: field.into(),
            value: value.into(),
        }],
        ..good.clone()
    };
    let mut rights = mesh.rights();

    // SubmitRequest: each free-text field with a card in it, the rest valid.
    for card in CARDS {
        let mut cases: Vec<(&str, pb::SubmitRequestRequest)> = vec![
            (
                "notes",
                pb::SubmitRequestRequest {
                    notes: format!("please hurry\n{card}"),
                    ..good.clone()
                },
            ),
            (
                "notes",
                pb::SubmitRequestRequest {
                    notes: card.into(),
                    ..good.clone()
                },
            ),
            (
                "client_reference",
                pb::SubmitRequestRequest {
                    client_reference: card.into(),
                    ..good.clone()
                },
            ),
            (
                "purpose",
                pb::SubmitRequestRequest {
                    kind: RequestKind::Objection as i32,
                    purpose: card.into(),
                    ..good.clone()
                },
            ),
            (
                "credential.operator_reference",
                pb::SubmitRequestRequest {
                    credential: operator(card),
                    ..good.clone()
                },
            ),
            ("rectifications[0].field", correction(card, "Ada")),
        ];
        for field in ["first_name", "last_name", "email", "phone", "region"] {
            cases.push(("rectifications[0].value", correction(field, card)));
        }
        for (field, request) in cases {
            let what = format!("{field} = {card:?} in {request:?}");
            let status = rights.submit_request(request).await.expect_err(&what);
            assert_eq!(field_violations(&status), [field], "{what}");
        }
    }
    nothing_stored(&mesh).await?;

    // The calls on a request: a request waiting for verification, left as it was.
    let waiting = submit(
        &mesh,
        pb::SubmitRequestRequest {
            credential: None,
            ..good.clone()
        },
    )
    .await?;
    assert_eq!(waiting.status, Status::VerificationRequired as i32);
    for card in CARDS {
        let id = waiting.request_id.clone();
        let status = rights
            .verify_request(pb::VerifyRequestRequest {
                request_id: id.clone(),
                subject_id: subject.clone(),
                credential: operator(card),
            })
            .await
            .expect_err(card);
        assert_eq!(
            field_violations(&status),
            ["credential.operator_reference"],
            "{card:?}"
        );
        let status = rights
            .extend_deadline(pb::ExtendDeadlineRequest {
                request_id: id.clone(),
                months: 1,
                reason: format!("waiting for the refund of {card}"),
            })
            .await
            .expect_err(card);
        assert_eq!(field_violations(&status), ["reason"], "{card:?}");
        let status = rights
            .cancel_request(pb::CancelRequestRequest {
                request_id: id,
                reason: card.into(),
            })
            .await
            .expect_err(card);
        assert_eq!(field_violations(&status), ["reason"], "{card:?}");
    }
    let after = support::get(&mesh, &waiting.request_id).await?;
    assert_eq!(after, waiting, "the request is as it was");
    let db = mesh.connect_db("rights").await?;
    assert_eq!(rows(&db, "requests").await, 1);
    for table in ["tasks", "outbox"] {
        assert_eq!(rows(&db, table).await, 0, "{table}");
    }
    let raw = raw_storage(&mesh, "rights").await;
    let messages = std::fs::read(&outbox).unwrap_or_default();
    for (_, form) in CARD_FORMS {
        assert!(!contains(&raw, form), "{form} found in raw storage");
        assert!(!contains(&messages, form), "{form} found in a message");
    }
    let mut secrets = person.secrets();
    secrets.extend(CARD_FORMS);
    mesh.logs().assert_clean(&secrets);
    Ok(())
}
