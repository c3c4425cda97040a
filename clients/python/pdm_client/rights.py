"""The rights service as typed calls: a subject's requests (access, erasure, ...) from
submission to the downloaded package, concerns and reports of a child's data, as
dataclasses; a request's progress and its export package as streams.

:class:`RightsClient` blocks; :class:`AsyncRightsClient` is the same over ``grpc.aio``."""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

import grpc

from ._gen.pdm.rights.v1 import rights_pb2 as pb
from ._gen.pdm.rights.v1 import rights_pb2_grpc as pb_grpc
from .calls import (
    AsyncResponseStream,
    AsyncService,
    ResponseStream,
    Service,
    Unary,
    member,
    timestamp,
)
from .errors import from_rpc_error
from .types import ErasureReceipt


class RequestKind(enum.IntEnum):
    """What the subject asks for."""

    UNSPECIFIED = 0
    ACCESS = 1
    PORTABILITY = 2
    RECTIFICATION = 3
    ERASURE = 4
    RESTRICTION = 5
    OBJECTION = 6
    CCPA_KNOW = 7
    CCPA_DELETE = 8
    CCPA_OPT_OUT = 9


class RightsRegime(enum.IntEnum):
    """The law a request is made under (pdm.rights.v1.Regime)."""

    UNSPECIFIED = 0
    GDPR = 1
    UK_GDPR = 2
    SWISS = 3
    CCPA = 4


class RequestStatus(enum.IntEnum):
    """Where a request stands (pdm.rights.v1.Status)."""

    UNSPECIFIED = 0
    VERIFICATION_REQUIRED = 1
    IN_PROGRESS = 2
    COMPLETED = 3
    DENIED = 4
    CANCELLED = 5

    @property
    def is_closed(self) -> bool:
        """Completed, denied or cancelled: nothing more happens to it."""
        return self in (RequestStatus.COMPLETED, RequestStatus.DENIED, RequestStatus.CANCELLED)


class DeliveryStatus(enum.IntEnum):
    """Where the delivery of a message to the subject stands."""

    UNSPECIFIED = 0
    PENDING = 1
    SENT = 2
    FAILED = 3
    DROPPED = 4


class DeliveryError(enum.IntEnum):
    """The category of a failed delivery attempt."""

    UNSPECIFIED = 0
    CONNECT = 1
    TLS = 2
    AUTH = 3
    SENDER = 4
    RECIPIENT = 5
    MESSAGE = 6
    DEFERRED = 7
    PROTOCOL = 8
    TIMEOUT = 9
    LOCAL = 10


class ChildReportStatus(enum.IntEnum):
    """Where a report of a child's data stands."""

    UNSPECIFIED = 0
    REPORTED = 1
    CONFIRMED = 2


class ConcernKind(enum.IntEnum):
    """What a concern is about."""

    UNSPECIFIED = 0
    COMPLAINT = 1
    """Answered within a month."""
    DATA_COMPROMISED = 2
    """Assessed within 72 hours."""


class ConcernStatus(enum.IntEnum):
    """Where a concern stands."""

    UNSPECIFIED = 0
    OPEN = 1
    CLOSED = 2


@dataclass(frozen=True)
class Credential:
    """Proof that the requester is the subject: one of a live session token, the account
    password (with the subject id) or, for the privacy team, an operator's reference."""

    session_token: str | None = None
    password: str | None = None
    operator_reference: str | None = None

    @classmethod
    def of_session(cls, token: str) -> Credential:
        return cls(session_token=token)

    @classmethod
    def of_password(cls, password: str) -> Credential:
        return cls(password=password)

    def _to_pb(self) -> pb.Credential:
        given = [
            v for v in (self.session_token, self.password, self.operator_reference) if v is not None
        ]
        if len(given) > 1:
            raise ValueError("Credential: one of session_token, password, operator_reference")
        return pb.Credential(
            session_token=self.session_token,
            password=self.password,
            operator_reference=self.operator_reference,
        )


@dataclass(frozen=True)
class Rectification:
    """One corrected field: ``first_name``, ``last_name``, ``email``, ``phone``,
    ``region`` (a Region name, ``REGION_UK``) or ``birth_date``."""

    field: str
    value: str


@dataclass(frozen=True)
class Task:
    """One service's part of a request."""

    service: str
    action: str
    """``erase``, ``export``, ``restrict``, ..."""
    status: str
    """``pending``, ``running``, ``done`` or ``failed`` (retried)."""
    attempts: int
    last_error: str
    done_at: datetime | None
    receipt: ErasureReceipt | None
    """For erasures: the service's receipt."""


