"""The consent service as typed calls: decisions as :class:`Decision`, writes as
:class:`Written` with their consistency token, the catalogue, a subject's state and ledger
as dataclasses, errors as :class:`PdmError` subclasses.

:class:`ConsentClient` blocks; :class:`AsyncConsentClient` is the same over ``grpc.aio``.
Every call has a deadline (``Config.timeout``, retries included); each attempt carries the
time left as its gRPC deadline."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc

from ._gen.pdm.consent.v1 import consent_pb2 as pb
from ._gen.pdm.consent.v1 import consent_pb2_grpc as pb_grpc
from .calls import (
    AsyncResponseStream,
    AsyncService,
    ResponseStream,
    Service,
    Unary,
    member,
    timestamp,
)
from .errors import PdmError
from .types import (
    Change,
    Channel,
    Decision,
    Grant,
    LedgerEntryKind,
    LegalBasis,
    MessageKind,
    Region,
    Written,
)

Pair = tuple[str, str]


class ConsentStatus(enum.IntEnum):
    """The consent state of one purpose for a subject."""

    UNSPECIFIED = 0
    NOT_GIVEN = 1
    GRANTED = 2
    WITHDRAWN = 3
    NOT_REQUIRED = 4
    """The purpose does not rest on consent in the subject's region."""


class Source(enum.IntEnum):
    """How a change reached the ledger (this client's writes are ``API``)."""

    UNSPECIFIED = 0
    WEB_FORM = 1
    API = 2
    IMPORT = 3
    GPC = 4
    EMAIL_LINK = 5
    PRIVACY_REQUEST = 6


@dataclass(frozen=True)
class Purpose:
    """One entry of the purpose catalogue."""

    key: str
    """Stable key (``marketing_email``)."""
    description: str
    data_categories: list[str]
    legal_bases: dict[Region, LegalBasis]
    """The legal basis in each region."""
    refusable: bool
    """The subject can refuse it (it rests on consent somewhere)."""
    objectable: bool
    """The subject can object to it (legitimate interests or direct marketing)."""
    direct_marketing: bool
    """An objection to it is absolute."""
    special_category: bool
    """Art. 9 GDPR data: only explicit consent counts."""

    @classmethod
    def _from_pb(cls, p: pb.Purpose) -> Purpose:
        return cls(
            key=p.key,
            description=p.description,
            data_categories=list(p.data_categories),
            legal_bases={
                member(Region, b.region): member(LegalBasis, b.legal_basis) for b in p.legal_bases
            },
            refusable=p.refusable,
            objectable=p.objectable,
            direct_marketing=p.direct_marketing,
            special_category=p.special_category,
        )


@dataclass(frozen=True)
class PurposeState:
    """A subject's current state for one purpose."""

    purpose: str
    legal_basis: LegalBasis
    """The legal basis in the subject's region."""
    consent: ConsentStatus
    objected: bool
    decision: Decision
    """What a check would answer now."""

    @classmethod
    def _from_pb(cls, s: pb.PurposeState) -> PurposeState:
        return cls(
            purpose=s.purpose,
            legal_basis=member(LegalBasis, s.legal_basis),
            consent=member(ConsentStatus, s.consent),
            objected=s.objected,
            decision=Decision._from_pb(s.decision),
        )


@dataclass(frozen=True)
class Consents:
    """A subject's current state (GetConsents)."""

    subject_id: str
    region: Region
    purposes: list[PurposeState]
    """One per purpose of the catalogue."""
    restricted: bool
    """Processing is restricted (Art. 18 GDPR)."""
    do_not_sell: bool
    """Sale and sharing are refused."""
    opted_out_channels: list[Channel]
    """Channels opted out of promotional messages."""

    @classmethod
    def _from_pb(cls, r: pb.GetConsentsResponse) -> Consents:
        return cls(
            subject_id=r.subject_id,
            region=member(Region, r.region),
            purposes=[PurposeState._from_pb(s) for s in r.purposes],
            restricted=r.restricted,
            do_not_sell=r.do_not_sell,
            opted_out_channels=[member(Channel, c) for c in r.opted_out_channels],
        )

    def state(self, purpose: str) -> PurposeState | None:
        """The state of ``purpose`` (None for a key not in the catalogue)."""
        return next((s for s in self.purposes if s.purpose == purpose), None)


