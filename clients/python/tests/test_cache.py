"""The gate's cache on its own (no mesh needed): capacity, invalidation per subject,
erasure, a decision fetched across a change, trust after the stream is lost."""

from __future__ import annotations

import time

from pdm_client import Change, Channel, Decision, GateOptions, LedgerEntryKind, LegalBasis, Reason
from pdm_client.gate import _Cache

ALLOWED = Decision(True, Reason.CONSENT_GIVEN, LegalBasis.CONSENT)
UNKNOWN = Decision(False, Reason.UNKNOWN_SUBJECT, LegalBasis.UNSPECIFIED)


def test_the_cache_stays_within_its_capacity_and_forgets_a_subject_on_a_change() -> None:
    cache = _Cache(GateOptions(capacity=4))
    for i in range(10):
        cache.keep(f"s{i}", "p", ALLOWED, cache.current_generation())
        assert cache.len <= 4
    assert cache.purpose("s9", "p") == ALLOWED and cache.purpose("s0", "p") is None
    cache.keep("s9", (1, 1), ALLOWED, cache.current_generation())
    generation = cache.current_generation()
    cache.apply(7, "s9", erasure=False)
    assert cache.purpose("s9", "p") is None and cache.contact("s9", (1, 1)) is None
    assert cache.len == 2 and cache.position == 7 and cache.applied == 1
    # Fetched before that change: not cached.
    cache.keep("s8", "q", ALLOWED, generation)
    assert cache.purpose("s8", "q") is None
    # An erasure names a pseudonym: everyone goes.
    cache.apply(8, "erased:abc", erasure=True)
    assert cache.len == 0 and cache.purpose("s8", "p") is None
    # Unknown subjects are not cached (a sign-up makes them known without a change).
    cache.keep("s1", "p", UNKNOWN, cache.current_generation())
    assert cache.purpose("s1", "p") is None


def test_erasures_are_recognised_by_kind_or_pseudonym() -> None:
    erased = Change(3, "erased:x", LedgerEntryKind.WITHDRAW, "p", Channel.UNSPECIFIED)
    assert erased.is_erasure
    assert Change(4, "s", LedgerEntryKind.ERASED, "", Channel.UNSPECIFIED).is_erasure
    assert not Change(5, "s", LedgerEntryKind.GRANT, "p", Channel.UNSPECIFIED).is_erasure


def test_the_cache_is_trusted_for_stale_after_once_the_stream_is_lost() -> None:
    cache = _Cache(GateOptions(stale_after=0.2, max_age=60))
    cache.caught_up(5, 5)
    assert cache.connected and cache.trusted()
    cache.went_down()
    assert not cache.connected and cache.trusted()
    time.sleep(0.25)
    assert not cache.trusted()
    aged = _Cache(GateOptions(max_age=0.05))
    aged.keep("s", "p", ALLOWED, 0)
    time.sleep(0.06)
    assert aged.purpose("s", "p") is None
