//! RecordTrackingChoice and GetTrackingChoice: a logged-out visitor's choice per tracking
//! category ("Cookies and Other Tracking Tools ... gives you options to control them"),
//! kept under the device pseudonym only.

use chrono::{DateTime, Duration, Utc};
use pdm_proto::telemetry::v1 as pb;
use pdm_runtime::{FieldViolations, convert::timestamp, text::TextRule};

use super::{TelemetryApi, requests};
use crate::{
    domain::tracking::Choice,
    error::{Result, TelemetryError},
    store::{NewChoice, entities::tracking_choice},
};

/// Longest cookie policy version.
pub const MAX_POLICY_VERSION: usize = 32;

impl TelemetryApi {
    /// How long a choice applies.
    fn choice_lifetime(&self) -> Duration {
        Duration::days(i64::from(self.inner.settings.tracking_choice_days))
    }

    fn choice_of(&self, row: &tracking_choice::Model) -> pb::TrackingChoice {
        let choice = Choice {
            analytics: row.analytics,
            advertising: row.advertising,
            gpc: row.gpc,
        };
        pb::TrackingChoice {
            analytics: row.analytics,
            advertising: row.advertising,
            global_privacy_control: row.gpc,
            advertising_effective: choice.advertising_effective(),
            policy_version: row.policy_version.clone(),
            text_hash: row.text_hash.clone(),
            recorded_at: Some(timestamp(row.recorded_at)),
            expires_at: Some(timestamp(expiry(row.recorded_at, self.choice_lifetime()))),
        }
    }

    /// Validates and records a choice.
    pub(super) async fn record_choice(
        &self,
        r: pb::RecordTrackingChoiceRequest,
    ) -> Result<pb::RecordTrackingChoiceResponse> {
        let mut v = FieldViolations::new();
        let device = requests::device_id(&mut v, &|| "device_id".to_owned(), &r.device_id, true);
        let policy_version = v.check(
            "policy_version",
            TextRule::line(MAX_POLICY_VERSION).required(&r.policy_version),
        );
        let text_hash =
            if r.text_hash.len() == 64 && r.text_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                Some(r.text_hash.to_ascii_lowercase())
            } else {
                v.add(
                    "text_hash",
                    "must be the SHA-256 of the banner text shown, 64 hex characters",
                );
                None
            };
        v.finish().map_err(TelemetryError::Invalid)?;
        let (Some(device), Some(policy_version), Some(text_hash)) =
            (device, policy_version, text_hash)
        else {
            return Err(TelemetryError::Internal("validated choice incomplete"));
        };
        let row = self
            .inner
            .store
            .record_choice(
                self.inner.store.device_hash(&device),
                NewChoice {
                    choice: Choice {
                        analytics: r.analytics,
                        advertising: r.advertising,
                        gpc: r.global_privacy_control,
                    },
                    policy_version,
                    text_hash,
                },
                self.inner.clock.now(),
            )
            .await?;
        tracing::debug!(
            analytics = row.analytics,
            advertising = row.advertising,
            gpc = row.gpc,
            "tracking choice recorded"
        );
        Ok(pb::RecordTrackingChoiceResponse {
            choice: Some(self.choice_of(&row)),
        })
    }

    /// A device's current choice.
    pub(super) async fn get_choice(
        &self,
        r: &pb::GetTrackingChoiceRequest,
    ) -> Result<pb::GetTrackingChoiceResponse> {
        let mut v = FieldViolations::new();
        let device = requests::device_id(&mut v, &|| "device_id".to_owned(), &r.device_id, true);
        v.finish().map_err(TelemetryError::Invalid)?;
        let device = device.ok_or(TelemetryError::Internal("validated device missing"))?;
        let hash = self.inner.store.device_hash(&device);
        let since = self.inner.clock.now() - self.choice_lifetime();
        let current = self
            .inner
            .store
            .current_choices(std::slice::from_ref(&hash), since)
            .await?;
        Ok(match current.get(&hash) {
            Some(row) => pb::GetTrackingChoiceResponse {
                found: true,
                choice: Some(self.choice_of(row)),
            },
            None => pb::GetTrackingChoiceResponse {
                found: false,
                choice: None,
            },
        })
    }
}

/// When a choice recorded at `recorded_at` lapses.
fn expiry(recorded_at: DateTime<Utc>, lifetime: Duration) -> DateTime<Utc> {
    recorded_at + lifetime
}
