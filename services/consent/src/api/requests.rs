//! Request validation: every field of a ConsentService request checked, every problem
//! reported together as a field violation, and the result a typed value the handlers
//! use as it is (they parse nothing themselves).

use chrono::{DateTime, Duration, Utc};
use pdm_crypto::BlindIndex;
use pdm_proto::consent::v1::{self as pb, Channel, LedgerEntryKind, MessageKind, Source};
use pdm_runtime::{FieldViolations, SubjectId, convert::from_timestamp, text::TextRule};

use crate::{
    domain::{
        catalogue::Catalogue,
        token::Token,
        unsubscribe::{self, MAX_TOKEN},
    },
    error::ConsentError,
};

/// Longest actor.
pub const MAX_ACTOR: usize = 128;
/// Longest policy version.
pub const MAX_POLICY_VERSION: usize = 32;
/// Most pairs in a batch check.
pub const MAX_BATCH: usize = 10_000;
/// Largest history page.
pub const MAX_PAGE: i32 = 1000;
/// How far in the future `occurred_at` may be (clock skew).
const SKEW: Duration = Duration::minutes(5);

/// Collects violations for one request.
#[derive(Debug, Default)]
struct Check {
    v: FieldViolations,
}

impl Check {
    /// A subject id.
    fn subject(&mut self, field: &str, raw: &str) -> Option<SubjectId> {
        self.v.check(field, raw.parse::<SubjectId>())
    }

    /// An optional consistency token (`at_least`).
    fn at_least(&mut self, raw: &str) -> Option<Option<Token>> {
        self.v.check("at_least", Token::parse(raw))
    }

    /// A purpose in the catalogue.
    fn purpose(&mut self, field: &str, raw: &str, catalogue: &Catalogue) -> Option<usize> {
        if raw.is_empty() {
            self.v.add(field, "required");
            return None;
        }
        let found = catalogue.find(raw);
        if found.is_none() {
            self.v.add(field, "unknown purpose (see ListPurposes)");
        }
        found
    }

    /// A purpose key that need not be in the catalogue (an unknown purpose is decided,
    /// not refused): its catalogue index, `None` when unknown.
    fn decided_purpose(
        &mut self,
        field: &str,
        raw: &str,
        catalogue: &Catalogue,
    ) -> Option<Option<usize>> {
        if raw.is_empty() {
            self.v.add(field, "required");
            return None;
        }
        Some(catalogue.find(raw))
    }

    /// A source.
    fn source(&mut self, raw: i32) -> Option<Source> {
        match Source::try_from(raw) {
            Ok(Source::Unspecified) => {
                self.v.add("source", "required");
                None
            }
            Ok(source) => Some(source),
            Err(_) => {
                self.v.add("source", "unknown source");
                None
            }
        }
    }

    /// A channel.
    fn channel(&mut self, raw: i32) -> Option<Channel> {
        match Channel::try_from(raw) {
            Ok(Channel::Unspecified) => {
                self.v.add("channel", "required");
                None
            }
            Ok(channel) => Some(channel),
            Err(_) => {
                self.v.add("channel", "unknown channel");
                None
            }
        }
    }

    /// A message kind.
    fn kind(&mut self, raw: i32) -> Option<MessageKind> {
        match MessageKind::try_from(raw) {
            Ok(MessageKind::Unspecified) => {
                self.v.add("kind", "required");
                None
            }
            Ok(kind) => Some(kind),
            Err(_) => {
                self.v.add("kind", "unknown message kind");
                None
            }
        }
    }

    /// One line of 1 to `max` characters, through the mesh's free-text guard (no card
    /// numbers).
    fn text(&mut self, field: &str, raw: &str, max: usize) -> Option<String> {
        self.v.check(field, TextRule::line(max).required(raw))
    }

