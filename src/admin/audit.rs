//! `pdm audit …`: verify the access trail of every service; list a subject's accesses.

use clap::Subcommand;
use pdm_proto::audit::v1::{
    ListAccessesRequest, VerifyAccessLogRequest, audit_service_client::AuditServiceClient,
};
use pdm_runtime::{Settings, convert::from_timestamp};

use super::{channel, print_table};
use crate::catalogue;

/// `pdm audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check each service's hash-chained access trail; exits 1 if any entry was edited,
    /// deleted or moved, or a service could not be asked.
    Verify {
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

/// Runs a `pdm audit` command.
pub async fn run(settings: &Settings, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { services } => {
            let mut rows = Vec::new();
            let mut failed = false;
            let mut details = Vec::new();
            for name in selected(&services)? {
                let answer = async {
                    AuditServiceClient::new(channel(settings, name)?)
                        .verify_access_log(VerifyAccessLogRequest {})
                        .await
                        .map_err(anyhow::Error::from)
                }
                .await;
                match answer {
                    Ok(answer) => {
                        let answer = answer.into_inner();
                        failed |= !answer.intact;
                        rows.push(vec![
                            name.to_owned(),
                            answer.entries.to_string(),
                            if answer.intact { "intact" } else { "TAMPERED" }.to_owned(),
                        ]);
                        for problem in answer.problems {
                            details.push(format!("  {name}: {}", problem.description));
                        }
                        if answer.truncated {
                            details.push(format!("  {name}: … and more"));
                        }
                    }
                    Err(err) => {
                        failed = true;
                        rows.push(vec![
                            name.to_owned(),
                            "-".to_owned(),
                            format!("error: {err:#}"),
                        ]);
                    }
                }
            }
            print_table(&["SERVICE", "ENTRIES", "TRAIL"], &rows);
            for line in details {
                println!("{line}");
            }
            anyhow::ensure!(!failed, "the access trail did not verify");
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
