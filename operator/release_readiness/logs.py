"""Structured logging: one JSON object a line, with the release and admission request when known."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from typing import Any

from release_readiness import GROUP

__all__ = ["ADMISSION", "ExpectedAtStartup", "JsonFormatter", "configure_logging"]

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


class ExpectedAtStartup(logging.Filter):
    """What Kopf reports at WARNING and ERROR, once per watch and per retry, that is a normal start: said once at
    INFO (or left to the operator's own INFO line), so WARNING and ERROR stay for what a person must act on.

    - "Unresolved resources cannot be served": optional kinds whose CRDs are not installed. The operator says so
      itself, once per kind at INFO with what to install (handlers.py), so Kopf's line goes to DEBUG. When one of
      our own kinds (group readiness.dev) is missing the operator cannot work: that stays a WARNING.
    - "Request attempt #n failed; will retry ... storage is (re)initializing": the API server answers 429 for a
      while after a CRD is created; Kopf retries. Said once at INFO; a request that runs out of retries is still
      an ERROR ("escalating").
    """

    _RETRY = re.compile(r"Request attempt #\d+(?:/\d+)? failed; will retry: (?P<what>\S+ \S+) -> ")

    def __init__(self) -> None:
        super().__init__()
        self._said: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("kopf") or record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        if message.startswith("Unresolved resources cannot be served") and f"group='{GROUP}'" not in message:
            return self._demote(record, "unresolved", None)
        retry = self._RETRY.match(message)
        if retry and "storage is (re)initializing" in message:
            return self._demote(
                record,
                "storage",
                f"the API server is still initializing the storage of a resource whose CRD was just created; "
                f"retrying {retry.group('what')} (said once; later retries are logged at DEBUG)",
            )
        return True

    def _demote(self, record: logging.LogRecord, key: str, once_at_info: str | None) -> bool:
        first = key not in self._said
        self._said.add(key)
        if first and once_at_info:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = once_at_info, ()
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def configure_logging(fmt: str = "json", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = __import__("time").gmtime
        handler.setFormatter(formatter)
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(ExpectedAtStartup())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Kopf logs every handled watch event at INFO; that is one line per object change cluster-wide.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("kopf.objects").addFilter(_AdmissionRefusals())
