//! Consistency tokens (read-your-writes across replicas): a write answers the ledger
//! position it reached; a check given that token back is answered only by a replica that
//! has applied the ledger up to it. Callers treat the text as opaque; it is `c1.` and the
//! sequence in decimal, so a later format can be told apart by its prefix.

use std::fmt;

/// The prefix of this format.
const PREFIX: &str = "c1.";
/// Longest token accepted (the prefix and an `i64`, with room to spare).
pub const MAX_LEN: usize = 32;

/// A ledger position handed to a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Token(i64);

impl Token {
    /// The token of ledger position `sequence` (0: the empty ledger).
    pub fn at(sequence: i64) -> Self {
        Self(sequence.max(0))
    }

    /// The ledger position.
    pub fn sequence(self) -> i64 {
        self.0
    }

    /// Parses `at_least`: empty is no token; anything but a token of this format is an
    /// error (the description of the field violation).
    pub fn parse(raw: &str) -> Result<Option<Self>, &'static str> {
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.len() > MAX_LEN {
            return Err("not a consistency token (at most 32 characters)");
        }
        let digits = raw
            .strip_prefix(PREFIX)
            .ok_or("not a consistency token (give back the one a write returned)")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("not a consistency token (give back the one a write returned)");
        }
        digits
            .parse::<i64>()
            .map(|sequence| Some(Self(sequence)))
            .map_err(|_| "not a consistency token (out of range)")
    }

    /// The position that covers all of `sequences` (the last of a write's entries);
    /// `None` when nothing was written.
    pub fn covering(sequences: impl IntoIterator<Item = i64>) -> Option<Self> {
        sequences.into_iter().max().map(Self::at)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_as_the_position_it_was_made_from() {
        for sequence in [0, 1, 42, i64::MAX] {
            let token = Token::at(sequence);
            assert!(token.to_string().len() <= MAX_LEN);
            assert_eq!(Token::parse(&token.to_string()), Ok(Some(token)));
        }
        assert_eq!(Token::parse(""), Ok(None));
    }

    #[test]
    fn anything_but_a_token_of_this_format_is_refused() {
        for raw in [
            "42",
            "c1.",
            "c1.-1",
            "c1.+1",
            "c1.1a",
            "c1. 1",
            "c2.1",
            "C1.1",
            "c1.99999999999999999999",
            "c1.000000000000000000000000000001",
        ] {
            assert!(Token::parse(raw).is_err(), "{raw} was accepted");
        }
    }

    #[test]
    fn a_write_is_covered_by_its_last_entry() {
        assert_eq!(Token::covering([7, 9, 8]), Some(Token::at(9)));
        assert_eq!(Token::covering([]), None);
    }
}
