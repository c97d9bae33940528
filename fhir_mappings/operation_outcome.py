"""Build FHIR R4 OperationOutcome bodies for errors the service reports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.infusion_bridge.domain.errors import Issue

__all__ = ["Issue", "issue_to_fhir", "operation_outcome", "single_issue"]


def issue_to_fhir(issue: Issue) -> dict[str, Any]:
    """One R4 ``OperationOutcome.issue``."""
    out: dict[str, Any] = {
        "severity": issue.severity,
        "code": issue.code,
        "diagnostics": issue.diagnostics,
    }
    if issue.expression:
        out["expression"] = list(issue.expression)
    return out


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [issue_to_fhir(i) for i in issues]}


def single_issue(code: str, diagnostics: str, *expression: str) -> dict[str, Any]:
    return operation_outcome([Issue(code, diagnostics, tuple(expression))])
