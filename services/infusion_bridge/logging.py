"""Structured logging. Log lines carry event names, ids and timings, never PHI.

Rules: never log request/response bodies, query strings or resource contents; log the
route *template* (``/orders/{order_id}``), not the concrete path. Exceptions are logged as
their type and traceback frames only (:func:`exception_summary`): an exception's message
can carry data (PostgreSQL's ``DETAIL: Key (id)=(...)``, SQLAlchemy's bound parameters).
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any

import structlog


def exception_summary(exc: BaseException) -> dict[str, Any]:
    """The exception's qualified type, the types of its causes, and the frames of its
    traceback (``file:line in function``). Never its message, never local variables."""
    chain: list[str] = []
    seen: set[int] = set()
    cause: BaseException | None = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen and len(chain) < 5:
        seen.add(id(cause))
        chain.append(_qualified(type(cause)))
        cause = cause.__cause__ or cause.__context__
    frames = [  # the innermost 30: where it went wrong
        f"{_short(frame.filename)}:{frame.lineno} in {frame.name}"
        for frame in traceback.extract_tb(exc.__traceback__, limit=-30)
    ]
    summary: dict[str, Any] = {"error": _qualified(type(exc)), "frames": frames}
    if chain:
        summary["caused_by"] = chain
    return summary


def _qualified(kind: type[BaseException]) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _short(filename: str) -> str:
    """A path from the package or site-packages root down, not the machine's layout."""
    for marker in ("/site-packages/", "/services/", "/fhir_mappings/", "/lib/python"):
        if marker in filename:
            return marker.strip("/") + "/" + filename.split(marker, 1)[1]
    return filename


def _safe_exception(_logger: Any, _name: str, event_dict: Any) -> Any:
    """Replace ``exc_info`` (ours or a library's, e.g. uvicorn's "Exception in ASGI
    application") with :func:`exception_summary`, before any renderer formats it."""
    exc_info = event_dict.pop("exc_info", None)
    event_dict.pop("exception", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    exc = exc_info if isinstance(exc_info, BaseException) else None
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        exc = exc_info[1]
    if exc is not None:
        event_dict.update(exception_summary(exc))
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route stdlib and structlog output through one renderer on stderr."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _safe_exception,
    ]
    structlog.configure(
        # filter_by_level first: a line below the level costs a level check, not the
        # timestamp and the other processors (the access log line of every request)
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processor=renderer)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log prints raw paths and query strings (patient ids): ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is logged, not when logging was set
    up (a test runner swaps and closes it between tests; a background task may log later)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
