//! Payment card numbers in free text (policy: "We don't actually collect or store this
//! sensitive payment information ourselves").
//!
//! A card number is a run of 13 to 19 ASCII digits, written plain or in groups joined by
//! single spaces or hyphens, that passes the Luhn check. Groups joined that way form one
//! digit sequence; a candidate starts at every digit of it and ends where a group ends,
//! so a quantity, a date or an order number written just before the card does not hide
//! it ("qty 2 4111 1111 1111 1111", "ref 20244111111111111111"), nor one after it. The
//! price of that thoroughness: a long number that is not a card can hold a Luhn-valid
//! tail (about one 16-digit number in three does) and is taken for one.

use std::ops::Range;

/// Shortest card number (digits).
pub const MIN_DIGITS: usize = 13;
/// Longest card number (digits).
pub const MAX_DIGITS: usize = 19;

/// Whether `text` holds something that looks like a payment card number.
pub fn contains_card_number(text: &str) -> bool {
    let mut found = false;
    for_each_card(text, |_| {
        found = true;
        false
    });
    found
}

/// The byte ranges of the card numbers in `text`, first digit to last, overlapping
/// finds merged, in order.
pub fn card_number_ranges(text: &str) -> Vec<Range<usize>> {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for_each_card(text, |found| {
        match ranges.last_mut() {
            Some(last) if found.start <= last.end => last.end = last.end.max(found.end),
            _ => ranges.push(found),
        }
        true
    });
    ranges
}

/// The Luhn checksum over ASCII digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    !digits.is_empty() && luhn_sum(digits).is_multiple_of(10)
}

fn luhn_sum(digits: &[u8]) -> u32 {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d.wrapping_sub(b'0'));
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum
}

/// Calls `found` with the byte range of every card number, in order of its first digit
/// (and, for one first digit, of length); stops when `found` returns false.
fn for_each_card(text: &str, mut found: impl FnMut(Range<usize>) -> bool) {
    let bytes = text.as_bytes();
    // Most text checked (names, locales, URLs) holds fewer digits than any card: one pass
    // without allocating settles it (this check ran on every field of every ingested event).
    if bytes.iter().filter(|b| b.is_ascii_digit()).count() < MIN_DIGITS {
        return;
    }
    let masked = hex_tokens(bytes);
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit) && !masked[i];
    let mut sequence = Sequence::default();
    let mut i = 0;
    while i <= bytes.len() {
        let b = bytes.get(i).copied();
        let joins = matches!(b, Some(b' ' | b'-')) && !sequence.digits.is_empty() && digit(i + 1);
        match b {
            Some(d) if digit(i) => {
                sequence.digits.push(d);
                sequence.positions.push(i);
                sequence.group_ends.push(!digit(i + 1));
            }
            _ if joins => {}
            _ => {
                if !sequence.search(&mut found) {
                    return;
                }
                sequence = Sequence::default();
            }
        }
        i += 1;
    }
}

/// The bytes of UUIDs and of long hexadecimal tokens (hashes, keys) that hold a letter:
/// their digits are nobody's number, and one random UUID in two hundred would otherwise
/// hold a Luhn-valid stretch. A token of digits alone is not skipped.
fn hex_tokens(bytes: &[u8]) -> Vec<bool> {
    let mut masked = vec![false; bytes.len()];
    let alnum = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_alphanumeric);
    let has_letter = |token: &[u8]| token.iter().any(u8::is_ascii_alphabetic);
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_hexdigit() || (i > 0 && alnum(i - 1)) {
            i += 1;
            continue;
        }
        let token = if is_uuid(&bytes[i..]) && !alnum(i + 36) {
            36
        } else {
            let run = bytes[i..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            if run >= 32 && !alnum(i + run) { run } else { 0 }
        };
        if token > 0 && has_letter(&bytes[i..i + token]) {
            masked[i..i + token].iter_mut().for_each(|m| *m = true);
            i += token;
        } else {
            i += 1;
        }
    }
    masked
}

