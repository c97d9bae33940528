"""Shared plumbing for the benchmarks: the HAPI sandbox, the service process, the load loop.

Everything talks to 127.0.0.1 only. Every loop is bounded by a count and by a time limit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.identity import LocalIssuer, served_issuer
from sandbox.hapi_server import HapiSandbox

ROOT = Path(__file__).resolve().parent.parent
FHIR_JSON = "application/fhir+json"
FHIR_HEADERS = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON}
_T0 = time.monotonic()


def say(message: str) -> None:
    """A progress line, stamped with seconds since the benchmarks started."""
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", flush=True)


def python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


# ------------------------------------------------------------------------------------------
# Machine and process figures
# ------------------------------------------------------------------------------------------


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine_note() -> str:
    cpus = os.cpu_count()
    return f"{cpus} CPUs, load average (1/5/15 min) {load_average()}"


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process (Linux /proc), None if unknown."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class CpuMeter:
    """CPU seconds used by the service, HAPI and this load generator during one phase."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.start: dict[str, float | None] = {}
        self.used: dict[str, float | None] = {}

    def __enter__(self) -> CpuMeter:
        self.start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.start["bench"] = own_cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        end = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        end["bench"] = own_cpu_seconds()
        for name, before in self.start.items():
            after = end.get(name)
            self.used[name] = None if before is None or after is None else after - before

    def describe(self) -> str:
        return ", ".join(
            f"{name} {'?' if used is None else f'{used:.1f}'} s" for name, used in self.used.items()
        )


# ------------------------------------------------------------------------------------------
# Statistics
# ------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an unsorted sample."""
    if not values:
        return float("nan")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


@dataclass
class LoadResult:
    name: str
    concurrency: int
    sent: int = 0
    ok: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str | None = None
    timed_out: bool = False
    cpu: dict[str, float | None] = field(default_factory=dict)
    rounds: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000

    def line(self, unit: str = "req/s") -> str:
        text = (
            f"{self.name}: {self.ok} ok / {self.sent} sent in {self.elapsed:.2f} s at "
            f"concurrency {self.concurrency} -> {self.rate:.1f} {unit}, "
            f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms"
        )
        if self.errors:
            text += f", {self.errors} errors (first: {self.first_error})"
        if self.timed_out:
            text += " [stopped by the time limit]"
        return text

    @classmethod
    def merge(cls, name: str, parts: Sequence[LoadResult]) -> LoadResult:
        """Rounds of the same measurement as one: counts and busy time add up."""
        cpu: dict[str, float | None] = {}
        for key in parts[0].cpu:
            values = [p.cpu.get(key) for p in parts]
            cpu[key] = None if None in values else sum(v for v in values if v is not None)
        return cls(
            name=name,
            concurrency=parts[0].concurrency,
            sent=sum(p.sent for p in parts),
            ok=sum(p.ok for p in parts),
            errors=sum(p.errors for p in parts),
            elapsed=sum(p.elapsed for p in parts),
            latencies=[x for p in parts for x in p.latencies],
            first_error=next((p.first_error for p in parts if p.first_error), None),
            timed_out=any(p.timed_out for p in parts),
            cpu=cpu,
            rounds=[round(p.rate, 2) for p in parts],
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed, 3),
            "rate_per_s": round(self.rate, 2),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "timed_out": self.timed_out,
            "round_rates_per_s": self.rounds,
            "cpu_s": {k: (None if v is None else round(v, 2)) for k, v in self.cpu.items()},
        }


Check = Callable[[httpx.Response], bool]


async def run_load(
    name: str,
    client: httpx.AsyncClient,
    requests: Iterable[tuple[str, str, bytes]],
    *,
    concurrency: int,
    time_limit: float,
    check: Check,
    progress_every: float = 2.0,
    cpu_pids: dict[str, int | None] | None = None,
) -> LoadResult:
    """Send every (method, url, body) with ``concurrency`` workers; bounded by ``time_limit``.

    The latency of a request is the time from sending it to having read its whole response.
    Throughput counts only responses that pass ``check``.
    """
    items = list(requests)
    result = LoadResult(name=name, concurrency=concurrency)
    queue = iter(items)
    deadline = time.monotonic() + time_limit

    async def worker() -> None:
        for method, url, body in queue:
            if time.monotonic() >= deadline:
                result.timed_out = True
                return
            result.sent += 1
            t0 = time.perf_counter()
            try:
                response = await client.request(method, url, content=body)
                await response.aread()
            except httpx.HTTPError as exc:
                result.errors += 1
                result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
                continue
            took = time.perf_counter() - t0
            if check(response):
                result.ok += 1
                result.latencies.append(took)
            else:
                result.errors += 1
                result.first_error = result.first_error or (
                    f"HTTP {response.status_code}: {response.text[:300]}"
                )

    async def progress() -> None:
        while True:
            await asyncio.sleep(progress_every)
            spent = time.perf_counter() - started
            say(
                f"  {name}: {result.sent}/{len(items)} sent, {result.ok} ok, "
                f"{result.ok / spent:.0f}/s so far"
            )

    meter = CpuMeter(cpu_pids or {})
    with meter:
        started = time.perf_counter()
        reporter = asyncio.create_task(progress())
        try:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        finally:
            result.elapsed = time.perf_counter() - started
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
    result.cpu = meter.used
    return result


