"""The consent service's values as Python types: decisions, writes, changes, and the
enumerations of the contract (their numbers are the proto's; a test checks they agree);
and the values several services share (a region, an erasure receipt)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from ._gen.pdm.consent.v1 import consent_pb2 as pb
from ._gen.pdm.subject.v1 import subject_pb2
from .calls import member, timestamp


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
            reason=member(Reason, d.reason),
            legal_basis=member(LegalBasis, d.legal_basis),
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
            kind=member(LedgerEntryKind, e.kind),
            purpose=e.purpose,
            channel=member(Channel, e.channel),
        )

    @property
    def is_erasure(self) -> bool:
        """An erasure names only a pseudonym: every subject's cached decisions go."""
        return self.kind == LedgerEntryKind.ERASED or self.subject_id.startswith("erased:")


# === shared by several services ===


class Region(enum.IntEnum):
    """Where a subject lives: the privacy regime that applies (pdm.common.v1.Region)."""

    UNSPECIFIED = 0
    EEA = 1
    UK = 2
    CH = 3
    US_CA = 4
    US = 5
    IN = 6
    OTHER = 7


@dataclass(frozen=True)
class ErasedItem:
    """Records of one category that were erased."""

    category: str
    count: int


@dataclass(frozen=True)
class RetainedItem:
    """Records kept after an erasure under a legal basis, until ``retain_until``."""

    category: str
    legal_basis: LegalBasis
    reason: str
    retain_until: datetime | None
    count: int


@dataclass(frozen=True)
class ErasureReceipt:
    """What one service erased of a subject, and what it keeps."""

    request_id: str
    subject_id: str
    service: str
    erased: list[ErasedItem]
    retained: list[RetainedItem]
    completed_at: datetime | None
    key_destroyed: bool
    """Whether the subject's encryption key was destroyed (crypto-shredding)."""
    key_backups_gone_by: datetime | None
    """When the last key-store backup that can still hold the destroyed key is deleted."""

    @classmethod
    def _from_pb(cls, r: subject_pb2.ErasureReceipt) -> ErasureReceipt:
        return cls(
            request_id=r.request_id,
            subject_id=r.subject_id,
            service=r.service,
            erased=[ErasedItem(e.category, e.count) for e in r.erased],
            retained=[
                RetainedItem(
                    category=k.category,
                    legal_basis=member(LegalBasis, k.legal_basis),
                    reason=k.reason,
                    retain_until=timestamp(k, "retain_until"),
                    count=k.count,
                )
                for k in r.retained
            ],
            completed_at=timestamp(r, "completed_at"),
            key_destroyed=r.key_destroyed,
            key_backups_gone_by=timestamp(r, "key_backups_gone_by"),
        )
