//! ReportConcern, ListConcerns and CloseConcern: anyone files a privacy complaint or a
//! report that personal data may have been compromised; the privacy team sees them
//! soonest due first and records its answer (rules: [`crate::domain::concerns`]).

use pdm_crypto::DataKey;
use pdm_proto::rights::v1::{self as pb, ConcernKind, Regime};
use pdm_runtime::{
    FieldViolations, SubjectId,
    convert::timestamp,
    text::{TextRule, refuse_card_number},
};
use pdm_tls::identity::Caller;
use serde::{Deserialize, Serialize};

use super::RightsApi;
use crate::{
    domain::{children, concerns, refusal},
    error::{Result, RightsError},
    store::{ConcernStatus, KeyOf, entities::concern},
};

/// The sealed field of a concern's details.
const F_DETAILS: &str = "concerns.details";

/// What a concern carries about people: sealed with a key of its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Details {
    contact_email: String,
    description: String,
    outcome: Option<String>,
}

fn seal_concern(key: &DataKey, details: &Details) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(details)
        .map_err(|_| RightsError::Internal("concern details do not serialise"))?;
    Ok(key.seal(F_DETAILS, &json)?)
}

fn open_concern(key: &DataKey, row: &concern::Model) -> Result<Details> {
    let json = key.open(F_DETAILS, &row.details)?;
    serde_json::from_slice(&json).map_err(|_| RightsError::Internal("concern details do not parse"))
}

impl RightsApi {
    /// A concern's details; a concern forgotten at the end of its proof period has no key
    /// left and shows none.
    async fn concern_details(&self, row: &concern::Model) -> Result<Details> {
        match self.store.find_key(KeyOf::Concern(&row.concern_id)).await? {
            Some(key) => open_concern(&key, row),
            None => Ok(Details::default()),
        }
    }

    /// Files a concern; the answer never tells whether a named subject exists.
    pub(super) async fn report_concern(
        &self,
        r: pb::ReportConcernRequest,
        caller: Option<&Caller>,
    ) -> Result<pb::Concern> {
        let mut v = FieldViolations::new();
        let kind = match ConcernKind::try_from(r.kind) {
            Ok(ConcernKind::Unspecified) => {
                v.add("kind", "required: COMPLAINT or DATA_COMPROMISED");
                None
            }
            Ok(kind) => Some(kind),
            Err(_) => {
                v.add("kind", "unknown kind");
                None
            }
        };
        let contact = v.check("contact_email", children::email(&r.contact_email));
        if let Some(c) = &contact {
            v.check("contact_email", refuse_card_number(c));
        }
        let description = v.check(
            "description",
            TextRule::lines(concerns::MAX_DESCRIPTION).required(&r.description),
        );
        let subject = if r.subject_id.trim().is_empty() {
            None
        } else {
            v.check("subject_id", r.subject_id.trim().parse::<SubjectId>())
                .map(|s| s.to_string())
        };
        v.finish().map_err(RightsError::Invalid)?;
        let (Some(kind), Some(contact_email), Some(description)) = (kind, contact, description)
        else {
            return Err(RightsError::Internal("validated concern missing"));
        };
        let now = self.clock.now();
        let concern_id = uuid::Uuid::now_v7().to_string();
        let key = self.store.new_key(KeyOf::Concern(&concern_id), now).await?;
        let details = seal_concern(
            &key,
            &Details {
                contact_email,
                description,
                outcome: None,
            },
        )?;
        let row = concern::Model {
            concern_id: concern_id.clone(),
            kind: kind.as_str_name().to_owned(),
            status: ConcernStatus::Open,
            received_at: now,
            due_at: concerns::due(kind, now),
            closed_at: None,
            subject_id: subject,
            reported_by: caller.map(ToString::to_string),
            wrapped_key: Vec::new(),
            details,
            updated_at: now,
        };
        self.store.insert_concern(row.clone()).await?;
        tracing::info!(concern_id = %concern_id, kind = kind.as_str_name(), "privacy concern received");
        Ok(self.concern_pb(&row, None))
    }

    /// Concerns for the privacy team, opened.
    pub(super) async fn list_concerns(
        &self,
        r: pb::ListConcernsRequest,
        caller: Option<&Caller>,
    ) -> Result<Vec<pb::Concern>> {
        if !(0..=1000).contains(&r.page_size) {
            return Err(RightsError::Invalid(pdm_runtime::error::invalid_field(
                "page_size",
                "0 to 1000",
            )));
        }
        super::rights::privacy_team_only(caller, "ListConcerns")?;
        let limit = if r.page_size == 0 { 100 } else { r.page_size };
        let rows = self
            .store
            .concerns(r.open_only, u64::try_from(limit).unwrap_or(100))
            .await?;
        let mut concerns = Vec::with_capacity(rows.len());
        for row in &rows {
            concerns.push(self.concern_pb(row, Some(self.concern_details(row).await?)));
        }
        Ok(concerns)
    }

    /// Records the privacy team's answer.
    pub(super) async fn close_concern(
        &self,
        r: pb::CloseConcernRequest,
        caller: Option<&Caller>,
    ) -> Result<pb::Concern> {
        let mut v = FieldViolations::new();
        let id = match uuid::Uuid::parse_str(&r.concern_id) {
            Ok(id) => Some(id.hyphenated().to_string()),
            Err(_) => {
                v.add("concern_id", "required: the id ReportConcern returned");
                None
            }
        };
        let outcome = v.check(
            "outcome",
            TextRule::lines(concerns::MAX_OUTCOME).required(&r.outcome),
        );
        v.finish().map_err(RightsError::Invalid)?;
        super::rights::privacy_team_only(caller, "CloseConcern")?;
        let (Some(id), Some(outcome)) = (id, outcome) else {
            return Err(RightsError::Internal("validated answer missing"));
        };
        let row = self
            .store
            .concern(&id)
            .await?
            .ok_or(RightsError::NotFound)?;
        let key = self.store.key(KeyOf::Concern(&id)).await?;
        let mut details = open_concern(&key, &row)?;
        details.outcome = Some(outcome);
        let sealed = seal_concern(&key, &details)?;
        let now = self.clock.now();
        if !self.store.close_concern(&id, sealed, now).await? {
            return Err(RightsError::NotAllowed(
                "the concern was already answered".into(),
            ));
        }
        tracing::info!(concern_id = %id, "privacy concern answered");
        let row = self
            .store
            .concern(&id)
            .await?
            .ok_or(RightsError::NotFound)?;
        Ok(self.concern_pb(&row, Some(details)))
    }

    /// A concern as the API shows it; `opened` only for the privacy team.
    fn concern_pb(&self, row: &concern::Model, opened: Option<Details>) -> pb::Concern {
        let now = self.clock.now();
        let mut c = pb::Concern {
            concern_id: row.concern_id.clone(),
            kind: ConcernKind::from_str_name(&row.kind).unwrap_or_default() as i32,
            status: pb::ConcernStatus::from(row.status) as i32,
            received_at: Some(timestamp(row.received_at)),
            due_at: Some(timestamp(row.due_at)),
            closed_at: row.closed_at.map(timestamp),
            overdue: row.status == ConcernStatus::Open && now > row.due_at,
            right_to_complain: refusal::right_to_complain(Regime::Unspecified),
            ..Default::default()
        };
        if let Some(d) = opened {
            c.subject_id = row.subject_id.clone().unwrap_or_default();
            c.contact_email = d.contact_email;
            c.description = d.description;
            c.outcome = d.outcome.unwrap_or_default();
        }
        c
    }
}
