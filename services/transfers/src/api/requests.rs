//! Request validation: every field checked, every problem reported together, and rows
//! ready to store.

use chrono::{DateTime, NaiveDate, Utc};
use pdm_proto::transfers::v1::{
    self as pb, MechanismKind, MechanismStatus, PartyRole, RecipientRole, Regime, TiaOutcome,
};
use pdm_runtime::{
    FieldViolations, SubjectId,
    convert::from_timestamp,
    text::{TextRule, refuse_card_number},
};

use crate::{
    domain::{
        country,
        mechanism::{default_regimes, has_module, is_derogation, needs_tia},
    },
    error::TransfersError,
    store::entities::{mechanism, recipient},
};

/// Longest name or reference.
pub const MAX_TEXT: usize = 200;
/// Most items in a list field.
pub const MAX_ITEMS: usize = 50;
/// Most parties, annex references or measures.
pub const MAX_SMALL_LIST: usize = 20;

/// Collects violations.
#[derive(Debug, Default)]
pub struct Check {
    v: FieldViolations,
}

/// What a key may hold.
const KEY_RULE: &str = "lowercase letters, digits, '_', '.', '-'; 1-64 characters";

fn is_key(item: &str) -> bool {
    !item.is_empty()
        && item.len() <= 64
        && item.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

fn json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

impl Check {
    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.v.add(field, description);
    }

    /// `Ok` when nothing was wrong.
    pub fn finish(self) -> Result<(), TransfersError> {
        self.v.finish().map_err(TransfersError::Invalid)
    }

    /// One line of 1 (or 0 when optional) to 200 characters, through the mesh's
    /// free-text guard (no card numbers).
    pub fn text(&mut self, field: &str, raw: &str, required: bool) -> Option<String> {
        let rule = TextRule::line(MAX_TEXT);
        self.v.check(
            field,
            if required {
                rule.required(raw)
            } else {
                rule.optional(raw)
            },
        )
    }

    /// The id of a recipient (a UUID this service gave); empty is `None` when optional.
    pub fn recipient_id(
        &mut self,
        field: &str,
        raw: &str,
        required: bool,
    ) -> Option<Option<String>> {
        if raw.is_empty() {
            if required {
                self.add(field, "required");
                return None;
            }
            return Some(None);
        }
        match uuid::Uuid::parse_str(raw) {
            Ok(id) if raw.len() == 36 => Some(Some(id.hyphenated().to_string())),
            _ => {
                self.add(field, "not a recipient id this service gave");
                None
            }
        }
    }

    /// A date as YYYY-MM-DD.
    pub fn date(&mut self, field: &str, raw: &str, required: bool) -> Option<String> {
        if raw.is_empty() && !required {
            return Some(String::new());
        }
        match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            Ok(_) if raw.len() == 10 => Some(raw.to_owned()),
            _ => {
                self.add(field, "must be a date as YYYY-MM-DD");
                None
            }
        }
    }

    /// A list of keys (`[a-z0-9_.-]`, 1-64 characters each).
    pub fn keys(&mut self, field: &str, raw: &[String], required: bool) -> Option<Vec<String>> {
        if raw.is_empty() && required {
            self.add(field, "at least one");
            return None;
        }
        if raw.len() > MAX_ITEMS {
            self.add(field, "at most 50");
            return None;
        }
        let mut out = Vec::with_capacity(raw.len());
        for (i, item) in raw.iter().enumerate() {
            if !is_key(item) {
                self.add(format!("{field}[{i}]"), KEY_RULE);
                return None;
            }
            if let Err(problem) = refuse_card_number(item) {
                self.add(format!("{field}[{i}]"), problem.to_string());
                return None;
            }
            if !out.contains(item) {
                out.push(item.clone());
            }
        }
        Some(out)
    }

    /// One required key (`[a-z0-9_.-]`, 1-64 characters), for a singular field.
    pub fn key(&mut self, field: &str, raw: &str) -> Option<String> {
        if raw.is_empty() {
            self.add(field, "required");
            return None;
        }
        if !is_key(raw) {
            self.add(field, KEY_RULE);
            return None;
        }
        self.v
            .check(field, refuse_card_number(raw))
            .map(|()| raw.to_owned())
    }

    /// A list of short texts.
    pub fn texts(&mut self, field: &str, raw: &[String]) -> Option<Vec<String>> {
        if raw.len() > MAX_SMALL_LIST {
            self.add(field, "at most 20");
            return None;
        }
        let mut out = Vec::with_capacity(raw.len());
        for (i, item) in raw.iter().enumerate() {
            out.push(self.text(&format!("{field}[{i}]"), item, true)?);
        }
        Some(out)
    }

    /// A country code.
    pub fn country(&mut self, field: &str, raw: &str) -> Option<String> {
        self.v.check(field, country::parse(raw))
    }

    /// A regime other than unspecified.
    pub fn regime(&mut self, field: &str, raw: i32) -> Option<Regime> {
        match Regime::try_from(raw) {
            Ok(Regime::Unspecified) => {
                self.add(field, "required");
                None
            }
            Ok(r) => Some(r),
            Err(_) => {
                self.add(field, "unknown regime");
                None
            }
        }
    }

    /// A subject id, optional.
    pub fn subject(&mut self, field: &str, raw: &str) -> Option<Option<String>> {
        if raw.is_empty() {
            return Some(None);
        }
        self.v
            .check(field, raw.parse::<SubjectId>())
            .map(|s| Some(s.to_string()))
    }

    /// A time.
    pub fn time(
        &mut self,
        field: &str,
        raw: Option<&prost_types::Timestamp>,
        required: bool,
    ) -> Option<Option<DateTime<Utc>>> {
        match raw {
            None if required => {
                self.add(field, "required");
                None
            }
            None => Some(None),
            Some(ts) => match from_timestamp(ts) {
                Some(t) => Some(Some(t)),
                None => {
                    self.add(field, "not a valid time");
                    None
                }
            },
        }
    }
}

