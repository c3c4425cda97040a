//! Rows to protobuf messages and to the rules' types.

use pdm_proto::transfers::v1::{
    self as pb, MechanismKind, MechanismStatus, Outcome, PartyRole, RecipientRole, Regime,
    TiaOutcome,
};
use pdm_runtime::convert::timestamp;

use crate::{
    domain::{adequacy::AdequacyList, mechanism::Mechanism},
    store::entities::{mechanism, recipient, transfer_log},
};

/// A JSON list column.
pub fn list(raw: &str) -> Vec<String> {
    serde_json::from_str(raw).unwrap_or_default()
}

pub fn recipient(r: recipient::Model) -> pb::Recipient {
    pb::Recipient {
        recipient_id: r.recipient_id,
        key: r.key,
        name: r.name,
        role: RecipientRole::from_str_name(&r.role).unwrap_or_default() as i32,
        country: r.country,
        purposes: list(&r.purposes),
        data_categories: list(&r.data_categories),
        contract_reference: r.contract_reference,
        contract_date: r.contract_date,
        certifications: list(&r.certifications),
        created_at: Some(timestamp(r.created_at)),
        updated_at: Some(timestamp(r.updated_at)),
    }
}

pub fn mechanism(m: mechanism::Model) -> pb::Mechanism {
    let tia = m
        .tia_outcome
        .as_ref()
        .map(|outcome| pb::TransferImpactAssessment {
            reference: m.tia_reference.clone().unwrap_or_default(),
            assessed_on: m.tia_assessed_on.clone().unwrap_or_default(),
            outcome: TiaOutcome::from_str_name(outcome).unwrap_or_default() as i32,
            supplementary_measures: list(&m.tia_measures),
        });
    pb::Mechanism {
        mechanism_id: m.mechanism_id,
        recipient_id: m.recipient_id,
        kind: MechanismKind::from_str_name(&m.kind).unwrap_or_default() as i32,
        regimes: list(&m.regimes)
            .iter()
            .map(|r| Regime::from_str_name(r).unwrap_or_default() as i32)
            .collect(),
        scc_module: m.scc_module.unwrap_or(0),
        exporter_role: PartyRole::from_str_name(&m.exporter_role).unwrap_or_default() as i32,
        signed_on: m.signed_on,
        parties: list(&m.parties),
        annex_references: list(&m.annex_references),
        valid_from: Some(timestamp(m.valid_from)),
        expires_at: m.expires_at.map(timestamp),
        review_due: m.review_due.map(timestamp),
        status: MechanismStatus::from_str_name(&m.status).unwrap_or_default() as i32,
        purposes: list(&m.purposes),
        data_categories: list(&m.data_categories),
        tia,
        occasional: m.occasional,
        created_at: Some(timestamp(m.created_at)),
    }
}

/// A stored mechanism as the rules see it.
pub fn rule_mechanism(m: &mechanism::Model) -> Mechanism {
    Mechanism {
        id: m.mechanism_id.clone(),
        kind: MechanismKind::from_str_name(&m.kind).unwrap_or_default(),
        regimes: list(&m.regimes)
            .iter()
            .filter_map(|r| Regime::from_str_name(r))
            .collect(),
        scc_module: m.scc_module.and_then(|v| u8::try_from(v).ok()),
        valid_from: m.valid_from,
        expires_at: m.expires_at,
        review_due: m.review_due,
        status: MechanismStatus::from_str_name(&m.status).unwrap_or_default(),
        purposes: list(&m.purposes),
        data_categories: list(&m.data_categories),
        tia: m.tia_outcome.as_ref().map(|o| {
            (
                TiaOutcome::from_str_name(o).unwrap_or_default(),
                list(&m.tia_measures).len(),
            )
        }),
    }
}

pub fn decision(row: &transfer_log::Model) -> pb::TransferDecision {
    pb::TransferDecision {
        log_id: row.log_id.clone(),
        allowed: row.allowed,
        outcome: Outcome::from_str_name(&row.outcome).unwrap_or_default() as i32,
        mechanism_id: row.mechanism_id.clone().unwrap_or_default(),
        mechanism_kind: row
            .mechanism_kind
            .as_deref()
            .and_then(MechanismKind::from_str_name)
            .unwrap_or_default() as i32,
        detail: row.detail.clone(),
        decided_at: Some(timestamp(row.decided_at)),
    }
}

pub fn log_entry(row: transfer_log::Model) -> pb::TransferLogEntry {
    pb::TransferLogEntry {
        decision: Some(decision(&row)),
        log_id: row.log_id,
        recipient_id: row.recipient_id,
        recipient_name: row.recipient_name,
        country: row.country,
        regime: Regime::from_str_name(&row.regime).unwrap_or_default() as i32,
        purpose: row.purpose,
        data_categories: list(&row.data_categories),
        subject_id: row.subject_id.unwrap_or_default(),
        reference: row.reference,
        legal_order: row.legal_basis.map(|legal_basis| pb::LegalOrder {
            legal_basis,
            order_reference: row.order_reference.unwrap_or_default(),
            issued_by: row.order_issued_by.unwrap_or_default(),
            secret_until: row.secret_until.map(timestamp),
        }),
    }
}

pub fn adequacy(l: &AdequacyList) -> pb::AdequacyList {
    pb::AdequacyList {
        regime: l.regime as i32,
        source: l.source.clone(),
        as_of: l.as_of.clone(),
        entries: l
            .destinations
            .iter()
            .map(|d| pb::AdequacyEntry {
                country: d.country.clone(),
                requires_certification: d.requires_certification.clone().unwrap_or_default(),
            })
            .collect(),
    }
}
