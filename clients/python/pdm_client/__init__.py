"""Calls pdm from a company service: typed consent calls, read-your-writes tokens, and an
in-process consent gate. See README.md."""

from .config import Config, ConfigError, TlsFiles
from .consent import AsyncConsentClient, ChangeStream, ConsentClient
from .errors import (
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PdmError,
    PermissionDenied,
    Precondition,
    ResourceExhausted,
    Unavailable,
)
from .gate import AsyncConsentGate, ConsentGate, GateOptions, Verdict
from .retry import RetryPolicy
from .types import (
    Change,
    Channel,
    Decision,
    Grant,
    LedgerEntryKind,
    LegalBasis,
    MessageKind,
    Reason,
    Written,
)

__all__ = [
    "AsyncConsentClient",
    "AsyncConsentGate",
    "Change",
    "ChangeStream",
    "Channel",
    "Config",
    "ConfigError",
    "ConsentClient",
    "ConsentGate",
    "DeadlineExceeded",
    "Decision",
    "FailedPrecondition",
    "FieldViolation",
    "GateOptions",
    "Grant",
    "InvalidArgument",
    "LedgerEntryKind",
    "LegalBasis",
    "MessageKind",
    "NotFound",
    "PdmError",
    "PermissionDenied",
    "Precondition",
    "Reason",
    "ResourceExhausted",
    "RetryPolicy",
    "TlsFiles",
    "Unavailable",
    "Verdict",
    "Written",
]
