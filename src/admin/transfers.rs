//! `pdm transfers …`: load the seed register, list recipients and mechanisms, show what
//! expires soon, print the Art. 30-style transfer register (table or CSV).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use pdm_proto::transfers::v1::{
    self as pb, ListExpiringMechanismsRequest, ListMechanismsRequest, ListRecipientsRequest,
    MechanismKind, MechanismStatus, PartyRole, RecipientRole, Regime, TiaOutcome,
    transfers_service_client::TransfersServiceClient,
};
use pdm_runtime::{Settings, client::TracedChannel};
use serde::Deserialize;

use super::{channel, print_table};

/// The seed shipped with pdm (`seed/transfers.toml`).
const SEED: &str = include_str!("../../seed/transfers.toml");

/// `pdm transfers` subcommands.
#[derive(Debug, Subcommand)]
pub enum TransfersCommand {
    /// Load the register seed (idempotent): recipients by key, mechanisms when missing.
    Seed {
        /// A seed file instead of the one shipped with pdm.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// List recipients.
    Recipients,
    /// List mechanisms.
    Mechanisms,
    /// Mechanisms whose expiry or review is due within N days.
    Expiring {
        /// Days ahead.
        #[arg(long, default_value_t = 90)]
        days: i32,
    },
    /// The transfer register: recipient, role, country, mechanisms, categories, purposes.
    Register {
        /// CSV instead of a table.
        #[arg(long)]
        csv: bool,
    },
}

#[derive(Debug, Deserialize)]
struct SeedFile {
    recipients: Vec<SeedRecipient>,
}

#[derive(Debug, Deserialize)]
struct SeedRecipient {
    key: String,
    name: String,
    role: String,
    country: String,
    purposes: Vec<String>,
    data_categories: Vec<String>,
    #[serde(default)]
    contract_reference: String,
    #[serde(default)]
    contract_date: String,
    #[serde(default)]
    certifications: Vec<String>,
    #[serde(default)]
    mechanisms: Vec<SeedMechanism>,
}

#[derive(Debug, Deserialize)]
struct SeedMechanism {
    kind: String,
    #[serde(default)]
    regimes: Vec<String>,
    #[serde(default)]
    scc_module: i32,
    #[serde(default)]
    signed_on: String,
    #[serde(default)]
    parties: Vec<String>,
    #[serde(default)]
    annex_references: Vec<String>,
    valid_from: String,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    review_due: Option<String>,
    #[serde(default)]
    purposes: Vec<String>,
    #[serde(default)]
    data_categories: Vec<String>,
    #[serde(default)]
    occasional: bool,
    tia: Option<SeedTia>,
}

#[derive(Debug, Deserialize)]
struct SeedTia {
    reference: String,
    assessed_on: String,
    outcome: String,
    #[serde(default)]
    supplementary_measures: Vec<String>,
}

fn enum_value(prefix: &str, raw: &str, parse: impl Fn(&str) -> Option<i32>) -> anyhow::Result<i32> {
    let name = format!("{prefix}{}", raw.to_ascii_uppercase());
    parse(&name).with_context(|| format!("unknown value {raw:?} ({name})"))
}

fn time(raw: &str) -> anyhow::Result<prost_types::Timestamp> {
    let t = chrono::DateTime::parse_from_rfc3339(raw)
        .with_context(|| format!("not an RFC 3339 time: {raw}"))?;
    Ok(pdm_runtime::convert::timestamp(
        t.with_timezone(&chrono::Utc),
    ))
}

fn name(raw: &str, prefix: &str) -> String {
    raw.trim_start_matches(prefix).to_lowercase()
}

/// Runs a transfers command.
pub async fn run(settings: &Settings, command: TransfersCommand) -> anyhow::Result<()> {
    let mut client = TransfersServiceClient::new(channel(settings, "transfers")?);
    match command {
        TransfersCommand::Seed { file } => {
            let text = match file {
                Some(path) => std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
                None => SEED.to_owned(),
            };
            seed(&mut client, &text).await
        }
        TransfersCommand::Recipients => {
            let recipients = client
                .list_recipients(ListRecipientsRequest::default())
                .await?
                .into_inner()
                .recipients;
            let rows = recipients
                .into_iter()
                .map(|r| {
                    vec![
                        r.key,
                        r.name,
                        name(
                            RecipientRole::try_from(r.role)
                                .unwrap_or_default()
                                .as_str_name(),
                            "RECIPIENT_ROLE_",
                        ),
                        r.country,
                        r.contract_reference,
                    ]
                })
                .collect::<Vec<_>>();
            print_table(&["KEY", "NAME", "ROLE", "COUNTRY", "CONTRACT"], &rows);
            Ok(())
        }
        TransfersCommand::Mechanisms => {
            let recipients = client
                .list_recipients(ListRecipientsRequest::default())
                .await?
                .into_inner()
                .recipients;
            let mechanisms = client
                .list_mechanisms(ListMechanismsRequest::default())
                .await?
                .into_inner()
                .mechanisms;
            let rows = mechanisms
                .into_iter()
                .map(|m| {
                    let recipient = recipients
                        .iter()
                        .find(|r| r.recipient_id == m.recipient_id)
                        .map(|r| r.key.clone())
                        .unwrap_or_default();
                    vec![
                        recipient,
                        mechanism_label(&m),
                        name(
                            MechanismStatus::try_from(m.status)
                                .unwrap_or_default()
                                .as_str_name(),
                            "MECHANISM_STATUS_",
                        ),
                        date(m.valid_from),
                        date(m.review_due),
                        m.tia
                            .map(|t| {
                                name(
                                    TiaOutcome::try_from(t.outcome)
                                        .unwrap_or_default()
                                        .as_str_name(),
                                    "TIA_OUTCOME_",
                                )
                            })
                            .unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect::<Vec<_>>();
            print_table(
                &[
                    "RECIPIENT",
                    "MECHANISM",
                    "STATUS",
                    "VALID FROM",
                    "REVIEW DUE",
                    "TIA",
                ],
                &rows,
            );
            Ok(())
        }
        TransfersCommand::Expiring { days } => {
            let due = client
                .list_expiring_mechanisms(ListExpiringMechanismsRequest { within_days: days })
                .await?
                .into_inner()
                .mechanisms;
            let rows = due
                .into_iter()
                .map(|d| {
                    vec![
                        d.recipient_name,
                        d.mechanism
                            .as_ref()
                            .map(mechanism_label)
                            .unwrap_or_default(),
                        d.due,
                        date(d.due_at),
                        if d.overdue {
                            "OVERDUE".into()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect::<Vec<_>>();
            print_table(&["RECIPIENT", "MECHANISM", "DUE", "DATE", ""], &rows);
            Ok(())
        }
        TransfersCommand::Register { csv } => {
            let recipients = client
                .list_recipients(ListRecipientsRequest::default())
                .await?
                .into_inner()
                .recipients;
            let mechanisms = client
                .list_mechanisms(ListMechanismsRequest::default())
                .await?
                .into_inner()
                .mechanisms;
            let rows: Vec<Vec<String>> = recipients
                .into_iter()
                .map(|r| {
                    let covering: Vec<String> = mechanisms
                        .iter()
                        .filter(|m| {
                            m.recipient_id == r.recipient_id
                                && m.status == MechanismStatus::Active as i32
                        })
                        .map(mechanism_label)
                        .collect();
                    vec![
                        r.name,
                        name(
                            RecipientRole::try_from(r.role)
                                .unwrap_or_default()
                                .as_str_name(),
                            "RECIPIENT_ROLE_",
                        ),
                        r.country,
                        if covering.is_empty() {
                            "adequacy / within regime".into()
                        } else {
                            covering.join("; ")
                        },
                        r.data_categories.join(" "),
                        r.purposes.join(" "),
                    ]
                })
                .collect();
            let headers = [
                "RECIPIENT",
                "ROLE",
                "COUNTRY",
                "MECHANISMS",
                "DATA CATEGORIES",
                "PURPOSES",
            ];
            if csv {
                println!(
                    "{}",
                    headers
                        .iter()
                        .map(|h| h.to_lowercase().replace(' ', "_"))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                for row in rows {
                    println!(
                        "{}",
                        row.iter()
                            .map(|c| csv_field(c))
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                }
            } else {
                print_table(&headers, &rows);
            }
            Ok(())
        }
    }
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn date(ts: Option<prost_types::Timestamp>) -> String {
    ts.and_then(|t| pdm_runtime::convert::from_timestamp(&t))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "-".into())
}

fn mechanism_label(m: &pb::Mechanism) -> String {
    let kind = name(
        MechanismKind::try_from(m.kind)
            .unwrap_or_default()
            .as_str_name(),
        "MECHANISM_KIND_",
    );
    let regimes: Vec<String> = m
        .regimes
        .iter()
        .map(|r| {
            name(
                Regime::try_from(*r).unwrap_or_default().as_str_name(),
                "REGIME_",
            )
            .to_uppercase()
        })
        .collect();
    if m.scc_module > 0 {
        format!("{kind} module {} ({})", m.scc_module, regimes.join("/"))
    } else {
        format!("{kind} ({})", regimes.join("/"))
    }
}

async fn seed(
    client: &mut TransfersServiceClient<TracedChannel>,
    text: &str,
) -> anyhow::Result<()> {
    let file: SeedFile = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()?
        .try_deserialize()
        .context("reading the seed")?;
    let (mut recipients, mut mechanisms) = (0, 0);
    for r in file.recipients {
        let role = enum_value("RECIPIENT_ROLE_", &r.role, |n| {
            RecipientRole::from_str_name(n).map(|v| v as i32)
        })?;
        let stored = client
            .register_recipient(pb::RegisterRecipientRequest {
                recipient: Some(pb::Recipient {
                    key: r.key.clone(),
                    name: r.name,
                    role,
                    country: r.country,
                    purposes: r.purposes,
                    data_categories: r.data_categories,
                    contract_reference: r.contract_reference,
                    contract_date: r.contract_date,
                    certifications: r.certifications,
                    ..Default::default()
                }),
            })
            .await
            .with_context(|| format!("registering {}", r.key))?
            .into_inner()
            .recipient
            .context("no recipient returned")?;
        recipients += 1;
        let existing = client
            .list_mechanisms(ListMechanismsRequest {
                recipient_id: stored.recipient_id.clone(),
            })
            .await?
            .into_inner()
            .mechanisms;
        for m in r.mechanisms {
            let kind = enum_value("MECHANISM_KIND_", &m.kind, |n| {
                MechanismKind::from_str_name(n).map(|v| v as i32)
            })?;
            if existing.iter().any(|e| {
                e.kind == kind && e.signed_on == m.signed_on && e.scc_module == m.scc_module
            }) {
                continue;
            }
            let regimes = m
                .regimes
                .iter()
                .map(|x| enum_value("REGIME_", x, |n| Regime::from_str_name(n).map(|v| v as i32)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let tia = match m.tia {
                Some(t) => Some(pb::TransferImpactAssessment {
                    reference: t.reference,
                    assessed_on: t.assessed_on,
                    outcome: enum_value("TIA_OUTCOME_", &t.outcome, |n| {
                        TiaOutcome::from_str_name(n).map(|v| v as i32)
                    })?,
                    supplementary_measures: t.supplementary_measures,
                }),
                None => None,
            };
            client
                .record_mechanism(pb::RecordMechanismRequest {
                    mechanism: Some(pb::Mechanism {
                        recipient_id: stored.recipient_id.clone(),
                        kind,
                        regimes,
                        scc_module: m.scc_module,
                        exporter_role: PartyRole::Controller as i32,
                        signed_on: m.signed_on,
                        parties: m.parties,
                        annex_references: m.annex_references,
                        valid_from: Some(time(&m.valid_from)?),
                        expires_at: m.expires_at.as_deref().map(time).transpose()?,
                        review_due: m.review_due.as_deref().map(time).transpose()?,
                        status: MechanismStatus::Active as i32,
                        purposes: m.purposes,
                        data_categories: m.data_categories,
                        tia,
                        occasional: m.occasional,
                        ..Default::default()
                    }),
                })
                .await
                .with_context(|| format!("recording a mechanism for {}", r.key))?;
            mechanisms += 1;
        }
    }
    println!("seeded {recipients} recipients and {mechanisms} new mechanisms");
    Ok(())
}
