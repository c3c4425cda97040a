"""The telemetry service as typed calls: usage events, crash reports, a logged-out
visitor's tracking choices and the k-anonymous aggregates, as dataclasses.

:class:`TelemetryClient` blocks; :class:`AsyncTelemetryClient` is the same over
``grpc.aio``."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from ._gen.pdm.telemetry.v1 import telemetry_pb2 as pb
from ._gen.pdm.telemetry.v1 import telemetry_pb2_grpc as pb_grpc
from .calls import AsyncService, Service, Unary, member, timestamp, to_timestamp


class TrackingCategory(enum.IntEnum):
    """What a tracking technology is for (UNSPECIFIED counts as ANALYTICS)."""

    UNSPECIFIED = 0
    STRICTLY_NECESSARY = 1
    ANALYTICS = 2
    ADVERTISING = 3


class EventKind(enum.IntEnum):
    """What happened."""

    UNSPECIFIED = 0
    FEATURE_USED = 1
    LINK_CLICKED = 2
    INTERACTION = 3
    PAGE_VIEW = 4


class ConnectionType(enum.IntEnum):
    """How the device was connected."""

    UNSPECIFIED = 0
    WIFI = 1
    CELLULAR = 2
    ETHERNET = 3
    UNKNOWN = 4


class DropReason(enum.IntEnum):
    """Why an event (or a crash report) was not stored."""

    UNSPECIFIED = 0
    NO_CONSENT = 1
    WITHDRAWN = 2
    RESTRICTED = 3
    OBJECTED = 4
    ERASED = 5
    UNKNOWN_SUBJECT = 6
    NO_TRACKING_CONSENT = 7
    GLOBAL_PRIVACY_CONTROL = 8


class Dimension(enum.IntEnum):
    """What aggregates are grouped by."""

    UNSPECIFIED = 0
    EVENT_KIND = 1
    FEATURE = 2
    COUNTRY = 3
    OS = 4
    BROWSER = 5


@dataclass(frozen=True)
class Device:
    """The device an event came from (every field optional). The IP address is truncated
    and the device id stored as a keyed hash before anything is kept."""

    connection: ConnectionType = ConnectionType.UNSPECIFIED
    locale: str = ""
    time_zone: str = ""
    os_name: str = ""
    os_version: str = ""
    browser_name: str = ""
    browser_version: str = ""
    app_version: str = ""
    ip_address: str = ""
    referrer_url: str = ""
    exit_url: str = ""
    device_id: str = ""
    global_privacy_control: bool = False
    """The request carried a Global Privacy Control signal (Sec-GPC: 1)."""

    def _to_pb(self) -> pb.DeviceContext:
        return pb.DeviceContext(
            connection=int(self.connection),
            locale=self.locale,
            time_zone=self.time_zone,
            os_name=self.os_name,
            os_version=self.os_version,
            browser_name=self.browser_name,
            browser_version=self.browser_version,
            app_version=self.app_version,
            ip_address=self.ip_address,
            referrer_url=self.referrer_url,
            exit_url=self.exit_url,
            device_id=self.device_id,
            global_privacy_control=self.global_privacy_control,
        )


@dataclass(frozen=True)
class Event:
    """One usage event. ``subject_id`` empty: a logged-out visitor's, admitted under the
    device's tracking choice."""

    kind: EventKind
    occurred_at: datetime
    subject_id: str = ""
    feature: str = ""
    """FEATURE_USED."""
    link_url: str = ""
    """LINK_CLICKED."""
    peer_subject_id: str = ""
    """INTERACTION."""
    screen: str = ""
    """PAGE_VIEW."""
    device: Device | None = None
    tracking: TrackingCategory = TrackingCategory.UNSPECIFIED

    def _to_pb(self) -> pb.Event:
        return pb.Event(
            subject_id=self.subject_id,
            kind=int(self.kind),
            occurred_at=to_timestamp(self.occurred_at),
            feature=self.feature,
            link_url=self.link_url,
            peer_subject_id=self.peer_subject_id,
            screen=self.screen,
            device=self.device._to_pb() if self.device is not None else None,
            tracking=int(self.tracking),
        )


@dataclass(frozen=True)
class Ingested:
    """What happened to a batch of events."""

    batch_id: str
    """The batch's idempotency key (made by the client when not given): sending the same
    batch again under it stores nothing twice."""
    accepted: int
    """Events stored (committed)."""
    dropped: dict[DropReason, int]
    """Events not stored, per reason."""
    duplicate: bool
    """The batch was stored before: this is the first answer again."""


