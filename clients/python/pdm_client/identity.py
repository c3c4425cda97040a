"""The identity service as typed calls: accounts, profile photos, public profiles,
sessions, billing contacts and support tickets as dataclasses, errors as
:class:`PdmError` subclasses.

A company client sees only the subjects it is linked with (creating an account, signing in
through it, or :meth:`IdentityClient.link_subject` links them): any other is
:class:`NotFound`, as for a subject that does not exist. :class:`IdentityClient` blocks;
:class:`AsyncIdentityClient` is the same over ``grpc.aio``."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ._gen.pdm.identity.v1 import identity_pb2 as pb
from ._gen.pdm.identity.v1 import identity_pb2_grpc as pb_grpc
from .calls import AsyncService, Service, Unary, member, timestamp
from .types import ErasureReceipt, Region


class SpecialCategory(enum.IntEnum):
    """A special category of personal data (Art. 9 GDPR): declaring one needs the
    subject's explicit consent to ``special_category_<name>``."""

    UNSPECIFIED = 0
    HEALTH = 1
    BIOMETRIC = 2
    GENETIC = 3
    ETHNICITY = 4
    POLITICS = 5
    RELIGION = 6
    TRADE_UNION = 7
    SEX_LIFE = 8


class DeletionReason(enum.IntEnum):
    """Why a subject closes the account."""

    UNSPECIFIED = 0
    NO_LONGER_NEEDED = 1
    PRIVACY_CONCERNS = 2
    TOO_EXPENSIVE = 3
    SWITCHING_SERVICE = 4
    OTHER = 5


@dataclass(frozen=True)
class Account:
    """The profile of a subject."""

    subject_id: str
    first_name: str
    last_name: str
    email: str
    """Normalised (trimmed, lower case)."""
    phone: str
    """E.164, empty when none was given."""
    region: Region
    birth_date: str
    """YYYY-MM-DD, empty when none was given."""
    has_photo: bool
    restricted: bool
    """Processing is restricted (Art. 18 GDPR)."""
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def _from_pb(cls, a: pb.Account) -> Account:
        return cls(
            subject_id=a.subject_id,
            first_name=a.first_name,
            last_name=a.last_name,
            email=a.email,
            phone=a.phone,
            region=member(Region, a.region),
            birth_date=a.birth_date,
            has_photo=a.has_photo,
            restricted=a.restricted,
            created_at=timestamp(a, "created_at"),
            updated_at=timestamp(a, "updated_at"),
        )


@dataclass(frozen=True)
class StoredPhoto:
    """A profile photo as stored: its type, detected from the content, and its size."""

    content_type: str
    size_bytes: int


@dataclass(frozen=True)
class ProfilePhoto:
    """A profile photo (JPEG, PNG or WebP, at most 2 MiB)."""

    content_type: str
    photo: bytes


@dataclass(frozen=True)
class PublicProfile:
    """What other users see of a subject: nothing but a display name and whether a photo
    exists (its bytes come from ``get_profile_photo``)."""

    subject_id: str
    display_name: str
    """The first name and the last name's initial: ``Ada L.`` (at most 103 characters)."""
    has_photo: bool


@dataclass(frozen=True)
class Session:
    """A live session: its opaque token, its subject and when it expires."""

    token: str
    subject_id: str
    expires_at: datetime | None


@dataclass(frozen=True)
class BillingContact:
    """The person responsible for billing; card numbers are never stored (payment
    details live with the payment processor)."""

    name: str
    email: str
    payment_processor_ref: str
    phone: str = ""
    """E.164; optional."""

    def _to_pb(self) -> pb.BillingContact:
        return pb.BillingContact(
            name=self.name,
            email=self.email,
            phone=self.phone,
            payment_processor_ref=self.payment_processor_ref,
        )

    @classmethod
    def _from_pb(cls, b: pb.BillingContact) -> BillingContact:
        return cls(
            name=b.name,
            email=b.email,
            payment_processor_ref=b.payment_processor_ref,
            phone=b.phone,
        )


