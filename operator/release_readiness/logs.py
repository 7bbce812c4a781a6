"""Structured logging: one JSON object a line, with the release and admission request when known."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from typing import Any

__all__ = ["ADMISSION", "JsonFormatter", "configure_logging"]

_EXTRA = ("namespace", "release", "uid", "kind", "operation", "user", "decision")


ADMISSION: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("admission")
"""The admission request being answered: its uid (for the logs) and, from the gate, its mode and verdict."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _EXTRA:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        admission = ADMISSION.get(None)
        if admission and admission.get("uid"):
            entry["admissionUid"] = admission["uid"]
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _AdmissionRefusals(logging.Filter):
    """Kopf logs every refused admission as an ERROR; a refusal is the gate working, logged by us at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Webhook '") and "failed permanently" in message)


def configure_logging(fmt: str = "json", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = __import__("time").gmtime
        handler.setFormatter(formatter)
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Kopf logs every handled watch event at INFO; that is one line per object change cluster-wide.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("kopf.objects").addFilter(_AdmissionRefusals())
