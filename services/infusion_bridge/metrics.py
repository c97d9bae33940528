"""Prometheus metrics of one app instance (``prometheus-client``), on its own registry.

Each app holds one :class:`Metrics` (tests build many apps in one process, so nothing goes
on the global default registry). Counters and histograms are fed as things happen (HTTP
requests, EHR calls, delivery attempts); the backlog gauges are set from the store when
``/metrics`` is scraped (:meth:`Metrics.set_backlog`), so they always match ``/deliveries``.

Labels never carry ids or concrete paths: routes are templates, EHR calls are named by
interaction (``transaction``, ``metadata``, ``read``, ``search``...), errors by kind.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

# The classic text format, which every Prometheus version reads; our names and labels need
# none of the newer format's escaping, so the body is the same either way.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# HTTP answers of this service are mostly milliseconds; EHR calls up to the read timeout.
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_EHR_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DELIVERY_STATUSES = ("pending", "delivering", "delivered", "dead")


class Metrics:
    """Every metric the service exports, registered on ``self.registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Histogram(
            "infusion_http_request_duration_seconds",
            "HTTP requests served, by method, route template and status",
            ["method", "route", "status"],
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        self.ehr_calls = Histogram(
            "infusion_ehr_request_duration_seconds",
            "Calls to the EHR by interaction and outcome (ok or an error kind)",
            ["interaction", "outcome"],
            buckets=_EHR_BUCKETS,
            registry=r,
        )
        self.ehr_errors = Counter(
            "infusion_ehr_errors",
            "Failed calls to the EHR by kind: unavailable, timeout, client_error, "
            "server_error, invalid_response",
            ["kind"],
            registry=r,
        )
        self.ehr_up = Gauge(
            "infusion_ehr_up", "1 when the background probe last reached the EHR", registry=r
        )
        self.ehr_probe_age = Gauge(
            "infusion_ehr_probe_age_seconds", "Age of the background probe's result", registry=r
        )
        self.delivery_attempts = Counter(
            "infusion_delivery_attempts",
            "Write-back attempts by result: delivered, retry, dead",
            ["result"],
            registry=r,
        )
        self.deliveries = Gauge(
            "infusion_deliveries", "Write-backs in the outbox by status", ["status"], registry=r
        )
        self.dead_letters = Gauge(
            "infusion_delivery_dead_letters",
            "Write-backs in dead-letter, waiting for an operator",
            registry=r,
        )
        self.oldest_pending_age = Gauge(
            "infusion_delivery_oldest_pending_age_seconds",
            "Age of the oldest write-back not yet delivered (0 when none)",
            registry=r,
        )
        self.failing_long = Gauge(
            "infusion_deliveries_failing_long",
            "Write-backs failing for longer than INFUSION_DELIVERY_WARN_AFTER_SECONDS",
            registry=r,
        )
        self.sync_lag = Gauge(
            "infusion_sync_lag_seconds",
            "Now minus the pull sync's checkpoint (meta.lastUpdated of the newest order "
            "pulled); NaN before the first sync",
            registry=r,
        )
        self.sync_last_success = Gauge(
            "infusion_sync_last_success_timestamp_seconds",
            "When a pull sync last finished without an EHR error (Unix time; 0 = never)",
            registry=r,
        )

    def set_backlog(
        self,
        counts: Mapping[str, int],
        *,
        oldest_pending_age: float,
        failing_long: int,
        sync_lag: float | None,
    ) -> None:
        """The store's figures at scrape time."""
        for status in DELIVERY_STATUSES:
            self.deliveries.labels(status).set(counts.get(status, 0))
        self.dead_letters.set(counts.get("dead", 0))
        self.oldest_pending_age.set(oldest_pending_age)
        self.failing_long.set(failing_long)
        self.sync_lag.set(float("nan") if sync_lag is None else sync_lag)

    def render(self) -> bytes:
        """The text exposition format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
