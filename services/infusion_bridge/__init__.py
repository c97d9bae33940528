"""Infusion Bridge: FHIR R4 integration between an MS infusion center and the hospital EHR."""

__version__ = "0.1.0"
