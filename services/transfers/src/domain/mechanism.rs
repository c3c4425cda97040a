//! Transfer mechanisms as the rules see them.

use chrono::{DateTime, Utc};
use pdm_proto::transfers::v1::{
    MechanismKind, MechanismStatus, PartyRole, RecipientRole, Regime, TiaOutcome,
};

/// A mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mechanism {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: MechanismKind,
    /// Regimes it serves.
    pub regimes: Vec<Regime>,
    /// SCC module, 1-4.
    pub scc_module: Option<u8>,
    /// Start of validity.
    pub valid_from: DateTime<Utc>,
    /// End of validity.
    pub expires_at: Option<DateTime<Utc>>,
    /// Review date.
    pub review_due: Option<DateTime<Utc>>,
    /// Status.
    pub status: MechanismStatus,
    /// Purposes covered (empty: all of the recipient's).
    pub purposes: Vec<String>,
    /// Categories covered (empty: all of the recipient's).
    pub data_categories: Vec<String>,
    /// TIA outcome and whether measures are listed.
    pub tia: Option<(TiaOutcome, usize)>,
}

/// The regimes a kind serves by default.
pub fn default_regimes(kind: MechanismKind) -> Vec<Regime> {
    match kind {
        MechanismKind::EuScc => vec![Regime::Eu],
        MechanismKind::UkIdta | MechanismKind::UkAddendum => vec![Regime::Uk],
        MechanismKind::SwissScc => vec![Regime::Ch],
        _ => Vec::new(),
    }
}

/// Whether the kind carries an SCC module.
pub fn has_module(kind: MechanismKind) -> bool {
    matches!(
        kind,
        MechanismKind::EuScc | MechanismKind::SwissScc | MechanismKind::UkAddendum
    )
}

/// Whether the kind needs a transfer impact assessment.
pub fn needs_tia(kind: MechanismKind) -> bool {
    matches!(
        kind,
        MechanismKind::EuScc
            | MechanismKind::SwissScc
            | MechanismKind::UkAddendum
            | MechanismKind::UkIdta
    )
}

/// Whether the kind is an Art. 49 derogation (occasional transfers only).
pub fn is_derogation(kind: MechanismKind) -> bool {
    matches!(
        kind,
        MechanismKind::DerogationExplicitConsent | MechanismKind::DerogationContract
    )
}

/// The role of a recipient as importer.
pub fn importer_role(role: RecipientRole) -> PartyRole {
    match role {
        RecipientRole::Processor | RecipientRole::SubProcessor => PartyRole::Processor,
        _ => PartyRole::Controller,
    }
}

/// The SCC module (Decision 2021/914) for an exporter and importer role: 1 controller to
/// controller, 2 controller to processor, 3 processor to processor, 4 processor to
/// controller.
pub fn expected_module(exporter: PartyRole, importer: PartyRole) -> u8 {
    match (exporter, importer) {
        (PartyRole::Processor, PartyRole::Processor) => 3,
        (PartyRole::Processor, _) => 4,
        (_, PartyRole::Processor) => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_follow_the_parties_roles() {
        use PartyRole::{Controller, Processor};
        assert_eq!(expected_module(Controller, Controller), 1);
        assert_eq!(expected_module(Controller, Processor), 2);
        assert_eq!(expected_module(Processor, Processor), 3);
        assert_eq!(expected_module(Processor, Controller), 4);
        assert_eq!(
            expected_module(
                PartyRole::Unspecified,
                importer_role(RecipientRole::Processor)
            ),
            2
        );
        assert_eq!(
            importer_role(RecipientRole::IndependentController),
            Controller
        );
    }
}
