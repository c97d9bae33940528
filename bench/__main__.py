"""Run the benchmarks: ``python -m bench [--only NAME] [--quick] [--json PATH]``.

Starts a HAPI sandbox on ``--hapi-port`` (8093) unless one already answers there (then it is
reused and left running), runs each benchmark (each starts its own service process), and
stops the sandbox at the end only if this run started it. Figures go to stdout; ``--json``
also writes them to a file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import auth, clinician, intake, mapping, native, nurse, operations, writeback
from bench._common import Hapi, machine_note, say

BENCHMARKS = {
    "intake": intake,
    "mapping": mapping,
    "writeback": writeback,
    "clinician": clinician,
    "nurse": nurse,
    "operations": operations,
    "native": native,
    "auth": auth,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", choices=sorted(BENCHMARKS), action="append", help="run only this benchmark"
    )
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument(
        "--hapi-port", type=int, default=int(os.environ.get("BENCH_HAPI_PORT", "8093"))
    )
    parser.add_argument(
        "--time-limit", type=float, default=300, help="seconds per measured phase (300)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    for module in BENCHMARKS.values():
        module.add_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = args.only or list(BENCHMARKS)
    command = " ".join([".venv/bin/python -m bench", *(argv if argv is not None else sys.argv[1:])])
    report: dict[str, Any] = {
        "command": command,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_before": machine_note(),
        },
    }
    say(f"benchmarks {names}{' (quick)' if args.quick else ''}; {machine_note()}")
    hapi = Hapi(args.hapi_port)
    t0 = time.monotonic()
    try:
        if any(getattr(BENCHMARKS[n], "NEEDS_HAPI", True) for n in names):
            hapi.ensure()
        for name in names:
            report[name] = asyncio.run(BENCHMARKS[name].run(args, hapi))
    finally:
        hapi.release()
    report["machine"]["load_after"] = machine_note()
    report["took_s"] = round(time.monotonic() - t0, 1)
    say(f"done in {report['took_s']:.0f} s; {machine_note()}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        say(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
