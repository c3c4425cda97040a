//! Special categories in support tickets (issue 15; policy, "Consent to be obtained": "We
//! always ask for your permission before collecting or using any sensitive personal
//! details"; Art. 9 GDPR): a ticket or attachment that declares a special category is
//! stored only with the subject's explicit consent to it in force in the consent service.

use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_proto::{
    consent::v1::{GrantConsentRequest, Source, WithdrawConsentRequest},
    identity::v1::{self as pb, SpecialCategory},
};
use pdm_runtime::tonic_types::StatusExt;
use pdm_testkit::{
    Mesh, TestMesh,
    assert::{field_violations, rows},
    fake::{self, Person},
};
use tonic::{Code, Status};

/// Identity and consent. The default policy does not yet let identity ask consent (see
/// the issue 15 report: `shared/runtime/src/policy.toml` needs "identity" among the
/// callers of BatchCheckProcessing), so the test mesh lets it call consent.
async fn mesh() -> anyhow::Result<Mesh> {
    TestMesh::new()
        .with(Identity)
        .with(Consent)
        .setting("security.allow_all", "client:testkit,identity")
        .start()
        .await
}

fn ticket(
    subject: &str,
    person: &Person,
    declared: &[SpecialCategory],
) -> pb::CreateSupportTicketRequest {
    pb::CreateSupportTicketRequest {
        subject_id: subject.to_owned(),
        contact: person.email.clone(),
        summary: fake::phrase("Cannot read the dashboard"),
        description: "My eyesight is poor since my operation; the contrast is too low.".into(),
        attachments: Vec::new(),
        special_categories: declared.iter().map(|c| *c as i32).collect(),
    }
}

fn attachment(declared: &[SpecialCategory]) -> pb::TicketAttachment {
    pb::TicketAttachment {
        file_name: "scan.pdf".into(),
        content: fake::pdf(),
        special_categories: declared.iter().map(|c| *c as i32).collect(),
        ..Default::default()
    }
}

