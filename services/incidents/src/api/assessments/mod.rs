//! `pdm.incidents.v1.AssessmentsService`: the DPO's register of data protection impact
//! assessments, and the overdue reviews of those and of the transfers service's transfer
//! impact assessments. Logs name assessments by id and say what changed; never their texts.

mod convert;
pub mod requests;

use chrono::{DateTime, Utc};
use pdm_proto::{
    incidents::v1::{self as pb, assessments_service_server::AssessmentsService},
    transfers::v1::{
        ExpiringMechanism, ListExpiringMechanismsRequest,
        transfers_service_client::TransfersServiceClient,
    },
};
use pdm_runtime::{SharedClock, client::TracedChannel, convert::from_timestamp};
use tonic::{Request, Response, Status};

use crate::{
    domain::assessment,
    error::{IncidentsError, Result},
    store::{Store, assessments::StoredAssessment},
};

/// The assessments' gRPC handlers.
#[derive(Debug, Clone)]
pub struct AssessmentsApi {
    store: Store,
    clock: SharedClock,
    /// The transfers service, asked for the TIAs due for review.
    transfers: TransfersServiceClient<TracedChannel>,
}

/// The reviews overdue now, by register.
#[derive(Debug, Clone, Default)]
pub struct Overdue {
    /// DPIAs of this register.
    pub dpias: Vec<StoredAssessment>,
    /// Active mechanisms of the transfers service with a TIA past its review date.
    pub tias: Vec<ExpiringMechanism>,
}

impl AssessmentsApi {
    /// Handlers over `store`, asking `transfers` for its TIAs.
    pub fn new(
        store: Store,
        clock: SharedClock,
        transfers: TransfersServiceClient<TracedChannel>,
    ) -> Self {
        Self {
            store,
            clock,
            transfers,
        }
    }

    async fn record(
        &self,
        req: pb::RecordAssessmentRequest,
    ) -> Result<pb::RecordAssessmentResponse> {
        let now = self.clock.now();
        let r = requests::record(&req, now)?;
        let (stored, created) = match &r.revises {
            None => (
                self.store
                    .record_assessment(&r.details, &r.actor, now)
                    .await?,
                true,
            ),
            Some((id, expected)) => (
                self.store
                    .revise_assessment(id, *expected, &r.details, &r.actor, now)
                    .await?,
                false,
            ),
        };
        tracing::info!(
            assessment_id = %stored.row.assessment_id,
            version = stored.row.version,
            residual_risk = ?stored.details.residual_risk,
            outcome = ?stored.details.outcome,
            "impact assessment recorded"
        );
        Ok(pb::RecordAssessmentResponse {
            assessment: Some(convert::assessment(&stored, now)),
            created,
        })
    }

