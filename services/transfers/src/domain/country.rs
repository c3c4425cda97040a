//! Countries: ISO 3166-1 alpha-2 codes, and which belong to each exporting regime.

use pdm_proto::transfers::v1::Regime;

/// Every ISO 3166-1 alpha-2 code (from Debian's iso-codes, 249 codes), sorted.
pub const ISO_3166_ALPHA2: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// The EEA: the 27 EU member states plus Iceland, Liechtenstein and Norway.
pub const EEA: [&str; 30] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS",
    "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// Normalises and validates a country code (upper case, ISO 3166-1 alpha-2).
pub fn parse(raw: &str) -> Result<String, &'static str> {
    let code = raw.trim().to_ascii_uppercase();
    if code.is_empty() {
        return Err("required");
    }
    if ISO_3166_ALPHA2.binary_search(&code.as_str()).is_ok() {
        Ok(code)
    } else {
        Err("not an ISO 3166-1 alpha-2 country code")
    }
}

/// Whether `country` is inside the exporting regime (no transfer rules apply).
pub fn within(regime: Regime, country: &str) -> bool {
    match regime {
        Regime::Eu => EEA.contains(&country),
        Regime::Uk => country == "GB",
        Regime::Ch => country == "CH",
        Regime::Other | Regime::Unspecified => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_validated_and_normalised() {
        assert_eq!(parse(" in "), Ok("IN".to_owned()));
        assert_eq!(parse("GB"), Ok("GB".to_owned()));
        assert!(
            parse("UK").is_err(),
            "UK is not the ISO code of the United Kingdom"
        );
        assert!(parse("XX").is_err());
        assert!(parse("").is_err());
        assert!(
            ISO_3166_ALPHA2.windows(2).all(|w| w[0] < w[1]),
            "sorted for binary search"
        );
        assert!(EEA.iter().all(|c| parse(c).is_ok()));
    }

    #[test]
    fn regimes_contain_their_own_countries() {
        assert!(within(Regime::Eu, "DE") && within(Regime::Eu, "NO"));
        assert!(!within(Regime::Eu, "GB") && !within(Regime::Eu, "CH"));
        assert!(within(Regime::Uk, "GB") && within(Regime::Ch, "CH"));
        assert!(!within(Regime::Other, "US"));
    }
}
