"""What recording one chair-side event costs by its place in the timeline (issue #11).

In-process, one SQLite file, no HTTP: a long session (check-in, premedications, infusion
start, then vital signs every 30 minutes) is recorded event by event with
``usecases.sessions.append_event``, the same call ``POST /sessions/{id}/events`` makes.
Each event's wall time is kept by its position; the figures are the median over
``--sessions`` sessions of events 3-7 and of events 56-60, and their ratio (aim: 1).

    .venv/bin/python -m bench.event_cost [--sessions 5] [--events 60]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import TypeAdapter

from fhir_mappings.medication_request import order_from_fhir
from harness.fhir_payloads import medication_request
from harness.timelines import completed_timeline
from services.infusion_bridge.domain.catalog import load_catalog
from services.infusion_bridge.domain.session_events import SessionEvent
from services.infusion_bridge.store.db import make_engine, migrate, write_transaction
from services.infusion_bridge.usecases.order_intake import PreparedOrder, store_order
from services.infusion_bridge.usecases.sessions import append_event, start_session

EARLY = range(3, 8)
LATE = range(56, 61)


def measure(sessions: int, events: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="infusion-bench-events-"))
    engine = make_engine(f"sqlite:///{folder / 'events.db'}")
    migrate(engine)
    catalog = load_catalog()
    resource = medication_request(id="events-order")
    now = datetime.now(UTC)
    with write_transaction(engine) as db:
        store_order(
            db, PreparedOrder(order_from_fhir(resource, catalog), resource), source="bench", now=now
        )
    adapter: TypeAdapter[SessionEvent] = TypeAdapter(SessionEvent)
    by_position: dict[int, list[float]] = {}
    for n in range(sessions):
        start = now - timedelta(days=10 + 3 * n)
        timeline = completed_timeline(start, vitals=events)[:events]  # no end: vitals go on
        sid = start_session(engine, "events-order", now=now).id
        for position, raw in enumerate(timeline, start=1):
            event = adapter.validate_python(raw)
            began = time.perf_counter()
            append_event(
                engine, sid, event, catalog=catalog, identifier_system="urn:bench", now=now
            )
            by_position.setdefault(position, []).append(time.perf_counter() - began)
    engine.dispose()
    early = statistics.median(t for p in EARLY for t in by_position[p]) * 1000
    late = statistics.median(t for p in LATE for t in by_position[p]) * 1000
    return {"early_ms": round(early, 2), "late_ms": round(late, 2), "ratio": round(late / early, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.event_cost", description=__doc__)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--events", type=int, default=60)
    args = parser.parse_args()
    figures = measure(args.sessions, args.events)
    print(
        f"events {EARLY.start}-{EARLY.stop - 1}: median {figures['early_ms']} ms; "
        f"events {LATE.start}-{LATE.stop - 1}: median {figures['late_ms']} ms; "
        f"late / early {figures['ratio']}x"
    )


if __name__ == "__main__":
    main()
