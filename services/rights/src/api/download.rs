//! DownloadExport: the package streamed chunk by chunk, opened on the way out.

use std::pin::Pin;

use pdm_proto::rights::v1::{DownloadExportResponse, RequestKind};
use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::Status as GrpcStatus;
use tracing::Instrument;

use super::{RightsApi, access::Viewer};
use crate::{
    error::{Result, RightsError},
    package::{self, ExportSummary},
    store::{KeyOf, RequestStatus},
};

/// The stream type of DownloadExport.
pub type DownloadStream =
    Pin<Box<dyn Stream<Item = std::result::Result<DownloadExportResponse, GrpcStatus>> + Send>>;

const CONTENT_TYPE: &str = "application/json; schema=pdm.export.v1";

impl RightsApi {
    /// Streams the package to `viewer`; a download with a token uses it up once the whole
    /// package went out.
    pub(super) async fn download(
        &self,
        id: &str,
        viewer: &Viewer,
        token: &str,
    ) -> Result<DownloadStream> {
        let row = self.store.request(id).await?.ok_or(RightsError::NotFound)?;
        let kind = RequestKind::from_str_name(&row.kind).unwrap_or_default();
        if !matches!(
            kind,
            RequestKind::Access | RequestKind::Portability | RequestKind::CcpaKnow
        ) {
            return Err(RightsError::NotAllowed(
                "only access and portability requests have a package".into(),
            ));
        }
        if row.status != RequestStatus::Completed {
            return Err(RightsError::NotAllowed(
                "the package is not ready: the request is still open".into(),
            ));
        }
        let now = self.clock.now();
        if row.package_expires_at.is_none_or(|e| e <= now) {
            return Err(RightsError::NotAllowed("the package has expired".into()));
        }
        let token_hash = self.check_download_token(id, viewer, token).await?;
        let key = self.store.key(KeyOf::Request(id)).await?;
        let tasks = self.store.tasks_of(id).await?;
        let exports: Vec<ExportSummary> = tasks
            .iter()
            .filter(|t| t.action == "export")
            .filter_map(|t| {
                t.result
                    .as_deref()
                    .and_then(|r| serde_json::from_str(r).ok())
            })
            .collect();
        let result = |action: &str| {
            tasks
                .iter()
                .find(|t| t.action == action)
                .and_then(|t| t.result.as_deref())
        };
        let answers = package::Answers {
            schedule: result("schedule").and_then(|r| serde_json::from_str(r).ok()),
            consented: result("purposes")
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_default(),
            standing: result("register")
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_default(),
            dpo: serde_json::to_value(self.dpo.as_ref()).ok(),
            breach_notices: self
                .breach_notices(
                    row.subject_id.as_deref().unwrap_or_default(),
                    row.closed_at.unwrap_or(now),
                )
                .await?,
        };
        let summary = package::summary(&exports, &answers);
        let keys = self.store.chunk_keys(id).await?;
        let head = package::head(
            id,
            row.subject_id.as_deref().unwrap_or_default(),
            &row.kind,
            &row.regime,
            &row.closed_at.unwrap_or(now).to_rfc3339(),
        );
        let store = self.store.clone();
        let id = id.to_owned();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(
            async move {
                let send = |bytes: Vec<u8>| {
                    let tx = tx.clone();
                    async move {
                        tx.send(Ok(DownloadExportResponse {
                            chunk: bytes,
                            content_type: CONTENT_TYPE.to_owned(),
                        }))
                        .await
                        .is_ok()
                    }
                };
                if !send(head).await {
                    return;
                }
                for (i, (service, seq)) in keys.into_iter().enumerate() {
                    let sealed = match store.chunk(&id, &service, seq).await {
                        Ok(Some(c)) => c,
                        Ok(None) => continue,
                        Err(e) => {
                            let _ = tx.send(Err(e.into())).await;
                            return;
                        }
                    };
                    let key = key.clone();
                    let opened = tokio::task::spawn_blocking(move || {
                        package::open_chunk(&key, &sealed, i == 0)
                    })
                    .await;
                    match opened {
                        Ok(Ok(bytes)) => {
                            if !send(bytes).await {
                                return;
                            }
                        }
                        _ => {
                            let _ = tx
                                .send(Err(RightsError::Internal("package chunk unreadable").into()))
                                .await;
                            return;
                        }
                    }
                }
                if !send(package::tail(&summary)).await {
                    return;
                }
                if let Some(hash) = token_hash {
                    match store
                        .use_download_token(&id, hash, chrono::Utc::now())
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!("a download token was used twice at once"),
                        Err(e) => {
                            tracing::warn!(error = %e, "marking a download token used failed")
                        }
                    }
                }
            }
            .in_current_span(),
        );
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    /// The breach notices sent to `subject` by `until` (the package's making), as the
    /// package lists them: the texts they were told, the DPO named, and how delivery went.
    async fn breach_notices(
        &self,
        subject: &str,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<serde_json::Value>> {
        if subject.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.store.notices_of_subject(subject, until).await?;
        Ok(self
            .notices_pb(rows)
            .await?
            .into_iter()
            .map(|n| {
                let status = pdm_proto::rights::v1::NoticeStatus::try_from(n.status)
                    .unwrap_or_default()
                    .as_str_name()
                    .trim_start_matches("NOTICE_STATUS_")
                    .to_lowercase();
                let dpo = n.dpo.unwrap_or_default();
                serde_json::json!({
                    "incident_id": n.incident_id,
                    "notice_id": n.notice_id,
                    "told_at": n.created_at.as_ref().and_then(pdm_runtime::convert::from_timestamp).map(|t| t.to_rfc3339()),
                    "what_happened": n.what_happened,
                    "likely_consequences": n.likely_consequences,
                    "measures_taken": n.measures_taken,
                    "data_protection_officer": {
                        "name": dpo.name,
                        "email": dpo.email,
                        "postal_address": dpo.postal_address,
                    },
                    "delivery": status,
                })
            })
            .collect())
    }
}
