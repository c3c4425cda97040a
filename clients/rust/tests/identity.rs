//! The identity facade against a real identity service (with consent, which explicit
//! consent to special categories and the organisation's objection ask): an account's life
//! from sign-up to deletion in domain types, what other users see of it (photo, public
//! profile) and the organisation its email names, and bad input arriving as typed errors
//! with their field violations and unmet preconditions.

mod support;

use pdm_client::{
    PdmError,
    identity::{
        Attachment, BillingContact, Credential, DeletionReason, NewTicket, ProfileChanges, Region,
        SignUp, SpecialCategory,
    },
};
use pdm_consent::Consent;
use pdm_identity::Identity;
use pdm_testkit::{
    TestMesh,
    fake::{self, Person},
};
use support::{bad_fields, client};

fn sign_up(person: &Person) -> SignUp {
    SignUp {
        first_name: person.first_name.clone(),
        last_name: person.last_name.clone(),
        // Upper case on the way in: the account holds it normalised.
        email: person.email.to_uppercase(),
        phone: Some(person.phone.clone()),
        region: Region::Eea,
        birth_date: None,
        password: person.password.clone(),
    }
}

#[tokio::test]
async fn an_account_from_sign_up_to_deletion_and_bad_input_as_field_violations()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let identity = client(&mesh)?.identity()?;
    let person = Person::new();

    let account = identity.create_account(&sign_up(&person)).await?;
    assert_eq!(account.email, person.email);
    assert_eq!(account.phone.as_deref(), Some(person.phone.as_str()));
    assert_eq!(account.birth_date, None);
    assert_eq!(account.region, Region::Eea);
    assert!(account.created_at.is_some());
    let subject = account.subject_id.clone();
    assert_eq!(identity.get_account(&subject).await?, account);
    assert_eq!(identity.get_region(&subject).await?, Region::Eea);

    let changed = identity
        .update_profile(
            &subject,
            &ProfileChanges {
                birth_date: Some("1990-04-12".to_owned()),
                region: Some(Region::Uk),
                ..ProfileChanges::default()
            },
        )
        .await?;
    assert_eq!(changed.birth_date.as_deref(), Some("1990-04-12"));
    assert_eq!(identity.get_region(&subject).await?, Region::Uk);

    let session = identity
        .authenticate(&person.email, &person.password)
        .await?;
    assert_eq!(session.subject_id, subject);
    let owner = identity.validate_session(&session.token).await?;
    assert_eq!(owner.subject_id, subject);
    // The same expiry (PostgreSQL keeps microseconds, the sign-in answer had nanoseconds).
    let (stored, issued) = (owner.expires_at, session.expires_at);
    let gap = stored
        .zip(issued)
        .and_then(|(a, b)| a.duration_since(b).or_else(|_| b.duration_since(a)).ok());
    assert!(
        gap.is_some_and(|g| g.as_millis() < 1),
        "{stored:?} vs {issued:?}"
    );
    identity
        .verify_subject(&subject, &Credential::Password(person.password.clone()))
        .await?;
    identity
        .verify_subject(&subject, &Credential::SessionToken(session.token.clone()))
        .await?;
    assert_eq!(identity.link_subject(&session.token).await?, subject);
    let wrong = identity
        .verify_subject(&subject, &Credential::Password("not the password".into()))
        .await;
    assert!(
        matches!(wrong, Err(PdmError::PermissionDenied(_))),
        "{wrong:?}"
    );

    let contact = BillingContact {
        name: format!("{} {}", person.first_name, person.last_name),
        email: person.email.clone(),
        phone: None,
        payment_processor_ref: "cus_R2D2C3PO".to_owned(),
    };
    assert_eq!(
        identity.set_billing_contact(&subject, &contact).await?,
        contact
    );
    assert_eq!(identity.get_billing_contact(&subject).await?, contact);

    let ticket = NewTicket {
        subject_id: subject.clone(),
        contact: person.email.clone(),
        summary: "Export button does nothing".to_owned(),
        description: "I click it and\nnothing happens.".to_owned(),
        attachments: vec![Attachment::new("steps.txt", b"1. click export\n".to_vec())],
        special_categories: Vec::new(),
    };
    let opened = identity.create_support_ticket(&ticket).await?;
    assert_eq!(opened.summary, ticket.summary);
    assert_eq!(opened.attachments[0].content_type, "text/plain");
    // A ticket carrying health data needs the subject's explicit consent first.
    let refused = identity
        .create_support_ticket(&NewTicket {
            special_categories: vec![SpecialCategory::Health],
            ..ticket.clone()
        })
        .await;
    match refused {
        Err(PdmError::FailedPrecondition { preconditions, .. }) => {
            let unmet: Vec<(&str, &str)> = preconditions
                .iter()
                .map(|p| (p.kind.as_str(), p.subject.as_str()))
                .collect();
            assert_eq!(unmet, [("EXPLICIT_CONSENT", "special_category_health")]);
        }
        other => panic!("{other:?}"),
    }
    let tickets = identity.list_support_tickets(&subject).await?;
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    assert_eq!(tickets[0].ticket_id, opened.ticket_id);
    assert!(
        tickets[0].attachments[0].content.is_empty(),
        "listings omit contents"
    );

    let receipt = identity
        .delete_account(
            &subject,
            &person.password,
            DeletionReason::PrivacyConcerns,
            Some("close-account-1"),
        )
        .await?;
    assert_eq!(receipt.subject_id, subject);
    assert_eq!(receipt.request_id, "close-account-1");
    assert!(receipt.key_destroyed);
    // The same key again: the first receipt, nothing erased twice.
    let again = identity
        .delete_account(
            &subject,
            &person.password,
            DeletionReason::PrivacyConcerns,
            Some("close-account-1"),
        )
        .await?;
    assert_eq!(again.completed_at, receipt.completed_at);
    assert!(matches!(
        identity.get_account(&subject).await,
        Err(PdmError::NotFound(_))
    ));

    // Bad input: every bad field named, nothing stored.
    let fields = bad_fields(
        identity
            .create_account(&SignUp {
                email: "not an email".to_owned(),
                region: Region::Unspecified,
                password: "short".to_owned(),
                ..sign_up(&Person::new())
            })
            .await,
    );
    assert_eq!(fields, ["email", "password", "region"]);
    let fields = bad_fields(
        identity
            .set_billing_contact(
                "not-a-uuid",
                &BillingContact {
                    name: "Card 4111 1111 1111 1111".to_owned(),
                    ..contact
                },
            )
            .await,
    );
    assert_eq!(fields, ["billing_contact.name", "subject_id"]);
    Ok(())
}

