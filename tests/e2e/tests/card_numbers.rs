//! Policy, "Payment information": "We don't actually collect or store this sensitive
//! payment information ourselves." Every string field of every request, found from the
//! descriptors, is tried with card numbers in four layouts: each call is refused (or, for
//! crash reports, scrubbed), and afterwards no file under the data directory (databases,
//! WAL, outbox), no row and no log line holds the digits.

use std::collections::BTreeSet;

use pdm_e2e::{Suite, fields, grpc, world};
use tonic::Code;

/// Card numbers as people type them; each layout uses its own number so a find names it.
const CARDS: [&str; 4] = [
    "4111111111111111",
    "5500 0000 0000 0004",
    "3782-822463-10005",
    "qty 2 4012 8888 8888 1881",
];

/// What would be found in storage: each card as typed and as bare digits.
const STORED_FORMS: [&str; 7] = [
    "4111111111111111",
    "5500 0000 0000 0004",
    "5500000000000004",
    "3782-822463-10005",
    "378282246310005",
    "4012 8888 8888 1881",
    "4012888888881881",
];

/// Fields that may answer `OK` with a card in them, and why that stores nothing (the
/// search of every file and row at the end holds them to it).
const ACCEPTED: &[(&str, &str)] = &[
    (
        "pdm.telemetry.v1.TelemetryService/ReportCrash message",
        "scrubbed to <card>",
    ),
    (
        "pdm.telemetry.v1.TelemetryService/ReportCrash stack_trace",
        "scrubbed to <card>",
    ),
    (
        "pdm.telemetry.v1.TelemetryService/ReportCrash error_type",
        "scrubbed to <card>",
    ),
    (
        "pdm.telemetry.v1.TelemetryService/IngestEvents events[0].device.device_id",
        "only its keyed hash is kept (an IMEI passes the Luhn check)",
    ),
    (
        "pdm.telemetry.v1.TelemetryService/ReportCrash device.device_id",
        "only its keyed hash is kept (an IMEI passes the Luhn check)",
    ),
    (
        "pdm.telemetry.v1.TelemetryService/RecordTrackingChoice device_id",
        "only its keyed hash is kept (an IMEI passes the Luhn check)",
    ),
    (
        "pdm.telemetry.v1.TelemetryService/GetTrackingChoice device_id",
        "only its keyed hash is kept (an IMEI passes the Luhn check)",
    ),
    (
        "pdm.rights.v1.RightsService/SubmitRequest credential.password",
        "checked by identity, never stored",
    ),
    (
        "pdm.rights.v1.RightsService/SubmitRequest credential.session_token",
        "checked by identity, never stored",
    ),
    (
        "pdm.rights.v1.RightsService/VerifyRequest credential.password",
        "checked by identity, never stored",
    ),
    (
        "pdm.rights.v1.RightsService/VerifyRequest credential.session_token",
        "checked by identity, never stored",
    ),
    (
        "pdm.consent.v1.ConsentService/CheckProcessing purpose",
        "a question: answered REASON_UNKNOWN_PURPOSE",
    ),
    (
        "pdm.consent.v1.ConsentService/BatchCheckProcessing items[0].purpose",
        "a question: answered REASON_UNKNOWN_PURPOSE",
    ),
    (
        "pdm.audit.v1.AuditService/ListAccesses page_token",
        "a position in the trail, read as a number",
    ),
    (
        "pdm.identity.v1.IdentityService/CreateSupportTicket attachments[0].content_type",
        "ignored: the type is recognised from the content",
    ),
    (
        "pdm.transfers.v1.TransfersService/RegisterRecipient recipient.recipient_id",
        "output only: ignored",
    ),
    (
        "pdm.transfers.v1.TransfersService/RecordMechanism mechanism.mechanism_id",
        "output only: ignored",
    ),
    (
        "pdm.retention.v1.RetentionService/PlaceLegalHold hold.hold_id",
        "output only: ignored",
    ),
    (
        "pdm.retention.v1.RetentionService/PlaceLegalHold hold.released_by",
        "output only: ignored",
    ),
    // Only retention calls PurgeExpired, with its own categories and hold ids; a service
    // ignores a category it does not hold and a hold that covers nothing of it.
    (
        "pdm.subject.v1.SubjectDataService/PurgeExpired rules[0].category",
        "retention's own keys: unknown ones ignored",
    ),
    (
        "pdm.subject.v1.SubjectDataService/PurgeExpired holds[0].hold_id",
        "retention's own ids: unknown ones ignored",
    ),
];

