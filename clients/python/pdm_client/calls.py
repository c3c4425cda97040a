"""What every typed facade shares: a channel to its service that follows the certificate
files, calls with one deadline (retries included, each attempt carrying the time left) and
typed errors, and server streams as iterators.

A facade describes each unary call once, as a :class:`Unary` (which method, the request,
whether it may be repeated after UNAVAILABLE, how the answer becomes a domain value); the
blocking :class:`Service` and the asyncio :class:`AsyncService` run the same description,
so both flavours of a facade cannot drift apart."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Self, TypeVar

import grpc
import grpc.aio
from google.protobuf import timestamp_pb2

from .config import Config
from .errors import PdmError, from_rpc_error
from .reload import Reloading

T = TypeVar("T")


def metadata() -> list[tuple[str, str]]:
    """The current span's W3C trace context, when OpenTelemetry is installed."""
    try:
        from opentelemetry import propagate
    except ImportError:
        return []
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())


def grace(config: Config) -> float:
    """How long a replaced channel stays open: calls started on it can finish."""
    return max(2 * config.timeout, 1.0)


# === values ===


def timestamp(message: Any, name: str) -> datetime | None:
    """A ``google.protobuf.Timestamp`` field as an aware UTC datetime (None when unset)."""
    if not message.HasField(name):
        return None
    stamp: timestamp_pb2.Timestamp = getattr(message, name)
    return stamp.ToDatetime(tzinfo=UTC)


def to_timestamp(when: datetime) -> timestamp_pb2.Timestamp:
    """A datetime as a Timestamp (a naive one is taken as UTC)."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when if when.tzinfo is not None else when.replace(tzinfo=UTC))
    return stamp


def member(cls: type[T], value: int) -> T:
    """``cls(value)``, or its UNSPECIFIED (0) member for a value newer than this client."""
    try:
        return cls(value)  # type: ignore[call-arg]
    except ValueError:
        return cls(0)  # type: ignore[call-arg]


# === calls ===


@dataclass(frozen=True)
class Unary(Generic[T]):
    """One unary call, described once for both flavours."""

    method: str
    """The stub's method (``GetAccount``)."""
    request: Any
    idempotent: bool
    """Whether it may be repeated after UNAVAILABLE (it may have been done): reads, and
    writes that a repeat cannot do twice (same values, or an idempotency key). Every call
    is repeated after RESOURCE_EXHAUSTED, which refuses before doing anything."""
    answer: Callable[[Any], T]
    """The response as a domain value."""


class ResponseStream(Generic[T]):
    """A server stream as an iterator of domain values (``convert`` returning None skips
    a message); :meth:`cancel`, or leaving a ``with`` block, ends it. A failure of the
    stream raises a :class:`PdmError` from the iteration."""

    def __init__(self, call: Any, convert: Callable[[Any], T | None]) -> None:
        self._call = call
        self._convert = convert

    def __iter__(self) -> Iterator[T]:
        try:
            for message in self._call:
                value = self._convert(message)
                if value is not None:
                    yield value
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def wait_open(self) -> None:
        """Blocks until the server has answered the call (its response headers), so a
        stream that could not be opened fails here rather than at the first message."""
        try:
            self._call.initial_metadata()
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        if not self._call.is_active() and self._call.code() != grpc.StatusCode.OK:
            raise PdmError(f"the stream ended: {self._call.details()}", self._call.code())

    def cancel(self) -> None:
        self._call.cancel()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class AsyncResponseStream(Generic[T]):
    """:class:`ResponseStream` for asyncio: ``async for value in stream``."""

    def __init__(self, call: Any, convert: Callable[[Any], T | None]) -> None:
        self._call = call
        self._convert = convert

    async def __aiter__(self) -> AsyncIterator[T]:
        try:
            async for message in self._call:
                value = self._convert(message)
                if value is not None:
                    yield value
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    async def wait_open(self) -> None:
        """Waits until the server has answered the call (its response headers)."""
        try:
            await self._call.initial_metadata()
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        if self._call.done() and await self._call.code() != grpc.StatusCode.OK:
            raise PdmError(f"the stream ended: {await self._call.details()}")

    def cancel(self) -> None:
        self._call.cancel()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cancel()


