//! Payment card numbers are never stored (policy: "We don't actually collect or store this
//! sensitive payment information ourselves"). Any text with a Luhn-valid run of 13 to 19
//! digits is refused.

/// Whether `text` contains something that looks like a payment card number: a run of
/// 13 to 19 digits, optionally grouped by single spaces or hyphens, that passes the Luhn
/// check. Longer digit runs are not card numbers and are not searched inside.
pub fn contains_card_number(text: &str) -> bool {
    digit_runs(text)
        .iter()
        .any(|run| (13..=19).contains(&run.len()) && luhn_valid(run))
}

/// The Luhn checksum over ASCII digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Maximal digit runs, where one space or hyphen between two digits joins them.
fn digit_runs(text: &str) -> Vec<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut current = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_digit() {
            current.push(b);
        } else if (b == b' ' || b == b'-')
            && !current.is_empty()
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
        {
            // a separator inside a grouped number: keep the run going
        } else if !current.is_empty() {
            runs.push(std::mem::take(&mut current));
        }
        i += 1;
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn test_card_numbers_are_found_in_any_common_spelling() {
        for text in [
            "4111111111111111",
            "my card is 4111 1111 1111 1111, thanks",
            "5500-0000-0000-0004",
            "amex 378282246310005.",
            "card:6011111111111117",
        ] {
            assert!(contains_card_number(text), "{text}");
        }
    }

    #[test]
    fn ordinary_text_and_numbers_pass() {
        for text in [
            "order 12345 arrived late",
            "4111111111111112",     // Luhn-invalid
            "411111111111",         // 12 digits
            "41111111111111111111", // 20 digits: not a card number
            "call me on 2024-05-01 at 10",
            "",
        ] {
            assert!(!contains_card_number(text), "{text}");
        }
    }

    #[test]
    fn luhn_reference_values() {
        assert!(luhn_valid(b"79927398713"));
        assert!(!luhn_valid(b"79927398710"));
        assert!(!luhn_valid(b""));
    }

    fn luhn_complete(prefix: &[u8]) -> Vec<u8> {
        (b'0'..=b'9')
            .map(|check| [prefix, &[check]].concat())
            .find(|d| luhn_valid(d))
            .unwrap_or_default()
    }

    proptest! {
        #[test]
        fn every_valid_card_number_is_found_whatever_surrounds_it(
            body in proptest::collection::vec(0u8..10, 12..=18),
            before in "[a-z ]{0,10}",
            after in "[a-z .]{0,10}",
        ) {
            let digits: Vec<u8> = body.iter().map(|d| b'0' + d).collect();
            let card = String::from_utf8(luhn_complete(&digits)).unwrap_or_default();
            let text = format!("{before}{card}{after}");
            // A digit-free neighbourhood keeps the run exactly the card number.
            prop_assert!(contains_card_number(&text), "{}", text);
        }

        #[test]
        fn exactly_one_check_digit_completes_a_number(
            body in proptest::collection::vec(0u8..10, 12..=18),
        ) {
            let digits: Vec<u8> = body.iter().map(|d| b'0' + d).collect();
            let valid = (b'0'..=b'9').filter(|c| luhn_valid(&[&digits[..], &[*c]].concat())).count();
            prop_assert_eq!(valid, 1);
        }
    }
}
