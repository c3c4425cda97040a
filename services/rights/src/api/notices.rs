//! SendNotice and ListNotices: a breach notice to each subject the incidents register
//! found affected by a high-risk breach (GDPR/UK GDPR Art. 34), queued in the outbox, once
//! per (incident, subject). Logs name the incident, the notice and the outcome; never the
//! subject's address, and never the texts.

use pdm_proto::rights::v1 as pb;
use pdm_runtime::{FieldViolations, SubjectId, convert::timestamp, dpo::Dpo, text::TextRule};

use super::{RightsApi, convert};
use crate::{
    domain::notice::{self, Outcome, Parts},
    error::{Result, RightsError},
    store::{KeyOf, MessageStatus, entities::notice as row},
};

/// Subjects per ListNotices call at most.
pub const MAX_SUBJECTS: usize = 500;

/// A SendNoticeRequest that passed every check.
struct Checked {
    incident_id: String,
    subject_id: String,
    what_happened: String,
    likely_consequences: String,
    measures_taken: String,
}

fn check_send(r: &pb::SendNoticeRequest) -> Result<Checked> {
    let mut v = FieldViolations::new();
    let incident = v.check("incident_id", r.incident_id.trim().parse::<uuid::Uuid>());
    let subject = v.check("subject_id", r.subject_id.trim().parse::<SubjectId>());
    let text = TextRule::lines(notice::MAX_TEXT);
    let what = v.check("what_happened", text.required(&r.what_happened));
    let consequences = v.check("likely_consequences", text.required(&r.likely_consequences));
    let measures = v.check("measures_taken", text.required(&r.measures_taken));
    v.finish().map_err(RightsError::Invalid)?;
    match (incident, subject, what, consequences, measures) {
        (
            Some(incident),
            Some(subject),
            Some(what_happened),
            Some(likely_consequences),
            Some(measures_taken),
        ) => Ok(Checked {
            incident_id: incident.to_string(),
            subject_id: subject.to_string(),
            what_happened,
            likely_consequences,
            measures_taken,
        }),
        _ => Err(RightsError::Internal("validated notice incomplete")),
    }
}

fn dpo_pb(raw: &str) -> pb::DpoContact {
    let dpo: Dpo = serde_json::from_str(raw).unwrap_or_default();
    pb::DpoContact {
        name: dpo.name,
        email: dpo.email,
        postal_address: dpo.postal_address,
    }
}

