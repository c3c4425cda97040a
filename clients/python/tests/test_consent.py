"""The facade against a real mesh (``pdm serve all`` from the built binary, mutual TLS as
company client ``demo``): typed decisions, writes with their tokens, read-your-writes, typed
errors with their field violations; and what needs no mesh (configuration, retries)."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import grpc
import pytest

from mesh import Mesh
from pdm_client import (
    AsyncConsentClient,
    Channel,
    Config,
    ConfigError,
    ConsentClient,
    DeadlineExceeded,
    Grant,
    InvalidArgument,
    LedgerEntryKind,
    LegalBasis,
    MessageKind,
    NotFound,
    Reason,
    ResourceExhausted,
    RetryPolicy,
    TlsFiles,
    Unavailable,
)
from pdm_client._gen.pdm.common.v1 import common_pb2
from pdm_client._gen.pdm.consent.v1 import consent_pb2

PURPOSE = "product_analytics"
TEXT_HASH = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea"


def grant(subject: str, purpose: str = PURPOSE) -> Grant:
    return Grant(subject, purpose, "2024-06-28", TEXT_HASH, "checkout")


def test_a_write_returns_a_token_that_a_check_reads_its_write_with(shared_mesh: Mesh) -> None:
    subject = shared_mesh.sign_up()
    with shared_mesh.consent() as consent:
        before = consent.check(subject, PURPOSE)
        assert before.allowed is False
        assert before.reason is Reason.NO_CONSENT
        assert before.legal_basis is LegalBasis.CONSENT

        granted = consent.grant(grant(subject))
        assert granted.sequence > 0 and granted.token
        assert consent.check(subject, PURPOSE, at_least=granted.token).allowed

        withdrawn = consent.withdraw(subject, PURPOSE, "settings-page")
        assert withdrawn.sequence > granted.sequence and withdrawn.token != granted.token
        decision = consent.check(subject, PURPOSE, at_least=withdrawn.token)
        assert (decision.allowed, decision.reason) == (False, Reason.WITHDRAWN)
        [many] = consent.check_many([(subject, PURPOSE)], at_least=withdrawn.token)
        assert many == decision

        position = consent.ledger_position()
        assert position.sequence >= withdrawn.sequence and position.token


def test_contact_preferences_and_the_change_stream(shared_mesh: Mesh) -> None:
    subject = shared_mesh.sign_up()
    with shared_mesh.consent() as consent:
        start = consent.ledger_position().sequence
        opted = consent.set_contact_preference(subject, Channel.EMAIL, True, "preferences")
        promo = consent.can_contact(subject, Channel.EMAIL, MessageKind.PROMOTIONAL, opted.token)
        assert (promo.allowed, promo.reason) == (False, Reason.OPTED_OUT)
        security = consent.can_contact(subject, Channel.EMAIL, MessageKind.SECURITY, opted.token)
        assert (security.allowed, security.reason) == (True, Reason.NECESSARY_MESSAGE)

        with consent.watch(start) as stream:
            change = next(c for c in stream if c.subject_id == subject)
        assert change.sequence == opted.sequence
        assert (change.kind, change.channel) == (LedgerEntryKind.OPT_OUT, Channel.EMAIL)


def test_bad_input_is_an_invalid_argument_naming_each_field(shared_mesh: Mesh) -> None:
    with shared_mesh.consent() as consent:
        with pytest.raises(InvalidArgument) as raised:
            consent.check("not-a-uuid", PURPOSE, at_least="not-a-token")
        assert raised.value.fields == ["subject_id", "at_least"], raised.value
        assert all(v.description for v in raised.value.violations)
        assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT

        subject = shared_mesh.sign_up()
        with pytest.raises(InvalidArgument) as raised:
            consent.grant(Grant(subject, PURPOSE, "", "abc", "checkout"))
        assert set(raised.value.fields) >= {"policy_version", "text_hash"}, raised.value

        with pytest.raises(NotFound):
            consent.withdraw("0190b2a4-0000-7000-8000-000000000000", PURPOSE, "settings-page")


def test_the_asyncio_client_answers_like_the_blocking_one(shared_mesh: Mesh) -> None:
    subject = shared_mesh.sign_up()

    async def run() -> None:
        async with AsyncConsentClient(shared_mesh.config()) as consent:
            written = await consent.grant(grant(subject))
            decision = await consent.check(subject, PURPOSE, at_least=written.token)
            assert (decision.allowed, decision.reason) == (True, Reason.CONSENT_GIVEN)
            assert (await consent.ledger_position()).sequence >= written.sequence
            with pytest.raises(InvalidArgument) as raised:
                await consent.check_many([(subject, "")])
            assert raised.value.fields == ["items[0].purpose"], raised.value
            stream = consent.watch(written.sequence - 1)
            async for change in stream:
                assert (change.sequence, change.kind) == (written.sequence, LedgerEntryKind.GRANT)
                break
            stream.cancel()

    asyncio.run(run())


def test_an_unreachable_service_is_unavailable_within_the_deadline() -> None:
    [port] = __import__("mesh").free_ports(1)
    config = Config(endpoints={"consent": f"http://127.0.0.1:{port}"}, timeout=1.0)
    started = time.monotonic()
    with ConsentClient(config) as consent:
        with pytest.raises((Unavailable, DeadlineExceeded)):
            consent.check("0190b2a4-0000-7000-8000-000000000000", PURPOSE)
    assert time.monotonic() - started < 3.0


def test_the_environment_names_endpoints_certificates_and_the_timeout() -> None:
    config = Config.from_env(
        {
            "PDM_ENDPOINT_CONSENT": "http://consent.pdm:50052",
            "PDM_CERT_DIR": "/certs",
            "PDM_CLIENT_NAME": "newsletter",
            "PDM_TIMEOUT_MS": "250",
            "HOME": "/root",
        }
    )
    assert config.endpoint("consent") == "consent.pdm:50052"
    assert config.tls is not None and str(config.tls.cert) == "/certs/client-newsletter.pem"
    assert config.timeout == 0.25

    with pytest.raises(ConfigError) as raised:
        Config.from_env({"PDM_CERT_DIR": "/certs", "PDM_TIMEOUT_MS": "soon"})
    keys = [p.split(":")[0] for p in raised.value.problems]
    assert keys == ["PDM_ENDPOINT_<SERVICE>", "PDM_CLIENT_NAME", "PDM_TIMEOUT_MS"]
    with pytest.raises(ConfigError) as raised:
        Config.from_env({"PDM_ENDPOINT_CONSENT": "http://c:1", "PDM_CA_FILE": "/ca.pem"})
    assert raised.value.problems[0].startswith("PDM_CA_FILE, PDM_CERT_FILE, PDM_KEY_FILE")


def test_only_refusals_are_retried_for_writes_and_unavailability_too_for_reads() -> None:
    policy = RetryPolicy(first_backoff=0.001)
    exhausted, down = ResourceExhausted("rate", None), Unavailable("down", None)
    assert policy.retries(exhausted, idempotent=False, attempt=1)
    assert not policy.retries(down, idempotent=False, attempt=1)
    assert policy.retries(down, idempotent=True, attempt=1)
    assert not policy.retries(down, idempotent=True, attempt=4)
    for attempt in range(1, 10):
        assert policy.backoff(attempt) <= min(0.001 * 2 ** (attempt - 1), policy.max_backoff)
    assert policy.backoff(1, asked=0.7) >= 0.7

    calls: list[int] = []

    def flaky(_left: float) -> int:
        calls.append(1)
        if len(calls) < 3:
            raise down
        return len(calls)

    assert policy.run(True, time.monotonic() + 5, flaky) == 3
    calls.clear()
    with pytest.raises(Unavailable):
        policy.run(False, time.monotonic() + 5, flaky)
    assert len(calls) == 1


def test_the_enumerations_agree_with_the_contract() -> None:
    for ours, theirs, prefix in [
        (Reason, consent_pb2.Reason, "REASON_"),
        (Channel, consent_pb2.Channel, "CHANNEL_"),
        (MessageKind, consent_pb2.MessageKind, "MESSAGE_KIND_"),
        (LedgerEntryKind, consent_pb2.LedgerEntryKind, "LEDGER_ENTRY_KIND_"),
        (LegalBasis, common_pb2.LegalBasis, "LEGAL_BASIS_"),
    ]:
        assert {m.name: m.value for m in ours} == {
            name.removeprefix(prefix): value for name, value in theirs.items()
        }


def test_rotated_certificate_files_are_used_from_the_next_call_on(
    shared_mesh: Mesh, tmp_path: Path
) -> None:
    subject = shared_mesh.sign_up()
    issued = shared_mesh.data_dir / "certs"
    files = TlsFiles(tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key")

    def install(name: str) -> None:
        shutil.copy(issued / "ca.pem", files.ca)
        shutil.copy(issued / f"client-{name}.pem", files.cert)
        shutil.copy(issued / f"client-{name}.key", files.key)

    install("demo")
    with ConsentClient(shared_mesh.config(tls=files, reload_interval=0.0)) as consent:
        # demo created the account, so it is linked with the subject.
        assert consent.check(subject, PURPOSE).reason == Reason.NO_CONSENT
        # The files now hold another client's identity: the mesh sees `outsider`, which
        # is linked with nobody, from the next call on, without a restart.
        install("outsider")
        assert consent.check(subject, PURPOSE).reason == Reason.UNKNOWN_SUBJECT
        assert consent._channels.reloads == 1
        # Unchanged files are not reloaded.
        consent.check(subject, PURPOSE)
        assert consent._channels.reloads == 1