/// Whether a violation's field names `field` (`items[0]` for a list's first item).
fn names(violation: &str, field: &fields::StringField) -> bool {
    let path = field.path();
    violation == path || violation.starts_with(&format!("{path}[")) || violation == field.leaf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_numbers_are_refused_or_scrubbed_in_every_free_text_field() -> anyhow::Result<()> {
    let mut suite = Suite::start().await?;
    suite.set_up_world().await?;
    suite
        .world
        .personal
        .extend(STORED_FORMS.iter().map(|s| (*s).to_owned()));
    let fixtures = world::fixtures();
    for fixture in &fixtures {
        suite.run(fixture).await?;
    }

    let mut problems = Vec::new();
    let mut tried = 0;
    let mut codes: std::collections::BTreeMap<String, usize> = Default::default();
    let accepted: BTreeSet<String> = ACCEPTED.iter().map(|(f, _)| (*f).to_owned()).collect();
    for fixture in &fixtures {
        let method = grpc::method(fixture.method)?;
        let request = (fixture.request)(&suite.world);
        let server = suite
            .servers_of(method.parent_service().full_name())
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("nobody serves {}", fixture.method))?;
        for field in fields::string_fields(&method.input(), 3) {
            for card in CARDS {
                tried += 1;
                let changed = field.set(&request, card);
                let answer = match suite
                    .call(&server, fixture.caller, &method, &changed, world::Read::All)
                    .await
                {
                    Ok(answer) => answer,
                    Err(e) => {
                        problems.push(format!(
                            "{} {}: no status ({e:#})",
                            fixture.method,
                            field.path()
                        ));
                        continue;
                    }
                };
                *codes.entry(format!("{:?}", answer.code)).or_default() += 1;
                let key = format!("{} {}", fixture.method, field.path());
                match answer.code {
                    Code::Internal | Code::Unknown | Code::Cancelled => {
                        problems.push(format!(
                            "{key} with {card:?}: {:?} {}",
                            answer.code, answer.message
                        ));
                    }
                    Code::Ok if !accepted.contains(&key) => {
                        problems.push(format!("{key} accepted {card:?}"));
                    }
                    // A field set in an element the valid request did not have may bring
                    // other violations (the element's required fields) instead.
                    Code::InvalidArgument
                        if !field.adds_element(&request)
                            && !answer.violations.iter().any(|v| names(v, &field)) =>
                    {
                        problems.push(format!(
                            "{key} with {card:?}: INVALID_ARGUMENT without a violation for the field: {:?}",
                            answer.violations
                        ));
                    }
                    _ => {}
                }
            }
        }
    }
    println!("card numbers tried: {tried} calls; answers: {codes:?}");
    anyhow::ensure!(
        problems.is_empty(),
        "{} problems: {problems:#?}",
        problems.len()
    );

    // Nothing of them anywhere: every file under the data directory, every row.
    let mut found = Vec::new();
    for file in suite.pdm.data_files() {
        let bytes = std::fs::read(&file)?;
        for form in STORED_FORMS {
            if bytes.windows(form.len()).any(|w| w == form.as_bytes()) {
                found.push(format!("{} in {}", form, file.display()));
            }
        }
    }
    if suite.pdm.backend().is_postgres() {
        let dump = suite.pdm.backend().dump(&suite.pdm.data_dir()).await?;
        for form in STORED_FORMS {
            for line in dump.lines().filter(|l| l.contains(form)) {
                found.push(format!("{form} in the row {line}"));
            }
        }
    }
    anyhow::ensure!(found.is_empty(), "card numbers stored: {found:#?}");
    suite.finish().await
}
