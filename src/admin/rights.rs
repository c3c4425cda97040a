//! `pdm rights …`: the privacy team's queue of data-subject requests.

use std::{io::Write as _, path::PathBuf};

use anyhow::Context as _;
use chrono::{Datelike, Utc};
use clap::Subcommand;
use pdm_proto::rights::v1::{
    ChildReportStatus, ConfirmChildReportRequest, Credential, DataSubjectRequest, DeliveryError,
    DeliveryStatus, DenyRequestRequest, DownloadExportRequest, ExtendDeadlineRequest,
    GetReportRequest, GetRequestRequest, ListChildReportsRequest, ListRequestsRequest, Regime,
    RequestKind, Status, SubmitRequestRequest, credential,
    rights_service_client::RightsServiceClient,
};
use pdm_runtime::Settings;

use super::{channel, print_table};

/// `pdm rights` subcommands.
#[derive(Debug, Subcommand)]
pub enum RightsCommand {
    // The commands that call the rights service (listed first in the help).
    #[command(flatten)]
    Service(ServiceCommand),
    /// The local mailbox (the default message sink): every message sent, opened while its
    /// subject exists; an erased subject's messages show as shredded. Reads the rights
    /// database and the KEK of this configuration directly, as the file is local.
    Mailbox {
        /// Mailbox file (default: `rights.outbox_file`, else
        /// `<data_dir>/outbox/messages.jsonl`).
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

/// The `pdm rights` subcommands answered by the rights service.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Open requests, soonest due first, with the days left.
    Queue {
        /// Only overdue requests.
        #[arg(long)]
        overdue: bool,
    },
    /// One request with its per-service status.
    Show {
        /// Request id.
        request_id: String,
    },
    /// Record a request received out of band (e.g. by email to the DPO), verified by the
    /// privacy team.
    Submit {
        /// access, portability, rectification, erasure, restriction, objection, ccpa-know,
        /// ccpa-delete, ccpa-opt-out.
        #[arg(long)]
        kind: String,
        /// gdpr, uk-gdpr, swiss, ccpa.
        #[arg(long, default_value = "gdpr")]
        regime: String,
        /// Subject id.
        #[arg(long)]
        subject: String,
        /// The reference of the out-of-band identity check.
        #[arg(long)]
        verified_by: String,
        /// Purpose (objections).
        #[arg(long, default_value = "")]
        purpose: String,
        /// The request concerns a child's data: handled first.
        #[arg(long)]
        child: bool,
        /// When the letter or email arrived (RFC 3339, or a date taken as its start in
        /// UTC); the deadline runs from it. Default: now.
        #[arg(long)]
        received: Option<String>,
    },
    /// Extend a deadline, with the reason the subject will be told.
    Extend {
        /// Request id.
        request_id: String,
        /// Further months (GDPR regimes: 1 or 2; CCPA: 45 days whatever this says).
        #[arg(long, default_value_t = 1)]
        months: i32,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Refuse a request, with the reasons the subject will be told (with their right to
    /// complain to the ICO or their local supervisory authority).
    Deny {
        /// Request id.
        request_id: String,
        /// A reason (one line, at most 1,000 characters); repeat for several (at most 10).
        #[arg(long = "reason", required = true)]
        reasons: Vec<String>,
    },
    /// Reports of a child's data ("Our policy towards the Children"), oldest first, with
    /// the email named and the reporter's contact.
    Children {
        /// Only reports waiting for confirmation.
        #[arg(long)]
        waiting: bool,
    },
    /// Confirm a child report after checking it: the subject's erasure is queued ahead of
    /// everything else, due in 72 hours, and the reporter is told when it is done.
    ConfirmChild {
        /// Report id.
        report_id: String,
        /// The account to erase (required when the report named only an email).
        #[arg(long, default_value = "")]
        subject: String,
        /// The reference of the out-of-band check.
        #[arg(long)]
        verified_by: String,
        /// gdpr, uk-gdpr, swiss, ccpa.
        #[arg(long, default_value = "gdpr")]
        regime: String,
    },
    /// Download the package of a completed access or portability request.
    Download {
        /// Request id.
        request_id: String,
        /// File to write (default: <request id>.json).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The yearly report: received, complied with, denied, median days to answer.
    Report {
        /// Year (default: this year).
        #[arg(long)]
        year: Option<i32>,
    },
}

fn short(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_lowercase()
}

fn day(ts: Option<prost_types::Timestamp>) -> String {
    ts.and_then(|t| pdm_runtime::convert::from_timestamp(&t))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "-".into())
}

fn days_left(r: &DataSubjectRequest) -> String {
    let Some(due) = r
        .due_at
        .as_ref()
        .and_then(pdm_runtime::convert::from_timestamp)
    else {
        return "-".into();
    };
    let days = (due - Utc::now()).num_days();
    if r.overdue {
        format!("OVERDUE by {}", -days)
    } else {
        days.to_string()
    }
}

fn parse_kind(raw: &str) -> anyhow::Result<RequestKind> {
    let name = format!("REQUEST_KIND_{}", raw.replace('-', "_").to_uppercase());
    RequestKind::from_str_name(&name).with_context(|| format!("unknown kind {raw:?}"))
}

fn parse_regime(raw: &str) -> anyhow::Result<Regime> {
    let name = format!("REGIME_{}", raw.replace('-', "_").to_uppercase());
    Regime::from_str_name(&name).with_context(|| format!("unknown regime {raw:?}"))
}

fn print_request(r: &DataSubjectRequest) {
    println!(
        "request {}\n  kind {}  regime {}  status {}\n  subject {}\n  received {}  due {}  (first deadline {})  days left {}",
        r.request_id,
        short(
            RequestKind::try_from(r.kind)
                .unwrap_or_default()
                .as_str_name(),
            "REQUEST_KIND_"
        ),
        short(
            Regime::try_from(r.regime).unwrap_or_default().as_str_name(),
            "REGIME_"
        ),
        short(
            Status::try_from(r.status).unwrap_or_default().as_str_name(),
            "STATUS_"
        ),
        if r.subject_id.is_empty() {
            "(not verified)"
        } else {
            &r.subject_id
        },
        day(r.received_at),
        day(r.due_at),
        day(r.original_due_at),
        days_left(r),
    );
    if !r.extension_reason.is_empty() {
        println!("  extended: {}", r.extension_reason);
    }
    if let Some(refusal) = &r.refusal {
        println!("  refused:");
        for reason in &refusal.reasons {
            println!("    - {reason}");
        }
        println!(
            "  subject told: {}\n  {}",
            day(refusal.notified_at),
            refusal.right_to_complain
        );
    } else if !r.outcome_reason.is_empty() {
        println!("  outcome: {}", r.outcome_reason);
    }
}

/// The latest date by which the key store backups holding a key an erasure of the
/// request destroyed are gone (each service's receipt states its own).
fn backups_gone_by(r: &DataSubjectRequest) -> Option<prost_types::Timestamp> {
    r.tasks
        .iter()
        .filter_map(|t| t.receipt.as_ref())
        .filter(|rc| rc.key_destroyed)
        .filter_map(|rc| rc.key_backups_gone_by)
        .max_by_key(|t| (t.seconds, t.nanos))
}

fn minute(ts: Option<prost_types::Timestamp>) -> String {
    ts.and_then(|t| pdm_runtime::convert::from_timestamp(&t))
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".into())
}

/// The messages the subject was sent about the request and how their delivery went
/// (categories only: no address is kept or shown).
fn print_messages(r: &DataSubjectRequest) {
    println!();
    if r.messages.is_empty() {
        println!("messages to the subject: none (no address known)");
        return;
    }
    let rows: Vec<Vec<String>> = r
        .messages
        .iter()
        .map(|m| {
            let error = DeliveryError::try_from(m.last_error).unwrap_or_default();
            vec![
                m.topic.clone(),
                short(
                    DeliveryStatus::try_from(m.status)
                        .unwrap_or_default()
                        .as_str_name(),
                    "DELIVERY_STATUS_",
                ),
                m.attempts.to_string(),
                minute(m.queued_at),
                minute(m.sent_at),
                if error == DeliveryError::Unspecified {
                    String::new()
                } else {
                    short(error.as_str_name(), "DELIVERY_ERROR_")
                },
                minute(m.next_attempt_at),
            ]
        })
        .collect();
    print_table(
        &[
            "MESSAGE",
            "DELIVERY",
            "ATTEMPTS",
            "QUEUED",
            "SENT",
            "LAST ERROR",
            "NEXT TRY",
        ],
        &rows,
    );
}

/// Runs a rights command.
pub async fn run(settings: &Settings, command: RightsCommand) -> anyhow::Result<()> {
    match command {
        // Local: no channel to the rights service, nor its certificates, needed.
        RightsCommand::Mailbox { file } => mailbox(settings, file.as_deref()).await,
        RightsCommand::Service(command) => call(settings, command).await,
    }
}

/// Runs a command against the rights service.
async fn call(settings: &Settings, command: ServiceCommand) -> anyhow::Result<()> {
    let mut client = RightsServiceClient::new(channel(settings, "rights")?)
        .max_decoding_message_size(usize::MAX);
    match command {
        ServiceCommand::Queue { overdue } => {
            let mut rows = Vec::new();
            for status in [Status::VerificationRequired, Status::InProgress] {
                let page = client
                    .list_requests(ListRequestsRequest {
                        status: status as i32,
                        overdue_only: overdue,
                        page_size: 500,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                rows.extend(page.requests);
            }
            rows.sort_by_key(|r| r.due_at.map(|t| (t.seconds, t.nanos)));
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.request_id.clone(),
                        short(
                            RequestKind::try_from(r.kind)
                                .unwrap_or_default()
                                .as_str_name(),
                            "REQUEST_KIND_",
                        ),
                        short(
                            Regime::try_from(r.regime).unwrap_or_default().as_str_name(),
                            "REGIME_",
                        ),
                        short(
                            Status::try_from(r.status).unwrap_or_default().as_str_name(),
                            "STATUS_",
                        ),
                        day(r.received_at),
                        day(r.due_at),
                        days_left(r),
                        if r.concerns_child {
                            "child".into()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect();
            print_table(
                &[
                    "REQUEST",
                    "KIND",
                    "REGIME",
                    "STATUS",
                    "RECEIVED",
                    "DUE",
                    "DAYS LEFT",
                    "",
                ],
                &table,
            );
        }
        ServiceCommand::Show { request_id } => {
            let r = client
                .get_request(GetRequestRequest {
                    request_id,
                    ..Default::default()
                })
                .await?
                .into_inner()
                .request
                .context("no request")?;
            print_request(&r);
            let tasks: Vec<Vec<String>> = r
                .tasks
                .iter()
                .map(|t| {
                    let kept = t
                        .receipt
                        .as_ref()
                        .map(|rc| {
                            rc.retained
                                .iter()
                                .map(|k| k.category.clone())
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default();
                    vec![
                        t.service.clone(),
                        t.action.clone(),
                        t.status.clone(),
                        t.attempts.to_string(),
                        day(t.done_at),
                        kept,
                        t.last_error.clone(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "SERVICE",
                    "ACTION",
                    "STATUS",
                    "ATTEMPTS",
                    "DONE",
                    "KEPT",
                    "LAST ERROR",
                ],
                &tasks,
            );
            if let Some(gone) = backups_gone_by(&r) {
                println!(
                    "keys destroyed; key store backups that could still open the erased data are \
                     deleted by {} (crypto.key_backup_days)",
                    day(Some(gone))
                );
            }
            print_messages(&r);
        }
        ServiceCommand::Submit {
            kind,
            regime,
            subject,
            verified_by,
            purpose,
            child,
            received,
        } => {
            let received_at = received
                .as_deref()
                .map(parse_received)
                .transpose()?
                .map(pdm_runtime::convert::timestamp);
            let r = client
                .submit_request(SubmitRequestRequest {
                    kind: parse_kind(&kind)? as i32,
                    regime: parse_regime(&regime)? as i32,
                    subject_id: subject,
                    credential: Some(Credential {
                        credential: Some(credential::Credential::OperatorReference(verified_by)),
                    }),
                    purpose,
                    concerns_child: child,
                    received_at,
                    ..Default::default()
                })
                .await?
                .into_inner()
                .request
                .context("no request")?;
            print_request(&r);
        }
        ServiceCommand::Extend {
            request_id,
            months,
            reason,
        } => {
            let r = client
                .extend_deadline(ExtendDeadlineRequest {
                    request_id,
                    months,
                    reason,
                })
                .await?
                .into_inner()
                .request
                .context("no request")?;
            print_request(&r);
        }
        ServiceCommand::Deny {
            request_id,
            reasons,
        } => {
            let r = client
                .deny_request(DenyRequestRequest {
                    request_id,
                    reasons,
                })
                .await?
                .into_inner()
                .request
                .context("no request")?;
            print_request(&r);
        }
        ServiceCommand::Children { waiting } => {
            let mut rows = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_child_reports(ListChildReportsRequest {
                        waiting_only: waiting,
                        page_size: 500,
                        page_token,
                    })
                    .await?
                    .into_inner();
                rows.extend(page.reports.into_iter().map(|r| {
                    vec![
                        r.report_id,
                        short(
                            ChildReportStatus::try_from(r.status)
                                .unwrap_or_default()
                                .as_str_name(),
                            "CHILD_REPORT_STATUS_",
                        ),
                        day(r.received_at),
                        if r.subject_id.is_empty() {
                            r.email
                        } else {
                            r.subject_id
                        },
                        r.reporter_contact,
                        r.erasure_request_id,
                    ]
                }));
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            print_table(
                &[
                    "REPORT", "STATUS", "RECEIVED", "CONCERNS", "REPORTER", "ERASURE",
                ],
                &rows,
            );
        }
        ServiceCommand::ConfirmChild {
            report_id,
            subject,
            verified_by,
            regime,
        } => {
            let confirmed = client
                .confirm_child_report(ConfirmChildReportRequest {
                    report_id,
                    subject_id: subject,
                    verified_by,
                    regime: parse_regime(&regime)? as i32,
                })
                .await?
                .into_inner();
            let r = confirmed.request.context("no request")?;
            println!("child report confirmed: erasure queued first, due in 72 hours");
            print_request(&r);
        }
        ServiceCommand::Download { request_id, out } => {
            let path = out.unwrap_or_else(|| PathBuf::from(format!("{request_id}.json")));
            let mut stream = client
                .download_export(DownloadExportRequest {
                    request_id,
                    ..Default::default()
                })
                .await?
                .into_inner();
            let mut file = std::fs::File::create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut bytes = 0usize;
            while let Some(chunk) = stream.message().await? {
                bytes += chunk.chunk.len();
                file.write_all(&chunk.chunk)?;
            }
            println!("wrote {bytes} bytes to {}", path.display());
        }
        ServiceCommand::Report { year } => {
            let year = year.unwrap_or_else(|| Utc::now().year());
            let report = client
                .get_report(GetReportRequest { year })
                .await?
                .into_inner();
            let rows: Vec<Vec<String>> = report
                .kinds
                .iter()
                .map(|k| {
                    vec![
                        short(
                            RequestKind::try_from(k.kind)
                                .unwrap_or_default()
                                .as_str_name(),
                            "REQUEST_KIND_",
                        ),
                        k.received.to_string(),
                        k.complied.to_string(),
                        k.denied.to_string(),
                        format!("{:.1}", k.median_days_to_answer),
                    ]
                })
                .collect();
            println!("data-subject requests received in {year}");
            print_table(
                &["KIND", "RECEIVED", "COMPLIED", "DENIED", "MEDIAN DAYS"],
                &rows,
            );
            // Erasures and CCPA deletions together, per reason.
            let mut by_reason = std::collections::BTreeMap::<String, u32>::new();
            for r in report.kinds.iter().flat_map(|k| k.deletion_reasons.iter()) {
                *by_reason
                    .entry(short(&r.reason, "DELETION_REASON_"))
                    .or_default() += r.count;
            }
            let reasons: Vec<Vec<String>> = by_reason
                .into_iter()
                .map(|(reason, n)| vec![reason, n.to_string()])
                .collect();
            if !reasons.is_empty() {
                println!("\nreasons given for deleting an account");
                print_table(&["REASON", "ERASURES"], &reasons);
            }
        }
    }
    Ok(())
}

/// Prints the local mailbox, oldest first.
async fn mailbox(settings: &Settings, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let (path, entries) = pdm_rights::mailbox::read_configured(settings, file).await?;
    println!("{} ({} messages)", path.display(), entries.len());
    for e in entries {
        println!(
            "\nmessage {}  request {}  topic {}",
            e.message_id, e.request_id, e.topic
        );
        match e.letter {
            Some(letter) => println!(
                "To: {}\nSubject: {}\n\n{}",
                letter.to,
                letter.subject,
                letter.body.trim_end()
            ),
            None => println!("(shredded: its subject was erased)"),
        }
    }
    Ok(())
}

/// A receipt time: RFC 3339, or a date (its start, UTC).
fn parse_received(raw: &str) -> anyhow::Result<chrono::DateTime<Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .with_context(|| format!("--received {raw:?}: a date (2026-11-24) or RFC 3339"))?;
    Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}
