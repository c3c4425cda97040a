"""The consent gate: "may we process this subject's data for this purpose?" and "may we
send this message?" answered in-process.

Decisions are cached (at most ``capacity`` of them, each for at most ``max_age``), filled
on a miss through BatchCheckProcessing (misses arriving within ``batch_window`` share one
call) and kept coherent by WatchConsentChanges, followed by a background thread: every
change the ledger records drops the subject's cached decisions (an erasure drops them all),
and after a disconnect the stream resumes from its cursor, so no change is lost or seen
twice. The gate counts as connected only once it has replayed up to the ledger position
read when it (re)connected. A decision fetched across a change is not cached.

Fail-closed: once the stream has been down longer than ``stale_after``, the cache is not
trusted; decisions go to the network, and if that fails too, processing is denied
(:attr:`Verdict.why` says why). Nothing here logs a subject id.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from .consent import AsyncChangeStream, AsyncConsentClient, ChangeStream, ConsentClient
from .errors import InvalidArgument, NotFound, PdmError, PermissionDenied
from .types import Channel, Decision, MessageKind, Reason

log = logging.getLogger("pdm_client.gate")


@dataclass(frozen=True)
class GateOptions:
    """How a gate caches and when it stops trusting its cache (times in seconds)."""

    capacity: int = 100_000
    """Most decisions cached (subject × purpose, or subject × channel and kind)."""
    max_age: float = 60.0
    """Longest a cached decision is used (changes outside the ledger, such as a subject's
    region, reach the gate within this)."""
    stale_after: float = 5.0
    """How long the change stream may be down before the cache is no longer trusted."""
    batch_window: float = 0.001
    """How long a miss waits for others to share its BatchCheckProcessing."""
    max_batch: int = 500
    """Most checks in one BatchCheckProcessing."""


@dataclass(frozen=True)
class Verdict:
    """A gate's answer: the service's decision, or a denial because none could be had."""

    decision: Decision | None
    """The consent service's decision (from the cache or the network)."""
    why: str | None = None
    """Why no decision could be had (failed closed); no personal data."""

    @property
    def allowed(self) -> bool:
        """Whether processing may go ahead."""
        return self.decision is not None and self.decision.allowed

    @property
    def failed_closed(self) -> bool:
        return self.decision is None


def _fail_closed(error: PdmError) -> Verdict:
    if isinstance(error, (InvalidArgument, PermissionDenied, NotFound)):
        # The service answered: a bad subject id or purpose is the caller's error, and
        # still no permission.
        return Verdict(None, f"consent refused the check: {error}")
    return Verdict(None, f"consent unreachable and no trusted cached decision: {error}")


ContactKey = tuple[int, int]


@dataclass
class _Subject:
    purposes: dict[str, tuple[Decision, float]] = field(default_factory=dict)
    contact: dict[ContactKey, tuple[Decision, float]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.purposes) + len(self.contact)


@dataclass
class _Miss:
    subject: str
    purpose: str
    reply: Future[Decision]


class _Cache:
    """The decisions and the stream's state, shared by both gates (thread-safe)."""

    def __init__(self, options: GateOptions) -> None:
        self.options = options
        self.lock = threading.Lock()
        self.subjects: dict[str, _Subject] = {}
        self.len = 0
        # Bumped by every invalidation: a decision fetched before one is not cached.
        self.generation = 0
        self.connected = False
        self.down_since = time.monotonic()
        self.position = 0
        self.applied = 0

    def trusted(self) -> bool:
        """Cached decisions may be used: the stream is up, or down for < stale_after."""
        if self.connected:
            return True
        return time.monotonic() - self.down_since < self.options.stale_after

    def current_generation(self) -> int:
        with self.lock:
            return self.generation

    def _fresh(self, entry: tuple[Decision, float] | None) -> Decision | None:
        if entry is None or time.monotonic() - entry[1] >= self.options.max_age:
            return None
        return entry[0]

    def purpose(self, subject: str, purpose: str) -> Decision | None:
        with self.lock:
            entries = self.subjects.get(subject)
            return self._fresh(entries.purposes.get(purpose)) if entries else None

    def contact(self, subject: str, key: ContactKey) -> Decision | None:
        with self.lock:
            entries = self.subjects.get(subject)
            return self._fresh(entries.contact.get(key)) if entries else None

    def keep(self, subject: str, key: str | ContactKey, decision: Decision, generation: int) -> None:
        """Caches ``decision`` unless a change was applied since it was asked for. Unknown
        subjects are not cached: a sign-up makes them known without a ledger entry."""
        if decision.reason == Reason.UNKNOWN_SUBJECT or self.options.capacity <= 0:
            return
        with self.lock:
            if self.generation != generation:
                return
            # Room for one more: the oldest subjects go first.
            while self.len >= self.options.capacity and self.subjects:
                victim = next(iter(self.subjects))
                self.len -= len(self.subjects.pop(victim))
            entries = self.subjects.setdefault(subject, _Subject())
            table: dict = entries.purposes if isinstance(key, str) else entries.contact
            if key not in table:
                self.len += 1
            table[key] = (decision, time.monotonic())

    def apply(self, sequence: int, subject: str, erasure: bool) -> None:
        """One ledger change: the subject's decisions go (an erasure's: everyone's)."""
        with self.lock:
            if erasure:
                self.subjects.clear()
                self.len = 0
            else:
                gone = self.subjects.pop(subject, None)
                if gone is not None:
                    self.len -= len(gone)
            self.generation += 1
            self.applied += 1
            self.position = sequence

    def went_down(self) -> None:
        if self.connected:
            self.connected = False
            self.down_since = time.monotonic()
            log.warning("consent gate: change stream lost; reconnecting")

    def caught_up(self, at: int, position: int) -> None:
        if at >= position and not self.connected:
            self.connected = True
            log.info("consent gate: change stream connected")


