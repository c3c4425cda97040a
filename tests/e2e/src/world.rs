//! One valid call for every RPC, in an order where each finds what it needs (an account
//! before its consent, a completed request before its download), with the people and
//! values they use. Requests are proto3 JSON, made into messages from the descriptors.
//!
//! A method of the protos without a call here fails `every_rpc` with its name: a new RPC
//! gets its bad-body checks without any edit, and its valid call by adding a line here.

use serde_json::{Value, json};

use crate::process::Caller;

/// What the calls made so far created, and every personal value the suite used (searched
/// for in the logs and, after erasure, everywhere). Subject ids are pseudonyms that the
/// services log on purpose, so operators can follow one subject's requests.
#[derive(Debug, Default, Clone)]
pub struct World {
    /// A run-unique tag, so two worlds never collide.
    pub tag: String,
    /// The main subject.
    pub subject: String,
    /// Its email and password.
    pub email: String,
    /// Its password.
    pub password: String,
    /// A session of it.
    pub session: String,
    /// A subject whose account is deleted.
    pub subject_delete: String,
    /// Its password.
    pub password_delete: String,
    /// A subject erased directly through SubjectData.
    pub subject_erase: String,
    /// A completed access request of the main subject.
    pub request_id: String,
    /// A request waiting for verification.
    pub request_pending: String,
    /// Another, extended then cancelled.
    pub request_cancel: String,
    /// The one-time download token of `request_id`, once given.
    pub download_token: String,
    /// A legal hold.
    pub hold_id: String,
    /// A purge run.
    pub run_id: String,
    /// A recipient.
    pub recipient_id: String,
    /// The token of an unsubscribe link of the main subject.
    pub unsubscribe_token: String,
    /// A request refused by the privacy team (it names another subject than the
    /// session's, so it waits for verification).
    pub request_deny: String,
    /// A report of a child's data.
    pub child_report: String,
    /// A privacy complaint.
    pub concern: String,
    /// A breach of the register (issue 21).
    pub incident_id: String,
    /// A high-risk breach whose people are told (issue 21).
    pub high_incident_id: String,
    /// A data protection impact assessment of the DPO's register (issue 21).
    pub assessment_id: String,
    /// Personal values used, for the log and storage checks.
    pub personal: Vec<String>,
}

/// What must be true before a call is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    /// Nothing.
    Nothing,
    /// The main subject's access request has completed.
    RequestCompleted,
}

/// How much of an answer a valid call reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The whole answer, to its status.
    All,
    /// Until the first message (for streams that follow changes until cancelled).
    First,
}

/// One valid call.
#[derive(Debug, Clone, Copy)]
pub struct Fixture {
    /// `package.Service/Method`.
    pub method: &'static str,
    /// Who calls.
    pub caller: Caller,
    /// The request, as proto3 JSON.
    pub request: fn(&World) -> Value,
    /// Keeps what later calls need from the first response message.
    pub capture: Option<fn(&mut World, &Value)>,
    /// How much of the answer to read.
    pub read: Read,
    /// What to wait for first.
    pub before: Before,
}

const fn call(method: &'static str, caller: Caller, request: fn(&World) -> Value) -> Fixture {
    Fixture {
        method,
        caller,
        request,
        capture: None,
        read: Read::All,
        before: Before::Nothing,
    }
}

const fn keep(mut fixture: Fixture, capture: fn(&mut World, &Value)) -> Fixture {
    fixture.capture = Some(capture);
    fixture
}

const fn first(mut fixture: Fixture) -> Fixture {
    fixture.read = Read::First;
    fixture
}

const fn completed(mut fixture: Fixture) -> Fixture {
    fixture.before = Before::RequestCompleted;
    fixture
}

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A 1×1 PNG.
pub const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
/// The consent text's hash.
const TEXT_HASH: &str = "3b1f6c0e9a5d4e7f8a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f";

