"""The drug catalog (``contracts/drug-catalog.json``): which drugs the service recognises.

Every RxNorm code of one ingredient (IN, SCD, SBD, BN...) maps to one :class:`DrugEntry`, so a
cached order matches on the ingredient whichever code the EHR sent.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from services.infusion_bridge.domain.orders import Drug

DEFAULT_CATALOG_PATH = Path(__file__).resolve().parents[3] / "contracts" / "drug-catalog.json"

CatalogClass = Literal["infusion", "premedication", "both"]
Role = Literal["infusion", "premedication"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RxNormCode(_Frozen):
    """One RxNorm concept of a drug."""

    code: str
    tty: str | None = None
    """RxNorm term type (IN, SCD, SBD, BN, SCDC, SBDC) when known."""
    display: str | None = None
    """The RxNorm name, only where a source confirmed it (used as ``Coding.display``)."""
    verified: bool = True
    """False when the code could not be confirmed against a public source."""
    source: str | None = None


class DoseAmount(_Frozen):
    value: float
    unit: str
    """UCUM code."""


class DoseRange(_Frozen):
    """A sanity hint, not a hard limit."""

    low: float
    high: float
    unit: str


class InitialDoses(_Frozen):
    """A loading regimen: the first ``count`` doses come ``weeks_apart`` apart."""

    count: int = Field(ge=2)
    weeks_apart: float = Field(gt=0)
    note: str | None = None


class DrugEntry(_Frozen):
    key: str
    """Stable internal key, e.g. ``ocrelizumab``."""
    name: str
    brands: tuple[str, ...] = ()
    drug_class: CatalogClass
    rxnorm: tuple[RxNormCode, ...] = Field(min_length=1)
    """The ingredient (IN) first, then products."""
    dose_units: tuple[str, ...] = Field(min_length=1)
    """UCUM codes a dose of this drug may be ordered in."""
    typical_dose: DoseRange | None = None
    default_interval_weeks: float | None = None
    """Usual interval between maintenance doses / courses; None when not scheduled."""
    min_interval_weeks: float | None = None
    initial_doses: InitialDoses | None = None
    course_days: tuple[int, ...] = ()
    """Daily doses per course (alemtuzumab: 5, then 3); courses are the interval apart."""
    observation_minutes: int = 0
    """Post-infusion observation time."""
    observation_note: str | None = None
    lifetime_max: DoseAmount | None = None
    notes: tuple[str, ...] = ()
    sources: dict[str, str] = Field(default_factory=dict)
    """Where each fact comes from (fact name -> source)."""

    @property
    def ingredient_code(self) -> str:
        return self.rxnorm[0].code

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(c.code for c in self.rxnorm)

    def role_for(self, *, based_on_medication_request: bool) -> Role:
        """The order role of this drug: premedication-only drugs are always premedication;
        a drug that can be both (methylprednisolone) is a premedication when its order is
        based on another MedicationRequest."""
        if self.drug_class == "premedication":
            return "premedication"
        if self.drug_class == "both" and based_on_medication_request:
            return "premedication"
        return "infusion"

    def to_drug(self, rxnorm: str, role: Role) -> Drug:
        """The domain :class:`Drug` for an order that carries ``rxnorm`` in the given role."""
        drug_class: Role = role if self.drug_class == "both" else self.drug_class
        return Drug(key=self.key, name=self.name, rxnorm=rxnorm, drug_class=drug_class)


class DrugCatalog(_Frozen):
    version: str
    description: str | None = None
    drugs: tuple[DrugEntry, ...]

    _by_code: dict[str, DrugEntry] = PrivateAttr(default_factory=dict)
    _by_key: dict[str, DrugEntry] = PrivateAttr(default_factory=dict)
    _codings: dict[str, RxNormCode] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> DrugCatalog:
        keys: set[str] = set()
        codes: set[str] = set()
        for drug in self.drugs:
            if drug.key in keys:
                raise ValueError(f"duplicate drug key {drug.key!r}")
            keys.add(drug.key)
            for c in drug.rxnorm:
                if c.code in codes:
                    raise ValueError(f"RxNorm code {c.code} listed twice (drug {drug.key!r})")
                codes.add(c.code)
        return self

    def model_post_init(self, _context: object) -> None:
        for drug in self.drugs:
            self._by_key[drug.key] = drug
            for c in drug.rxnorm:
                self._by_code[c.code] = drug
                self._codings[c.code] = c

    def by_rxnorm(self, code: str) -> DrugEntry | None:
        """The drug an RxNorm code (ingredient or product) belongs to."""
        return self._by_code.get(code)

    def by_key(self, key: str) -> DrugEntry | None:
        return self._by_key.get(key)

    def rxnorm_code(self, code: str) -> RxNormCode | None:
        """Details (term type, display) of one catalogued RxNorm code."""
        return self._codings.get(code)


def _read(path: Path) -> DrugCatalog:
    return DrugCatalog.model_validate_json(path.read_bytes())


@lru_cache(maxsize=1)
def _default_catalog() -> DrugCatalog:
    return _read(DEFAULT_CATALOG_PATH)


def load_catalog(path: Path | None = None) -> DrugCatalog:
    """Load the catalog; the default file (``contracts/drug-catalog.json``) is read once."""
    if path is None:
        return _default_catalog()
    return _read(path)
