//! Request validation: every field checked, every problem reported together.

use pdm_proto::{
    common::v1::Region,
    rights::v1::{self as pb, Regime, RequestKind, credential::Credential},
};
use pdm_runtime::{FieldViolations, SubjectId};

use crate::error::RightsError;

/// Longest notes or reason.
pub const MAX_TEXT: usize = 1000;
/// Most corrections in one request.
pub const MAX_RECTIFICATIONS: usize = 10;
/// Fields a rectification may correct (identity's profile).
pub const RECTIFIABLE: [&str; 5] = ["first_name", "last_name", "email", "phone", "region"];

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
    Some(inner)
}

fn text(v: &mut FieldViolations, field: &str, raw: &str, max: usize) -> Option<String> {
    if raw.trim().is_empty() {
        return None;
    }
    if raw.chars().count() > max || raw.chars().any(|c| c.is_control() && c != '\n') {
        v.add(field, format!("at most {max} printable characters"));
        return None;
    }
    Some(raw.trim().to_owned())
}

/// Validates SubmitRequest.
pub fn submission(r: &pb::SubmitRequestRequest) -> Result<Submission, RightsError> {
    let mut v = FieldViolations::new();
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
    let purpose = if kind == Some(RequestKind::Objection) {
        let ok = !r.purpose.is_empty()
            && r.purpose.len() <= 64
            && r.purpose
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            v.add(
                "purpose",
                "required for an objection: a purpose key (see consent ListPurposes)",
            );
        }
        Some(r.purpose.clone())
    } else {
        None
    };
    let mut rectifications = Vec::new();
    if kind == Some(RequestKind::Rectification) {
        if r.rectifications.is_empty() || r.rectifications.len() > MAX_RECTIFICATIONS {
            v.add("rectifications", "1 to 10 corrections");
        }
        for (i, c) in r.rectifications.iter().enumerate().take(MAX_RECTIFICATIONS) {
            if !RECTIFIABLE.contains(&c.field.as_str()) {
                v.add(
                    format!("rectifications[{i}].field"),
                    "one of first_name, last_name, email, phone, region",
                );
            }
            if c.value.chars().count() > 254 || c.value.chars().any(char::is_control) {
                v.add(
                    format!("rectifications[{i}].value"),
                    "at most 254 printable characters",
                );
            } else if c.field == "region"
                && Region::from_str_name(&c.value).is_none_or(|r| r == Region::Unspecified)
            {
                // Identity would never see it: the worker cannot map it to a region.
                v.add(
                    format!("rectifications[{i}].value"),
                    "a pdm.common.v1.Region name, e.g. REGION_UK",
                );
            }
            rectifications.push((c.field.clone(), c.value.clone()));
        }
    }
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
