"""domain.order_rules: the business rules of an order, on orders built without FHIR, and their
FHIRPaths at the MedicationRequest edge (order_element_path, violations_to_issues)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings import codes
from fhir_mappings.medication_request import order_element_path, violations_to_issues
from fhir_mappings.operation_outcome import Issue
from services.infusion_bridge.domain import order_rules
from services.infusion_bridge.domain.catalog import DrugCatalog, DrugEntry, Role, load_catalog
from services.infusion_bridge.domain.order_rules import (
    IMPLAUSIBLE_DOSE_FACTOR,
    RuleViolation,
    check_dose_unit,
    check_order,
)
from services.infusion_bridge.domain.orders import (
    Drug,
    InfusionOrder,
    OrderIntent,
    OrderStatus,
    Quantity,
)

MR = "MedicationRequest"
DOSE = f"{MR}.dosageInstruction[0].doseAndRate[0].doseQuantity"
ROUTE = f"{MR}.dosageInstruction[0].route"
IV = order_rules.ROUTE_INTRAVENOUS
ORAL = order_rules.ROUTE_ORAL
INTRAMUSCULAR = "78421000"


@pytest.fixture(scope="module")
def catalog() -> DrugCatalog:
    return load_catalog()


def entry(catalog: DrugCatalog, key: str) -> DrugEntry:
    found = catalog.by_key(key)
    assert found is not None
    return found


def make_order(
    catalog: DrugCatalog,
    key: str = "ocrelizumab",
    *,
    role: Role | None = None,
    dose: tuple[float, str] = (600, "mg"),
    route: str | None = IV,
    **changes: Any,
) -> InfusionOrder:
    drug_entry = entry(catalog, key)
    chosen: Role = role or (
        "premedication" if drug_entry.drug_class == "premedication" else "infusion"
    )
    order = InfusionOrder(
        id="o-1",
        status=OrderStatus.ACTIVE,
        intent=OrderIntent.ORDER,
        patient="Patient/p-1",
        drug=drug_entry.to_drug(drug_entry.ingredient_code, chosen),
        role=chosen,
        dose=Quantity(value=dose[0], unit=dose[1]),
        route_code=route,
    )
    return order.model_copy(update=changes) if changes else order


def elements(violations: list[RuleViolation]) -> list[tuple[str, str]]:
    return [(v.code, v.element) for v in violations]


# --- check_order --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "role", "dose", "route"),
    [
        ("ocrelizumab", None, (600, "mg"), IV),
        ("alemtuzumab", None, (12, "mg"), order_rules.ROUTE_INTRAVENOUS_ALT),
        ("mitoxantrone", None, (12, "mg/m2"), IV),
        ("mitoxantrone", None, (500, "mg"), IV),  # not the typical unit: no plausibility limit
        ("methylprednisolone", "infusion", (30, "mg/kg"), IV),
        ("methylprednisolone", "premedication", (100, "mg"), ORAL),
        ("cetirizine", None, (10, "mg"), ORAL),
        ("cetirizine", None, (10, "mg"), None),
        ("acyclovir", None, (100_000, "mg"), ORAL),  # no typical dose: no plausibility limit
    ],
)
def test_valid_orders_break_no_rule(
    catalog: DrugCatalog,
    key: str,
    role: Role | None,
    dose: tuple[float, str],
    route: str | None,
) -> None:
    assert check_order(make_order(catalog, key, role=role, dose=dose, route=route), catalog) == []


@pytest.mark.parametrize("value", [0, -600])
def test_dose_must_be_positive(catalog: DrugCatalog, value: float) -> None:
    violations = check_order(make_order(catalog, dose=(value, "mg")), catalog)
    assert violations == [
        RuleViolation("value", f"the dose must be > 0 (got {value})", "dose.value")
    ]


@pytest.mark.parametrize("unit", ["mg/m2", "mL", "mg/kg", "g"])
def test_dose_unit_must_fit_the_drug(catalog: DrugCatalog, unit: str) -> None:
    violations = check_order(make_order(catalog, dose=(600, unit)), catalog)
    assert violations == [
        RuleViolation(
            "code-invalid",
            f"a ocrelizumab dose cannot be given in {unit!r} (allowed: mg)",
            "dose.unit",
        )
    ]


def test_implausible_dose(catalog: DrugCatalog) -> None:
    limit = 600 * IMPLAUSIBLE_DOSE_FACTOR
    assert check_order(make_order(catalog, dose=(limit, "mg")), catalog) == []
    violations = check_order(make_order(catalog, dose=(limit + 1, "mg")), catalog)
    assert violations == [
        RuleViolation(
            "business-rule",
            "a ocrelizumab dose of 6001 mg is implausible (more than 10x the typical 600 mg)",
            "dose.value",
        )
    ]


def test_infusion_drug_needs_a_route(catalog: DrugCatalog) -> None:
    violations = check_order(make_order(catalog, route=None), catalog)
    assert violations == [
        RuleViolation(
            "business-rule",
            "ocrelizumab is an infusion drug: an intravenous route (SNOMED 47625008) is required",
            "route_code",
        )
    ]


@pytest.mark.parametrize("route", [ORAL, INTRAMUSCULAR])
def test_infusion_drug_must_be_intravenous(catalog: DrugCatalog, route: str) -> None:
    violations = check_order(make_order(catalog, route=route), catalog)
    assert violations == [
        RuleViolation(
            "business-rule",
            f"ocrelizumab must be given intravenously (SNOMED 47625008), not by route {route}",
            "route_code",
        )
    ]


def test_methylprednisolone_as_infusion_must_be_intravenous(catalog: DrugCatalog) -> None:
    order = make_order(
        catalog, "methylprednisolone", role="infusion", dose=(1000, "mg"), route=ORAL
    )
    assert elements(check_order(order, catalog)) == [("business-rule", "route_code")]


def test_premedication_must_be_oral_or_intravenous(catalog: DrugCatalog) -> None:
    violations = check_order(
        make_order(catalog, "cetirizine", dose=(10, "mg"), route=INTRAMUSCULAR), catalog
    )
    assert violations == [
        RuleViolation(
            "business-rule",
            f"premedication cetirizine must be oral or intravenous, not route {INTRAMUSCULAR}",
            "route_code",
        )
    ]


def test_every_violation_is_reported(catalog: DrugCatalog) -> None:
    order = make_order(catalog, dose=(-1, "mL"), route=ORAL)
    assert elements(check_order(order, catalog)) == [
        ("value", "dose.value"),
        ("code-invalid", "dose.unit"),
        ("business-rule", "route_code"),
    ]


def test_unknown_drug(catalog: DrugCatalog) -> None:
    order = make_order(catalog).model_copy(
        update={
            "drug": Drug(key="rituximab", name="rituximab", rxnorm="121191", drug_class="infusion")
        }
    )
    assert check_order(order, catalog) == [
        RuleViolation("code-invalid", "drug 'rituximab' is not in the drug catalog", "drug")
    ]


def test_rxnorm_code_of_another_drug(catalog: DrugCatalog) -> None:
    order = make_order(catalog)
    order = order.model_copy(update={"drug": order.drug.model_copy(update={"rxnorm": "354770"})})
    assert elements(check_order(order, catalog)) == [("code-invalid", "drug.rxnorm")]


def test_premedication_drug_cannot_be_an_infusion(catalog: DrugCatalog) -> None:
    order = make_order(catalog, "cetirizine", role="infusion", dose=(10, "mg"), route=IV)
    assert elements(check_order(order, catalog)) == [("business-rule", "role")]


def test_infusion_drug_cannot_be_a_premedication(catalog: DrugCatalog) -> None:
    order = make_order(catalog, role="premedication")
    assert elements(check_order(order, catalog)) == [("business-rule", "role")]


def test_drug_class_follows_the_role_for_both_class_drugs(catalog: DrugCatalog) -> None:
    order = make_order(catalog, "methylprednisolone", role="premedication", dose=(100, "mg"))
    wrong = order.drug.model_copy(update={"drug_class": "infusion"})
    violations = check_order(order.model_copy(update={"drug": wrong}), catalog)
    assert elements(violations) == [("business-rule", "drug.drug_class")]


# --- check_dose_unit: orders, premedications and end-of-infusion events -------------------------


def test_check_dose_unit_refuses_a_wrong_premedication_unit(catalog: DrugCatalog) -> None:
    violation = check_dose_unit(entry(catalog, "diphenhydramine"), "mL", "dose.unit")
    assert violation == RuleViolation(
        "code-invalid",
        "a diphenhydramine dose cannot be given in 'mL' (allowed: mg)",
        "dose.unit",
    )


def test_check_dose_unit_accepts_a_fitting_unit(catalog: DrugCatalog) -> None:
    assert check_dose_unit(entry(catalog, "diphenhydramine"), "mg", "dose.unit") is None
    assert check_dose_unit(entry(catalog, "methylprednisolone"), "mg/kg", "dose.unit") is None


def test_check_dose_unit_names_the_element_it_is_given(catalog: DrugCatalog) -> None:
    violation = check_dose_unit(entry(catalog, "ocrelizumab"), "mg/m2", "dose_given.unit")
    assert violation is not None
    assert violation.element == "dose_given.unit"


# --- the route code sets live in the domain -----------------------------------------------------


def test_route_code_sets_are_the_domains() -> None:
    assert codes.INTRAVENOUS_ROUTES is order_rules.INTRAVENOUS_ROUTES
    assert codes.PREMEDICATION_ROUTES is order_rules.PREMEDICATION_ROUTES
    assert codes.ROUTE_INTRAVENOUS == "47625008"
    assert codes.ROUTE_ORAL == "26643006"
    assert {"47625008", "255560000", "26643006"} == order_rules.PREMEDICATION_ROUTES


# --- the FHIRPaths of violations ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("element", "path"),
    [
        ("route_code", ROUTE),
        ("dose", DOSE),
        ("dose.value", DOSE),
        ("dose.unit", DOSE),
        ("drug", f"{MR}.medication"),
        ("drug.rxnorm", f"{MR}.medication"),
        ("drug.drug_class", f"{MR}.medication"),
        ("role", f"{MR}.medication"),
        ("status", f"{MR}.status"),
        ("patient", f"{MR}.subject"),
        ("schedule", f"{MR}.dosageInstruction[0].timing"),
        ("no_such_field", MR),
    ],
)
def test_order_element_path(element: str, path: str) -> None:
    assert order_element_path(element) == path


def test_violations_to_issues(catalog: DrugCatalog) -> None:
    violations = check_order(make_order(catalog, dose=(-1, "mg"), route=ORAL), catalog)
    assert violations_to_issues(violations) == [
        Issue("value", "the dose must be > 0 (got -1)", (DOSE,)),
        Issue(
            "business-rule",
            "ocrelizumab must be given intravenously (SNOMED 47625008), not by route 26643006",
            (ROUTE,),
        ),
    ]


def test_no_violation_is_a_structure_issue(catalog: DrugCatalog) -> None:
    """The API answers 400 for ``structure`` issues, 422 otherwise: rule violations are 422."""
    order = make_order(catalog, "cetirizine", role="infusion", dose=(-1, "mL"), route=INTRAMUSCULAR)
    violations = check_order(order, catalog)
    assert len(violations) >= 4
    assert {v.code for v in violations} <= {"business-rule", "code-invalid", "value"}
