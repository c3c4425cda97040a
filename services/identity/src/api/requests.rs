//! Request validation: every field checked, every problem reported together as a field
//! violation, and the result a typed value the store can trust.

use chrono::NaiveDate;
use pdm_proto::{common::v1::Region, identity::v1 as pb};
use pdm_runtime::{
    FieldViolations, SubjectId,
    text::{TextError, TextRule, contains_card_number, refuse_card_number},
};

use crate::{
    domain::{age, content, email::Email, password, phone::parse_e164, special},
    error::IdentityError,
    store::{Billing, NewAttachment, NewTicket, ProfileChanges},
};

/// Longest name.
pub const MAX_NAME: usize = 100;
/// Longest billing name or processor reference.
pub const MAX_BILLING_TEXT: usize = 200;
/// Longest ticket summary or file name.
pub const MAX_SUMMARY: usize = 200;
/// Longest ticket description.
pub const MAX_DESCRIPTION: usize = 10_000;

// Free text goes through the mesh's one guard (`pdm_runtime::text`): trimmed, bounded,
// no control characters, no payment card number.

/// First and last names: one line.
const NAME: TextRule = TextRule::line(MAX_NAME);
/// The billing contact's name and the processor's reference: one line.
const BILLING_TEXT: TextRule = TextRule::line(MAX_BILLING_TEXT);
/// Ticket summaries and attachment file names: one line.
const SUMMARY: TextRule = TextRule::line(MAX_SUMMARY);
/// Ticket descriptions: line breaks and tabs allowed.
const DESCRIPTION: TextRule = TextRule::lines(MAX_DESCRIPTION);

type Checked<T> = Result<T, IdentityError>;

fn finish(v: FieldViolations) -> Checked<()> {
    v.finish().map_err(IdentityError::Invalid)
}

/// Parses a subject id field.
pub fn subject_id(raw: &str) -> Checked<SubjectId> {
    let mut v = FieldViolations::new();
    let id = v.check("subject_id", raw.parse::<SubjectId>());
    finish(v)?;
    id.ok_or(IdentityError::Internal("validated subject id missing"))
}

/// An email address that holds no card number: the address format lets digits through
/// ("4111111111111111@example.org"). The card is looked for first, so a card typed into
/// the field is named as one.
fn email(raw: &str) -> Result<Email, String> {
    refuse_card_number(raw).map_err(|e| e.to_string())?;
    Email::parse(raw).map_err(str::to_owned)
}

fn region(raw: i32) -> Result<Region, &'static str> {
    match Region::try_from(raw) {
        Ok(Region::Unspecified) => Err("required"),
        Ok(region) => Ok(region),
        Err(_) => Err("unknown region"),
    }
}

/// A validated sign-up form.
#[derive(Debug)]
pub struct SignUp {
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email.
    pub email: Email,
    /// Phone.
    pub phone: Option<String>,
    /// Region.
    pub region: Region,
    /// Birth date.
    pub birth_date: Option<NaiveDate>,
}

/// Validates CreateAccount; the password is checked but stays in the request. `today` is
/// the latest date on Earth (a birth date after it is in the future everywhere); the age
/// rule is the caller's, on the region's local date.
pub fn sign_up(r: &pb::CreateAccountRequest, today: NaiveDate) -> Checked<SignUp> {
    let mut v = FieldViolations::new();
    let first_name = v.check("first_name", NAME.required(&r.first_name));
    let last_name = v.check("last_name", NAME.required(&r.last_name));
    let email = v.check("email", email(&r.email));
    let phone = if r.phone.trim().is_empty() {
        Some(None)
    } else {
        v.check("phone", parse_e164(&r.phone)).map(Some)
    };
    let region = v.check("region", region(r.region));
    let birth_date = if r.birth_date.is_empty() {
        Some(None)
    } else {
        v.check("birth_date", age::parse_birth_date(&r.birth_date, today))
            .map(Some)
    };
    v.check("password", password::check_policy(&r.password));
    finish(v)?;
    match (first_name, last_name, email, phone, region, birth_date) {
        (
            Some(first_name),
            Some(last_name),
            Some(email),
            Some(phone),
            Some(region),
            Some(birth_date),
        ) => Ok(SignUp {
            first_name,
            last_name,
            email,
            phone,
            region,
            birth_date,
        }),
        _ => Err(IdentityError::Internal("validated sign-up incomplete")),
    }
}

