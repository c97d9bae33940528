"""Pure FHIR R4 <-> domain mappings: no I/O, no clock, no settings."""
