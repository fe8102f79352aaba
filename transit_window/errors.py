"""Domain errors that know their HTTP status. `api/problems.py` renders them, once, as RFC 9457 problem+json.

DomainError
├── InvalidInput        422  (with a JSON pointer per invalid field)
├── NotAuthenticated    401
│   └── RequestNotAuthentic  401  (a signed read between nodes whose DTC-Signature does not hold)
├── Forbidden           403
├── NotFound            404
├── Conflict            409
├── PayloadTooLarge     413
├── TooManyRequests     429
├── NotAuthentic        400/401/403  (a corridor message that fails verification; never stored)
└── Unavailable         503
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class FieldError:
    pointer: str
    detail: str
    code: str = "invalid"

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "detail": self.detail, "code": self.code}


class DomainError(Exception):
    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return f"urn:dtc:problem:{self.slug}"


class InvalidInput(DomainError):
    status = 422
    slug = "invalid-input"
    title = "The request has invalid fields"

    def __init__(self, detail: str, *, errors: list[FieldError], **extra: Any) -> None:
        super().__init__(detail, errors=[error.as_dict() for error in errors], **extra)
        self.errors = errors


class NotAuthenticated(DomainError):
    status = 401
    slug = "not-authenticated"
    title = "Authentication required"

    def __init__(self, detail: str, *, challenge: str = "Bearer", **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.challenge = challenge  # the WWW-Authenticate scheme the client should use


class RequestNotAuthentic(NotAuthenticated):
    """A signed read between nodes (`Authorization: DTC-Signature`) that the signature does not authenticate.

    Always 401 with the `DTC-Signature` challenge: the caller signs again (for this node, this method and path, now).
    `reason` is a stable machine code, listed with its check in PROTOCOL.md §5; a signer that is authenticated but
    may not read what it asked for is a `Forbidden` (403), not this."""

    slug = "request-not-authentic"
    title = "Request signature refused"
    REASONS: ClassVar[frozenset[str]] = frozenset(
        {
            "unsigned",
            "malformed",
            "bad-header",
            "unknown-key",
            "bad-signature",
            "bad-claims",
            "wrong-issuer",
            "key-not-valid",
            "wrong-audience",
            "future-iat",
            "stale-request",
            "request-mismatch",
        }
    )

    def __init__(self, reason: str, detail: str, **extra: Any) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown request refusal reason {reason!r}")
        super().__init__(detail, challenge="DTC-Signature", reason=reason, **extra)
        self.reason = reason


class Forbidden(DomainError):
    status = 403
    slug = "forbidden"
    title = "Not allowed for this client"


class NotFound(DomainError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    slug = "conflict"
    title = "Conflicts with the current state"


class PayloadTooLarge(DomainError):
    status = 413
    slug = "payload-too-large"
    title = "Request body too large"


class TooManyRequests(DomainError):
    status = 429
    slug = "too-many-requests"
    title = "Too many requests"


class Unavailable(DomainError):
    status = 503
    slug = "unavailable"
    title = "Service temporarily unavailable"


@dataclass(slots=True)
class _ReasonStatus:
    status: int
    title: str


class NotAuthentic(DomainError):
    """A corridor message that is not authentic. `reason` is a stable machine code (see PROTOCOL.md)."""

    slug = "message-not-authentic"
    title = "Corridor message refused"
    _reasons: ClassVar[dict[str, _ReasonStatus]] = {
        "malformed": _ReasonStatus(400, "Malformed JWS"),
        "bad-header": _ReasonStatus(400, "Unacceptable JWS header"),
        "bad-payload": _ReasonStatus(400, "Payload is not a corridor envelope"),
        "unknown-type": _ReasonStatus(400, "Unknown message type"),
        "invalid-body": _ReasonStatus(400, "Body fails its schema"),
        "unknown-key": _ReasonStatus(401, "Unknown signing key"),
        "key-not-valid": _ReasonStatus(401, "Signing key not valid at iat"),
        "bad-signature": _ReasonStatus(401, "Signature does not verify"),
        "wrong-issuer": _ReasonStatus(403, "Key does not belong to the issuer"),
        "wrong-audience": _ReasonStatus(403, "Message addressed to another node"),
        "future-iat": _ReasonStatus(403, "Issued in the future"),
    }

    def __init__(self, reason: str, detail: str, **extra: Any) -> None:
        super().__init__(detail, reason=reason, **extra)
        self.reason = reason
        info = self._reasons[reason]
        self._status = info.status
        self._title = info.title

    @property
    def http_status(self) -> int:
        return self._status

    @property
    def http_title(self) -> str:
        return self._title


def status_of(error: DomainError) -> int:
    return error.http_status if isinstance(error, NotAuthentic) else error.status


def title_of(error: DomainError) -> str:
    return error.http_title if isinstance(error, NotAuthentic) else error.title


@dataclass(slots=True)
class Problem:
    """A problem document under construction (used where there is no exception, e.g. per batch item)."""

    status: int
    title: str
    detail: str
    type: str = "about:blank"
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }

    @classmethod
    def from_error(cls, error: DomainError) -> Problem:
        return cls(
            status=status_of(error),
            title=title_of(error),
            detail=error.detail,
            type=error.type_uri,
            extra=dict(error.extra),
        )
