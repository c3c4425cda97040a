//! What a request asks of which service: one task per (service, action), stored before any
//! call is made.

use pdm_proto::rights::v1::RequestKind;

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// SubjectData.ExportSubject.
    Export,
    /// SubjectData.EraseSubject.
    Erase,
    /// SubjectData.RestrictSubject.
    Restrict,
    /// Consent: RecordObjection.
    Object,
    /// Consent: SetDoNotSell.
    DoNotSell,
    /// Identity: UpdateProfile.
    Rectify,
    /// Retention: GetSchedule (how long each category is kept).
    Schedule,
    /// Retention: RecordTrigger(ACCOUNT_CLOSED).
    RecordClosure,
    /// Consent: GetConsents (every purpose consented to, for the access answers).
    Purposes,
    /// Transfers: ListRecipients (the register's standing recipients, for the access
    /// answers).
    Register,
}

impl Action {
    /// Stable name, stored with the task.
    pub fn name(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::Erase => "erase",
            Self::Restrict => "restrict",
            Self::Object => "object",
            Self::DoNotSell => "do_not_sell",
            Self::Rectify => "rectify",
            Self::Schedule => "schedule",
            Self::RecordClosure => "record_closure",
            Self::Purposes => "purposes",
            Self::Register => "register",
        }
    }

    /// The action of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Export,
            Self::Erase,
            Self::Restrict,
            Self::Object,
            Self::DoNotSell,
            Self::Rectify,
            Self::Schedule,
            Self::RecordClosure,
            Self::Purposes,
            Self::Register,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }
}

/// One planned task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Service.
    pub service: String,
    /// Action.
    pub action: Action,
}

fn on(services: &[String], action: Action) -> Vec<Planned> {
    services
        .iter()
        .map(|s| Planned {
            service: s.clone(),
            action,
        })
        .collect()
}

/// The tasks of a request. `data_services` hold personal data (SubjectData); `retention`
/// says whether the retention service is part of the mesh.
pub fn plan(kind: RequestKind, data_services: &[String], retention: bool) -> Vec<Planned> {
    let has = |name: &str| data_services.iter().any(|s| s == name);
    let mut tasks = match kind {
        RequestKind::Access | RequestKind::Portability | RequestKind::CcpaKnow => {
            let mut t = on(data_services, Action::Export);
            if retention {
                t.push(Planned {
                    service: "retention".into(),
                    action: Action::Schedule,
                });
            }
            // The purposes consented to and the standing recipients are answers too.
            if has("consent") {
                t.push(Planned {
                    service: "consent".into(),
                    action: Action::Purposes,
                });
            }
            if has("transfers") {
                t.push(Planned {
                    service: "transfers".into(),
                    action: Action::Register,
                });
            }
            t
        }
        RequestKind::Erasure | RequestKind::CcpaDelete => {
            let mut t = on(data_services, Action::Erase);
            if retention {
                t.push(Planned {
                    service: "retention".into(),
                    action: Action::RecordClosure,
                });
            }
            t
        }
        RequestKind::Restriction => on(data_services, Action::Restrict),
        RequestKind::Objection if has("consent") => vec![Planned {
            service: "consent".into(),
            action: Action::Object,
        }],
        RequestKind::CcpaOptOut if has("consent") => vec![Planned {
            service: "consent".into(),
            action: Action::DoNotSell,
        }],
        RequestKind::Rectification if has("identity") => vec![Planned {
            service: "identity".into(),
            action: Action::Rectify,
        }],
        _ => Vec::new(),
    };
    tasks.sort_by(|a, b| (a.service.as_str(), a.action).cmp(&(b.service.as_str(), b.action)));
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services() -> Vec<String> {
        ["consent", "identity", "telemetry", "transfers"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    #[test]
    fn erasure_reaches_every_data_service_and_records_the_closure() {
        let t = plan(RequestKind::Erasure, &services(), true);
        assert_eq!(t.iter().filter(|p| p.action == Action::Erase).count(), 4);
        assert!(
            t.iter()
                .any(|p| p.service == "retention" && p.action == Action::RecordClosure)
        );
        assert_eq!(plan(RequestKind::CcpaDelete, &services(), false).len(), 4);
    }

    #[test]
    fn access_exports_everything_and_asks_for_the_schedule() {
        let t = plan(RequestKind::Access, &services(), true);
        assert_eq!(t.iter().filter(|p| p.action == Action::Export).count(), 4);
        assert!(t.iter().any(|p| p.action == Action::Schedule));
        assert!(
            t.iter()
                .any(|p| p.service == "consent" && p.action == Action::Purposes)
        );
        assert!(
            t.iter()
                .any(|p| p.service == "transfers" && p.action == Action::Register)
        );
    }

    #[test]
    fn targeted_requests_go_to_one_service() {
        assert_eq!(
            plan(RequestKind::Objection, &services(), true),
            vec![Planned {
                service: "consent".into(),
                action: Action::Object
            }]
        );
        assert_eq!(
            plan(RequestKind::Rectification, &services(), true)[0].action,
            Action::Rectify
        );
        assert!(plan(RequestKind::CcpaOptOut, &["identity".to_owned()], true).is_empty());
    }

    #[test]
    fn names_round_trip() {
        for a in [
            Action::Export,
            Action::Erase,
            Action::Restrict,
            Action::Object,
            Action::DoNotSell,
            Action::Rectify,
            Action::Schedule,
            Action::RecordClosure,
            Action::Purposes,
            Action::Register,
        ] {
            assert_eq!(Action::parse(a.name()), Some(a));
        }
    }
}
