"""Turn a write-back transaction Bundle into the resources the service serves on its own
``/fhir`` base: each gets the id from its ``urn:uuid`` fullUrl, and ``urn:uuid`` references
become ``Type/id``. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

Json = dict[str, Any]


def local_resources(bundle: Json) -> list[Json]:
    """The Bundle's resources with local ids and resolved references, in Bundle order."""
    ids: dict[str, str] = {}
    for entry in bundle.get("entry") or []:
        full_url = str(entry.get("fullUrl") or "")
        if full_url.startswith("urn:uuid:"):
            ids[full_url] = (
                f"{entry['resource']['resourceType']}/{full_url.removeprefix('urn:uuid:')}"
            )
    out = []
    for entry in bundle.get("entry") or []:
        resource = _rewrite(orjson.loads(orjson.dumps(entry["resource"])), ids)  # a fast deep copy
        full_url = str(entry.get("fullUrl") or "")
        if full_url in ids:
            resource["id"] = ids[full_url].split("/", 1)[1]
        out.append(resource)
    return out


def effective_time(resource: Json) -> datetime | None:
    """When the resource happened: ``effective[x]``/``performed[x]``/``date``/``period.start``."""
    for key in ("effectiveDateTime", "performedDateTime", "date"):
        if isinstance(resource.get(key), str):
            return datetime.fromisoformat(resource[key])
    for key in ("effectivePeriod", "period"):
        start = (resource.get(key) or {}).get("start")
        if isinstance(start, str):
            return datetime.fromisoformat(start)
    return None


def category_codes(resource: Json) -> list[str]:
    return [
        str(c.get("code"))
        for cat in resource.get("category") or []
        for c in (cat.get("coding") or [])
        if c.get("code")
    ]


def _rewrite(node: Any, ids: dict[str, str]) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in ids:
                node[key] = ids[value]
            else:
                _rewrite(value, ids)
    elif isinstance(node, list):
        for item in node:
            _rewrite(item, ids)
    return node