@dataclass(frozen=True)
class LedgerEntry:
    """One immutable entry of the consent ledger: the proof of a change."""

    sequence: int
    subject_id: str
    """A pseudonym (``erased:…``) once the subject is erased."""
    kind: LedgerEntryKind
    purpose: str
    """For consent and objection entries."""
    channel: Channel
    """For opt-out entries."""
    source: Source
    policy_version: str
    """For grants."""
    text_hash: str
    """For grants."""
    actor: str
    """Cleared on erasure."""
    occurred_at: datetime | None
    recorded_at: datetime | None

    @classmethod
    def _from_pb(cls, e: pb.LedgerEntry) -> LedgerEntry:
        return cls(
            sequence=e.sequence,
            subject_id=e.subject_id,
            kind=member(LedgerEntryKind, e.kind),
            purpose=e.purpose,
            channel=member(Channel, e.channel),
            source=member(Source, e.source),
            policy_version=e.policy_version,
            text_hash=e.text_hash,
            actor=e.actor,
            occurred_at=timestamp(e, "occurred_at"),
            recorded_at=timestamp(e, "recorded_at"),
        )


@dataclass(frozen=True)
class HistoryPage:
    """A page of a subject's ledger, oldest first."""

    entries: list[LedgerEntry]
    next_after_sequence: int | None
    """Pass as ``after_sequence`` for the next page; None when there is no more."""


@dataclass(frozen=True)
class UnsubscribeLink:
    """The token of one promotional message's unsubscribe link (URL-safe, single use)."""

    token: str
    expires_at: datetime | None


@dataclass(frozen=True)
class Unsubscribed:
    """What presenting an unsubscribe link did."""

    channel: Channel
    """The channel opted out of."""
    already_used: bool
    """The link had been used before: the opt-out was recorded then, nothing now."""
    sequence: int | None
    """The ledger entry written (None when already used)."""
    token: str
    """Consistency token covering the opt-out (read-your-writes with ``at_least``)."""


def _unsubscribed(r: pb.UnsubscribeResponse) -> Unsubscribed:
    return Unsubscribed(
        channel=member(Channel, r.channel),
        already_used=r.already_used,
        sequence=r.entry.sequence if r.HasField("entry") else None,
        token=r.consistency_token,
    )


def _history(r: pb.GetConsentHistoryResponse) -> HistoryPage:
    return HistoryPage(
        entries=[LedgerEntry._from_pb(e) for e in r.entries],
        next_after_sequence=r.next_after_sequence or None,
    )


def _written(response: Any) -> Written:
    return Written(sequence=response.entry.sequence, token=response.consistency_token)


class _Requests:
    """The messages of each call (shared by the sync and asyncio clients)."""

    @staticmethod
    def grant(grant: Grant) -> pb.GrantConsentRequest:
        return pb.GrantConsentRequest(
            subject_id=grant.subject_id,
            purpose=grant.purpose,
            source=pb.SOURCE_API,
            policy_version=grant.policy_version,
            text_hash=grant.text_hash,
            actor=grant.actor,
        )

    @staticmethod
    def withdraw(subject_id: str, purpose: str, actor: str) -> pb.WithdrawConsentRequest:
        return pb.WithdrawConsentRequest(
            subject_id=subject_id, purpose=purpose, source=pb.SOURCE_API, actor=actor
        )

    @staticmethod
    def contact_preference(
        subject_id: str, channel: Channel, opted_out: bool, actor: str
    ) -> pb.SetContactPreferenceRequest:
        return pb.SetContactPreferenceRequest(
            subject_id=subject_id,
            channel=int(channel),
            opted_out=opted_out,
            source=pb.SOURCE_API,
            actor=actor,
        )

    @staticmethod
    def check(subject_id: str, purpose: str, at_least: str | None) -> pb.CheckProcessingRequest:
        return pb.CheckProcessingRequest(
            subject_id=subject_id, purpose=purpose, at_least=at_least or ""
        )

    @staticmethod
    def check_many(pairs: Sequence[Pair], at_least: str | None) -> pb.BatchCheckProcessingRequest:
        return pb.BatchCheckProcessingRequest(
            items=[pb.CheckItem(subject_id=s, purpose=p) for s, p in pairs],
            at_least=at_least or "",
        )

    @staticmethod
    def can_contact(
        subject_id: str, channel: Channel, kind: MessageKind, at_least: str | None
    ) -> pb.CanContactRequest:
        return pb.CanContactRequest(
            subject_id=subject_id, channel=int(channel), kind=int(kind), at_least=at_least or ""
        )


