"""The consent service's values as Python types: decisions, writes, changes, and the
enumerations of the contract (their numbers are the proto's; a test checks they agree)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ._gen.pdm.consent.v1 import consent_pb2 as pb


class Reason(enum.IntEnum):
    """Why a decision is what it is."""

    UNSPECIFIED = 0
    CONSENT_GIVEN = 1
    OTHER_LEGAL_BASIS = 2
    NO_CONSENT = 3
    WITHDRAWN = 4
    RESTRICTED = 5
    OBJECTED = 6
    DO_NOT_SELL = 7
    UNKNOWN_SUBJECT = 8
    UNKNOWN_PURPOSE = 9
    OPTED_OUT = 10
    NECESSARY_MESSAGE = 11


class LegalBasis(enum.IntEnum):
    """The legal basis a decision rests on (or would)."""

    UNSPECIFIED = 0
    CONSENT = 1
    CONTRACT = 2
    LEGAL_OBLIGATION = 3
    VITAL_INTERESTS = 4
    PUBLIC_TASK = 5
    LEGITIMATE_INTERESTS = 6


class Channel(enum.IntEnum):
    """A way of reaching a subject."""

    UNSPECIFIED = 0
    EMAIL = 1
    ADS = 2
    SMS = 3
    PUSH = 4


class MessageKind(enum.IntEnum):
    """The kind of a message."""

    UNSPECIFIED = 0
    PROMOTIONAL = 1
    TRANSACTIONAL = 2
    ADMINISTRATIVE = 3
    SECURITY = 4


class LedgerEntryKind(enum.IntEnum):
    """What a ledger entry records."""

    UNSPECIFIED = 0
    GRANT = 1
    WITHDRAW = 2
    RESTRICT = 3
    UNRESTRICT = 4
    OBJECT = 5
    WITHDRAW_OBJECTION = 6
    OPT_OUT = 7
    OPT_IN = 8
    DO_NOT_SELL = 9
    ALLOW_SELL = 10
    ERASED = 11
    EXPLICIT_GRANT = 12


def _member(cls: type[enum.IntEnum], value: int) -> enum.IntEnum:
    try:
        return cls(value)
    except ValueError:  # a value newer than this client
        return cls(0)


@dataclass(frozen=True)
class Decision:
    """A decision of the consent service."""

    allowed: bool
    """Whether processing (or the message) may go ahead."""
    reason: Reason
    """Why."""
    legal_basis: LegalBasis
    """The legal basis it rests on (or would)."""

    @classmethod
    def _from_pb(cls, d: pb.Decision) -> Decision:
        return cls(
            allowed=d.allowed,
            reason=Reason(_member(Reason, d.reason)),
            legal_basis=LegalBasis(_member(LegalBasis, d.legal_basis)),
        )


@dataclass(frozen=True)
class Written:
    """What a write recorded (or, from ``ledger_position``, where the ledger is)."""

    sequence: int
    """Its ledger position."""
    token: str
    """Its consistency token: given back as ``at_least``, the answer reflects the write on
    whichever replica answers (read-your-writes). Opaque."""


@dataclass(frozen=True)
class Grant:
    """A grant of consent, as shown to the person."""

    subject_id: str
    purpose: str
    """For which purpose (``marketing_email``)."""
    policy_version: str
    """The policy version the person saw."""
    text_hash: str
    """SHA-256 (hex) of the exact text shown."""
    actor: str
    """Who records it (the calling system)."""


@dataclass(frozen=True)
class Change:
    """One ledger entry as WatchConsentChanges streams it (the fields a cache needs)."""

    sequence: int
    """Its position: the cursor to resume from."""
    subject_id: str
    """The subject; a pseudonym (``erased:…``) once the subject is erased."""
    kind: LedgerEntryKind
    purpose: str
    channel: Channel

    @classmethod
    def _from_pb(cls, e: pb.LedgerEntry) -> Change:
        return cls(
            sequence=e.sequence,
            subject_id=e.subject_id,
            kind=LedgerEntryKind(_member(LedgerEntryKind, e.kind)),
            purpose=e.purpose,
            channel=Channel(_member(Channel, e.channel)),
        )

    @property
    def is_erasure(self) -> bool:
        """An erasure names only a pseudonym: every subject's cached decisions go."""
        return self.kind == LedgerEntryKind.ERASED or self.subject_id.startswith("erased:")