    /// A SHA-256 in hex (64 characters), lower-cased.
    fn text_hash(&mut self, raw: &str) -> Option<String> {
        if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            Some(raw.to_ascii_lowercase())
        } else {
            self.v.add(
                "text_hash",
                "must be the SHA-256 of the consent text, 64 hex characters",
            );
            None
        }
    }

    /// When something happened: now when absent, never in the future.
    fn occurred_at(
        &mut self,
        raw: Option<&prost_types::Timestamp>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let Some(ts) = raw else {
            return Some(now);
        };
        match from_timestamp(ts) {
            Some(t) if t <= now + SKEW => Some(t),
            Some(_) => {
                self.v.add("occurred_at", "must not be in the future");
                None
            }
            None => {
                self.v.add("occurred_at", "not a valid time");
                None
            }
        }
    }

    /// A cursor into the ledger: a sequence number, 0 for the start.
    fn after_sequence(&mut self, raw: i64) -> Option<i64> {
        if raw < 0 {
            self.v.add("after_sequence", "must not be negative");
            return None;
        }
        Some(raw)
    }

    /// Records a violation.
    fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.v.add(field, description);
    }

    /// `Ok` when nothing was wrong.
    fn finish(self) -> Result<(), ConsentError> {
        self.v.finish().map_err(ConsentError::Invalid)
    }

    /// The validated value when nothing was wrong: `build` puts together the parts a
    /// clean check guarantees (it answering `None` would be a bug in this file).
    fn finish_with<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, ConsentError> {
        self.finish()?;
        build().ok_or(ConsentError::Internal("validated request incomplete"))
    }
}

/// Unwraps a value a successful check guarantees.
pub fn checked<T>(value: Option<T>) -> Result<T, ConsentError> {
    value.ok_or(ConsentError::Internal("validated field missing"))
}

// === Validated requests ===

/// A validated GrantConsent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Whose consent.
    pub subject: SubjectId,
    /// The purpose's index in the catalogue.
    pub purpose: usize,
    /// `EXPLICIT_GRANT` for a special-category purpose, else `GRANT`.
    pub kind: LedgerEntryKind,
    /// How it was given (never an import for a special category).
    pub source: Source,
    /// The privacy policy version shown.
    pub policy_version: String,
    /// The SHA-256 of the consent text shown, lower-case hex.
    pub text_hash: String,
    /// Who recorded it.
    pub actor: String,
    /// When it was given: now when the request named no time, never in the future.
    pub occurred_at: DateTime<Utc>,
}

/// A validated change about one purpose: WithdrawConsent or RecordObjection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeChange {
    /// Whose.
    pub subject: SubjectId,
    /// The purpose's index in the catalogue.
    pub purpose: usize,
    /// How it came.
    pub source: Source,
    /// Who recorded it.
    pub actor: String,
    /// For an objection, whether it is withdrawn (always false for WithdrawConsent).
    pub withdraw: bool,
}

/// A validated GetConsentHistory page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// Whose ledger.
    pub subject: SubjectId,
    /// Entries after this sequence number.
    pub after_sequence: i64,
    /// Most entries (100 when the request named no page size).
    pub limit: u64,
}

/// One validated processing check (CheckProcessing, or an item of a batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessingCheck {
    /// Whose data.
    pub subject: SubjectId,
    /// The purpose's index in the catalogue; `None` for a purpose it does not hold, which
    /// is decided (as unknown), not refused.
    pub purpose: Option<usize>,
}

/// A validated check (CheckProcessing, BatchCheckProcessing, CanContact) and the ledger
/// position its answer must reflect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtLeast<T> {
    /// What to decide.
    pub check: T,
    /// The consistency token given, if any.
    pub at_least: Option<Token>,
}

/// A validated CanContact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactCheck {
    /// Whom.
    pub subject: SubjectId,
    /// Through which channel.
    pub channel: Channel,
    /// With what kind of message.
    pub kind: MessageKind,
}

/// A validated SetContactPreference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactPreference {
    /// Whose preference.
    pub subject: SubjectId,
    /// The channel.
    pub channel: Channel,
    /// Opted out (else opted in).
    pub opted_out: bool,
    /// How it came.
    pub source: Source,
    /// Who recorded it.
    pub actor: String,
}

/// A validated on/off setting of a subject: SetDoNotSell or SetRestriction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Whose.
    pub subject: SubjectId,
    /// On (do not sell; restricted) or off.
    pub on: bool,
    /// How it came.
    pub source: Source,
    /// Who recorded it.
    pub actor: String,
}

