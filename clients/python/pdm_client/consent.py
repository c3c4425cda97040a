"""The consent service as typed calls: decisions as :class:`Decision`, writes as
:class:`Written` with their consistency token, errors as :class:`PdmError` subclasses.

:class:`ConsentClient` blocks; :class:`AsyncConsentClient` is the same over ``grpc.aio``.
Every call has a deadline (``Config.timeout``, retries included); each attempt carries the
time left as its gRPC deadline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from ._gen.pdm.consent.v1 import consent_pb2 as pb
from ._gen.pdm.consent.v1 import consent_pb2_grpc as pb_grpc
from .calls import AsyncResponseStream, AsyncService, ResponseStream, Service
from .errors import PdmError
from .types import Change, Channel, Decision, Grant, MessageKind, Written

Pair = tuple[str, str]


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

    async def ledger_position(self) -> Written:
        r = await self._call(True, self._stub.GetLedgerPosition, pb.GetLedgerPositionRequest())
        return Written(sequence=r.sequence, token=r.consistency_token)

    def watch(self, after_sequence: int = 0) -> AsyncChangeStream:
        request = pb.WatchConsentChangesRequest(after_sequence=after_sequence)
        return AsyncChangeStream(self._open("WatchConsentChanges", request))
