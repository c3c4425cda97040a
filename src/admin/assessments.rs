//! `pdm assessments …`: the DPO's register of data protection impact assessments. Record
//! one (or, with `--id`, revise it: only the values given change, the rest are read back
//! first, and the revision is made against the version read), show it (with every version
//! on `--history`), list the register, and list the reviews overdue: the DPIAs here and
//! the transfer impact assessments of the transfers register.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use pdm_proto::incidents::v1::{
    self as pb, AssessmentOutcome, ResidualRisk, ReviewKind,
    assessments_service_client::AssessmentsServiceClient,
};
use pdm_runtime::{
    Settings,
    client::TracedChannel,
    convert::{from_timestamp, timestamp},
};

use super::{channel, print_table};

type Client = AssessmentsServiceClient<TracedChannel>;

/// `pdm assessments` subcommands.
#[derive(Debug, Subcommand)]
pub enum AssessmentsCommand {
    /// Record a new impact assessment, or with --id revise one (the values given replace
    /// the current ones).
    Record {
        /// The assessment to revise (none: a new one).
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        details: Box<DetailArgs>,
        /// Who is recording it.
        #[arg(long, env = "USER", default_value = "")]
        actor: String,
    },
    /// An assessment (and with --history, every version).
    Show {
        /// The assessment's id.
        id: String,
        /// Every version, oldest first.
        #[arg(long)]
        history: bool,
    },
    /// The register, newest first.
    List,
    /// The reviews overdue: DPIAs past their review date and the TIAs of the transfers
    /// register due for review.
    Overdue,
}

