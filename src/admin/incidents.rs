//! `pdm incidents …`: the breach register for the privacy team. Open an incident, show it
//! (with its clocks, notifications and history), assess it (only the values given change:
//! the rest are read back first, and the change is made against the version read), record
//! a notification sent to an authority, close it, list the overdue ones, list the register,
//! show the DPO's contact; find and list the people affected (`affected`), and tell them
//! (`notify-people`, page after page until everyone is told).

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use pdm_proto::incidents::v1::{
    self as pb, Nature, Phase, RiskLevel, incidents_service_client::IncidentsServiceClient,
};
use pdm_runtime::{
    Settings,
    client::TracedChannel,
    convert::{from_timestamp, timestamp},
};

use super::{channel, print_table};

type Client = IncidentsServiceClient<TracedChannel>;

/// `pdm incidents` subcommands.
#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// Record a new incident (every breach is recorded, notified or not).
    Open {
        #[command(flatten)]
        details: DetailArgs,
        /// Who is recording it.
        #[arg(long, env = "USER", default_value = "")]
        actor: String,
    },
    /// An incident: its details, deadlines, notifications (and with --history, every version).
    Show {
        /// The incident's id.
        id: String,
        /// Every version, oldest first.
        #[arg(long)]
        history: bool,
    },
    /// Change an open incident: the values given replace the current ones.
    Assess {
        /// The incident's id.
        id: String,
        #[command(flatten)]
        details: DetailArgs,
        /// Who is changing it.
        #[arg(long, env = "USER", default_value = "")]
        actor: String,
    },
    /// Record a notification sent to a regime's supervisory authority.
    NotifyAuthority {
        /// The incident's id.
        id: String,
        /// The regime (one of the incident's, e.g. gdpr).
        #[arg(long)]
        regime: String,
        /// initial, follow-up or final.
        #[arg(long)]
        phase: String,
        /// When it was sent (RFC 3339); default now.
        #[arg(long)]
        sent_at: Option<String>,
        /// What was sent.
        #[arg(long, conflicts_with = "content_file")]
        content: Option<String>,
        /// A file holding what was sent.
        #[arg(long)]
        content_file: Option<std::path::PathBuf>,
        /// The authority's case number or our reference.
        #[arg(long, default_value = "")]
        reference: String,
        /// Why an initial notification is late.
        #[arg(long, default_value = "")]
        delay_reason: String,
        /// Who is recording it.
        #[arg(long, env = "USER", default_value = "")]
        actor: String,
    },
    /// Close an incident (its risk assessed; the authority finally notified unless the
    /// risk is unlikely).
    Close {
        /// The incident's id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Who is closing it.
        #[arg(long, env = "USER", default_value = "")]
        actor: String,
    },
    /// Open incidents past an authority deadline without their initial notification.
    Overdue,
    /// The register, newest first.
    List {
        /// Only open incidents.
        #[arg(long)]
        open: bool,
    },
    /// The Data Protection Officer's contact, and the regime table.
    Dpo,
    /// The people affected by an incident (ids, the services that held their data, their
    /// region, their notice) and how many live in each region: with --find, asks the data
    /// services (and identity, for the regions) first.
    Affected {
        /// The incident's id.
        id: String,
        /// Ask the data services who is affected first (FindAffected).
        #[arg(long)]
        find: bool,
        /// Only the counts (all, and per region).
        #[arg(long)]
        count: bool,
    },
    /// Tell each person affected by a high-risk incident, once (Art. 34), through the
    /// rights service's outbox; run again to resume a run cut short.
    NotifyPeople {
        /// The incident's id.
        id: String,
        /// What happened, in clear language for the people told (first run only).
        #[arg(long, conflicts_with = "what_happened_file")]
        what_happened: Option<String>,
        /// A file holding what happened.
        #[arg(long)]
        what_happened_file: Option<std::path::PathBuf>,
        /// People told per call (0: the service's default).
        #[arg(long, default_value_t = 0)]
        batch: i32,
        /// Who is sending the notices.
        #[arg(long, env = "USER", default_value = "")]
        actor: String,
    },
}