@dataclass(frozen=True)
class Attachment:
    """A file attached to a support ticket. On input, ``file_name``, ``content`` and
    ``special_categories``; listed tickets carry the detected type and size, no content."""

    file_name: str
    content: bytes = b""
    special_categories: Sequence[SpecialCategory] = ()
    content_type: str = ""
    size_bytes: int = 0

    def _to_pb(self) -> pb.TicketAttachment:
        return pb.TicketAttachment(
            file_name=self.file_name,
            content=self.content,
            special_categories=[int(c) for c in self.special_categories],
        )

    @classmethod
    def _from_pb(cls, a: pb.TicketAttachment) -> Attachment:
        return cls(
            file_name=a.file_name,
            content=a.content,
            special_categories=tuple(member(SpecialCategory, c) for c in a.special_categories),
            content_type=a.content_type,
            size_bytes=a.size_bytes,
        )


@dataclass(frozen=True)
class SupportTicket:
    """A support request, in the subject's words."""

    ticket_id: str
    subject_id: str
    contact: str
    summary: str
    description: str
    attachments: list[Attachment]
    created_at: datetime | None
    special_categories: list[SpecialCategory] = field(default_factory=list)

    @classmethod
    def _from_pb(cls, t: pb.SupportTicket) -> SupportTicket:
        return cls(
            ticket_id=t.ticket_id,
            subject_id=t.subject_id,
            contact=t.contact,
            summary=t.summary,
            description=t.description,
            attachments=[Attachment._from_pb(a) for a in t.attachments],
            created_at=timestamp(t, "created_at"),
            special_categories=[member(SpecialCategory, c) for c in t.special_categories],
        )


def _account(response: pb.CreateAccountResponse) -> Account:
    return Account._from_pb(response.account)


