//! The access and portability package, schema `pdm.export.v1`: every record every service
//! holds about the subject, and a summary answering the six questions of the policy ("How
//! to access and control your information"): what data, purposes, categories,
//! recipients, how long, and the source. Collected as sealed chunks while the export tasks
//! run; streamed on download, chunk by chunk.

use std::collections::{BTreeMap, BTreeSet};

use base64::{Engine, engine::general_purpose::STANDARD};
use pdm_crypto::DataKey;
use pdm_proto::{common::v1::LegalBasis, subject::v1::SubjectRecord};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    domain::answers::{self, Consented, Standing},
    sealed::F_CHUNK,
};

/// The package schema and version.
pub const SCHEMA: &str = "pdm.export.v1";
/// Plaintext bytes per sealed chunk.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// What one service's export contained, for the summary.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExportSummary {
    /// Service.
    pub service: String,
    /// Records.
    pub records: u64,
    /// Records per category.
    pub categories: BTreeMap<String, u64>,
    /// Purposes.
    pub purposes: BTreeSet<String>,
    /// Legal bases.
    pub legal_bases: BTreeSet<String>,
    /// Sources.
    pub sources: BTreeSet<String>,
    /// Recipients.
    pub recipients: BTreeSet<String>,
    /// Retention rule per category.
    pub retention: BTreeMap<String, String>,
    /// Who accessed the subject's data in this service and when, oldest first (from its
    /// access trail; at most [`MAX_ACCESSES`]).
    #[serde(default)]
    pub accesses: Vec<AccessLine>,
    /// More accesses were recorded than listed.
    #[serde(default)]
    pub accesses_truncated: bool,
}

/// Accesses listed per service at most.
pub const MAX_ACCESSES: usize = 10_000;

/// One entry of a service's access trail, as the package shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessLine {
    /// When (RFC 3339).
    pub at: String,
    /// Who: a service of the mesh, the privacy team (`admin`), or a company service.
    pub caller: String,
    /// What was done (the gRPC method).
    pub method: String,
    /// Why, when the call said.
    pub purpose: String,
    /// Trace id, to find the call in traces.
    pub trace_id: String,
}

impl ExportSummary {
    /// Counts a record in.
    pub fn add(&mut self, r: &SubjectRecord) {
        self.records += 1;
        *self.categories.entry(r.category.clone()).or_default() += 1;
        self.purposes.extend(r.purposes.iter().cloned());
        let basis = LegalBasis::try_from(r.legal_basis).unwrap_or_default();
        if basis != LegalBasis::Unspecified {
            self.legal_bases.insert(
                basis
                    .as_str_name()
                    .trim_start_matches("LEGAL_BASIS_")
                    .to_lowercase(),
            );
        }
        if !r.source.is_empty() {
            self.sources.insert(r.source.clone());
        }
        self.recipients.extend(r.recipients.iter().cloned());
        if let Some(retention) = &r.retention
            && !retention.rule.is_empty()
        {
            self.retention
                .entry(r.category.clone())
                .or_insert_with(|| retention.rule.clone());
        }
    }
}

/// A record as JSON, one line of a chunk.
pub fn record_json(r: &SubjectRecord) -> Value {
    let basis = LegalBasis::try_from(r.legal_basis).unwrap_or_default();
    json!({
        "service": r.service,
        "category": r.category,
        "record_id": r.record_id,
        "purposes": r.purposes,
        "legal_basis": basis.as_str_name().trim_start_matches("LEGAL_BASIS_").to_lowercase(),
        "source": r.source,
        "retention": r.retention.as_ref().map(|x| json!({
            "rule": x.rule,
            "delete_after": x.delete_after.as_ref().and_then(pdm_runtime::convert::from_timestamp).map(|t| t.to_rfc3339()),
        })),
        "recipients": r.recipients,
        "data": r.data.as_ref().map(pdm_runtime::convert::struct_to_json).unwrap_or(Value::Null),
        "attachment": r.attachment.as_ref().map(|a| json!({
            "name": a.name,
            "content_type": a.content_type,
            "content_base64": STANDARD.encode(&a.content),
        })),
        "created_at": r.created_at.as_ref().and_then(pdm_runtime::convert::from_timestamp).map(|t| t.to_rfc3339()),
    })
}

/// Accumulates record lines and seals them in chunks.
#[derive(Debug)]
pub struct ChunkWriter {
    key: DataKey,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    /// A writer sealing with the request's key.
    pub fn new(key: DataKey) -> Self {
        Self {
            key,
            buffer: Vec::with_capacity(CHUNK_BYTES + 4096),
        }
    }

