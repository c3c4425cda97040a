//! Which law an account deletion is an erasure request under, by the subject's region.

use pdm_proto::{
    common::v1::Region,
    rights::v1::{Regime, RequestKind},
};

/// The regime and kind of the erasure request behind an account deletion.
pub fn deletion_request(region: Region) -> (Regime, RequestKind) {
    match region {
        Region::UsCa => (Regime::Ccpa, RequestKind::CcpaDelete),
        Region::Uk => (Regime::UkGdpr, RequestKind::Erasure),
        Region::Ch => (Regime::Swiss, RequestKind::Erasure),
        // The EEA, and everywhere else: the GDPR's erasure, the strictest handling we offer.
        _ => (Regime::Gdpr, RequestKind::Erasure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn californians_delete_under_the_ccpa_others_erase() {
        assert_eq!(
            deletion_request(Region::UsCa),
            (Regime::Ccpa, RequestKind::CcpaDelete)
        );
        assert_eq!(
            deletion_request(Region::Uk),
            (Regime::UkGdpr, RequestKind::Erasure)
        );
        assert_eq!(
            deletion_request(Region::In),
            (Regime::Gdpr, RequestKind::Erasure)
        );
    }
}