/// Validates UpdateProfile. `today` is the latest date on Earth, as for [`sign_up`].
pub fn profile_changes(
    r: &pb::UpdateProfileRequest,
    today: NaiveDate,
) -> Checked<(SubjectId, ProfileChanges)> {
    let mut v = FieldViolations::new();
    let subject = v.check("subject_id", r.subject_id.parse::<SubjectId>());
    let mut changes = ProfileChanges::default();
    if let Some(first) = &r.first_name {
        changes.first_name = v.check("first_name", NAME.required(first));
    }
    if let Some(last) = &r.last_name {
        changes.last_name = v.check("last_name", NAME.required(last));
    }
    if let Some(raw) = &r.email {
        changes.email = v.check("email", email(raw));
    }
    if let Some(raw) = &r.phone {
        changes.phone = if raw.trim().is_empty() {
            Some(None)
        } else {
            v.check("phone", parse_e164(raw)).map(Some)
        };
    }
    if let Some(raw) = r.region {
        changes.region = v.check("region", region(raw));
    }
    if let Some(raw) = &r.birth_date {
        // Removing it would switch the under-18 rule off for the account: a birth date,
        // once given, can only be corrected (or erased with the account).
        changes.birth_date = if raw.is_empty() {
            v.add(
                "birth_date",
                "must be a date as YYYY-MM-DD; a birth date can be corrected, not removed",
            );
            None
        } else {
            v.check("birth_date", age::parse_birth_date(raw, today))
        };
    }
    finish(v)?;
    let subject = subject.ok_or(IdentityError::Internal("validated subject id missing"))?;
    Ok((subject, changes))
}

/// Validates sign-in input: a well-formed email and a non-empty, bounded password.
pub fn sign_in(r: &pb::AuthenticateRequest) -> Checked<Email> {
    let mut v = FieldViolations::new();
    let email = v.check("email", Email::parse(&r.email));
    check_password_present(&mut v, &r.password);
    finish(v)?;
    email.ok_or(IdentityError::Internal("validated email missing"))
}

/// A present password within the length bound (the policy is not re-checked at sign-in:
/// it may have changed since the password was set).
pub fn check_password_present(v: &mut FieldViolations, password: &str) {
    if password.is_empty() {
        v.add("password", "required");
    } else if password.chars().count() > password::MAX_CHARS {
        v.add("password", "at most 256 characters");
    }
}

/// Validates a billing contact.
pub fn billing(r: &pb::SetBillingContactRequest) -> Checked<(SubjectId, Billing)> {
    let mut v = FieldViolations::new();
    let subject = v.check("subject_id", r.subject_id.parse::<SubjectId>());
    let Some(contact) = &r.billing_contact else {
        v.add("billing_contact", "required");
        finish(v)?;
        return Err(IdentityError::Internal("unreachable"));
    };
    let name = v.check("billing_contact.name", BILLING_TEXT.required(&contact.name));
    let email = v.check("billing_contact.email", email(&contact.email));
    let phone = if contact.phone.trim().is_empty() {
        Some(None)
    } else {
        v.check("billing_contact.phone", parse_e164(&contact.phone))
            .map(Some)
    };
    let processor_ref = v.check(
        "billing_contact.payment_processor_ref",
        BILLING_TEXT.required(&contact.payment_processor_ref),
    );
    finish(v)?;
    match (subject, name, email, phone, processor_ref) {
        (Some(subject), Some(name), Some(email), Some(phone), Some(processor_ref)) => Ok((
            subject,
            Billing {
                name,
                email: email.as_str().to_owned(),
                phone,
                processor_ref,
            },
        )),
        _ => Err(IdentityError::Internal("validated billing incomplete")),
    }
}

