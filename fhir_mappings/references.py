"""References a stored resource must not keep: ``urn:uuid:``/``urn:oid:`` placeholders.

A placeholder only means something inside the transaction Bundle that defines it (as an
entry's ``fullUrl``); one still there after the Bundle's references were rewritten points
nowhere, so the resource is refused (R4 bundle.html#references).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from .operation_outcome import Issue

PLACEHOLDER_PREFIXES = ("urn:uuid:", "urn:oid:")
_PLACEHOLDER_STRING = re.compile(
    b'"(?:' + b"|".join(re.escape(p.encode()) for p in PLACEHOLDER_PREFIXES) + b")"
)
"""A JSON string that starts like a placeholder (one scan; two ``in`` tests cost twice as
much, JSON being full of the ``"`` they start with)."""


def unresolved_references(resource: dict[str, Any]) -> list[Issue]:
    """One issue per ``reference`` that is still a placeholder, naming its element."""
    if _PLACEHOLDER_STRING.search(orjson.dumps(resource)) is None:
        return []  # the common case, found in C: no string starts like a placeholder
    root = str(resource.get("resourceType") or "Resource")
    return [
        Issue(
            "invalid",
            f"reference {ref!r} does not resolve: a urn:uuid/urn:oid reference must name "
            "the fullUrl of another entry of the same transaction Bundle",
            (path,),
        )
        for path, ref in _references(resource, root)
        if ref.startswith(PLACEHOLDER_PREFIXES)
    ]


def _references(node: Any, path: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                found.append((f"{path}.reference", value))
            elif isinstance(value, dict | list):
                found += _references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _references(item, f"{path}[{i}]")
    return found
