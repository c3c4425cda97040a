"""The consent gate against a real mesh: a grant opens it and a withdrawal closes it within
the bound; a stream cut by a restart of the mesh resumes from its cursor (the change made
meanwhile, on PostgreSQL through a second consent replica, applied once); a gate that
cannot know fails closed; a token read-your-writes across two consent replicas."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

from mesh import Mesh
from pdm_client import (
    Channel,
    ConsentGate,
    GateOptions,
    Grant,
    MessageKind,
    Reason,
)

PURPOSE = "product_analytics"
TEXT_HASH = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea"
BOUND = 5.0
T = TypeVar("T")


def grant(subject: str) -> Grant:
    return Grant(subject, PURPOSE, "2024-06-28", TEXT_HASH, "checkout")


def eventually(what: str, condition: Callable[[], T], bound: float = BOUND) -> T:
    """Polls ``condition`` until it is truthy; fails after ``bound`` seconds."""
    until = time.monotonic() + bound
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > until:
            pytest.fail(f"{what}: not within {bound} s")
        time.sleep(0.02)


def until_verdict(gate: ConsentGate, subject: str, allowed: bool) -> float:
    started = time.monotonic()
    eventually("the gate's verdict", lambda: gate.allowed(subject, PURPOSE).allowed == allowed)
    return time.monotonic() - started


def test_a_grant_opens_the_gate_and_a_withdrawal_closes_it(shared_mesh: Mesh) -> None:
    consent = shared_mesh.consent()
    with ConsentGate(consent) as gate:
        subject = shared_mesh.sign_up()
        eventually("the gate's stream", lambda: gate.connected)

        verdict = gate.allowed(subject, PURPOSE)
        assert verdict.decision == consent.check(subject, PURPOSE)
        assert not verdict.allowed and not verdict.failed_closed
        assert gate.cached(subject, PURPOSE) is not None, "a miss is cached"

        consent.grant(grant(subject))
        until_verdict(gate, subject, True)
        withdrawn = consent.withdraw(subject, PURPOSE, "settings-page")
        until_verdict(gate, subject, False)
        decision = gate.allowed(subject, PURPOSE).decision
        assert decision is not None and decision.reason is Reason.WITHDRAWN
        eventually("the withdrawal in the gate", lambda: gate.position >= withdrawn.sequence)

        transactional = gate.can_contact(subject, Channel.EMAIL, MessageKind.TRANSACTIONAL)
        assert transactional.allowed, transactional
        promotional = gate.can_contact(subject, Channel.EMAIL, MessageKind.PROMOTIONAL)
        assert not promotional.allowed
    consent.close()


def test_concurrent_misses_share_batches_and_stay_in_order(shared_mesh: Mesh) -> None:
    from concurrent.futures import ThreadPoolExecutor

    consent = shared_mesh.consent()
    subjects = [shared_mesh.sign_up() for _ in range(6)]
    for s in subjects[::2]:
        consent.grant(grant(s))
    with ConsentGate(consent, GateOptions(batch_window=0.02)) as gate:
        eventually("the gate's stream", lambda: gate.connected)
        with ThreadPoolExecutor(6) as pool:
            verdicts = list(pool.map(lambda s: gate.allowed(s, PURPOSE), subjects))
        assert [v.allowed for v in verdicts] == [True, False] * 3
        # A bad pair fails alone, denied with the service's reason.
        bad = gate.allowed("not-a-uuid", PURPOSE)
        assert bad.failed_closed and "refused" in (bad.why or ""), bad
    consent.close()


def test_a_cut_stream_resumes_from_its_cursor_without_losing_or_repeating_a_change(
    mesh: Mesh,
) -> None:
    # On PostgreSQL the writes go through a second consent replica, which keeps running
    # while the gate's is down: the change is made during the cut. On SQLite (one process
    # per database) it is made right after the restart.
    replica = mesh.start_replica() if mesh.database.postgres else None
    writer = mesh.consent(replica)
    consent = mesh.consent()
    # Trust the cache through the outage, to see the change arrive afterwards.
    with ConsentGate(consent, GateOptions(stale_after=60.0)) as gate:
        subject = mesh.sign_up()
        eventually("the gate's stream", lambda: gate.connected)
        granted = writer.grant(grant(subject))
        until_verdict(gate, subject, True)
        eventually("the grant in the gate", lambda: gate.position >= granted.sequence)
        seen = gate.changes_applied
        # Cached now that the grant's change is in (a decision fetched across one is not).
        assert gate.allowed(subject, PURPOSE).allowed
        cached = gate.cached(subject, PURPOSE)
        assert cached is not None and cached.allowed

        mesh.main.kill()
        eventually("the cut", lambda: not gate.connected)
        if replica is not None:
            withdrawn = writer.withdraw(subject, PURPOSE, "settings-page")
            # Down, within its trust bound: the gate still answers from its cache.
            assert gate.allowed(subject, PURPOSE).allowed
            mesh.main.start()
        else:
            mesh.main.start()
            withdrawn = writer.withdraw(subject, PURPOSE, "settings-page")
        until_verdict(gate, subject, False)
        eventually("the stream back", lambda: gate.connected)
        assert gate.position == withdrawn.sequence
        # The withdrawal once: nothing lost, nothing replayed twice.
        assert gate.changes_applied == seen + 1
    writer.close()
    consent.close()


def test_a_gate_that_cannot_know_fails_closed(mesh: Mesh) -> None:
    consent = mesh.consent()
    with ConsentGate(consent, GateOptions(stale_after=0.3)) as gate:
        subject = mesh.sign_up()
        eventually("the gate's stream", lambda: gate.connected)
        consent.grant(grant(subject))
        until_verdict(gate, subject, True)

        mesh.main.kill()
        verdict = eventually(
            "the gate to fail closed",
            lambda: (v := gate.allowed(subject, PURPOSE)).failed_closed and v,
            bound=15.0,
        )
        assert not verdict.allowed
        assert "unreachable" in (verdict.why or ""), verdict
        assert subject not in (verdict.why or "")
    consent.close()


@pytest.mark.skipif(
    not Mesh.postgres_wanted(), reason="two consent replicas share a PostgreSQL database"
)
def test_a_token_reads_a_write_on_another_replica(mesh: Mesh) -> None:
    other = mesh.start_replica()
    first, second = mesh.consent(), mesh.consent(other)
    for _ in range(5):
        subject = mesh.sign_up()
        written = first.grant(grant(subject))
        assert second.check(subject, PURPOSE, at_least=written.token).allowed
        withdrawn = second.withdraw(subject, PURPOSE, "settings-page")
        decision = first.check(subject, PURPOSE, at_least=withdrawn.token)
        assert (decision.allowed, decision.reason) == (False, Reason.WITHDRAWN)
    first.close()
    second.close()


def test_the_asyncio_gate_follows_the_ledger_too(shared_mesh: Mesh) -> None:
    import asyncio

    from pdm_client import AsyncConsentClient, AsyncConsentGate

    subject = shared_mesh.sign_up()

    async def until_async(gate: AsyncConsentGate, allowed: bool) -> None:
        until = time.monotonic() + BOUND
        while (await gate.allowed(subject, PURPOSE)).allowed != allowed:
            if time.monotonic() > until:
                pytest.fail(f"the asyncio gate's verdict: not {allowed} within {BOUND} s")
            await asyncio.sleep(0.02)

    async def run() -> None:
        async with AsyncConsentClient(shared_mesh.config()) as consent:
            async with AsyncConsentGate(consent) as gate:
                while not gate.connected:
                    await asyncio.sleep(0.02)
                assert not (await gate.allowed(subject, PURPOSE)).allowed
                granted = await consent.grant(grant(subject))
                await until_async(gate, True)
                while gate.position < granted.sequence:
                    await asyncio.sleep(0.02)
                # Cached once the grant is in; only the stream can drop it now.
                assert (await gate.allowed(subject, PURPOSE)).allowed
                assert (cached := gate.cached(subject, PURPOSE)) is not None and cached.allowed
                withdrawn = await consent.withdraw(subject, PURPOSE, "settings-page")
                await until_async(gate, False)
                assert gate.position >= withdrawn.sequence
                promotional = await gate.can_contact(
                    subject, Channel.EMAIL, MessageKind.PROMOTIONAL
                )
                assert not promotional.allowed and not promotional.failed_closed

    asyncio.run(asyncio.wait_for(run(), 30))
