"""FHIR R4 search values (search.html), read into plain Python: tokens, references, dates.

Pure: every function raises ``ValueError`` with a message for a value it cannot read;
callers name the parameter at fault.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DATE_PREFIXES = ("eq", "gt", "ge", "lt", "le", "sa", "eb")
"""Prefixes understood on dates (``ne`` and ``ap`` are not)."""

Bound = tuple[str, datetime]
"""One comparison on an instant: (``eq``|``gt``|``ge``|``lt``|``le``, instant)."""


def split_values(raw: str) -> list[str]:
    """A parameter's comma-separated alternatives (``\\,`` is a literal comma)."""
    parts, current, escaped = [], "", False
    for char in raw:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    if any(not p for p in parts):
        raise ValueError(f"{raw!r} has an empty value")
    return parts


def token(raw: str) -> tuple[str | None, str | None]:
    """``[system]|[code]`` or ``code`` -> (system, code); ``|code`` means no system (``""``),
    ``system|`` any code of that system; None stands for "any"."""
    if "|" not in raw:
        return None, raw
    system, _, code = raw.partition("|")
    return system, code or None


def reference(raw: str, resource_type: str, local_bases: tuple[str, ...]) -> str:
    """``id``, ``Type/id`` or ``<base>/Type/id`` on a known base -> ``Type/id``."""
    value = raw
    if "://" in raw:
        for base in local_bases:
            prefix = base.rstrip("/") + "/"
            if raw.startswith(prefix):
                value = raw[len(prefix) :]
                break
        else:
            raise ValueError(f"{raw!r} is a reference to a server this service does not mirror")
    if "/_history/" in value:
        value = value.split("/_history/", 1)[0]
    if "/" not in value:
        value = f"{resource_type}/{value}"
    kind, _, rid = value.partition("/")
    if kind != resource_type or not rid or "/" in rid:
        raise ValueError(f"{raw!r} is not a {resource_type} reference")
    return value


def date_bounds(raw: str) -> list[Bound]:
    """A date search value with its prefix -> bounds on an instant.

    A partial date (``2026``, ``2026-11``, ``2026-11-20``, or a time without seconds)
    stands for the whole period it names, in UTC when it has no offset; a full instant is
    compared as it is.
    """
    prefix = raw[:2] if raw[:2] in DATE_PREFIXES else "eq"
    value = raw[2:] if raw[:2] in DATE_PREFIXES else raw
    start, end = _period(value)
    if end is None:
        op = {"sa": "gt", "eb": "lt"}.get(prefix, prefix)
        return [(op, start)]
    return {
        "eq": [("ge", start), ("lt", end)],
        "gt": [("ge", end)],
        "sa": [("ge", end)],
        "ge": [("ge", start)],
        "lt": [("lt", start)],
        "eb": [("lt", start)],
        "le": [("lt", end)],
    }[prefix]


def _period(value: str) -> tuple[datetime, datetime | None]:
    """The period a date value names: [start, end), or (instant, None) for a full instant."""
    try:
        if len(value) == 4 and value.isdigit():
            start = datetime(int(value), 1, 1, tzinfo=UTC)
            return start, start.replace(year=start.year + 1)
        if len(value) == 7 and value[4] == "-":
            start = datetime(int(value[:4]), int(value[5:7]), 1, tzinfo=UTC)
            nxt = (start + timedelta(days=32)).replace(day=1)
            return start, nxt
        if len(value) == 10:
            start = datetime.fromisoformat(value).replace(tzinfo=UTC)
            return start, start + timedelta(days=1)
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{value!r} is not a FHIR date or dateTime") from exc
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    time_part = value.split("T", 1)[1] if "T" in value else ""
    if len(time_part) >= 5 and (len(time_part) < 8 or time_part[5] != ":"):
        return instant, instant + timedelta(minutes=1)  # hh:mm: that whole minute
    return instant, None
