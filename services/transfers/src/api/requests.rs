//! Request validation: every field of a TransfersService request checked, every problem
//! reported together as a field violation, and the result a typed value (or a row ready
//! to store) the handlers use as it is.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use pdm_proto::transfers::v1::{
    self as pb, MechanismKind, MechanismStatus, PartyRole, RecipientRole, Regime, TiaOutcome,
};
use pdm_runtime::{
    FieldViolations, SubjectId,
    convert::from_timestamp,
    text::{KEY_RULE, TextRule, is_key, refuse_card_number},
};

use crate::{
    domain::{
        country, legal_order,
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
/// Largest page of the transfer log.
pub const MAX_PAGE: i32 = 1000;
/// Page size of the transfer log when none is asked for.
pub const DEFAULT_PAGE: u64 = 100;
/// How far ahead ListExpiringMechanisms may look, in days.
pub const MAX_WITHIN_DAYS: i32 = 3650;

/// Collects violations.
#[derive(Debug, Default)]
struct Check {
    v: FieldViolations,
}

fn json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

impl Check {
    /// Records a violation.
    fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.v.add(field, description);
    }

    /// `Ok` when nothing was wrong.
    fn finish(self) -> Result<(), TransfersError> {
        self.v.finish().map_err(TransfersError::Invalid)
    }

    /// The validated value when nothing was wrong: `build` puts together the parts a
    /// clean check guarantees (it answering `None` would be a bug in this file).
    fn finish_with<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, TransfersError> {
        self.finish()?;
        build().ok_or(TransfersError::Internal("validated request incomplete"))
    }

    /// A country code; empty is `None`.
    fn country_filter(&mut self, field: &str, raw: &str) -> Option<Option<String>> {
        if raw.is_empty() {
            return Some(None);
        }
        self.country(field, raw).map(Some)
    }

    /// One line of 1 (or 0 when optional) to 200 characters, through the mesh's
    /// free-text guard (no card numbers).
    fn text(&mut self, field: &str, raw: &str, required: bool) -> Option<String> {
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
    fn recipient_id(&mut self, field: &str, raw: &str, required: bool) -> Option<Option<String>> {
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
    fn date(&mut self, field: &str, raw: &str, required: bool) -> Option<String> {
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
    fn keys(&mut self, field: &str, raw: &[String], required: bool) -> Option<Vec<String>> {
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
    fn key(&mut self, field: &str, raw: &str) -> Option<String> {
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
    fn texts(&mut self, field: &str, raw: &[String]) -> Option<Vec<String>> {
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
    fn country(&mut self, field: &str, raw: &str) -> Option<String> {
        self.v.check(field, country::parse(raw))
    }

    /// A regime other than unspecified.
    fn regime(&mut self, field: &str, raw: i32) -> Option<Regime> {
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
    fn subject(&mut self, field: &str, raw: &str) -> Option<Option<SubjectId>> {
        if raw.is_empty() {
            return Some(None);
        }
        self.v.check(field, raw.parse::<SubjectId>()).map(Some)
    }

    /// A time.
    fn time(
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

/// Unwraps a value a successful check guarantees.
pub fn checked<T>(value: Option<T>) -> Result<T, TransfersError> {
    value.ok_or(TransfersError::Internal("validated field missing"))
}

// === Validated requests ===

/// A validated ListRecipients.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecipientFilter {
    /// Only the recipients this subject's data was disclosed to.
    pub subject: Option<SubjectId>,
    /// Only recipients in this country.
    pub country: Option<String>,
}

/// A legal order as validated (AuthorizeTransfer's `legal_order`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalOrder {
    /// The law the order rests on.
    pub legal_basis: String,
    /// The order's reference.
    pub order_reference: String,
    /// Who issued it, when named.
    pub issued_by: Option<String>,
    /// Until when the subject may not be told.
    pub secret_until: Option<DateTime<Utc>>,
}

/// A validated AuthorizeTransfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    /// The regime the transfer is judged under.
    pub regime: Regime,
    /// The recipient's id (a UUID this service gave, in hyphenated form).
    pub recipient_id: String,
    /// The data categories sent, without repeats.
    pub data_categories: Vec<String>,
    /// The purpose key.
    pub purpose: String,
    /// Whose data, when the transfer concerns one person.
    pub subject: Option<SubjectId>,
    /// The exporter's role (controller when unspecified).
    pub exporter_role: PartyRole,
    /// The caller's reference (may be empty).
    pub reference: String,
    /// The order behind a disclosure to a public authority; whether the recipient needs
    /// one is known once it is loaded ([`legal_order_for`]).
    pub legal_order: Option<LegalOrder>,
}

/// A validated ListTransferLog page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// Only this subject's transfers.
    pub subject: Option<SubjectId>,
    /// Only transfers to this recipient.
    pub recipient_id: Option<String>,
    /// Only transfers to this country.
    pub country: Option<String>,
    /// From (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// To (exclusive).
    pub to: Option<DateTime<Utc>>,
    /// Entries older than this log id (the page token).
    pub before: Option<String>,
    /// Most entries ([`DEFAULT_PAGE`] when the request named no page size).
    pub limit: u64,
}

// === impl parse ===

/// Validates RegisterRecipient into a row (id and times filled by the caller).
pub fn parse_register_recipient(
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
    c.finish_with(|| {
        Some(recipient::Model {
            recipient_id: uuid::Uuid::now_v7().to_string(),
            key: p.key.clone(),
            name: name?,
            role: role?.as_str_name().to_owned(),
            country: country?,
            purposes: json(&purposes?),
            data_categories: json(&categories?),
            contract_reference: reference?,
            contract_date: date?,
            certifications: json(&certifications?),
            created_at: now,
            updated_at: now,
        })
    })
}

/// Validates ListRecipients.
pub fn parse_list_recipients(
    r: &pb::ListRecipientsRequest,
) -> Result<RecipientFilter, TransfersError> {
    let mut c = Check::default();
    let subject = c.subject("subject_id", &r.subject_id);
    let country = c.country_filter("country", &r.country);
    c.finish_with(|| {
        Some(RecipientFilter {
            subject: subject?,
            country: country?,
        })
    })
}

/// Validates RecordMechanism into a row (the recipient's existence is checked by the
/// caller).
pub fn parse_record_mechanism(
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
    let exporter_role = exporter_role(&mut c, "mechanism.exporter_role", m.exporter_role);
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
    let regime_names: Vec<String> = regimes.iter().map(|r| r.as_str_name().to_owned()).collect();
    c.finish_with(|| {
        let kind = kind?;
        Some(mechanism::Model {
            mechanism_id: uuid::Uuid::now_v7().to_string(),
            recipient_id: recipient_id??,
            kind: kind.as_str_name().to_owned(),
            regimes: json(&regime_names),
            scc_module: has_module(kind).then_some(m.scc_module),
            exporter_role: exporter_role?.as_str_name().to_owned(),
            signed_on: signed_on?,
            parties: json(&parties?),
            annex_references: json(&annexes?),
            valid_from: valid_from??,
            expires_at: expires_at?,
            review_due: review_due?,
            status: status?.as_str_name().to_owned(),
            purposes: json(&purposes?),
            data_categories: json(&categories?),
            tia_reference: tia_reference.filter(|s| !s.is_empty()),
            tia_assessed_on: tia_date.filter(|s| !s.is_empty()),
            tia_outcome: tia_outcome.map(|o| o.as_str_name().to_owned()),
            tia_measures: json(&tia_measures?),
            occasional: is_derogation(kind),
            created_at: now,
        })
    })
}

/// Validates ListMechanisms: the recipient to list the mechanisms of, or all.
pub fn parse_list_mechanisms(
    r: &pb::ListMechanismsRequest,
) -> Result<Option<String>, TransfersError> {
    let mut c = Check::default();
    let recipient_id = c.recipient_id("recipient_id", &r.recipient_id, false);
    c.finish_with(|| recipient_id)
}

/// The exporter's role: controller when unspecified.
fn exporter_role(c: &mut Check, field: &str, raw: i32) -> Option<PartyRole> {
    match PartyRole::try_from(raw) {
        Ok(PartyRole::Unspecified) => Some(PartyRole::Controller),
        Ok(role) => Some(role),
        Err(_) => {
            c.add(field, "unknown role");
            None
        }
    }
}

/// Validates AuthorizeTransfer; `now` is what a legal order's secrecy is checked
/// against.
pub fn parse_authorize_transfer(
    r: &pb::AuthorizeTransferRequest,
    now: DateTime<Utc>,
) -> Result<TransferRequest, TransfersError> {
    let mut c = Check::default();
    let regime = c.regime("regime", r.regime);
    let recipient_id = c.recipient_id("recipient_id", &r.recipient_id, true);
    let categories = c.keys("data_categories", &r.data_categories, true);
    let purpose = c.key("purpose", &r.purpose);
    let subject = c.subject("subject_id", &r.subject_id);
    let exporter_role = exporter_role(&mut c, "exporter_role", r.exporter_role);
    let reference = c.text("reference", &r.reference, false);
    let order = r.legal_order.as_ref().map(|o| {
        let secret_until = c
            .time("legal_order.secret_until", o.secret_until.as_ref(), false)
            .flatten();
        if let Some(why) = secret_until.and_then(|t| legal_order::secrecy_refused(t, now)) {
            c.add("legal_order.secret_until", why);
        }
        (
            c.text("legal_order.legal_basis", &o.legal_basis, true),
            c.text("legal_order.order_reference", &o.order_reference, true),
            c.text("legal_order.issued_by", &o.issued_by, false),
            secret_until,
        )
    });
    c.finish_with(|| {
        let legal_order = match order {
            None => None,
            Some((legal_basis, order_reference, issued_by, secret_until)) => Some(LegalOrder {
                legal_basis: legal_basis?,
                order_reference: order_reference?,
                issued_by: Some(issued_by?).filter(|i| !i.is_empty()),
                secret_until,
            }),
        };
        Some(TransferRequest {
            regime: regime?,
            recipient_id: recipient_id??,
            data_categories: categories?,
            purpose: purpose?,
            subject: subject?,
            exporter_role: exporter_role?,
            reference: reference?,
            legal_order,
        })
    })
}

/// A disclosure to a public authority names its order (its parts were checked with the
/// rest of the request); nothing else may carry one. `role` is the recipient's.
pub fn legal_order_for(
    role: RecipientRole,
    order: Option<LegalOrder>,
) -> Result<Option<LegalOrder>, TransfersError> {
    let mut c = Check::default();
    let needed = legal_order::required(role);
    let order = match order {
        None if needed => {
            for field in ["legal_order.legal_basis", "legal_order.order_reference"] {
                c.add(field, "required for a disclosure to a public authority");
            }
            None
        }
        Some(_) if !needed => {
            c.add("legal_order", "only for a disclosure to a public authority");
            None
        }
        order => order,
    };
    c.finish()?;
    Ok(order)
}

/// Validates ListTransferLog.
pub fn parse_list_transfer_log(r: &pb::ListTransferLogRequest) -> Result<LogQuery, TransfersError> {
    let mut c = Check::default();
    let subject = c.subject("subject_id", &r.subject_id);
    let recipient_id = c.recipient_id("recipient_id", &r.recipient_id, false);
    let country = c.country_filter("country", &r.country);
    let from = c.time("from", r.from.as_ref(), false);
    let to = c.time("to", r.to.as_ref(), false);
    let limit = match r.page_size {
        0 => Some(DEFAULT_PAGE),
        n if (1..=MAX_PAGE).contains(&n) => u64::try_from(n).ok(),
        _ => {
            c.add("page_size", "0 to 1000");
            None
        }
    };
    let before = if r.page_token.is_empty() {
        Some(None)
    } else if uuid::Uuid::parse_str(&r.page_token).is_ok() {
        Some(Some(r.page_token.clone()))
    } else {
        c.add("page_token", "not a token from a previous page");
        None
    };
    c.finish_with(|| {
        Some(LogQuery {
            subject: subject?,
            recipient_id: recipient_id?,
            country: country?,
            from: from?,
            to: to?,
            before: before?,
            limit: limit?,
        })
    })
}

/// Validates ListExpiringMechanisms: how far ahead to look.
pub fn parse_list_expiring_mechanisms(
    r: &pb::ListExpiringMechanismsRequest,
) -> Result<Duration, TransfersError> {
    let mut c = Check::default();
    let within = if (0..=MAX_WITHIN_DAYS).contains(&r.within_days) {
        Some(Duration::days(i64::from(r.within_days)))
    } else {
        c.add("within_days", "0 to 3650");
        None
    };
    c.finish_with(|| within)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn fields(err: TransfersError) -> Vec<String> {
        use pdm_runtime::tonic_types::StatusExt;
        match err {
            TransfersError::Invalid(status) => status
                .get_details_bad_request()
                .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
                .unwrap_or_default(),
            other => vec![format!("not a violation: {other}")],
        }
    }

    #[test]
    fn every_bad_recipient_field_is_reported() {
        let r = pb::RegisterRecipientRequest {
            recipient: Some(pb::Recipient {
                key: "Not A Key".into(),
                name: String::new(),
                role: 0,
                country: "XX".into(),
                purposes: Vec::new(),
                data_categories: vec!["Bad Key".into()],
                contract_reference: String::new(),
                contract_date: "03/12/2026".into(),
                certifications: vec![String::new()],
                ..Default::default()
            }),
        };
        assert_eq!(
            fields(parse_register_recipient(&r, now()).expect_err("all bad")),
            [
                "recipient.key",
                "recipient.name",
                "recipient.role",
                "recipient.country",
                "recipient.purposes",
                "recipient.data_categories[0]",
                "recipient.contract_date",
                "recipient.certifications[0]"
            ]
        );
    }

    fn transfer() -> pb::AuthorizeTransferRequest {
        pb::AuthorizeTransferRequest {
            regime: Regime::Eu as i32,
            recipient_id: uuid::Uuid::now_v7().to_string(),
            data_categories: vec!["account.profile".into(), "account.profile".into()],
            purpose: "support".into(),
            subject_id: String::new(),
            exporter_role: 0,
            reference: " ticket 7 ".into(),
            legal_order: None,
        }
    }

    #[test]
    fn a_good_transfer_is_parsed_into_its_values() {
        let subject = SubjectId::new_v7();
        let r = pb::AuthorizeTransferRequest {
            subject_id: subject.to_string(),
            legal_order: Some(pb::LegalOrder {
                legal_basis: "Investigatory Powers Act 2016".into(),
                order_reference: "IPA-1".into(),
                issued_by: String::new(),
                secret_until: Some(pdm_runtime::convert::timestamp(now() + Duration::days(30))),
            }),
            ..transfer()
        };
        let parsed = parse_authorize_transfer(&r, now()).expect("valid");
        assert_eq!(
            parsed,
            TransferRequest {
                regime: Regime::Eu,
                recipient_id: r.recipient_id.clone(),
                data_categories: vec!["account.profile".into()],
                purpose: "support".into(),
                subject: Some(subject),
                exporter_role: PartyRole::Controller,
                reference: "ticket 7".into(),
                legal_order: Some(LegalOrder {
                    legal_basis: "Investigatory Powers Act 2016".into(),
                    order_reference: "IPA-1".into(),
                    issued_by: None,
                    secret_until: Some(now() + Duration::days(30)),
                }),
            }
        );
    }

    #[test]
    fn every_bad_transfer_field_is_reported() {
        let r = pb::AuthorizeTransferRequest {
            regime: 0,
            recipient_id: "r-1".into(),
            data_categories: Vec::new(),
            purpose: "Support!".into(),
            subject_id: "nope".into(),
            exporter_role: 99,
            reference: "a\nb".into(),
            legal_order: Some(pb::LegalOrder {
                legal_basis: String::new(),
                order_reference: String::new(),
                issued_by: String::new(),
                secret_until: Some(pdm_runtime::convert::timestamp(now() - Duration::days(1))),
            }),
        };
        assert_eq!(
            fields(parse_authorize_transfer(&r, now()).expect_err("all bad")),
            [
                "regime",
                "recipient_id",
                "data_categories",
                "purpose",
                "subject_id",
                "exporter_role",
                "reference",
                "legal_order.secret_until",
                "legal_order.legal_basis",
                "legal_order.order_reference"
            ]
        );
    }

    #[test]
    fn only_authorities_get_a_legal_order_and_they_need_one() {
        let order = LegalOrder {
            legal_basis: "court order".into(),
            order_reference: "1".into(),
            issued_by: None,
            secret_until: None,
        };
        assert_eq!(
            fields(legal_order_for(RecipientRole::PublicAuthority, None).expect_err("missing")),
            ["legal_order.legal_basis", "legal_order.order_reference"]
        );
        assert_eq!(
            fields(
                legal_order_for(RecipientRole::Processor, Some(order.clone())).expect_err("extra")
            ),
            ["legal_order"]
        );
        assert_eq!(
            legal_order_for(RecipientRole::PublicAuthority, Some(order.clone())).ok(),
            Some(Some(order))
        );
        assert_eq!(
            legal_order_for(RecipientRole::Processor, None).ok(),
            Some(None)
        );
    }

    #[test]
    fn every_bad_log_filter_is_reported_and_a_good_one_parsed() {
        let bad = pb::ListTransferLogRequest {
            recipient_id: "r".into(),
            country: "Narnia".into(),
            subject_id: "s".into(),
            from: Some(prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            }),
            to: None,
            page_size: -1,
            page_token: "next".into(),
        };
        assert_eq!(
            fields(parse_list_transfer_log(&bad).expect_err("all bad")),
            [
                "subject_id",
                "recipient_id",
                "country",
                "from",
                "page_size",
                "page_token"
            ]
        );
        let subject = SubjectId::new_v7();
        let good = pb::ListTransferLogRequest {
            subject_id: subject.to_string(),
            country: "us".into(),
            ..Default::default()
        };
        assert_eq!(
            parse_list_transfer_log(&good).expect("valid"),
            LogQuery {
                subject: Some(subject),
                recipient_id: None,
                country: Some("US".into()),
                from: None,
                to: None,
                before: None,
                limit: DEFAULT_PAGE,
            }
        );
    }
}
