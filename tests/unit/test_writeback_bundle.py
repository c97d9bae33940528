"""writeback_bundle (the write-back Bundle sent to the EHR): goldens, structure, references,
codes, status mapping.

Regenerate the goldens after an intended change with
``UPDATE_GOLDENS=1 .venv/bin/pytest tests/unit/test_writeback_bundle.py`` and review the diff.
"""

from __future__ import annotations

import importlib
import json
import os
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings.medication_request import order_from_fhir
from fhir_mappings.writeback_bundle import writeback_bundle
from services.infusion_bridge.domain.catalog import load_catalog
from services.infusion_bridge.domain.orders import InfusionOrder, Quantity
from services.infusion_bridge.domain.session_events import (
    CheckIn,
    Discharge,
    InfusionEnd,
    InfusionStart,
    IvInsertion,
    NotDone,
    ObservationStart,
    Pause,
    Premedication,
    RateChange,
    Reaction,
    Resume,
    SessionEvent,
    Stop,
    Vitals,
)
from services.infusion_bridge.domain.sessions import InfusionSession, SessionState, record

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = ROOT / "tests" / "golden"
ORDER_FIXTURE = ROOT / "tests" / "fixtures" / "orders" / "ocrelizumab-initial-day1-day15.json"
SYSTEM = "https://infusion-bridge.example-hospital.org/fhir/sid/session-record"
PREMED_ORDERS = {"methylprednisolone": "premed-mp-1001", "diphenhydramine": "premed-dph-1001"}
TZ = timezone(timedelta(hours=1))  # a non-UTC offset on purpose
DAY = datetime(2025, 3, 3, tzinfo=TZ)
NURSE = "RN Maria Keller"


def at(hhmm: str) -> datetime:
    hours, minutes = hhmm.split(":")
    return DAY.replace(hour=int(hours), minute=int(minutes))


def order() -> InfusionOrder:
    return order_from_fhir(json.loads(ORDER_FIXTURE.read_text()), load_catalog())


def build(session_id: str, events: Sequence[SessionEvent]) -> InfusionSession:
    """A session built through the domain's ``record`` (so the timeline is a valid one)."""
    o = order()
    session = InfusionSession(
        id=session_id,
        order_id=o.id,
        patient=o.patient,
        drug_key=o.drug.key,
        created_at=at("07:00"),
    )
    for n, event in enumerate(events, start=1):
        session = record(
            session,
            event,
            event_id=f"ev{n:02d}",
            now=event.at + timedelta(minutes=1),
            observation_minutes=60,
        )
    return session


def _start(by: str = NURSE) -> list[SessionEvent]:
    return [
        CheckIn(at=at("08:30"), by=by),
        Vitals(
            at=at("08:35"),
            by=by,
            systolic_mmhg=124,
            diastolic_mmhg=78,
            heart_rate_per_min=72,
            respiratory_rate_per_min=14,
            temperature_c=36.7,
            spo2_percent=98,
            weight_kg=68.5,
        ),
        Premedication(
            at=at("08:40"),
            by=by,
            drug="methylprednisolone",
            dose=Quantity(value=100, unit="mg"),
            route="intravenous",
        ),
        IvInsertion(at=at("08:45"), by=by, site="left antecubital fossa", gauge=20),
        Premedication(
            at=at("08:50"),
            by=by,
            drug="diphenhydramine",
            dose=Quantity(value=50, unit="mg"),
            route="intravenous",
        ),
        Premedication(
            at=at("08:50"),
            by=by,
            drug="161",  # acetaminophen by RxNorm code, no cached order
            dose=Quantity(value=650, unit="mg"),
            route="oral",
            note="patient preference: tablet",
        ),
        InfusionStart(at=at("09:20"), by=by, rate_ml_per_h=30),
        RateChange(at=at("09:50"), by=by, rate_ml_per_h=60),
    ]