const IDENTITY: &str = "pdm.identity.v1.IdentityService";
const CONSENT: &str = "pdm.consent.v1.ConsentService";
const TELEMETRY: &str = "pdm.telemetry.v1.TelemetryService";
const RETENTION: &str = "pdm.retention.v1.RetentionService";
const TRANSFERS: &str = "pdm.transfers.v1.TransfersService";
const RIGHTS: &str = "pdm.rights.v1.RightsService";
const INCIDENTS: &str = "pdm.incidents.v1.IncidentsService";
const ASSESSMENTS: &str = "pdm.incidents.v1.AssessmentsService";

/// A new world's people: names, addresses and passwords unique to this run.
pub fn people() -> World {
    let tag = uuid::Uuid::now_v7().simple().to_string()[20..].to_owned();
    let mut world = World {
        email: format!("ada.{tag}@example.org"),
        password: format!("correct horse {tag}"),
        password_delete: format!("battery staple {tag}"),
        tag,
        ..World::default()
    };
    world.personal = vec![
        world.email.clone(),
        world.password.clone(),
        world.password_delete.clone(),
        format!("Lovelace{}", world.tag),
        format!("Babbage{}", world.tag),
        format!("Byron{}", world.tag),
        format!("leaking pipe {}", world.tag),
        format!("Account{}", world.tag),
        format!("extra.{}@example.org", world.tag),
        format!("charles.{}@example.org", world.tag),
        format!("annabella.{}@example.org", world.tag),
        "+447700900123".to_owned(),
    ];
    world
}