/// Whether `bytes` starts with a UUID in its hyphenated form.
fn is_uuid(bytes: &[u8]) -> bool {
    bytes.len() >= 36
        && bytes[..36].iter().enumerate().all(|(k, b)| {
            if matches!(k, 8 | 13 | 18 | 23) {
                *b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

/// Digits joined by single separators, with where each sits in the text and whether it
/// ends a group.
#[derive(Default)]
struct Sequence {
    digits: Vec<u8>,
    positions: Vec<usize>,
    group_ends: Vec<bool>,
}

impl Sequence {
    /// Tries every start with every group end 13 to 19 digits further on.
    fn search(&self, found: &mut impl FnMut(Range<usize>) -> bool) -> bool {
        let n = self.digits.len();
        if n < MIN_DIGITS {
            return true;
        }
        for start in 0..=n - MIN_DIGITS {
            for end in start + MIN_DIGITS..=n.min(start + MAX_DIGITS) {
                if self.group_ends[end - 1] && luhn_valid(&self.digits[start..end]) {
                    let range = self.positions[start]..self.positions[end - 1] + 1;
                    if !found(range) {
                        return false;
                    }
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn card_numbers_are_found_in_any_common_spelling() {
        for text in [
            "4111111111111111",
            "my card is 4111 1111 1111 1111, thanks",
            "5500-0000-0000-0004",
            "amex 378282246310005.",
            "card:6011111111111117",
            "4222222222222",
            // After another number: the whole run fails Luhn, the card inside does not.
            "qty 2 4111 1111 1111 1111",
            "Jo 7 4111-1111-1111-1111",
            "2024-05-01 4111111111111111",
            "order 12345 4111 1111 1111 1111",
            "ref 20244111111111111111",
            "4111 1111 1111 1111 x2",
            "4111 1111 1111 1111 2",
        ] {
            assert!(contains_card_number(text), "{text}");
        }
    }

    #[test]
    fn ordinary_text_and_numbers_pass() {
        for text in [
            "order 12345 arrived late",
            "4111111111111113", // Luhn-invalid, and so is every tail of 13 or more
            "411111111111",     // 12 digits
            "41111111111111111111111", // 23 digits, no tail of 13-19 Luhn-valid
            "call me on 2024-05-01 at 10",
            "4111  1111  1111  1111", // double spaces split the groups
            "4111.1111.1111.1111",
            "",
            "é ü 🎉",
        ] {
            assert!(!contains_card_number(text), "{text}");
        }
    }

    #[test]
    fn uuids_and_hashes_are_not_searched() {
        // Each of these holds a Luhn-valid stretch of 13 or more digits.
        for text in [
            "84870323-5179-4ee4-a04c-652c7458ea2f",
            "purge-3b46e4c7-4835-4243-9535-2678bae3d970",
            "request 7a3d2333-4136-4126-87b6-dfc416f340d1 done",
            "sha256 8ce92a49d88a46688e09791501485796aa8ce92a49d88a4668",
        ] {
            assert!(!contains_card_number(text), "{text}");
        }
        // Digits alone in the shape of a UUID are still searched, and a card next to a
        // UUID is still found.
        assert!(contains_card_number("41111111-1111-1111-1111-111111111111"));
        assert!(contains_card_number(
            "84870323-5179-4ee4-a04c-652c7458ea2f 4111 1111 1111 1111"
        ));
    }

    #[test]
    fn ranges_cover_the_card_and_its_separators_only() {
        let text = "qty 2 4111 1111 1111 1111 ok";
        let ranges = card_number_ranges(text);
        assert_eq!(ranges.len(), 1, "{ranges:?}");
        let card = &text[ranges[0].clone()];
        assert!(card.ends_with("4111 1111 1111 1111"), "{card}");
        assert!(!card.contains("ok"));
    }

    #[test]
    fn luhn_reference_values() {
        assert!(luhn_valid(b"79927398713"));
        assert!(!luhn_valid(b"79927398710"));
        assert!(!luhn_valid(b""));
    }

    /// `prefix` completed with the one check digit that makes it Luhn-valid.
    fn luhn_complete(prefix: &[u8]) -> String {
        let check = (b'0'..=b'9')
            .find(|c| luhn_valid(&[prefix, &[*c]].concat()))
            .unwrap_or(b'0');
        String::from_utf8([prefix, &[check]].concat()).unwrap_or_default()
    }

    /// The card written in groups of four joined by `sep`.
    fn grouped(card: &str, sep: &str) -> String {
        card.as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(sep)
    }

    proptest! {
        #[test]
        fn every_valid_card_number_is_found_whatever_surrounds_it(
            body in proptest::collection::vec(0u8..10, 12..=18),
            before in "[a-z ]{0,10}",
            number in proptest::option::of(0u32..100_000),
            sep in prop_oneof![Just(""), Just(" "), Just("-")],
            after in "[a-z .]{0,10}",
        ) {
            let digits: Vec<u8> = body.iter().map(|d| b'0' + d).collect();
            let card = grouped(&luhn_complete(&digits), sep);
            let lead = number.map(|n| format!("{n} ")).unwrap_or_default();
            let text = format!("{before}{lead}{card}{after}");
            prop_assert!(contains_card_number(&text), "{}", text);
            let ranges = card_number_ranges(&text);
            let tail = card.as_str();
            prop_assert!(ranges.iter().any(|r| text[r.clone()].ends_with(tail)), "{:?} in {}", ranges, text);
        }

        #[test]
        fn exactly_one_check_digit_completes_a_number(
            body in proptest::collection::vec(0u8..10, 12..=18),
        ) {
            let digits: Vec<u8> = body.iter().map(|d| b'0' + d).collect();
            let valid = (b'0'..=b'9').filter(|c| luhn_valid(&[&digits[..], &[*c]].concat())).count();
            prop_assert_eq!(valid, 1);
        }

        #[test]
        fn request_ids_made_of_uuids_are_never_cards(
            bytes in proptest::array::uniform16(0u8..),
            prefix in "([a-z]{1,7}-)?",
        ) {
            let uuid = uuid::Uuid::from_bytes(bytes).hyphenated().to_string();
            // Digits alone in a UUID's shape are searched on purpose (see above); a random
            // UUID is all digits once in three million.
            prop_assume!(uuid.bytes().any(|b| b.is_ascii_alphabetic()));
            let id = format!("{prefix}{uuid}");
            prop_assert!(!contains_card_number(&id), "{}", id);
        }

        #[test]
        fn short_digit_runs_are_never_cards(text in "[a-z ]{0,5}[0-9]{0,12}[a-z ,.]{0,5}") {
            prop_assert!(!contains_card_number(&text));
        }

        #[test]
        fn ranges_are_ordered_disjoint_and_on_digits(text in "[0-9 a-]{0,60}") {
            let ranges = card_number_ranges(&text);
            for pair in ranges.windows(2) {
                prop_assert!(pair[0].end < pair[1].start);
            }
            for r in &ranges {
                let b = text.as_bytes();
                prop_assert!(b[r.start].is_ascii_digit() && b[r.end - 1].is_ascii_digit());
            }
            prop_assert_eq!(ranges.is_empty(), !contains_card_number(&text));
        }
    }
}