/// The details of `open` and `assess`.
#[derive(Debug, Args)]
pub struct DetailArgs {
    /// A short summary (no names).
    #[arg(long)]
    title: Option<String>,
    /// When the breach was detected (RFC 3339).
    #[arg(long)]
    detected_at: Option<String>,
    /// When we became aware personal data was breached (RFC 3339): the clocks start here.
    #[arg(long)]
    aware_at: Option<String>,
    /// What happened.
    #[arg(long, conflicts_with = "description_file")]
    description: Option<String>,
    /// A file holding what happened.
    #[arg(long)]
    description_file: Option<std::path::PathBuf>,
    /// confidentiality, integrity, availability (repeat or comma-separate).
    #[arg(long = "nature", value_delimiter = ',')]
    natures: Vec<String>,
    /// Data categories concerned (repeat or comma-separate).
    #[arg(long = "category", value_delimiter = ',')]
    categories: Vec<String>,
    /// Services or systems concerned (repeat or comma-separate).
    #[arg(long = "service", value_delimiter = ',')]
    services: Vec<String>,
    /// Start of the exposure window (RFC 3339).
    #[arg(long)]
    window_start: Option<String>,
    /// End of the exposure window (RFC 3339).
    #[arg(long)]
    window_end: Option<String>,
    /// Approximate number of people concerned.
    #[arg(long)]
    subjects: Option<i64>,
    /// Approximate number of records concerned.
    #[arg(long)]
    records: Option<i64>,
    /// Likely consequences.
    #[arg(long)]
    consequences: Option<String>,
    /// Measures taken or proposed.
    #[arg(long)]
    measures: Option<String>,
    /// unlikely, risk or high.
    #[arg(long)]
    risk: Option<String>,
    /// Why that risk level.
    #[arg(long)]
    risk_reasoning: Option<String>,
    /// Regimes whose clocks apply (repeat or comma-separate; open: default gdpr,uk_gdpr).
    #[arg(long = "regime", value_delimiter = ',')]
    regimes: Vec<String>,
}

fn time(raw: &str) -> anyhow::Result<prost_types::Timestamp> {
    let t = DateTime::parse_from_rfc3339(raw)
        .with_context(|| format!("not an RFC 3339 time: {raw}"))?;
    Ok(timestamp(t.with_timezone(&Utc)))
}

fn show_time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(from_timestamp)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

fn enum_value(prefix: &str, raw: &str, parse: impl Fn(&str) -> Option<i32>) -> anyhow::Result<i32> {
    let name = format!(
        "{prefix}{}",
        raw.trim().replace('-', "_").to_ascii_uppercase()
    );
    parse(&name).with_context(|| format!("unknown value {raw:?}"))
}

fn name(raw: &str, prefix: &str) -> String {
    raw.trim_start_matches(prefix)
        .to_lowercase()
        .replace('_', "-")
}

impl DetailArgs {
    /// `base` with the values given here.
    fn apply(self, mut d: pb::IncidentDetails) -> anyhow::Result<pb::IncidentDetails> {
        if let Some(v) = self.title {
            d.title = v;
        }
        if let Some(v) = self.detected_at {
            d.detected_at = Some(time(&v)?);
        }
        if let Some(v) = self.aware_at {
            d.aware_at = Some(time(&v)?);
        }
        if let Some(v) = self.description {
            d.description = v;
        }
        if let Some(path) = self.description_file {
            d.description = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
        }
        if !self.natures.is_empty() {
            d.natures = self
                .natures
                .iter()
                .map(|n| enum_value("NATURE_", n, |s| Nature::from_str_name(s).map(|v| v as i32)))
                .collect::<anyhow::Result<_>>()?;
        }
        if !self.categories.is_empty() {
            d.data_categories = self.categories;
        }
        if !self.services.is_empty() {
            d.services = self.services;
        }
        if let Some(v) = self.window_start {
            d.window_start = Some(time(&v)?);
        }
        if let Some(v) = self.window_end {
            d.window_end = Some(time(&v)?);
        }
        if let Some(v) = self.subjects {
            d.approximate_subjects = v;
        }
        if let Some(v) = self.records {
            d.approximate_records = v;
        }
        if let Some(v) = self.consequences {
            d.likely_consequences = v;
        }
        if let Some(v) = self.measures {
            d.measures_taken = v;
        }
        if let Some(v) = self.risk {
            d.risk = enum_value("RISK_LEVEL_", &v, |s| {
                RiskLevel::from_str_name(s).map(|v| v as i32)
            })?;
        }
        if let Some(v) = self.risk_reasoning {
            d.risk_reasoning = v;
        }
        if !self.regimes.is_empty() {
            d.regimes = self.regimes;
        }
        Ok(d)
    }
}

