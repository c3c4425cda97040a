"""The transfers service as typed calls: whether a transfer of personal data may go ahead
(logged), and the register of recipients, mechanisms and adequacy lists, as dataclasses.
The register is written by the privacy team (``pdm transfers``); a company client reads it.

:class:`TransfersClient` blocks; :class:`AsyncTransfersClient` is the same over
``grpc.aio``."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ._gen.pdm.transfers.v1 import transfers_pb2 as pb
from ._gen.pdm.transfers.v1 import transfers_pb2_grpc as pb_grpc
from .calls import AsyncService, Service, Unary, member, timestamp, to_timestamp


class RecipientRole(enum.IntEnum):
    """What a recipient is to us."""

    UNSPECIFIED = 0
    PROCESSOR = 1
    SUB_PROCESSOR = 2
    INDEPENDENT_CONTROLLER = 3
    JOINT_CONTROLLER = 4
    PUBLIC_AUTHORITY = 5
    ACQUIRER = 6


class TransferRegime(enum.IntEnum):
    """The data-protection regime a transfer is exported from (pdm.transfers.v1.Regime)."""

    UNSPECIFIED = 0
    EU = 1
    UK = 2
    CH = 3
    OTHER = 4


class PartyRole(enum.IntEnum):
    """A party's role in a transfer (UNSPECIFIED: controller, for the exporter)."""

    UNSPECIFIED = 0
    CONTROLLER = 1
    PROCESSOR = 2


class MechanismKind(enum.IntEnum):
    """The legal tool a transfer rests on."""

    UNSPECIFIED = 0
    EU_SCC = 1
    UK_IDTA = 2
    UK_ADDENDUM = 3
    SWISS_SCC = 4
    BCR = 5
    DEROGATION_EXPLICIT_CONSENT = 6
    DEROGATION_CONTRACT = 7


class MechanismStatus(enum.IntEnum):
    """Whether a mechanism is in force."""

    UNSPECIFIED = 0
    ACTIVE = 1
    SUSPENDED = 2
    TERMINATED = 3


class TiaOutcome(enum.IntEnum):
    """The conclusion of a transfer impact assessment."""

    UNSPECIFIED = 0
    ADEQUATE = 1
    ADEQUATE_WITH_MEASURES = 2
    INADEQUATE = 3


class TransferOutcome(enum.IntEnum):
    """Why a transfer was allowed or denied (pdm.transfers.v1.Outcome)."""

    UNSPECIFIED = 0
    ALLOWED_WITHIN_REGIME = 1
    ALLOWED_ADEQUACY = 2
    ALLOWED_MECHANISM = 3
    ALLOWED_NOT_RESTRICTED = 4
    DENIED_NO_MECHANISM = 5
    DENIED_EXPIRED = 6
    DENIED_REVIEW_OVERDUE = 7
    DENIED_CATEGORY_NOT_COVERED = 8
    DENIED_PURPOSE_NOT_COVERED = 9
    DENIED_MODULE_MISMATCH = 10
    DENIED_TIA_MISSING = 11
    DENIED_TIA_NEGATIVE = 12
    DENIED_NO_EXPLICIT_CONSENT = 13
    DENIED_MECHANISM_INACTIVE = 14
    DENIED_SUBJECT_CHOICE = 15
    DENIED_SUBJECT_REQUIRED = 16


@dataclass(frozen=True)
class Recipient:
    """A recipient of personal data in the register."""

    recipient_id: str
    key: str
    name: str
    role: RecipientRole
    country: str
    """ISO 3166-1 alpha-2."""
    purposes: list[str]
    data_categories: list[str]
    contract_reference: str
    contract_date: str
    certifications: list[str]
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def _from_pb(cls, r: pb.Recipient) -> Recipient:
        return cls(
            recipient_id=r.recipient_id,
            key=r.key,
            name=r.name,
            role=member(RecipientRole, r.role),
            country=r.country,
            purposes=list(r.purposes),
            data_categories=list(r.data_categories),
            contract_reference=r.contract_reference,
            contract_date=r.contract_date,
            certifications=list(r.certifications),
            created_at=timestamp(r, "created_at"),
            updated_at=timestamp(r, "updated_at"),
        )


@dataclass(frozen=True)
class ImpactAssessment:
    """A transfer impact assessment."""

    reference: str
    assessed_on: str
    outcome: TiaOutcome
    supplementary_measures: list[str]


