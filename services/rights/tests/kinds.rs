//! Each kind of request end to end across every data-holding service ("How to access and
//! control your information", "GDPR Data Protection Rights", "CCPA Privacy Rights").

mod support;

use pdm_proto::{
    common::v1::Region,
    consent::v1::{CheckProcessingRequest, GetConsentsRequest, Reason},
    identity::v1::{AuthenticateRequest, GetAccountRequest},
    rights::v1::{self as pb, Credential, Rectification, Regime, RequestKind, Status, credential},
};
use pdm_testkit::{assert::field_violations, fake::Person};
use pdm_tls::identity::Caller;
use support::{
    DATA_SERVICES, disclose, download, mesh, operator, person_with_data, request, submit,
    submit_as, task, wait_closed, wait_closed_as,
};

/// Submits and watches a request to its end.
async fn run(
    mesh: &pdm_testkit::Mesh,
    r: pb::SubmitRequestRequest,
) -> anyhow::Result<pb::DataSubjectRequest> {
    let submitted = submit(mesh, r).await?;
    assert_eq!(submitted.status, Status::InProgress as i32, "{submitted:?}");
    wait_closed(mesh, &submitted.request_id).await
}

async fn decision(
    mesh: &pdm_testkit::Mesh,
    subject: &str,
    purpose: &str,
) -> anyhow::Result<pdm_proto::consent::v1::Decision> {
    Ok(mesh
        .consent()
        .check_processing(CheckProcessingRequest {
            subject_id: subject.to_owned(),
            purpose: purpose.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .decision
        .expect("decision"))
}

async fn account(
    mesh: &pdm_testkit::Mesh,
    subject: &str,
) -> anyhow::Result<pdm_proto::identity::v1::Account> {
    Ok(mesh
        .identity()
        .get_account(GetAccountRequest {
            subject_id: subject.to_owned(),
        })
        .await?
        .into_inner()
        .account
        .expect("account"))
}

fn records_of<'a>(package: &'a serde_json::Value, service: &str) -> Vec<&'a serde_json::Value> {
    package["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["service"] == service)
        .collect()
}

#[tokio::test]
async fn access_portability_and_ccpa_know_packages_hold_every_services_records()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    let recipient = disclose(&mesh, &subject, "backup-de").await?;
    // A live session proves the subject without naming it.
    let session = mesh
        .identity()
        .authenticate(AuthenticateRequest {
            email: person.email.clone(),
            password: person.password.clone(),
        })
        .await?
        .into_inner()
        .session_token;

    let access = run(
        &mesh,
        pb::SubmitRequestRequest {
            kind: RequestKind::Access as i32,
            regime: Regime::Gdpr as i32,
            credential: Some(Credential {
                credential: Some(credential::Credential::SessionToken(session)),
            }),
            ..Default::default()
        },
    )
    .await?;
    let portability = run(
        &mesh,
        request(RequestKind::Portability, Regime::UkGdpr, &subject, &person),
    )
    .await?;
    let know = run(
        &mesh,
        request(RequestKind::CcpaKnow, Regime::Ccpa, &subject, &person),
    )
    .await?;

    for done in [&access, &portability, &know] {
        assert_eq!(done.status, Status::Completed as i32, "{done:?}");
        assert_eq!(done.subject_id, subject);
        assert!(done.package_expires_at.is_some(), "{done:?}");
        // One export per service, and the answers consent and transfers give besides
        // the records (the purposes consented to, the register's standing recipients).
        let exports: Vec<_> = done
            .tasks
            .iter()
            .filter(|t| t.action == "export")
            .map(|t| t.service.as_str())
            .collect();
        assert_eq!(exports, DATA_SERVICES);
        let others: Vec<_> = done
            .tasks
            .iter()
            .filter(|t| t.action != "export")
            .map(|t| (t.service.as_str(), t.action.as_str()))
            .collect();
        assert_eq!(others, [("consent", "purposes"), ("transfers", "register")]);
        for t in &done.tasks {
            assert_eq!(t.status, "done", "{t:?}");
        }
        let package = download(&mesh, &done.request_id).await?;
        assert_eq!(package["schema"], "pdm.export.v1");
        assert_eq!(package["request_id"], done.request_id.as_str());
        assert_eq!(package["subject_id"], subject.as_str());
        assert_eq!(
            package["kind"],
            RequestKind::try_from(done.kind)?.as_str_name()
        );

        let identity = records_of(&package, "identity");
        assert!(
            identity.iter().any(|r| r["category"] == "account.profile"
                && r["data"]["email"] == person.email.as_str()
                && r["data"]["first_name"] == person.first_name.as_str()),
            "{identity:?}"
        );
        let consent = records_of(&package, "consent");
        assert!(
            consent
                .iter()
                .any(|r| r.to_string().contains("product_analytics")),
            "the consent history: {consent:?}"
        );
        let telemetry = records_of(&package, "telemetry");
        assert_eq!(
            telemetry
                .iter()
                .filter(|r| r["category"] == "telemetry.event")
                .count(),
            5
        );
        let transfers = records_of(&package, "transfers");
        assert!(
            transfers
                .iter()
                .any(|r| r["category"] == "transfers.log" && r.to_string().contains(&recipient)),
            "{transfers:?}"
        );
        let recipients = package["summary"]["recipients"]
            .as_array()
            .expect("recipients");
        assert!(
            recipients.iter().any(|r| r == recipient.as_str()),
            "{recipients:?}"
        );
        let what = package["summary"]["what_data"]
            .as_array()
            .expect("what_data");
        assert_eq!(what.len(), 4, "{what:?}");
    }
    assert!(know.confirm_by.is_some(), "CCPA confirms receipt");
    assert!(access.confirm_by.is_none());

    // A CCPA kind under a GDPR regime is refused, naming the kind.
    let status = mesh
        .rights()
        .submit_request(request(
            RequestKind::CcpaKnow,
            Regime::Gdpr,
            &subject,
            &person,
        ))
        .await
        .expect_err("CCPA kind under GDPR");
    assert_eq!(field_violations(&status), ["kind"]);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn rectification_corrects_the_profile_and_bad_corrections_are_refused() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let corrected = Person::new();
    let correct = |field: &str, value: &str| Rectification {
        field: field.to_owned(),
        value: value.to_owned(),
    };

    let done = run(
        &mesh,
        pb::SubmitRequestRequest {
            rectifications: vec![
                correct("first_name", &corrected.first_name),
                correct("phone", &corrected.phone),
                correct("region", "REGION_CH"),
                // Children: a birth date can be given or corrected later.
                correct("birth_date", "1990-05-17"),
            ],
            ..request(
                RequestKind::Rectification,
                Regime::UkGdpr,
                &subject,
                &person,
            )
        },
    )
    .await?;
    assert_eq!(done.status, Status::Completed as i32, "{done:?}");
    assert_eq!(done.tasks.len(), 1);
    assert_eq!(
        (
            done.tasks[0].service.as_str(),
            done.tasks[0].action.as_str()
        ),
        ("identity", "rectify")
    );
    let after = account(&mesh, &subject).await?;
    assert_eq!(after.first_name, corrected.first_name);
    assert_eq!(after.phone, corrected.phone);
    assert_eq!(after.region, Region::Ch as i32);
    assert_eq!(after.birth_date, "1990-05-17");
    assert_eq!(after.last_name, person.last_name, "untouched");
    assert_eq!(after.email, person.email, "untouched");

    // A field that cannot be rectified, and a region that does not exist: refused before
    // anything is stored.
    let status = mesh
        .rights()
        .submit_request(pb::SubmitRequestRequest {
            rectifications: vec![
                correct("password", "hunter2 hunter2"),
                correct("region", "REGION_ATLANTIS"),
                correct("birth_date", "17/05/1990"),
            ],
            ..request(RequestKind::Rectification, Regime::Gdpr, &subject, &person)
        })
        .await
        .expect_err("bad corrections");
    assert_eq!(
        field_violations(&status),
        [
            "rectifications[0].field",
            "rectifications[1].value",
            "rectifications[2].value"
        ]
    );

    // A value identity refuses (not an email address): the request is denied, with the
    // reason, and the profile is unchanged.
    let denied = run(
        &mesh,
        pb::SubmitRequestRequest {
            rectifications: vec![correct("email", "not an email address")],
            ..request(RequestKind::Rectification, Regime::Gdpr, &subject, &person)
        },
    )
    .await?;
    assert_eq!(denied.status, Status::Denied as i32, "{denied:?}");
    assert!(denied.outcome_reason.contains("identity"), "{denied:?}");
    assert_eq!(account(&mesh, &subject).await?.email, person.email);

    let mut secrets = person.secrets();
    secrets.extend([
        ("corrected first name", corrected.first_name.as_str()),
        ("corrected phone", corrected.phone.as_str()),
    ]);
    mesh.logs().assert_clean(&secrets);
    Ok(())
}