class _State:
    """What both gates expose about their cache and stream."""

    _cache: _Cache

    @property
    def connected(self) -> bool:
        """Whether the change stream is connected and caught up."""
        return self._cache.connected

    @property
    def position(self) -> int:
        """The ledger position the cache reflects: every change up to it is applied."""
        return self._cache.position

    @property
    def changes_applied(self) -> int:
        """Ledger changes applied since the gate started."""
        return self._cache.applied

    def __len__(self) -> int:
        """Decisions cached now."""
        return self._cache.len

    def cached(self, subject: str, purpose: str) -> Decision | None:
        """The cached answer alone, without a call (None on a miss or when the cache is
        not trusted)."""
        return self._cache.purpose(subject, purpose) if self._cache.trusted() else None


class ConsentGate(_State):
    """The consent gate over a blocking :class:`ConsentClient`: two daemon threads (the
    change stream and the miss batcher) until :meth:`close`. Thread-safe."""

    def __init__(self, consent: ConsentClient, options: GateOptions | None = None) -> None:
        self.consent = consent
        self.options = options or GateOptions()
        self._cache = _Cache(self.options)
        self._stop = threading.Event()
        self._stream: ChangeStream | None = None
        self._misses: queue.Queue[_Miss] = queue.Queue(maxsize=max(self.options.max_batch, 1) * 4)
        self._threads = [
            threading.Thread(target=self._follow, name="pdm-gate-follow", daemon=True),
            threading.Thread(target=self._batch, name="pdm-gate-batch", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def allowed(self, subject: str, purpose: str) -> Verdict:
        """Whether ``subject``'s data may be processed for ``purpose``."""
        trusted = self._cache.trusted()
        if trusted:
            cached = self._cache.purpose(subject, purpose)
            if cached is not None:
                return Verdict(cached)
        generation = self._cache.current_generation()
        try:
            if trusted:
                decision = self._through_batch(subject, purpose)
            else:
                decision = self.consent.check(subject, purpose)
        except PdmError as error:
            return _fail_closed(error)
        self._cache.keep(subject, purpose, decision, generation)
        return Verdict(decision)

    def can_contact(self, subject: str, channel: Channel, kind: MessageKind) -> Verdict:
        """Whether a message of ``kind`` may be sent to ``subject`` on ``channel``."""
        key = (int(channel), int(kind))
        if self._cache.trusted():
            cached = self._cache.contact(subject, key)
            if cached is not None:
                return Verdict(cached)
        generation = self._cache.current_generation()
        try:
            decision = self.consent.can_contact(subject, channel, kind)
        except PdmError as error:
            return _fail_closed(error)
        self._cache.keep(subject, key, decision, generation)
        return Verdict(decision)

    def close(self) -> None:
        """Stops the threads (the client stays open: it is the caller's)."""
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.cancel()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> ConsentGate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _follow(self) -> None:
        """Follows the ledger: connects, replays what was missed, applies every change;
        after a disconnect, resumes from the last change applied."""
        cache = self._cache
        cursor: int | None = None
        backoff = 0.05
        while not self._stop.is_set():
            try:
                # Everything up to here is read from the service on a miss: start after it.
                position = self.consent.ledger_position().sequence
                after = position if cursor is None else cursor
                cursor = after
                stream = self.consent.watch(after)
                self._stream = stream
                if self._stop.is_set():
                    stream.cancel()
                    return
                stream.wait_open()
                cache.position = max(cache.position, after)
                cache.caught_up(after, position)
                for change in stream:
                    cache.apply(change.sequence, change.subject_id, change.is_erasure)
                    cursor = change.sequence
                    cache.caught_up(change.sequence, position)
                backoff = 0.05
            except PdmError as error:
                if self._stop.is_set():
                    return
                log.debug("consent gate: change stream failed: %s", error)
                backoff = min(backoff * 2, 2.0)
            cache.went_down()
            self._stop.wait(backoff)

    def _through_batch(self, subject: str, purpose: str) -> Decision:
        reply: Future[Decision] = Future()
        try:
            self._misses.put(_Miss(subject, purpose, reply), timeout=self.consent.config.timeout)
        except queue.Full:
            return self.consent.check(subject, purpose)
        # The batch's call has its own deadline; this bound only guards a stopped batcher.
        try:
            return reply.result(timeout=self.consent.config.timeout + 1)
        except TimeoutError:
            return self.consent.check(subject, purpose)

    def _batch(self) -> None:
        """The first miss waits ``batch_window`` for others (up to ``max_batch``), then one
        BatchCheckProcessing answers them all."""
        while not self._stop.is_set():
            try:
                first = self._misses.get(timeout=0.2)
            except queue.Empty:
                continue
            misses = [first]
            until = time.monotonic() + self.options.batch_window
            while len(misses) < max(self.options.max_batch, 1):
                left = until - time.monotonic()
                try:
                    misses.append(
                        self._misses.get(timeout=left) if left > 0 else self._misses.get_nowait()
                    )
                except queue.Empty:
                    break
            try:
                decisions = self.consent.check_many([(m.subject, m.purpose) for m in misses])
            except InvalidArgument:
                # One bad pair fails the batch: ask for each alone, so only it fails.
                for miss in misses:
                    try:
                        miss.reply.set_result(self.consent.check(miss.subject, miss.purpose))
                    except PdmError as error:
                        miss.reply.set_exception(error)
                continue
            except PdmError as error:
                for miss in misses:
                    miss.reply.set_exception(error)
                continue
            for miss, decision in zip(misses, decisions):
                miss.reply.set_result(decision)


class AsyncConsentGate(_State):
    """The consent gate over an :class:`AsyncConsentClient`: a task follows the change
    stream until :meth:`close`. Create it inside the running event loop (``async with``).
    Misses are answered one by one (CheckProcessing); they are not batched here."""

    def __init__(self, consent: AsyncConsentClient, options: GateOptions | None = None) -> None:
        self.consent = consent
        self.options = options or GateOptions()
        self._cache = _Cache(self.options)
        self._stream: AsyncChangeStream | None = None
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def allowed(self, subject: str, purpose: str) -> Verdict:
        """Whether ``subject``'s data may be processed for ``purpose``."""
        if self._cache.trusted():
            cached = self._cache.purpose(subject, purpose)
            if cached is not None:
                return Verdict(cached)
        generation = self._cache.current_generation()
        try:
            decision = await self.consent.check(subject, purpose)
        except PdmError as error:
            return _fail_closed(error)
        self._cache.keep(subject, purpose, decision, generation)
        return Verdict(decision)

    async def can_contact(self, subject: str, channel: Channel, kind: MessageKind) -> Verdict:
        """Whether a message of ``kind`` may be sent to ``subject`` on ``channel``."""
        key = (int(channel), int(kind))
        if self._cache.trusted():
            cached = self._cache.contact(subject, key)
            if cached is not None:
                return Verdict(cached)
        generation = self._cache.current_generation()
        try:
            decision = await self.consent.can_contact(subject, channel, kind)
        except PdmError as error:
            return _fail_closed(error)
        self._cache.keep(subject, key, decision, generation)
        return Verdict(decision)

    async def close(self) -> None:
        """Stops following the stream (the client stays open: it is the caller's)."""
        self._task.cancel()
        if self._stream is not None:
            self._stream.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def __aenter__(self) -> AsyncConsentGate:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _follow(self) -> None:
        cache = self._cache
        cursor: int | None = None
        backoff = 0.05
        while True:
            try:
                position = (await self.consent.ledger_position()).sequence
                after = position if cursor is None else cursor
                cursor = after
                stream = self.consent.watch(after)
                self._stream = stream
                await stream.wait_open()
                cache.position = max(cache.position, after)
                cache.caught_up(after, position)
                async for change in stream:
                    cache.apply(change.sequence, change.subject_id, change.is_erasure)
                    cursor = change.sequence
                    cache.caught_up(change.sequence, position)
                backoff = 0.05
            except PdmError as error:
                log.debug("consent gate: change stream failed: %s", error)
                backoff = min(backoff * 2, 2.0)
            cache.went_down()
            await asyncio.sleep(backoff)