/// A validated IssueUnsubscribeLink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRequest {
    /// Whom the message goes to.
    pub subject: SubjectId,
    /// A channel messages are sent through (never ads).
    pub channel: Channel,
}

// === impl parse ===

/// Validates GrantConsent; `now` is what an absent `occurred_at` means and what it may
/// not be ahead of.
pub fn parse_grant_consent(
    r: &pb::GrantConsentRequest,
    catalogue: &Catalogue,
    now: DateTime<Utc>,
) -> Result<Grant, ConsentError> {
    let mut c = Check::default();
    let subject = c.subject("subject_id", &r.subject_id);
    let purpose = c.purpose("purpose", &r.purpose, catalogue);
    let source = c.source(r.source);
    let policy_version = c.text("policy_version", &r.policy_version, MAX_POLICY_VERSION);
    let text_hash = c.text_hash(&r.text_hash);
    let actor = c.text("actor", &r.actor, MAX_ACTOR);
    let occurred_at = c.occurred_at(r.occurred_at.as_ref(), now);
    // Policy, "Consent to be obtained": sensitive details need the subject's explicit
    // permission (Art. 9(2)(a) GDPR), given to us and recorded as such.
    let special = purpose.is_some_and(|i| catalogue.get(i).special_category);
    if special && source == Some(Source::Import) {
        c.add(
            "source",
            "explicit consent to a special category must be given to us directly, not imported",
        );
    }
    let kind = if special {
        LedgerEntryKind::ExplicitGrant
    } else {
        LedgerEntryKind::Grant
    };
    c.finish_with(|| {
        Some(Grant {
            subject: subject?,
            purpose: purpose?,
            kind,
            source: source?,
            policy_version: policy_version?,
            text_hash: text_hash?,
            actor: actor?,
            occurred_at: occurred_at?,
        })
    })
}

/// The fields WithdrawConsent and RecordObjection share.
fn purpose_change(
    subject_id: &str,
    purpose: &str,
    source: i32,
    actor: &str,
    withdraw: bool,
    catalogue: &Catalogue,
) -> Result<PurposeChange, ConsentError> {
    let mut c = Check::default();
    let subject = c.subject("subject_id", subject_id);
    let purpose = c.purpose("purpose", purpose, catalogue);
    let source = c.source(source);
    let actor = c.text("actor", actor, MAX_ACTOR);
    c.finish_with(|| {
        Some(PurposeChange {
            subject: subject?,
            purpose: purpose?,
            source: source?,
            actor: actor?,
            withdraw,
        })
    })
}

/// Validates WithdrawConsent.
pub fn parse_withdraw_consent(
    r: &pb::WithdrawConsentRequest,
    catalogue: &Catalogue,
) -> Result<PurposeChange, ConsentError> {
    purpose_change(
        &r.subject_id,
        &r.purpose,
        r.source,
        &r.actor,
        false,
        catalogue,
    )
}

/// Validates RecordObjection.
pub fn parse_record_objection(
    r: &pb::RecordObjectionRequest,
    catalogue: &Catalogue,
) -> Result<PurposeChange, ConsentError> {
    purpose_change(
        &r.subject_id,
        &r.purpose,
        r.source,
        &r.actor,
        r.withdraw,
        catalogue,
    )
}

/// Validates GetConsents: the subject.
pub fn parse_get_consents(r: &pb::GetConsentsRequest) -> Result<SubjectId, ConsentError> {
    let mut c = Check::default();
    let subject = c.subject("subject_id", &r.subject_id);
    c.finish_with(|| subject)
}

/// Validates GetConsentHistory.
pub fn parse_get_consent_history(
    r: &pb::GetConsentHistoryRequest,
) -> Result<HistoryPage, ConsentError> {
    let mut c = Check::default();
    let subject = c.subject("subject_id", &r.subject_id);
    let after_sequence = c.after_sequence(r.after_sequence);
    let limit = match r.page_size {
        0 => Some(100),
        n if (1..=MAX_PAGE).contains(&n) => u64::try_from(n).ok(),
        _ => {
            c.add("page_size", "0 to 1000");
            None
        }
    };
    c.finish_with(|| {
        Some(HistoryPage {
            subject: subject?,
            after_sequence: after_sequence?,
            limit: limit?,
        })
    })
}