    async fn get(&self, req: pb::GetAssessmentRequest) -> Result<pb::GetAssessmentResponse> {
        let id = requests::id("assessment_id", &req.assessment_id)?;
        let stored = self
            .store
            .assessment(&id)
            .await?
            .ok_or(IncidentsError::NotFound)?;
        let versions = if req.include_history {
            self.store
                .assessment_versions(&id)
                .await?
                .iter()
                .map(convert::version)
                .collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        Ok(pb::GetAssessmentResponse {
            assessment: Some(convert::assessment(&stored, self.clock.now())),
            versions,
        })
    }

    async fn list(&self, req: pb::ListAssessmentsRequest) -> Result<pb::ListAssessmentsResponse> {
        let list = requests::list(&req)?;
        let mut page = self
            .store
            .assessments(list.before.as_deref(), list.limit + 1)
            .await?;
        let more = page.len() as u64 > list.limit;
        page.truncate(usize::try_from(list.limit).unwrap_or(usize::MAX));
        let next_page_token = match page.last() {
            Some(last) if more => last.row.assessment_id.clone(),
            _ => String::new(),
        };
        let now = self.clock.now();
        Ok(pb::ListAssessmentsResponse {
            assessments: page.iter().map(|s| convert::assessment(s, now)).collect(),
            next_page_token,
        })
    }

    /// The DPIAs whose review is due now.
    pub async fn dpias_due(&self) -> Result<Vec<StoredAssessment>> {
        self.store.reviews_due(self.clock.now()).await
    }

    /// The transfers service's TIAs due for review now: its active mechanisms with a TIA
    /// whose review date has passed. UNAVAILABLE when transfers does not answer.
    pub async fn tias_due(&self) -> Result<Vec<ExpiringMechanism>> {
        let now = self.clock.now();
        let answer = self
            .transfers
            .clone()
            .list_expiring_mechanisms(ListExpiringMechanismsRequest { within_days: 0 })
            .await
            .map_err(|status| {
                tracing::warn!(code = ?status.code(), "transfers did not list its mechanisms due");
                IncidentsError::Invalid(Status::unavailable(
                    "the transfers service did not answer: the transfer impact assessments are unknown; retry",
                ))
            })?
            .into_inner();
        Ok(answer
            .mechanisms
            .into_iter()
            .filter(|due| tia_review_due(due, now).is_some())
            .collect())
    }

    async fn overdue(&self) -> Result<pb::ListOverdueReviewsResponse> {
        let now = self.clock.now();
        let overdue = Overdue {
            dpias: self.dpias_due().await?,
            tias: self.tias_due().await?,
        };
        let mut reviews: Vec<(DateTime<Utc>, pb::OverdueReview)> = Vec::new();
        for dpia in &overdue.dpias {
            let due = dpia.details.next_review_at;
            reviews.push((
                due,
                pb::OverdueReview {
                    kind: pb::ReviewKind::Dpia as i32,
                    review_due: Some(pdm_runtime::convert::timestamp(due)),
                    days_overdue: days(due, now),
                    assessment: Some(convert::assessment(dpia, now)),
                    mechanism: None,
                    recipient_name: String::new(),
                },
            ));
        }
        for tia in overdue.tias {
            let Some(due) = tia_review_due(&tia, now) else {
                continue;
            };
            reviews.push((
                due,
                pb::OverdueReview {
                    kind: pb::ReviewKind::Tia as i32,
                    review_due: Some(pdm_runtime::convert::timestamp(due)),
                    days_overdue: days(due, now),
                    assessment: None,
                    mechanism: tia.mechanism,
                    recipient_name: tia.recipient_name,
                },
            ));
        }
        reviews.sort_by_key(|(due, _)| *due);
        tracing::info!(
            dpias = overdue.dpias.len(),
            tias = reviews.len() - overdue.dpias.len(),
            "overdue impact assessment reviews listed"
        );
        Ok(pb::ListOverdueReviewsResponse {
            reviews: reviews.into_iter().map(|(_, r)| r).collect(),
        })
    }
}

/// The review date of a mechanism's TIA when it has one and the date has passed at `now`.
fn tia_review_due(due: &ExpiringMechanism, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mechanism = due.mechanism.as_ref()?;
    mechanism.tia.as_ref()?;
    let review = from_timestamp(mechanism.review_due.as_ref()?)?;
    assessment::review_overdue(review, now).then_some(review)
}

fn days(due: DateTime<Utc>, now: DateTime<Utc>) -> i32 {
    i32::try_from(assessment::days_overdue(due, now)).unwrap_or(i32::MAX)
}

/// The assessments' errors as statuses: the register's, worded for an assessment.
fn status(err: IncidentsError) -> Status {
    match err {
        IncidentsError::NotFound => Status::not_found("assessment not found"),
        IncidentsError::Conflict { current } => Status::aborted(format!(
            "the assessment is at version {current}: read it again and retry"
        )),
        other => other.into(),
    }
}

#[tonic::async_trait]
impl AssessmentsService for AssessmentsApi {
    async fn record_assessment(
        &self,
        request: Request<pb::RecordAssessmentRequest>,
    ) -> Result<Response<pb::RecordAssessmentResponse>, Status> {
        self.record(request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn get_assessment(
        &self,
        request: Request<pb::GetAssessmentRequest>,
    ) -> Result<Response<pb::GetAssessmentResponse>, Status> {
        self.get(request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn list_assessments(
        &self,
        request: Request<pb::ListAssessmentsRequest>,
    ) -> Result<Response<pb::ListAssessmentsResponse>, Status> {
        self.list(request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn list_overdue_reviews(
        &self,
        _request: Request<pb::ListOverdueReviewsRequest>,
    ) -> Result<Response<pb::ListOverdueReviewsResponse>, Status> {
        self.overdue().await.map(Response::new).map_err(status)
    }
}