def completed_session() -> InfusionSession:
    return build(
        "sess-completed-1",
        [
            *_start(),
            RateChange(at=at("10:20"), by=NURSE, rate_ml_per_h=90),
            Reaction(
                at=at("10:30"),
                by=NURSE,
                symptoms=["itching"],
                severity="mild",
                action="slowed",
                rate_ml_per_h=45,
                treatment="cetirizine 10 mg PO",
            ),
            Vitals(
                at=at("10:32"),
                by=NURSE,
                systolic_mmhg=130,
                diastolic_mmhg=82,
                heart_rate_per_min=84,
            ),
            Pause(at=at("11:00"), by=NURSE, reason="restroom"),
            Resume(at=at("11:10"), by=NURSE, rate_ml_per_h=90),
            RateChange(at=at("11:40"), by="RN Tom Berger", rate_ml_per_h=120),
            InfusionEnd(
                at=at("12:15"),
                by="RN Tom Berger",
                dose_given=Quantity(value=300, unit="mg"),
                volume_ml=250,
            ),
            ObservationStart(at=at("12:15"), by="RN Tom Berger"),
            Vitals(
                at=at("13:00"),
                by="RN Tom Berger",
                systolic_mmhg=122,
                diastolic_mmhg=76,
                heart_rate_per_min=70,
                temperature_c=36.8,
            ),
            Discharge(at=at("13:20"), by="RN Tom Berger"),
        ],
    )


def stopped_session() -> InfusionSession:
    return build(
        "sess-stopped-1",
        [
            *_start(),
            Reaction(
                at=at("10:05"),
                by=NURSE,
                symptoms=["flushing", "rash", "chills"],
                severity="severe",
                action="paused",
                treatment="methylprednisolone 125 mg IV, diphenhydramine 50 mg IV",
                note="physician at chair-side 10:07",
            ),
            Vitals(
                at=at("10:10"),
                by=NURSE,
                systolic_mmhg=98,
                diastolic_mmhg=60,
                heart_rate_per_min=118,
                spo2_percent=94,
            ),
            Stop(
                at=at("10:40"),
                by=NURSE,
                reason="severe infusion-related reaction; not restarted (physician decision)",
                dose_given=Quantity(value=31.5, unit="mg"),
                volume_ml=26.25,
            ),
        ],
    )


def not_done_session() -> InfusionSession:
    return build(
        "sess-not-done-1",
        [
            CheckIn(at=at("08:30"), by=NURSE),
            Vitals(at=at("08:35"), by=NURSE, temperature_c=38.4, heart_rate_per_min=104),
            NotDone(
                at=at("08:50"),
                by=NURSE,
                reason="active infection (fever 38.4 Cel): infusion deferred",
            ),
        ],
    )


SESSIONS: dict[str, Callable[[], InfusionSession]] = {
    "session_completed": completed_session,
    "session_stopped": stopped_session,
    "session_not_done": not_done_session,
}


def bundle_for(name: str) -> dict[str, Any]:
    return writeback_bundle(
        SESSIONS[name](),
        order(),
        load_catalog(),
        identifier_system=SYSTEM,
        premed_orders=PREMED_ORDERS,
    )


def resources(bundle: dict[str, Any], kind: str | None = None) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle["entry"]
        if kind is None or e["resource"]["resourceType"] == kind
    ]


def identifier_of(resource: dict[str, Any]) -> dict[str, Any]:
    """The business identifier (a list in most resources, 0..1 in R4 AdverseEvent)."""
    identifier = resource["identifier"]
    if resource["resourceType"] == "AdverseEvent":
        assert isinstance(identifier, dict)
        return identifier
    (only,) = identifier
    return dict(only)


def by_identifier(bundle: dict[str, Any], value: str) -> dict[str, Any]:
    for e in bundle["entry"]:
        if identifier_of(e["resource"])["value"] == value:
            return dict(e["resource"])
    raise AssertionError(f"no resource with identifier {value}")


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for v in node.values() for r in references(v)]
    if isinstance(node, list):
        return [r for v in node for r in references(v)]
    return []


