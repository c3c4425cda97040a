//! Each request has a data key of its own (kept in the rights key store, see
//! [`crate::store::KeyOf`]) that seals what the request carries about the subject:
//! corrected values, notes, the contact address for messages, and the export package.

use pdm_crypto::{CryptoError, DataKey};
use serde::{Deserialize, Serialize};

/// Field names bound into ciphertexts.
pub const F_DETAILS: &str = "requests.details";
/// Export package chunks.
pub const F_CHUNK: &str = "package_chunks.chunk";
/// Outbox recipient.
pub const F_RECIPIENT: &str = "outbox.recipient";
/// Outbox body.
pub const F_BODY: &str = "outbox.body";

/// What a request carries besides its kind and subject.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Details {
    /// Purpose objected to.
    pub purpose: Option<String>,
    /// `(field, value)` corrections.
    pub rectifications: Vec<(String, String)>,
    /// The requester's notes.
    pub notes: Option<String>,
    /// Where to write to the subject (learned from identity once verified).
    pub contact_email: Option<String>,
    /// The operator's reference when the privacy team verified the subject.
    pub operator_reference: Option<String>,
    /// The child report this erasure came from (its messages go to the reporter).
    #[serde(default)]
    pub child_report: Option<String>,
}

/// Child report details.
pub const F_CHILD_REPORT: &str = "child_reports.details";

/// What a child report carries about people: sealed with a key of its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChildReportDetails {
    /// The email the report named (when it named no subject id).
    pub email: Option<String>,
    /// How to reach the reporter.
    pub reporter_contact: String,
    /// What the reporter said.
    pub notes: Option<String>,
}

/// Seals a child report's details.
pub fn seal_report(key: &DataKey, details: &ChildReportDetails) -> Result<Vec<u8>, CryptoError> {
    let json = serde_json::to_vec(details).map_err(|_| CryptoError::Unauthentic)?;
    key.seal(F_CHILD_REPORT, &json)
}

/// Opens a child report's details.
pub fn open_report(key: &DataKey, sealed: &[u8]) -> Result<ChildReportDetails, CryptoError> {
    let json = key.open(F_CHILD_REPORT, sealed)?;
    serde_json::from_slice(&json).map_err(|_| CryptoError::Unauthentic)
}

/// Seals details.
pub fn seal_details(key: &DataKey, details: &Details) -> Result<Vec<u8>, CryptoError> {
    let json = serde_json::to_vec(details).map_err(|_| CryptoError::Unauthentic)?;
    key.seal(F_DETAILS, &json)
}

/// Opens details.
pub fn open_details(key: &DataKey, sealed: &[u8]) -> Result<Details, CryptoError> {
    let json = key.open(F_DETAILS, sealed)?;
    serde_json::from_slice(&json).map_err(|_| CryptoError::Unauthentic)
}