@dataclass(frozen=True)
class MessageDelivery:
    """How one message to the subject about a request fared (never its address)."""

    topic: str
    """``received``, ``extended``, ``completed`` or ``refused``."""
    status: DeliveryStatus
    attempts: int
    last_error: DeliveryError
    queued_at: datetime | None
    sent_at: datetime | None
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class Refusal:
    """What a subject was told when their request was refused."""

    reasons: list[str]
    right_to_complain: str
    notified_at: datetime | None


@dataclass(frozen=True)
class DataSubjectRequest:
    """A request and where it stands."""

    request_id: str
    kind: RequestKind
    regime: RightsRegime
    subject_id: str
    """Empty while unverified."""
    status: RequestStatus
    received_at: datetime | None
    verified_at: datetime | None
    due_at: datetime | None
    original_due_at: datetime | None
    extension_reason: str
    confirm_by: datetime | None
    closed_at: datetime | None
    outcome_reason: str
    concerns_child: bool
    tasks: list[Task]
    overdue: bool
    package_expires_at: datetime | None
    download_token: str
    """For a completed access or portability request: the one-time token
    :meth:`RightsClient.download_export` needs, given once to the first caller that sees
    it completed (the submitting client, or one holding the subject's session)."""
    refusal: Refusal | None
    deletion_reason: str
    messages: list[MessageDelivery]

    @classmethod
    def _from_pb(cls, r: pb.DataSubjectRequest) -> DataSubjectRequest:
        refusal = None
        if r.HasField("refusal"):
            refusal = Refusal(
                list(r.refusal.reasons),
                r.refusal.right_to_complain,
                timestamp(r.refusal, "notified_at"),
            )
        return cls(
            request_id=r.request_id,
            kind=member(RequestKind, r.kind),
            regime=member(RightsRegime, r.regime),
            subject_id=r.subject_id,
            status=member(RequestStatus, r.status),
            received_at=timestamp(r, "received_at"),
            verified_at=timestamp(r, "verified_at"),
            due_at=timestamp(r, "due_at"),
            original_due_at=timestamp(r, "original_due_at"),
            extension_reason=r.extension_reason,
            confirm_by=timestamp(r, "confirm_by"),
            closed_at=timestamp(r, "closed_at"),
            outcome_reason=r.outcome_reason,
            concerns_child=r.concerns_child,
            tasks=[_task(t) for t in r.tasks],
            overdue=r.overdue,
            package_expires_at=timestamp(r, "package_expires_at"),
            download_token=r.download_token,
            refusal=refusal,
            deletion_reason=r.deletion_reason,
            messages=[_delivery(m) for m in r.messages],
        )


@dataclass(frozen=True)
class Concern:
    """A complaint or a report of compromised data, as its reporter sees it."""

    concern_id: str
    kind: ConcernKind
    status: ConcernStatus
    received_at: datetime | None
    due_at: datetime | None
    """When the privacy team owes an answer."""
    closed_at: datetime | None
    overdue: bool
    right_to_complain: str

    @classmethod
    def _from_pb(cls, c: pb.Concern) -> Concern:
        return cls(
            concern_id=c.concern_id,
            kind=member(ConcernKind, c.kind),
            status=member(ConcernStatus, c.status),
            received_at=timestamp(c, "received_at"),
            due_at=timestamp(c, "due_at"),
            closed_at=timestamp(c, "closed_at"),
            overdue=c.overdue,
            right_to_complain=c.right_to_complain,
        )


@dataclass(frozen=True)
class ChildReport:
    """A report of a child's data, as its reporter sees it (nothing of the account)."""

    report_id: str
    status: ChildReportStatus
    received_at: datetime | None


def _task(t: pb.Task) -> Task:
    return Task(
        service=t.service,
        action=t.action,
        status=t.status,
        attempts=t.attempts,
        last_error=t.last_error,
        done_at=timestamp(t, "done_at"),
        receipt=ErasureReceipt._from_pb(t.receipt) if t.HasField("receipt") else None,
    )


def _delivery(m: pb.MessageDelivery) -> MessageDelivery:
    return MessageDelivery(
        topic=m.topic,
        status=member(DeliveryStatus, m.status),
        attempts=m.attempts,
        last_error=member(DeliveryError, m.last_error),
        queued_at=timestamp(m, "queued_at"),
        sent_at=timestamp(m, "sent_at"),
        next_attempt_at=timestamp(m, "next_attempt_at"),
    )


def _request(response: Any) -> DataSubjectRequest:
    return DataSubjectRequest._from_pb(response.request)


