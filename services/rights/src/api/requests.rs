//! Request validation: every field checked, every problem reported together.

use pdm_proto::{
    common::v1::Region,
    rights::v1::{self as pb, Regime, RequestKind, credential::Credential},
};
use pdm_runtime::{
    FieldViolations, SubjectId,
    text::{TextRule, refuse_card_number},
};

use crate::error::RightsError;

/// Longest notes or reason.
pub const MAX_TEXT: usize = 1000;
/// Most corrections in one request.
pub const MAX_RECTIFICATIONS: usize = 10;
/// Fields a rectification may correct (identity's profile).
pub const RECTIFIABLE: [&str; 6] = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "region",
    "birth_date",
];

/// A validated submission.
#[derive(Debug)]
pub struct Submission {
    /// Kind.
    pub kind: RequestKind,
    /// Regime.
    pub regime: Regime,
    /// Claimed subject.
    pub subject: Option<String>,
    /// Credential.
    pub credential: Option<Credential>,
    /// Purpose objected to.
    pub purpose: Option<String>,
    /// Corrections.
    pub rectifications: Vec<(String, String)>,
    /// Notes.
    pub notes: Option<String>,
    /// Idempotency key.
    pub client_reference: Option<String>,
    /// When the request was received (now, or when a letter or email arrived).
    pub received_at: chrono::DateTime<chrono::Utc>,
    /// The account-deletion reason (a `DeletionReason` name), for erasures.
    pub deletion_reason: Option<String>,
}

/// Who submits and when: what the receipt time is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Intake {
    /// Now.
    pub now: chrono::DateTime<chrono::Utc>,
    /// Whether the privacy team submits (only it may give a receipt time).
    pub by_privacy_team: bool,
}

fn kind(v: &mut FieldViolations, raw: i32) -> Option<RequestKind> {
    match RequestKind::try_from(raw) {
        Ok(RequestKind::Unspecified) => {
            v.add("kind", "required");
            None
        }
        Ok(k) => Some(k),
        Err(_) => {
            v.add("kind", "unknown kind");
            None
        }
    }
}

fn regime(v: &mut FieldViolations, raw: i32) -> Option<Regime> {
    match Regime::try_from(raw) {
        Ok(Regime::Unspecified) => {
            v.add("regime", "required");
            None
        }
        Ok(r) => Some(r),
        Err(_) => {
            v.add("regime", "unknown regime");
            None
        }
    }
}

/// Checks a credential: present variants must be non-empty and bounded.
pub fn credential(
    v: &mut FieldViolations,
    field: &str,
    c: Option<&pb::Credential>,
) -> Option<Credential> {
    let inner = c.and_then(|c| c.credential.clone())?;
    let (name, value) = match &inner {
        Credential::SessionToken(t) => ("session_token", t),
        Credential::Password(p) => ("password", p),
        Credential::OperatorReference(r) => ("operator_reference", r),
    };
    if value.is_empty() || value.chars().count() > 256 {
        v.add(
            format!("{field}.{name}"),
            "required, at most 256 characters",
        );
        return None;
    }
    // An operator's reference is kept as the proof of verification; passwords and
    // session tokens are checked by identity and never stored.
    if let Credential::OperatorReference(reference) = &inner
        && let Err(problem) = TextRule::line(256).required(reference)
    {
        v.add(format!("{field}.{name}"), problem.to_string());
        return None;
    }
    Some(inner)
}

/// A corrected value (a name, an email address, a phone number or a region name).
const CORRECTION: TextRule = TextRule::line(254);

/// Whether `raw` has the shape identity takes for a phone number: `+`, a non-zero digit,
/// then 7 to 14 more digits, with spaces, dots, hyphens and parentheses between them.
fn is_e164(raw: &str) -> bool {
    let Some(rest) = raw.trim().strip_prefix('+') else {
        return false;
    };
    let mut digits = 0;
    for c in rest.chars() {
        match c {
            '0'..='9' if digits == 0 && c == '0' => return false,
            '0'..='9' => digits += 1,
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return false,
        }
    }
    (8..=15).contains(&digits)
}

/// Optional text of several lines through the mesh's free-text guard (no card numbers);
/// `None` when empty or refused.
fn text(v: &mut FieldViolations, field: &str, raw: &str, max: usize) -> Option<String> {
    v.check(field, TextRule::lines(max).maybe(raw)).flatten()
}

