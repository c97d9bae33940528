"""The errors the domain and the use cases raise: one base, a FHIR issue code, the element.

They never carry an HTTP status; the HTTP edge (``api/errors.py``) maps each class to one.

    DomainError            business-rule   a valid request the rules refuse
    ├── Invalid            invalid         the request itself is malformed
    ├── NotFound           not-found       no such order, session, delivery, resource
    ├── Gone               deleted         it existed and was deleted
    ├── Conflict           conflict        not allowed in the current state
    ├── PreconditionFailed duplicate       a condition matched more than one resource
    ├── Unavailable        transient       a dependency (the EHR) cannot answer now
    ├── Unauthenticated    login           no valid credential
    ├── Forbidden          forbidden       signed in, but a scope or role is missing
    └── TransactionRefused (per entry)     a transaction Bundle refused as a whole
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Self

Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(frozen=True)
class Issue:
    """One problem: an R4 issue-type ``code``, text, and the path of the element at fault."""

    code: str
    diagnostics: str
    expression: tuple[str, ...] = field(default_factory=tuple)
    severity: Severity = "error"


class DomainError(Exception):
    """A refused request. ``issues`` say what and where (at least one)."""

    code: ClassVar[str] = "business-rule"

    def __init__(
        self,
        message: str,
        element: str | None = None,
        *,
        issues: Sequence[Issue] | None = None,
    ) -> None:
        super().__init__(message)
        self.element = element
        self.issues: list[Issue] = (
            list(issues) if issues else [Issue(self.code, message, (element,) if element else ())]
        )

    @classmethod
    def of(cls, issues: Sequence[Issue]) -> Self:
        """The error for these issues (their texts joined as the message)."""
        return cls("; ".join(i.diagnostics for i in issues), issues=issues)

    @classmethod
    def because(cls, code: str, message: str, *expression: str) -> Self:
        """One issue with its own issue-type ``code`` (e.g. ``required`` for an ``Invalid``)."""
        return cls(message, issues=[Issue(code, message, expression)])


class Invalid(DomainError):
    code = "invalid"


class NotFound(DomainError):
    code = "not-found"


class Gone(DomainError):
    code = "deleted"


class Conflict(DomainError):
    """Not allowed in the current state (an illegal transition, a concurrent change)."""

    code = "conflict"


class PreconditionFailed(DomainError):
    code = "duplicate"


class Unavailable(DomainError):
    code = "transient"


class Unauthenticated(DomainError):
    """No valid credential: the caller must sign in (again)."""

    code = "login"

    def __init__(self, message: str, *, bearer_error: str | None = None) -> None:
        super().__init__(message)
        self.bearer_error = bearer_error
        """OAuth bearer error code (``invalid_token``) when a token was sent and refused."""


class Forbidden(DomainError):
    """Signed in, but without the scope or role this needs."""

    code = "forbidden"


class TransactionRefused(DomainError):
    """A FHIR transaction refused as a whole: every failed entry's error, in entry order."""

    def __init__(self, errors: Sequence[DomainError]) -> None:
        self.errors = list(errors)
        super().__init__(
            "; ".join(str(e) for e in self.errors),
            issues=[i for e in self.errors for i in e.issues],
        )
