//! `pdm consent …`: the purpose catalogue, a subject's state and history, and withdrawals
//! the privacy team records on a person's emailed request.

use clap::Subcommand;
use pdm_proto::{
    common::v1::{LegalBasis, Region},
    consent::v1::{
        Channel, ConsentStatus, GetConsentHistoryRequest, GetConsentsRequest, LedgerEntryKind,
        ListPurposesRequest, Reason, Source, WithdrawConsentRequest,
        consent_service_client::ConsentServiceClient,
    },
};
use pdm_runtime::Settings;

use super::{channel, print_table};

/// `pdm consent` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// List the purpose catalogue with legal bases.
    Purposes,
    /// Show a subject's current state, purpose by purpose.
    Show {
        /// Subject id.
        subject_id: String,
    },
    /// Show a subject's consent ledger (the proof), oldest first.
    History {
        /// Subject id.
        subject_id: String,
    },
    /// Withdraw consent on a person's request that reached the privacy team (by email,
    /// post or phone): recorded with source PRIVACY_REQUEST and the team member as actor,
    /// effective for every check that starts after it returns.
    Withdraw {
        /// Subject id.
        subject_id: String,
        /// Purposes to withdraw (e.g. marketing_email); none with --all.
        purposes: Vec<String>,
        /// Every purpose whose consent is in force.
        #[arg(long, conflicts_with = "purposes")]
        all: bool,
        /// Who records it (a name or initials of the privacy team member).
        #[arg(long)]
        actor: String,
    },
}

fn basis(raw: i32) -> String {
    let name = LegalBasis::try_from(raw).unwrap_or_default().as_str_name();
    name.trim_start_matches("LEGAL_BASIS_").to_lowercase()
}

/// Withdraws `purposes` (or, with `all`, every consent in force) and prints what changed.
async fn withdraw(
    client: &mut ConsentServiceClient<pdm_runtime::client::TracedChannel>,
    subject_id: String,
    mut purposes: Vec<String>,
    all: bool,
    actor: String,
) -> anyhow::Result<()> {
    if all {
        purposes = client
            .get_consents(GetConsentsRequest {
                subject_id: subject_id.clone(),
            })
            .await?
            .into_inner()
            .purposes
            .into_iter()
            .filter(|p| p.consent == ConsentStatus::Granted as i32)
            .map(|p| p.purpose)
            .collect();
        if purposes.is_empty() {
            println!("no consent in force for {subject_id}: nothing to withdraw");
            return Ok(());
        }
    }
    anyhow::ensure!(
        !purposes.is_empty(),
        "name the purposes to withdraw, or --all"
    );
    for purpose in purposes {
        let entry = client
            .withdraw_consent(WithdrawConsentRequest {
                subject_id: subject_id.clone(),
                purpose: purpose.clone(),
                source: Source::PrivacyRequest as i32,
                actor: format!("privacy-team:{actor}"),
            })
            .await
            .map_err(|status| anyhow::anyhow!("{purpose}: {}", status.message()))?
            .into_inner()
            .entry
            .unwrap_or_default();
        println!("withdrawn: {purpose} (ledger entry {})", entry.sequence);
    }
    Ok(())
}

