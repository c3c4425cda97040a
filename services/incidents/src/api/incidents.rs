//! `pdm.incidents.v1.IncidentsService`. Logs name incidents by id and say what changed;
//! never their texts (the description may hold personal data).

use pdm_proto::incidents::v1::{self as pb, incidents_service_server::IncidentsService};
use tonic::{Request, Response, Status};

use super::{IncidentsApi, clocks, convert, requests};
use crate::{
    domain::{
        deadline,
        incident::{Change, Status as IncidentStatus},
        notification::{self, Phase},
    },
    error::{IncidentsError, Result},
    store::{Planned, Stored, entities::authority_notification},
};

impl IncidentsApi {
    fn message(&self, stored: &Stored) -> Result<pb::Incident> {
        convert::incident(stored, &self.regimes, self.clock.now())
    }

    /// The incident or NOT_FOUND.
    pub(super) async fn found(&self, id: &str) -> Result<Stored> {
        self.store.get(id).await?.ok_or(IncidentsError::NotFound)
    }

    async fn open(&self, req: pb::OpenIncidentRequest) -> Result<pb::OpenIncidentResponse> {
        let now = self.clock.now();
        let open = requests::open(&req, &self.regimes, now)?;
        let stored = self.store.open(&open.details, &open.actor, now).await?;
        tracing::info!(
            incident_id = %stored.incident.incident_id,
            risk = ?open.details.risk,
            "incident opened"
        );
        Ok(pb::OpenIncidentResponse {
            incident: Some(self.message(&stored)?),
        })
    }

    async fn assess(&self, req: pb::AssessIncidentRequest) -> Result<pb::AssessIncidentResponse> {
        let now = self.clock.now();
        let assess = requests::assess(&req, &self.regimes, now)?;
        let details = assess.details.clone();
        let stored = self
            .store
            .change(
                &assess.incident_id,
                assess.expected_version,
                &assess.actor,
                now,
                move |_| {
                    Ok(Planned {
                        change: Change::Assessed,
                        details,
                        status: IncidentStatus::Open,
                        closure_reason: None,
                        notification: None,
                    })
                },
            )
            .await?;
        tracing::info!(
            incident_id = %stored.incident.incident_id,
            version = stored.incident.version,
            risk = ?stored.details.risk,
            "incident assessed"
        );
        Ok(pb::AssessIncidentResponse {
            incident: Some(self.message(&stored)?),
        })
    }

    async fn notify(
        &self,
        req: pb::RecordAuthorityNotificationRequest,
    ) -> Result<pb::RecordAuthorityNotificationResponse> {
        let now = self.clock.now();
        let n = requests::notify(&req, now)?;
        let table = self.regimes.clone();
        let notification_id = uuid::Uuid::now_v7().to_string();
        let id = notification_id.clone();
        let incident_id = n.incident_id.clone();
        let actor = n.actor.clone();
        let stored =
            self.store
                .change(&incident_id, None, &actor, now, move |before| {
                    // What needs the incident: its regimes, its awareness, its notifications.
                    let mut check = requests::Check::default();
                    if !before.details.regimes.contains(&n.regime) {
                        check.add(
                            "regime",
                            format!(
                                "one of the incident's regimes: {}",
                                before.details.regimes.join(", ")
                            ),
                        );
                    }
                    if n.sent_at < before.details.aware_at {
                        check.add("sent_at", "must not be before the incident's aware_at");
                    }
                    let due_at = table.iter().find(|r| r.key == n.regime).map(|r| {
                        deadline::due(before.details.aware_at, r.authority_deadline_hours)
                    });
                    let late = n.phase == Phase::Initial
                        && due_at.is_some_and(|due| deadline::is_late(due, n.sent_at));
                    if late && n.delay_reason.is_empty() {
                        check.add(
                            "delay_reason",
                            "required: the initial notification is after the deadline (Art. 33(1))",
                        );
                    }
                    check.finish()?;
                    let sent: Vec<Phase> = before
                        .notifications
                        .iter()
                        .filter(|x| x.regime == n.regime)
                        .filter_map(|x| Phase::parse(&x.phase))
                        .collect();
                    notification::check_next(&sent, n.phase)
                        .map_err(|why| IncidentsError::Precondition("PHASE", why.to_owned()))?;
                    Ok(Planned {
                        change: Change::AuthorityNotified,
                        details: before.details.clone(),
                        status: IncidentStatus::Open,
                        closure_reason: None,
                        notification: Some(authority_notification::Model {
                            notification_id: id,
                            incident_id: before.incident.incident_id.clone(),
                            regime: n.regime,
                            phase: n.phase.as_str().to_owned(),
                            sent_at: n.sent_at,
                            content: n.content,
                            reference: n.reference,
                            delay_reason: n.delay_reason,
                            recorded_at: now,
                            recorded_by: n.actor,
                        }),
                    })
                })
                .await?;
        let recorded = stored
            .notifications
            .iter()
            .find(|x| x.notification_id == notification_id)
            .ok_or(IncidentsError::Internal("notification not kept"))?;
        tracing::info!(
            incident_id = %stored.incident.incident_id,
            version = stored.incident.version,
            regime = %recorded.regime,
            phase = %recorded.phase,
            "authority notification recorded"
        );
        Ok(pb::RecordAuthorityNotificationResponse {
            notification: Some(convert::notification(recorded)),
            incident: Some(self.message(&stored)?),
        })
    }

