"""The drug catalog (``contracts/drug-catalog.json``): which drugs the service recognises, and
the label facts the rules need (regimen, premedication, rate protocols, gates, billing).

Every RxNorm code of one ingredient (IN, SCD, SBD, BN...) and every NDC package code maps to
one :class:`DrugEntry`, so a cached order matches on the ingredient whichever code the EHR
sent. Codes marked unverified never match (a placeholder must not let an order in).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from services.infusion_bridge.domain.orders import Drug

DEFAULT_CATALOG_PATH = Path(__file__).resolve().parents[3] / "contracts" / "drug-catalog.json"

CatalogClass = Literal["infusion", "premedication", "both"]
Role = Literal["infusion", "premedication"]
Gate = Literal["touch-checklist", "lvef"]
"""Drug-specific safety gates before infusion start (premedication and rate gates follow from
``premedications_required`` and ``rate_protocols``)."""


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


class NdcCode(_Frozen):
    """One NDC package code (system ``http://hl7.org/fhir/sid/ndc``), 10- or 11-digit form."""

    code: str
    display: str | None = None
    verified: bool = True
    source: str | None = None


def ndc_key(code: str) -> str:
    """An NDC as compared: the digits only (hyphens and spaces dropped)."""
    return "".join(ch for ch in code if ch.isdigit())


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
    doses: tuple[float, ...] = ()
    """The loading doses in the drug's first dose unit (ocrelizumab: 300, 300)."""


class MinutesWindow(_Frozen):
    min: float = Field(ge=0)
    max: float = Field(ge=0)


class PremedicationOption(_Frozen):
    drug: str
    """Catalog key of a drug that satisfies the requirement."""
    dose: DoseRange


class PremedicationRequirement(_Frozen):
    """A premedication the label requires before the infusion starts."""

    name: str
    """What kind of drug, e.g. ``corticosteroid``."""
    options: tuple[PremedicationOption, ...] = Field(min_length=1)
    minutes_before: MinutesWindow
    """How long before infusion start it must have been given."""
    course_days: tuple[int, ...] = ()
    """Only on these days of a course (alemtuzumab: 1, 2, 3); empty = every infusion."""


class RateStep(_Frozen):
    from_minute: float = Field(ge=0)
    """Minutes of infusion (pauses excluded) from which this step's rate is allowed."""
    max_ml_per_h: float = Field(gt=0)


class RateProtocol(_Frozen):
    """The label's step-up schedule for one dose."""

    name: str
    dose: DoseAmount
    steps: tuple[RateStep, ...] = Field(min_length=1)
    no_prior_serious_reaction: bool = False
    """Allowed only when no serious infusion reaction happened before."""

    def max_rate(self, minutes: float) -> float:
        """The highest rate allowed after ``minutes`` of infusion."""
        allowed = self.steps[0].max_ml_per_h
        for step in self.steps:
            if minutes >= step.from_minute:
                allowed = step.max_ml_per_h
        return allowed


class Billing(_Frozen):
    """The drug's HCPCS code and what one unit of it is (``per`` 1 mg, 5 mg...)."""

    hcpcs: str
    per: DoseAmount
    verified: bool = False
    administration: Literal["complex", "therapeutic"] = "complex"
    """CPT family: complex biologic (96413/96415) or therapeutic infusion (96365/96366)."""
    source: str | None = None


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
    observation_through_infusion: int | None = None
    """``observation_minutes`` apply only up to this infusion number (natalizumab: 12)."""
    lifetime_max: DoseAmount | None = None
    ndc: tuple[NdcCode, ...] = ()
    maintenance_dose: DoseAmount | None = None
    premedications_required: tuple[PremedicationRequirement, ...] = ()
    rate_protocols: tuple[RateProtocol, ...] = ()
    gates: tuple[Gate, ...] = ()
    billing: Billing | None = None
    notes: tuple[str, ...] = ()
    sources: dict[str, str] = Field(default_factory=dict)
    """Where each fact comes from (fact name -> source)."""

    @property
    def ingredient_code(self) -> str:
        return self.rxnorm[0].code

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(c.code for c in self.rxnorm)

    def observation_minutes_for(self, infusion_number: int | None) -> int:
        """Post-infusion observation for the patient's ``infusion_number``-th infusion of the
        drug (unknown number: the label's longest requirement)."""
        limit = self.observation_through_infusion
        if limit is not None and infusion_number is not None and infusion_number > limit:
            return 0
        return self.observation_minutes

    def role_for(self, *, based_on_medication_request: bool) -> Role:
        """The order role of this drug: premedication-only drugs are always premedication;
        a drug that can be both (methylprednisolone) is a premedication when its order is
        based on another MedicationRequest."""
        if self.drug_class == "premedication":
            return "premedication"
        if self.drug_class == "both" and based_on_medication_request:
            return "premedication"
        return "infusion"

    def to_drug(
        self, code: str, role: Role, *, system: Literal["rxnorm", "ndc"] = "rxnorm"
    ) -> Drug:
        """The domain :class:`Drug` for an order that carries ``code`` (an RxNorm code or an
        NDC) in the given role."""
        return Drug.model_validate(self.drug_fields(code, role, system=system))

    def drug_fields(
        self, code: str, role: Role, *, system: Literal["rxnorm", "ndc"] = "rxnorm"
    ) -> dict[str, str]:
        """The fields of :meth:`to_drug`'s :class:`Drug`, for validating it as part of a larger
        model (an order) in one go."""
        drug_class: Role = role if self.drug_class == "both" else self.drug_class
        return {"key": self.key, "name": self.name, system: code, "drug_class": drug_class}


class _Index(NamedTuple):
    """The catalog's lookups (filled once, when the catalog is read)."""

    by_code: dict[str, DrugEntry]
    """Verified RxNorm code -> drug."""
    by_key: dict[str, DrugEntry]
    codings: dict[str, RxNormCode]
    """Every catalogued RxNorm code (verified or not) -> its details."""
    by_ndc: dict[str, DrugEntry]
    """Verified NDC (digits only) -> drug."""
    drugs: dict[tuple[str, Role], Drug]
    """(verified RxNorm code, role) -> the :class:`Drug` of an order of that code and role."""


def _index(catalog: DrugCatalog) -> _Index:
    """``catalog``'s lookups, read straight from pydantic's private storage: ``self._index``
    would go through ``BaseModel.__getattr__`` (~2.7 µs, an exception raised and caught inside
    pydantic), which made each lookup cost more than the rest of an order's rule checks."""
    private = catalog.__pydantic_private__
    assert private is not None
    index: _Index = private["_index"]
    return index


class DrugCatalog(_Frozen):
    version: str
    description: str | None = None
    drugs: tuple[DrugEntry, ...]

    _index: _Index = PrivateAttr(default_factory=lambda: _Index({}, {}, {}, {}, {}))

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
        ndcs: set[str] = set()
        for drug in self.drugs:
            for n in drug.ndc:
                if ndc_key(n.code) in ndcs:
                    raise ValueError(f"NDC {n.code} listed twice (drug {drug.key!r})")
                ndcs.add(ndc_key(n.code))
        for drug in self.drugs:
            for req in drug.premedications_required:
                for option in req.options:
                    if option.drug not in keys:
                        raise ValueError(f"{drug.key}: premedication {option.drug!r} is unknown")
        return self

    def model_post_init(self, _context: object) -> None:
        index = _index(self)
        for drug in self.drugs:
            index.by_key[drug.key] = drug
            for c in drug.rxnorm:
                if c.verified:
                    index.by_code[c.code] = drug
                    for role in get_args(Role):
                        index.drugs[c.code, role] = drug.to_drug(c.code, role)
                index.codings[c.code] = c
            for n in drug.ndc:
                if n.verified:
                    index.by_ndc[ndc_key(n.code)] = drug

    def by_rxnorm(self, code: str) -> DrugEntry | None:
        """The drug a verified RxNorm code (ingredient or product) belongs to."""
        return _index(self).by_code.get(code)

    def drug(self, entry: DrugEntry, code: str, role: Role) -> Drug:
        """``entry.to_drug(code, role)``: for a verified RxNorm ``code`` of ``entry`` the one
        built when the catalog was read (a :class:`Drug` is immutable)."""
        drug = _index(self).drugs.get((code, role))
        if drug is None or drug.key != entry.key:
            return entry.to_drug(code, role)
        return drug

    def by_ndc(self, code: str) -> DrugEntry | None:
        """The drug a verified NDC belongs to (10- or 11-digit, with or without hyphens)."""
        return _index(self).by_ndc.get(ndc_key(code))

    def by_code(self, code: str) -> DrugEntry | None:
        """A drug by catalog key, verified RxNorm code or NDC (how nurses may name one)."""
        return self.by_key(code) or self.by_rxnorm(code) or self.by_ndc(code)

    def by_key(self, key: str) -> DrugEntry | None:
        return _index(self).by_key.get(key)

    def rxnorm_code(self, code: str) -> RxNormCode | None:
        """Details (term type, display) of one catalogued RxNorm code."""
        return _index(self).codings.get(code)


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