/// Validates SubmitRequest.
pub fn submission(r: &pb::SubmitRequestRequest, at: Intake) -> Result<Submission, RightsError> {
    let mut v = FieldViolations::new();
    let claimed = match r
        .received_at
        .as_ref()
        .map(pdm_runtime::convert::from_timestamp)
    {
        None => Some(None),
        Some(Some(t)) => Some(Some(t)),
        Some(None) => {
            v.add("received_at", "not a valid time");
            None
        }
    };
    let received_at = claimed.and_then(|claimed| {
        match crate::domain::receipt::received(claimed, at.by_privacy_team, at.now) {
            Ok(t) => Some(t),
            Err(why) => {
                v.add("received_at", why);
                None
            }
        }
    });
    let kind = kind(&mut v, r.kind);
    let regime = regime(&mut v, r.regime);
    if let (Some(k), Some(g)) = (kind, regime) {
        let ccpa_kind = matches!(
            k,
            RequestKind::CcpaKnow | RequestKind::CcpaDelete | RequestKind::CcpaOptOut
        );
        if ccpa_kind && g != Regime::Ccpa {
            v.add("kind", "CCPA requests are made under REGIME_CCPA");
        }
    }
    let subject = if r.subject_id.is_empty() {
        None
    } else {
        v.check("subject_id", r.subject_id.parse::<SubjectId>())
            .map(|s| s.to_string())
    };
    let credential = credential(&mut v, "credential", r.credential.as_ref());
    match &credential {
        Some(Credential::Password(_) | Credential::OperatorReference(_))
            if r.subject_id.is_empty() =>
        {
            v.add(
                "subject_id",
                "required with a password or an operator reference",
            );
        }
        _ => {}
    }
    let objection = kind == Some(RequestKind::Objection);
    let purpose_ok = !r.purpose.is_empty()
        && r.purpose.len() <= 64
        && r.purpose
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if (objection || !r.purpose.is_empty()) && !purpose_ok {
        v.add(
            "purpose",
            "required for an objection: a purpose key (see consent ListPurposes)",
        );
    } else if purpose_ok {
        v.check("purpose", refuse_card_number(&r.purpose));
    }
    let purpose = objection.then(|| r.purpose.clone());
    // Corrections are checked whatever the kind (they are kept only for a rectification).
    let mut rectifications = Vec::new();
    let rectification = kind == Some(RequestKind::Rectification);
    if rectification && r.rectifications.is_empty() {
        v.add("rectifications", "1 to 10 corrections");
    }
    if r.rectifications.len() > MAX_RECTIFICATIONS {
        v.add("rectifications", "1 to 10 corrections");
    }
    for (i, c) in r.rectifications.iter().enumerate().take(MAX_RECTIFICATIONS) {
        if !RECTIFIABLE.contains(&c.field.as_str()) {
            v.add(
                format!("rectifications[{i}].field"),
                "one of first_name, last_name, email, phone, region, birth_date",
            );
        }
        let field = format!("rectifications[{i}].value");
        // Identity takes a 13- to 15-digit E.164 number for a phone number, whatever
        // Luhn says of it; anything else is text, and free of card numbers.
        let value = if c.field == "phone" && is_e164(&c.value) {
            Some(c.value.trim().to_owned())
        } else {
            v.check(&field, CORRECTION.optional(&c.value))
        };
        if c.field == "region"
            && value.is_some()
            && Region::from_str_name(&c.value).is_none_or(|r| r == Region::Unspecified)
        {
            // Identity would never see it: the worker cannot map it to a region.
            v.add(field.clone(), "a pdm.common.v1.Region name, e.g. REGION_UK");
        }
        if c.field == "birth_date"
            && value.is_some()
            && chrono::NaiveDate::parse_from_str(c.value.trim(), "%Y-%m-%d").is_err()
        {
            // Identity checks the age rule on it; the shape is checked here, up front.
            v.add(field, "a date, YYYY-MM-DD");
        }
        if rectification && let Some(value) = value {
            rectifications.push((c.field.clone(), value));
        }
    }
    let deletion_reason = if r.deletion_reason.is_empty() {
        None
    } else if !crate::domain::report::is_deletion_reason(&r.deletion_reason) {
        v.add(
            "deletion_reason",
            "a pdm.identity.v1.DeletionReason name, e.g. DELETION_REASON_PRIVACY_CONCERNS",
        );
        None
    } else if !matches!(
        kind,
        Some(RequestKind::Erasure | RequestKind::CcpaDelete) | None
    ) {
        v.add("deletion_reason", "only for ERASURE and CCPA_DELETE");
        None
    } else {
        Some(r.deletion_reason.clone())
    };
    let notes = text(&mut v, "notes", &r.notes, MAX_TEXT);
    let client_reference = if r.client_reference.is_empty() {
        None
    } else {
        v.check(
            "client_reference",
            pdm_runtime::ids::check_request_id(&r.client_reference),
        )
        .map(str::to_owned)
    };
    v.finish().map_err(RightsError::Invalid)?;
    Ok(Submission {
        kind: kind.ok_or(RightsError::Internal("validated kind missing"))?,
        regime: regime.ok_or(RightsError::Internal("validated regime missing"))?,
        subject,
        credential,
        purpose,
        rectifications,
        notes,
        client_reference,
        received_at: received_at.ok_or(RightsError::Internal("validated receipt missing"))?,
        deletion_reason,
    })
}