async def bounded_gather(
    jobs: Sequence[Callable[[], Awaitable[Any]]], concurrency: int
) -> list[Any]:
    """Run the jobs, at most ``concurrency`` at a time, keeping their order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return await asyncio.gather(*(one(j) for j in jobs))


# ------------------------------------------------------------------------------------------
# The HAPI sandbox
# ------------------------------------------------------------------------------------------


class Hapi(HapiSandbox):
    """The benchmarks' HAPI: H2 in memory, log in $TMPDIR, no $validate warm-up; reused
    when one already answers on the port, else started here (and stopped at the end)."""

    def __init__(self, port: int) -> None:
        log = Path(tempfile.gettempdir()) / f"infusion-bench-hapi-{port}.log"
        super().__init__(
            port=port,
            on_disk=False,
            extra_env={
                "HAPI_LOG": os.environ.get("HAPI_LOG", str(log)),
                "HAPI_WARMUP": os.environ.get("HAPI_WARMUP", "0"),
            },
        )

    def ensure(self) -> Hapi:
        if self.is_up():
            say(f"HAPI sandbox already answers at {self.base_url}: reusing it (left running)")
            return self
        say(f"starting the HAPI sandbox on :{self.port} (40-80 s) ...")
        t0 = time.monotonic()
        self.start()
        self.started_here = True
        say(f"HAPI sandbox up in {time.monotonic() - t0:.0f} s at {self.base_url}")
        return self

    def release(self) -> None:
        """Stop the sandbox only if this run started it."""
        if self.started_here:
            say(f"stopping the HAPI sandbox on :{self.port} (started by this run)")
            self.stop()
            self.started_here = False


async def warm_up_hapi(client: httpx.AsyncClient, patient_ref: str, rounds: int = 30) -> None:
    """A few writes and reads so HAPI's JIT and caches are past their first-call costs."""
    from harness.fhir_payloads import medication_request

    for _ in range(rounds):
        body = medication_request(subject={"reference": patient_ref}, requester=None)
        r = await client.post("MedicationRequest", json=body)
        r.raise_for_status()


async def create_patient(client: httpx.AsyncClient, family: str = "Bench") -> str:
    r = await client.post("Patient", json={"resourceType": "Patient", "name": [{"family": family}]})
    r.raise_for_status()
    return f"Patient/{r.json()['id']}"


# ------------------------------------------------------------------------------------------
# The service, in its own process
# ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_ISSUER: list[tuple[Any, LocalIssuer]] = []


def bench_issuer() -> LocalIssuer:
    """One local identity provider (JWKS over loopback HTTP) for every benchmark service;
    it serves as long as the benchmark process runs (the context is kept, not exited)."""
    if not _ISSUER:
        context = served_issuer()
        _ISSUER.append((context, context.__enter__()))
        # Stop it at exit, while its server thread still runs: left to the garbage collector
        # at interpreter shutdown, the context's server.shutdown() waits forever for a
        # serve_forever loop that is already gone, and the benchmark never exits.
        atexit.register(context.__exit__, None, None, None)
    return _ISSUER[0][1]


@dataclass
class Service:
    """``python -m services.infusion_bridge.cli serve`` on a free port with a SQLite file.

    Sign-in is on, as in production: tokens come from a local issuer (:func:`bench_issuer`)
    and clients send :attr:`auth_headers`. ``auth=False`` switches it off (loopback only),
    for the benchmark that measures what sign-in costs.
    """

    db_path: Path
    ehr_base_url: str
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    auth: bool = True
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    spawned_at: float = 0.0  # time.time()
    live_at: float = 0.0  # time.time() of the first 200 from /health/live

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def auth_headers(self) -> dict[str, str]:
        """A token with every role and scope (good for an hour), when sign-in is on."""
        return bench_issuer().headers(expires_in=3600) if self.auth else {}

    def env(self) -> dict[str, str]:
        sign_in = (
            {"INFUSION_AUTH_ISSUER": bench_issuer().issuer, "INFUSION_AUTH_DISABLED": "false"}
            if self.auth
            else {"INFUSION_AUTH_DISABLED": "true"}
        )
        return {
            **os.environ,
            "INFUSION_HOST": "127.0.0.1",
            "INFUSION_PORT": str(self.port),
            "INFUSION_DATABASE_URL": f"sqlite:///{self.db_path}",
            "INFUSION_EHR_BASE_URL": self.ehr_base_url,
            "INFUSION_SYNC_INTERVAL_SECONDS": "0",
            "INFUSION_LOG_LEVEL": "WARNING",
            **sign_in,
            **self.extra_env,
        }

    def start(self, timeout: float = 60) -> Service:
        log = self.log_path.open("ab")
        self.spawned_at = time.time()
        self.process = subprocess.Popen(  # noqa: S603
            [python(), "-m", "services.infusion_bridge.cli", "serve"],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=1) as probe:  # one client: cheap polls
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    tail = self.log_path.read_text(errors="replace")[-3000:]
                    code = self.process.returncode
                    raise RuntimeError(f"the service exited with {code}:\n{tail}")
                try:
                    if probe.get("/health/live").status_code == 200:
                        self.live_at = time.time()
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the service did not answer /health/live within {timeout} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def remove_scratch(path: Path) -> None:
    """Delete a run's scratch folder (database, service log) unless BENCH_KEEP_TMP is set."""
    if os.environ.get("BENCH_KEEP_TMP"):
        say(f"scratch kept: {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x"