class _Calls:
    """The calls described once as :class:`Unary` (whether each may be repeated after
    UNAVAILABLE, its answer), for both flavours."""

    @staticmethod
    def list_purposes() -> Unary[list[Purpose]]:
        return Unary(
            "ListPurposes",
            pb.ListPurposesRequest(),
            True,
            lambda r: [Purpose._from_pb(p) for p in r.purposes],
        )

    @staticmethod
    def get_consents(subject_id: str) -> Unary[Consents]:
        request = pb.GetConsentsRequest(subject_id=subject_id)
        return Unary("GetConsents", request, True, Consents._from_pb)

    @staticmethod
    def get_consent_history(
        subject_id: str, after_sequence: int, page_size: int
    ) -> Unary[HistoryPage]:
        request = pb.GetConsentHistoryRequest(
            subject_id=subject_id, after_sequence=after_sequence, page_size=page_size
        )
        return Unary("GetConsentHistory", request, True, _history)

    # The ledger's writes below have no idempotency key: each repeat is an entry of its
    # own, so none is repeated after UNAVAILABLE (as grant and withdraw).

    @staticmethod
    def set_do_not_sell(subject_id: str, do_not_sell: bool, actor: str) -> Unary[Written]:
        request = pb.SetDoNotSellRequest(
            subject_id=subject_id, do_not_sell=do_not_sell, source=pb.SOURCE_API, actor=actor
        )
        return Unary("SetDoNotSell", request, False, _written)

    @staticmethod
    def set_restriction(subject_id: str, restricted: bool, actor: str) -> Unary[Written]:
        request = pb.SetRestrictionRequest(
            subject_id=subject_id, restricted=restricted, source=pb.SOURCE_API, actor=actor
        )
        return Unary("SetRestriction", request, False, _written)

    @staticmethod
    def record_objection(
        subject_id: str, purpose: str, actor: str, withdraw: bool
    ) -> Unary[Written]:
        request = pb.RecordObjectionRequest(
            subject_id=subject_id,
            purpose=purpose,
            withdraw=withdraw,
            source=pb.SOURCE_API,
            actor=actor,
        )
        return Unary("RecordObjection", request, False, _written)

    @staticmethod
    def issue_unsubscribe_link(subject_id: str, channel: Channel) -> Unary[UnsubscribeLink]:
        request = pb.IssueUnsubscribeLinkRequest(subject_id=subject_id, channel=int(channel))
        # Each call stores a link of its own: not repeated after UNAVAILABLE.
        return Unary(
            "IssueUnsubscribeLink",
            request,
            False,
            lambda r: UnsubscribeLink(r.token, timestamp(r, "expires_at")),
        )

    @staticmethod
    def unsubscribe(token: str) -> Unary[Unsubscribed]:
        # A link is used once: a repeat records nothing and answers already_used.
        return Unary("Unsubscribe", pb.UnsubscribeRequest(token=token), True, _unsubscribed)


def _decisions(response: pb.BatchCheckProcessingResponse, asked: int) -> list[Decision]:
    if len(response.decisions) != asked:
        raise PdmError("a batch answered a different number of decisions", grpc.StatusCode.INTERNAL)
    return [Decision._from_pb(d) for d in response.decisions]


def _change(message: Any) -> Change | None:
    """A streamed message's change (None for a message without an entry)."""
    return Change._from_pb(message.entry) if message.HasField("entry") else None


class ChangeStream(ResponseStream[Change]):
    """The ledger's changes as WatchConsentChanges streams them: iterate for
    :class:`Change` values; :meth:`cancel` (or leaving a ``with`` block) ends it. A failure
    of the stream raises a :class:`PdmError` from the iteration."""

    def __init__(self, call: Any) -> None:
        super().__init__(call, _change)


