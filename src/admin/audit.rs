//! `pdm audit …`: verify the access trail of every service (against what the others
//! witnessed and a signed checkpoint), export a checkpoint, list a subject's accesses.

use std::path::PathBuf;

use clap::Subcommand;
use pdm_proto::audit::v1::{
    GetSignedHeadRequest, ListAccessesRequest, ListWitnessedHeadsRequest, SignedHead,
    VerifyAccessLogRequest, VerifyAccessLogResponse, WitnessedHead,
    audit_service_client::AuditServiceClient,
};
use pdm_runtime::{Settings, convert::from_timestamp};

use super::{audit_checkpoint::Checkpoint, channel, print_table};
use crate::catalogue;

/// `pdm audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check each service's MAC-chained access trail, against the heads the other
    /// services witnessed and, with --checkpoint, a checkpoint file; exits 1 if any entry
    /// was edited, deleted or moved, a trail was cut back, wiped, restored from an older
    /// copy or rewritten, or a service could not be asked.
    Verify {
        /// Only these services (comma-separated); default: all. Witnesses are asked
        /// among the same services.
        #[arg(long, default_value = "all")]
        services: String,
        /// A file from `pdm audit checkpoint`: every trail must still extend it.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Export every service's trail head, signed by the service, to a new file for the
    /// privacy team to keep (`pdm audit verify --checkpoint FILE` checks against it).
    Checkpoint {
        /// The file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Only these services (comma-separated); default: all.
        #[arg(long, default_value = "all")]
        services: String,
    },
    /// Every recorded access to one subject's data, across services, oldest first.
    Accesses {
        /// Subject id.
        subject_id: String,
    },
}

fn selected(services: &str) -> anyhow::Result<Vec<&'static str>> {
    Ok(catalogue::select(services)?
        .iter()
        .map(|s| s.name())
        .collect())
}

/// Every head of `service` that `witness` recorded.
async fn witnessed_by(
    settings: &Settings,
    witness: &str,
    service: &str,
) -> anyhow::Result<Vec<WitnessedHead>> {
    let mut client = AuditServiceClient::new(channel(settings, witness)?);
    let mut heads = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_witnessed_heads(ListWitnessedHeadsRequest {
                service: service.to_owned(),
                page_size: 10_000,
                page_token,
            })
            .await?
            .into_inner();
        heads.extend(page.heads);
        if page.next_page_token.is_empty() {
            return Ok(heads);
        }
        page_token = page.next_page_token;
    }
}

/// One service's verification, for the table.
struct Verified {
    row: Vec<String>,
    details: Vec<String>,
    failed: bool,
}

async fn verify_one(
    settings: &Settings,
    name: &str,
    witnesses: &[&str],
    checkpoint: Option<&Checkpoint>,
) -> Verified {
    let mut details = Vec::new();
    let mut failed = false;
    let mut witnessed = Vec::new();
    for witness in witnesses.iter().filter(|w| **w != name) {
        match witnessed_by(settings, witness, name).await {
            Ok(heads) => witnessed.extend(heads),
            Err(err) => {
                failed = true;
                details.push(format!(
                    "  {name}: could not read what {witness} witnessed: {err:#}"
                ));
            }
        }
    }
    let latest = witnessed.iter().map(|w| w.seq).max();
    let witnessed_cell = match latest {
        Some(seq) => format!("{} (to {seq})", witnessed.len()),
        None => "-".to_owned(),
    };
    let signed: Option<SignedHead> = match checkpoint.map(|c| c.head(name)) {
        None => None,
        Some(Ok(Some(head))) => Some(head),
        Some(Ok(None)) => {
            failed = true;
            details.push(format!("  {name}: not in the checkpoint"));
            None
        }
        Some(Err(err)) => {
            failed = true;
            details.push(format!("  {name}: {err:#}"));
            None
        }
    };
    let checkpoint_cell = signed
        .as_ref()
        .map_or_else(|| "-".to_owned(), |h| h.seq.to_string());
    let answer = async {
        AuditServiceClient::new(channel(settings, name)?)
            .max_encoding_message_size(64 << 20)
            .verify_access_log(VerifyAccessLogRequest {
                witnessed,
                checkpoint: signed,
            })
            .await
            .map_err(anyhow::Error::from)
    }
    .await;
    let (entries, trail) = match answer {
        Ok(answer) => {
            let VerifyAccessLogResponse {
                entries,
                intact,
                problems,
                truncated,
                ..
            } = answer.into_inner();
            failed |= !intact;
            details.extend(
                problems
                    .into_iter()
                    .map(|p| format!("  {name}: {}", p.description)),
            );
            if truncated {
                details.push(format!("  {name}: … and more"));
            }
            let trail = if intact { "intact" } else { "TAMPERED" };
            (entries.to_string(), trail.to_owned())
        }
        Err(err) => {
            failed = true;
            ("-".to_owned(), format!("error: {err:#}"))
        }
    };
    Verified {
        row: vec![
            name.to_owned(),
            entries,
            witnessed_cell,
            checkpoint_cell,
            trail,
        ],
        details,
        failed,
    }
}

