"""Searches that gather every match across pages (``EhrClient.search_pages``), retrying what
the EHR says may succeed later (network failures, 408, 429, 5xx; ``Retry-After`` honoured)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from .client import EhrClient
from .errors import EhrError

Json = dict[str, Any]

RETRY_DELAYS = (0.5, 2.0)
"""Seconds before the second and third attempt of a search."""


async def search_matches(
    ehr: EhrClient,
    resource_type: str,
    params: Mapping[str, str],
    *,
    max_pages: int = 20,
    delays: tuple[float, ...] = RETRY_DELAYS,
) -> list[Json]:
    """Every ``search.mode = match`` resource of the search (at most ``max_pages`` pages).

    A retryable failure starts the whole search again (paging links of a failed search may
    have expired); the last failure is raised as it is.
    """
    for attempt in range(len(delays) + 1):
        try:
            return await _collect(ehr, resource_type, params, max_pages)
        except EhrError as exc:
            if not exc.retryable or attempt == len(delays):
                raise
            await asyncio.sleep(max(delays[attempt], exc.retry_after or 0))
    raise AssertionError("unreachable")


async def _collect(
    ehr: EhrClient, resource_type: str, params: Mapping[str, str], max_pages: int
) -> list[Json]:
    found: list[Json] = []
    pages = 0
    async for page in ehr.search_pages(resource_type, params):
        for entry in page.get("entry") or ():
            resource = entry.get("resource") if isinstance(entry, dict) else None
            mode = (entry.get("search") or {}).get("mode", "match")
            if isinstance(resource, dict) and mode == "match":
                found.append(resource)
        pages += 1
        if pages >= max_pages:
            break
    return found
