//! An incident's details as the register keeps them (one version), and the closed sets
//! its fields take values from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a breach did to the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nature {
    /// Disclosure of, or access to, personal data.
    Confidentiality,
    /// Alteration of personal data.
    Integrity,
    /// Loss of access to, or destruction of, personal data.
    Availability,
}

/// The assessed risk to people's rights and freedoms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Not assessed yet: the clocks run.
    #[default]
    Unassessed,
    /// Unlikely to result in a risk: recorded, not notified (Art. 33(1)).
    Unlikely,
    /// A risk: the authority is notified.
    Risk,
    /// A high risk: the authority is notified and the people told (Art. 34).
    High,
}

impl Risk {
    /// Whether the supervisory authority must be notified (as far as is known).
    pub fn authority_notified(self) -> bool {
        self != Self::Unlikely
    }
}

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Open.
    Open,
    /// Closed: no further change.
    Closed,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    /// From the stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// What made a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Opened.
    Opened,
    /// Details replaced.
    Assessed,
    /// An authority notification recorded.
    AuthorityNotified,
    /// Closed.
    Closed,
}

impl Change {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Assessed => "assessed",
            Self::AuthorityNotified => "authority_notified",
            Self::Closed => "closed",
        }
    }

    /// From the stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "opened" => Some(Self::Opened),
            "assessed" => Some(Self::Assessed),
            "authority_notified" => Some(Self::AuthorityNotified),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// An incident's details, validated (see `api::requests`). Stored as JSON, one copy per
/// version. The texts may hold personal data: never logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    /// Short summary.
    pub title: String,
    /// When the breach was detected.
    pub detected_at: DateTime<Utc>,
    /// When we became aware personal data was breached: the clocks start here.
    pub aware_at: DateTime<Utc>,
    /// What happened.
    pub description: String,
    /// What the breach did, without duplicates, sorted.
    pub natures: Vec<Nature>,
    /// Data categories concerned.
    pub data_categories: Vec<String>,
    /// Services or systems concerned.
    pub services: Vec<String>,
    /// Start of the exposure window.
    pub window_start: DateTime<Utc>,
    /// End of the exposure window, when known.
    pub window_end: Option<DateTime<Utc>>,
    /// Approximate number of people (0: unknown).
    pub approximate_subjects: i64,
    /// Approximate number of records (0: unknown).
    pub approximate_records: i64,
    /// Likely consequences.
    pub likely_consequences: String,
    /// Measures taken or proposed.
    pub measures_taken: String,
    /// The assessed risk.
    pub risk: Risk,
    /// Why that risk.
    pub risk_reasoning: String,
    /// Regime keys whose clocks apply.
    pub regimes: Vec<String>,
}