    /// Adds a record; returns a sealed chunk when one is full.
    pub fn push(&mut self, record: &Value) -> Result<Option<Vec<u8>>, pdm_crypto::CryptoError> {
        serde_json::to_writer(&mut self.buffer, record)
            .map_err(|_| pdm_crypto::CryptoError::Unauthentic)?;
        self.buffer.push(b'\n');
        if self.buffer.len() >= CHUNK_BYTES {
            return self.flush();
        }
        Ok(None)
    }

    /// Seals what is left.
    pub fn flush(&mut self) -> Result<Option<Vec<u8>>, pdm_crypto::CryptoError> {
        if self.buffer.is_empty() {
            return Ok(None);
        }
        let sealed = self.key.seal(F_CHUNK, &self.buffer)?;
        self.buffer.clear();
        Ok(Some(sealed))
    }
}

/// Opens a chunk into its record lines, joined by commas for the package's JSON array.
pub fn open_chunk(
    key: &DataKey,
    sealed: &[u8],
    first: bool,
) -> Result<Vec<u8>, pdm_crypto::CryptoError> {
    let plain = key.open(F_CHUNK, sealed)?;
    let mut out = Vec::with_capacity(plain.len() + 64);
    let mut first_line = first;
    for line in plain.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if !first_line {
            out.extend_from_slice(b",\n");
        }
        out.extend_from_slice(line);
        first_line = false;
    }
    Ok(out)
}

/// The opening of the package, up to the records array.
pub fn head(
    request_id: &str,
    subject_id: &str,
    kind: &str,
    regime: &str,
    generated_at: &str,
) -> Vec<u8> {
    let header = json!({
        "schema": SCHEMA,
        "request_id": request_id,
        "subject_id": subject_id,
        "kind": kind,
        "regime": regime,
        "generated_at": generated_at,
    });
    let mut text = header.to_string();
    text.pop(); // the closing brace: the records follow
    text.push_str(",\"records\":[\n");
    text.into_bytes()
}

/// What an access request learns besides the services' exports.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    /// Retention's schedule for the subject (entries with category and rule).
    pub schedule: Option<Value>,
    /// The purposes the subject consented to (consent).
    pub consented: Vec<Consented>,
    /// The register's standing recipients (transfers).
    pub standing: Vec<Standing>,
    /// The Data Protection Officer to contact (`[incidents.dpo]`).
    pub dpo: Option<Value>,
    /// The breach notices sent to the subject before the package was made, oldest first.
    pub breach_notices: Vec<Value>,
}

/// The summary answering the six questions, and its human-readable form.
pub fn summary(exports: &[ExportSummary], answers: &Answers) -> Value {
    let schedule = answers.schedule.as_ref();
    let mut categories: BTreeMap<String, u64> = BTreeMap::new();
    let mut purposes = BTreeSet::new();
    let mut recipients = BTreeSet::new();
    let mut sources = BTreeSet::new();
    let mut bases = BTreeSet::new();
    let mut retention: BTreeMap<String, String> = BTreeMap::new();
    for e in exports {
        for (c, n) in &e.categories {
            *categories.entry(c.clone()).or_default() += n;
        }
        purposes.extend(e.purposes.iter().cloned());
        recipients.extend(e.recipients.iter().cloned());
        sources.extend(e.sources.iter().cloned());
        bases.extend(e.legal_bases.iter().cloned());
        for (c, rule) in &e.retention {
            retention.entry(c.clone()).or_insert_with(|| rule.clone());
        }
    }
    // Every purpose consented to, whether or not a record names it.
    purposes.extend(answers.consented.iter().map(|c| c.purpose.clone()));
    let held: BTreeSet<String> = categories.keys().cloned().collect();
    // The standing recipients of the subject's categories, besides logged transfers.
    let standing = answers::standing_for(&answers.standing, &held);
    recipients.extend(standing.iter().map(|s| s.name.clone()));
    // The rule that really applies: the retention schedule's, before a service's own.
    let scheduled: BTreeMap<String, String> = schedule
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["category"].as_str()?.to_owned(),
                e["rule"].as_str()?.to_owned(),
            ))
        })
        .filter(|(_, rule)| !rule.is_empty())
        .collect();
    let retention = answers::how_long(&retention, &scheduled, &held);
    let mut accesses: Vec<Value> = exports
        .iter()
        .flat_map(|e| {
            e.accesses.iter().map(|a| {
                json!({
                    "at": a.at,
                    "service": e.service,
                    "caller": a.caller,
                    "method": a.method,
                    "purpose": a.purpose,
                    "trace_id": a.trace_id,
                })
            })
        })
        .collect();
    accesses.sort_by(|a, b| a["at"].as_str().cmp(&b["at"].as_str()));
    let by_service: Vec<Value> = exports
        .iter()
        .map(|e| json!({ "service": e.service, "records": e.records, "categories": e.categories }))
        .collect();
    json!({
        "what_data": by_service,
        "purposes": purposes,
        "categories": categories,
        "legal_bases": bases,
        "recipients": recipients,
        "standing_recipients": standing,
        "consented_purposes": answers.consented,
        "how_long": retention,
        "retention_schedule": schedule.cloned().unwrap_or(Value::Null),
        "sources": sources,
        "accesses": accesses,
        "accesses_truncated": exports.iter().any(|e| e.accesses_truncated),
        "data_protection_officer": answers.dpo.clone().unwrap_or(Value::Null),
        "breach_notices": answers.breach_notices,
    })
}