# === impl Service ===


class Service:
    """A facade's channel to one service (blocking calls; thread-safe). Subclasses name
    the service and its generated stub."""

    service: ClassVar[str]
    """The service's name, as ``Config.endpoints`` keys it (``identity``)."""
    stub: ClassVar[type[Any]]
    """The generated stub's class."""

    def __init__(self, config: Config, channel: grpc.Channel | None = None) -> None:
        self.config = config
        stub = type(self).stub

        def make() -> tuple[grpc.Channel, Any]:
            made = channel if channel is not None else config.channel(self.service)
            return made, stub(made)

        def retire(old: tuple[grpc.Channel, Any]) -> None:
            closing = threading.Timer(grace(config), old[0].close)
            closing.daemon = True
            closing.start()

        # A channel given by the caller is the caller's to manage: no reload.
        tls = config.tls if channel is None else None
        self._channels = Reloading(tls, config.reload_interval, make, retire)

    @property
    def _stub(self) -> Any:
        return self._channels.current()[1]

    @classmethod
    def from_env(cls) -> Self:
        """A client configured from the environment (see :meth:`Config.from_env`)."""
        return cls(Config.from_env())

    def close(self) -> None:
        self._channels.latest()[0].close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, idempotent: bool, method: Any, request: Any) -> Any:
        def attempt(left: float) -> Any:
            try:
                return method(request, timeout=left, metadata=metadata())
            except grpc.RpcError as e:
                raise from_rpc_error(e) from None

        deadline = time.monotonic() + self.config.timeout
        return self.config.retry.run(idempotent, deadline, attempt)

    def _run(self, call: Unary[T]) -> T:
        method = getattr(self._stub, call.method)
        return call.answer(self._call(call.idempotent, method, call.request))

    def _open(self, method: str, request: Any, timeout: float | None = None) -> Any:
        """A server stream's call (not retried: what it streamed cannot be taken back)."""
        return getattr(self._stub, method)(request, timeout=timeout, metadata=metadata())


class AsyncService:
    """:class:`Service` over ``grpc.aio`` (create and use it inside one event loop)."""

    service: ClassVar[str]
    stub: ClassVar[type[Any]]

    def __init__(self, config: Config, channel: grpc.aio.Channel | None = None) -> None:
        self.config = config
        stub = type(self).stub

        def make() -> tuple[grpc.aio.Channel, Any]:
            made = channel if channel is not None else config.aio_channel(self.service)
            return made, stub(made)

        def retire(old: tuple[grpc.aio.Channel, Any]) -> None:
            loop = asyncio.get_running_loop()
            loop.call_later(grace(config), lambda: loop.create_task(old[0].close()))

        tls = config.tls if channel is None else None
        self._channels = Reloading(tls, config.reload_interval, make, retire)

    @property
    def _stub(self) -> Any:
        return self._channels.current()[1]

    @classmethod
    def from_env(cls) -> Self:
        return cls(Config.from_env())

    async def close(self) -> None:
        await self._channels.latest()[0].close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, idempotent: bool, method: Any, request: Any) -> Any:
        async def attempt(left: float) -> Any:
            try:
                return await method(request, timeout=left, metadata=metadata())
            except grpc.RpcError as e:
                raise from_rpc_error(e) from None

        deadline = time.monotonic() + self.config.timeout
        return await self.config.retry.run_async(idempotent, deadline, attempt)

    async def _run(self, call: Unary[T]) -> T:
        method = getattr(self._stub, call.method)
        return call.answer(await self._call(call.idempotent, method, call.request))

    def _open(self, method: str, request: Any, timeout: float | None = None) -> Any:
        return getattr(self._stub, method)(request, timeout=timeout, metadata=metadata())