/// Runs a consent command.
pub async fn run(settings: &Settings, command: ConsentCommand) -> anyhow::Result<()> {
    let mut client = ConsentServiceClient::new(channel(settings, "consent")?);
    match command {
        ConsentCommand::Withdraw {
            subject_id,
            purposes,
            all,
            actor,
        } => withdraw(&mut client, subject_id, purposes, all, actor).await?,
        ConsentCommand::Purposes => {
            let purposes = client
                .list_purposes(ListPurposesRequest {})
                .await?
                .into_inner()
                .purposes;
            let rows = purposes
                .into_iter()
                .map(|p| {
                    let european = p
                        .legal_bases
                        .iter()
                        .find(|b| b.region == Region::Eea as i32)
                        .map_or_else(String::new, |b| basis(b.legal_basis));
                    let elsewhere = p
                        .legal_bases
                        .iter()
                        .find(|b| b.region == Region::Us as i32)
                        .map_or_else(String::new, |b| basis(b.legal_basis));
                    vec![
                        p.key,
                        european,
                        elsewhere,
                        if p.refusable { "yes" } else { "no" }.to_owned(),
                        if p.objectable { "yes" } else { "no" }.to_owned(),
                        p.description,
                    ]
                })
                .collect::<Vec<_>>();
            print_table(
                &[
                    "PURPOSE",
                    "UK/EEA/CH",
                    "ELSEWHERE",
                    "REFUSABLE",
                    "OBJECTABLE",
                    "DESCRIPTION",
                ],
                &rows,
            );
        }
        ConsentCommand::Show { subject_id } => {
            let state = client
                .get_consents(GetConsentsRequest { subject_id })
                .await?
                .into_inner();
            println!(
                "subject {}  region {}  restricted {}  do-not-sell {}  opted out of: {}",
                state.subject_id,
                Region::try_from(state.region)
                    .unwrap_or_default()
                    .as_str_name()
                    .trim_start_matches("REGION_"),
                state.restricted,
                state.do_not_sell,
                state
                    .opted_out_channels
                    .iter()
                    .map(|c| Channel::try_from(*c)
                        .unwrap_or_default()
                        .as_str_name()
                        .trim_start_matches("CHANNEL_")
                        .to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let rows = state
                .purposes
                .into_iter()
                .map(|p| {
                    let decision = p.decision.unwrap_or_default();
                    vec![
                        p.purpose,
                        basis(p.legal_basis),
                        ConsentStatus::try_from(p.consent)
                            .unwrap_or_default()
                            .as_str_name()
                            .trim_start_matches("CONSENT_STATUS_")
                            .to_lowercase(),
                        if p.objected { "yes" } else { "" }.to_owned(),
                        if decision.allowed {
                            "allowed"
                        } else {
                            "denied"
                        }
                        .to_owned(),
                        Reason::try_from(decision.reason)
                            .unwrap_or_default()
                            .as_str_name()
                            .trim_start_matches("REASON_")
                            .to_lowercase(),
                    ]
                })
                .collect::<Vec<_>>();
            print_table(
                &[
                    "PURPOSE", "BASIS", "CONSENT", "OBJECTED", "DECISION", "REASON",
                ],
                &rows,
            );
        }
        ConsentCommand::History { subject_id } => {
            let mut after = 0;
            let mut rows = Vec::new();
            loop {
                let page = client
                    .get_consent_history(GetConsentHistoryRequest {
                        subject_id: subject_id.clone(),
                        after_sequence: after,
                        page_size: 1000,
                    })
                    .await?
                    .into_inner();
                for e in page.entries {
                    rows.push(vec![
                        e.sequence.to_string(),
                        e.recorded_at
                            .map(|t| {
                                pdm_runtime::convert::from_timestamp(&t)
                                    .map(|d| d.to_rfc3339())
                                    .unwrap_or_default()
                            })
                            .unwrap_or_default(),
                        LedgerEntryKind::try_from(e.kind)
                            .unwrap_or_default()
                            .as_str_name()
                            .trim_start_matches("LEDGER_ENTRY_KIND_")
                            .to_lowercase(),
                        if e.purpose.is_empty() {
                            Channel::try_from(e.channel)
                                .unwrap_or_default()
                                .as_str_name()
                                .trim_start_matches("CHANNEL_")
                                .to_lowercase()
                        } else {
                            e.purpose
                        },
                        Source::try_from(e.source)
                            .unwrap_or_default()
                            .as_str_name()
                            .trim_start_matches("SOURCE_")
                            .to_lowercase(),
                        e.policy_version,
                        e.text_hash.chars().take(12).collect(),
                        e.actor,
                    ]);
                }
                if page.next_after_sequence == 0 {
                    break;
                }
                after = page.next_after_sequence;
            }
            print_table(
                &[
                    "SEQ",
                    "RECORDED",
                    "KIND",
                    "PURPOSE/CHANNEL",
                    "SOURCE",
                    "POLICY",
                    "TEXT HASH",
                    "ACTOR",
                ],
                &rows,
            );
        }
    }
    Ok(())
}