/// Validates CheckProcessing.
pub fn parse_check_processing(
    r: &pb::CheckProcessingRequest,
    catalogue: &Catalogue,
) -> Result<AtLeast<ProcessingCheck>, ConsentError> {
    let mut c = Check::default();
    let subject = c.subject("subject_id", &r.subject_id);
    let purpose = c.decided_purpose("purpose", &r.purpose, catalogue);
    let at_least = c.at_least(&r.at_least);
    c.finish_with(|| {
        Some(AtLeast {
            check: ProcessingCheck {
                subject: subject?,
                purpose: purpose?,
            },
            at_least: at_least?,
        })
    })
}

/// Validates BatchCheckProcessing: its items, in order.
pub fn parse_batch_check_processing(
    r: &pb::BatchCheckProcessingRequest,
    catalogue: &Catalogue,
) -> Result<AtLeast<Vec<ProcessingCheck>>, ConsentError> {
    if r.items.len() > MAX_BATCH {
        // Stop before looking at each of a huge number of items.
        let mut too_many = Check::default();
        too_many.add("items", "at most 10000 items");
        too_many.finish()?;
    }
    let mut c = Check::default();
    if r.items.is_empty() {
        c.add("items", "at least one item");
    }
    let mut items = Vec::with_capacity(r.items.len());
    for (i, item) in r.items.iter().enumerate() {
        let subject = c.subject(&format!("items[{i}].subject_id"), &item.subject_id);
        let purpose = c.decided_purpose(&format!("items[{i}].purpose"), &item.purpose, catalogue);
        if let (Some(subject), Some(purpose)) = (subject, purpose) {
            items.push(ProcessingCheck { subject, purpose });
        }
    }
    let at_least = c.at_least(&r.at_least);
    c.finish()?;
    Ok(AtLeast {
        check: items,
        at_least: at_least.flatten(),
    })
}

/// Validates CanContact.
pub fn parse_can_contact(r: &pb::CanContactRequest) -> Result<AtLeast<ContactCheck>, ConsentError> {
    let mut c = Check::default();
    let subject = c.subject("subject_id", &r.subject_id);
    let channel = c.channel(r.channel);
    let kind = c.kind(r.kind);
    let at_least = c.at_least(&r.at_least);
    c.finish_with(|| {
        Some(AtLeast {
            check: ContactCheck {
                subject: subject?,
                channel: channel?,
                kind: kind?,
            },
            at_least: at_least?,
        })
    })
}

/// Validates SetContactPreference.
pub fn parse_set_contact_preference(
    r: &pb::SetContactPreferenceRequest,
) -> Result<ContactPreference, ConsentError> {
    let mut c = Check::default();
    let subject = c.subject("subject_id", &r.subject_id);
    let channel = c.channel(r.channel);
    let source = c.source(r.source);
    let actor = c.text("actor", &r.actor, MAX_ACTOR);
    c.finish_with(|| {
        Some(ContactPreference {
            subject: subject?,
            channel: channel?,
            opted_out: r.opted_out,
            source: source?,
            actor: actor?,
        })
    })
}

/// The fields SetDoNotSell and SetRestriction share.
fn setting(subject_id: &str, on: bool, source: i32, actor: &str) -> Result<Setting, ConsentError> {
    let mut c = Check::default();
    let subject = c.subject("subject_id", subject_id);
    let source = c.source(source);
    let actor = c.text("actor", actor, MAX_ACTOR);
    c.finish_with(|| {
        Some(Setting {
            subject: subject?,
            on,
            source: source?,
            actor: actor?,
        })
    })
}

/// Validates SetDoNotSell (`on`: do not sell).
pub fn parse_set_do_not_sell(r: &pb::SetDoNotSellRequest) -> Result<Setting, ConsentError> {
    setting(&r.subject_id, r.do_not_sell, r.source, &r.actor)
}