# ------------------------------------------------------------------------------------------------
# goldens
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SESSIONS))
def test_matches_golden(name: str) -> None:
    bundle = bundle_for(name)
    path = GOLDEN_DIR / f"{name}.json"
    if os.environ.get("UPDATE_GOLDENS"):
        GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n")
    assert bundle == json.loads(path.read_text())


@pytest.mark.parametrize("name", sorted(SESSIONS))
def test_every_resource_parses_with_r4b_models(name: str) -> None:
    from fhir.resources.R4B.bundle import Bundle

    bundle = bundle_for(name)
    Bundle.model_validate(bundle)
    for resource in resources(bundle):
        kind = resource["resourceType"]
        module = importlib.import_module(f"fhir.resources.R4B.{kind.lower()}")
        model = getattr(module, kind).model_validate(resource)
        # round trip: nothing dropped or renamed by the R4B model
        again = json.loads(model.model_dump_json(exclude_none=True))
        assert again["resourceType"] == kind
        assert again.get("identifier") == resource["identifier"]


# ------------------------------------------------------------------------------------------------
# bundle structure, identifiers, references
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SESSIONS))
def test_identifiers_unique_stable_and_conditional(name: str) -> None:
    first, second = bundle_for(name), bundle_for(name)
    assert first == second  # deterministic: a retry sends the identical Bundle
    assert first["resourceType"] == "Bundle"
    assert first["type"] == "transaction"
    session_id = SESSIONS[name]().id
    values = []
    for entry in first["entry"]:
        resource = entry["resource"]
        identifier = identifier_of(resource)
        assert identifier["system"] == SYSTEM
        assert identifier["value"].startswith(f"{session_id}/")
        values.append(identifier["value"])
        expected_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"{SYSTEM}|{identifier['value']}")
        assert entry["fullUrl"] == f"urn:uuid:{expected_uuid}"
        assert "id" not in resource
        if resource["resourceType"] == "AdverseEvent":
            # no `identifier` search parameter on R4 AdverseEvent: matched on a tag instead
            assert resource["meta"]["tag"] == [{"system": SYSTEM, "code": identifier["value"]}]
            condition = f"_tag={SYSTEM}|{identifier['value']}"
        else:
            condition = f"identifier={SYSTEM}|{identifier['value']}"
        assert entry["request"] == {
            "method": "POST",
            "url": resource["resourceType"],
            "ifNoneExist": condition,
        }
    assert len(values) == len(set(values))
    assert len({e["fullUrl"] for e in first["entry"]}) == len(first["entry"])


@pytest.mark.parametrize("name", sorted(SESSIONS))
def test_references_resolve(name: str) -> None:
    bundle = bundle_for(name)
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    external = {"Patient/pat-4711", "MedicationRequest/ocr-initial-1001"} | {
        f"MedicationRequest/{v}" for v in PREMED_ORDERS.values()
    }
    refs = references(bundle["entry"])
    assert refs
    for ref in refs:
        assert ref in full_urls or ref in external, ref


def test_performers_are_display_only() -> None:
    bundle = bundle_for("session_completed")
    infusion = by_identifier(bundle, "sess-completed-1/administration")
    assert infusion["performer"] == [
        {"actor": {"display": NURSE}},
        {"actor": {"display": "RN Tom Berger"}},
    ]
    for resource in resources(bundle):
        assert not [r for r in references(resource) if r.startswith("Practitioner")]


def test_identifier_values_per_part() -> None:
    bundle = bundle_for("session_completed")
    values = [identifier_of(r)["value"] for r in resources(bundle)]
    s = "sess-completed-1"
    assert values[:2] == [f"{s}/encounter", f"{s}/administration"]
    assert f"{s}/premed/ev03" in values
    assert f"{s}/iv/ev04" in values
    assert f"{s}/vitals/ev02/85354-9" in values
    assert f"{s}/reaction/ev10" in values


# ------------------------------------------------------------------------------------------------
# resources
# ------------------------------------------------------------------------------------------------