#[tokio::test]
async fn erasure_and_ccpa_delete_leave_nothing_personal_for_a_later_access() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let (gdpr_person, gdpr_subject) = person_with_data(&mesh).await?;
    disclose(&mesh, &gdpr_subject, "backup-eu").await?;
    let ccpa_person = Person {
        region: Region::UsCa,
        ..Person::new()
    };
    let ccpa_subject = mesh.sign_up(&ccpa_person).await?;
    disclose(&mesh, &ccpa_subject, "backup-us").await?;

    for (kind, regime, person, subject) in [
        (
            RequestKind::Erasure,
            Regime::Gdpr,
            &gdpr_person,
            &gdpr_subject,
        ),
        (
            RequestKind::CcpaDelete,
            Regime::Ccpa,
            &ccpa_person,
            &ccpa_subject,
        ),
    ] {
        let erased = run(&mesh, request(kind, regime, subject, person)).await?;
        assert_eq!(erased.status, Status::Completed as i32, "{erased:?}");
        let services: Vec<_> = erased.tasks.iter().map(|t| t.service.as_str()).collect();
        assert_eq!(services, DATA_SERVICES);
        for t in &erased.tasks {
            assert_eq!((t.action.as_str(), t.status.as_str()), ("erase", "done"));
            let receipt = t.receipt.as_ref().expect("a receipt from every service");
            assert_eq!(receipt.request_id, erased.request_id, "{t:?}");
            assert_eq!(receipt.service, t.service, "{t:?}");
            assert!(receipt.completed_at.is_some(), "{t:?}");
        }
        assert!(
            task(&erased, "identity")
                .receipt
                .as_ref()
                .is_some_and(|r| r.key_destroyed)
        );

        // The privacy team checks that nothing is left: an access request it vouches for
        // (only the privacy team, `admin`, may vouch).
        let vouched = pb::SubmitRequestRequest {
            kind: RequestKind::Access as i32,
            regime: regime as i32,
            subject_id: subject.clone(),
            credential: operator("DPO-2026-0042 passport checked"),
            ..Default::default()
        };
        let refused = submit_as(&mesh, &Caller::Client("support".into()), vouched.clone())
            .await
            .expect_err("a company client may not vouch");
        let refused = refused
            .downcast_ref::<tonic::Status>()
            .map(tonic::Status::code);
        assert_eq!(refused, Some(tonic::Code::PermissionDenied));
        let submitted = submit_as(&mesh, &Caller::Admin, vouched).await?;
        assert_eq!(submitted.status, Status::InProgress as i32, "{submitted:?}");
        // Submitted by the privacy team: theirs to follow.
        let access = wait_closed_as(&mesh, &Caller::Admin, &submitted.request_id).await?;
        assert_eq!(access.status, Status::Completed as i32, "{access:?}");
        let package = download(&mesh, &access.request_id).await?;
        assert_eq!(package["schema"], "pdm.export.v1");
        let text = package.to_string();
        for (what, value) in [
            ("email", person.email.as_str()),
            ("first name", person.first_name.as_str()),
            ("last name", person.last_name.as_str()),
            ("phone", person.phone.as_str()),
        ] {
            assert!(!text.contains(value), "the {what} survived the erasure");
        }
        for r in package["records"].as_array().expect("records") {
            assert_ne!(r["category"], "account.profile", "{r}");
            assert_ne!(r["category"], "telemetry.event", "{r}");
        }
    }
    mesh.logs().assert_clean(&gdpr_person.secrets());
    mesh.logs().assert_clean(&ccpa_person.secrets());
    Ok(())
}