/// The summary in words.
pub fn human_readable(summary: &Value) -> String {
    let list = |key: &str| -> String {
        match &summary[key] {
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; "),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}: {}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            _ => String::new(),
        }
    };
    let or_none = |s: String| if s.is_empty() { "none".to_owned() } else { s };
    format!(
        "1. What personal data we hold: {}\n\
         2. The purposes of the processing: {}\n\
         3. The categories of personal data concerned: {}\n\
         4. The recipients to whom it has been or will be disclosed: {}\n\
         5. How long we intend to store it: {}\n\
         6. Where it came from: {}\n\
         7. Who accessed it and when: {} recorded accesses (listed under \"accesses\")\n\
         8. Our Data Protection Officer: {}\n\
         9. Personal data breaches we told you of: {}\n",
        or_none(list("categories")),
        or_none(list("purposes")),
        or_none(
            summary["categories"]
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        ),
        or_none(list("recipients")),
        or_none(list("how_long")),
        or_none(list("sources")),
        summary["accesses"].as_array().map_or(0, Vec::len),
        or_none(dpo_line(&summary["data_protection_officer"])),
        match summary["breach_notices"].as_array().map_or(0, Vec::len) {
            0 => "none".to_owned(),
            n => format!("{n} (listed under \"breach_notices\")"),
        },
    )
}

/// "Name <email>" of the DPO in the summary (empty when none).
fn dpo_line(dpo: &Value) -> String {
    match (dpo["name"].as_str(), dpo["email"].as_str()) {
        (Some(name), Some(email)) => format!("{name} <{email}>"),
        _ => String::new(),
    }
}

/// The end of the package after the records.
pub fn tail(summary: &Value) -> Vec<u8> {
    let text = format!(
        "\n],\"summary\":{},\"human_readable\":{}}}\n",
        summary,
        Value::String(human_readable(summary))
    );
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use pdm_proto::subject::v1::Retention;

    use super::*;

    fn record(category: &str, n: u32) -> SubjectRecord {
        SubjectRecord {
            service: "identity".into(),
            category: category.into(),
            record_id: n.to_string(),
            purposes: vec!["service_provision".into()],
            legal_basis: LegalBasis::Contract as i32,
            source: "provided by the subject".into(),
            retention: Some(Retention {
                rule: "while the account exists".into(),
                delete_after: None,
            }),
            recipients: vec!["Primary hosting provider".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_package_is_valid_json_whatever_the_chunking() {
        let key = pdm_crypto::Keyring::new(&[4u8; 32])
            .generate("request:x")
            .map(|(k, _)| k)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut writer = ChunkWriter::new(key.clone());
        let mut summary = ExportSummary {
            service: "identity".into(),
            ..Default::default()
        };
        let mut chunks = Vec::new();
        for i in 0..3000 {
            let r = record(
                if i % 2 == 0 {
                    "account.profile"
                } else {
                    "support.ticket"
                },
                i,
            );
            summary.add(&r);
            if let Some(c) = writer.push(&record_json(&r)).unwrap_or_default() {
                chunks.push(c);
            }
        }
        chunks.extend(writer.flush().unwrap_or_default());
        assert!(chunks.len() > 1, "several chunks");
        let mut package = head("r1", "s1", "REQUEST_KIND_ACCESS", "REGIME_GDPR", "now");
        for (i, c) in chunks.iter().enumerate() {
            package.extend(open_chunk(&key, c, i == 0).unwrap_or_default());
        }
        let s = super::summary(&[summary], &Answers::default());
        package.extend(tail(&s));
        let parsed: Value = serde_json::from_slice(&package).unwrap_or(Value::Null);
        assert_eq!(parsed["schema"], SCHEMA);
        assert_eq!(parsed["records"].as_array().map(Vec::len), Some(3000));
        assert_eq!(parsed["summary"]["categories"]["support.ticket"], 1500);
        let text = parsed["human_readable"].as_str().unwrap_or_default();
        assert!(
            text.contains("4. The recipients") && text.contains("Primary hosting provider"),
            "{text}"
        );
    }
}