def test_encounter() -> None:
    bundle = bundle_for("session_completed")
    encounter = by_identifier(bundle, "sess-completed-1/encounter")
    assert encounter["status"] == "finished"
    assert encounter["class"]["code"] == "AMB"
    assert encounter["class"]["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    assert encounter["subject"] == {"reference": "Patient/pat-4711"}
    assert encounter["period"] == {
        "start": "2025-03-03T08:30:00+01:00",
        "end": "2025-03-03T13:20:00+01:00",
    }


def test_completed_infusion_administration() -> None:
    bundle = bundle_for("session_completed")
    ma = by_identifier(bundle, "sess-completed-1/administration")
    encounter_url = bundle["entry"][0]["fullUrl"]
    assert ma["status"] == "completed"
    assert "statusReason" not in ma
    assert ma["medicationCodeableConcept"]["coding"] == [
        {
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
            "code": "1876366",
            "display": "ocrelizumab",
        }
    ]
    assert ma["context"] == {"reference": encounter_url}
    assert ma["request"] == {"reference": "MedicationRequest/ocr-initial-1001"}
    assert ma["effectivePeriod"] == {
        "start": "2025-03-03T09:20:00+01:00",
        "end": "2025-03-03T12:15:00+01:00",
    }
    dosage = ma["dosage"]
    assert dosage["route"]["coding"][0]["code"] == "47625008"
    assert dosage["dose"] == {
        "value": 300,
        "unit": "mg",
        "system": "http://unitsofmeasure.org",
        "code": "mg",
    }
    assert dosage["rateQuantity"] == {
        "value": 120,
        "unit": "mL/h",
        "system": "http://unitsofmeasure.org",
        "code": "mL/h",
    }
    assert dosage["text"] == (
        "30 mL/h -> 60 mL/h -> 90 mL/h -> 45 mL/h -> 90 mL/h -> 120 mL/h; "
        "paused 11:00-11:10; 250 mL infused"
    )
    assert any("Infusion-related reaction: itching" in n["text"] for n in ma["note"])


def test_stopped_infusion_administration() -> None:
    bundle = bundle_for("session_stopped")
    ma = by_identifier(bundle, "sess-stopped-1/administration")
    assert ma["status"] == "stopped"
    assert ma["statusReason"] == [
        {"text": "severe infusion-related reaction; not restarted (physician decision)"}
    ]
    assert ma["dosage"]["dose"]["value"] == 31.5
    assert ma["effectivePeriod"]["end"] == "2025-03-03T10:40:00+01:00"
    assert ma["dosage"]["text"] == "30 mL/h -> 60 mL/h; paused from 10:05; 26.25 mL infused"


def test_not_done_administration_and_encounter() -> None:
    bundle = bundle_for("session_not_done")
    ma = by_identifier(bundle, "sess-not-done-1/administration")
    assert ma["status"] == "not-done"
    assert ma["statusReason"] == [{"text": "active infection (fever 38.4 Cel): infusion deferred"}]
    assert ma["effectiveDateTime"] == "2025-03-03T08:50:00+01:00"
    assert "effectivePeriod" not in ma
    assert "dosage" not in ma  # nothing given (mad-1 would need a dose or a rate)
    assert by_identifier(bundle, "sess-not-done-1/encounter")["status"] == "finished"
    assert {r["resourceType"] for r in resources(bundle)} == {
        "Encounter",
        "MedicationAdministration",
        "Observation",
    }


def test_not_done_before_check_in_cancels_the_encounter() -> None:
    session = build("sess-no-show", [NotDone(at=at("09:00"), reason="patient did not come")])
    bundle = writeback_bundle(session, order(), load_catalog(), identifier_system=SYSTEM)
    assert resources(bundle, "Encounter")[0]["status"] == "cancelled"


def test_reaction_that_stops_the_infusion() -> None:
    session = build(
        "sess-anaphylaxis",
        [
            *_start(),
            Reaction(
                at=at("10:00"),
                by=NURSE,
                symptoms=["hives", "nausea"],
                severity="life-threatening",
                action="stopped",
                treatment="epinephrine IM",
            ),
        ],
    )
    assert session.state is SessionState.STOPPED
    bundle = writeback_bundle(session, order(), load_catalog(), identifier_system=SYSTEM)
    ma = by_identifier(bundle, "sess-anaphylaxis/administration")
    assert ma["status"] == "stopped"
    assert ma["statusReason"][0]["text"].startswith("infusion-related reaction (life-threatening)")
    assert "dose" not in ma["dosage"]
    assert ma["dosage"]["rateQuantity"]["value"] == 60
    (ae,) = resources(bundle, "AdverseEvent")
    assert ae["seriousness"]["coding"][0]["code"] == "Serious"
    assert ae["severity"]["coding"][0]["code"] == "severe"
    assert "coding" not in ae["event"]


def test_premedications() -> None:
    bundle = bundle_for("session_completed")
    mp = by_identifier(bundle, "sess-completed-1/premed/ev03")
    assert mp["status"] == "completed"
    assert mp["medicationCodeableConcept"]["coding"][0]["code"] == "6902"
    assert mp["request"] == {"reference": "MedicationRequest/premed-mp-1001"}
    assert mp["effectiveDateTime"] == "2025-03-03T08:40:00+01:00"
    assert mp["dosage"]["route"]["coding"][0]["code"] == "47625008"
    assert mp["dosage"]["dose"]["value"] == 100
    assert "partOf" not in mp
    apap = by_identifier(bundle, "sess-completed-1/premed/ev06")
    assert apap["medicationCodeableConcept"]["coding"][0]["code"] == "161"
    assert apap["dosage"]["route"]["coding"][0]["code"] == "26643006"
    assert "request" not in apap


VITAL_CODES = {
    "85354-9": ("bp", None),
    "8867-4": ("heartrate", "/min"),
    "9279-1": ("resprate", "/min"),
    "8310-5": ("bodytemp", "Cel"),
    "2708-6": ("oxygensat", "%"),
    "29463-7": ("bodyweight", "kg"),
}


def test_vital_sign_observations() -> None:
    bundle = bundle_for("session_completed")
    administration_url = bundle["entry"][1]["fullUrl"]
    encounter_url = bundle["entry"][0]["fullUrl"]
    observations = resources(bundle, "Observation")
    baseline = [o for o in observations if "/vitals/ev02/" in o["identifier"][0]["value"]]
    assert len(baseline) == 6
    for obs in observations:
        code = obs["identifier"][0]["value"].rsplit("/", 1)[-1]
        profile, unit = VITAL_CODES[code]
        assert obs["meta"]["profile"] == [f"http://hl7.org/fhir/StructureDefinition/{profile}"]
        assert obs["status"] == "final"
        assert obs["category"][0]["coding"][0] == {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
            "display": "Vital Signs",
        }
        assert obs["code"]["coding"][0]["system"] == "http://loinc.org"
        assert obs["code"]["coding"][0]["code"] == code
        assert obs["subject"] == {"reference": "Patient/pat-4711"}
        assert obs["encounter"] == {"reference": encounter_url}
        assert obs["partOf"] == [{"reference": administration_url}]
        if unit is None:
            assert "valueQuantity" not in obs
            assert [c["code"]["coding"][0]["code"] for c in obs["component"]] == [
                "8480-6",
                "8462-4",
            ]
            for component in obs["component"]:
                assert component["valueQuantity"]["code"] == "mm[Hg]"
                assert component["valueQuantity"]["system"] == "http://unitsofmeasure.org"
        else:
            assert obs["valueQuantity"]["code"] == unit
            assert obs["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    spo2 = next(o for o in baseline if o["code"]["coding"][0]["code"] == "2708-6")
    assert [c["code"] for c in spo2["code"]["coding"]] == ["2708-6", "59408-5"]
    bp = next(o for o in baseline if o["code"]["coding"][0]["code"] == "85354-9")
    assert [c["valueQuantity"]["value"] for c in bp["component"]] == [124, 78]
    temp = next(o for o in baseline if o["code"]["coding"][0]["code"] == "8310-5")
    assert temp["valueQuantity"]["value"] == 36.7


def test_adverse_event() -> None:
    bundle = bundle_for("session_completed")
    ae = by_identifier(bundle, "sess-completed-1/reaction/ev10")
    assert ae["actuality"] == "actual"
    assert ae["event"] == {
        "coding": [{"system": "http://snomed.info/sct", "code": "418363000", "display": "Itching"}],
        "text": "Infusion-related reaction: itching; action: slowed to 45 mL/h; "
        "treatment: cetirizine 10 mg PO",
    }
    assert ae["date"] == "2025-03-03T10:30:00+01:00"
    assert ae["recordedDate"] == "2025-03-03T10:31:00+01:00"
    assert ae["seriousness"]["coding"][0]["code"] == "Non-serious"
    assert ae["severity"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/adverse-event-severity",
        "code": "mild",
        "display": "Mild",
    }
    assert ae["suspectEntity"] == [{"instance": {"reference": bundle["entry"][1]["fullUrl"]}}]

    severe = resources(bundle_for("session_stopped"), "AdverseEvent")[0]
    assert severe["seriousness"]["coding"][0]["code"] == "Serious"
    assert "coding" not in severe["event"]  # several symptoms: text only
    assert severe["event"]["text"].startswith(
        "Infusion-related reaction: flushing, rash, chills; action: paused; treatment: "
    )


def test_iv_procedure() -> None:
    procedure = by_identifier(bundle_for("session_completed"), "sess-completed-1/iv/ev04")
    assert procedure["status"] == "completed"
    assert procedure["code"]["coding"] == [
        {"system": "http://snomed.info/sct", "code": "392231009"}
    ]
    assert procedure["performedDateTime"] == "2025-03-03T08:45:00+01:00"
    assert procedure["bodySite"] == [{"text": "left antecubital fossa"}]
    assert procedure["note"] == [{"text": "20 G peripheral IV catheter"}]


# ------------------------------------------------------------------------------------------------
# refusals
# ------------------------------------------------------------------------------------------------


def test_refuses_states_that_are_not_delivered() -> None:
    running = build("sess-running", _start())
    with pytest.raises(ValueError, match="infusing"):
        writeback_bundle(running, order(), load_catalog(), identifier_system=SYSTEM)
    cancelled = running.model_copy(update={"state": SessionState.CANCELLED})
    with pytest.raises(ValueError, match="cancelled"):
        writeback_bundle(cancelled, order(), load_catalog(), identifier_system=SYSTEM)


def test_refuses_another_order_or_patient() -> None:
    session = completed_session()
    with pytest.raises(ValueError, match="order"):
        writeback_bundle(
            session.model_copy(update={"order_id": "other"}),
            order(),
            load_catalog(),
            identifier_system=SYSTEM,
        )
    with pytest.raises(ValueError, match="patient"):
        writeback_bundle(
            session.model_copy(update={"patient": "Patient/someone-else"}),
            order(),
            load_catalog(),
            identifier_system=SYSTEM,
        )


def test_refuses_inconsistent_timeline() -> None:
    session = not_done_session().model_copy(update={"state": SessionState.DISCHARGED})
    with pytest.raises(ValueError, match="infusion-start"):
        writeback_bundle(session, order(), load_catalog(), identifier_system=SYSTEM)


def test_unverified_rxnorm_code_is_text_only() -> None:
    o = order()
    catalog = load_catalog()
    entry = catalog.by_key("ublituximab")
    assert entry is not None
    drug = entry.to_drug(entry.ingredient_code, "infusion")
    bundle = writeback_bundle(
        not_done_session(), o.model_copy(update={"drug": drug}), catalog, identifier_system=SYSTEM
    )
    ma = resources(bundle, "MedicationAdministration")[0]
    assert ma["medicationCodeableConcept"] == {"text": "ublituximab-xiiy"}