@dataclass(frozen=True)
class CrashReceipt:
    """A crash report's acknowledgement."""

    crash_id: str
    """Empty when nothing was stored (see ``dropped``)."""
    scrubbed: int
    """Pieces of personal data scrubbed from it."""
    dropped: DropReason
    """Why nothing was stored (OBJECTED, RESTRICTED); UNSPECIFIED when stored."""


@dataclass(frozen=True)
class TrackingChoice:
    """A logged-out visitor's answer to the cookie banner."""

    analytics: bool
    advertising: bool
    """As recorded (see ``advertising_effective``)."""
    global_privacy_control: bool
    advertising_effective: bool
    """Advertising as applied: agreed to and no GPC signal."""
    policy_version: str
    text_hash: str
    recorded_at: datetime | None
    expires_at: datetime | None
    """When it lapses (the visitor is asked again)."""

    @classmethod
    def _from_pb(cls, c: pb.TrackingChoice) -> TrackingChoice:
        return cls(
            analytics=c.analytics,
            advertising=c.advertising,
            global_privacy_control=c.global_privacy_control,
            advertising_effective=c.advertising_effective,
            policy_version=c.policy_version,
            text_hash=c.text_hash,
            recorded_at=timestamp(c, "recorded_at"),
            expires_at=timestamp(c, "expires_at"),
        )


@dataclass(frozen=True)
class Bucket:
    """One day's event count for one value of the dimension."""

    day: str
    value: str
    count: int


@dataclass(frozen=True)
class Aggregates:
    """Daily counts of the buckets at least ``k_threshold`` distinct people contributed
    to; ``suppressed`` buckets had fewer."""

    buckets: list[Bucket]
    suppressed: int
    k_threshold: int
    by_value: dict[str, int] = field(default_factory=dict)
    """Counts summed over the days, per value."""


def _ingested(batch_id: str, r: pb.IngestEventsResponse) -> Ingested:
    dropped: dict[DropReason, int] = {}
    for d in r.dropped:
        reason = member(DropReason, d.reason)
        dropped[reason] = dropped.get(reason, 0) + d.count
    return Ingested(batch_id, r.accepted, dropped, r.duplicate)


def _aggregates(r: pb.QueryAggregatesResponse) -> Aggregates:
    buckets = [Bucket(b.day, b.value, b.count) for b in r.buckets]
    by_value: dict[str, int] = {}
    for b in buckets:
        by_value[b.value] = by_value.get(b.value, 0) + b.count
    return Aggregates(buckets, r.suppressed, r.k_threshold, by_value)


def _day(day: str | date) -> str:
    return day.isoformat() if isinstance(day, date) else day


class _Calls:
    """Each call once: its request, whether it may be repeated, its answer."""

    @staticmethod
    def ingest_events(events: Sequence[Event], batch_id: str | None) -> Unary[Ingested]:
        key = batch_id or uuid.uuid4().hex
        request = pb.IngestEventsRequest(batch_id=key, events=[e._to_pb() for e in events])
        # A repeated batch id is stored once and answered with the first answer.
        return Unary("IngestEvents", request, True, lambda r: _ingested(key, r))

    @staticmethod
    def report_crash(
        error_type: str,
        message: str,
        stack_trace: str,
        occurred_at: datetime | None,
        subject_id: str,
        device: Device | None,
    ) -> Unary[CrashReceipt]:
        request = pb.ReportCrashRequest(
            subject_id=subject_id,
            error_type=error_type,
            message=message,
            stack_trace=stack_trace,
            occurred_at=to_timestamp(occurred_at or datetime.now(UTC)),
            device=device._to_pb() if device is not None else None,
        )
        # No idempotency key: a repeat would store the report twice.
        return Unary(
            "ReportCrash",
            request,
            False,
            lambda r: CrashReceipt(r.crash_id, r.scrubbed, member(DropReason, r.dropped)),
        )

    @staticmethod
    def record_tracking_choice(
        device_id: str,
        analytics: bool,
        advertising: bool,
        policy_version: str,
        text_hash: str,
        global_privacy_control: bool,
    ) -> Unary[TrackingChoice]:
        request = pb.RecordTrackingChoiceRequest(
            device_id=device_id,
            analytics=analytics,
            advertising=advertising,
            global_privacy_control=global_privacy_control,
            policy_version=policy_version,
            text_hash=text_hash,
        )
        # Each call is a new choice (the contract says: not idempotent by key).
        return Unary(
            "RecordTrackingChoice", request, False, lambda r: TrackingChoice._from_pb(r.choice)
        )

    @staticmethod
    def get_tracking_choice(device_id: str) -> Unary[TrackingChoice | None]:
        request = pb.GetTrackingChoiceRequest(device_id=device_id)
        return Unary(
            "GetTrackingChoice",
            request,
            True,
            lambda r: TrackingChoice._from_pb(r.choice) if r.found else None,
        )

    @staticmethod
    def query_aggregates(
        dimension: Dimension, from_day: str | date, to_day: str | date
    ) -> Unary[Aggregates]:
        request = pb.QueryAggregatesRequest(
            dimension=int(dimension), from_day=_day(from_day), to_day=_day(to_day)
        )
        return Unary("QueryAggregates", request, True, _aggregates)