/// Validates a support ticket and recognises its attachments by content.
pub fn ticket(r: pb::CreateSupportTicketRequest) -> Checked<(SubjectId, NewTicket)> {
    let mut v = FieldViolations::new();
    let subject = v.check("subject_id", r.subject_id.parse::<SubjectId>());
    let contact = v.check("contact", contact(&r.contact));
    let summary = v.check("summary", SUMMARY.required(&r.summary));
    let description = v.check("description", DESCRIPTION.required(&r.description));
    let special_categories = v.check(
        "special_categories",
        special::parse_declared(&r.special_categories),
    );
    if r.attachments.len() > content::MAX_ATTACHMENTS {
        v.add("attachments", "at most 3 attachments");
    }
    let mut attachments = Vec::new();
    for (i, a) in r
        .attachments
        .into_iter()
        .enumerate()
        .take(content::MAX_ATTACHMENTS)
    {
        let file_name = v.check(
            &format!("attachments[{i}].file_name"),
            SUMMARY.required(&a.file_name),
        );
        let content_type = v.check(
            &format!("attachments[{i}].content"),
            content::check_attachment(&a.content),
        );
        // Text attachments are text fields too: no card numbers in them.
        if content_type == Some("text/plain")
            && std::str::from_utf8(&a.content).is_ok_and(contains_card_number)
        {
            v.add(
                format!("attachments[{i}].content"),
                TextError::CardNumber.to_string(),
            );
        }
        let declared = v.check(
            &format!("attachments[{i}].special_categories"),
            special::parse_declared(&a.special_categories),
        );
        if let (Some(file_name), Some(content_type), Some(special_categories)) =
            (file_name, content_type, declared)
        {
            attachments.push(NewAttachment {
                file_name,
                content_type,
                content: a.content,
                special_categories,
            });
        }
    }
    finish(v)?;
    match (subject, contact, summary, description, special_categories) {
        (
            Some(subject),
            Some(contact),
            Some(summary),
            Some(description),
            Some(special_categories),
        ) => Ok((
            subject,
            NewTicket {
                contact,
                summary,
                description,
                attachments,
                special_categories,
            },
        )),
        _ => Err(IdentityError::Internal("validated ticket incomplete")),
    }
}

/// An E.164 phone number (taken as a phone number even when its digits pass the Luhn
/// check), or an email address holding no card number.
fn contact(raw: &str) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Err("required".into());
    }
    if let Ok(phone) = parse_e164(raw) {
        return Ok(phone);
    }
    refuse_card_number(raw).map_err(|e| e.to_string())?;
    Email::parse(raw)
        .map(|e| e.as_str().to_owned())
        .map_err(|_| "must be an email address or an E.164 phone number".into())
}

