"""The typed facades of consent, identity, telemetry, transfers and rights against a real mesh
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
    Channel,
    ChildReportStatus,
    ConcernKind,
    ConcernStatus,
    Config,
    ConfigError,
    Consents,
    ConsentStatus,
    Credential,
    DeletionReason,
    Device,
    Dimension,
    DropReason,
    Event,
    EventKind,
    FailedPrecondition,
    Grant,
    InvalidArgument,
    LedgerEntryKind,
    LegalBasis,
    MechanismKind,
    MessageKind,
    NotFound,
    PartyRole,
    PdmClient,
    PermissionDenied,
    ProfilePhoto,
    PublicProfile,
    PurposeState,
    Reason,
    Region,
    RequestKind,
    RequestStatus,
    RightsRegime,
    Session,
    Source,
    SpecialCategory,
    StoredPhoto,
    TransferOutcome,
    TransferRegime,
)
from pdm_client import consent, identity, rights, telemetry, transfers
from pdm_client._gen.pdm.common.v1 import common_pb2
from pdm_client._gen.pdm.consent.v1 import consent_pb2
from pdm_client._gen.pdm.identity.v1 import identity_pb2
from pdm_client._gen.pdm.rights.v1 import rights_pb2
from pdm_client._gen.pdm.telemetry.v1 import telemetry_pb2
from pdm_client._gen.pdm.transfers.v1 import transfers_pb2

TEXT_HASH = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea"
CARD = "4111 1111 1111 1111"  # a test card number: passes the Luhn check
# The smallest PNG there is (1x1, transparent): identity reads the type from the content.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


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


def test_identity_photo_public_profile_and_organisation(pdm: PdmClient) -> None:
    person = sign_up(pdm)
    subject = person.account.subject_id
    public = pdm.identity.get_public_profile(subject)
    assert isinstance(public, PublicProfile)
    assert public == PublicProfile(subject, "Ada L.", False)
    with pytest.raises(NotFound):
        pdm.identity.get_profile_photo(subject)

    stored = pdm.identity.set_profile_photo(subject, PNG)
    assert stored == StoredPhoto("image/png", len(PNG))
    photo = pdm.identity.get_profile_photo(subject)
    assert isinstance(photo, ProfilePhoto) and photo == ProfilePhoto("image/png", PNG)
    assert pdm.identity.get_public_profile(subject).has_photo
    assert pdm.identity.get_account(subject).has_photo

    # example.org is no free-mail domain: the organisation is the address's domain,
    # until the subject objects to the inference (consent is asked every time).
    assert pdm.identity.get_organisation(subject) == "example.org"
    objected = pdm.consent.record_objection(subject, "organisation_insights", "settings-page")
    assert objected.sequence > 0 and objected.token
    assert pdm.identity.get_organisation(subject) is None
    pdm.consent.record_objection(subject, "organisation_insights", "settings-page", withdraw=True)
    assert pdm.identity.get_organisation(subject) == "example.org"


def test_identity_photo_and_profile_errors_name_their_fields(pdm: PdmClient) -> None:
    subject = sign_up(pdm).account.subject_id
    with pytest.raises(InvalidArgument) as raised:
        pdm.identity.set_profile_photo("not-a-uuid", b"")
    assert raised.value.fields == ["subject_id", "photo"], raised.value
    with pytest.raises(InvalidArgument) as raised:
        pdm.identity.set_profile_photo(subject, b"GIF89a not one of ours")
    assert raised.value.fields == ["photo"], raised.value
    # The limit is 2 MiB (the proto's): one byte more is refused, nothing stored.
    with pytest.raises(InvalidArgument) as raised:
        pdm.identity.set_profile_photo(subject, PNG + bytes(2 * 1024 * 1024 + 1 - len(PNG)))
    assert raised.value.fields == ["photo"], raised.value
    assert "2 MiB" in raised.value.violations[0].description
    with pytest.raises(NotFound):
        pdm.identity.get_profile_photo(subject)
    for call in (
        pdm.identity.get_profile_photo,
        pdm.identity.get_public_profile,
        pdm.identity.get_organisation,
    ):
        with pytest.raises(InvalidArgument) as raised:
            call("not-a-uuid")
        assert raised.value.fields == ["subject_id"], raised.value
    with pytest.raises(NotFound):
        pdm.identity.get_public_profile("0190b2a4-0000-7000-8000-000000000000")


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

            stored = await pdm.identity.set_profile_photo(account.subject_id, PNG)
            assert stored == StoredPhoto("image/png", len(PNG))
            photo = await pdm.identity.get_profile_photo(account.subject_id)
            assert photo == ProfilePhoto("image/png", PNG)
            public = await pdm.identity.get_public_profile(account.subject_id)
            assert (public.display_name, public.has_photo) == ("Ada L.", True)
            assert await pdm.identity.get_organisation(account.subject_id) == "example.org"
            with pytest.raises(InvalidArgument) as raised:
                await pdm.identity.set_profile_photo(account.subject_id, b"not an image")
            assert raised.value.fields == ["photo"], raised.value

    asyncio.run(run())


# === consent ===


def state_of(consents: Consents, purpose: str) -> PurposeState:
    state = consents.state(purpose)
    assert state is not None, f"{purpose} is in the catalogue"
    return state


def test_consent_catalogue_state_and_history(pdm: PdmClient) -> None:
    purposes = {p.key: p for p in pdm.consent.list_purposes()}
    analytics = purposes["product_analytics"]
    assert analytics.legal_bases[Region.UK] is LegalBasis.CONSENT and analytics.refusable
    assert purposes["organisation_insights"].objectable
    assert purposes["marketing_email"].direct_marketing
    assert purposes["special_category_health"].special_category

    subject = sign_up(pdm).account.subject_id
    before = pdm.consent.get_consents(subject)
    assert isinstance(before, Consents)
    assert (before.subject_id, before.region, before.restricted, before.do_not_sell) == (
        subject, Region.UK, False, False,
    )
    assert {s.purpose for s in before.purposes} == set(purposes)
    state = state_of(before, "product_analytics")
    assert state.consent is ConsentStatus.NOT_GIVEN
    assert (state.decision.allowed, state.decision.reason) == (False, Reason.NO_CONSENT)

    granted = pdm.consent.grant(
        Grant(subject, "product_analytics", "2024-06-28", TEXT_HASH, "checkout")
    )
    assert state_of(pdm.consent.get_consents(subject), "product_analytics").consent is (
        ConsentStatus.GRANTED
    )

    sell = pdm.consent.set_do_not_sell(subject, True, "privacy-settings")
    assert sell.sequence > granted.sequence and sell.token
    restricted = pdm.consent.set_restriction(subject, True, "privacy-settings")
    decision = pdm.consent.check(subject, "product_analytics", at_least=restricted.token)
    assert (decision.allowed, decision.reason) == (False, Reason.RESTRICTED)
    now = pdm.consent.get_consents(subject)
    assert (now.restricted, now.do_not_sell) == (True, True)
    lifted = pdm.consent.set_restriction(subject, False, "privacy-settings")
    assert pdm.consent.check(subject, "product_analytics", at_least=lifted.token).allowed

    objected = pdm.consent.record_objection(subject, "product_research", "privacy-settings")
    decision = pdm.consent.check(subject, "product_research", at_least=objected.token)
    assert (decision.allowed, decision.reason) == (False, Reason.OBJECTED)
    assert state_of(pdm.consent.get_consents(subject), "product_research").objected
    with pytest.raises(FailedPrecondition):
        pdm.consent.record_objection(subject, "service_provision", "privacy-settings")

    page = pdm.consent.get_consent_history(subject)
    assert [e.kind for e in page.entries] == [
        LedgerEntryKind.GRANT,
        LedgerEntryKind.DO_NOT_SELL,
        LedgerEntryKind.RESTRICT,
        LedgerEntryKind.UNRESTRICT,
        LedgerEntryKind.OBJECT,
    ]
    assert page.next_after_sequence is None
    first = page.entries[0]
    assert (first.sequence, first.subject_id, first.purpose, first.source) == (
        granted.sequence, subject, "product_analytics", Source.API,
    )
    assert (first.policy_version, first.text_hash, first.actor) == (
        "2024-06-28", TEXT_HASH, "checkout",
    )
    assert first.recorded_at is not None and first.occurred_at is not None
    # Pages of two: the cursor leads through the same entries.
    paged, cursor = [], 0
    while True:
        part = pdm.consent.get_consent_history(subject, after_sequence=cursor, page_size=2)
        paged += part.entries
        if part.next_after_sequence is None:
            break
        cursor = part.next_after_sequence
    assert paged == page.entries


def test_consent_unsubscribe_links(pdm: PdmClient) -> None:
    subject = sign_up(pdm).account.subject_id
    link = pdm.consent.issue_unsubscribe_link(subject, Channel.EMAIL)
    assert 0 < len(link.token) <= 128
    assert link.expires_at is not None and link.expires_at > datetime.now(UTC) + timedelta(days=1)

    done = pdm.consent.unsubscribe(link.token)
    assert (done.channel, done.already_used) == (Channel.EMAIL, False)
    assert done.sequence is not None and done.token
    promo = pdm.consent.can_contact(subject, Channel.EMAIL, MessageKind.PROMOTIONAL, done.token)
    assert (promo.allowed, promo.reason) == (False, Reason.OPTED_OUT)
    [entry] = pdm.consent.get_consent_history(subject).entries
    assert (entry.kind, entry.channel, entry.source) == (
        LedgerEntryKind.OPT_OUT, Channel.EMAIL, Source.EMAIL_LINK,
    )

    again = pdm.consent.unsubscribe(link.token)
    assert (again.channel, again.already_used, again.sequence) == (Channel.EMAIL, True, None)
    assert again.token, "a token covering the first use"


def test_consent_errors_name_each_bad_field(pdm: PdmClient) -> None:
    subject = sign_up(pdm).account.subject_id
    with pytest.raises(InvalidArgument) as raised:
        pdm.consent.get_consent_history("x", after_sequence=-1, page_size=5000)
    assert raised.value.fields == ["subject_id", "after_sequence", "page_size"], raised.value
    with pytest.raises(InvalidArgument) as raised:
        pdm.consent.get_consents("not-a-uuid")
    assert raised.value.fields == ["subject_id"], raised.value
    with pytest.raises(InvalidArgument) as raised:
        pdm.consent.set_do_not_sell("not-a-uuid", True, "")
    assert raised.value.fields == ["subject_id", "actor"], raised.value
    with pytest.raises(InvalidArgument) as raised:
        pdm.consent.set_restriction(subject, True, f"agent {CARD}")
    assert raised.value.fields == ["actor"], raised.value
    with pytest.raises(InvalidArgument) as raised:
        pdm.consent.record_objection(subject, "astrology", "settings")
    assert raised.value.fields == ["purpose"], raised.value
    with pytest.raises(InvalidArgument) as raised:
        pdm.consent.issue_unsubscribe_link(subject, Channel.ADS)
    assert raised.value.fields == ["channel"], raised.value
    with pytest.raises(InvalidArgument) as raised:
        pdm.consent.unsubscribe("not-a-link-of-this-mesh")
    assert raised.value.fields == ["token"], raised.value
    with pytest.raises(NotFound):
        pdm.consent.set_do_not_sell("0190b2a4-0000-7000-8000-000000000000", True, "settings")
    assert pdm.consent.get_consent_history(subject).entries == [], "nothing was recorded"


def test_the_asyncio_consent_answers_like_the_blocking_one(session_mesh: Mesh) -> None:
    async def run() -> None:
        async with AsyncPdmClient(session_mesh.config()) as pdm:
            tag, password = secrets.token_hex(6), secrets.token_urlsafe(18)
            account = await pdm.identity.create_account(
                "Ada", f"Lovelace{tag}", f"ada.{tag}@example.org", Region.EEA, password
            )
            subject = account.subject_id
            assert "product_analytics" in {p.key for p in await pdm.consent.list_purposes()}
            sell = await pdm.consent.set_do_not_sell(subject, True, "settings")
            restricted = await pdm.consent.set_restriction(subject, True, "settings")
            objected = await pdm.consent.record_objection(subject, "product_research", "settings")
            assert sell.sequence < restricted.sequence < objected.sequence
            state = await pdm.consent.get_consents(subject)
            assert (state.region, state.restricted, state.do_not_sell) == (Region.EEA, True, True)
            link = await pdm.consent.issue_unsubscribe_link(subject, Channel.SMS)
            done = await pdm.consent.unsubscribe(link.token)
            assert (done.channel, done.already_used) == (Channel.SMS, False)
            page = await pdm.consent.get_consent_history(subject, page_size=10)
            assert [e.kind for e in page.entries] == [
                LedgerEntryKind.DO_NOT_SELL,
                LedgerEntryKind.RESTRICT,
                LedgerEntryKind.OBJECT,
                LedgerEntryKind.OPT_OUT,
            ]
            with pytest.raises(InvalidArgument) as raised:
                await pdm.consent.get_consent_history(subject, page_size=1001)
            assert raised.value.fields == ["page_size"], raised.value

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
        "GetProfilePhoto": identity._Calls.get_profile_photo("s"),
        "GetPublicProfile": identity._Calls.get_public_profile("s"),
        "GetOrganisation": identity._Calls.get_organisation("s"),
        "ListPurposes": consent._Calls.list_purposes(),
        "GetConsents": consent._Calls.get_consents("s"),
        "GetConsentHistory": consent._Calls.get_consent_history("s", 0, 0),
        "Unsubscribe": consent._Calls.unsubscribe("t"),
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
        "SetProfilePhoto": identity._Calls.set_profile_photo("s", b""),
        "SetDoNotSell": consent._Calls.set_do_not_sell("s", True, "a"),
        "SetRestriction": consent._Calls.set_restriction("s", True, "a"),
        "RecordObjection": consent._Calls.record_objection("s", "p", "a", False),
        "IssueUnsubscribeLink": consent._Calls.issue_unsubscribe_link("s", Channel.EMAIL),
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
        (consent.ConsentStatus, consent_pb2.ConsentStatus, "CONSENT_STATUS_"),
        (consent.Source, consent_pb2.Source, "SOURCE_"),
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
