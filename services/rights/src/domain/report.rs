//! The yearly report: per kind, requests received, complied with, denied, the median
//! days to answer, and for erasures the reasons people gave for deleting their account.

use std::collections::BTreeMap;

use pdm_proto::identity::v1::DeletionReason;

/// Whether `name` is a reason a subject can give for deleting their account.
pub fn is_deletion_reason(name: &str) -> bool {
    DeletionReason::from_str_name(name).is_some_and(|r| r != DeletionReason::Unspecified)
}

/// How many gave each reason, by reason name (requests without one are not counted).
pub fn reason_counts<'a>(reasons: impl IntoIterator<Item = Option<&'a str>>) -> Vec<(String, u32)> {
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for reason in reasons.into_iter().flatten() {
        *counts.entry(reason).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(reason, n)| (reason.to_owned(), n))
        .collect()
}

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reasons_people_give_for_deleting_their_account_are_counted() {
        let counts = reason_counts([
            Some("DELETION_REASON_PRIVACY_CONCERNS"),
            None,
            Some("DELETION_REASON_TOO_EXPENSIVE"),
            Some("DELETION_REASON_PRIVACY_CONCERNS"),
        ]);
        assert_eq!(
            counts,
            [
                ("DELETION_REASON_PRIVACY_CONCERNS".to_owned(), 2),
                ("DELETION_REASON_TOO_EXPENSIVE".to_owned(), 1)
            ]
        );
        assert!(is_deletion_reason("DELETION_REASON_OTHER"));
        assert!(!is_deletion_reason("DELETION_REASON_UNSPECIFIED"));
        assert!(!is_deletion_reason("because"));
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), 0.0);
        assert_eq!(median(vec![3.0]), 3.0);
        assert_eq!(median(vec![5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