    async fn close(&self, req: pb::CloseIncidentRequest) -> Result<pb::CloseIncidentResponse> {
        let now = self.clock.now();
        let c = requests::close(&req)?;
        let incident_id = c.incident_id.clone();
        let actor = c.actor.clone();
        let stored = self
            .store
            .change(&incident_id, None, &actor, now, move |before| {
                let sent = before.details.regimes.iter().map(|regime| {
                    let phases = before
                        .notifications
                        .iter()
                        .filter(|x| &x.regime == regime)
                        .filter_map(|x| Phase::parse(&x.phase))
                        .collect();
                    (regime.as_str(), phases)
                });
                notification::check_close(before.details.risk, sent)
                    .map_err(|why| IncidentsError::Precondition("NOT_FINISHED", why))?;
                Ok(Planned {
                    change: Change::Closed,
                    details: before.details.clone(),
                    status: IncidentStatus::Closed,
                    closure_reason: Some(c.reason),
                    notification: None,
                })
            })
            .await?;
        tracing::info!(incident_id = %stored.incident.incident_id, version = stored.incident.version, "incident closed");
        Ok(pb::CloseIncidentResponse {
            incident: Some(self.message(&stored)?),
        })
    }

    async fn list(&self, req: pb::ListIncidentsRequest) -> Result<pb::ListIncidentsResponse> {
        let list = requests::list(&req)?;
        let page = self
            .store
            .list(list.status, list.before.as_deref(), list.limit + 1)
            .await?;
        let more = page.len() as u64 > list.limit;
        let page: Vec<Stored> = page
            .into_iter()
            .take(usize::try_from(list.limit).unwrap_or(usize::MAX))
            .collect();
        let next_page_token = if more {
            page.last()
                .map(|s| s.incident.incident_id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListIncidentsResponse {
            incidents: page
                .iter()
                .map(|s| self.message(s))
                .collect::<Result<_>>()?,
            next_page_token,
        })
    }

    /// The open incidents with an overdue deadline now.
    pub async fn overdue_now(&self) -> Result<Vec<Stored>> {
        let open = self.store.open_incidents().await?;
        Ok(clocks::overdue(open, &self.regimes, self.clock.now()))
    }

    pub(super) fn id(field: &str, raw: &str) -> Result<String> {
        let mut check = requests::Check::default();
        let id = check.incident_id(field, raw);
        check.finish()?;
        id.ok_or(IncidentsError::Internal("validated request incomplete"))
    }
}

#[tonic::async_trait]
impl IncidentsService for IncidentsApi {
    async fn find_affected(
        &self,
        request: Request<pb::FindAffectedRequest>,
    ) -> Result<Response<pb::FindAffectedResponse>, Status> {
        Ok(Response::new(
            self.search_affected(request.into_inner()).await?,
        ))
    }

