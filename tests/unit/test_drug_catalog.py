"""contracts/drug-catalog.json: loads, is consistent, and has the six infusion drugs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.infusion_bridge.domain.catalog import (
    DEFAULT_CATALOG_PATH,
    DrugCatalog,
    load_catalog,
)

REPO = Path(__file__).resolve().parents[2]


def test_default_path_is_the_contract_file() -> None:
    assert DEFAULT_CATALOG_PATH == REPO / "contracts" / "drug-catalog.json"
    assert DEFAULT_CATALOG_PATH.is_file()


def test_default_catalog_is_cached() -> None:
    assert load_catalog() is load_catalog()


def test_explicit_path_loads_the_same_content() -> None:
    assert load_catalog(DEFAULT_CATALOG_PATH) == load_catalog()


def test_codes_are_unique_across_drugs() -> None:
    counts = Counter(c.code for d in load_catalog().drugs for c in d.rxnorm)
    assert [code for code, n in counts.items() if n > 1] == []


def test_keys_are_unique() -> None:
    keys = [d.key for d in load_catalog().drugs]
    assert len(keys) == len(set(keys))


def test_duplicate_code_is_rejected(tmp_path: Path) -> None:
    data = json.loads(DEFAULT_CATALOG_PATH.read_text())
    data["drugs"][1]["rxnorm"].append(dict(data["drugs"][0]["rxnorm"][0]))
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValidationError, match="listed twice"):
        load_catalog(path)


@pytest.mark.parametrize(
    ("key", "ingredient", "interval_weeks", "observation_minutes", "units"),
    [
        ("ocrelizumab", "1876366", 24, 60, ("mg",)),
        ("natalizumab", "354770", 4, 60, ("mg",)),
        ("ublituximab", None, 24, 60, ("mg",)),
        ("alemtuzumab", "117055", 52, 120, ("mg",)),
        ("mitoxantrone", "7005", 13, 0, ("mg/m2", "mg")),
        ("methylprednisolone", "6902", None, 0, ("mg", "mg/kg")),
    ],
)
def test_six_infusion_drugs(
    key: str,
    ingredient: str | None,
    interval_weeks: int | None,
    observation_minutes: int,
    units: tuple[str, ...],
) -> None:
    catalog = load_catalog()
    entry = catalog.by_key(key)
    assert entry is not None
    assert entry.drug_class == ("both" if key == "methylprednisolone" else "infusion")
    assert entry.default_interval_weeks == interval_weeks
    assert entry.observation_minutes == observation_minutes
    assert entry.dose_units == units
    assert entry.rxnorm[0].tty == "IN"
    if ingredient is not None:
        assert entry.ingredient_code == ingredient
        assert catalog.by_rxnorm(ingredient) is entry
    for code in entry.rxnorm:
        assert catalog.by_rxnorm(code.code) is (entry if code.verified else None)


def test_product_codes_map_to_their_ingredient() -> None:
    catalog = load_catalog()
    for code in ("1594658", "1594663", "1594659", "1594657", "1594660"):
        entry = catalog.by_rxnorm(code)
        assert entry is not None
        assert entry.key == "alemtuzumab"
    mitoxantrone = catalog.by_rxnorm("197989")
    assert mitoxantrone is not None
    assert mitoxantrone.key == "mitoxantrone"
    for code in ("1743704", "1743707", "1743720", "207191", "311659"):
        entry = catalog.by_rxnorm(code)
        assert entry is not None
        assert entry.key == "methylprednisolone"
    assert catalog.by_rxnorm("121191") is None  # rituximab: not an MS infusion here


def test_mitoxantrone_lifetime_maximum() -> None:
    entry = load_catalog().by_key("mitoxantrone")
    assert entry is not None
    assert entry.lifetime_max is not None
    assert (entry.lifetime_max.value, entry.lifetime_max.unit) == (140, "mg/m2")


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("diphenhydramine", "3498"),
        ("cetirizine", "20610"),
        ("acetaminophen", "161"),
        ("famotidine", "4278"),
        ("dexamethasone", "3264"),
        ("acyclovir", "281"),
    ],
)
def test_premedications(key: str, code: str) -> None:
    entry = load_catalog().by_rxnorm(code)
    assert entry is not None
    assert entry.key == key
    assert entry.drug_class == "premedication"


def test_unverified_codes_are_flagged_and_not_numeric() -> None:
    """A code nobody could confirm must not be able to match a real RxNorm code."""
    for entry in load_catalog().drugs:
        for code in entry.rxnorm:
            if not code.verified:
                assert not code.code.isdigit()
                assert code.source


def test_roles() -> None:
    catalog = load_catalog()
    mp = catalog.by_key("methylprednisolone")
    ocr = catalog.by_key("ocrelizumab")
    cet = catalog.by_key("cetirizine")
    assert mp is not None
    assert ocr is not None
    assert cet is not None
    assert mp.role_for(based_on_medication_request=True) == "premedication"
    assert mp.role_for(based_on_medication_request=False) == "infusion"
    assert ocr.role_for(based_on_medication_request=True) == "infusion"
    assert cet.role_for(based_on_medication_request=False) == "premedication"
    assert mp.to_drug("6902", "premedication").drug_class == "premedication"


def test_typical_doses_use_an_allowed_unit() -> None:
    for entry in load_catalog().drugs:
        if entry.typical_dose is not None:
            assert entry.typical_dose.unit in entry.dose_units
            assert 0 < entry.typical_dose.low <= entry.typical_dose.high


def test_catalog_model_is_strict() -> None:
    with pytest.raises(ValidationError):
        DrugCatalog.model_validate({"version": "x", "drugs": [], "unexpected": 1})


@pytest.mark.parametrize(
    ("ndc", "key"),
    [
        ("73150-0150-06", "ublituximab"),
        ("73150-150-06", "ublituximab"),
        ("73150015006", "ublituximab"),
        ("50242-0150-01", "ocrelizumab"),
        ("50242-150-01", "ocrelizumab"),
    ],
)
def test_drugs_are_recognised_by_verified_ndc(ndc: str, key: str) -> None:
    entry = load_catalog().by_ndc(ndc)
    assert entry is not None
    assert entry.key == key


def test_unknown_ndc_and_the_unverified_rxnorm_placeholder_match_nothing() -> None:
    catalog = load_catalog()
    assert catalog.by_ndc("50242-0554-01") is None  # Ocrevus Zunovo (SC): not in the catalog
    assert catalog.by_rxnorm("UNVERIFIED-ublituximab-xiiy") is None


def test_premedication_requirements_name_catalogued_premedications() -> None:
    catalog = load_catalog()
    ocr = catalog.by_key("ocrelizumab")
    assert ocr is not None
    assert [r.name for r in ocr.premedications_required] == ["corticosteroid", "antihistamine"]
    for entry in catalog.drugs:
        for req in entry.premedications_required:
            for option in req.options:
                found = catalog.by_key(option.drug)
                assert found is not None
                assert found.drug_class in ("premedication", "both")


def test_observation_minutes_by_infusion_number() -> None:
    catalog = load_catalog()
    nat, ubl, ocr = (catalog.by_key(k) for k in ("natalizumab", "ublituximab", "ocrelizumab"))
    assert nat is not None
    assert ubl is not None
    assert ocr is not None
    assert [nat.observation_minutes_for(n) for n in (1, 12, 13)] == [60, 60, 0]
    assert [ubl.observation_minutes_for(n) for n in (1, 2, 3)] == [60, 60, 0]
    assert ocr.observation_minutes_for(40) == 60


def test_rate_protocol_steps() -> None:
    ocr = load_catalog().by_key("ocrelizumab")
    assert ocr is not None
    option1 = ocr.rate_protocols[1]
    assert [option1.max_rate(m) for m in (0, 29, 30, 125)] == [40, 40, 80, 200]