#[tokio::test]
async fn the_photo_public_profile_and_organisation_in_domain_types_and_bad_input_named()
-> anyhow::Result<()> {
    let mesh = TestMesh::new().with(Identity).with(Consent).start().await?;
    let pdm = client(&mesh)?;
    let identity = pdm.identity()?;
    let person = Person::new();
    let local = person.email.split('@').next().unwrap_or("ada");
    let account = identity
        .create_account(&SignUp {
            email: format!("{local}@mail.acmewidgets.co.uk"),
            ..sign_up(&person)
        })
        .await?;
    let subject = account.subject_id;

    let initial = person.last_name.chars().next().unwrap_or('L');
    let public = identity.get_public_profile(&subject).await?;
    assert_eq!(public.subject_id, subject);
    assert_eq!(
        public.display_name,
        format!("{} {initial}.", person.first_name)
    );
    assert!(!public.has_photo);
    assert!(matches!(
        identity.get_profile_photo(&subject).await,
        Err(PdmError::NotFound(_))
    ));

    let png = fake::png();
    let stored = identity.set_profile_photo(&subject, &png).await?;
    assert_eq!(stored.content_type, "image/png");
    assert_eq!(stored.size_bytes, u64::try_from(png.len())?);
    let photo = identity.get_profile_photo(&subject).await?;
    assert_eq!(
        (photo.content_type.as_str(), &photo.bytes),
        ("image/png", &png)
    );
    assert!(identity.get_public_profile(&subject).await?.has_photo);

    assert_eq!(
        identity.get_organisation(&subject).await?.as_deref(),
        Some("acmewidgets.co.uk")
    );
    // An objection to the purpose, made through the consent facade, empties it at once.
    pdm.consent()?
        .record_objection(&subject, "organisation_insights", false, "privacy-settings")
        .await?;
    assert_eq!(identity.get_organisation(&subject).await?, None);

    // Bad input: every bad field named, nothing stored.
    assert_eq!(
        bad_fields(identity.set_profile_photo("not-a-uuid", b"GIF89a").await),
        ["photo", "subject_id"]
    );
    assert_eq!(
        bad_fields(identity.set_profile_photo(&subject, &png[1..]).await),
        ["photo"]
    );
    assert_eq!(identity.get_profile_photo(&subject).await?.bytes, png);
    assert_eq!(
        bad_fields(identity.get_profile_photo("42").await),
        ["subject_id"]
    );
    assert_eq!(
        bad_fields(identity.get_public_profile("not-a-uuid").await),
        ["subject_id"]
    );
    assert_eq!(
        bad_fields(identity.get_organisation("").await),
        ["subject_id"]
    );
    Ok(())
}

#[tokio::test]
async fn a_certificate_issued_for_another_client_is_refused_at_build() -> anyhow::Result<()> {
    // Only the test PKI is needed: a mesh of one service writes it.
    let mesh = TestMesh::new().with(Identity).start().await?;
    let err = pdm_client::PdmClient::builder()
        .endpoint("identity", "http://127.0.0.1:1")
        .client_certificates(mesh.certificate_dir(), pdm_testkit::TEST_CLIENT)
        .spiffe_id("spiffe://pdm.local/client/newsletter")
        .build()
        .err()
        .ok_or_else(|| anyhow::anyhow!("a certificate for another client accepted"))?;
    assert_eq!(
        err.problems,
        [format!(
            "PDM_SPIFFE_ID: the certificate is for spiffe://pdm.local/client/{}, not \
             spiffe://pdm.local/client/newsletter",
            pdm_testkit::TEST_CLIENT
        )]
    );
    Ok(())
}