impl RightsApi {
    /// A notice as the caller sees it, with its message's delivery as it now stands.
    pub(super) async fn notices_pb(&self, rows: Vec<row::Model>) -> Result<Vec<pb::Notice>> {
        let ids: Vec<String> = rows.iter().filter_map(|n| n.message_id.clone()).collect();
        let messages = self.store.messages_by_id(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|n| {
                let message = n
                    .message_id
                    .as_ref()
                    .and_then(|id| messages.iter().find(|m| &m.message_id == id))
                    .cloned();
                let status = match (Outcome::parse(&n.outcome), &message) {
                    (Some(Outcome::NoAddress), _) => pb::NoticeStatus::NoAddress,
                    (Some(Outcome::Erased), _) => pb::NoticeStatus::Dropped,
                    (_, Some(m)) => match m.status {
                        MessageStatus::Pending => pb::NoticeStatus::Pending,
                        MessageStatus::Sent => pb::NoticeStatus::Sent,
                        MessageStatus::Failed => pb::NoticeStatus::Failed,
                        MessageStatus::Dropped => pb::NoticeStatus::Dropped,
                    },
                    _ => pb::NoticeStatus::Unspecified,
                };
                pb::Notice {
                    notice_id: n.notice_id,
                    incident_id: n.incident_id,
                    subject_id: n.subject_id,
                    what_happened: n.what_happened,
                    likely_consequences: n.likely_consequences,
                    measures_taken: n.measures_taken,
                    dpo: Some(dpo_pb(&n.dpo)),
                    created_at: Some(timestamp(n.created_at)),
                    status: status as i32,
                    delivery: message.map(convert::message),
                }
            })
            .collect())
    }

    async fn notice_pb(&self, row: row::Model) -> Result<pb::Notice> {
        self.notices_pb(vec![row])
            .await?
            .pop()
            .ok_or(RightsError::Internal("notice not converted"))
    }

    /// Stores and queues a notice unless the subject has one of the incident already.
    pub(super) async fn send_notice_to(
        &self,
        r: pb::SendNoticeRequest,
    ) -> Result<pb::SendNoticeResponse> {
        let c = check_send(&r)?;
        if let Some(existing) = self.store.notice_of(&c.incident_id, &c.subject_id).await? {
            return Ok(pb::SendNoticeResponse {
                notice: Some(self.notice_pb(existing).await?),
                created: false,
            });
        }
        let now = self.clock.now();
        let notice_id = uuid::Uuid::now_v7().to_string();
        let outcome_and_email = if self.store.subject_erased(&c.subject_id).await? {
            (Outcome::Erased, None)
        } else {
            match self.peers.account_email(&c.subject_id).await {
                Ok(Some(email)) => (Outcome::Queued, Some(email)),
                Ok(None) => (Outcome::NoAddress, None),
                Err(status) => {
                    tracing::warn!(incident_id = %c.incident_id, code = ?status.code(), "identity did not answer: notice not stored");
                    return Err(RightsError::Invalid(tonic::Status::unavailable(
                        "identity did not answer; send the notice again",
                    )));
                }
            }
        };
        let (outcome, email) = outcome_and_email;
        let dpo = self.dpo.as_ref();
        let message = match &email {
            Some(email) => {
                let body = notice::body(&Parts {
                    what_happened: &c.what_happened,
                    likely_consequences: &c.likely_consequences,
                    measures_taken: &c.measures_taken,
                    dpo,
                });
                Some(
                    self.outbox
                        .compose_notice(&notice_id, email, &body, now)
                        .await?,
                )
            }
            None => None,
        };
        let stored = row::Model {
            notice_id: notice_id.clone(),
            incident_id: c.incident_id.clone(),
            subject_id: c.subject_id.clone(),
            what_happened: c.what_happened,
            likely_consequences: c.likely_consequences,
            measures_taken: c.measures_taken,
            dpo: serde_json::to_string(dpo)
                .map_err(|_| RightsError::Internal("dpo not encoded"))?,
            outcome: outcome.as_str().to_owned(),
            message_id: message.as_ref().map(|m| m.message_id.clone()),
            created_at: now,
        };
        let message_id = stored.message_id.clone();
        if !self.store.insert_notice(stored, message).await? {
            // Another call stored the subject's notice first: ours goes, keys and all.
            self.store.destroy_key(KeyOf::Notice(&notice_id)).await?;
            if let Some(id) = &message_id {
                self.store.destroy_key(KeyOf::Message(id)).await?;
            }
            let existing = self
                .store
                .notice_of(&c.incident_id, &c.subject_id)
                .await?
                .ok_or(RightsError::Internal("notice conflicted but not found"))?;
            return Ok(pb::SendNoticeResponse {
                notice: Some(self.notice_pb(existing).await?),
                created: false,
            });
        }
        tracing::info!(incident_id = %c.incident_id, notice_id = %notice_id, outcome = outcome.as_str(), "breach notice stored");
        let stored = self
            .store
            .notice(&notice_id)
            .await?
            .ok_or(RightsError::Internal("notice not kept"))?;
        Ok(pb::SendNoticeResponse {
            notice: Some(self.notice_pb(stored).await?),
            created: true,
        })
    }

    /// The notices of an incident to some of its subjects.
    pub(super) async fn list_notices_of(
        &self,
        r: pb::ListNoticesRequest,
    ) -> Result<pb::ListNoticesResponse> {
        let mut v = FieldViolations::new();
        let incident = v.check("incident_id", r.incident_id.trim().parse::<uuid::Uuid>());
        let mut subjects = Vec::with_capacity(r.subject_ids.len());
        if r.subject_ids.is_empty() || r.subject_ids.len() > MAX_SUBJECTS {
            v.add("subject_ids", format!("1 to {MAX_SUBJECTS} subject ids"));
        }
        for (i, raw) in r.subject_ids.iter().enumerate() {
            match raw.trim().parse::<SubjectId>() {
                Ok(s) if subjects.contains(&s.to_string()) => {
                    v.add(format!("subject_ids[{i}]"), "a duplicate");
                }
                Ok(s) => subjects.push(s.to_string()),
                Err(e) => v.add(format!("subject_ids[{i}]"), e.to_string()),
            }
        }
        v.finish().map_err(RightsError::Invalid)?;
        let incident = incident.ok_or(RightsError::Internal("validated request incomplete"))?;
        let rows = self
            .store
            .notices_to(&incident.to_string(), &subjects)
            .await?;
        Ok(pb::ListNoticesResponse {
            notices: self.notices_pb(rows).await?,
        })
    }
}