/// Runs a `pdm audit` command.
pub async fn run(settings: &Settings, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify {
            services,
            checkpoint,
        } => {
            let names = selected(&services)?;
            let checkpoint = checkpoint.as_deref().map(Checkpoint::read).transpose()?;
            let mut rows = Vec::new();
            let mut details = Vec::new();
            let mut failed = false;
            for name in &names {
                let verified = verify_one(settings, name, &names, checkpoint.as_ref()).await;
                failed |= verified.failed;
                rows.push(verified.row);
                details.extend(verified.details);
            }
            print_table(
                &["SERVICE", "ENTRIES", "WITNESSED", "CHECKPOINT", "TRAIL"],
                &rows,
            );
            for line in details {
                println!("{line}");
            }
            anyhow::ensure!(!failed, "the access trail did not verify");
            Ok(())
        }
        AuditCommand::Checkpoint { out, services } => {
            let mut heads = Vec::new();
            for name in selected(&services)? {
                let head = AuditServiceClient::new(channel(settings, name)?)
                    .get_signed_head(GetSignedHeadRequest {})
                    .await
                    .map_err(|e| anyhow::anyhow!("{name}: {e}"))?
                    .into_inner()
                    .head
                    .ok_or_else(|| anyhow::anyhow!("{name} returned no head"))?;
                heads.push(head);
            }
            Checkpoint::new(&heads)?.write(&out)?;
            let rows: Vec<Vec<String>> = heads
                .iter()
                .map(|h| vec![h.service.clone(), h.seq.to_string()])
                .collect();
            print_table(&["SERVICE", "HEAD"], &rows);
            println!("checkpoint written to {}", out.display());
            Ok(())
        }
        AuditCommand::Accesses { subject_id } => {
            let mut rows = Vec::new();
            for name in catalogue::ALL {
                if catalogue::implementation(name).is_none() {
                    continue;
                }
                let mut client = AuditServiceClient::new(channel(settings, name)?);
                let mut page_token = String::new();
                loop {
                    let page = client
                        .list_accesses(ListAccessesRequest {
                            subject_id: subject_id.clone(),
                            page_size: 1000,
                            page_token: page_token.clone(),
                        })
                        .await?
                        .into_inner();
                    for access in page.accesses {
                        let at = access.at.as_ref().and_then(from_timestamp);
                        rows.push((
                            at,
                            vec![
                                at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                                access.service,
                                access.caller,
                                access.method,
                                access.purpose,
                                access.trace_id,
                            ],
                        ));
                    }
                    if page.next_page_token.is_empty() {
                        break;
                    }
                    page_token = page.next_page_token;
                }
            }
            rows.sort_by_key(|(at, _)| *at);
            print_table(
                &["AT", "SERVICE", "CALLER", "METHOD", "PURPOSE", "TRACE"],
                &rows.into_iter().map(|(_, row)| row).collect::<Vec<_>>(),
            );
            Ok(())
        }
    }
}