#[tokio::test]
async fn restriction_reaches_consent_and_identity() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    assert!(
        decision(&mesh, &subject, "product_analytics")
            .await?
            .allowed
    );

    let done = run(
        &mesh,
        request(RequestKind::Restriction, Regime::Gdpr, &subject, &person),
    )
    .await?;
    assert_eq!(done.status, Status::Completed as i32, "{done:?}");
    let services: Vec<_> = done.tasks.iter().map(|t| t.service.as_str()).collect();
    assert_eq!(services, DATA_SERVICES);
    for t in &done.tasks {
        assert_eq!((t.action.as_str(), t.status.as_str()), ("restrict", "done"));
    }
    for purpose in ["product_analytics", "product_research", "service_provision"] {
        let d = decision(&mesh, &subject, purpose).await?;
        assert!(!d.allowed, "{purpose}: {d:?}");
        assert_eq!(d.reason, Reason::Restricted as i32, "{purpose}");
    }
    let consents = mesh
        .consent()
        .get_consents(GetConsentsRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner();
    assert!(consents.restricted);
    assert!(account(&mesh, &subject).await?.restricted);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn objection_is_recorded_unless_the_purpose_cannot_be_objected_to() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let (person, subject) = person_with_data(&mesh).await?;
    assert!(decision(&mesh, &subject, "product_research").await?.allowed);

    let done = run(
        &mesh,
        pb::SubmitRequestRequest {
            purpose: "product_research".into(),
            ..request(RequestKind::Objection, Regime::Gdpr, &subject, &person)
        },
    )
    .await?;
    assert_eq!(done.status, Status::Completed as i32, "{done:?}");
    assert_eq!(done.tasks.len(), 1);
    assert_eq!(
        (
            done.tasks[0].service.as_str(),
            done.tasks[0].action.as_str()
        ),
        ("consent", "object")
    );
    let d = decision(&mesh, &subject, "product_research").await?;
    assert!(!d.allowed);
    assert_eq!(d.reason, Reason::Objected as i32);
    assert!(
        decision(&mesh, &subject, "product_analytics")
            .await?
            .allowed,
        "other purposes are untouched"
    );

    // Running the service the subject signed up for rests on the contract: consent
    // refuses the objection and the request is denied, saying why.
    let denied = run(
        &mesh,
        pb::SubmitRequestRequest {
            purpose: "service_provision".into(),
            ..request(RequestKind::Objection, Regime::Gdpr, &subject, &person)
        },
    )
    .await?;
    assert_eq!(denied.status, Status::Denied as i32, "{denied:?}");
    assert!(denied.closed_at.is_some());
    assert!(
        denied.outcome_reason.contains("consent"),
        "{}",
        denied.outcome_reason
    );
    assert_eq!(task(&denied, "consent").status, "rejected");
    assert!(
        decision(&mesh, &subject, "service_provision")
            .await?
            .allowed
    );
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn ccpa_opt_out_refuses_sale_and_sharing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let person = Person {
        region: Region::UsCa,
        ..Person::new()
    };
    let subject = mesh.sign_up(&person).await?;
    assert!(decision(&mesh, &subject, "sale_or_share").await?.allowed);

    let status = mesh
        .rights()
        .submit_request(request(
            RequestKind::CcpaOptOut,
            Regime::UkGdpr,
            &subject,
            &person,
        ))
        .await
        .expect_err("CCPA kind under UK GDPR");
    assert_eq!(field_violations(&status), ["kind"]);

    let done = run(
        &mesh,
        request(RequestKind::CcpaOptOut, Regime::Ccpa, &subject, &person),
    )
    .await?;
    assert_eq!(done.status, Status::Completed as i32, "{done:?}");
    assert_eq!(
        (
            done.tasks[0].service.as_str(),
            done.tasks[0].action.as_str()
        ),
        ("consent", "do_not_sell")
    );
    let consents = mesh
        .consent()
        .get_consents(GetConsentsRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner();
    assert!(consents.do_not_sell);
    let d = decision(&mesh, &subject, "sale_or_share").await?;
    assert!(!d.allowed);
    assert_eq!(d.reason, Reason::DoNotSell as i32);
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}

#[tokio::test]
async fn the_same_client_reference_returns_the_same_request() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mesh = mesh(&dir.path().join("outbox.jsonl")).await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let with_reference = |reference: &str| pb::SubmitRequestRequest {
        client_reference: reference.to_owned(),
        ..request(RequestKind::Access, Regime::UkGdpr, &subject, &person)
    };

    let first = submit(&mesh, with_reference("portal-4711")).await?;
    let again = submit(&mesh, with_reference("portal-4711")).await?;
    assert_eq!(again.request_id, first.request_id);
    assert_eq!(again.received_at, first.received_at);
    // A retry that differs in anything else still answers with the first request.
    let different = submit(
        &mesh,
        pb::SubmitRequestRequest {
            kind: RequestKind::Erasure as i32,
            ..with_reference("portal-4711")
        },
    )
    .await?;
    assert_eq!(different.request_id, first.request_id);
    assert_eq!(different.kind, RequestKind::Access as i32);
    let other = submit(&mesh, with_reference("portal-4712")).await?;
    assert_ne!(other.request_id, first.request_id);

    // Retries racing each other still make one request.
    let (a, b, c) = tokio::join!(
        submit(&mesh, with_reference("portal-race")),
        submit(&mesh, with_reference("portal-race")),
        submit(&mesh, with_reference("portal-race")),
    );
    let (a, b, c) = (a?, b?, c?);
    assert_eq!(a.request_id, b.request_id);
    assert_eq!(a.request_id, c.request_id);
    let listed = mesh
        .rights()
        .list_requests(pb::ListRequestsRequest::default())
        .await?
        .into_inner()
        .requests;
    assert_eq!(listed.len(), 3, "{listed:?}");
    for r in [&first, &other, &a] {
        assert_eq!(
            wait_closed(&mesh, &r.request_id).await?.status,
            Status::Completed as i32
        );
    }
    mesh.logs().assert_clean(&person.secrets());
    Ok(())
}
