"""Errors raised by the EHR FHIR client.

    EhrError
    ├── EhrUnavailable        network failure or timeout: nothing (reliable) came back
    ├── EhrAuthenticationFailed  the EHR's token endpoint refused our client assertion
    └── EhrResponseError      the EHR answered with an error status or an unusable body
        ├── EhrClientError    4xx: our request was refused (carries the OperationOutcome)
        ├── EhrServerError    5xx
        └── EhrInvalidResponse  2xx whose body is not the FHIR JSON we asked for

``retryable`` tells a caller (the delivery worker, sync) whether trying again can help:
network failures, 408, 429 and 5xx are retryable; other 4xx and malformed bodies are not.
"""

from __future__ import annotations

from typing import Any

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class EhrError(Exception):
    """Base class for every failure talking to the EHR."""

    retryable: bool = False
    retry_after: float | None = None


class EhrUnavailable(EhrError):
    """The EHR could not be reached or did not answer in time."""

    retryable = True


class EhrAuthenticationFailed(EhrError):
    """No access token: the EHR's authorization server refused this service's client
    assertion (wrong key, unknown client, scope not allowed). Retryable with backoff: the fix
    is on the operator's side (register the key) and needs no change to the queued data."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class EhrResponseError(EhrError):
    """The EHR answered, but not with what we needed."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        outcome: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.outcome = outcome
        self.retry_after = retry_after
        self.retryable = status_code in RETRYABLE_STATUSES

    @property
    def diagnostics(self) -> str:
        """The human-readable text of the server's OperationOutcome, if it sent one."""
        return outcome_text(self.outcome)


class EhrClientError(EhrResponseError):
    """4xx from the EHR."""


class EhrServerError(EhrResponseError):
    """5xx from the EHR."""


class EhrInvalidResponse(EhrResponseError):
    """A success status with a body that is not valid FHIR JSON."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message, status_code=status_code)
        self.retryable = False


def outcome_text(outcome: dict[str, Any] | None) -> str:
    """Join the diagnostics/details of an OperationOutcome's issues into one line."""
    if not outcome or outcome.get("resourceType") != "OperationOutcome":
        return ""
    parts: list[str] = []
    for issue in outcome.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
        if text:
            parts.append(f"{issue.get('severity', 'error')}: {text}")
    return "; ".join(parts)
