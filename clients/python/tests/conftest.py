from __future__ import annotations

from collections.abc import Iterator

import pytest

from mesh import Mesh


@pytest.fixture(scope="module")
def shared_mesh() -> Iterator[Mesh]:
    """One mesh for the tests of a module that do not stop it."""
    m = Mesh()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def mesh() -> Iterator[Mesh]:
    """A mesh of its own (for tests that restart it or add replicas)."""
    m = Mesh()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="session")
def session_mesh() -> Iterator[Mesh]:
    """One mesh for the whole run, for the facade tests (each works on subjects of its
    own), with the transfers register seeded as the privacy team seeds it."""
    m = Mesh()
    try:
        m.admin("transfers", "seed")
        yield m
    finally:
        m.stop()
