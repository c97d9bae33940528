"""FHIR R4 MedicationRequest -> InfusionOrder: the order corpus and the error cases.

The mapper reads structure and codings (``order_from_fhir`` refuses with a MappingError); the
business rules are ``check_order``, reported at the same FHIRPaths by ``violations_to_issues``
(``expect_violation``). Rules on orders built without FHIR: ``test_order_rules.py``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from fhir_mappings import codes
from fhir_mappings.errors import MappingError
from fhir_mappings.medication_request import (
    order_from_fhir,
    order_to_fhir,
    violations_to_issues,
)
from fhir_mappings.operation_outcome import Issue
from services.infusion_bridge.domain.catalog import DrugCatalog, load_catalog
from services.infusion_bridge.domain.order_rules import check_order
from services.infusion_bridge.domain.orders import (
    Identifier,
    InfusionOrder,
    OrderIntent,
    OrderStatus,
    Quantity,
    Rate,
    Schedule,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "orders"
CORPUS = sorted(p.name for p in FIXTURES.glob("*.json"))
DOSE = "MedicationRequest.dosageInstruction[0].doseAndRate[0].doseQuantity"
ROUTE = "MedicationRequest.dosageInstruction[0].route"
GROUP = "https://ehr.example-hospital.org/fhir/sid/order-group"
ORDER_IDS = "https://infusion.example-hospital.org/fhir/sid/order-id"
CET = timezone(timedelta(hours=1))
EDT = timezone(timedelta(hours=-4))


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def remote_medications() -> dict[str, dict[str, Any]]:
    meds: dict[str, dict[str, Any]] = {}
    for path in (FIXTURES / "medications").glob("*.json"):
        med = json.loads(path.read_text())
        meds[f"Medication/{med['id']}"] = med
    return meds


@pytest.fixture(scope="module")
def catalog() -> DrugCatalog:
    return load_catalog()


def map_file(name: str, catalog: DrugCatalog) -> InfusionOrder:
    return order_from_fhir(load(name), catalog, medications=remote_medications())


def test_corpus_is_complete() -> None:
    assert len(CORPUS) >= 11
    assert set(EXPECTED) == set(CORPUS)


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_file_is_valid_r4(name: str) -> None:
    MedicationRequest.model_validate(load(name))


def _ocrevus_initial(o: InfusionOrder) -> None:
    assert o.id == "ocr-initial-1001"
    assert o.version_id == 1
    assert o.last_updated == datetime(2025, 2, 20, 14, 3, 11, 482000, tzinfo=UTC)
    assert o.status is OrderStatus.ACTIVE
    assert o.intent is OrderIntent.ORDER
    assert o.patient == "Patient/pat-4711"
    assert (o.drug.key, o.drug.rxnorm, o.drug.drug_class) == ("ocrelizumab", "1876366", "infusion")
    assert o.role == "infusion"
    assert o.dose == Quantity(value=300, unit="mg")
    assert (o.route_code, o.route_display) == ("47625008", "Intravenous route")
    assert o.rate == Rate(numerator=Quantity(value=30, unit="mL/h"))
    assert o.schedule == Schedule(
        duration=2.5,
        duration_unit="h",
        bounds_start=datetime(2025, 3, 3, tzinfo=UTC),
        day_offsets=(0, 14),
        text="Day 1 and day 15",
    )
    assert o.dosage_text is not None
    assert o.dosage_text.startswith("300 mg in 250 mL NS")
    assert o.authored_on == datetime(2025, 2, 20, 13, 58, tzinfo=CET)
    assert o.requester == "Practitioner/neuro-17"
    assert o.reasons == ("Relapsing-remitting multiple sclerosis",)
    assert o.notes == ("HBV screening negative 2025-02-10.",)
    assert o.identifiers == (
        Identifier(system=ORDER_IDS, value="7d0e2c4a-1b8f-4c55-9d7a-2f6b8c1e0a11"),
    )
    assert o.group_identifier == Identifier(system=GROUP, value="grp-ocr-initial-1001")
    assert o.based_on == ()
    assert o.body_surface_area_m2 is None


def _ocrevus_600(o: InfusionOrder) -> None:
    assert o.drug.key == "ocrelizumab"
    assert o.dose == Quantity(value=600, unit="mg")
    assert o.rate == Rate(numerator=Quantity(value=40, unit="mL/h"))
    assert o.schedule == Schedule(
        frequency=1,
        period=24,
        period_unit="wk",
        duration=3.5,
        duration_unit="h",
        bounds_start=datetime(2025, 8, 18, tzinfo=UTC),
    )
    assert o.authored_on == datetime(2025, 8, 1, tzinfo=UTC)
    assert o.reasons == ("Condition/ms-dx-4711",)
    assert o.group_identifier == Identifier(system=GROUP, value="grp-2025-08-18-pat-4711")
    assert o.version_id == 3


def _premed_methylprednisolone(o: InfusionOrder) -> None:
    # contained Medication: ingredient 6902 (with a strength Ratio) + sodium chloride diluent
    assert (o.drug.key, o.drug.rxnorm, o.drug.drug_class) == (
        "methylprednisolone",
        "6902",
        "premedication",
    )
    assert o.role == "premedication"
    assert o.based_on == ("MedicationRequest/ocr-600-2002",)
    assert o.group_identifier == Identifier(system=GROUP, value="grp-2025-08-18-pat-4711")
    assert o.dose == Quantity(value=100, unit="mg")
    assert o.rate == Rate(
        numerator=Quantity(value=200, unit="mg"), denominator=Quantity(value=1, unit="h")
    )
    assert o.schedule == Schedule(duration=30, duration_unit="min")
    assert o.route_code == codes.ROUTE_INTRAVENOUS


def _premed_cetirizine(o: InfusionOrder) -> None:
    assert (o.drug.key, o.drug.rxnorm, o.role) == ("cetirizine", "20610", "premedication")
    assert o.dose == Quantity(value=10, unit="mg")
    assert (o.route_code, o.route_display) == ("26643006", "Oral route")
    assert o.rate is None
    assert o.schedule is None
    assert o.based_on == ("MedicationRequest/ocr-600-2002",)
    assert o.group_identifier == Identifier(system=GROUP, value="grp-2025-08-18-pat-4711")


def _premed_acetaminophen(o: InfusionOrder) -> None:
    assert (o.drug.key, o.drug.rxnorm, o.role) == ("acetaminophen", "161", "premedication")
    assert o.dose == Quantity(value=650, unit="mg")
    assert o.route_code == codes.ROUTE_ORAL
    assert o.notes == ("Optional antipyretic; may be omitted if patient declines.",)
    assert o.group_identifier == Identifier(system=GROUP, value="grp-2025-08-18-pat-4711")
    assert o.version_id == 2


def _natalizumab(o: InfusionOrder) -> None:
    # remote Medication reference, resolved through `medications`
    assert (o.drug.key, o.drug.rxnorm, o.role) == ("natalizumab", "354770", "infusion")
    assert o.version_id == 7
    assert o.dose == Quantity(value=300, unit="mg")
    assert o.rate == Rate(
        numerator=Quantity(value=300, unit="mg"), denominator=Quantity(value=1, unit="h")
    )
    assert o.schedule == Schedule(
        frequency=1,
        period=4,
        period_unit="wk",
        duration=1,
        duration_unit="h",
        bounds_start=datetime(2025, 5, 5, 9, tzinfo=EDT),
        bounds_end=datetime(2026, 5, 4, 17, tzinfo=EDT),
    )
    assert o.requester == "PractitionerRole/neuro-role-3"
    assert o.reasons == ("Multiple sclerosis",)
    assert o.notes == ("TOUCH authorization confirmed.", "Flush with NS after infusion.")
    assert o.authored_on == datetime(2025, 4, 28, 14, 30, tzinfo=UTC)


def _ublituximab(o: InfusionOrder) -> None:
    assert (o.drug.key, o.drug.name, o.role) == ("ublituximab", "ublituximab-xiiy", "infusion")
    assert (o.drug.ndc, o.drug.rxnorm) == ("73150-0150-06", None)  # recognised by NDC
    assert o.dose == Quantity(value=150, unit="mg")
    assert o.rate == Rate(numerator=Quantity(value=10, unit="mL/h"))
    assert o.schedule == Schedule(
        duration=4,
        duration_unit="h",
        bounds_start=datetime(2025, 6, 16, 8, 30, tzinfo=UTC),
        day_offsets=(0,),
    )


def _alemtuzumab(o: InfusionOrder) -> None:
    # contained Medication coded with the Lemtrada SBD; route 255560000
    assert (o.drug.key, o.drug.rxnorm, o.role) == ("alemtuzumab", "1594663", "infusion")
    assert o.dose == Quantity(value=12, unit="mg")
    assert (o.route_code, o.route_display) == ("255560000", "Intravenous")
    assert o.rate == Rate(numerator=Quantity(value=25.3, unit="mL/h"))
    assert o.schedule == Schedule(
        frequency=1,
        period=1,
        period_unit="d",
        count=5,
        duration=4,
        duration_unit="h",
        bounds_start=datetime(2025, 1, 13, 8, tzinfo=CET),
        bounds_end=datetime(2025, 1, 17, 18, tzinfo=CET),
    )
    assert o.reasons == ("Highly active relapsing MS",)


def _mitoxantrone(o: InfusionOrder) -> None:
    assert (o.drug.key, o.drug.rxnorm, o.role) == ("mitoxantrone", "197989", "infusion")
    assert o.dose == Quantity(value=12, unit="mg/m2")
    assert o.body_surface_area_m2 == 1.82
    assert o.rate is None
    assert o.schedule == Schedule(
        frequency=1,
        period=13,
        period_unit="wk",
        duration=15,
        duration_unit="min",
        bounds_start=datetime(2025, 4, 7, tzinfo=UTC),
    )
    assert o.reasons == ("Secondary progressive multiple sclerosis",)


def _methylprednisolone_relapse(o: InfusionOrder) -> None:
    # methylprednisolone without basedOn -> an infusion in its own right
    assert (o.drug.key, o.drug.drug_class, o.role) == (
        "methylprednisolone",
        "infusion",
        "infusion",
    )
    assert o.status is OrderStatus.ON_HOLD
    assert o.dose == Quantity(value=1000, unit="mg")
    assert o.schedule == Schedule(
        frequency=1, period=1, period_unit="d", count=3, duration=60, duration_unit="min"
    )
    assert o.reasons == ("MS relapse",)


def _ocrevus_cancelled(o: InfusionOrder) -> None:
    assert o.status is OrderStatus.CANCELLED
    assert o.drug.key == "ocrelizumab"
    assert o.dose == Quantity(value=600, unit="mg")
    assert o.schedule is None
    assert o.rate is None
    assert o.dosage_text is None
    assert o.authored_on is None


EXPECTED: dict[str, Callable[[InfusionOrder], None]] = {
    "ocrelizumab-initial-day1-day15.json": _ocrevus_initial,
    "ocrelizumab-maintenance-600mg.json": _ocrevus_600,
    "premed-methylprednisolone-contained.json": _premed_methylprednisolone,
    "premed-cetirizine-oral.json": _premed_cetirizine,
    "premed-acetaminophen-oral.json": _premed_acetaminophen,
    "natalizumab-remote-medication.json": _natalizumab,
    "ublituximab-first-infusion.json": _ublituximab,
    "alemtuzumab-course1-contained.json": _alemtuzumab,
    "mitoxantrone-bsa.json": _mitoxantrone,
    "methylprednisolone-relapse-on-hold.json": _methylprednisolone_relapse,
    "ocrelizumab-cancelled.json": _ocrevus_cancelled,
}


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_maps_to_expected_order(name: str, catalog: DrugCatalog) -> None:
    EXPECTED[name](map_file(name, catalog))


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_orders_meet_the_order_rules(name: str, catalog: DrugCatalog) -> None:
    assert check_order(map_file(name, catalog), catalog) == []


def test_premedication_group_shares_group_identifier(catalog: DrugCatalog) -> None:
    names = [
        "ocrelizumab-maintenance-600mg.json",
        "premed-methylprednisolone-contained.json",
        "premed-cetirizine-oral.json",
        "premed-acetaminophen-oral.json",
    ]
    orders = [map_file(n, catalog) for n in names]
    assert len({o.group_identifier for o in orders}) == 1
    infusion, *premeds = orders
    assert infusion.role == "infusion"
    assert all(p.role == "premedication" for p in premeds)
    assert all(p.based_on == (f"MedicationRequest/{infusion.id}",) for p in premeds)


def test_remote_medication_matched_by_absolute_url(catalog: DrugCatalog) -> None:
    data = load("natalizumab-remote-medication.json")
    data["medicationReference"]["reference"] = (
        "https://ehr.example-hospital.org/fhir/Medication/tysabri-300mg-15ml"
    )
    assert (
        order_from_fhir(data, catalog, medications=remote_medications()).drug.key == "natalizumab"
    )


def test_contained_medication_coded_only_by_ingredient_product_code(
    catalog: DrugCatalog,
) -> None:
    """An unknown product code on Medication.code falls back to the catalogued ingredient."""
    data = load("alemtuzumab-course1-contained.json")
    data["contained"][0]["code"]["coding"][0]["code"] = "999999999"
    order = order_from_fhir(data, catalog)
    assert (order.drug.key, order.drug.rxnorm) == ("alemtuzumab", "117055")


def test_hapi_style_resource_with_text_meta_source_and_tags(catalog: DrugCatalog) -> None:
    data = load("natalizumab-remote-medication.json")
    assert data["meta"]["source"]
    assert data["meta"]["tag"]
    assert data["text"]["div"]
    assert order_from_fhir(data, catalog, medications=remote_medications()).version_id == 7


def test_partial_dates_are_read_as_first_day_utc(catalog: DrugCatalog) -> None:
    data = load("ocrelizumab-cancelled.json")
    data["authoredOn"] = "2025-07"
    assert order_from_fhir(data, catalog).authored_on == datetime(2025, 7, 1, tzinfo=UTC)


def test_mg_per_kg_methylprednisolone_is_accepted(catalog: DrugCatalog) -> None:
    data = load("methylprednisolone-relapse-on-hold.json")
    dose = data["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    dose.update({"value": 30, "unit": "mg/kg", "code": "mg/kg"})
    assert order_from_fhir(data, catalog).dose == Quantity(value=30, unit="mg/kg")


def test_order_to_fhir_output_is_valid_r4(catalog: DrugCatalog) -> None:
    for name in CORPUS:
        rendered = order_to_fhir(map_file(name, catalog))
        MedicationRequest.model_validate(rendered)
        system = codes.NDC if name.startswith("ublituximab") else codes.RXNORM
        assert rendered["medicationCodeableConcept"]["coding"][0]["system"] == system


def test_order_to_fhir_renders_bsa_observation(catalog: DrugCatalog) -> None:
    rendered = order_to_fhir(map_file("mitoxantrone-bsa.json", catalog))
    (observation,) = rendered["contained"]
    assert observation["resourceType"] == "Observation"
    assert observation["status"] == "final"
    assert observation["code"]["coding"][0] == {
        "system": codes.LOINC,
        "code": "8277-6",
        "display": "Body surface area",
    }
    assert observation["subject"] == {"reference": "Patient/pat-8002"}
    assert observation["valueQuantity"]["code"] == "m2"
    assert rendered["supportingInformation"] == [{"reference": f"#{observation['id']}"}]


def test_order_to_fhir_uses_catalog_display(catalog: DrugCatalog) -> None:
    rendered = order_to_fhir(map_file("alemtuzumab-course1-contained.json", catalog))
    coding = rendered["medicationCodeableConcept"]["coding"][0]
    assert coding == {
        "system": codes.RXNORM,
        "code": "1594663",
        "display": "1.2 ML alemtuzumab 10 MG/ML Injection [Lemtrada]",
    }


def test_order_to_fhir_rejects_day_offsets_without_anchor(catalog: DrugCatalog) -> None:
    order = map_file("ocrelizumab-cancelled.json", catalog)
    broken = order.model_copy(update={"schedule": Schedule(day_offsets=(0, 14))})
    with pytest.raises(ValueError, match="bounds_start"):
        order_to_fhir(broken)


# --------------------------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------------------------


def expect_error(
    data: Any, catalog: DrugCatalog, *, code: str, expression: str, **kwargs: Any
) -> MappingError:
    with pytest.raises(MappingError) as info:
        order_from_fhir(data, catalog, **kwargs)
    found = [(i.code, e) for i in info.value.issues for e in i.expression]
    assert (code, expression) in found, found
    return info.value


def expect_violation(data: Any, catalog: DrugCatalog, *, code: str, expression: str) -> list[Issue]:
    """The resource maps (its structure is fine) but the order breaks a rule, reported as
    ``code`` at ``expression``, the FHIRPath the mapper itself reported before the split."""
    order = order_from_fhir(data, catalog)
    issues = violations_to_issues(check_order(order, catalog))
    found = [(i.code, e) for i in issues for e in i.expression]
    assert (code, expression) in found, found
    return issues


def base() -> dict[str, Any]:
    return copy.deepcopy(load("ocrelizumab-maintenance-600mg.json"))


def dose_of(data: dict[str, Any]) -> dict[str, Any]:
    dose: dict[str, Any] = data["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    return dose


def test_wrong_resource_type(catalog: DrugCatalog) -> None:
    data = base()
    data["resourceType"] = "MedicationStatement"
    expect_error(data, catalog, code="invalid", expression="MedicationRequest.resourceType")


def test_not_a_json_object(catalog: DrugCatalog) -> None:
    expect_error(["x"], catalog, code="structure", expression="MedicationRequest")


def test_invalid_structure_dose_value_not_a_number(catalog: DrugCatalog) -> None:
    data = base()
    dose_of(data)["value"] = "abc"
    expect_error(data, catalog, code="structure", expression=f"{DOSE}.value")


def test_invalid_structure_reports_every_error(catalog: DrugCatalog) -> None:
    data = base()
    dose_of(data)["value"] = "abc"
    data["authoredOn"] = "2025-13-45"
    data["unknownElement"] = 1
    error = expect_error(data, catalog, code="structure", expression=f"{DOSE}.value")
    assert "MedicationRequest.authoredOn" in error.expressions
    assert "MedicationRequest.unknownElement" in error.expressions


def test_unknown_contained_resource_type(catalog: DrugCatalog) -> None:
    data = base()
    data["contained"] = [{"resourceType": "NotAResource", "id": "x"}]
    expect_error(data, catalog, code="structure", expression="MedicationRequest")


def test_missing_id(catalog: DrugCatalog) -> None:
    data = base()
    del data["id"]
    expect_error(data, catalog, code="required", expression="MedicationRequest.id")


def test_missing_subject(catalog: DrugCatalog) -> None:
    data = base()
    del data["subject"]
    expect_error(data, catalog, code="required", expression="MedicationRequest.subject")


def test_subject_not_a_patient(catalog: DrugCatalog) -> None:
    data = base()
    data["subject"] = {"reference": "Group/cohort-1"}
    expect_error(data, catalog, code="invalid", expression="MedicationRequest.subject")


def test_missing_drug(catalog: DrugCatalog) -> None:
    data = base()
    del data["medicationCodeableConcept"]
    expect_error(data, catalog, code="required", expression="MedicationRequest.medication")


def test_drug_without_rxnorm_coding(catalog: DrugCatalog) -> None:
    data = base()
    data["medicationCodeableConcept"] = {"text": "Ocrevus 600 mg"}
    expect_error(
        data,
        catalog,
        code="code-invalid",
        expression="MedicationRequest.medicationCodeableConcept.coding",
    )


def test_unknown_drug_code(catalog: DrugCatalog) -> None:
    data = base()
    data["medicationCodeableConcept"]["coding"][0]["code"] = "121191"  # rituximab
    error = expect_error(
        data,
        catalog,
        code="code-invalid",
        expression="MedicationRequest.medicationCodeableConcept.coding",
    )
    assert "121191" in str(error)


def test_contained_medication_with_only_a_diluent(catalog: DrugCatalog) -> None:
    data = load("premed-methylprednisolone-contained.json")
    data["contained"][0]["ingredient"] = data["contained"][0]["ingredient"][1:]
    expect_error(
        data, catalog, code="code-invalid", expression="MedicationRequest.medicationReference"
    )


def test_contained_reference_to_missing_medication(catalog: DrugCatalog) -> None:
    data = load("premed-methylprednisolone-contained.json")
    data["medicationReference"]["reference"] = "#nope"
    expect_error(
        data, catalog, code="not-found", expression="MedicationRequest.medicationReference"
    )


def test_unresolved_remote_medication(catalog: DrugCatalog) -> None:
    data = load("natalizumab-remote-medication.json")
    expect_error(
        data, catalog, code="not-found", expression="MedicationRequest.medicationReference"
    )


def test_missing_dose(catalog: DrugCatalog) -> None:
    data = base()
    del data["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    expect_error(data, catalog, code="required", expression=DOSE)


def test_missing_dosage_instruction(catalog: DrugCatalog) -> None:
    data = base()
    del data["dosageInstruction"]
    expect_error(data, catalog, code="required", expression=DOSE)


@pytest.mark.parametrize("value", [0, -600])
def test_dose_not_positive(value: int, catalog: DrugCatalog) -> None:
    data = base()
    dose_of(data)["value"] = value
    (issue,) = expect_violation(data, catalog, code="value", expression=DOSE)
    assert issue.diagnostics == f"the dose must be > 0 (got {value})"


@pytest.mark.parametrize("unit", ["mg/m2", "mL", "mg/kg", "g"])
def test_dose_unit_not_fitting_the_drug(unit: str, catalog: DrugCatalog) -> None:
    data = base()
    dose_of(data).update({"unit": unit, "code": unit})
    (issue,) = expect_violation(data, catalog, code="code-invalid", expression=DOSE)
    assert issue.diagnostics == (f"a ocrelizumab dose cannot be given in {unit!r} (allowed: mg)")


def test_implausible_dose(catalog: DrugCatalog) -> None:
    data = base()
    dose_of(data)["value"] = 60_000  # 100x the 600 mg dose: a typo, not an order
    (issue,) = expect_violation(data, catalog, code="business-rule", expression=DOSE)
    assert issue.diagnostics == (
        "a ocrelizumab dose of 60000 mg is implausible (more than 10x the typical 600 mg)"
    )


def test_dose_just_under_the_implausibility_limit_is_accepted(catalog: DrugCatalog) -> None:
    data = base()
    dose_of(data)["value"] = 6000
    assert check_order(order_from_fhir(data, catalog), catalog) == []


def test_dose_unit_not_ucum(catalog: DrugCatalog) -> None:
    data = base()
    dose_of(data)["system"] = "http://example.org/units"
    expect_error(data, catalog, code="code-invalid", expression=DOSE)


def test_non_iv_route_for_infusion_drug(catalog: DrugCatalog) -> None:
    data = base()
    data["dosageInstruction"][0]["route"] = {
        "coding": [{"system": codes.SNOMED, "code": codes.ROUTE_ORAL, "display": "Oral route"}]
    }
    expect_violation(data, catalog, code="business-rule", expression=ROUTE)


def test_missing_route_for_infusion_drug(catalog: DrugCatalog) -> None:
    data = base()
    del data["dosageInstruction"][0]["route"]
    expect_violation(data, catalog, code="business-rule", expression=ROUTE)


def test_premedication_by_unsupported_route(catalog: DrugCatalog) -> None:
    data = load("premed-cetirizine-oral.json")
    data["dosageInstruction"][0]["route"] = {
        "coding": [{"system": codes.SNOMED, "code": "78421000", "display": "Intramuscular"}]
    }
    expect_violation(data, catalog, code="business-rule", expression=ROUTE)


def test_premedication_without_route_is_accepted(catalog: DrugCatalog) -> None:
    data = load("premed-cetirizine-oral.json")
    del data["dosageInstruction"][0]["route"]
    order = order_from_fhir(data, catalog)
    assert order.route_code is None
    assert check_order(order, catalog) == []


def test_methylprednisolone_without_based_on_must_be_iv(catalog: DrugCatalog) -> None:
    data = load("premed-methylprednisolone-contained.json")
    del data["basedOn"]
    data["dosageInstruction"][0]["route"] = {
        "coding": [{"system": codes.SNOMED, "code": codes.ROUTE_ORAL}]
    }
    expect_violation(data, catalog, code="business-rule", expression=ROUTE)


def test_bad_status_code(catalog: DrugCatalog) -> None:
    data = base()
    data["status"] = "ready-to-go"
    expect_error(data, catalog, code="code-invalid", expression="MedicationRequest.status")


def test_bad_intent_code(catalog: DrugCatalog) -> None:
    data = base()
    data["intent"] = "wish"
    expect_error(data, catalog, code="code-invalid", expression="MedicationRequest.intent")


def test_bad_period_unit(catalog: DrugCatalog) -> None:
    data = base()
    data["dosageInstruction"][0]["timing"]["repeat"]["periodUnit"] = "week"
    expect_error(
        data,
        catalog,
        code="code-invalid",
        expression="MedicationRequest.dosageInstruction[0].timing.repeat.periodUnit",
    )


def test_duration_without_unit(catalog: DrugCatalog) -> None:
    data = base()
    del data["dosageInstruction"][0]["timing"]["repeat"]["durationUnit"]
    expect_error(
        data,
        catalog,
        code="required",
        expression="MedicationRequest.dosageInstruction[0].timing.repeat.durationUnit",
    )


def test_non_numeric_version_id(catalog: DrugCatalog) -> None:
    data = base()
    data["meta"]["versionId"] = "v3-abc"
    expect_error(data, catalog, code="value", expression="MedicationRequest.meta.versionId")


def test_bsa_in_wrong_unit(catalog: DrugCatalog) -> None:
    data = load("mitoxantrone-bsa.json")
    data["contained"][0]["valueQuantity"].update({"unit": "cm2", "code": "cm2"})
    expect_error(
        data,
        catalog,
        code="code-invalid",
        expression="MedicationRequest.contained[0].valueQuantity",
    )


def test_several_problems_reported_together(catalog: DrugCatalog) -> None:
    data = base()
    data["status"] = "ready-to-go"
    data["subject"] = {"reference": "Group/cohort-1"}
    dose_of(data)["system"] = "http://example.org/units"
    data["dosageInstruction"][0]["timing"]["repeat"]["periodUnit"] = "week"
    with pytest.raises(MappingError) as info:
        order_from_fhir(data, catalog)
    assert set(info.value.expressions) >= {
        "MedicationRequest.status",
        "MedicationRequest.subject",
        DOSE,
        "MedicationRequest.dosageInstruction[0].timing.repeat.periodUnit",
    }
    outcome = info.value.to_operation_outcome()
    assert outcome["resourceType"] == "OperationOutcome"
    assert len(outcome["issue"]) == len(info.value.issues)


def test_several_rule_violations_reported_together(catalog: DrugCatalog) -> None:
    data = base()
    dose_of(data)["value"] = -1
    data["dosageInstruction"][0]["route"] = {
        "coding": [{"system": codes.SNOMED, "code": codes.ROUTE_ORAL}]
    }
    issues = expect_violation(data, catalog, code="value", expression=DOSE)
    assert [(i.code, i.expression) for i in issues] == [
        ("value", (DOSE,)),
        ("business-rule", (ROUTE,)),
    ]
    outcome = MappingError(issues).to_operation_outcome()
    assert len(outcome["issue"]) == 2


def test_mapper_reads_structure_only(catalog: DrugCatalog) -> None:
    """A well-formed order that breaks every rule maps; check_order refuses it."""
    data = base()
    dose_of(data).update({"value": -600, "unit": "mL", "code": "mL"})
    data["dosageInstruction"][0]["route"] = {
        "coding": [{"system": codes.SNOMED, "code": codes.ROUTE_ORAL}]
    }
    order = order_from_fhir(data, catalog)
    assert order.dose == Quantity(value=-600, unit="mL")
    assert order.route_code == codes.ROUTE_ORAL
    assert {v.element for v in check_order(order, catalog)} == {
        "dose.value",
        "dose.unit",
        "route_code",
    }


def test_structure_problems_come_without_rule_problems(catalog: DrugCatalog) -> None:
    """When the structure is broken there is no order to check: only structure issues."""
    data = base()
    data["status"] = "ready-to-go"
    dose_of(data)["value"] = -1
    with pytest.raises(MappingError) as info:
        order_from_fhir(data, catalog)
    assert info.value.expressions == ["MedicationRequest.status"]


@pytest.mark.parametrize(
    "coding",
    [
        {"system": "http://hl7.org/fhir/sid/ndc", "code": "50242-0554-01"},  # Ocrevus Zunovo (SC)
        {"system": codes.RXNORM, "code": "UNVERIFIED-ublituximab-xiiy"},  # the placeholder
        {"system": "http://example.org/local-drugs", "code": "73150-0150-06"},  # wrong system
    ],
)
def test_unknown_or_unverified_codes_are_refused(
    coding: dict[str, Any], catalog: DrugCatalog
) -> None:
    data = base()
    data["medicationCodeableConcept"] = {"coding": [coding]}
    expect_error(
        data,
        catalog,
        code="code-invalid",
        expression="MedicationRequest.medicationCodeableConcept.coding",
    )


def test_briumvi_by_its_ten_digit_ndc_is_accepted(catalog: DrugCatalog) -> None:
    data = load("ublituximab-first-infusion.json")
    data["medicationCodeableConcept"]["coding"][0]["code"] = "73150-150-06"
    order = order_from_fhir(data, catalog)
    assert (order.drug.key, order.drug.ndc) == ("ublituximab", "73150-150-06")
    assert check_order(order, catalog) == []