class _Calls:
    """Each call once: its request, whether it may be repeated, its answer."""

    @staticmethod
    def create_account(
        first_name: str,
        last_name: str,
        email: str,
        region: Region,
        password: str,
        phone: str | None,
        birth_date: str | None,
    ) -> Unary[Account]:
        request = pb.CreateAccountRequest(
            first_name=first_name,
            last_name=last_name,
            email=email,
            region=int(region),
            password=password,
            phone=phone or "",
            birth_date=birth_date or "",
        )
        # Not repeated after UNAVAILABLE: a sign-up that went through answers
        # ALREADY_EXISTS the second time.
        return Unary("CreateAccount", request, False, _account)

    @staticmethod
    def get_account(subject_id: str) -> Unary[Account]:
        return Unary("GetAccount", pb.GetAccountRequest(subject_id=subject_id), True, _account)

    @staticmethod
    def get_region(subject_id: str) -> Unary[Region]:
        request = pb.GetRegionRequest(subject_id=subject_id)
        return Unary("GetRegion", request, True, lambda r: member(Region, r.region))

    @staticmethod
    def update_profile(
        subject_id: str,
        first_name: str | None,
        last_name: str | None,
        email: str | None,
        phone: str | None,
        region: Region | None,
        birth_date: str | None,
    ) -> Unary[Account]:
        request = pb.UpdateProfileRequest(
            subject_id=subject_id,
            first_name=first_name,
            last_name=last_name,
            email=email,
            phone=phone,
            region=None if region is None else int(region),
            birth_date=birth_date,
        )
        # Not repeated after UNAVAILABLE, as every write that has no idempotency key: a
        # repeat of a change that went through could undo another made in between.
        return Unary("UpdateProfile", request, False, _account)

    @staticmethod
    def set_profile_photo(subject_id: str, photo: bytes) -> Unary[StoredPhoto]:
        request = pb.SetProfilePhotoRequest(subject_id=subject_id, photo=photo)
        # Not repeated after UNAVAILABLE, as UpdateProfile: a repeat could put back a
        # photo replaced in between.
        return Unary(
            "SetProfilePhoto",
            request,
            False,
            lambda r: StoredPhoto(r.content_type, r.size_bytes),
        )

    @staticmethod
    def get_profile_photo(subject_id: str) -> Unary[ProfilePhoto]:
        request = pb.GetProfilePhotoRequest(subject_id=subject_id)
        return Unary(
            "GetProfilePhoto", request, True, lambda r: ProfilePhoto(r.content_type, r.photo)
        )

    @staticmethod
    def get_public_profile(subject_id: str) -> Unary[PublicProfile]:
        request = pb.GetPublicProfileRequest(subject_id=subject_id)
        return Unary(
            "GetPublicProfile",
            request,
            True,
            lambda r: PublicProfile(r.subject_id, r.display_name, r.has_photo),
        )

    @staticmethod
    def get_organisation(subject_id: str) -> Unary[str | None]:
        request = pb.GetOrganisationRequest(subject_id=subject_id)
        return Unary("GetOrganisation", request, True, lambda r: r.organisation or None)

    @staticmethod
    def authenticate(email: str, password: str) -> Unary[Session]:
        request = pb.AuthenticateRequest(email=email, password=password)
        # Each success opens a session of its own.
        return Unary(
            "Authenticate",
            request,
            False,
            lambda r: Session(r.session_token, r.subject_id, timestamp(r, "expires_at")),
        )

    @staticmethod
    def validate_session(token: str) -> Unary[Session]:
        request = pb.ValidateSessionRequest(session_token=token)
        return Unary(
            "ValidateSession",
            request,
            True,
            lambda r: Session(token, r.subject_id, timestamp(r, "expires_at")),
        )

    @staticmethod
    def verify_subject(
        subject_id: str, password: str | None, session_token: str | None
    ) -> Unary[str]:
        if password is not None and session_token is not None:
            raise ValueError("verify_subject: a password or a session token, not both")
        request = pb.VerifySubjectRequest(
            subject_id=subject_id, password=password, session_token=session_token
        )
        return Unary("VerifySubject", request, True, lambda r: r.subject_id)

    @staticmethod
    def link_subject(session_token: str) -> Unary[str]:
        request = pb.LinkSubjectRequest(session_token=session_token)
        return Unary("LinkSubject", request, True, lambda r: r.subject_id)

    @staticmethod
    def delete_account(
        subject_id: str, password: str, reason: DeletionReason, request_id: str | None
    ) -> Unary[ErasureReceipt]:
        # The idempotency key is fixed before the first attempt: a repeat returns the
        # first receipt.
        request = pb.DeleteAccountRequest(
            subject_id=subject_id,
            password=password,
            reason=int(reason),
            request_id=request_id or str(uuid.uuid4()),
        )
        return Unary(
            "DeleteAccount", request, True, lambda r: ErasureReceipt._from_pb(r.receipt)
        )

    @staticmethod
    def set_billing_contact(subject_id: str, contact: BillingContact) -> Unary[BillingContact]:
        request = pb.SetBillingContactRequest(
            subject_id=subject_id, billing_contact=contact._to_pb()
        )
        # Not repeated after UNAVAILABLE (no idempotency key), as UpdateProfile.
        return Unary(
            "SetBillingContact",
            request,
            False,
            lambda r: BillingContact._from_pb(r.billing_contact),
        )

    @staticmethod
    def get_billing_contact(subject_id: str) -> Unary[BillingContact]:
        request = pb.GetBillingContactRequest(subject_id=subject_id)
        return Unary(
            "GetBillingContact",
            request,
            True,
            lambda r: BillingContact._from_pb(r.billing_contact),
        )

    @staticmethod
    def create_support_ticket(
        subject_id: str,
        contact: str,
        summary: str,
        description: str,
        attachments: Sequence[Attachment],
        special_categories: Sequence[SpecialCategory],
    ) -> Unary[SupportTicket]:
        request = pb.CreateSupportTicketRequest(
            subject_id=subject_id,
            contact=contact,
            summary=summary,
            description=description,
            attachments=[a._to_pb() for a in attachments],
            special_categories=[int(c) for c in special_categories],
        )
        # No idempotency key: a repeat would open a second ticket.
        return Unary(
            "CreateSupportTicket", request, False, lambda r: SupportTicket._from_pb(r.ticket)
        )

    @staticmethod
    def list_support_tickets(subject_id: str) -> Unary[list[SupportTicket]]:
        request = pb.ListSupportTicketsRequest(subject_id=subject_id)
        return Unary(
            "ListSupportTickets",
            request,
            True,
            lambda r: [SupportTicket._from_pb(t) for t in r.tickets],
        )


