"""The business rules an infusion order must meet, checked against the drug catalog (pure).

One entry point, :func:`check_order`, for every order however it arrived (FHIR intake, tests,
tools); :func:`check_dose_unit` is the single "the dose unit fits the drug" rule, also used for
the doses recorded chairside (premedications, end of infusion).

A :class:`RuleViolation` names the offending element by its *domain* path in
:class:`InfusionOrder` (``route_code``, ``dose.unit``...), never by a FHIR path: the FHIR edge
(``fhir_mappings.medication_request.violations_to_issues``) translates those. ``code`` is the
FHIR issue-type code the service reports for the rule.

Route codes are SNOMED CT; the domain keeps its own copy of the code sets it rules on
(``fhir_mappings.codes`` re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from services.infusion_bridge.domain.catalog import DrugCatalog, DrugEntry
from services.infusion_bridge.domain.orders import InfusionOrder

__all__ = [
    "IMPLAUSIBLE_DOSE_FACTOR",
    "INTRAVENOUS_ROUTES",
    "PREMEDICATION_ROUTES",
    "ROUTE_INTRAVENOUS",
    "ROUTE_INTRAVENOUS_ALT",
    "ROUTE_ORAL",
    "RuleViolation",
    "check_dose_unit",
    "check_order",
]

# --- SNOMED CT routes ---------------------------------------------------------------------------
ROUTE_INTRAVENOUS: Final = "47625008"
"""Intravenous route (qualifier value)."""
ROUTE_INTRAVENOUS_ALT: Final = "255560000"
"""Intravenous (qualifier value); seen in HL7 examples."""
ROUTE_ORAL: Final = "26643006"
"""Oral route."""
INTRAVENOUS_ROUTES: Final = frozenset({ROUTE_INTRAVENOUS, ROUTE_INTRAVENOUS_ALT})
"""Routes an infusion drug may be given by."""
PREMEDICATION_ROUTES: Final = INTRAVENOUS_ROUTES | {ROUTE_ORAL}
"""Routes a premedication may be given by (oral or intravenous)."""

IMPLAUSIBLE_DOSE_FACTOR: Final = 10
"""A dose above this many times the catalog's typical high dose is refused as a likely typo."""


@dataclass(frozen=True)
class RuleViolation:
    """One broken rule: a FHIR issue-type ``code``, the text, and the domain element at fault.

    ``element`` is a dotted path in :class:`InfusionOrder` (``dose.unit``) or, for recorded
    events, in the event (``dose_given.unit``).
    """

    code: str
    message: str
    element: str


def check_order(order: InfusionOrder, catalog: DrugCatalog) -> list[RuleViolation]:
    """Every rule ``order`` breaks (empty when it may be accepted), in a stable order."""
    entry = catalog.by_key(order.drug.key)
    if entry is None:
        return [
            RuleViolation(
                "code-invalid", f"drug {order.drug.key!r} is not in the drug catalog", "drug"
            )
        ]
    violations: list[RuleViolation] = []
    violations += _check_drug(order, entry, catalog)
    violations += _check_dose(order, entry)
    route = _check_route(order, entry)
    if route is not None:
        violations.append(route)
    return violations


def check_dose_unit(entry: DrugEntry, unit: str, element: str) -> RuleViolation | None:
    """The dose unit (UCUM) fits the drug (``entry.dose_units``); ``element`` names where the
    unit is (``dose.unit`` for an order or a premedication, ``dose_given.unit``...)."""
    if unit in entry.dose_units:
        return None
    return RuleViolation(
        "code-invalid",
        f"a {entry.name} dose cannot be given in {unit!r} (allowed: {', '.join(entry.dose_units)})",
        element,
    )


def _check_drug(
    order: InfusionOrder, entry: DrugEntry, catalog: DrugCatalog
) -> list[RuleViolation]:
    """The drug's code, class and the order's role agree with the catalog."""
    violations: list[RuleViolation] = []
    drug = order.drug
    if drug.ndc is not None:
        if catalog.by_ndc(drug.ndc) is not entry:
            violations.append(
                RuleViolation(
                    "code-invalid",
                    f"NDC {drug.ndc} is not a verified code of {entry.name} in the catalog",
                    "drug.ndc",
                )
            )
    elif drug.rxnorm is None or catalog.by_rxnorm(drug.rxnorm) is not entry:
        violations.append(
            RuleViolation(
                "code-invalid",
                f"RxNorm code {drug.rxnorm} is not a verified code of {entry.name} in the catalog",
                "drug.rxnorm",
            )
        )
    if entry.drug_class != "both" and order.role != entry.drug_class:
        violations.append(
            RuleViolation(
                "business-rule",
                f"{entry.name} is a {entry.drug_class} drug: it cannot be ordered as "
                f"{'a' if order.role == 'premedication' else 'an'} {order.role}",
                "role",
            )
        )
    expected_class = order.role if entry.drug_class == "both" else entry.drug_class
    if order.drug.drug_class != expected_class:
        violations.append(
            RuleViolation(
                "business-rule",
                f"{entry.name} ordered as {order.role} must have drug class {expected_class}, "
                f"not {order.drug.drug_class}",
                "drug.drug_class",
            )
        )
    return violations


def _check_dose(order: InfusionOrder, entry: DrugEntry) -> list[RuleViolation]:
    """The dose is positive, in a unit that fits the drug, and not implausibly high."""
    dose = order.dose
    violations: list[RuleViolation] = []
    if dose.value <= 0:
        violations.append(
            RuleViolation(
                "value", f"the dose must be > 0 (got {_number(dose.value)})", "dose.value"
            )
        )
    unit = check_dose_unit(entry, dose.unit, "dose.unit")
    if unit is not None:
        violations.append(unit)
        return violations
    typical = entry.typical_dose
    if typical is None or dose.unit != typical.unit:
        return violations
    limit = typical.high * IMPLAUSIBLE_DOSE_FACTOR
    if limit and dose.value > limit:
        violations.append(
            RuleViolation(
                "business-rule",
                f"a {entry.name} dose of {_number(dose.value)} {dose.unit} is implausible "
                f"(more than {IMPLAUSIBLE_DOSE_FACTOR}x the typical {typical.high:g} {dose.unit})",
                "dose.value",
            )
        )
    return violations


def _check_route(order: InfusionOrder, entry: DrugEntry) -> RuleViolation | None:
    """Infusion drugs go intravenously; premedications orally or intravenously (or unstated)."""
    route = order.route_code
    if order.role == "infusion":
        if route is None:
            return RuleViolation(
                "business-rule",
                f"{entry.name} is an infusion drug: an intravenous route (SNOMED "
                f"{ROUTE_INTRAVENOUS}) is required",
                "route_code",
            )
        if route not in INTRAVENOUS_ROUTES:
            return RuleViolation(
                "business-rule",
                f"{entry.name} must be given intravenously (SNOMED "
                f"{ROUTE_INTRAVENOUS}), not by route {route}",
                "route_code",
            )
        return None
    if route is not None and route not in PREMEDICATION_ROUTES:
        return RuleViolation(
            "business-rule",
            f"premedication {entry.name} must be oral or intravenous, not route {route}",
            "route_code",
        )
    return None


def _number(value: float) -> str:
    """A dose value as the FHIR input wrote it: ``-1``, not ``-1.0`` (``600.5`` stays)."""
    return str(int(value)) if value.is_integer() else str(value)
