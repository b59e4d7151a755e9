"""One log format for the web tier and the workers: JSON lines, or a human line locally.

``BRIDGE_LOG_FORMAT=json`` (the default) writes one JSON object per line with ``time``,
``level``, ``logger``, ``message``, ``request_id`` when the line belongs to a request or a
delivery, and the record's own fields (a delivery attempt's ``target``, ``resource``,
``action``, ``status`` …). ``text`` writes ``time level logger [request id] message``.
Both formats mask credentials (see :mod:`bridge.observability.masking`) in every string
they write, the message and tracebacks included.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from pythonjsonlogger.orjson import OrjsonFormatter

from bridge.observability import request_context
from bridge.observability.masking import mask_text

_HANDLER_MARK = "_bridge_handler"

FIELDS = ("asctime", "levelname", "name", "message")
RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (the current request's or delivery's) to every record that
    does not carry one already."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Fill in the request id; every record passes."""
        if getattr(record, "request_id", None) is None:
            record.request_id = request_context.current()
        return True


class MaskedJsonFormatter(OrjsonFormatter):
    """python-json-logger's orjson formatter, with every string value masked."""

    def __init__(self) -> None:
        super().__init__(
            list(FIELDS),
            rename_fields=RENAMES,
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Drop an empty request id and mask every value, so no secret reaches the log."""
        if log_data.get("request_id") is None:
            log_data.pop("request_id", None)
        return {k: _masked(v) for k, v in log_data.items()}


class MaskedTextFormatter(logging.Formatter):
    """A human line for local runs, masked like the JSON one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The line with the request id in brackets after the logger name, masked."""
        rid = getattr(record, "request_id", None)
        record.rid = f" [{rid}]" if rid else ""
        return mask_text(super().format(record))


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    return value


def formatter(fmt: str) -> logging.Formatter:
    """The masked formatter for BRIDGE_LOG_FORMAT: ``json``, else one text line."""
    return MaskedJsonFormatter() if fmt == "json" else MaskedTextFormatter()


def configure(fmt: str = "json", level: str = "INFO", stream: Any = None) -> logging.Handler:
    """Install the bridge's handler on the root logger (once: a second call replaces it),
    leaving other handlers (a test's capture, say) in place."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
    return handler