/// Unwraps a value a successful [`Check::finish`] guarantees.
pub fn checked<T>(value: Option<T>) -> Result<T, TransfersError> {
    value.ok_or(TransfersError::Internal("validated field missing"))
}

/// Validates RegisterRecipient into a row (id and times filled by the caller).
pub fn recipient(
    r: &pb::RegisterRecipientRequest,
    now: DateTime<Utc>,
) -> Result<recipient::Model, TransfersError> {
    let mut c = Check::default();
    let Some(p) = &r.recipient else {
        c.add("recipient", "required");
        c.finish()?;
        return Err(TransfersError::Internal("unreachable"));
    };
    let key_ok = !p.key.is_empty()
        && p.key.len() <= 64
        && p.key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !key_ok {
        c.add(
            "recipient.key",
            "lowercase letters, digits and '-'; 1-64 characters",
        );
    } else {
        c.v.check("recipient.key", refuse_card_number(&p.key));
    }
    let name = c.text("recipient.name", &p.name, true);
    let role = match RecipientRole::try_from(p.role) {
        Ok(RecipientRole::Unspecified) => {
            c.add("recipient.role", "required");
            None
        }
        Ok(role) => Some(role),
        Err(_) => {
            c.add("recipient.role", "unknown role");
            None
        }
    };
    let country = c.country("recipient.country", &p.country);
    let purposes = c.keys("recipient.purposes", &p.purposes, true);
    let categories = c.keys("recipient.data_categories", &p.data_categories, true);
    // Art. 28 GDPR: processors work under a contract; others may have none (authorities).
    let needs_contract = matches!(
        role,
        Some(RecipientRole::Processor | RecipientRole::SubProcessor)
    );
    let reference = c.text(
        "recipient.contract_reference",
        &p.contract_reference,
        needs_contract,
    );
    let date = c.date(
        "recipient.contract_date",
        &p.contract_date,
        needs_contract || !p.contract_reference.trim().is_empty(),
    );
    let certifications = c.texts("recipient.certifications", &p.certifications);
    c.finish()?;
    Ok(recipient::Model {
        recipient_id: uuid::Uuid::now_v7().to_string(),
        key: p.key.clone(),
        name: checked(name)?,
        role: checked(role)?.as_str_name().to_owned(),
        country: checked(country)?,
        purposes: json(&checked(purposes)?),
        data_categories: json(&checked(categories)?),
        contract_reference: checked(reference)?,
        contract_date: checked(date)?,
        certifications: json(&checked(certifications)?),
        created_at: now,
        updated_at: now,
    })
}

