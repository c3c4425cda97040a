//! Request bodies that are not the method's message: what a broken or hostile client
//! sends. Each is checked here, with the descriptors, not to decode as the method's
//! request, so a refusal is the only right answer.

use prost_reflect::{DynamicMessage, MessageDescriptor};

use crate::grpc::frame;

/// The kinds of bad body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BadBody {
    /// Random bytes in a well-formed frame.
    Random,
    /// The valid request cut short, in a well-formed frame.
    Truncated,
    /// A valid message of another type, in a well-formed frame.
    OtherType,
    /// No message at all.
    Empty,
    /// A frame larger than the server's message limit.
    Oversize,
    /// A frame whose header promises more bytes than the body holds.
    CutFrame,
}

impl BadBody {
    /// Every kind.
    pub const ALL: [Self; 6] = [
        Self::Random,
        Self::Truncated,
        Self::OtherType,
        Self::Empty,
        Self::Oversize,
        Self::CutFrame,
    ];
}

fn decodes(input: &MessageDescriptor, bytes: &[u8]) -> bool {
    DynamicMessage::decode(input.clone(), bytes).is_ok()
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    // The suite's own randomness; a failure here is a broken machine.
    if getrandom::fill(&mut bytes).is_err() {
        bytes
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i * 131 % 251) as u8);
    }
    bytes
}

/// The raw HTTP/2 body of `kind` for a method whose request type is `input`, given its
/// valid request's bytes, other types' valid messages, and the server's message limit;
/// and whether that body is, after all, a valid request.
///
/// Only [`BadBody::OtherType`] can be valid: to a request type without fields, or whose
/// fields every other message happens to match, any message is that type with unknown
/// fields, which protobuf says to ignore.
pub fn body(
    kind: BadBody,
    input: &MessageDescriptor,
    valid: &[u8],
    others: &[Vec<u8>],
    max_message: usize,
) -> anyhow::Result<(Vec<u8>, bool)> {
    if kind == BadBody::OtherType {
        let mut candidates = others.iter().filter(|bytes| !bytes.is_empty());
        if let Some(other) = candidates.clone().find(|bytes| !decodes(input, bytes)) {
            return Ok((frame(other), false));
        }
        let other = candidates
            .next()
            .ok_or_else(|| anyhow::anyhow!("no other message"))?;
        return Ok((frame(other), true));
    }
    let body = match kind {
        BadBody::Random => {
            let mut found = None;
            for attempt in 0..10_000 {
                let candidate = random_bytes(8 + attempt % 56);
                if !decodes(input, &candidate) {
                    found = Some(candidate);
                    break;
                }
            }
            frame(&found.ok_or_else(|| anyhow::anyhow!("no random body fails to decode"))?)
        }
        BadBody::Truncated => {
            let cut = (1..valid.len())
                .rev()
                .map(|n| &valid[..n])
                .find(|prefix| !decodes(input, prefix))
                .map(<[u8]>::to_vec);
            // A message with nothing to cut: a length-delimited field 1 whose length is
            // missing.
            frame(&cut.unwrap_or_else(|| vec![0x0a]))
        }
        BadBody::OtherType => unreachable_other(),
        BadBody::Empty => Vec::new(),
        BadBody::Oversize => frame(&vec![0x0a; max_message + 1]),
        BadBody::CutFrame => {
            let mut framed = frame(valid);
            if valid.len() < 2 {
                framed = frame(&[0x0a; 10]);
            }
            let keep = 5 + (framed.len() - 5) / 2;
            framed.truncate(keep);
            framed
        }
    };
    Ok((body, false))
}

/// Handled before the match.
fn unreachable_other() -> Vec<u8> {
    Vec::new()
}