    async fn list_affected(
        &self,
        request: Request<pb::ListAffectedRequest>,
    ) -> Result<Response<pb::ListAffectedResponse>, Status> {
        Ok(Response::new(
            self.page_affected(request.into_inner()).await?,
        ))
    }

    async fn notify_people(
        &self,
        request: Request<pb::NotifyPeopleRequest>,
    ) -> Result<Response<pb::NotifyPeopleResponse>, Status> {
        Ok(Response::new(
            self.notify_people(request.into_inner()).await?,
        ))
    }

    async fn open_incident(
        &self,
        request: Request<pb::OpenIncidentRequest>,
    ) -> Result<Response<pb::OpenIncidentResponse>, Status> {
        Ok(Response::new(self.open(request.into_inner()).await?))
    }

    async fn get_incident(
        &self,
        request: Request<pb::GetIncidentRequest>,
    ) -> Result<Response<pb::GetIncidentResponse>, Status> {
        let id = Self::id("incident_id", &request.get_ref().incident_id)?;
        let stored = self.found(&id).await?;
        Ok(Response::new(pb::GetIncidentResponse {
            incident: Some(self.message(&stored)?),
        }))
    }

    async fn list_incidents(
        &self,
        request: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        Ok(Response::new(self.list(request.into_inner()).await?))
    }

    async fn assess_incident(
        &self,
        request: Request<pb::AssessIncidentRequest>,
    ) -> Result<Response<pb::AssessIncidentResponse>, Status> {
        Ok(Response::new(self.assess(request.into_inner()).await?))
    }

    async fn get_incident_history(
        &self,
        request: Request<pb::GetIncidentHistoryRequest>,
    ) -> Result<Response<pb::GetIncidentHistoryResponse>, Status> {
        let id = Self::id("incident_id", &request.get_ref().incident_id)?;
        let versions = self.store.versions(&id).await.map_err(Status::from)?;
        if versions.is_empty() {
            return Err(IncidentsError::NotFound.into());
        }
        Ok(Response::new(pb::GetIncidentHistoryResponse {
            versions: versions
                .iter()
                .map(convert::version)
                .collect::<Result<_>>()?,
        }))
    }

    async fn record_authority_notification(
        &self,
        request: Request<pb::RecordAuthorityNotificationRequest>,
    ) -> Result<Response<pb::RecordAuthorityNotificationResponse>, Status> {
        Ok(Response::new(self.notify(request.into_inner()).await?))
    }

    async fn close_incident(
        &self,
        request: Request<pb::CloseIncidentRequest>,
    ) -> Result<Response<pb::CloseIncidentResponse>, Status> {
        Ok(Response::new(self.close(request.into_inner()).await?))
    }

    async fn list_overdue(
        &self,
        _request: Request<pb::ListOverdueRequest>,
    ) -> Result<Response<pb::ListOverdueResponse>, Status> {
        let overdue = self.overdue_now().await?;
        Ok(Response::new(pb::ListOverdueResponse {
            incidents: overdue
                .iter()
                .map(|s| self.message(s))
                .collect::<Result<_>>()?,
        }))
    }

    async fn get_dpo_contact(
        &self,
        _request: Request<pb::GetDpoContactRequest>,
    ) -> Result<Response<pb::GetDpoContactResponse>, Status> {
        Ok(Response::new(pb::GetDpoContactResponse {
            name: self.dpo.name.clone(),
            email: self.dpo.email.clone(),
            postal_address: self.dpo.postal_address.clone(),
        }))
    }

    async fn list_regimes(
        &self,
        _request: Request<pb::ListRegimesRequest>,
    ) -> Result<Response<pb::ListRegimesResponse>, Status> {
        Ok(Response::new(pb::ListRegimesResponse {
            regimes: self.regimes.iter().map(convert::regime).collect(),
        }))
    }
}
