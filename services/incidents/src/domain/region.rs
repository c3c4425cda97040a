//! Where the affected people live: the region recorded per subject and the counts per
//! region, which decide whose regime's rules apply to whom. No I/O.

use std::collections::BTreeMap;

use pdm_proto::common::v1::Region;

/// The region a stored name stands for; unknown for none (not asked yet) or a name this
/// build does not know.
pub fn parse(name: Option<&str>) -> Region {
    name.and_then(Region::from_str_name)
        .unwrap_or(Region::Unspecified)
}

/// The region identity answered (`GetRegionResponse.region`); unknown for a value this
/// build does not know.
pub fn answered(value: i32) -> Region {
    Region::try_from(value).unwrap_or(Region::Unspecified)
}

/// Counts per region from counts per stored name, merged (not asked and unknown are one:
/// unknown), in region order, regions with nobody left out.
pub fn counts(stored: &[(Option<String>, i64)]) -> Vec<(Region, u64)> {
    let mut by: BTreeMap<i32, u64> = BTreeMap::new();
    for (name, n) in stored {
        let n = u64::try_from(*n).unwrap_or(0);
        if n > 0 {
            *by.entry(parse(name.as_deref()) as i32).or_default() += n;
        }
    }
    by.into_iter()
        .map(|(region, n)| (answered(region), n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_name_reads_back_and_anything_else_is_unknown() {
        assert_eq!(parse(Some(Region::Uk.as_str_name())), Region::Uk);
        assert_eq!(parse(Some("REGION_MARS")), Region::Unspecified);
        assert_eq!(parse(None), Region::Unspecified);
        assert_eq!(answered(999), Region::Unspecified);
        assert_eq!(answered(Region::UsCa as i32), Region::UsCa);
    }

    #[test]
    fn counts_merge_not_asked_with_unknown_in_region_order() {
        let stored = vec![
            (Some("REGION_US".to_owned()), 2),
            (None, 1),
            (Some("REGION_UK".to_owned()), 3),
            (Some("REGION_UNSPECIFIED".to_owned()), 4),
            (Some("REGION_EEA".to_owned()), 0),
        ];
        assert_eq!(
            counts(&stored),
            [(Region::Unspecified, 5), (Region::Uk, 3), (Region::Us, 2)]
        );
    }
}