/// Validates SetRestriction (`on`: restricted).
pub fn parse_set_restriction(r: &pb::SetRestrictionRequest) -> Result<Setting, ConsentError> {
    setting(&r.subject_id, r.restricted, r.source, &r.actor)
}

/// Validates IssueUnsubscribeLink.
pub fn parse_issue_unsubscribe_link(
    r: &pb::IssueUnsubscribeLinkRequest,
) -> Result<LinkRequest, ConsentError> {
    let mut c = Check::default();
    let subject = c.subject("subject_id", &r.subject_id);
    let channel = c.channel(r.channel);
    if channel == Some(Channel::Ads) {
        // Ads are not messages: there is nothing to put a link in.
        c.add("channel", "EMAIL, SMS or PUSH");
    }
    c.finish_with(|| {
        Some(LinkRequest {
            subject: subject?,
            channel: channel.filter(|ch| *ch != Channel::Ads)?,
        })
    })
}

/// Validates Unsubscribe: the id of the link its token carries, once the token's
/// signature shows this service issued it. A forged or altered token is refused before
/// anything is read.
pub fn parse_unsubscribe(
    r: &pb::UnsubscribeRequest,
    index: &BlindIndex,
) -> Result<String, ConsentError> {
    let mut c = Check::default();
    let id = if r.token.is_empty() {
        c.add("token", "required");
        None
    } else if r.token.len() > MAX_TOKEN {
        c.add("token", format!("at most {MAX_TOKEN} characters"));
        None
    } else {
        let id = unsubscribe::verify(index, &r.token);
        if id.is_none() {
            c.add("token", "not an unsubscribe link of this service");
        }
        id
    };
    c.finish_with(|| id)
}

