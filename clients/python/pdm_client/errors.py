"""What a call to pdm can answer besides success: one exception class per kind, carrying
what the status's details say (the bad fields, the unmet preconditions, how long to wait)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request."""

    field: str
    """The field, as the proto names it (``items[3].purpose``)."""
    description: str
    """What is wrong with it."""


@dataclass(frozen=True)
class Precondition:
    """One unmet precondition (e.g. ``LEGAL_BASIS`` on ``purpose``)."""

    kind: str
    subject: str
    description: str


class PdmError(Exception):
    """An error from pdm (or from reaching it)."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def retry_after(self) -> float | None:
        """The delay (seconds) the server asked for, if any."""
        return None

    @property
    def violations(self) -> list[FieldViolation]:
        """The bad fields of an INVALID_ARGUMENT (empty otherwise)."""
        return []


class InvalidArgument(PdmError):
    """Bad input: nothing was stored. Every bad field is listed in ``violations``."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, violations: list[FieldViolation]) -> None:
        described = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid argument: {described or message}")
        self._violations = violations

    @property
    def violations(self) -> list[FieldViolation]:
        return self._violations

    @property
    def fields(self) -> list[str]:
        """The names of the bad fields, in the server's order."""
        return [v.field for v in self._violations]


class FailedPrecondition(PdmError):
    """The request is valid but the state does not allow it."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, message: str, preconditions: list[Precondition]) -> None:
        super().__init__(f"failed precondition: {message}")
        self.preconditions = preconditions


class NotFound(PdmError):
    """The subject (or thing) is unknown, or hidden from this caller."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(PdmError):
    """What the call would create exists already (e.g. an account with that email)."""

    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(PdmError):
    """This caller may not call the method (PERMISSION_DENIED or UNAUTHENTICATED)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class _Delayed(PdmError):
    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self._retry_after = retry_after

    @property
    def retry_after(self) -> float | None:
        return self._retry_after


class Unavailable(_Delayed):
    """The service could not answer now; ``retry_after`` when it said how long to wait."""

    code = grpc.StatusCode.UNAVAILABLE


class ResourceExhausted(_Delayed):
    """A rate limit or load shedding refused the call before doing anything."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceeded(PdmError):
    """The call's deadline passed."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED

    def __init__(self, message: str = "deadline exceeded") -> None:
        super().__init__(message)


def _details(error: grpc.RpcError) -> status_pb2.Status | None:
    try:
        return rpc_status.from_call(error)  # type: ignore[arg-type]
    except (ValueError, AttributeError, TypeError):
        return None


def from_rpc_error(error: grpc.RpcError) -> PdmError:
    """The typed error for a failed call (sync or asyncio)."""
    code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
    message: str = error.details() or ""  # type: ignore[attr-defined]
    status = _details(error)
    violations: list[FieldViolation] = []
    preconditions: list[Precondition] = []
    retry_after: float | None = None
    for detail in status.details if status is not None else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
        elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure()
            detail.Unpack(failure)
            preconditions += [
                Precondition(v.type, v.subject, v.description) for v in failure.violations
            ]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            retry_after = info.retry_delay.ToTimedelta().total_seconds()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(message, violations)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(message, preconditions)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"not found: {message}")
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return AlreadyExists(f"already exists: {message}")
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        return PermissionDenied(f"permission denied: {message}", code)
    if code == grpc.StatusCode.UNAVAILABLE:
        return Unavailable(f"unavailable: {message}", retry_after)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ResourceExhausted(f"resource exhausted: {message}", retry_after)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded()
    name = code.name if code is not None else "UNKNOWN"
    return PdmError(f"{name}: {message}", code)