class IdentityClient(Service):
    """The identity service (blocking calls; thread-safe)."""

    service = "identity"
    stub = pb_grpc.IdentityServiceStub

    def create_account(
        self,
        first_name: str,
        last_name: str,
        email: str,
        region: Region,
        password: str,
        *,
        phone: str | None = None,
        birth_date: str | None = None,
    ) -> Account:
        """Signs a subject up (links them with this client). ALREADY_EXISTS for an email
        in use; :class:`FailedPrecondition` for an under-18 birth date. Not repeated
        after UNAVAILABLE."""
        return self._run(
            _Calls.create_account(
                first_name, last_name, email, region, password, phone, birth_date
            )
        )

    def get_account(self, subject_id: str) -> Account:
        """The subject's profile."""
        return self._run(_Calls.get_account(subject_id))

    def get_region(self, subject_id: str) -> Region:
        """Only the subject's region (data minimisation)."""
        return self._run(_Calls.get_region(subject_id))

    def update_profile(
        self,
        subject_id: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        region: Region | None = None,
        birth_date: str | None = None,
    ) -> Account:
        """Changes the fields given (rectification); ``phone=""`` removes the phone.
        Not repeated after UNAVAILABLE."""
        return self._run(
            _Calls.update_profile(
                subject_id, first_name, last_name, email, phone, region, birth_date
            )
        )

    def set_profile_photo(self, subject_id: str, photo: bytes) -> StoredPhoto:
        """Stores or replaces the profile photo: JPEG, PNG or WebP (read from the
        content), at most 2 MiB; anything else is :class:`InvalidArgument` on ``photo``.
        Not repeated after UNAVAILABLE."""
        return self._run(_Calls.set_profile_photo(subject_id, photo))

    def get_profile_photo(self, subject_id: str) -> ProfilePhoto:
        """The profile photo; :class:`NotFound` when there is none."""
        return self._run(_Calls.get_profile_photo(subject_id))

    def get_public_profile(self, subject_id: str) -> PublicProfile:
        """What other users see of the subject; :class:`NotFound` for a restricted,
        erased or unknown subject."""
        return self._run(_Calls.get_public_profile(subject_id))

    def get_organisation(self, subject_id: str) -> str | None:
        """The organisation inferred from the subject's email domain (``acme.co.uk``);
        None for a free-mail address, a restricted subject, or one who objected to
        ``organisation_insights``."""
        return self._run(_Calls.get_organisation(subject_id))

    def authenticate(self, email: str, password: str) -> Session:
        """Signs in: a new session (links the subject with this client). Bad
        credentials are :class:`PermissionDenied` (UNAUTHENTICATED); repeated failures
        :class:`ResourceExhausted` with ``retry_after``. Not repeated after UNAVAILABLE."""
        return self._run(_Calls.authenticate(email, password))

    def validate_session(self, token: str) -> Session:
        """The subject a live session token belongs to; :class:`PermissionDenied` for an
        unknown or expired token."""
        return self._run(_Calls.validate_session(token))

    def verify_subject(
        self, subject_id: str, *, password: str | None = None, session_token: str | None = None
    ) -> str:
        """Checks that the caller holds a credential of the subject (one of the two);
        the subject id, or :class:`PermissionDenied`."""
        return self._run(_Calls.verify_subject(subject_id, password, session_token))

    def link_subject(self, session_token: str) -> str:
        """Links the subject whose live session this is with this client; their id."""
        return self._run(_Calls.link_subject(session_token))

    def delete_account(
        self,
        subject_id: str,
        password: str,
        reason: DeletionReason,
        *,
        request_id: str | None = None,
    ) -> ErasureReceipt:
        """Closes the account (the password asked again): the erasure receipt. A repeat
        with the same ``request_id`` (one is made when None) returns the first receipt."""
        return self._run(_Calls.delete_account(subject_id, password, reason, request_id))

    def set_billing_contact(self, subject_id: str, contact: BillingContact) -> BillingContact:
        """Stores (or replaces) the billing contact; the contact as stored. Not repeated
        after UNAVAILABLE."""
        return self._run(_Calls.set_billing_contact(subject_id, contact))

    def get_billing_contact(self, subject_id: str) -> BillingContact:
        """The billing contact; :class:`NotFound` when there is none."""
        return self._run(_Calls.get_billing_contact(subject_id))

    def create_support_ticket(
        self,
        subject_id: str,
        contact: str,
        summary: str,
        description: str,
        *,
        attachments: Sequence[Attachment] = (),
        special_categories: Sequence[SpecialCategory] = (),
    ) -> SupportTicket:
        """Opens a support ticket. Declared special categories need the subject's
        explicit consent to each, else :class:`FailedPrecondition` with an
        ``EXPLICIT_CONSENT`` precondition per category. Not repeated after UNAVAILABLE."""
        return self._run(
            _Calls.create_support_ticket(
                subject_id, contact, summary, description, attachments, special_categories
            )
        )

    def list_support_tickets(self, subject_id: str) -> list[SupportTicket]:
        """The subject's tickets, newest first (attachments without their content)."""
        return self._run(_Calls.list_support_tickets(subject_id))


