//! Legal holds: which subject and category a hold covers.

/// A hold's scope: `None` covers every subject, or every category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldScope {
    /// Hold id.
    pub hold_id: String,
    /// Subject held, or every subject.
    pub subject: Option<String>,
    /// Category held, or every category.
    pub category: Option<String>,
}

impl HoldScope {
    /// Whether the hold keeps `subject`'s data of `category`.
    pub fn covers(&self, subject: &str, category: &str) -> bool {
        self.subject.as_deref().is_none_or(|s| s == subject)
            && self.category.as_deref().is_none_or(|c| c == category)
    }
}

/// The ids of the holds that keep `subject`'s data of `category`.
pub fn holding(holds: &[HoldScope], subject: &str, category: &str) -> Vec<String> {
    holds
        .iter()
        .filter(|h| h.covers(subject, category))
        .map(|h| h.hold_id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(id: &str, subject: Option<&str>, category: Option<&str>) -> HoldScope {
        HoldScope {
            hold_id: id.into(),
            subject: subject.map(str::to_owned),
            category: category.map(str::to_owned),
        }
    }

    #[test]
    fn holds_cover_their_subject_their_category_or_everything_left_open() {
        let holds = [
            hold("ada-all", Some("ada"), None),
            hold("billing-all", None, Some("billing.record")),
            hold("bob-billing", Some("bob"), Some("billing.record")),
        ];
        assert_eq!(holding(&holds, "ada", "support.ticket"), ["ada-all"]);
        assert_eq!(
            holding(&holds, "ada", "billing.record"),
            ["ada-all", "billing-all"]
        );
        assert_eq!(
            holding(&holds, "bob", "billing.record"),
            ["billing-all", "bob-billing"]
        );
        assert!(holding(&holds, "bob", "support.ticket").is_empty());
    }
}
