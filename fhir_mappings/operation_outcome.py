"""Build FHIR R4 OperationOutcome bodies for errors the service reports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(frozen=True)
class Issue:
    """One problem: an R4 issue-type ``code``, text, and the FHIRPath of the element."""

    code: str
    diagnostics: str
    expression: tuple[str, ...] = field(default_factory=tuple)
    severity: Severity = "error"

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


def single_issue(code: str, diagnostics: str, *expression: str) -> dict[str, Any]:
    return operation_outcome([Issue(code, diagnostics, tuple(expression))])
