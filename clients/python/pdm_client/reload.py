"""Certificates reloaded on change, as the services reload theirs: a client that runs for
months keeps working across a certificate rotation without a restart."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from .config import ConfigError, TlsFiles

T = TypeVar("T")
log = logging.getLogger("pdm_client")


class Reloading(Generic[T]):
    """A channel (with its stub) to one service that follows its certificate files: once
    they change (looked at no more often than every ``interval`` seconds), the next call
    goes over a fresh channel, and the old one is handed to ``retire``, which closes it
    after a grace period (ending a stream on it: the gate resumes on the new channel)."""

    def __init__(
        self,
        tls: TlsFiles | None,
        interval: float,
        make: Callable[[], T],
        retire: Callable[[T], None],
    ) -> None:
        self._tls, self._interval = tls, interval
        self._make, self._retire = make, retire
        self._lock = threading.Lock()
        self._current = make()
        self._stamp = tls.stamp() if tls is not None else None
        self._checked = time.monotonic()
        self.reloads = 0
        """How many times the files changed and a new channel was made."""

    def current(self) -> T:
        """The channel to call over now."""
        if self._tls is not None and time.monotonic() - self._checked >= self._interval:
            self._check(self._tls)
        return self._current

    def latest(self) -> T:
        """The channel in use, without looking at the files (to close it)."""
        return self._current

    def _check(self, tls: TlsFiles) -> None:
        with self._lock:
            self._checked = time.monotonic()
            stamp = tls.stamp()
            if stamp == self._stamp:
                return
            try:
                fresh = self._make()
            except ConfigError as e:
                # A file is missing mid-rotation (or the new certificate is not this
                # client's): keep the old channel, look again later.
                log.warning("pdm client: new certificates not used: %s", e)
                return
            old, self._current, self._stamp = self._current, fresh, stamp
            self.reloads += 1
        self._retire(old)