/// The account requests of the three subjects, in order: main, deleted, erased.
pub fn sign_ups(w: &World) -> [Value; 3] {
    [
        json!({
            "firstName": "Ada", "lastName": format!("Lovelace{}", w.tag),
            "email": w.email, "phone": "+447700900123", "region": "REGION_UK",
            "birthDate": "1990-12-10", "password": w.password,
        }),
        json!({
            "firstName": "Charles", "lastName": format!("Babbage{}", w.tag),
            "email": format!("charles.{}@example.org", w.tag), "region": "REGION_EEA",
            "password": w.password_delete,
        }),
        json!({
            "firstName": "Annabella", "lastName": format!("Byron{}", w.tag),
            "email": format!("annabella.{}@example.org", w.tag), "region": "REGION_US",
            "password": w.password_delete,
        }),
    ]
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// An incident's details (issue 21): aware an hour ago, under GDPR and UK GDPR.
fn incident_details(w: &World, risk: &str, reasoning: &str) -> Value {
    let ago = |hours: i64| {
        (chrono::Utc::now() - chrono::Duration::hours(hours))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    json!({"title": format!("e2e incident {}", w.tag), "detectedAt": ago(2),
        "awareAt": ago(1), "description": "a partner export sent to the wrong recipient",
        "natures": ["NATURE_CONFIDENTIALITY"], "dataCategories": ["account.profile"],
        "services": ["identity"], "windowStart": ago(48), "approximateSubjects": 3,
        "risk": risk, "riskReasoning": reasoning, "regimes": ["gdpr", "uk_gdpr"]})
}

/// Every valid call, in the order they run.
pub fn fixtures() -> Vec<Fixture> {
    use Caller::{Admin, Client, Service};
    let m = |service: &'static str, method: &'static str| -> &'static str {
        Box::leak(format!("{service}/{method}").into_boxed_str())
    };
    vec![
        // --- identity: the main subject (created by `sign_ups`) is read and changed.
        call(m(IDENTITY, "CreateAccount"), Client, |w| {
            json!({
                "firstName": "Extra", "lastName": format!("Account{}", w.tag),
                "email": format!("extra.{}@example.org", w.tag), "region": "REGION_UK",
                "password": w.password,
            })
        }),
        call(
            m(IDENTITY, "GetAccount"),
            Client,
            |w| json!({"subjectId": w.subject}),
        ),
        call(
            m(IDENTITY, "GetRegion"),
            Client,
            |w| json!({"subjectId": w.subject}),
        ),
        call(
            m(IDENTITY, "UpdateProfile"),
            Client,
            |w| json!({"subjectId": w.subject, "firstName": "Augusta"}),
        ),
        call(
            m(IDENTITY, "SetProfilePhoto"),
            Client,
            |w| json!({"subjectId": w.subject, "photo": PNG}),
        ),
        call(
            m(IDENTITY, "GetProfilePhoto"),
            Client,
            |w| json!({"subjectId": w.subject}),
        ),
        call(
            m(IDENTITY, "GetPublicProfile"),
            Client,
            |w| json!({"subjectId": w.subject}),
        ),
        call(
            m(IDENTITY, "GetOrganisation"),
            Client,
            |w| json!({"subjectId": w.subject}),
        ),
        keep(
            call(
                m(IDENTITY, "Authenticate"),
                Client,
                |w| json!({"email": w.email, "password": w.password}),
            ),
            |w, r| {
                w.session = text(r, "/sessionToken");
                w.personal.push(w.session.clone());
            },
        ),
        call(
            m(IDENTITY, "ValidateSession"),
            Client,
            |w| json!({"sessionToken": w.session}),
        ),
        call(
            m(IDENTITY, "LinkSubject"),
            Client,
            |w| json!({"sessionToken": w.session}),
        ),
        call(
            m(IDENTITY, "CheckRelationship"),
            Service("consent"),
            |w| json!({"subjectId": w.subject, "client": "client:demo"}),
        ),
        call(
            m(IDENTITY, "VerifySubject"),
            Client,
            |w| json!({"subjectId": w.subject, "password": w.password}),
        ),
        call(m(IDENTITY, "SetBillingContact"), Client, |w| {
            json!({"subjectId": w.subject, "billingContact": {
                "name": format!("Lovelace{} Ltd", w.tag),
                "email": w.email, "phone": "+447700900123",
                "paymentProcessorRef": "cus_NffrFeUfNV2Hib",
            }})
        }),
        call(
            m(IDENTITY, "GetBillingContact"),
            Client,
            |w| json!({"subjectId": w.subject}),
        ),
        call(m(IDENTITY, "CreateSupportTicket"), Client, |w| {
            json!({"subjectId": w.subject, "contact": w.email,
                "summary": "the app crashes", "description": format!("leaking pipe {}", w.tag),
                "attachments": [{"fileName": "notes.txt", "contentType": "text/plain",
                    "content": "aGVsbG8gd29ybGQ="}]})
        }),
        call(
            m(IDENTITY, "ListSupportTickets"),
            Client,
            |w| json!({"subjectId": w.subject}),
        ),
        // --- consent
        call(m(CONSENT, "ListPurposes"), Client, |_| json!({})),
        call(m(CONSENT, "GrantConsent"), Client, |w| {
            json!({"subjectId": w.subject, "purpose": "product_analytics",
                "source": "SOURCE_WEB_FORM", "policyVersion": "2024-06-28",
                "textHash": TEXT_HASH, "actor": "web-signup"})
        }),
        call(m(CONSENT, "WithdrawConsent"), Client, |w| {
            json!({"subjectId": w.subject, "purpose": "personalization",
                "source": "SOURCE_WEB_FORM", "actor": "settings-page"})
        }),
        call(
            m(CONSENT, "GetConsents"),
            Client,
            |w| json!({"subjectId": w.subject}),
        ),
        call(
            m(CONSENT, "GetConsentHistory"),
            Client,
            |w| json!({"subjectId": w.subject, "pageSize": 10}),
        ),
        call(
            m(CONSENT, "CheckProcessing"),
            Client,
            |w| json!({"subjectId": w.subject, "purpose": "product_analytics"}),
        ),
        call(m(CONSENT, "BatchCheckProcessing"), Client, |w| {
            json!({"items": [{"subjectId": w.subject, "purpose": "product_analytics"},
                {"subjectId": w.subject, "purpose": "marketing_email"}]})
        }),
        call(m(CONSENT, "CanContact"), Client, |w| {
            json!({"subjectId": w.subject, "channel": "CHANNEL_EMAIL",
                "kind": "MESSAGE_KIND_PROMOTIONAL"})
        }),
        call(m(CONSENT, "SetContactPreference"), Client, |w| {
            json!({"subjectId": w.subject, "channel": "CHANNEL_SMS", "optedOut": true,
                "source": "SOURCE_WEB_FORM", "actor": "settings-page"})
        }),
        call(m(CONSENT, "SetDoNotSell"), Client, |w| {
            json!({"subjectId": w.subject, "doNotSell": true, "source": "SOURCE_WEB_FORM",
                "actor": "settings-page"})
        }),
        call(m(CONSENT, "SetRestriction"), Client, |w| {
            json!({"subjectId": w.subject_erase, "restricted": false,
                "source": "SOURCE_PRIVACY_REQUEST", "actor": "privacy-team"})
        }),
        call(m(CONSENT, "RecordObjection"), Client, |w| {
            json!({"subjectId": w.subject, "purpose": "marketing_ads",
                "source": "SOURCE_WEB_FORM", "actor": "settings-page"})
        }),
        keep(
            call(
                m(CONSENT, "IssueUnsubscribeLink"),
                Client,
                |w| json!({"subjectId": w.subject, "channel": "CHANNEL_PUSH"}),
            ),
            |w, r| w.unsubscribe_token = text(r, "/token"),
        ),
        call(
            m(CONSENT, "Unsubscribe"),
            Client,
            |w| json!({"token": w.unsubscribe_token}),
        ),
        call(
            m(CONSENT, "GetLedgerPosition"),
            Service("telemetry"),
            |_| json!({}),
        ),
        // Counts per purpose for the privacy team (issue 20's console).
        call(m(CONSENT, "GetConsentStatistics"), Admin, |_| json!({})),
        first(call(
            m(CONSENT, "WatchConsentChanges"),
            Service("telemetry"),
            |_| json!({"afterSequence": 0}),
        )),
        // --- telemetry
        call(m(TELEMETRY, "IngestEvents"), Client, |w| {
            json!({"batchId": format!("batch-{}", w.tag), "events": [{
                "subjectId": w.subject, "kind": "EVENT_KIND_FEATURE_USED",
                "occurredAt": now(), "feature": "export",
                "device": {"osName": "Linux", "locale": "en-GB"}}]})
        }),
        call(m(TELEMETRY, "ReportCrash"), Client, |w| {
            json!({"subjectId": w.subject, "errorType": "NullPointerException",
                "message": format!("failed for {}", w.email),
                "stackTrace": "at app.main(Main.java:10)"})
        }),
        call(
            m(TELEMETRY, "QueryAggregates"),
            Admin,
            |_| json!({"dimension": "DIMENSION_FEATURE", "fromDay": today(), "toDay": today()}),
        ),
        call(m(TELEMETRY, "RecordTrackingChoice"), Client, |w| {
            json!({"deviceId": format!("e2e-device-{}", w.tag), "analytics": true,
                "advertising": true, "globalPrivacyControl": true,
                "policyVersion": "cookies-2024-06", "textHash": TEXT_HASH})
        }),
        call(
            m(TELEMETRY, "GetTrackingChoice"),
            Client,
            |w| json!({"deviceId": format!("e2e-device-{}", w.tag)}),
        ),
        // --- transfers
        keep(
            call(m(TRANSFERS, "RegisterRecipient"), Admin, |w| {
                json!({"recipient": {"key": format!("e2e-hosting-{}", w.tag),
                    "name": "E2E Hosting", "role": "RECIPIENT_ROLE_PROCESSOR",
                    "country": "IN", "purposes": ["service_provision"],
                    "dataCategories": ["account.profile"], "contractReference": "DPA-2024-7",
                    "contractDate": "2024-01-15"}})
            }),
            |w, r| w.recipient_id = text(r, "/recipient/recipientId"),
        ),
        call(m(TRANSFERS, "ListRecipients"), Admin, |_| json!({})),
        call(m(TRANSFERS, "RecordMechanism"), Admin, |w| {
            json!({"mechanism": {"recipientId": w.recipient_id, "kind": "MECHANISM_KIND_EU_SCC",
                "regimes": ["REGIME_EU", "REGIME_UK"], "sccModule": 2,
                "exporterRole": "PARTY_ROLE_CONTROLLER", "signedOn": "2024-01-15",
                "parties": ["DigitalAPICraft", "E2E Hosting"],
                "annexReferences": ["Annex I.B"],
                "validFrom": "2024-01-15T00:00:00Z", "expiresAt": "2030-01-15T00:00:00Z",
                "reviewDue": "2029-01-15T00:00:00Z", "status": "MECHANISM_STATUS_ACTIVE",
                "purposes": ["service_provision"], "dataCategories": ["account.profile"],
                "tia": {"reference": "TIA-7", "assessedOn": "2024-01-10",
                    "outcome": "TIA_OUTCOME_ADEQUATE", "supplementaryMeasures": ["encryption"]}}})
        }),
        call(
            m(TRANSFERS, "ListMechanisms"),
            Admin,
            |w| json!({"recipientId": w.recipient_id}),
        ),
        call(m(TRANSFERS, "AuthorizeTransfer"), Client, |w| {
            json!({"regime": "REGIME_UK", "recipientId": w.recipient_id,
                "dataCategories": ["account.profile"], "purpose": "service_provision",
                "subjectId": w.subject, "exporterRole": "PARTY_ROLE_CONTROLLER",
                "reference": "nightly-sync"})
        }),
        call(
            m(TRANSFERS, "ListTransferLog"),
            Admin,
            |_| json!({"pageSize": 10}),
        ),
        call(
            m(TRANSFERS, "ListExpiringMechanisms"),
            Admin,
            |_| json!({"withinDays": 30}),
        ),
        call(m(TRANSFERS, "ListAdequacy"), Admin, |_| json!({})),
        // --- retention
        call(m(RETENTION, "ListPolicies"), Admin, |_| json!({})),
        call(m(RETENTION, "UpsertPolicy"), Admin, |w| {
            json!({"policy": {"category": format!("e2e.notes{}", &w.tag[..4]),
                "period": {"days": 30}, "trigger": "RETENTION_TRIGGER_EVENT_TIME",
                "legalBasis": "LEGAL_BASIS_LEGITIMATE_INTERESTS",
                "description": "notes kept a month", "changedBy": "privacy-team"}})
        }),
        call(
            m(RETENTION, "ListPolicyVersions"),
            Admin,
            |_| json!({"category": "account.session"}),
        ),
        keep(
            call(m(RETENTION, "PlaceLegalHold"), Admin, |w| {
                json!({"hold": {"subjectId": w.subject, "reason": "litigation",
                    "reference": "CASE-2024-17", "placedBy": "legal-team"}})
            }),
            |w, r| w.hold_id = text(r, "/hold/holdId"),
        ),
        call(m(RETENTION, "ListLegalHolds"), Admin, |_| json!({})),
        call(
            m(RETENTION, "ReleaseLegalHold"),
            Admin,
            |w| json!({"holdId": w.hold_id, "releasedBy": "legal-team"}),
        ),
        call(
            m(RETENTION, "RecordTrigger"),
            Admin,
            |w| json!({"subjectId": w.subject_erase, "trigger": "RETENTION_TRIGGER_ACCOUNT_CLOSED"}),
        ),
        keep(
            call(
                m(RETENTION, "RunPurge"),
                Admin,
                |_| json!({"dryRun": true, "triggeredBy": "privacy-team"}),
            ),
            |w, r| {
                let id = text(r, "/run/runId");
                if !id.is_empty() {
                    w.run_id = id;
                }
            },
        ),
        call(
            m(RETENTION, "RetryPurge"),
            Admin,
            |w| json!({"runId": w.run_id}),
        ),
        call(
            m(RETENTION, "GetPurgeRun"),
            Admin,
            |w| json!({"runId": w.run_id}),
        ),
        call(
            m(RETENTION, "ListPurgeRuns"),
            Admin,
            |_| json!({"pageSize": 10}),
        ),
        call(
            m(RETENTION, "GetSchedule"),
            Admin,
            |w| json!({"subjectId": w.subject}),
        ),
        // --- rights
        keep(
            call(m(RIGHTS, "SubmitRequest"), Client, |w| {
                json!({"kind": "REQUEST_KIND_ACCESS", "regime": "REGIME_UK_GDPR",
                    "subjectId": w.subject, "credential": {"password": w.password},
                    "clientReference": "ticket-4711"})
            }),
            |w, r| w.request_id = text(r, "/request/requestId"),
        ),
        call(
            m(RIGHTS, "GetRequest"),
            Client,
            |w| json!({"requestId": w.request_id}),
        ),
        // Watched once completed: a watch open while the request completes is sent its
        // one-time download token in a message this fixture never reads (it reads the
        // first), and DownloadExport would then have no token to present.
        completed(first(call(
            m(RIGHTS, "WatchRequest"),
            Client,
            |w| json!({"requestId": w.request_id}),
        ))),
        call(
            m(RIGHTS, "ListRequests"),
            Admin,
            |_| json!({"pageSize": 10}),
        ),
        completed(call(
            m(RIGHTS, "DownloadExport"),
            Client,
            |w| json!({"requestId": w.request_id, "downloadToken": w.download_token}),
        )),
        call(m(RIGHTS, "VerifyRequest"), Client, |w| {
            json!({"requestId": w.request_pending, "subjectId": w.subject,
                "credential": {"password": w.password}})
        }),
        call(
            m(RIGHTS, "ExtendDeadline"),
            Admin,
            |w| json!({"requestId": w.request_cancel, "months": 1, "reason": "many records"}),
        ),
        call(
            m(RIGHTS, "CancelRequest"),
            Admin,
            |w| json!({"requestId": w.request_cancel, "reason": "withdrawn by the subject"}),
        ),
        call(m(RIGHTS, "GetReport"), Admin, |_| json!({"year": 2026})),
        keep(
            call(m(RIGHTS, "SubmitRequest"), Client, |w| {
                json!({"kind": "REQUEST_KIND_ACCESS", "regime": "REGIME_UK_GDPR",
                    "subjectId": w.subject_delete, "credential": {"sessionToken": w.session}})
            }),
            |w, r| w.request_deny = text(r, "/request/requestId"),
        ),
        call(m(RIGHTS, "DenyRequest"), Admin, |w| {
            json!({"requestId": w.request_deny,
                "reasons": ["the session presented is not the subject's"]})
        }),
        keep(
            call(m(RIGHTS, "ReportChild"), Client, |_| {
                json!({"email": "pupil.4711@example.org",
                    "reporterContact": "guardian.4711@example.org",
                    "notes": "my son is 15 and signed up for the newsletter"})
            }),
            |w, r| w.child_report = text(r, "/report/reportId"),
        ),
        call(
            m(RIGHTS, "ListChildReports"),
            Admin,
            |_| json!({"waitingOnly": true, "pageSize": 10}),
        ),
        // The account named is nobody's: confirming queues an erasure, which must not
        // touch the world's subjects (DeleteAccount runs later).
        call(m(RIGHTS, "ConfirmChildReport"), Admin, |w| {
            json!({"reportId": w.child_report,
                "subjectId": "0190a3c4-4711-7000-8000-000000004711",
                "verifiedBy": "DPO-CHILD-4711", "regime": "REGIME_UK_GDPR"})
        }),
        keep(
            call(m(RIGHTS, "ReportConcern"), Client, |_| {
                json!({"kind": "CONCERN_KIND_COMPLAINT",
                    "contactEmail": "worried.4711@example.org",
                    "description": "I keep getting newsletters I never asked for"})
            }),
            |w, r| w.concern = text(r, "/concern/concernId"),
        ),
        call(
            m(RIGHTS, "ListConcerns"),
            Admin,
            |_| json!({"openOnly": true, "pageSize": 10}),
        ),
        call(m(RIGHTS, "CloseConcern"), Admin, |w| {
            json!({"concernId": w.concern,
                "outcome": "Unsubscribed from every list; the sign-up form now asks first."})
        }),
        // --- every data-holding service's SubjectData, as rights and retention call it
        call(
            "pdm.subject.v1.SubjectDataService/ExportSubject",
            Service("rights"),
            |w| json!({"subjectId": w.subject, "requestId": format!("e2e-export-{}", w.tag)}),
        ),
        call(
            "pdm.subject.v1.SubjectDataService/RestrictSubject",
            Service("rights"),
            |w| {
                json!({"subjectId": w.subject_erase, "restricted": false,
                "requestId": format!("e2e-restrict-{}", w.tag)})
            },
        ),
        call(
            "pdm.subject.v1.SubjectDataService/EraseSubject",
            Service("rights"),
            |w| json!({"subjectId": w.subject_erase, "requestId": format!("e2e-erase-{}", w.tag)}),
        ),
        call(
            "pdm.subject.v1.SubjectDataService/PurgeExpired",
            Service("retention"),
            |w| {
                json!({"runId": format!("e2e-purge-{}", w.tag), "dryRun": true,
                "rules": [{"category": "account.session", "trigger": "RETENTION_TRIGGER_EVENT_TIME",
                    "cutoff": "2020-01-01T00:00:00Z"}]})
            },
        ),
        // Who is affected by a breach (issue 21), as the incidents service asks.
        call(
            "pdm.subject.v1.SubjectDataService/ListSubjectsHeld",
            Service("incidents"),
            |w| {
                json!({"incidentId": format!("e2e-incident-{}", w.tag),
                "category": "account.profile", "windowStart": "2020-01-01T00:00:00Z",
                "windowEnd": now(), "pageSize": 10})
            },
        ),
        // --- incidents (issue 21): the register, the privacy team's
        keep(
            call(m(INCIDENTS, "OpenIncident"), Admin, |w| {
                json!({"details": incident_details(w, "RISK_LEVEL_UNSPECIFIED", ""),
                    "actor": "privacy-team"})
            }),
            |w, r| w.incident_id = text(r, "/incident/incidentId"),
        ),
        call(
            m(INCIDENTS, "GetIncident"),
            Admin,
            |w| json!({"incidentId": w.incident_id}),
        ),
        call(
            m(INCIDENTS, "ListIncidents"),
            Admin,
            |_| json!({"status": "STATUS_OPEN", "pageSize": 10}),
        ),
        call(m(INCIDENTS, "AssessIncident"), Admin, |w| {
            json!({"incidentId": w.incident_id, "actor": "privacy-team",
                "details": incident_details(w, "RISK_LEVEL_UNLIKELY", "the file was encrypted")})
        }),
        call(
            m(INCIDENTS, "GetIncidentHistory"),
            Admin,
            |w| json!({"incidentId": w.incident_id}),
        ),
        call(m(INCIDENTS, "RecordAuthorityNotification"), Admin, |w| {
            json!({"incidentId": w.incident_id, "regime": "gdpr", "phase": "PHASE_INITIAL",
                "sentAt": now(), "content": "initial notification", "reference": "CASE-7",
                "actor": "privacy-team"})
        }),
        call(m(INCIDENTS, "ListOverdue"), Admin, |_| json!({})),
        call(m(INCIDENTS, "GetDpoContact"), Admin, |_| json!({})),
        call(m(INCIDENTS, "ListRegimes"), Admin, |_| json!({})),
        call(
            m(INCIDENTS, "FindAffected"),
            Admin,
            |w| json!({"incidentId": w.incident_id}),
        ),
        call(
            m(INCIDENTS, "ListAffected"),
            Admin,
            |w| json!({"incidentId": w.incident_id, "pageSize": 10}),
        ),
        // People told of a high-risk breach (Art. 34): the register asks rights.
        keep(
            call(m(INCIDENTS, "OpenIncident"), Admin, |w| {
                let mut details = incident_details(w, "RISK_LEVEL_HIGH", "emails exposed");
                details["likelyConsequences"] = json!("phishing emails");
                details["measuresTaken"] = json!("the partner deleted the file");
                json!({"details": details, "actor": "privacy-team"})
            }),
            |w, r| w.high_incident_id = text(r, "/incident/incidentId"),
        ),
        call(m(INCIDENTS, "NotifyPeople"), Admin, |w| {
            json!({"incidentId": w.high_incident_id, "actor": "privacy-team",
                "whatHappened": "a file with names and emails went to the wrong partner"})
        }),
        call(m(RIGHTS, "SendNotice"), Service("incidents"), |w| {
            json!({"incidentId": w.high_incident_id, "subjectId": w.subject,
                "whatHappened": "a file with names and emails went to the wrong partner",
                "likelyConsequences": "phishing emails",
                "measuresTaken": "the partner deleted the file"})
        }),
        call(
            m(RIGHTS, "ListNotices"),
            Service("incidents"),
            |w| json!({"incidentId": w.high_incident_id, "subjectIds": [w.subject]}),
        ),
        call(m(INCIDENTS, "CloseIncident"), Admin, |w| {
            json!({"incidentId": w.incident_id, "closureReason": "not notifiable",
                "actor": "privacy-team"})
        }),
        // --- the DPO's register of impact assessments (issue 21)
        keep(
            call(m(ASSESSMENTS, "RecordAssessment"), Admin, |_| {
                let next_review = chrono::Utc::now() + chrono::Duration::days(365);
                json!({"details": {"title": "Crash reports with device facts",
                    "processing": "Crash reports, with the device facts, kept 12 months.",
                    "purposes": ["crash_reporting"], "dataCategories": ["telemetry.crash"],
                    "risks": ["a crash payload may hold what the person typed"],
                    "measures": ["payloads sealed under the subject's key"],
                    "residualRisk": "RESIDUAL_RISK_LOW",
                    "dpoAdvice": "Proceed with the payloads sealed.",
                    "dpoAdviceFollowed": true,
                    "outcome": "ASSESSMENT_OUTCOME_PROCEED_WITH_MEASURES",
                    "assessedAt": now(),
                    "nextReviewAt": next_review.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)},
                    "actor": "privacy-team"})
            }),
            |w, r| w.assessment_id = text(r, "/assessment/assessmentId"),
        ),
        call(
            m(ASSESSMENTS, "GetAssessment"),
            Admin,
            |w| json!({"assessmentId": w.assessment_id, "includeHistory": true}),
        ),
        call(
            m(ASSESSMENTS, "ListAssessments"),
            Admin,
            |_| json!({"pageSize": 10}),
        ),
        call(m(ASSESSMENTS, "ListOverdueReviews"), Admin, |_| json!({})),
        // --- every service's access trail
        call("pdm.audit.v1.AuditService/VerifyAccessLog", Admin, |_| {
            json!({})
        }),
        call(
            "pdm.audit.v1.AuditService/ListAccesses",
            Admin,
            |w| json!({"subjectId": w.subject, "pageSize": 10}),
        ),
        // A head witnessed (any service for any other; the fixture's caller is one).
        call(
            "pdm.audit.v1.AuditService/WitnessHead",
            Service("rights"),
            |_| json!({"seq": 1, "mac": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}),
        ),
        call(
            "pdm.audit.v1.AuditService/ListWitnessedHeads",
            Admin,
            |_| json!({"service": "rights", "pageSize": 10}),
        ),
        call("pdm.audit.v1.AuditService/GetSignedHead", Admin, |_| {
            json!({})
        }),
        // --- last: an account closed
        call(m(IDENTITY, "DeleteAccount"), Client, |w| {
            json!({"subjectId": w.subject_delete, "password": w.password_delete,
                "reason": "DELETION_REASON_PRIVACY_CONCERNS"})
        }),
    ]
}
