"""Retries: a call refused before any work (RESOURCE_EXHAUSTED: a rate limit or load
shedding) is tried again whatever it is; an idempotent call (a check, a read) also after
UNAVAILABLE. Waits double from ``first_backoff`` to ``max_backoff`` with full jitter, never
shorter than a RetryInfo delay, and never past the call's deadline."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import DeadlineExceeded, PdmError, ResourceExhausted, Unavailable

T = TypeVar("T")
log = logging.getLogger("pdm_client")
_random = random.SystemRandom()


@dataclass(frozen=True)
class RetryPolicy:
    """How calls are retried (times in seconds)."""

    max_attempts: int = 4
    """Attempts in all (1: no retry)."""
    first_backoff: float = 0.05
    """The first wait's upper bound."""
    max_backoff: float = 2.0
    """The longest wait's upper bound."""

    def retries(self, error: PdmError, idempotent: bool, attempt: int) -> bool:
        """Whether ``error`` on attempt ``attempt`` (1-based) is worth another attempt."""
        if attempt >= self.max_attempts:
            return False
        if isinstance(error, ResourceExhausted):
            return True
        return isinstance(error, Unavailable) and idempotent

    def backoff(self, attempt: int, asked: float | None = None) -> float:
        """The wait before attempt ``attempt + 1``: a random time up to the doubled backoff
        (full jitter), at least what the server asked for."""
        ceiling = min(self.first_backoff * (2 ** min(max(attempt - 1, 0), 16)), self.max_backoff)
        jittered = ceiling * _random.random()
        return jittered if asked is None else max(jittered, asked)

    def _next(self, error: PdmError, idempotent: bool, attempt: int, deadline: float) -> float:
        """The wait before another attempt, or raises ``error`` when there is none."""
        if not self.retries(error, idempotent, attempt):
            raise error
        wait = self.backoff(attempt, error.retry_after)
        if time.monotonic() + wait >= deadline:
            raise error
        log.debug("pdm call retried (attempt %d, wait %.0f ms): %s", attempt, wait * 1000, error)
        return wait

    def run(self, idempotent: bool, deadline: float, call: Callable[[float], T]) -> T:
        """Runs ``call`` (given the seconds left before ``deadline``, a ``time.monotonic()``
        instant) until it succeeds, fails in a way not worth retrying, or the deadline
        leaves no room for another attempt."""
        attempt = 1
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded()
            try:
                return call(left)
            except PdmError as error:
                time.sleep(self._next(error, idempotent, attempt, deadline))
            attempt += 1

    async def run_async(
        self, idempotent: bool, deadline: float, call: Callable[[float], Awaitable[T]]
    ) -> T:
        """:meth:`run` for asyncio."""
        attempt = 1
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded()
            try:
                return await call(left)
            except PdmError as error:
                await asyncio.sleep(self._next(error, idempotent, attempt, deadline))
            attempt += 1
