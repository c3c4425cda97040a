//! Domain values and rows to protobuf messages.

use pdm_proto::{
    common::v1::LegalBasis,
    consent::v1::{self as pb, Channel, ConsentStatus, LedgerEntryKind, Source},
};
use pdm_runtime::convert::timestamp;

use crate::{
    domain::{
        catalogue::{Purpose, REGIONS},
        decision::{Decision, decide},
        state::SubjectState,
    },
    store::Row,
};

pub fn decision(d: Decision) -> pb::Decision {
    pb::Decision {
        allowed: d.allowed,
        legal_basis: d.basis as i32,
        reason: d.reason as i32,
    }
}

pub fn purpose(p: &Purpose) -> pb::Purpose {
    pb::Purpose {
        key: p.key.clone(),
        description: p.description.clone(),
        data_categories: p.data_categories.clone(),
        legal_bases: REGIONS
            .iter()
            .map(|r| pb::RegionalBasis {
                region: *r as i32,
                legal_basis: p.basis(*r) as i32,
            })
            .collect(),
        refusable: p.refusable(),
        objectable: p.objectable(),
        direct_marketing: p.direct_marketing,
        special_category: p.special_category,
    }
}

pub fn purpose_state(p: &Purpose, index: usize, state: &SubjectState) -> pb::PurposeState {
    let basis = p.basis(state.region);
    let consent = if basis != LegalBasis::Consent {
        ConsentStatus::NotRequired
    } else if state.granted(index) {
        ConsentStatus::Granted
    } else if state.withdrawn(index) {
        ConsentStatus::Withdrawn
    } else {
        ConsentStatus::NotGiven
    };
    pb::PurposeState {
        purpose: p.key.clone(),
        legal_basis: basis as i32,
        consent: consent as i32,
        objected: state.objected(index),
        decision: Some(decision(decide(p, index, state))),
    }
}

pub fn entry(row: Row) -> pb::LedgerEntry {
    pb::LedgerEntry {
        sequence: row.seq,
        subject_id: row.subject_id,
        kind: LedgerEntryKind::from_str_name(&row.kind).unwrap_or(LedgerEntryKind::Unspecified)
            as i32,
        purpose: row.purpose.unwrap_or_default(),
        channel: row
            .channel
            .as_deref()
            .and_then(Channel::from_str_name)
            .unwrap_or(Channel::Unspecified) as i32,
        source: Source::from_str_name(&row.source).unwrap_or(Source::Unspecified) as i32,
        policy_version: row.policy_version.unwrap_or_default(),
        text_hash: row.text_hash.unwrap_or_default(),
        actor: row.actor.unwrap_or_default(),
        occurred_at: Some(timestamp(row.occurred_at)),
        recorded_at: Some(timestamp(row.recorded_at)),
    }
}