class ConsentClient(Service):
    """The consent service (blocking calls; thread-safe)."""

    service = "consent"
    stub = pb_grpc.ConsentServiceStub

    def grant(self, grant: Grant) -> Written:
        """Records consent (GrantConsent, source API). Not repeated after UNAVAILABLE."""
        return _written(self._call(False, self._stub.GrantConsent, _Requests.grant(grant)))

    def withdraw(self, subject_id: str, purpose: str, actor: str) -> Written:
        """Records a withdrawal (WithdrawConsent, source API)."""
        request = _Requests.withdraw(subject_id, purpose, actor)
        return _written(self._call(False, self._stub.WithdrawConsent, request))

    def set_contact_preference(
        self, subject_id: str, channel: Channel, opted_out: bool, actor: str
    ) -> Written:
        """Opts the subject out of (or back into) promotional messages on ``channel``."""
        request = _Requests.contact_preference(subject_id, channel, opted_out, actor)
        return _written(self._call(False, self._stub.SetContactPreference, request))

    def check(self, subject_id: str, purpose: str, at_least: str | None = None) -> Decision:
        """Whether the subject's data may be processed for ``purpose``; with ``at_least``
        (a write's token), as of that write at the latest."""
        request = _Requests.check(subject_id, purpose, at_least)
        return Decision._from_pb(self._call(True, self._stub.CheckProcessing, request).decision)

    def check_many(self, pairs: Sequence[Pair], at_least: str | None = None) -> list[Decision]:
        """Many (subject, purpose) checks in one call (at most 10,000), decisions in order."""
        request = _Requests.check_many(pairs, at_least)
        return _decisions(self._call(True, self._stub.BatchCheckProcessing, request), len(pairs))

    def can_contact(
        self, subject_id: str, channel: Channel, kind: MessageKind, at_least: str | None = None
    ) -> Decision:
        """Whether a message of ``kind`` may be sent to the subject on ``channel``."""
        request = _Requests.can_contact(subject_id, channel, kind, at_least)
        return Decision._from_pb(self._call(True, self._stub.CanContact, request).decision)

    def list_purposes(self) -> list[Purpose]:
        """The purpose catalogue, each purpose with its legal basis per region."""
        return self._run(_Calls.list_purposes())

    def get_consents(self, subject_id: str) -> Consents:
        """The subject's current state for every purpose, and their restriction,
        do-not-sell choice and opted-out channels."""
        return self._run(_Calls.get_consents(subject_id))

    def get_consent_history(
        self, subject_id: str, *, after_sequence: int = 0, page_size: int = 0
    ) -> HistoryPage:
        """A page of the subject's ledger entries, oldest first (``page_size`` 1-1000;
        0 means 100): the proof of every change."""
        return self._run(_Calls.get_consent_history(subject_id, after_sequence, page_size))

    def set_do_not_sell(self, subject_id: str, do_not_sell: bool, actor: str) -> Written:
        """Sets (or clears) the "do not sell or share" choice (CCPA). Not repeated after
        UNAVAILABLE."""
        return self._run(_Calls.set_do_not_sell(subject_id, do_not_sell, actor))

    def set_restriction(self, subject_id: str, restricted: bool, actor: str) -> Written:
        """Restricts processing (Art. 18 GDPR) or lifts the restriction. Not repeated
        after UNAVAILABLE."""
        return self._run(_Calls.set_restriction(subject_id, restricted, actor))

    def record_objection(
        self, subject_id: str, purpose: str, actor: str, *, withdraw: bool = False
    ) -> Written:
        """Records an objection to ``purpose`` (Art. 21 GDPR), or withdraws an earlier
        one; :class:`FailedPrecondition` when the purpose cannot be objected to in the
        subject's region. Not repeated after UNAVAILABLE."""
        return self._run(_Calls.record_objection(subject_id, purpose, actor, withdraw))

    def issue_unsubscribe_link(self, subject_id: str, channel: Channel) -> UnsubscribeLink:
        """The token for the unsubscribe link of one promotional message on ``channel``
        (EMAIL, SMS or PUSH). Not repeated after UNAVAILABLE."""
        return self._run(_Calls.issue_unsubscribe_link(subject_id, channel))

    def unsubscribe(self, token: str) -> Unsubscribed:
        """Records the opt-out a link stands for (any client may present it); a link used
        before answers ``already_used``, an expired one :class:`FailedPrecondition`, a
        forged one :class:`InvalidArgument` on ``token``."""
        return self._run(_Calls.unsubscribe(token))

    def ledger_position(self) -> Written:
        """The ledger's last position, and the token covering every write before now."""
        r = self._call(True, self._stub.GetLedgerPosition, pb.GetLedgerPositionRequest())
        return Written(sequence=r.sequence, token=r.consistency_token)

    def watch(self, after_sequence: int = 0) -> ChangeStream:
        """The ledger's changes after ``after_sequence``, then live ones (no deadline: the
        stream lasts until it is cancelled or the connection ends)."""
        request = pb.WatchConsentChangesRequest(after_sequence=after_sequence)
        return ChangeStream(self._open("WatchConsentChanges", request))


