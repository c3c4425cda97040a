//! GetConsentStatistics: how many subjects' consent is in force per purpose, counted in
//! the database, for the privacy team. Counts only: no subject leaves this file.

use std::collections::BTreeMap;

use pdm_proto::consent::v1::{self as pb, LedgerEntryKind};
use sea_orm::{ConnectionTrait as _, Statement};

use super::ConsentApi;
use crate::error::Result;

/// The ledger kinds that start or end a consent.
fn consent_kinds() -> String {
    [
        LedgerEntryKind::Grant,
        LedgerEntryKind::ExplicitGrant,
        LedgerEntryKind::Withdraw,
    ]
    .iter()
    .map(|k| format!("'{}'", k.as_str_name()))
    .collect::<Vec<_>>()
    .join(", ")
}

/// Adds a count of `kind` to a purpose's statistics: `now` for the latest entries,
/// otherwise the recorded totals.
fn add(stats: &mut pb::PurposeStatistics, kind: &str, n: u64, now: bool) {
    let withdraw = kind == LedgerEntryKind::Withdraw.as_str_name();
    match (now, withdraw) {
        (true, false) => stats.granted_now += n,
        (true, true) => stats.withdrawn_now += n,
        (false, false) => stats.grants_recorded += n,
        (false, true) => stats.withdrawals_recorded += n,
    }
}

impl ConsentApi {
    /// Counts per purpose at the ledger's current position.
    pub(super) async fn statistics(&self) -> Result<pb::GetConsentStatisticsResponse> {
        let db = self.inner.store.db();
        let kinds = consent_kinds();
        let sequence = self.inner.store.max_seq().await?;
        // Recorded: every entry. Now: each living subject's latest entry per purpose.
        let recorded = format!(
            "SELECT purpose, kind, COUNT(*) AS n FROM consent_events \
             WHERE purpose IS NOT NULL AND kind IN ({kinds}) AND seq <= {sequence} \
             GROUP BY purpose, kind"
        );
        let now = format!(
            "SELECT e.purpose, e.kind, COUNT(*) AS n FROM consent_events e \
             WHERE e.purpose IS NOT NULL AND e.kind IN ({kinds}) \
             AND e.subject_id NOT LIKE 'erased:%' \
             AND e.seq = (SELECT MAX(l.seq) FROM consent_events l \
               WHERE l.subject_id = e.subject_id AND l.purpose = e.purpose \
               AND l.kind IN ({kinds}) AND l.seq <= {sequence}) \
             GROUP BY e.purpose, e.kind"
        );
        let mut by_purpose: BTreeMap<String, pb::PurposeStatistics> = BTreeMap::new();
        for (sql, is_now) in [(recorded, false), (now, true)] {
            let rows = db
                .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
                .await?;
            for row in rows {
                let purpose: String = row.try_get("", "purpose")?;
                let kind: String = row.try_get("", "kind")?;
                let n: i64 = row.try_get("", "n")?;
                let stats =
                    by_purpose
                        .entry(purpose.clone())
                        .or_insert_with(|| pb::PurposeStatistics {
                            purpose,
                            ..Default::default()
                        });
                add(stats, &kind, u64::try_from(n).unwrap_or(0), is_now);
            }
        }
        Ok(pb::GetConsentStatisticsResponse {
            purposes: by_purpose.into_values().collect(),
            sequence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_and_withdrawals_land_in_their_counts() {
        let mut s = pb::PurposeStatistics::default();
        add(&mut s, "LEDGER_ENTRY_KIND_GRANT", 2, true);
        add(&mut s, "LEDGER_ENTRY_KIND_EXPLICIT_GRANT", 1, true);
        add(&mut s, "LEDGER_ENTRY_KIND_WITHDRAW", 4, true);
        add(&mut s, "LEDGER_ENTRY_KIND_GRANT", 5, false);
        add(&mut s, "LEDGER_ENTRY_KIND_WITHDRAW", 6, false);
        assert_eq!(
            (
                s.granted_now,
                s.withdrawn_now,
                s.grants_recorded,
                s.withdrawals_recorded
            ),
            (3, 4, 5, 6)
        );
        assert!(consent_kinds().contains("'LEDGER_ENTRY_KIND_EXPLICIT_GRANT'"));
    }
}