/// Runs an incidents command.
pub async fn run(settings: &Settings, command: IncidentsCommand) -> anyhow::Result<()> {
    let mut client = IncidentsServiceClient::new(channel(settings, "incidents")?);
    match command {
        IncidentsCommand::Open { details, actor } => {
            let base = pb::IncidentDetails {
                regimes: vec!["gdpr".into(), "uk_gdpr".into()],
                ..Default::default()
            };
            let incident = client
                .open_incident(pb::OpenIncidentRequest {
                    details: Some(details.apply(base)?),
                    actor,
                })
                .await?
                .into_inner()
                .incident
                .context("no incident in the answer")?;
            println!("opened {}", incident.incident_id);
            print_incident(&incident);
        }
        IncidentsCommand::Show { id, history } => {
            let incident = get(&mut client, &id).await?;
            print_incident(&incident);
            if history {
                print_history(&mut client, &id).await?;
            }
        }
        IncidentsCommand::Assess { id, details, actor } => {
            let current = get(&mut client, &id).await?;
            let incident = client
                .assess_incident(pb::AssessIncidentRequest {
                    incident_id: id,
                    details: Some(details.apply(current.details.unwrap_or_default())?),
                    actor,
                    expected_version: current.version,
                })
                .await?
                .into_inner()
                .incident
                .context("no incident in the answer")?;
            println!("version {}", incident.version);
            print_incident(&incident);
        }
        IncidentsCommand::NotifyAuthority {
            id,
            regime,
            phase,
            sent_at,
            content,
            content_file,
            reference,
            delay_reason,
            actor,
        } => {
            let content = match (content, content_file) {
                (Some(c), _) => c,
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
                (None, None) => anyhow::bail!("--content or --content-file"),
            };
            let sent_at = match sent_at {
                Some(raw) => time(&raw)?,
                None => timestamp(Utc::now()),
            };
            let answer = client
                .record_authority_notification(pb::RecordAuthorityNotificationRequest {
                    incident_id: id,
                    regime,
                    phase: enum_value("PHASE_", &phase, |s| {
                        Phase::from_str_name(s).map(|v| v as i32)
                    })?,
                    sent_at: Some(sent_at),
                    content,
                    reference,
                    delay_reason,
                    actor,
                })
                .await?
                .into_inner();
            if let Some(n) = answer.notification {
                println!(
                    "recorded {} notification {} ({})",
                    name(n.phase().as_str_name(), "PHASE_"),
                    n.notification_id,
                    n.regime
                );
            }
            if let Some(incident) = answer.incident {
                print_deadlines(&incident);
            }
        }
        IncidentsCommand::Close { id, reason, actor } => {
            let incident = client
                .close_incident(pb::CloseIncidentRequest {
                    incident_id: id,
                    closure_reason: reason,
                    actor,
                })
                .await?
                .into_inner()
                .incident
                .context("no incident in the answer")?;
            println!(
                "closed {} (version {})",
                incident.incident_id, incident.version
            );
        }
        IncidentsCommand::Overdue => {
            let incidents = client
                .list_overdue(pb::ListOverdueRequest {})
                .await?
                .into_inner()
                .incidents;
            let rows = incidents
                .iter()
                .flat_map(|i| {
                    i.deadlines
                        .iter()
                        .filter(|d| d.state() == pb::DeadlineState::Overdue)
                        .map(|d| {
                            vec![
                                i.incident_id.clone(),
                                d.regime.clone(),
                                show_time(d.due_at.as_ref()),
                                i.details
                                    .as_ref()
                                    .map(|x| x.title.clone())
                                    .unwrap_or_default(),
                            ]
                        })
                })
                .collect::<Vec<_>>();
            print_table(&["INCIDENT", "REGIME", "DUE", "TITLE"], &rows);
        }
        IncidentsCommand::List { open } => {
            let mut rows = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_incidents(pb::ListIncidentsRequest {
                        status: if open { pb::Status::Open as i32 } else { 0 },
                        page_size: 0,
                        page_token,
                    })
                    .await?
                    .into_inner();
                for i in &page.incidents {
                    let d = i.details.clone().unwrap_or_default();
                    rows.push(vec![
                        i.incident_id.clone(),
                        name(i.status().as_str_name(), "STATUS_"),
                        i.version.to_string(),
                        show_time(d.aware_at.as_ref()),
                        name(d.risk().as_str_name(), "RISK_LEVEL_"),
                        d.title,
                    ]);
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            print_table(
                &["INCIDENT", "STATUS", "VERSION", "AWARE", "RISK", "TITLE"],
                &rows,
            );
        }
        IncidentsCommand::Affected { id, find, count } => {
            affected(&mut client, id, find, count).await?;
        }
        IncidentsCommand::NotifyPeople {
            id,
            what_happened,
            what_happened_file,
            batch,
            actor,
        } => {
            let what_happened = match (what_happened, what_happened_file) {
                (Some(text), _) => text,
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
                (None, None) => String::new(),
            };
            let (mut notified, mut already) = (0, 0);
            loop {
                let answer = client
                    .notify_people(pb::NotifyPeopleRequest {
                        incident_id: id.clone(),
                        what_happened: what_happened.clone(),
                        actor: actor.clone(),
                        max_subjects: batch,
                    })
                    .await?
                    .into_inner();
                notified += answer.notified;
                already += answer.already_notified;
                println!(
                    "told {notified} of {} ({already} found told already), {} to go",
                    answer.affected, answer.remaining
                );
                if answer.remaining == 0 || answer.notified + answer.already_notified == 0 {
                    break;
                }
            }
        }
        IncidentsCommand::Dpo => {
            let dpo = client
                .get_dpo_contact(pb::GetDpoContactRequest {})
                .await?
                .into_inner();
            println!("DPO: {}", dpo.name);
            println!("email: {}", dpo.email);
            if !dpo.postal_address.is_empty() {
                println!("post: {}", dpo.postal_address.replace('\n', ", "));
            }
            let regimes = client
                .list_regimes(pb::ListRegimesRequest {})
                .await?
                .into_inner()
                .regimes;
            let rows = regimes
                .into_iter()
                .map(|r| {
                    vec![
                        r.key,
                        r.name,
                        r.authority,
                        format!("{} h", r.authority_deadline_hours),
                    ]
                })
                .collect::<Vec<_>>();
            print_table(&["REGIME", "NAME", "AUTHORITY", "DEADLINE"], &rows);
        }
    }
    Ok(())
}

async fn get(client: &mut Client, id: &str) -> anyhow::Result<pb::Incident> {
    client
        .get_incident(pb::GetIncidentRequest {
            incident_id: id.to_owned(),
        })
        .await?
        .into_inner()
        .incident
        .context("no incident in the answer")
}

fn print_incident(i: &pb::Incident) {
    let d = i.details.clone().unwrap_or_default();
    println!("incident:     {}", i.incident_id);
    println!(
        "status:       {} (version {})",
        name(i.status().as_str_name(), "STATUS_"),
        i.version
    );
    println!("title:        {}", d.title);
    println!("detected:     {}", show_time(d.detected_at.as_ref()));
    println!("aware:        {}", show_time(d.aware_at.as_ref()));
    let natures: Vec<String> = d
        .natures
        .iter()
        .map(|n| {
            Nature::try_from(*n)
                .map(|n| name(n.as_str_name(), "NATURE_"))
                .unwrap_or_else(|_| n.to_string())
        })
        .collect();
    println!("nature:       {}", natures.join(", "));
    println!("categories:   {}", d.data_categories.join(", "));
    println!("services:     {}", d.services.join(", "));
    println!(
        "window:       {} to {}",
        show_time(d.window_start.as_ref()),
        d.window_end
            .as_ref()
            .map_or_else(|| "(open)".to_owned(), |t| show_time(Some(t)))
    );
    println!("people:       ~{}", d.approximate_subjects);
    println!("records:      ~{}", d.approximate_records);
    println!(
        "risk:         {}",
        name(d.risk().as_str_name(), "RISK_LEVEL_")
    );
    println!("reasoning:    {}", d.risk_reasoning);
    println!("consequences: {}", d.likely_consequences);
    println!("measures:     {}", d.measures_taken);
    println!("description:\n{}", d.description);
    if !i.closure_reason.is_empty() {
        println!(
            "closed:       {} ({})",
            show_time(i.closed_at.as_ref()),
            i.closure_reason
        );
    }
    print_deadlines(i);
    if !i.notifications.is_empty() {
        let rows = i
            .notifications
            .iter()
            .map(|n| {
                vec![
                    n.regime.clone(),
                    name(n.phase().as_str_name(), "PHASE_"),
                    show_time(n.sent_at.as_ref()),
                    n.reference.clone(),
                    n.recorded_by.clone(),
                ]
            })
            .collect::<Vec<_>>();
        print_table(&["REGIME", "PHASE", "SENT", "REFERENCE", "BY"], &rows);
    }
}

fn print_deadlines(i: &pb::Incident) {
    let rows = i
        .deadlines
        .iter()
        .map(|d| {
            vec![
                d.regime.clone(),
                show_time(d.due_at.as_ref()),
                name(d.state().as_str_name(), "DEADLINE_STATE_"),
                show_time(d.notified_at.as_ref()),
                d.authority.clone(),
            ]
        })
        .collect::<Vec<_>>();
    print_table(&["REGIME", "DUE", "STATE", "NOTIFIED", "AUTHORITY"], &rows);
}

async fn print_history(client: &mut Client, id: &str) -> anyhow::Result<()> {
    let versions = client
        .get_incident_history(pb::GetIncidentHistoryRequest {
            incident_id: id.to_owned(),
        })
        .await?
        .into_inner()
        .versions;
    let rows = versions
        .into_iter()
        .map(|v| {
            let d = v.details.clone().unwrap_or_default();
            vec![
                v.version.to_string(),
                name(v.change().as_str_name(), "CHANGE_"),
                show_time(v.changed_at.as_ref()),
                v.changed_by,
                name(d.risk().as_str_name(), "RISK_LEVEL_"),
                format!("~{}", d.approximate_subjects),
            ]
        })
        .collect::<Vec<_>>();
    print_table(&["VERSION", "CHANGE", "AT", "BY", "RISK", "PEOPLE"], &rows);
    Ok(())
}

/// `pdm incidents affected`: the people affected, with their regions and notices, and the
/// counts (all, and per region).
async fn affected(client: &mut Client, id: String, find: bool, count: bool) -> anyhow::Result<()> {
    if find {
        let found = client
            .find_affected(pb::FindAffectedRequest {
                incident_id: id.clone(),
            })
            .await?
            .into_inner();
        println!(
            "asked {}: {} newly found",
            found.services.join(", "),
            found.added
        );
    }
    let mut rows = Vec::new();
    let mut page_token = String::new();
    let (total, by_region) = loop {
        let page = client
            .list_affected(pb::ListAffectedRequest {
                incident_id: id.clone(),
                page_size: 500,
                page_token,
            })
            .await?
            .into_inner();
        for s in &page.subjects {
            rows.push(vec![
                s.subject_id.clone(),
                s.services.join(","),
                region_name(s.region()),
                show_time(s.found_at.as_ref()),
                match s.notice_status() {
                    pb::NoticeStatus::Unspecified => "not told".to_owned(),
                    other => name(other.as_str_name(), "NOTICE_STATUS_"),
                },
                show_time(s.notified_at.as_ref()),
            ]);
        }
        if page.next_page_token.is_empty() {
            break (page.total, page.by_region);
        }
        page_token = page.next_page_token;
    };
    if !count {
        print_table(
            &["SUBJECT", "SERVICES", "REGION", "FOUND", "NOTICE", "TOLD"],
            &rows,
        );
    }
    let regions = by_region
        .iter()
        .map(|c| format!("{} {}", region_name(c.region()), c.subjects))
        .collect::<Vec<_>>();
    if regions.is_empty() {
        println!("{total} people affected");
    } else {
        println!("{total} people affected: {}", regions.join(", "));
    }
    Ok(())
}

/// A region as the table shows it: `uk`, `us-ca`, ... and `unknown` (identity does not
/// know the person, or not asked yet).
fn region_name(region: pdm_proto::common::v1::Region) -> String {
    match region {
        pdm_proto::common::v1::Region::Unspecified => "unknown".to_owned(),
        other => name(other.as_str_name(), "REGION_"),
    }
}