/// Validates RecordMechanism into a row (the recipient's existence is checked by the
/// caller).
pub fn mechanism(
    r: &pb::RecordMechanismRequest,
    now: DateTime<Utc>,
) -> Result<mechanism::Model, TransfersError> {
    let mut c = Check::default();
    let Some(m) = &r.mechanism else {
        c.add("mechanism", "required");
        c.finish()?;
        return Err(TransfersError::Internal("unreachable"));
    };
    let recipient_id = c.recipient_id("mechanism.recipient_id", &m.recipient_id, true);
    let kind = match MechanismKind::try_from(m.kind) {
        Ok(MechanismKind::Unspecified) => {
            c.add("mechanism.kind", "required");
            None
        }
        Ok(kind) => Some(kind),
        Err(_) => {
            c.add("mechanism.kind", "unknown kind");
            None
        }
    };
    let mut regimes = Vec::new();
    for (i, raw) in m.regimes.iter().enumerate() {
        match c.regime(&format!("mechanism.regimes[{i}]"), *raw) {
            Some(Regime::Other) => c.add(
                format!("mechanism.regimes[{i}]"),
                "REGIME_OTHER needs no mechanism",
            ),
            Some(regime) if !regimes.contains(&regime) => regimes.push(regime),
            _ => {}
        }
    }
    if let Some(kind) = kind {
        if regimes.is_empty() {
            regimes = default_regimes(kind);
            if regimes.is_empty() {
                c.add(
                    "mechanism.regimes",
                    "required for binding corporate rules and derogations",
                );
            }
        }
        if has_module(kind) && !(1..=4).contains(&m.scc_module) {
            c.add("mechanism.scc_module", "1 to 4 (Decision 2021/914 modules)");
        }
        if !has_module(kind) && m.scc_module != 0 {
            c.add(
                "mechanism.scc_module",
                "only SCCs and the UK Addendum have modules",
            );
        }
        if is_derogation(kind) && !m.occasional {
            c.add(
                "mechanism.occasional",
                "derogations are for occasional transfers only: set occasional",
            );
        }
        if needs_tia(kind) && m.parties.len() < 2 {
            c.add(
                "mechanism.parties",
                "at least the two parties to the clauses",
            );
        }
    }
    let exporter_role = match PartyRole::try_from(m.exporter_role) {
        Ok(PartyRole::Unspecified) => Some(PartyRole::Controller),
        Ok(role) => Some(role),
        Err(_) => {
            c.add("mechanism.exporter_role", "unknown role");
            None
        }
    };
    let signed_on = c.date(
        "mechanism.signed_on",
        &m.signed_on,
        kind.is_some_and(needs_tia),
    );
    let parties = c.texts("mechanism.parties", &m.parties);
    let annexes = c.texts("mechanism.annex_references", &m.annex_references);
    let valid_from = c.time("mechanism.valid_from", m.valid_from.as_ref(), true);
    let expires_at = c.time("mechanism.expires_at", m.expires_at.as_ref(), false);
    let review_due = c.time("mechanism.review_due", m.review_due.as_ref(), false);
    if let (Some(Some(from)), Some(Some(until))) = (valid_from, expires_at)
        && until <= from
    {
        c.add("mechanism.expires_at", "must be after valid_from");
    }
    let status = match MechanismStatus::try_from(m.status) {
        Ok(MechanismStatus::Unspecified) => Some(MechanismStatus::Active),
        Ok(status) => Some(status),
        Err(_) => {
            c.add("mechanism.status", "unknown status");
            None
        }
    };
    let purposes = c.keys("mechanism.purposes", &m.purposes, false);
    let categories = c.keys("mechanism.data_categories", &m.data_categories, false);
    let (mut tia_reference, mut tia_date, mut tia_outcome, mut tia_measures) =
        (None, None, None, Some(Vec::new()));
    if let Some(tia) = &m.tia {
        tia_reference = c.text("mechanism.tia.reference", &tia.reference, true);
        tia_date = c.date("mechanism.tia.assessed_on", &tia.assessed_on, true);
        tia_outcome = match TiaOutcome::try_from(tia.outcome) {
            Ok(TiaOutcome::Unspecified) | Err(_) => {
                c.add("mechanism.tia.outcome", "required, a known outcome");
                None
            }
            Ok(outcome) => Some(outcome),
        };
        tia_measures = c.texts(
            "mechanism.tia.supplementary_measures",
            &tia.supplementary_measures,
        );
        if tia_outcome == Some(TiaOutcome::AdequateWithMeasures)
            && tia_measures.as_ref().is_some_and(Vec::is_empty)
        {
            c.add(
                "mechanism.tia.supplementary_measures",
                "list the measures the outcome relies on",
            );
        }
    }
    c.finish()?;
    let kind = checked(kind)?;
    let regime_names: Vec<String> = regimes.iter().map(|r| r.as_str_name().to_owned()).collect();
    Ok(mechanism::Model {
        mechanism_id: uuid::Uuid::now_v7().to_string(),
        recipient_id: checked(checked(recipient_id)?)?,
        kind: kind.as_str_name().to_owned(),
        regimes: json(&regime_names),
        scc_module: has_module(kind).then_some(m.scc_module),
        exporter_role: checked(exporter_role)?.as_str_name().to_owned(),
        signed_on: checked(signed_on)?,
        parties: json(&checked(parties)?),
        annex_references: json(&checked(annexes)?),
        valid_from: checked(checked(valid_from)?)?,
        expires_at: checked(expires_at)?,
        review_due: checked(review_due)?,
        status: checked(status)?.as_str_name().to_owned(),
        purposes: json(&checked(purposes)?),
        data_categories: json(&checked(categories)?),
        tia_reference: tia_reference.filter(|s| !s.is_empty()),
        tia_assessed_on: tia_date.filter(|s| !s.is_empty()),
        tia_outcome: tia_outcome.map(|o| o.as_str_name().to_owned()),
        tia_measures: json(&checked(tia_measures)?),
        occasional: is_derogation(kind),
        created_at: now,
    })
}
