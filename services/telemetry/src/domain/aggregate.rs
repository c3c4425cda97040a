//! Aggregates are not personal data when no bucket is small enough to single someone out:
//! buckets below the k-threshold are withheld ("You cannot be identified from aggregate
//! information").

/// Default k-threshold.
pub const DEFAULT_K: u32 = 5;

/// Splits buckets into those shown and the number withheld.
pub fn suppress<T>(buckets: Vec<(T, u64)>, k: u32) -> (Vec<(T, u64)>, u32) {
    let mut withheld = 0u32;
    let shown = buckets
        .into_iter()
        .filter(|(_, count)| {
            let keep = *count >= u64::from(k);
            if !keep {
                withheld += 1;
            }
            keep
        })
        .collect();
    (shown, withheld)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_buckets_are_withheld() {
        let (shown, withheld) = suppress(vec![("a", 4), ("b", 5), ("c", 100), ("d", 1)], 5);
        assert_eq!(shown, vec![("b", 5), ("c", 100)]);
        assert_eq!(withheld, 2);
    }
}