class TelemetryClient(Service):
    """The telemetry service (blocking calls; thread-safe)."""

    service = "telemetry"
    stub = pb_grpc.TelemetryServiceStub

    def ingest_events(self, events: Sequence[Event], *, batch_id: str | None = None) -> Ingested:
        """Stores a batch (at most 1,000 events): each admitted only with the subject's
        agreement (or, logged out, the device's tracking choice), the others counted in
        ``dropped``. A bad event refuses the whole batch (:class:`InvalidArgument`
        naming ``events[i].<field>``). Retried safely: the batch id is kept across
        attempts."""
        return self._run(_Calls.ingest_events(events, batch_id))

    def report_crash(
        self,
        error_type: str,
        *,
        message: str = "",
        stack_trace: str = "",
        occurred_at: datetime | None = None,
        subject_id: str = "",
        device: Device | None = None,
    ) -> CrashReceipt:
        """Stores a crash report, scrubbed of emails, tokens, card numbers and user paths
        (``occurred_at`` defaults to now). Not repeated after UNAVAILABLE."""
        return self._run(
            _Calls.report_crash(error_type, message, stack_trace, occurred_at, subject_id, device)
        )

    def record_tracking_choice(
        self,
        device_id: str,
        *,
        analytics: bool,
        advertising: bool,
        policy_version: str,
        text_hash: str,
        global_privacy_control: bool = False,
    ) -> TrackingChoice:
        """Records a logged-out visitor's cookie-banner answer for the device; it applies
        to events ingested after it returns. Not repeated after UNAVAILABLE."""
        return self._run(
            _Calls.record_tracking_choice(
                device_id, analytics, advertising, policy_version, text_hash,
                global_privacy_control,
            )
        )

    def get_tracking_choice(self, device_id: str) -> TrackingChoice | None:
        """The device's current choice; None when none applies (only strictly necessary
        tracking)."""
        return self._run(_Calls.get_tracking_choice(device_id))

    def query_aggregates(
        self, dimension: Dimension, from_day: str | date, to_day: str | date
    ) -> Aggregates:
        """Daily counts by ``dimension`` from ``from_day`` to ``to_day`` (inclusive, at
        most 366 days apart), only of buckets with at least k distinct people."""
        return self._run(_Calls.query_aggregates(dimension, from_day, to_day))


class AsyncTelemetryClient(AsyncService):
    """:class:`TelemetryClient` over ``grpc.aio``; the same methods as coroutines."""

    service = "telemetry"
    stub = pb_grpc.TelemetryServiceStub

    async def ingest_events(
        self, events: Sequence[Event], *, batch_id: str | None = None
    ) -> Ingested:
        return await self._run(_Calls.ingest_events(events, batch_id))

    async def report_crash(
        self,
        error_type: str,
        *,
        message: str = "",
        stack_trace: str = "",
        occurred_at: datetime | None = None,
        subject_id: str = "",
        device: Device | None = None,
    ) -> CrashReceipt:
        return await self._run(
            _Calls.report_crash(error_type, message, stack_trace, occurred_at, subject_id, device)
        )

    async def record_tracking_choice(
        self,
        device_id: str,
        *,
        analytics: bool,
        advertising: bool,
        policy_version: str,
        text_hash: str,
        global_privacy_control: bool = False,
    ) -> TrackingChoice:
        return await self._run(
            _Calls.record_tracking_choice(
                device_id, analytics, advertising, policy_version, text_hash,
                global_privacy_control,
            )
        )

    async def get_tracking_choice(self, device_id: str) -> TrackingChoice | None:
        return await self._run(_Calls.get_tracking_choice(device_id))

    async def query_aggregates(
        self, dimension: Dimension, from_day: str | date, to_day: str | date
    ) -> Aggregates:
        return await self._run(_Calls.query_aggregates(dimension, from_day, to_day))