class AsyncIdentityClient(AsyncService):
    """:class:`IdentityClient` over ``grpc.aio`` (create and use it inside one event
    loop); the same methods as coroutines."""

    service = "identity"
    stub = pb_grpc.IdentityServiceStub

    async def create_account(
        self,
        first_name: str,
        last_name: str,
        email: str,
        region: Region,
        password: str,
        *,
        phone: str | None = None,
        birth_date: str | None = None,
    ) -> Account:
        return await self._run(
            _Calls.create_account(
                first_name, last_name, email, region, password, phone, birth_date
            )
        )

    async def get_account(self, subject_id: str) -> Account:
        return await self._run(_Calls.get_account(subject_id))

    async def get_region(self, subject_id: str) -> Region:
        return await self._run(_Calls.get_region(subject_id))

    async def update_profile(
        self,
        subject_id: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        region: Region | None = None,
        birth_date: str | None = None,
    ) -> Account:
        return await self._run(
            _Calls.update_profile(
                subject_id, first_name, last_name, email, phone, region, birth_date
            )
        )

    async def set_profile_photo(self, subject_id: str, photo: bytes) -> StoredPhoto:
        return await self._run(_Calls.set_profile_photo(subject_id, photo))

    async def get_profile_photo(self, subject_id: str) -> ProfilePhoto:
        return await self._run(_Calls.get_profile_photo(subject_id))

    async def get_public_profile(self, subject_id: str) -> PublicProfile:
        return await self._run(_Calls.get_public_profile(subject_id))

    async def get_organisation(self, subject_id: str) -> str | None:
        return await self._run(_Calls.get_organisation(subject_id))

    async def authenticate(self, email: str, password: str) -> Session:
        return await self._run(_Calls.authenticate(email, password))

    async def validate_session(self, token: str) -> Session:
        return await self._run(_Calls.validate_session(token))

    async def verify_subject(
        self, subject_id: str, *, password: str | None = None, session_token: str | None = None
    ) -> str:
        return await self._run(_Calls.verify_subject(subject_id, password, session_token))

    async def link_subject(self, session_token: str) -> str:
        return await self._run(_Calls.link_subject(session_token))

    async def delete_account(
        self,
        subject_id: str,
        password: str,
        reason: DeletionReason,
        *,
        request_id: str | None = None,
    ) -> ErasureReceipt:
        return await self._run(_Calls.delete_account(subject_id, password, reason, request_id))

    async def set_billing_contact(
        self, subject_id: str, contact: BillingContact
    ) -> BillingContact:
        return await self._run(_Calls.set_billing_contact(subject_id, contact))

    async def get_billing_contact(self, subject_id: str) -> BillingContact:
        return await self._run(_Calls.get_billing_contact(subject_id))

    async def create_support_ticket(
        self,
        subject_id: str,
        contact: str,
        summary: str,
        description: str,
        *,
        attachments: Sequence[Attachment] = (),
        special_categories: Sequence[SpecialCategory] = (),
    ) -> SupportTicket:
        return await self._run(
            _Calls.create_support_ticket(
                subject_id, contact, summary, description, attachments, special_categories
            )
        )

    async def list_support_tickets(self, subject_id: str) -> list[SupportTicket]:
        return await self._run(_Calls.list_support_tickets(subject_id))