class RequestStream(ResponseStream[DataSubjectRequest]):
    """A request after each change (WatchRequest), until it closes: iterate for
    :class:`DataSubjectRequest` values; :meth:`cancel` (or leaving a ``with`` block) ends
    it."""

    def __init__(self, call: Any) -> None:
        super().__init__(call, _request)


class AsyncRequestStream(AsyncResponseStream[DataSubjectRequest]):
    """:class:`RequestStream` for asyncio: ``async for request in stream``."""

    def __init__(self, call: Any) -> None:
        super().__init__(call, _request)


class ExportStream:
    """An export package as DownloadExport streams it: iterate for its chunks (bytes), or
    :meth:`read` it whole; ``content_type`` once the first chunk has arrived. A complete
    download uses the one-time token up."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self.content_type = ""

    def __iter__(self) -> Iterator[bytes]:
        try:
            for message in self._call:
                if message.content_type:
                    self.content_type = message.content_type
                yield message.chunk
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def read(self) -> bytes:
        """The whole package (JSON, schema ``pdm.export.v1``)."""
        return b"".join(self)

    def cancel(self) -> None:
        self._call.cancel()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class AsyncExportStream:
    """:class:`ExportStream` for asyncio: ``async for chunk in stream``, or ``await
    stream.read()``."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self.content_type = ""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for message in self._call:
                if message.content_type:
                    self.content_type = message.content_type
                yield message.chunk
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self])

    def cancel(self) -> None:
        self._call.cancel()


class _Calls:
    """Each call once: its request, whether it may be repeated, its answer."""

    @staticmethod
    def submit_request(
        kind: RequestKind,
        regime: RightsRegime,
        subject_id: str,
        credential: Credential | None,
        purpose: str,
        rectifications: Sequence[Rectification],
        concerns_child: bool,
        notes: str,
        client_reference: str | None,
    ) -> Unary[DataSubjectRequest]:
        # The idempotency key is fixed before the first attempt: a repeat returns the
        # first request.
        request = pb.SubmitRequestRequest(
            kind=int(kind),
            regime=int(regime),
            subject_id=subject_id,
            credential=credential._to_pb() if credential is not None else None,
            purpose=purpose,
            rectifications=[pb.Rectification(field=r.field, value=r.value) for r in rectifications],
            concerns_child=concerns_child,
            notes=notes,
            client_reference=client_reference or uuid.uuid4().hex,
        )
        return Unary("SubmitRequest", request, True, _request)

    @staticmethod
    def verify_request(
        request_id: str, credential: Credential, subject_id: str
    ) -> Unary[DataSubjectRequest]:
        request = pb.VerifyRequestRequest(
            request_id=request_id, subject_id=subject_id, credential=credential._to_pb()
        )
        # Only a request still waiting is verified; a repeat returns it as it stands.
        return Unary("VerifyRequest", request, True, _request)

    @staticmethod
    def get_request(request_id: str, session_token: str) -> Unary[DataSubjectRequest]:
        request = pb.GetRequestRequest(request_id=request_id, session_token=session_token)
        return Unary("GetRequest", request, True, _request)

    @staticmethod
    def report_concern(
        kind: ConcernKind, contact_email: str, description: str, subject_id: str
    ) -> Unary[Concern]:
        request = pb.ReportConcernRequest(
            kind=int(kind),
            contact_email=contact_email,
            description=description,
            subject_id=subject_id,
        )
        # No idempotency key: a repeat would file the concern twice.
        return Unary("ReportConcern", request, False, lambda r: Concern._from_pb(r.concern))

    @staticmethod
    def report_child(
        reporter_contact: str, subject_id: str, email: str, notes: str
    ) -> Unary[ChildReport]:
        request = pb.ReportChildRequest(
            subject_id=subject_id, email=email, reporter_contact=reporter_contact, notes=notes
        )
        # No idempotency key: a repeat would file the report twice.
        return Unary(
            "ReportChild",
            request,
            False,
            lambda r: ChildReport(
                r.report.report_id,
                member(ChildReportStatus, r.report.status),
                timestamp(r.report, "received_at"),
            ),
        )