/// Checks a request id into `v`; the id in its canonical (hyphenated, lower-case) form.
pub fn check_request_id(v: &mut FieldViolations, raw: &str) -> Option<String> {
    match uuid::Uuid::parse_str(raw) {
        Ok(id) => Some(id.hyphenated().to_string()),
        Err(_) => {
            v.add("request_id", "required: the id SubmitRequest returned");
            None
        }
    }
}

/// Checks a request id.
pub fn request_id(raw: &str) -> Result<String, RightsError> {
    let mut v = FieldViolations::new();
    let id = check_request_id(&mut v, raw);
    v.finish().map_err(RightsError::Invalid)?;
    id.ok_or(RightsError::Internal("validated request id missing"))
}

/// Checks a reason (1 to 1,000 characters) into `v`.
pub fn check_reason(v: &mut FieldViolations, field: &str, raw: &str) -> Option<String> {
    let value = text(v, field, raw, MAX_TEXT);
    if value.is_none() && raw.trim().is_empty() {
        v.add(field, "required");
    }
    value
}

/// Checks a request id and a reason, reporting both.
pub fn request_id_and_reason(
    raw_id: &str,
    raw_reason: &str,
) -> Result<(String, String), RightsError> {
    let mut v = FieldViolations::new();
    let id = check_request_id(&mut v, raw_id);
    let reason = check_reason(&mut v, "reason", raw_reason);
    v.finish().map_err(RightsError::Invalid)?;
    id.zip(reason).ok_or(RightsError::Internal(
        "validated request id or reason missing",
    ))
}

/// Checks a request id and the reasons of a refusal (1 to 10, each one line of 1 to
/// 1,000 characters), reporting every problem.
pub fn request_id_and_reasons(
    raw_id: &str,
    raw_reasons: &[String],
) -> Result<(String, Vec<String>), RightsError> {
    use crate::domain::refusal::{MAX_REASON_CHARS, MAX_REASONS};
    let mut v = FieldViolations::new();
    let id = check_request_id(&mut v, raw_id);
    if raw_reasons.is_empty() || raw_reasons.len() > MAX_REASONS {
        v.add("reasons", "1 to 10 reasons: a refusal says why");
    }
    let rule = TextRule::line(MAX_REASON_CHARS);
    let reasons: Vec<String> = raw_reasons
        .iter()
        .take(MAX_REASONS)
        .enumerate()
        .filter_map(|(i, raw)| v.check(&format!("reasons[{i}]"), rule.required(raw)))
        .collect();
    v.finish().map_err(RightsError::Invalid)?;
    Ok((
        id.ok_or(RightsError::Internal("validated request id missing"))?,
        reasons,
    ))
}

/// Checks an opaque token field (a session or download token: URL-safe base64, as identity
/// and this service issue them); empty is allowed. Never stored: a well-formed token is
/// checked against its issuer.
pub fn check_token(v: &mut FieldViolations, field: &str, raw: &str) {
    let well_formed = (32..=256).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !raw.is_empty() && !well_formed {
        v.add(field, "not a token pdm issued");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rectify(field: &str, value: &str) -> pb::SubmitRequestRequest {
        pb::SubmitRequestRequest {
            kind: RequestKind::Rectification as i32,
            regime: Regime::Gdpr as i32,
            subject_id: uuid::Uuid::now_v7().to_string(),
            rectifications: vec![pb::Rectification {
                field: field.to_owned(),
                value: value.to_owned(),
            }],
            ..Default::default()
        }
    }

    fn submission_now(r: &pb::SubmitRequestRequest) -> Result<Submission, RightsError> {
        submission(
            r,
            Intake {
                now: chrono::Utc::now(),
                by_privacy_team: false,
            },
        )
    }

    #[test]
    fn phone_numbers_are_told_from_card_numbers_by_their_e164_shape() {
        // 4222 2222 2222 2 is a Luhn-valid 13-digit card number; with a `+` it is also a
        // phone number, and identity takes it for one.
        for phone in ["+4222222222222", "+44 7700 900123", "+1 (415) 555-0100", ""] {
            let s = submission_now(&rectify("phone", phone));
            assert!(s.is_ok(), "{phone:?}: {s:?}");
        }
        for card in [
            "4222222222222",
            "4111 1111 1111 1111",
            "+4111-1111-1111-1111",
        ] {
            assert!(submission_now(&rectify("phone", card)).is_err(), "{card:?}");
        }
        assert!(is_e164("+447700900123"));
        assert!(!is_e164("+0447700900123"));
        assert!(!is_e164("+1234567"));
        assert!(!is_e164("+1234567890123456"));
        assert!(!is_e164("+44 77OO 900123"));
    }

    #[test]
    fn corrections_are_trimmed_and_card_free() {
        let s = submission_now(&rectify("last_name", "  Lovelace ")).map(|s| s.rectifications);
        assert_eq!(
            s.ok(),
            Some(vec![("last_name".to_owned(), "Lovelace".to_owned())])
        );
        for field in ["first_name", "last_name", "email", "region"] {
            assert!(
                submission_now(&rectify(field, "qty 2 4111 1111 1111 1111")).is_err(),
                "{field}"
            );
        }
    }
}
