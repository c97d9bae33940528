"""``history`` Bundles (http.html#history): every version of a resource, newest first."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from ..read_models import OrderVersion
from .fhir_io import base_url, fhir_instant, read_headers

Json = dict[str, Any]


def history_bundle(request: Request, versions: list[OrderVersion]) -> Json:
    base = base_url(request)
    return {
        "resourceType": "Bundle",
        "type": "history",
        "total": len(versions),
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": [_entry(base, v) for v in versions],
    }


def _entry(base: str, v: OrderVersion) -> Json:
    url = f"MedicationRequest/{v.id}"
    headers = read_headers(v.version_id, v.last_updated)
    response = {
        "status": (
            "204 No Content" if v.deleted else "201 Created" if v.version_id == 1 else "200 OK"
        ),
        "etag": headers["ETag"],
        "lastModified": fhir_instant(v.last_updated),
    }
    entry: Json = {"fullUrl": f"{base}/{url}"}
    if v.deleted:
        entry["request"] = {"method": "DELETE", "url": url}
    else:
        entry["resource"] = v.resource
        entry["request"] = {"method": "POST" if v.version_id == 1 else "PUT", "url": url}
    entry["response"] = response
    return entry
