"""The native HTTP load generators the benchmarks drive, and their reports as figures.

- ``hey`` (Debian's ``hey``, Go): HTTP/1.1 with keep-alive, the way an EHR's client pool
  talks to the service: each of the ``-c`` workers keeps one connection open.
- ``ab`` (Apache Bench, Debian's ``apache2-utils``): HTTP/1.0. Its ``-k`` asks for
  keep-alive, but uvicorn closes every HTTP/1.0 connection after its response ("Keep-Alive
  requests: 0" in ab's report), so each request also opens a TCP connection.

Both leave the server's cores to the server far better than a Python client would. Every
request is signed in with a token of the benchmark's issuer (:func:`token`).

Figures of either: ``rate`` (req/s, as the generator counts them: failures included),
``p50_ms``/``p99_ms``/``p100_ms`` (None when there is no answer to time), ``failed``
(connection errors, resets, timeouts), ``non_2xx``, ``requests`` (done, as the generator
counts them) and ``command`` (the token hidden). A run with failures or non-2xx answers says
nothing about speed: the benchmarks judge only clean runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

from bench._common import bench_issuer

GENERATORS: Final = ("hey", "ab")
"""Names of the generators :func:`load` runs (``bench/native.py`` judges each on its own)."""
PACKAGES: Final = {"hey": "hey", "ab": "apache2-utils"}
"""The Debian package of each (``scripts/system-deps.sh`` installs them)."""
FHIR_JSON: Final = "application/fhir+json"


def token() -> str:
    """A token with every role and scope, good for an hour (the benchmark's issuer)."""
    return bench_issuer().token(expires_in=3600)


def require(generators: tuple[str, ...]) -> None:
    """Fail early, naming the package, when a generator is not installed."""
    missing = [PACKAGES[g] for g in generators if shutil.which(g) is None]
    if missing:
        raise RuntimeError(
            f"missing load generator(s): run `make system-deps` (Debian's {', '.join(missing)})"
        )


def load(
    generator: str,
    url: str,
    body: Path | None,
    count: int,
    concurrency: int,
    *,
    bearer: str | None = None,
    sign_in: bool = True,
) -> dict[str, Any]:
    """``count`` requests to ``url`` (POSTs of ``body``, else GETs), ``concurrency`` in
    flight, signed in with ``bearer`` (else :func:`token`; none with ``sign_in=False``); the
    figures. A generator that stops with an error raises ``RuntimeError`` with what it said
    (the token hidden)."""
    args = command(generator, url, count, concurrency, body=body, bearer=bearer, sign_in=sign_in)
    try:
        done = subprocess.run(args, check=True, capture_output=True, text=True)  # noqa: S603
    except subprocess.CalledProcessError as exc:  # its text would show the token
        said = (exc.stderr or exc.stdout or "").strip()[-1000:]
        raise RuntimeError(f"{_shown(args)} exited {exc.returncode}: {said}") from None
    return figures(generator, args, done.stdout)


def command(
    generator: str,
    url: str,
    count: int,
    concurrency: int,
    *,
    body: Path | None = None,
    bearer: str | None = None,
    sign_in: bool = True,
) -> list[str]:
    """The command line: POSTs of ``body`` (else GETs), signed in as :func:`load` says.

    ``hey``: each of ``concurrency`` workers sends ``count // concurrency`` requests on its own
    kept-alive connection (so ``count`` is rounded down to a multiple). ``ab -k -r``: ``-r``
    counts a socket error as a failure instead of ending the run."""
    if generator == "hey":
        args = ["hey", "-n", str(count), "-c", str(concurrency)]
        post = ["-m", "POST", "-D", str(body), "-T", FHIR_JSON]
    elif generator == "ab":
        args = ["ab", "-k", "-r", "-q", "-c", str(concurrency), "-n", str(count)]
        post = ["-p", str(body), "-T", FHIR_JSON]
    else:
        raise ValueError(f"unknown load generator {generator!r}: one of {GENERATORS}")
    if body is not None:
        args += post
    if sign_in:
        args += ["-H", f"Authorization: Bearer {bearer or token()}"]
    return [*args, url]


def figures(generator: str, args: list[str], out: str) -> dict[str, Any]:
    """The figures of ``generator``'s report ``out`` on the run of ``args``."""
    return hey_figures(args, out) if generator == "hey" else ab_figures(args, out)


def hey_figures(args: list[str], out: str) -> dict[str, Any]:
    """Throughput, latency percentiles and failures from ``hey``'s summary."""
    report: dict[str, Any] = {"command": _shown(args)}
    report["rate"] = float(_find(r"Requests/sec:\s+([\d.]+)", out))
    for pct, pattern in (("50", r"50% in"), ("99", r"99% in"), ("100", r"Slowest:")):
        # hey prints no percentile it has too few answers for (or none when all failed)
        found = re.search(rf"^\s+{pattern}\s+([\d.]+) secs", out, re.MULTILINE)
        report[f"p{pct}_ms"] = round(float(found.group(1)) * 1000, 1) if found else None
    statuses = {
        int(code): int(n) for code, n in re.findall(r"^\s+\[(\d{3})\]\s+(\d+) responses", out, re.M)
    }
    errors = _section(out, "Error distribution:")
    report["failed"] = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]", errors, re.M))
    report["non_2xx"] = sum(n for code, n in statuses.items() if not 200 <= code < 300)
    report["requests"] = sum(statuses.values())
    if not report["requests"]:  # hey still prints a "Slowest: 0.0000 secs"
        report["p100_ms"] = None
    return report


def ab_figures(args: list[str], out: str) -> dict[str, Any]:
    """Throughput, latency percentiles and failures from ``ab``'s report."""
    report: dict[str, Any] = {"command": _shown(args)}
    report["rate"] = float(_find(r"Requests per second:\s+([\d.]+)", out))
    # ab counts an answer whose length differs from the first one's as failed ("Length"):
    # only connection, receive and exception failures are errors here
    total = int(_find(r"Failed requests:\s+(\d+)", out))
    kinds = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", out)
    report["failed"] = sum(map(int, kinds.groups())) if kinds else total
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    report["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    report["requests"] = int(_find(r"Complete requests:\s+(\d+)", out))
    for pct in ("50", "99", "100"):
        found = re.search(rf"^\s+{pct}%\s+(\d+)", out, re.MULTILINE)
        report[f"p{pct}_ms"] = int(found.group(1)) if found else None
    return report


def _shown(args: list[str]) -> str:
    return " ".join(
        "Authorization: Bearer <token>" if c.startswith("Authorization:") else c for c in args
    )


def _find(pattern: str, out: str) -> str:
    found = re.search(pattern, out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"the load generator's report has no {pattern!r}:\n{out[-2000:]}")
    return found.group(1)


def _section(out: str, title: str) -> str:
    """The indented lines under ``title`` in hey's summary ('' when it has none)."""
    _, found, rest = out.partition(title)
    if not found:
        return ""
    lines = []
    for line in rest.splitlines()[1:]:
        if line and not line.startswith((" ", "\t")):
            break
        lines.append(line)
    return "\n".join(lines)
