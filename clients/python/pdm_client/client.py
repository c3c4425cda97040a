"""The mesh as a company service sees it: one object holding a facade per service, each
made on first use (so only the services it calls need an endpoint)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Self, TypeVar

from .config import Config
from .consent import AsyncConsentClient, ConsentClient
from .identity import AsyncIdentityClient, IdentityClient
from .rights import AsyncRightsClient, RightsClient
from .telemetry import AsyncTelemetryClient, TelemetryClient
from .transfers import AsyncTransfersClient, TransfersClient

F = TypeVar("F")


class _Facades:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._made: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _facade(self, name: str, make: Callable[[Config], F]) -> F:
        # One facade (and channel) per service, whichever thread asks first.
        with self._lock:
            facade = self._made.get(name)
            if facade is None:
                facade = self._made[name] = make(self.config)
            return facade  # type: ignore[no-any-return]


class PdmClient(_Facades):
    """Blocking facades: ``client.consent``, ``.identity``, ``.telemetry``,
    ``.transfers``, ``.rights``. A service without an endpoint is a :class:`ConfigError`
    when its facade is first used. Thread-safe."""

    @classmethod
    def from_env(cls) -> Self:
        """A client configured from the environment (see :meth:`Config.from_env`)."""
        return cls(Config.from_env())

    @property
    def consent(self) -> ConsentClient:
        return self._facade("consent", ConsentClient)

    @property
    def identity(self) -> IdentityClient:
        return self._facade("identity", IdentityClient)

    @property
    def telemetry(self) -> TelemetryClient:
        return self._facade("telemetry", TelemetryClient)

    @property
    def transfers(self) -> TransfersClient:
        return self._facade("transfers", TransfersClient)

    @property
    def rights(self) -> RightsClient:
        return self._facade("rights", RightsClient)

    def close(self) -> None:
        """Closes the channels of the facades made so far."""
        with self._lock:
            made, self._made = list(self._made.values()), {}
        for facade in made:
            facade.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncPdmClient(_Facades):
    """:class:`PdmClient` over ``grpc.aio`` (create and use it inside one event loop)."""

    @classmethod
    def from_env(cls) -> Self:
        return cls(Config.from_env())

    @property
    def consent(self) -> AsyncConsentClient:
        return self._facade("consent", AsyncConsentClient)

    @property
    def identity(self) -> AsyncIdentityClient:
        return self._facade("identity", AsyncIdentityClient)

    @property
    def telemetry(self) -> AsyncTelemetryClient:
        return self._facade("telemetry", AsyncTelemetryClient)

    @property
    def transfers(self) -> AsyncTransfersClient:
        return self._facade("transfers", AsyncTransfersClient)

    @property
    def rights(self) -> AsyncRightsClient:
        return self._facade("rights", AsyncRightsClient)

    async def close(self) -> None:
        with self._lock:
            made, self._made = list(self._made.values()), {}
        for facade in made:
            await facade.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
