"""The service's public key set, for registering it as a backend service at an EHR."""

from __future__ import annotations

from typing import Any

from ..runtime import Runtime


def public_key_set(rt: Runtime) -> dict[str, Any]:
    """A JWKS (RFC 7517) of the keys that sign this service's client assertions."""
    return {"keys": list(rt.public_keys)}