class RightsClient(Service):
    """The rights service (blocking calls; thread-safe)."""

    service = "rights"
    stub = pb_grpc.RightsServiceStub

    def submit_request(
        self,
        kind: RequestKind,
        regime: RightsRegime,
        *,
        subject_id: str = "",
        credential: Credential | None = None,
        purpose: str = "",
        rectifications: Sequence[Rectification] = (),
        concerns_child: bool = False,
        notes: str = "",
        client_reference: str | None = None,
    ) -> DataSubjectRequest:
        """Records a request and, when the credential checks out, starts it; without
        one (or with one that fails) it waits in VERIFICATION_REQUIRED. A repeat with the
        same ``client_reference`` (one is made when None) returns the first request."""
        return self._run(
            _Calls.submit_request(
                kind, regime, subject_id, credential, purpose, rectifications,
                concerns_child, notes, client_reference,
            )
        )

    def verify_request(
        self, request_id: str, credential: Credential, *, subject_id: str = ""
    ) -> DataSubjectRequest:
        """Supplies the credential of a request waiting for verification; the request
        (still waiting if the credential failed)."""
        return self._run(_Calls.verify_request(request_id, credential, subject_id))

    def get_request(self, request_id: str, *, session_token: str = "") -> DataSubjectRequest:
        """A request with its per-service tasks; visible to the client that submitted
        it, or with the subject's ``session_token`` (else :class:`NotFound`)."""
        return self._run(_Calls.get_request(request_id, session_token))

    def watch_request(self, request_id: str, *, session_token: str = "") -> RequestStream:
        """The request after each change until it closes (no deadline: until it closes,
        is cancelled, or the connection ends)."""
        request = pb.WatchRequestRequest(request_id=request_id, session_token=session_token)
        return RequestStream(self._open("WatchRequest", request))

    def download_export(
        self,
        request_id: str,
        download_token: str,
        *,
        session_token: str = "",
        timeout: float | None = None,
    ) -> ExportStream:
        """The package of a completed access or portability request, with its one-time
        ``download_token``; ``timeout`` bounds the whole download (none by default)."""
        request = pb.DownloadExportRequest(
            request_id=request_id, download_token=download_token, session_token=session_token
        )
        return ExportStream(self._open("DownloadExport", request, timeout))

    def report_concern(
        self, kind: ConcernKind, contact_email: str, description: str, *, subject_id: str = ""
    ) -> Concern:
        """Files a privacy complaint or a report of compromised data; the concern with
        when the privacy team owes an answer. Not repeated after UNAVAILABLE."""
        return self._run(_Calls.report_concern(kind, contact_email, description, subject_id))

    def report_child(
        self, reporter_contact: str, *, subject_id: str = "", email: str = "", notes: str = ""
    ) -> ChildReport:
        """Reports that a child's data is held (the account named by exactly one of
        ``subject_id`` and ``email``); the answer shows nothing of the account. Not
        repeated after UNAVAILABLE."""
        return self._run(_Calls.report_child(reporter_contact, subject_id, email, notes))


class AsyncRightsClient(AsyncService):
    """:class:`RightsClient` over ``grpc.aio``; the same methods (unary ones as
    coroutines, streams with ``async for``)."""

    service = "rights"
    stub = pb_grpc.RightsServiceStub

    async def submit_request(
        self,
        kind: RequestKind,
        regime: RightsRegime,
        *,
        subject_id: str = "",
        credential: Credential | None = None,
        purpose: str = "",
        rectifications: Sequence[Rectification] = (),
        concerns_child: bool = False,
        notes: str = "",
        client_reference: str | None = None,
    ) -> DataSubjectRequest:
        return await self._run(
            _Calls.submit_request(
                kind, regime, subject_id, credential, purpose, rectifications,
                concerns_child, notes, client_reference,
            )
        )

    async def verify_request(
        self, request_id: str, credential: Credential, *, subject_id: str = ""
    ) -> DataSubjectRequest:
        return await self._run(_Calls.verify_request(request_id, credential, subject_id))

    async def get_request(
        self, request_id: str, *, session_token: str = ""
    ) -> DataSubjectRequest:
        return await self._run(_Calls.get_request(request_id, session_token))

    def watch_request(self, request_id: str, *, session_token: str = "") -> AsyncRequestStream:
        request = pb.WatchRequestRequest(request_id=request_id, session_token=session_token)
        return AsyncRequestStream(self._open("WatchRequest", request))

    def download_export(
        self,
        request_id: str,
        download_token: str,
        *,
        session_token: str = "",
        timeout: float | None = None,
    ) -> AsyncExportStream:
        request = pb.DownloadExportRequest(
            request_id=request_id, download_token=download_token, session_token=session_token
        )
        return AsyncExportStream(self._open("DownloadExport", request, timeout))

    async def report_concern(
        self, kind: ConcernKind, contact_email: str, description: str, *, subject_id: str = ""
    ) -> Concern:
        return await self._run(
            _Calls.report_concern(kind, contact_email, description, subject_id)
        )

    async def report_child(
        self, reporter_contact: str, *, subject_id: str = "", email: str = "", notes: str = ""
    ) -> ChildReport:
        return await self._run(_Calls.report_child(reporter_contact, subject_id, email, notes))