async fn grant(mesh: &Mesh, subject: &str, purpose: &str) -> anyhow::Result<()> {
    mesh.consent()
        .grant_consent(GrantConsentRequest {
            subject_id: subject.to_owned(),
            purpose: purpose.to_owned(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".into(),
            text_hash: "c".repeat(64),
            actor: "support-form".into(),
            occurred_at: None,
        })
        .await?;
    Ok(())
}

/// The consent purposes a FAILED_PRECONDITION names as missing.
fn missing(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    status
        .get_details_precondition_failure()
        .map(|p| {
            p.violations
                .into_iter()
                .inspect(|v| assert_eq!(v.r#type, "EXPLICIT_CONSENT"))
                .map(|v| v.subject)
                .collect()
        })
        .unwrap_or_default()
}

async fn stored(mesh: &Mesh) -> anyhow::Result<(u64, u64)> {
    let db = mesh.connect_db("identity").await?;
    Ok((
        rows(&db, "support_tickets").await,
        rows(&db, "ticket_attachments").await,
    ))
}

#[tokio::test]
async fn we_always_ask_for_your_permission_before_collecting_or_using_any_sensitive_personal_details()
-> anyhow::Result<()> {
    let mesh = mesh().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;

    // Health details declared, no explicit consent: refused, nothing stored.
    let err = identity
        .create_support_ticket(ticket(&subject, &person, &[SpecialCategory::Health]))
        .await
        .expect_err("no explicit consent");
    assert_eq!(missing(&err), ["special_category_health"]);
    assert_eq!(stored(&mesh).await?, (0, 0));

    // With explicit consent to health: stored and marked.
    grant(&mesh, &subject, "special_category_health").await?;
    let created = identity
        .create_support_ticket(pb::CreateSupportTicketRequest {
            attachments: vec![attachment(&[SpecialCategory::Health])],
            ..ticket(&subject, &person, &[SpecialCategory::Health])
        })
        .await?
        .into_inner()
        .ticket
        .expect("ticket");
    assert_eq!(created.special_categories, [SpecialCategory::Health as i32]);
    assert_eq!(stored(&mesh).await?, (1, 1));
    let listed = identity
        .list_support_tickets(pb::ListSupportTicketsRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner()
        .tickets;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].special_categories,
        [SpecialCategory::Health as i32]
    );
    assert_eq!(
        listed[0].attachments[0].special_categories,
        [SpecialCategory::Health as i32]
    );

    // Consent to health opens no other category: an attachment declaring biometric and
    // religious data names both as missing, and nothing of the ticket is stored.
    let err = identity
        .create_support_ticket(pb::CreateSupportTicketRequest {
            attachments: vec![attachment(&[
                SpecialCategory::Religion,
                SpecialCategory::Biometric,
            ])],
            ..ticket(&subject, &person, &[SpecialCategory::Health])
        })
        .await
        .expect_err("no consent to biometric or religious data");
    assert_eq!(
        missing(&err),
        ["special_category_biometric", "special_category_religion"]
    );
    assert_eq!(stored(&mesh).await?, (1, 1));

    // A ticket that declares nothing needs nothing.
    identity
        .create_support_ticket(ticket(&subject, &person, &[]))
        .await?;
    assert_eq!(stored(&mesh).await?, (2, 1));

    // Withdrawn: refused again at once.
    mesh.consent()
        .withdraw_consent(WithdrawConsentRequest {
            subject_id: subject.clone(),
            purpose: "special_category_health".into(),
            source: Source::WebForm as i32,
            actor: "settings-page".into(),
        })
        .await?;
    let err = identity
        .create_support_ticket(ticket(&subject, &person, &[SpecialCategory::Health]))
        .await
        .expect_err("withdrawn");
    assert_eq!(missing(&err), ["special_category_health"]);
    assert_eq!(stored(&mesh).await?, (2, 1));

    mesh.logs().assert_clean(&person.secrets());
    assert!(!mesh.logs().contents().contains("eyesight"));
    Ok(())
}

#[tokio::test]
async fn we_always_ask_for_your_permission_bad_declarations_are_invalid_and_nothing_is_stored()
-> anyhow::Result<()> {
    let mesh = mesh().await?;
    let mut identity = mesh.identity();
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    let mut request = ticket(&subject, &person, &[]);
    request.special_categories = vec![SpecialCategory::Unspecified as i32];
    request.attachments = vec![
        pb::TicketAttachment {
            special_categories: vec![1, 1],
            ..attachment(&[])
        },
        pb::TicketAttachment {
            special_categories: vec![99],
            ..attachment(&[])
        },
    ];
    let err = identity
        .create_support_ticket(request)
        .await
        .expect_err("bad declarations");
    assert_eq!(
        field_violations(&err),
        [
            "special_categories",
            "attachments[0].special_categories",
            "attachments[1].special_categories"
        ]
    );
    assert_eq!(stored(&mesh).await?, (0, 0));
    Ok(())
}

#[tokio::test]
async fn we_always_ask_for_your_permission_and_without_an_answer_nothing_is_stored()
-> anyhow::Result<()> {
    // The consent service down: a ticket declaring a special category is UNAVAILABLE and
    // nothing is stored; one declaring none goes through.
    let mut mesh = mesh().await?;
    let person = Person::new();
    let subject = mesh.sign_up(&person).await?;
    grant(&mesh, &subject, "special_category_health").await?;
    mesh.stop("consent").await?;
    let mut identity = mesh.identity();
    let err = identity
        .create_support_ticket(ticket(&subject, &person, &[SpecialCategory::Health]))
        .await
        .expect_err("consent down");
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(stored(&mesh).await?, (0, 0));
    identity
        .create_support_ticket(ticket(&subject, &person, &[]))
        .await?;
    assert_eq!(stored(&mesh).await?, (1, 0));
    Ok(())
}
