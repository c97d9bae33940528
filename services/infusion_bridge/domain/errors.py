"""Errors the domain and application services raise; the API turns them into 4xx."""

from __future__ import annotations


class DomainError(Exception):
    """A refused request: HTTP status, FHIR issue type, message, and the element at fault."""

    status_code = 422
    code = "business-rule"

    def __init__(self, message: str, element: str | None = None) -> None:
        super().__init__(message)
        self.element = element


class NotFound(DomainError):
    status_code = 404
    code = "not-found"


class Conflict(DomainError):
    """Not allowed in the current state (an illegal transition, a concurrent change)."""

    status_code = 409
    code = "conflict"
