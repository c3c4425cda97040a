"""The typed facades of identity, telemetry, transfers and rights against a real mesh
(``pdm serve all`` from the built binary, mutual TLS as company client ``demo``, the
transfers register seeded by the privacy team): each answers with its dataclasses, and bad
input surfaces as :class:`InvalidArgument` naming each bad field (an unmet precondition as
:class:`FailedPrecondition` with its details); and what needs no mesh: which calls may be
repeated after UNAVAILABLE, and the enumerations against the contract."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from mesh import Mesh
from pdm_client import (
    Account,
    AlreadyExists,
    AsyncPdmClient,
    Attachment,
    BillingContact,
    ChildReportStatus,
    ConcernKind,
    ConcernStatus,
    Config,
    ConfigError,
    Credential,
    DeletionReason,
    Device,
    Dimension,
    DropReason,
    Event,
    EventKind,
    FailedPrecondition,
    InvalidArgument,
    MechanismKind,
    NotFound,
    PartyRole,
    PdmClient,
    PermissionDenied,
    Region,
    RequestKind,
    RequestStatus,
    RightsRegime,
    Session,
    SpecialCategory,
    TransferOutcome,
    TransferRegime,
)
from pdm_client import identity, rights, telemetry, transfers
from pdm_client._gen.pdm.common.v1 import common_pb2
from pdm_client._gen.pdm.identity.v1 import identity_pb2
from pdm_client._gen.pdm.rights.v1 import rights_pb2
from pdm_client._gen.pdm.telemetry.v1 import telemetry_pb2
from pdm_client._gen.pdm.transfers.v1 import transfers_pb2

TEXT_HASH = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea"
CARD = "4111 1111 1111 1111"  # a test card number: passes the Luhn check


@dataclass(frozen=True)
class Person:
    """A subject signed up through client ``demo``, with the password to sign in."""

    account: Account
    password: str


@pytest.fixture
def pdm(session_mesh: Mesh) -> Iterator[PdmClient]:
    with PdmClient(session_mesh.config()) as client:
        yield client


def sign_up(pdm: PdmClient, region: Region = Region.UK) -> Person:
    tag, password = secrets.token_hex(6), secrets.token_urlsafe(18)
    account = pdm.identity.create_account(
        "Ada", f"Lovelace{tag}", f"ada.{tag}@example.org", region, password
    )
    return Person(account, password)


# === identity ===


def test_identity_accounts_sessions_billing_tickets_and_deletion(pdm: PdmClient) -> None:
    person = sign_up(pdm)
    account, subject = person.account, person.account.subject_id
    assert isinstance(account, Account)
    assert (account.first_name, account.region, account.restricted) == ("Ada", Region.UK, False)
    assert isinstance(account.created_at, datetime) and account.created_at.tzinfo is not None
    assert pdm.identity.get_account(subject) == account
    assert pdm.identity.get_region(subject) is Region.UK

    updated = pdm.identity.update_profile(subject, phone="+447700900123")
    assert (updated.phone, updated.email) == ("+447700900123", account.email)

    session = pdm.identity.authenticate(account.email, person.password)
    assert isinstance(session, Session) and session.subject_id == subject
    assert session.expires_at is not None and session.expires_at > datetime.now(UTC)
    assert pdm.identity.validate_session(session.token) == session
    assert pdm.identity.verify_subject(subject, password=person.password) == subject
    assert pdm.identity.verify_subject(subject, session_token=session.token) == subject
    assert pdm.identity.link_subject(session.token) == subject

    contact = BillingContact("Ada Lovelace", "billing@example.org", "cus_123", "+447700900123")
    assert pdm.identity.set_billing_contact(subject, contact) == contact
    assert pdm.identity.get_billing_contact(subject) == contact

    ticket = pdm.identity.create_support_ticket(
        subject, account.email, "Cannot export", "The export button does nothing.",
        attachments=[Attachment("steps.txt", b"1. click export\n")],
    )
    assert (ticket.subject_id, ticket.summary) == (subject, "Cannot export")
    [attached] = ticket.attachments
    assert (attached.file_name, attached.content_type, attached.size_bytes) == (
        "steps.txt", "text/plain", 16,
    )
    assert pdm.identity.list_support_tickets(subject) == [ticket]

    receipt = pdm.identity.delete_account(subject, person.password, DeletionReason.OTHER)
    assert (receipt.subject_id, receipt.service, receipt.key_destroyed) == (
        subject, "identity", True,
    )
    assert "account.profile" in {item.category for item in receipt.erased}
    with pytest.raises(NotFound):
        pdm.identity.get_account(subject)


def test_identity_errors_carry_their_fields_and_preconditions(pdm: PdmClient) -> None:
    with pytest.raises(InvalidArgument) as raised:
        pdm.identity.create_account("", "Lovelace", "not-an-email", Region.UNSPECIFIED, "short")
    assert raised.value.fields == ["first_name", "email", "region", "password"], raised.value
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert all(v.description for v in raised.value.violations)

    person = sign_up(pdm)
    subject, email = person.account.subject_id, person.account.email
    with pytest.raises(InvalidArgument) as raised:
        pdm.identity.update_profile(subject, email=f"{CARD}@example.org", phone="call me")
    assert raised.value.fields == ["email", "phone"], raised.value
    with pytest.raises(AlreadyExists):
        pdm.identity.create_account("Ada", "Again", email, Region.UK, person.password)
    with pytest.raises(PermissionDenied) as denied:
        pdm.identity.authenticate(email, "not-the-password")
    assert denied.value.code == grpc.StatusCode.UNAUTHENTICATED

    # Health data needs the subject's explicit consent first: nothing is stored.
    with pytest.raises(FailedPrecondition) as refused:
        pdm.identity.create_support_ticket(
            subject, email, "Allergy", "Reaction to the product.",
            special_categories=[SpecialCategory.HEALTH],
        )
    [precondition] = refused.value.preconditions
    assert (precondition.kind, precondition.subject) == (
        "EXPLICIT_CONSENT", "special_category_health",
    )
    assert pdm.identity.list_support_tickets(subject) == []


def test_the_asyncio_identity_answers_like_the_blocking_one(session_mesh: Mesh) -> None:
    async def run() -> None:
        async with AsyncPdmClient(session_mesh.config()) as pdm:
            tag, password = secrets.token_hex(6), secrets.token_urlsafe(18)
            account = await pdm.identity.create_account(
                "Ada", f"Lovelace{tag}", f"ada.{tag}@example.org", Region.CH, password
            )
            assert await pdm.identity.get_region(account.subject_id) is Region.CH
            session = await pdm.identity.authenticate(account.email, password)
            assert (await pdm.identity.validate_session(session.token)).subject_id == (
                account.subject_id
            )
            with pytest.raises(InvalidArgument) as raised:
                await pdm.identity.get_account("not-a-uuid")
            assert raised.value.fields == ["subject_id"], raised.value

    asyncio.run(run())


# === telemetry ===


def test_telemetry_events_crashes_choices_and_aggregates(pdm: PdmClient) -> None:
    device = f"device-{secrets.token_hex(6)}"
    assert pdm.telemetry.get_tracking_choice(device) is None
    choice = pdm.telemetry.record_tracking_choice(
        device, analytics=True, advertising=True, policy_version="2024-06",
        text_hash=TEXT_HASH, global_privacy_control=True,
    )
    assert (choice.analytics, choice.advertising, choice.advertising_effective) == (
        True, True, False,
    )
    assert choice.expires_at is not None and choice.expires_at > datetime.now(UTC)
    assert pdm.telemetry.get_tracking_choice(device) == choice

    # The visitor agreed to analytics; the subject never agreed to product analytics.
    subject = sign_up(pdm).account.subject_id
    now = datetime.now(UTC)
    events = [
        Event(EventKind.FEATURE_USED, now, feature="export", device=Device(device_id=device)),
        Event(EventKind.PAGE_VIEW, now, subject_id=subject, screen="settings"),
    ]
    ingested = pdm.telemetry.ingest_events(events)
    assert (ingested.accepted, ingested.dropped, ingested.duplicate) == (
        1, {DropReason.NO_CONSENT: 1}, False,
    )
    again = pdm.telemetry.ingest_events(events, batch_id=ingested.batch_id)
    assert (again.accepted, again.duplicate) == (1, True), "a repeated batch is stored once"

    crash = pdm.telemetry.report_crash(
        "ValueError", message="export failed for ada@example.org", subject_id=subject
    )
    assert crash.crash_id and crash.scrubbed == 1 and crash.dropped is DropReason.UNSPECIFIED

    aggregates = pdm.telemetry.query_aggregates(Dimension.FEATURE, now.date(), now.date())
    assert aggregates.k_threshold >= 5
    # One person used "export" today in this mesh: fewer than k, so withheld.
    assert "export" not in aggregates.by_value and aggregates.suppressed >= 1


def test_telemetry_errors_name_each_bad_event_field(pdm: PdmClient) -> None:
    now = datetime.now(UTC)
    with pytest.raises(InvalidArgument) as raised:
        pdm.telemetry.ingest_events(
            [Event(EventKind.UNSPECIFIED, now), Event(EventKind.FEATURE_USED, now, feature=CARD)]
        )
    assert raised.value.fields == ["events[0].kind", "events[1].feature"], raised.value
    with pytest.raises(InvalidArgument) as raised:
        pdm.telemetry.query_aggregates(Dimension.UNSPECIFIED, "2026-13-01", "tomorrow")
    assert raised.value.fields == ["dimension", "from_day", "to_day"], raised.value

    async def run() -> None:
        async with AsyncPdmClient(pdm.config) as apdm:
            assert await apdm.telemetry.get_tracking_choice("never-seen-device") is None
            with pytest.raises(InvalidArgument) as raised:
                await apdm.telemetry.record_tracking_choice(
                    "", analytics=True, advertising=False, policy_version="v1", text_hash="abc"
                )
            assert set(raised.value.fields) >= {"device_id", "text_hash"}, raised.value

    asyncio.run(run())


# === transfers ===


def test_transfers_authorized_against_the_seeded_register(pdm: PdmClient) -> None:
    recipients = pdm.transfers.list_recipients(country="IN")
    hosting = next(r for r in recipients if r.key == "hosting-in")
    assert hosting.country == "IN" and hosting.created_at is not None

    decision = pdm.transfers.authorize_transfer(
        TransferRegime.EU, hosting.recipient_id, ["account.profile", "telemetry.event"],
        "service_provision", exporter_role=PartyRole.CONTROLLER,
    )
    assert (decision.allowed, decision.outcome, decision.mechanism_kind) == (
        True, TransferOutcome.ALLOWED_MECHANISM, MechanismKind.EU_SCC,
    )
    assert decision.log_id and decision.decided_at is not None

    mechanisms = pdm.transfers.list_mechanisms(hosting.recipient_id)
    assert decision.mechanism_id in {m.mechanism_id for m in mechanisms}
    scc = next(m for m in mechanisms if m.mechanism_id == decision.mechanism_id)
    assert TransferRegime.EU in scc.regimes and scc.tia is not None
    expiring = pdm.transfers.list_expiring_mechanisms(3650)
    assert expiring and all(e.due in ("expires", "review") for e in expiring)
    lists = pdm.transfers.list_adequacy()
    assert TransferRegime.EU in {a.regime for a in lists}
    assert all(a.source and a.entries for a in lists)


def test_transfers_errors(pdm: PdmClient) -> None:
    with pytest.raises(InvalidArgument) as raised:
        pdm.transfers.authorize_transfer(TransferRegime.UNSPECIFIED, "nobody", [], "")
    assert raised.value.fields == ["regime", "recipient_id", "data_categories", "purpose"]
    with pytest.raises(InvalidArgument) as raised:
        pdm.transfers.list_expiring_mechanisms(-1)
    assert raised.value.fields == ["within_days"], raised.value
    with pytest.raises(NotFound):
        pdm.transfers.authorize_transfer(
            TransferRegime.EU, "0190b2a4-0000-7000-8000-000000000000", ["account.profile"],
            "service_provision",
        )


# === rights ===


def test_an_access_request_from_submission_to_its_package(pdm: PdmClient) -> None:
    person = sign_up(pdm)
    subject = person.account.subject_id
    session = pdm.identity.authenticate(person.account.email, person.password)
    submitted = pdm.rights.submit_request(
        RequestKind.ACCESS, RightsRegime.UK_GDPR, credential=Credential.of_session(session.token)
    )
    assert (submitted.kind, submitted.subject_id) == (RequestKind.ACCESS, subject)
    assert submitted.status is RequestStatus.IN_PROGRESS and submitted.due_at is not None

    seen: list[RequestStatus] = []
    with pdm.rights.watch_request(submitted.request_id) as progress:
        for request in progress:
            seen.append(request.status)
            if request.status.is_closed:
                break
    assert seen[-1] is RequestStatus.COMPLETED, seen
    done = request
    assert done.download_token and all(t.status == "done" for t in done.tasks), done.tasks

    package = pdm.rights.download_export(done.request_id, done.download_token)
    exported = json.loads(package.read())
    assert package.content_type.startswith("application/json")
    assert (exported["schema"], exported["subject_id"]) == ("pdm.export.v1", subject)
    assert pdm.rights.get_request(done.request_id).status is RequestStatus.COMPLETED


def test_requests_wait_for_verification_and_repeat_by_reference(pdm: PdmClient) -> None:
    person = sign_up(pdm)
    subject = person.account.subject_id
    reference = f"ticket-{secrets.token_hex(6)}"
    waiting = pdm.rights.submit_request(
        RequestKind.RESTRICTION, RightsRegime.GDPR, subject_id=subject,
        client_reference=reference,
    )
    assert waiting.status is RequestStatus.VERIFICATION_REQUIRED
    again = pdm.rights.submit_request(
        RequestKind.RESTRICTION, RightsRegime.GDPR, subject_id=subject,
        client_reference=reference,
    )
    assert again.request_id == waiting.request_id, "the same reference is the same request"
    verified = pdm.rights.verify_request(
        waiting.request_id, Credential.of_password(person.password)
    )
    assert verified.status in (RequestStatus.IN_PROGRESS, RequestStatus.COMPLETED)
    assert verified.verified_at is not None

    concern = pdm.rights.report_concern(
        ConcernKind.DATA_COMPROMISED, "reporter@example.org", "My password was leaked."
    )
    assert (concern.kind, concern.status) == (ConcernKind.DATA_COMPROMISED, ConcernStatus.OPEN)
    assert concern.received_at is not None and concern.due_at is not None
    assert concern.due_at - concern.received_at == timedelta(hours=72)
    child = pdm.rights.report_child("parent@example.org", subject_id=subject, notes="She is 12.")
    assert child.report_id and child.status is ChildReportStatus.REPORTED


def test_rights_errors_name_each_bad_field(pdm: PdmClient) -> None:
    with pytest.raises(InvalidArgument) as raised:
        pdm.rights.submit_request(RequestKind.UNSPECIFIED, RightsRegime.UNSPECIFIED, notes=CARD)
    assert raised.value.fields == ["kind", "regime", "notes"], raised.value
    with pytest.raises(InvalidArgument) as raised:
        pdm.rights.report_concern(ConcernKind.UNSPECIFIED, "nobody", "")
    assert raised.value.fields == ["kind", "contact_email", "description"], raised.value
    with pytest.raises(InvalidArgument) as raised:
        pdm.rights.report_child("nobody", subject_id=sign_up(pdm).account.subject_id,
                                email="a@example.org")
    assert raised.value.fields == ["email", "reporter_contact"], raised.value
    with pytest.raises(NotFound):
        pdm.rights.get_request("0190b2a4-0000-7000-8000-000000000000")


def test_the_asyncio_rights_streams_a_request_and_its_package(session_mesh: Mesh) -> None:
    async def run() -> None:
        async with AsyncPdmClient(session_mesh.config()) as pdm:
            tag, password = secrets.token_hex(6), secrets.token_urlsafe(18)
            account = await pdm.identity.create_account(
                "Ada", f"Lovelace{tag}", f"ada.{tag}@example.org", Region.EEA, password
            )
            submitted = await pdm.rights.submit_request(
                RequestKind.PORTABILITY, RightsRegime.GDPR, subject_id=account.subject_id,
                credential=Credential.of_password(password),
            )
            last = submitted
            async with pdm.rights.watch_request(submitted.request_id) as progress:
                async for last in progress:
                    if last.status.is_closed:
                        break
            assert last.status is RequestStatus.COMPLETED and last.download_token
            package = pdm.rights.download_export(last.request_id, last.download_token)
            exported = json.loads(await package.read())
            assert exported["subject_id"] == account.subject_id

    asyncio.run(run())


# === without a mesh ===


def test_a_service_without_an_endpoint_is_a_configuration_error() -> None:
    with PdmClient(Config(endpoints={"consent": "http://127.0.0.1:1"})) as pdm:
        assert pdm.consent is pdm.consent, "one facade per service"
        with pytest.raises(ConfigError) as raised:
            pdm.rights.get_request("0190b2a4-0000-7000-8000-000000000000")
    assert raised.value.problems == ["PDM_ENDPOINT_RIGHTS: not configured"]


def test_only_calls_that_cannot_happen_twice_are_repeated_after_unavailable() -> None:
    now = datetime.now(UTC)
    idempotent = {
        "GetAccount": identity._Calls.get_account("s"),
        "GetRegion": identity._Calls.get_region("s"),
        "ValidateSession": identity._Calls.validate_session("t"),
        "VerifySubject": identity._Calls.verify_subject("s", "p", None),
        "LinkSubject": identity._Calls.link_subject("t"),
        "DeleteAccount": identity._Calls.delete_account("s", "p", DeletionReason.OTHER, None),
        "GetBillingContact": identity._Calls.get_billing_contact("s"),
        "ListSupportTickets": identity._Calls.list_support_tickets("s"),
        "IngestEvents": telemetry._Calls.ingest_events([], None),
        "GetTrackingChoice": telemetry._Calls.get_tracking_choice("d"),
        "QueryAggregates": telemetry._Calls.query_aggregates(Dimension.OS, "a", "b"),
        "ListRecipients": transfers._Calls.list_recipients("", ""),
        "ListMechanisms": transfers._Calls.list_mechanisms(""),
        "ListExpiringMechanisms": transfers._Calls.list_expiring_mechanisms(30),
        "ListAdequacy": transfers._Calls.list_adequacy(),
        "SubmitRequest": rights._Calls.submit_request(
            RequestKind.ACCESS, RightsRegime.GDPR, "", None, "", (), False, "", None
        ),
        "VerifyRequest": rights._Calls.verify_request("r", Credential.of_password("p"), ""),
        "GetRequest": rights._Calls.get_request("r", ""),
    }
    once = {
        "CreateAccount": identity._Calls.create_account("a", "b", "c", Region.UK, "p", None, None),
        "UpdateProfile": identity._Calls.update_profile("s", "a", None, None, None, None, None),
        "Authenticate": identity._Calls.authenticate("e", "p"),
        "SetBillingContact": identity._Calls.set_billing_contact(
            "s", BillingContact("n", "e", "r")
        ),
        "CreateSupportTicket": identity._Calls.create_support_ticket("s", "c", "s", "d", (), ()),
        "ReportCrash": telemetry._Calls.report_crash("E", "", "", now, "", None),
        "RecordTrackingChoice": telemetry._Calls.record_tracking_choice(
            "d", True, False, "v", "h", False
        ),
        "AuthorizeTransfer": transfers._Calls.authorize_transfer(
            TransferRegime.EU, "r", ["c"], "p", "", PartyRole.UNSPECIFIED, "", None
        ),
        "ReportConcern": rights._Calls.report_concern(ConcernKind.COMPLAINT, "e", "d", ""),
        "ReportChild": rights._Calls.report_child("e", "s", "", ""),
    }
    for name, call in idempotent.items():
        assert (call.method, call.idempotent) == (name, True)
    for name, call in once.items():
        assert (call.method, call.idempotent) == (name, False)
    # What is repeated by its idempotency key carries one from the first attempt on.
    assert idempotent["DeleteAccount"].request.request_id
    assert idempotent["IngestEvents"].request.batch_id
    assert idempotent["SubmitRequest"].request.client_reference
    with pytest.raises(ValueError):
        identity._Calls.verify_subject("s", "p", "t")


def test_the_enumerations_agree_with_the_contract() -> None:
    for ours, theirs, prefix in [
        (Region, common_pb2.Region, "REGION_"),
        (identity.SpecialCategory, identity_pb2.SpecialCategory, "SPECIAL_CATEGORY_"),
        (identity.DeletionReason, identity_pb2.DeletionReason, "DELETION_REASON_"),
        (telemetry.TrackingCategory, telemetry_pb2.TrackingCategory, "TRACKING_CATEGORY_"),
        (telemetry.EventKind, telemetry_pb2.EventKind, "EVENT_KIND_"),
        (telemetry.ConnectionType, telemetry_pb2.ConnectionType, "CONNECTION_TYPE_"),
        (telemetry.DropReason, telemetry_pb2.DropReason, "DROP_REASON_"),
        (telemetry.Dimension, telemetry_pb2.Dimension, "DIMENSION_"),
        (transfers.RecipientRole, transfers_pb2.RecipientRole, "RECIPIENT_ROLE_"),
        (transfers.TransferRegime, transfers_pb2.Regime, "REGIME_"),
        (transfers.PartyRole, transfers_pb2.PartyRole, "PARTY_ROLE_"),
        (transfers.MechanismKind, transfers_pb2.MechanismKind, "MECHANISM_KIND_"),
        (transfers.MechanismStatus, transfers_pb2.MechanismStatus, "MECHANISM_STATUS_"),
        (transfers.TiaOutcome, transfers_pb2.TiaOutcome, "TIA_OUTCOME_"),
        (transfers.TransferOutcome, transfers_pb2.Outcome, "OUTCOME_"),
        (rights.RequestKind, rights_pb2.RequestKind, "REQUEST_KIND_"),
        (rights.RightsRegime, rights_pb2.Regime, "REGIME_"),
        (rights.RequestStatus, rights_pb2.Status, "STATUS_"),
        (rights.DeliveryStatus, rights_pb2.DeliveryStatus, "DELIVERY_STATUS_"),
        (rights.DeliveryError, rights_pb2.DeliveryError, "DELIVERY_ERROR_"),
        (rights.ChildReportStatus, rights_pb2.ChildReportStatus, "CHILD_REPORT_STATUS_"),
        (rights.ConcernKind, rights_pb2.ConcernKind, "CONCERN_KIND_"),
        (rights.ConcernStatus, rights_pb2.ConcernStatus, "CONCERN_STATUS_"),
    ]:
        assert {m.name: m.value for m in ours} == {
            name.removeprefix(prefix): value for name, value in theirs.items()
        }, ours
