//! People with data in every service of the mesh, made through the public API, and what
//! the suite later searches for once they are erased.

use serde_json::{Value, json};

use tonic::transport::Channel;

use crate::{grpc, process::Caller, suite::Suite};

/// A person the suite created, with every personal value it used.
#[derive(Debug, Clone)]
pub struct Person {
    /// Subject id.
    pub subject: String,
    /// Personal values (name, email, phone, billing name, ticket text…).
    pub values: Vec<String>,
}

const TEXT_HASH: &str = "9f2c6b1e0d3a4f5e6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c";

/// Registers a recipient with a mechanism, so transfers of people's data are logged;
/// returns its id.
pub async fn register_recipient(suite: &Suite) -> anyhow::Result<String> {
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let registered = suite
        .ok(
            Caller::Admin,
            "pdm.transfers.v1.TransfersService/RegisterRecipient",
            json!({"recipient": {"key": format!("crm-{}", &tag[20..]), "name": "CRM Provider",
                "role": "RECIPIENT_ROLE_PROCESSOR", "country": "US",
                "purposes": ["service_provision"], "dataCategories": ["account.profile"],
                "contractReference": "DPA-9", "contractDate": "2024-02-01"}}),
        )
        .await?;
    let recipient = registered["recipient"]["recipientId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    suite
        .ok(
            Caller::Admin,
            "pdm.transfers.v1.TransfersService/RecordMechanism",
            json!({"mechanism": {"recipientId": recipient, "kind": "MECHANISM_KIND_EU_SCC",
                "regimes": ["REGIME_EU", "REGIME_UK"], "sccModule": 2,
                "exporterRole": "PARTY_ROLE_CONTROLLER", "signedOn": "2024-02-01",
                "parties": ["DigitalAPICraft", "CRM Provider"],
                "validFrom": "2024-02-01T00:00:00Z", "expiresAt": "2031-01-01T00:00:00Z",
                "reviewDue": "2030-01-01T00:00:00Z", "status": "MECHANISM_STATUS_ACTIVE",
                "purposes": ["service_provision"], "dataCategories": ["account.profile"],
                "tia": {"reference": "TIA-9", "assessedOn": "2024-01-20",
                    "outcome": "TIA_OUTCOME_ADEQUATE"}}}),
        )
        .await?;
    Ok(recipient)
}

/// A person with an account, billing contact, support ticket, consent, usage events, a
/// crash report and a logged transfer.
pub async fn person_with_data(suite: &Suite, recipient: &str) -> anyhow::Result<Person> {
    // Letters only: a hex tag glued to a name can hold 13 digits in a row that pass the
    // Luhn check, and the card-number guard then refuses the name (a rare flake).
    let tag: String = uuid::Uuid::now_v7().simple().to_string()[18..]
        .chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from(b'g' + u8::try_from(d).unwrap_or(0)),
            None => c,
        })
        .collect();
    let last = format!("Hopper{tag}");
    let email = format!("grace.{tag}@example.net");
    let phone = format!("+4420794{}", &digits(&tag)[..5]);
    let billing = format!("Hopper{tag} Consulting");
    let ticket = format!("my invoice {tag} is wrong");
    let created = suite
        .ok(
            Caller::Client,
            "pdm.identity.v1.IdentityService/CreateAccount",
            json!({"firstName": "Grace", "lastName": last, "email": email, "phone": phone,
                "region": "REGION_UK", "password": format!("pw {tag} secret")}),
        )
        .await?;
    let subject = created["account"]["subjectId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(!subject.is_empty(), "no subject id: {created}");
    let calls: [(&str, Value); 6] = [
        (
            "pdm.identity.v1.IdentityService/SetBillingContact",
            json!({"subjectId": subject, "billingContact": {"name": billing, "email": email,
                "paymentProcessorRef": "cus_Q1w2E3r4"}}),
        ),
        (
            "pdm.identity.v1.IdentityService/CreateSupportTicket",
            json!({"subjectId": subject, "contact": email, "summary": "billing",
                "description": ticket}),
        ),
        (
            "pdm.consent.v1.ConsentService/GrantConsent",
            json!({"subjectId": subject, "purpose": "product_analytics",
                "source": "SOURCE_WEB_FORM", "policyVersion": "2024-06-28",
                "textHash": TEXT_HASH, "actor": "cookie-banner"}),
        ),
        (
            "pdm.telemetry.v1.TelemetryService/IngestEvents",
            json!({"batchId": format!("p-{tag}"), "events": (0..3).map(|_| json!({
                "subjectId": subject, "kind": "EVENT_KIND_FEATURE_USED",
                "occurredAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "feature": "invoices", "device": {"osName": "Linux"}})).collect::<Vec<_>>()}),
        ),
        (
            "pdm.telemetry.v1.TelemetryService/ReportCrash",
            json!({"subjectId": subject, "errorType": "Timeout", "message": "slow invoice page"}),
        ),
        (
            "pdm.transfers.v1.TransfersService/AuthorizeTransfer",
            json!({"regime": "REGIME_UK", "recipientId": recipient,
                "dataCategories": ["account.profile"], "purpose": "service_provision",
                "subjectId": subject, "exporterRole": "PARTY_ROLE_CONTROLLER"}),
        ),
    ];
    for (method, request) in calls {
        suite.ok(Caller::Client, method, request).await?;
    }
    Ok(Person {
        subject,
        values: vec![last, email, phone, billing, ticket],
    })
}

fn digits(tag: &str) -> String {
    let mut out: String = tag.bytes().map(|b| char::from(b'0' + b % 10)).collect();
    out.push_str("00000");
    out
}

/// Submits a request of `kind` for `subject`, vouched for by the privacy team; returns its id.
pub async fn submit(suite: &Suite, kind: &str, subject: &str) -> anyhow::Result<String> {
    submit_to(&suite.pdm.channel("rights", Caller::Admin)?, kind, subject).await
}

/// [`submit`] to the rights server behind `channel` (the privacy team's: `Caller::Admin`).
pub async fn submit_to(channel: &Channel, kind: &str, subject: &str) -> anyhow::Result<String> {
    let submitted = grpc::ok(
        channel,
        "pdm.rights.v1.RightsService/SubmitRequest",
        &submit_request(kind, subject, None),
    )
    .await?;
    let id = submitted["request"]["requestId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(!id.is_empty(), "no request id: {submitted}");
    // SubmitRequest answers from the row it stored, not a read of it: what it says of the
    // request is what any later read says (its times to the microsecond, as PostgreSQL
    // keeps them; its tasks, whose states move on meanwhile).
    let read = grpc::ok(
        channel,
        "pdm.rights.v1.RightsService/GetRequest",
        &json!({"requestId": id}),
    )
    .await?;
    for field in [
        "requestId",
        "kind",
        "regime",
        "subjectId",
        "receivedAt",
        "verifiedAt",
        "dueAt",
        "originalDueAt",
    ] {
        anyhow::ensure!(
            submitted["request"][field] == read["request"][field],
            "SubmitRequest answered {field} {} but GetRequest reads {}",
            submitted["request"][field],
            read["request"][field]
        );
    }
    let tasks = |answer: &Value| -> Vec<(Value, Value)> {
        let mut tasks: Vec<(Value, Value)> = answer["request"]["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| (t["service"].clone(), t["action"].clone()))
            .collect();
        tasks.sort_by_key(|t| t.0.to_string() + &t.1.to_string());
        tasks
    };
    anyhow::ensure!(
        tasks(&submitted) == tasks(&read) && !tasks(&read).is_empty(),
        "SubmitRequest answered tasks {:?} but GetRequest reads {:?}",
        tasks(&submitted),
        tasks(&read)
    );
    Ok(id)
}

/// The `SubmitRequest` of [`submit_to`]: a request of `kind` for `subject` under UK GDPR,
/// vouched for by the privacy team; with `reference` as its idempotency key (a retry with
/// the same key returns the first request).
pub fn submit_request(kind: &str, subject: &str, reference: Option<&str>) -> Value {
    let mut request = json!({"kind": kind, "regime": "REGIME_UK_GDPR", "subjectId": subject,
        "credential": {"operatorReference": "passport checked by the privacy team"}});
    if let Some(reference) = reference {
        request["clientReference"] = json!(reference);
    }
    request
}
