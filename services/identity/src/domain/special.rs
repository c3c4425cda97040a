//! Special categories of personal data (Art. 9(1) GDPR) declared on support tickets and
//! their attachments. Policy, "Consent to be obtained": "We always ask for your permission
//! before collecting or using any sensitive personal details": each declared category
//! needs the subject's explicit consent, kept by the consent service under a purpose of
//! its own.

use pdm_proto::identity::v1::SpecialCategory;

/// Most categories one list may declare: there are eight, each at most once.
pub const MAX_DECLARED: usize = 8;

/// The consent purpose whose explicit grant allows collecting the category.
pub fn consent_purpose(category: SpecialCategory) -> Option<&'static str> {
    match category {
        SpecialCategory::Unspecified => None,
        SpecialCategory::Health => Some("special_category_health"),
        SpecialCategory::Biometric => Some("special_category_biometric"),
        SpecialCategory::Genetic => Some("special_category_genetic"),
        SpecialCategory::Ethnicity => Some("special_category_ethnicity"),
        SpecialCategory::Politics => Some("special_category_politics"),
        SpecialCategory::Religion => Some("special_category_religion"),
        SpecialCategory::TradeUnion => Some("special_category_trade_union"),
        SpecialCategory::SexLife => Some("special_category_sex_life"),
    }
}

/// Parses a declared list: known categories, none unspecified, none twice.
pub fn parse_declared(raw: &[i32]) -> Result<Vec<SpecialCategory>, String> {
    if raw.len() > MAX_DECLARED {
        return Err(format!("at most {MAX_DECLARED} categories, each once"));
    }
    let mut declared = Vec::with_capacity(raw.len());
    for value in raw {
        let category = match SpecialCategory::try_from(*value) {
            Ok(SpecialCategory::Unspecified) => return Err("unspecified category".into()),
            Ok(category) => category,
            Err(_) => return Err(format!("unknown category {value}")),
        };
        if declared.contains(&category) {
            return Err(format!("{} declared twice", category.as_str_name()));
        }
        declared.push(category);
    }
    Ok(declared)
}

/// Every category declared anywhere on a ticket, once each, in enum order: what consent
/// is asked about.
pub fn union<'a>(lists: impl IntoIterator<Item = &'a [SpecialCategory]>) -> Vec<SpecialCategory> {
    let mut all: Vec<SpecialCategory> = lists.into_iter().flatten().copied().collect();
    all.sort_by_key(|c| *c as i32);
    all.dedup();
    all
}

/// Stored form: comma-separated enum names (sealed by the store).
pub fn encode(categories: &[SpecialCategory]) -> String {
    categories
        .iter()
        .map(|c| c.as_str_name())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads the stored form back; names no longer known are dropped.
pub fn decode(stored: &str) -> Vec<SpecialCategory> {
    stored
        .split(',')
        .filter_map(SpecialCategory::from_str_name)
        .filter(|c| *c != SpecialCategory::Unspecified)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [SpecialCategory; 8] = [
        SpecialCategory::Health,
        SpecialCategory::Biometric,
        SpecialCategory::Genetic,
        SpecialCategory::Ethnicity,
        SpecialCategory::Politics,
        SpecialCategory::Religion,
        SpecialCategory::TradeUnion,
        SpecialCategory::SexLife,
    ];

    #[test]
    fn we_always_ask_for_your_permission_each_category_has_its_own_consent_purpose() {
        let mut purposes: Vec<&str> = ALL.iter().filter_map(|c| consent_purpose(*c)).collect();
        assert_eq!(purposes.len(), 8);
        purposes.dedup();
        assert_eq!(purposes.len(), 8, "one purpose per category");
        assert!(purposes.iter().all(|p| p.starts_with("special_category_")));
        assert_eq!(consent_purpose(SpecialCategory::Unspecified), None);
    }

    #[test]
    fn declared_lists_hold_known_categories_once_each() {
        let raw: Vec<i32> = ALL.iter().map(|c| *c as i32).collect();
        assert_eq!(parse_declared(&raw), Ok(ALL.to_vec()));
        assert_eq!(parse_declared(&[]), Ok(Vec::new()));
        assert!(parse_declared(&[0]).is_err());
        assert!(parse_declared(&[99]).is_err());
        assert!(parse_declared(&[1, 1]).is_err());
        let too_many: Vec<i32> = (1..=9).collect();
        assert!(parse_declared(&too_many).is_err());
    }

    #[test]
    fn the_union_names_each_category_once_and_round_trips_through_storage() {
        let ticket = [SpecialCategory::Religion, SpecialCategory::Health];
        let attachment = [SpecialCategory::Health, SpecialCategory::Biometric];
        let all = union([&ticket[..], &attachment[..]]);
        assert_eq!(
            all,
            [
                SpecialCategory::Health,
                SpecialCategory::Biometric,
                SpecialCategory::Religion
            ]
        );
        assert_eq!(decode(&encode(&all)), all);
        assert_eq!(decode(""), []);
        assert_eq!(
            decode("SPECIAL_CATEGORY_HEALTH,SOMETHING_RETIRED"),
            [SpecialCategory::Health]
        );
    }
}
