//! What the outbox keeps of a message's address. The database forgets the recipient once
//! the message is sent; the local mailbox file keeps each message sealed under a key of its
//! own, and that key is destroyed (crypto-shredding) once the subject is erased, so the
//! policy's "your account and all associated data will be permanently deleted" holds for
//! the messages we sent them too.

use pdm_proto::rights::v1::RequestKind;

/// The stored names of the kinds whose completion erases their subject.
pub fn erasing_kinds() -> [&'static str; 2] {
    [RequestKind::Erasure, RequestKind::CcpaDelete].map(|k| k.as_str_name())
}

/// Whether a completed request of this kind (its stored name) erases its subject.
pub fn erases(kind: &str) -> bool {
    erasing_kinds().contains(&kind)
}

/// What happens to a message that is due to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Sent; `keep_readable` says whether its mailbox key outlives the sending.
    Deliver {
        /// The local mailbox copy stays readable (until the subject is erased).
        keep_readable: bool,
    },
    /// Never sent, and its address forgotten at once.
    Drop,
}

/// The disposition of a message to a subject who may have been erased. After erasure only
/// the erasure request's own messages still go out (account deletion, step 5: "You will
/// receive an email confirming the deletion"), and none of them stays readable.
pub fn disposition(subject_erased: bool, from_erasing_request: bool) -> Disposition {
    match (subject_erased, from_erasing_request) {
        (false, _) => Disposition::Deliver {
            keep_readable: true,
        },
        (true, true) => Disposition::Deliver {
            keep_readable: false,
        },
        (true, false) => Disposition::Drop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erasure_and_ccpa_delete_erase_the_subject() {
        assert!(erases(RequestKind::Erasure.as_str_name()));
        assert!(erases(RequestKind::CcpaDelete.as_str_name()));
        for other in [
            RequestKind::Access,
            RequestKind::Portability,
            RequestKind::Rectification,
            RequestKind::Restriction,
            RequestKind::Objection,
            RequestKind::CcpaKnow,
            RequestKind::CcpaOptOut,
        ] {
            assert!(!erases(other.as_str_name()), "{other:?}");
        }
        assert!(!erases("not a kind"));
    }

    #[test]
    fn messages_to_subjects_who_exist_stay_readable() {
        for erasing in [false, true] {
            assert_eq!(
                disposition(false, erasing),
                Disposition::Deliver {
                    keep_readable: true
                }
            );
        }
    }

    #[test]
    fn after_erasure_only_the_confirmation_goes_out_and_nothing_stays_readable() {
        assert_eq!(
            disposition(true, true),
            Disposition::Deliver {
                keep_readable: false
            }
        );
        assert_eq!(disposition(true, false), Disposition::Drop);
    }
}
