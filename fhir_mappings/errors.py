"""The exception a FHIR -> domain mapping raises when the input cannot be mapped."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_mappings.operation_outcome import Issue, operation_outcome


class MappingError(Exception):
    """A resource could not be mapped; ``issues`` say what and where (FHIRPath ``expression``)."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues: list[Issue] = list(issues)
        if not self.issues:
            raise ValueError("MappingError needs at least one issue")
        super().__init__("; ".join(_describe(i) for i in self.issues))

    def to_operation_outcome(self) -> dict[str, Any]:
        """The issues as an R4 OperationOutcome body."""
        return operation_outcome(self.issues)

    @property
    def expressions(self) -> list[str]:
        """Every FHIRPath expression named by the issues, in order."""
        return [e for issue in self.issues for e in issue.expression]


def _describe(issue: Issue) -> str:
    where = f" at {', '.join(issue.expression)}" if issue.expression else ""
    return f"{issue.code}: {issue.diagnostics}{where}"