/// The details of `record`.
#[derive(Debug, Args)]
pub struct DetailArgs {
    /// A short name of the processing assessed.
    #[arg(long)]
    title: Option<String>,
    /// The processing and its purposes, described.
    #[arg(long, conflicts_with = "processing_file")]
    processing: Option<String>,
    /// A file holding the processing's description.
    #[arg(long)]
    processing_file: Option<std::path::PathBuf>,
    /// Purpose keys covered (repeat or comma-separate).
    #[arg(long = "purpose", value_delimiter = ',')]
    purposes: Vec<String>,
    /// Data categories concerned (repeat or comma-separate).
    #[arg(long = "category", value_delimiter = ',')]
    categories: Vec<String>,
    /// A risk found (repeat for each).
    #[arg(long = "risk")]
    risks: Vec<String>,
    /// A measure envisaged (repeat for each).
    #[arg(long = "measure")]
    measures: Vec<String>,
    /// low, medium or high.
    #[arg(long)]
    residual_risk: Option<String>,
    /// The DPO's advice.
    #[arg(long, conflicts_with = "advice_file")]
    advice: Option<String>,
    /// A file holding the DPO's advice.
    #[arg(long)]
    advice_file: Option<std::path::PathBuf>,
    /// The DPO's advice was not followed: why.
    #[arg(long, conflicts_with = "advice_followed")]
    advice_not_followed: Option<String>,
    /// The DPO's advice was followed (a revision that now follows it).
    #[arg(long)]
    advice_followed: bool,
    /// proceed, proceed-with-measures, consult-authority or do-not-proceed.
    #[arg(long)]
    outcome: Option<String>,
    /// When it was assessed (RFC 3339); a new one: default now.
    #[arg(long)]
    assessed_at: Option<String>,
    /// When it is next reviewed (RFC 3339).
    #[arg(long)]
    next_review: Option<String>,
    /// Why the review date has already passed.
    #[arg(long)]
    late_review_reason: Option<String>,
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

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

impl DetailArgs {
    /// `base` with the values given here.
    fn apply(self, mut d: pb::AssessmentDetails) -> anyhow::Result<pb::AssessmentDetails> {
        if let Some(v) = self.title {
            d.title = v;
        }
        if let Some(v) = self.processing {
            d.processing = v;
        }
        if let Some(path) = self.processing_file {
            d.processing = read(&path)?;
        }
        if !self.purposes.is_empty() {
            d.purposes = self.purposes;
        }
        if !self.categories.is_empty() {
            d.data_categories = self.categories;
        }
        if !self.risks.is_empty() {
            d.risks = self.risks;
        }
        if !self.measures.is_empty() {
            d.measures = self.measures;
        }
        if let Some(v) = self.residual_risk {
            d.residual_risk = enum_value("RESIDUAL_RISK_", &v, |s| {
                ResidualRisk::from_str_name(s).map(|v| v as i32)
            })?;
        }
        if let Some(v) = self.advice {
            d.dpo_advice = v;
        }
        if let Some(path) = self.advice_file {
            d.dpo_advice = read(&path)?;
        }
        if self.advice_followed {
            d.dpo_advice_followed = true;
            d.advice_departure_reason.clear();
        }
        if let Some(why) = self.advice_not_followed {
            d.dpo_advice_followed = false;
            d.advice_departure_reason = why;
        }
        if let Some(v) = self.outcome {
            d.outcome = enum_value("ASSESSMENT_OUTCOME_", &v, |s| {
                AssessmentOutcome::from_str_name(s).map(|v| v as i32)
            })?;
        }
        if let Some(v) = self.assessed_at {
            d.assessed_at = Some(time(&v)?);
        }
        if let Some(v) = self.next_review {
            d.next_review_at = Some(time(&v)?);
        }
        if let Some(v) = self.late_review_reason {
            d.late_review_reason = v;
        }
        Ok(d)
    }
}

/// Runs an assessments command.
pub async fn run(settings: &Settings, command: AssessmentsCommand) -> anyhow::Result<()> {
    let mut client = AssessmentsServiceClient::new(channel(settings, "incidents")?);
    match command {
        AssessmentsCommand::Record {
            id: None,
            details,
            actor,
        } => {
            let base = pb::AssessmentDetails {
                dpo_advice_followed: true,
                assessed_at: Some(timestamp(Utc::now())),
                ..Default::default()
            };
            let answer = client
                .record_assessment(pb::RecordAssessmentRequest {
                    assessment_id: String::new(),
                    details: Some(details.apply(base)?),
                    actor,
                    expected_version: 0,
                })
                .await?
                .into_inner();
            let a = answer.assessment.context("no assessment in the answer")?;
            println!("recorded {}", a.assessment_id);
            print_assessment(&a);
        }
        AssessmentsCommand::Record {
            id: Some(id),
            details,
            actor,
        } => {
            let current = get(&mut client, &id, false).await?.0;
            let mut base = current.details.unwrap_or_default();
            // A revision that does not give a new reason is made for a date that is
            // current again, or says why it is not.
            base.late_review_reason.clear();
            let a = client
                .record_assessment(pb::RecordAssessmentRequest {
                    assessment_id: id,
                    details: Some(details.apply(base)?),
                    actor,
                    expected_version: current.version,
                })
                .await?
                .into_inner()
                .assessment
                .context("no assessment in the answer")?;
            println!("version {}", a.version);
            print_assessment(&a);
        }
        AssessmentsCommand::Show { id, history } => {
            let (a, versions) = get(&mut client, &id, history).await?;
            print_assessment(&a);
            if history {
                let rows = versions
                    .into_iter()
                    .map(|v| {
                        let d = v.details.clone().unwrap_or_default();
                        vec![
                            v.version.to_string(),
                            show_time(v.changed_at.as_ref()),
                            v.changed_by,
                            name(d.residual_risk().as_str_name(), "RESIDUAL_RISK_"),
                            name(d.outcome().as_str_name(), "ASSESSMENT_OUTCOME_"),
                            show_time(d.next_review_at.as_ref()),
                        ]
                    })
                    .collect::<Vec<_>>();
                print_table(
                    &["VERSION", "AT", "BY", "RESIDUAL", "OUTCOME", "REVIEW"],
                    &rows,
                );
            }
        }
        AssessmentsCommand::List => {
            let mut rows = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_assessments(pb::ListAssessmentsRequest {
                        page_size: 0,
                        page_token,
                    })
                    .await?
                    .into_inner();
                for a in &page.assessments {
                    let d = a.details.clone().unwrap_or_default();
                    rows.push(vec![
                        a.assessment_id.clone(),
                        a.version.to_string(),
                        name(d.residual_risk().as_str_name(), "RESIDUAL_RISK_"),
                        name(d.outcome().as_str_name(), "ASSESSMENT_OUTCOME_"),
                        format!(
                            "{}{}",
                            show_time(d.next_review_at.as_ref()),
                            if a.review_overdue { " (overdue)" } else { "" }
                        ),
                        d.title,
                    ]);
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            print_table(
                &[
                    "ASSESSMENT",
                    "VERSION",
                    "RESIDUAL",
                    "OUTCOME",
                    "REVIEW",
                    "TITLE",
                ],
                &rows,
            );
        }
        AssessmentsCommand::Overdue => {
            let reviews = client
                .list_overdue_reviews(pb::ListOverdueReviewsRequest {})
                .await?
                .into_inner()
                .reviews;
            let rows = reviews
                .into_iter()
                .map(|r| {
                    let (id, what) = match r.kind() {
                        ReviewKind::Tia => {
                            let m = r.mechanism.clone().unwrap_or_default();
                            let reference = m.tia.map(|t| t.reference).unwrap_or_default();
                            (
                                m.mechanism_id,
                                format!("{reference} ({})", r.recipient_name),
                            )
                        }
                        _ => {
                            let a = r.assessment.clone().unwrap_or_default();
                            (a.assessment_id, a.details.unwrap_or_default().title)
                        }
                    };
                    vec![
                        name(r.kind().as_str_name(), "REVIEW_KIND_"),
                        id,
                        show_time(r.review_due.as_ref()),
                        r.days_overdue.to_string(),
                        what,
                    ]
                })
                .collect::<Vec<_>>();
            print_table(&["KIND", "ID", "DUE", "DAYS LATE", "WHAT"], &rows);
        }
    }
    Ok(())
}

async fn get(
    client: &mut Client,
    id: &str,
    history: bool,
) -> anyhow::Result<(pb::Assessment, Vec<pb::AssessmentVersion>)> {
    let answer = client
        .get_assessment(pb::GetAssessmentRequest {
            assessment_id: id.to_owned(),
            include_history: history,
        })
        .await?
        .into_inner();
    Ok((
        answer.assessment.context("no assessment in the answer")?,
        answer.versions,
    ))
}

fn print_assessment(a: &pb::Assessment) {
    let d = a.details.clone().unwrap_or_default();
    println!("assessment:   {} (version {})", a.assessment_id, a.version);
    println!("title:        {}", d.title);
    println!("purposes:     {}", d.purposes.join(", "));
    println!("categories:   {}", d.data_categories.join(", "));
    println!(
        "residual:     {}",
        name(d.residual_risk().as_str_name(), "RESIDUAL_RISK_")
    );
    println!(
        "outcome:      {}",
        name(d.outcome().as_str_name(), "ASSESSMENT_OUTCOME_")
    );
    println!("assessed:     {}", show_time(d.assessed_at.as_ref()));
    println!(
        "next review:  {}{}",
        show_time(d.next_review_at.as_ref()),
        if a.review_overdue { " (overdue)" } else { "" }
    );
    if !d.late_review_reason.is_empty() {
        println!("review late:  {}", d.late_review_reason);
    }
    println!(
        "updated:      {} by {}",
        show_time(a.updated_at.as_ref()),
        a.updated_by
    );
    println!("processing:\n{}", d.processing);
    println!("risks:");
    for r in &d.risks {
        println!("  - {r}");
    }
    println!("measures:");
    for m in &d.measures {
        println!("  - {m}");
    }
    println!(
        "DPO advice ({}):",
        if d.dpo_advice_followed {
            "followed"
        } else {
            "not followed"
        }
    );
    println!("{}", d.dpo_advice);
    if !d.advice_departure_reason.is_empty() {
        println!("why not followed: {}", d.advice_departure_reason);
    }
}