class AsyncChangeStream(AsyncResponseStream[Change]):
    """:class:`ChangeStream` for asyncio: ``async for change in stream``."""

    def __init__(self, call: Any) -> None:
        super().__init__(call, _change)


class AsyncConsentClient(AsyncService):
    """The consent service over ``grpc.aio`` (create and use it inside one event loop)."""

    service = "consent"
    stub = pb_grpc.ConsentServiceStub

    async def grant(self, grant: Grant) -> Written:
        return _written(await self._call(False, self._stub.GrantConsent, _Requests.grant(grant)))

    async def withdraw(self, subject_id: str, purpose: str, actor: str) -> Written:
        request = _Requests.withdraw(subject_id, purpose, actor)
        return _written(await self._call(False, self._stub.WithdrawConsent, request))

    async def set_contact_preference(
        self, subject_id: str, channel: Channel, opted_out: bool, actor: str
    ) -> Written:
        request = _Requests.contact_preference(subject_id, channel, opted_out, actor)
        return _written(await self._call(False, self._stub.SetContactPreference, request))

    async def check(self, subject_id: str, purpose: str, at_least: str | None = None) -> Decision:
        request = _Requests.check(subject_id, purpose, at_least)
        response = await self._call(True, self._stub.CheckProcessing, request)
        return Decision._from_pb(response.decision)

    async def check_many(
        self, pairs: Sequence[Pair], at_least: str | None = None
    ) -> list[Decision]:
        request = _Requests.check_many(pairs, at_least)
        response = await self._call(True, self._stub.BatchCheckProcessing, request)
        return _decisions(response, len(pairs))

    async def can_contact(
        self, subject_id: str, channel: Channel, kind: MessageKind, at_least: str | None = None
    ) -> Decision:
        request = _Requests.can_contact(subject_id, channel, kind, at_least)
        return Decision._from_pb((await self._call(True, self._stub.CanContact, request)).decision)

    async def list_purposes(self) -> list[Purpose]:
        return await self._run(_Calls.list_purposes())

    async def get_consents(self, subject_id: str) -> Consents:
        return await self._run(_Calls.get_consents(subject_id))

    async def get_consent_history(
        self, subject_id: str, *, after_sequence: int = 0, page_size: int = 0
    ) -> HistoryPage:
        return await self._run(
            _Calls.get_consent_history(subject_id, after_sequence, page_size)
        )

    async def set_do_not_sell(self, subject_id: str, do_not_sell: bool, actor: str) -> Written:
        return await self._run(_Calls.set_do_not_sell(subject_id, do_not_sell, actor))

    async def set_restriction(self, subject_id: str, restricted: bool, actor: str) -> Written:
        return await self._run(_Calls.set_restriction(subject_id, restricted, actor))

    async def record_objection(
        self, subject_id: str, purpose: str, actor: str, *, withdraw: bool = False
    ) -> Written:
        return await self._run(_Calls.record_objection(subject_id, purpose, actor, withdraw))

    async def issue_unsubscribe_link(
        self, subject_id: str, channel: Channel
    ) -> UnsubscribeLink:
        return await self._run(_Calls.issue_unsubscribe_link(subject_id, channel))

    async def unsubscribe(self, token: str) -> Unsubscribed:
        return await self._run(_Calls.unsubscribe(token))

    async def ledger_position(self) -> Written:
        r = await self._call(True, self._stub.GetLedgerPosition, pb.GetLedgerPositionRequest())
        return Written(sequence=r.sequence, token=r.consistency_token)

    def watch(self, after_sequence: int = 0) -> AsyncChangeStream:
        request = pb.WatchConsentChangesRequest(after_sequence=after_sequence)
        return AsyncChangeStream(self._open("WatchConsentChanges", request))
