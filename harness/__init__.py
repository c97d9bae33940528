"""Test and benchmark harnesses: FHIR payload builders, session timelines, and the real
processes the tests drive (PostgreSQL, the service on a socket, a rest-hook receiver,
a slow proxy). Imported by ``tests/`` and ``bench/``; never by the service."""