@dataclass(frozen=True)
class Mechanism:
    """A transfer mechanism of a recipient."""

    mechanism_id: str
    recipient_id: str
    kind: MechanismKind
    regimes: list[TransferRegime]
    scc_module: int
    exporter_role: PartyRole
    signed_on: str
    parties: list[str]
    annex_references: list[str]
    valid_from: datetime | None
    expires_at: datetime | None
    review_due: datetime | None
    status: MechanismStatus
    purposes: list[str]
    data_categories: list[str]
    tia: ImpactAssessment | None
    occasional: bool
    created_at: datetime | None

    @classmethod
    def _from_pb(cls, m: pb.Mechanism) -> Mechanism:
        tia = None
        if m.HasField("tia"):
            tia = ImpactAssessment(
                m.tia.reference,
                m.tia.assessed_on,
                member(TiaOutcome, m.tia.outcome),
                list(m.tia.supplementary_measures),
            )
        return cls(
            mechanism_id=m.mechanism_id,
            recipient_id=m.recipient_id,
            kind=member(MechanismKind, m.kind),
            regimes=[member(TransferRegime, r) for r in m.regimes],
            scc_module=m.scc_module,
            exporter_role=member(PartyRole, m.exporter_role),
            signed_on=m.signed_on,
            parties=list(m.parties),
            annex_references=list(m.annex_references),
            valid_from=timestamp(m, "valid_from"),
            expires_at=timestamp(m, "expires_at"),
            review_due=timestamp(m, "review_due"),
            status=member(MechanismStatus, m.status),
            purposes=list(m.purposes),
            data_categories=list(m.data_categories),
            tia=tia,
            occasional=m.occasional,
            created_at=timestamp(m, "created_at"),
        )


@dataclass(frozen=True)
class ExpiringMechanism:
    """A mechanism whose expiry or review is due soon (or passed)."""

    mechanism: Mechanism
    recipient_name: str
    due: str
    """What is due: ``expires`` or ``review``."""
    due_at: datetime | None
    overdue: bool


@dataclass(frozen=True)
class LegalOrder:
    """The order behind a disclosure to a public authority (required for one, refused
    for any other recipient)."""

    legal_basis: str
    order_reference: str
    issued_by: str = ""
    secret_until: datetime | None = None

    def _to_pb(self) -> pb.LegalOrder:
        return pb.LegalOrder(
            legal_basis=self.legal_basis,
            order_reference=self.order_reference,
            issued_by=self.issued_by,
            secret_until=to_timestamp(self.secret_until) if self.secret_until else None,
        )


@dataclass(frozen=True)
class TransferDecision:
    """Whether a transfer may go ahead, and why (as logged)."""

    log_id: str
    allowed: bool
    outcome: TransferOutcome
    mechanism_id: str
    """The mechanism that covers it, or the best candidate examined."""
    mechanism_kind: MechanismKind
    detail: str
    decided_at: datetime | None

    @classmethod
    def _from_pb(cls, d: pb.TransferDecision) -> TransferDecision:
        return cls(
            log_id=d.log_id,
            allowed=d.allowed,
            outcome=member(TransferOutcome, d.outcome),
            mechanism_id=d.mechanism_id,
            mechanism_kind=member(MechanismKind, d.mechanism_kind),
            detail=d.detail,
            decided_at=timestamp(d, "decided_at"),
        )


@dataclass(frozen=True)
class AdequacyEntry:
    """A country on an adequacy list (with the certification it needs, if any)."""

    country: str
    requires_certification: str


@dataclass(frozen=True)
class AdequacyList:
    """A regime's adequacy list in force, with its dated source."""

    regime: TransferRegime
    source: str
    as_of: str
    entries: list[AdequacyEntry]


def _expiring(e: pb.ExpiringMechanism) -> ExpiringMechanism:
    return ExpiringMechanism(
        Mechanism._from_pb(e.mechanism), e.recipient_name, e.due, timestamp(e, "due_at"), e.overdue
    )


def _adequacy(a: pb.AdequacyList) -> AdequacyList:
    return AdequacyList(
        member(TransferRegime, a.regime),
        a.source,
        a.as_of,
        [AdequacyEntry(e.country, e.requires_certification) for e in a.entries],
    )


