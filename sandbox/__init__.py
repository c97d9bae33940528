"""Python drivers for the sandboxes the tests and benchmarks start: HAPI FHIR (``hapi/``)."""