/// Validates WatchConsentChanges: the cursor to start after.
pub fn parse_watch_consent_changes(
    r: &pb::WatchConsentChangesRequest,
) -> Result<i64, ConsentError> {
    let mut c = Check::default();
    let after = c.after_sequence(r.after_sequence);
    c.finish_with(|| after)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT_HASH: &str = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea";

    fn catalogue() -> Catalogue {
        Catalogue::new(&[]).expect("the seed catalogue")
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn fields(err: ConsentError) -> Vec<String> {
        use pdm_runtime::tonic_types::StatusExt;
        match err {
            ConsentError::Invalid(status) => status
                .get_details_bad_request()
                .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
                .unwrap_or_default(),
            other => vec![format!("not a violation: {other}")],
        }
    }

    fn grant(subject: &SubjectId) -> pb::GrantConsentRequest {
        pb::GrantConsentRequest {
            subject_id: subject.to_string(),
            purpose: "marketing_email".into(),
            source: Source::WebForm as i32,
            policy_version: " 2024-06-28 ".into(),
            text_hash: TEXT_HASH.to_uppercase(),
            actor: "web-signup".into(),
            occurred_at: None,
        }
    }

    #[test]
    fn a_good_grant_is_parsed_into_its_values() {
        let (catalogue, subject) = (catalogue(), SubjectId::new_v7());
        let parsed = parse_grant_consent(&grant(&subject), &catalogue, now()).expect("valid");
        assert_eq!(
            parsed,
            Grant {
                subject,
                purpose: catalogue.find("marketing_email").expect("seeded"),
                kind: LedgerEntryKind::Grant,
                source: Source::WebForm,
                policy_version: "2024-06-28".into(),
                text_hash: TEXT_HASH.into(),
                actor: "web-signup".into(),
                occurred_at: now(),
            }
        );
    }

    #[test]
    fn every_bad_grant_field_is_reported() {
        let r = pb::GrantConsentRequest {
            subject_id: "not-a-subject".into(),
            purpose: "astrology".into(),
            source: 99,
            policy_version: "v".repeat(33),
            text_hash: "xyz".into(),
            actor: String::new(),
            occurred_at: Some(pdm_runtime::convert::timestamp(now() + Duration::hours(1))),
        };
        let err = parse_grant_consent(&r, &catalogue(), now()).expect_err("all bad");
        assert_eq!(
            fields(err),
            [
                "subject_id",
                "purpose",
                "source",
                "policy_version",
                "text_hash",
                "actor",
                "occurred_at"
            ]
        );
    }

    #[test]
    fn explicit_consent_is_an_explicit_grant_and_never_imported() {
        let catalogue = catalogue();
        let special = catalogue
            .all()
            .iter()
            .find(|p| p.special_category)
            .expect("a special category purpose")
            .key
            .clone();
        let subject = SubjectId::new_v7();
        let r = pb::GrantConsentRequest {
            purpose: special,
            ..grant(&subject)
        };
        let parsed = parse_grant_consent(&r, &catalogue, now()).expect("valid");
        assert_eq!(parsed.kind, LedgerEntryKind::ExplicitGrant);
        let imported = pb::GrantConsentRequest {
            source: Source::Import as i32,
            ..r
        };
        let err = parse_grant_consent(&imported, &catalogue, now()).expect_err("import");
        assert_eq!(fields(err), ["source"]);
    }

    #[test]
    fn every_bad_objection_field_is_reported_and_a_good_one_parsed() {
        let catalogue = catalogue();
        let bad = pb::RecordObjectionRequest {
            subject_id: String::new(),
            purpose: String::new(),
            source: 0,
            actor: "a".repeat(MAX_ACTOR + 1),
            withdraw: false,
        };
        let err = parse_record_objection(&bad, &catalogue).expect_err("all bad");
        assert_eq!(fields(err), ["subject_id", "purpose", "source", "actor"]);
        let subject = SubjectId::new_v7();
        let good = pb::RecordObjectionRequest {
            subject_id: subject.to_string(),
            purpose: "product_research".into(),
            source: Source::PrivacyRequest as i32,
            actor: "privacy-team".into(),
            withdraw: true,
        };
        assert_eq!(
            parse_record_objection(&good, &catalogue).expect("valid"),
            PurposeChange {
                subject,
                purpose: catalogue.find("product_research").expect("seeded"),
                source: Source::PrivacyRequest,
                actor: "privacy-team".into(),
                withdraw: true,
            }
        );
    }

    #[test]
    fn history_pages_default_to_100_entries() {
        let subject = SubjectId::new_v7();
        let r = pb::GetConsentHistoryRequest {
            subject_id: subject.to_string(),
            after_sequence: 7,
            page_size: 0,
        };
        assert_eq!(
            parse_get_consent_history(&r).expect("valid"),
            HistoryPage {
                subject,
                after_sequence: 7,
                limit: 100,
            }
        );
        let bad = pb::GetConsentHistoryRequest {
            subject_id: "x".into(),
            after_sequence: -1,
            page_size: MAX_PAGE + 1,
        };
        assert_eq!(
            fields(parse_get_consent_history(&bad).expect_err("all bad")),
            ["subject_id", "after_sequence", "page_size"]
        );
    }

    #[test]
    fn a_batch_names_each_bad_item_and_keeps_unknown_purposes_for_the_decision() {
        let catalogue = catalogue();
        let subject = SubjectId::new_v7();
        let item = |subject_id: &str, purpose: &str| pb::CheckItem {
            subject_id: subject_id.into(),
            purpose: purpose.into(),
        };
        let good = pb::BatchCheckProcessingRequest {
            items: vec![
                item(&subject.to_string(), "marketing_email"),
                item(&subject.to_string(), "astrology"),
            ],
            ..Default::default()
        };
        assert_eq!(
            parse_batch_check_processing(&good, &catalogue)
                .expect("valid")
                .check,
            [
                ProcessingCheck {
                    subject,
                    purpose: catalogue.find("marketing_email"),
                },
                ProcessingCheck {
                    subject,
                    purpose: None,
                },
            ]
        );
        let bad = pb::BatchCheckProcessingRequest {
            items: vec![item("", "marketing_email"), item("nope", "")],
            ..Default::default()
        };
        assert_eq!(
            fields(parse_batch_check_processing(&bad, &catalogue).expect_err("bad")),
            [
                "items[0].subject_id",
                "items[1].subject_id",
                "items[1].purpose"
            ]
        );
        let empty = pb::BatchCheckProcessingRequest::default();
        assert_eq!(
            fields(parse_batch_check_processing(&empty, &catalogue).expect_err("empty")),
            ["items"]
        );
    }

    #[test]
    fn a_consistency_token_is_parsed_with_every_check_and_a_bad_one_named() {
        let catalogue = catalogue();
        let subject = SubjectId::new_v7();
        let check = |at_least: &str| pb::CheckProcessingRequest {
            subject_id: subject.to_string(),
            purpose: "marketing_email".into(),
            at_least: at_least.into(),
        };
        let parsed = parse_check_processing(&check("c1.42"), &catalogue).expect("valid");
        assert_eq!(parsed.at_least, Some(Token::at(42)));
        assert_eq!(parsed.check.subject, subject);
        let parsed = parse_check_processing(&check(""), &catalogue).expect("valid");
        assert_eq!(parsed.at_least, None);
        assert_eq!(
            fields(parse_check_processing(&check("42"), &catalogue).expect_err("bad")),
            ["at_least"]
        );
        let batch = pb::BatchCheckProcessingRequest {
            items: vec![pb::CheckItem {
                subject_id: subject.to_string(),
                purpose: "marketing_email".into(),
            }],
            at_least: "c1.7".into(),
        };
        let parsed = parse_batch_check_processing(&batch, &catalogue).expect("valid");
        assert_eq!(parsed.at_least, Some(Token::at(7)));
        let bad = pb::BatchCheckProcessingRequest {
            at_least: "c9.7".into(),
            ..batch
        };
        assert_eq!(
            fields(parse_batch_check_processing(&bad, &catalogue).expect_err("bad")),
            ["at_least"]
        );
    }

    #[test]
    fn contact_requests_report_every_bad_field() {
        let r = pb::CanContactRequest {
            subject_id: String::new(),
            channel: 0,
            kind: 99,
            at_least: "c1.x".into(),
        };
        assert_eq!(
            fields(parse_can_contact(&r).expect_err("all bad")),
            ["subject_id", "channel", "kind", "at_least"]
        );
        let r = pb::SetContactPreferenceRequest {
            subject_id: String::new(),
            channel: 99,
            opted_out: true,
            source: 0,
            actor: String::new(),
        };
        assert_eq!(
            fields(parse_set_contact_preference(&r).expect_err("all bad")),
            ["subject_id", "channel", "source", "actor"]
        );
        let subject = SubjectId::new_v7();
        let r = pb::SetContactPreferenceRequest {
            subject_id: subject.to_string(),
            channel: Channel::Sms as i32,
            opted_out: true,
            source: Source::Api as i32,
            actor: "crm".into(),
        };
        assert_eq!(
            parse_set_contact_preference(&r).expect("valid"),
            ContactPreference {
                subject,
                channel: Channel::Sms,
                opted_out: true,
                source: Source::Api,
                actor: "crm".into(),
            }
        );
    }

    #[test]
    fn settings_report_every_bad_field() {
        let r = pb::SetRestrictionRequest {
            subject_id: "x".into(),
            restricted: true,
            source: 42,
            actor: "a\tb".into(),
        };
        assert_eq!(
            fields(parse_set_restriction(&r).expect_err("all bad")),
            ["subject_id", "source", "actor"]
        );
        let subject = SubjectId::new_v7();
        let r = pb::SetDoNotSellRequest {
            subject_id: subject.to_string(),
            do_not_sell: true,
            source: Source::WebForm as i32,
            actor: "do-not-sell-link".into(),
        };
        assert_eq!(
            parse_set_do_not_sell(&r).expect("valid"),
            Setting {
                subject,
                on: true,
                source: Source::WebForm,
                actor: "do-not-sell-link".into(),
            }
        );
    }

    #[test]
    fn links_are_issued_for_messages_only() {
        let r = pb::IssueUnsubscribeLinkRequest {
            subject_id: String::new(),
            channel: Channel::Ads as i32,
        };
        assert_eq!(
            fields(parse_issue_unsubscribe_link(&r).expect_err("all bad")),
            ["subject_id", "channel"]
        );
    }
}
