"""The EHR gateway: an httpx-based FHIR R4 client and its errors."""