/// Validates DeleteAccount.
pub fn deletion(
    r: &pb::DeleteAccountRequest,
) -> Checked<(SubjectId, pb::DeletionReason, Option<String>)> {
    let mut v = FieldViolations::new();
    let subject = v.check("subject_id", r.subject_id.parse::<SubjectId>());
    check_password_present(&mut v, &r.password);
    let reason = match pb::DeletionReason::try_from(r.reason) {
        Ok(pb::DeletionReason::Unspecified) => {
            v.add("reason", "required");
            None
        }
        Ok(reason) => Some(reason),
        Err(_) => {
            v.add("reason", "unknown reason");
            None
        }
    };
    let request_id = if r.request_id.is_empty() {
        Some(None)
    } else {
        v.check(
            "request_id",
            pdm_runtime::ids::check_request_id(&r.request_id),
        )
        .map(|id| Some(id.to_owned()))
    };
    finish(v)?;
    match (subject, reason, request_id) {
        (Some(subject), Some(reason), Some(request_id)) => Ok((subject, reason, request_id)),
        _ => Err(IdentityError::Internal("validated deletion incomplete")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default()
    }

    fn fields(err: IdentityError) -> Vec<String> {
        use pdm_runtime::tonic_types::StatusExt;
        match err {
            IdentityError::Invalid(status) => status
                .get_details_bad_request()
                .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
                .unwrap_or_default(),
            other => vec![format!("not a violation: {other}")],
        }
    }

    #[test]
    fn every_bad_sign_up_field_is_reported() {
        let r = pb::CreateAccountRequest {
            first_name: String::new(),
            last_name: "x".repeat(101),
            email: "nope".into(),
            phone: "0770".into(),
            region: 0,
            birth_date: "yesterday".into(),
            password: "short".into(),
        };
        let err = sign_up(&r, today()).expect_err("all bad");
        assert_eq!(
            fields(err),
            [
                "first_name",
                "last_name",
                "email",
                "phone",
                "region",
                "birth_date",
                "password"
            ]
        );
    }

    #[test]
    fn a_birth_date_can_be_added_or_corrected_but_not_removed() {
        // Issue 15: the birth date can be given later (rectification), validated as at
        // sign-up; removing it would switch the under-18 rule off.
        let subject_id = uuid::Uuid::now_v7().to_string();
        let update = |birth: &str| pb::UpdateProfileRequest {
            subject_id: subject_id.clone(),
            birth_date: Some(birth.to_owned()),
            ..Default::default()
        };
        let (_, changes) = profile_changes(&update("1990-02-03"), today()).expect("valid date");
        assert_eq!(changes.birth_date, NaiveDate::from_ymd_opt(1990, 2, 3));
        for bad in ["", "1990-02-30", "2027-01-01", "03/02/1990"] {
            assert_eq!(
                fields(profile_changes(&update(bad), today()).expect_err(bad)),
                ["birth_date"],
                "{bad:?}"
            );
        }
        let (_, untouched) = profile_changes(
            &pb::UpdateProfileRequest {
                subject_id: subject_id.clone(),
                ..Default::default()
            },
            today(),
        )
        .expect("no change");
        assert_eq!(untouched.birth_date, None);
    }

    #[test]
    fn card_numbers_are_refused_in_names_and_emails() {
        let r = pb::CreateAccountRequest {
            first_name: "4111 1111 1111 1111".into(),
            last_name: "Lovelace".into(),
            email: "4111111111111111@example.org".into(),
            phone: String::new(),
            region: Region::Uk as i32,
            birth_date: String::new(),
            password: "correct horse battery".into(),
        };
        assert_eq!(
            fields(sign_up(&r, today()).expect_err("cards")),
            ["first_name", "email"]
        );
    }

    #[test]
    fn a_contact_is_a_phone_number_or_an_email_address_without_a_card_number() {
        assert_eq!(contact("+44 7700 900123").as_deref(), Ok("+447700900123"));
        // E.164 numbers stay phone numbers, even when their digits pass the Luhn check.
        assert_eq!(
            contact("+44 7700 900 0007").as_deref(),
            Ok("+4477009000007")
        );
        assert_eq!(
            contact(" Ada@Example.org ").as_deref(),
            Ok("ada@example.org")
        );
        for card in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "qty 2 4111-1111-1111-1111",
            "4111-1111-1111-1111@example.org",
        ] {
            assert_eq!(
                contact(card),
                Err("must not contain a payment card number".to_owned()),
                "{card}"
            );
        }
        assert!(contact("call me maybe").is_err());
    }

    #[test]
    fn unknown_enum_values_are_refused() {
        let r = pb::CreateAccountRequest {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            email: "ada@example.org".into(),
            phone: String::new(),
            region: 99,
            birth_date: String::new(),
            password: "correct horse battery".into(),
        };
        assert_eq!(
            fields(sign_up(&r, today()).expect_err("region")),
            ["region"]
        );
    }

    #[test]
    fn ticket_attachments_are_checked_one_by_one() {
        let r = pb::CreateSupportTicketRequest {
            subject_id: uuid::Uuid::now_v7().to_string(),
            contact: "+447700900123".into(),
            summary: "Export fails".into(),
            description: "It fails.".into(),
            attachments: vec![
                pb::TicketAttachment {
                    file_name: "log.txt".into(),
                    content: b"stack trace".to_vec(),
                    ..Default::default()
                },
                pb::TicketAttachment {
                    file_name: "app.exe".into(),
                    content: b"MZ\x90\0\x03\0\0\0\xff\xfe".to_vec(),
                    ..Default::default()
                },
            ],
            special_categories: Vec::new(),
        };
        assert_eq!(
            fields(ticket(r).expect_err("exe")),
            ["attachments[1].content"]
        );
    }
}