class _Calls:
    """Each call once: its request, whether it may be repeated, its answer."""

    @staticmethod
    def authorize_transfer(
        regime: TransferRegime,
        recipient_id: str,
        data_categories: Sequence[str],
        purpose: str,
        subject_id: str,
        exporter_role: PartyRole,
        reference: str,
        legal_order: LegalOrder | None,
    ) -> Unary[TransferDecision]:
        request = pb.AuthorizeTransferRequest(
            regime=int(regime),
            recipient_id=recipient_id,
            data_categories=list(data_categories),
            purpose=purpose,
            subject_id=subject_id,
            exporter_role=int(exporter_role),
            reference=reference,
            legal_order=legal_order._to_pb() if legal_order is not None else None,
        )
        # Every decision is logged: a repeat would log the transfer twice.
        return Unary(
            "AuthorizeTransfer", request, False, lambda r: TransferDecision._from_pb(r.decision)
        )

    @staticmethod
    def list_recipients(subject_id: str, country: str) -> Unary[list[Recipient]]:
        request = pb.ListRecipientsRequest(subject_id=subject_id, country=country)
        return Unary(
            "ListRecipients",
            request,
            True,
            lambda r: [Recipient._from_pb(x) for x in r.recipients],
        )

    @staticmethod
    def list_mechanisms(recipient_id: str) -> Unary[list[Mechanism]]:
        request = pb.ListMechanismsRequest(recipient_id=recipient_id)
        return Unary(
            "ListMechanisms",
            request,
            True,
            lambda r: [Mechanism._from_pb(m) for m in r.mechanisms],
        )

    @staticmethod
    def list_expiring_mechanisms(within_days: int) -> Unary[list[ExpiringMechanism]]:
        request = pb.ListExpiringMechanismsRequest(within_days=within_days)
        return Unary(
            "ListExpiringMechanisms",
            request,
            True,
            lambda r: [_expiring(e) for e in r.mechanisms],
        )

    @staticmethod
    def list_adequacy() -> Unary[list[AdequacyList]]:
        return Unary(
            "ListAdequacy",
            pb.ListAdequacyRequest(),
            True,
            lambda r: [_adequacy(a) for a in r.lists],
        )


class TransfersClient(Service):
    """The transfers service (blocking calls; thread-safe)."""

    service = "transfers"
    stub = pb_grpc.TransfersServiceStub

    def authorize_transfer(
        self,
        regime: TransferRegime,
        recipient_id: str,
        data_categories: Sequence[str],
        purpose: str,
        *,
        subject_id: str = "",
        exporter_role: PartyRole = PartyRole.UNSPECIFIED,
        reference: str = "",
        legal_order: LegalOrder | None = None,
    ) -> TransferDecision:
        """Whether data of ``data_categories`` may go to the recipient for ``purpose``,
        exported from ``regime``; the decision is logged. :class:`NotFound` for an
        unknown recipient (or a subject not linked with this client). Not repeated after
        UNAVAILABLE."""
        return self._run(
            _Calls.authorize_transfer(
                regime, recipient_id, data_categories, purpose, subject_id, exporter_role,
                reference, legal_order,
            )
        )

    def list_recipients(self, *, subject_id: str = "", country: str = "") -> list[Recipient]:
        """The register (optionally of one country), or, given a subject, the recipients
        the subject's data was disclosed to."""
        return self._run(_Calls.list_recipients(subject_id, country))

    def list_mechanisms(self, recipient_id: str = "") -> list[Mechanism]:
        """The mechanisms, optionally of one recipient."""
        return self._run(_Calls.list_mechanisms(recipient_id))

    def list_expiring_mechanisms(self, within_days: int) -> list[ExpiringMechanism]:
        """Active mechanisms whose expiry or review is due within ``within_days`` days
        (or already passed)."""
        return self._run(_Calls.list_expiring_mechanisms(within_days))

    def list_adequacy(self) -> list[AdequacyList]:
        """The adequacy lists in force, with their dated sources."""
        return self._run(_Calls.list_adequacy())


class AsyncTransfersClient(AsyncService):
    """:class:`TransfersClient` over ``grpc.aio``; the same methods as coroutines."""

    service = "transfers"
    stub = pb_grpc.TransfersServiceStub

    async def authorize_transfer(
        self,
        regime: TransferRegime,
        recipient_id: str,
        data_categories: Sequence[str],
        purpose: str,
        *,
        subject_id: str = "",
        exporter_role: PartyRole = PartyRole.UNSPECIFIED,
        reference: str = "",
        legal_order: LegalOrder | None = None,
    ) -> TransferDecision:
        return await self._run(
            _Calls.authorize_transfer(
                regime, recipient_id, data_categories, purpose, subject_id, exporter_role,
                reference, legal_order,
            )
        )

    async def list_recipients(
        self, *, subject_id: str = "", country: str = ""
    ) -> list[Recipient]:
        return await self._run(_Calls.list_recipients(subject_id, country))

    async def list_mechanisms(self, recipient_id: str = "") -> list[Mechanism]:
        return await self._run(_Calls.list_mechanisms(recipient_id))

    async def list_expiring_mechanisms(self, within_days: int) -> list[ExpiringMechanism]:
        return await self._run(_Calls.list_expiring_mechanisms(within_days))

    async def list_adequacy(self) -> list[AdequacyList]:
        return await self._run(_Calls.list_adequacy())
