//! NotifyPeople: each affected subject of a high-risk incident told once through the
//! rights service (`SendNotice`), in id order, a page per call. Synchronous by design: a
//! call tells at most `max_subjects` and says how many remain, so the operator (the
//! `pdm incidents notify-people` loop) sees progress and one trace spans each call. Each
//! subject is recorded as told right after rights answers; a run cut short between the
//! two is resumed by the next call, and rights answers the notice it already stored
//! instead of sending another (one per incident and subject). Logs say counts, never ids
//! of subjects or texts.

use pdm_proto::{incidents::v1 as pb, rights::v1 as rights_pb};

use super::{IncidentsApi, requests};
use crate::{
    domain::notice::{self, Status},
    error::{IncidentsError, Result},
    store::entities::people_notice,
};

/// The recorded status of a notice as rights reports it.
pub(super) fn status_of(n: &rights_pb::Notice) -> Option<Status> {
    match n.status() {
        rights_pb::NoticeStatus::Pending => Some(Status::Pending),
        rights_pb::NoticeStatus::Sent => Some(Status::Sent),
        rights_pb::NoticeStatus::Failed => Some(Status::Failed),
        rights_pb::NoticeStatus::Dropped => Some(Status::Dropped),
        rights_pb::NoticeStatus::NoAddress => Some(Status::NoAddress),
        rights_pb::NoticeStatus::Unspecified => None,
    }
}

/// The protobuf form of a recorded status.
pub(super) fn status_pb(status: Option<Status>) -> pb::NoticeStatus {
    match status {
        None => pb::NoticeStatus::Unspecified,
        Some(Status::Pending) => pb::NoticeStatus::Pending,
        Some(Status::Sent) => pb::NoticeStatus::Sent,
        Some(Status::Failed) => pb::NoticeStatus::Failed,
        Some(Status::Dropped) => pb::NoticeStatus::Dropped,
        Some(Status::NoAddress) => pb::NoticeStatus::NoAddress,
    }
}

/// A NotifyPeopleRequest that passed every check.
struct Checked {
    incident_id: String,
    what_happened: String,
    actor: String,
    batch: u64,
}

fn check(req: &pb::NotifyPeopleRequest) -> Result<Checked> {
    let mut check = requests::Check::default();
    let id = check.incident_id("incident_id", &req.incident_id);
    let what =
        match pdm_runtime::text::TextRule::lines(notice::MAX_TEXT).optional(&req.what_happened) {
            Ok(text) => Some(text),
            Err(e) => {
                check.add("what_happened", e.to_string());
                None
            }
        };
    let actor = check.actor(&req.actor);
    if !(0..=notice::MAX_BATCH).contains(&req.max_subjects) {
        check.add("max_subjects", format!("from 0 to {}", notice::MAX_BATCH));
    }
    check.finish()?;
    let batch = match u64::try_from(req.max_subjects) {
        Ok(0) | Err(_) => notice::DEFAULT_BATCH,
        Ok(n) => n,
    };
    match (id, what, actor) {
        (Some(incident_id), Some(what_happened), Some(actor)) => Ok(Checked {
            incident_id,
            what_happened,
            actor,
            batch,
        }),
        _ => Err(IncidentsError::Internal("validated request incomplete")),
    }
}

/// Rights did not answer: the run stops, what was told stays recorded.
fn unavailable(status: &tonic::Status, told: u64) -> IncidentsError {
    tracing::warn!(code = ?status.code(), told, "rights did not answer; the notices stop here");
    IncidentsError::Invalid(tonic::Status::unavailable(format!(
        "the rights service did not answer after {told} subjects were told this call; run NotifyPeople again to resume"
    )))
}

impl IncidentsApi {
    pub(super) async fn notify_people(
        &self,
        req: pb::NotifyPeopleRequest,
    ) -> Result<pb::NotifyPeopleResponse> {
        let c = check(&req)?;
        let stored = self.found(&c.incident_id).await?;
        notice::check_due(&stored.details)
            .map_err(|(kind, why)| IncidentsError::Precondition(kind, why.to_owned()))?;
        let texts = match self.store.notice_texts(&c.incident_id).await? {
            Some(texts) => texts,
            None if c.what_happened.is_empty() => {
                return Err(IncidentsError::Invalid(pdm_runtime::error::invalid_field(
                    "what_happened",
                    "required: the first call says what happened",
                )));
            }
            None => {
                self.store
                    .fix_notice_texts(people_notice::Model {
                        incident_id: c.incident_id.clone(),
                        what_happened: c.what_happened.clone(),
                        likely_consequences: stored.details.likely_consequences.clone(),
                        measures_taken: stored.details.measures_taken.clone(),
                        started_by: c.actor.clone(),
                        started_at: self.clock.now(),
                    })
                    .await?
            }
        };
        notice::text_to_send(&texts.what_happened, &c.what_happened)
            .map_err(|(kind, why)| IncidentsError::Precondition(kind, why.to_owned()))?;
        let Some(rights) = self.rights.clone() else {
            return Err(IncidentsError::Internal("no rights client configured"));
        };
        let subjects = self.store.to_notify(&c.incident_id, c.batch).await?;
        let (mut notified, mut already) = (0u64, 0u64);
        let started = std::time::Instant::now();
        for subject in subjects {
            if started.elapsed() > notice::CALL_BUDGET {
                break;
            }
            let answer = rights
                .clone()
                .send_notice(rights_pb::SendNoticeRequest {
                    incident_id: c.incident_id.clone(),
                    subject_id: subject.clone(),
                    what_happened: texts.what_happened.clone(),
                    likely_consequences: texts.likely_consequences.clone(),
                    measures_taken: texts.measures_taken.clone(),
                })
                .await
                .map_err(|s| unavailable(&s, notified))?
                .into_inner();
            let Some(n) = answer.notice else {
                return Err(IncidentsError::Internal("rights answered no notice"));
            };
            let status = status_of(&n).map_or("", Status::as_str);
            self.store
                .record_notified(
                    &c.incident_id,
                    &subject,
                    &n.notice_id,
                    status,
                    self.clock.now(),
                )
                .await?;
            if answer.created {
                notified += 1;
            } else {
                already += 1;
            }
        }
        let remaining = self.store.to_notify_count(&c.incident_id).await?;
        let affected = self.store.affected_count(&c.incident_id).await?;
        tracing::info!(
            incident_id = %c.incident_id,
            notified, already_notified = already, remaining, affected,
            "people told of the breach"
        );
        Ok(pb::NotifyPeopleResponse {
            notified,
            already_notified: already,
            remaining,
            affected,
        })
    }
}
