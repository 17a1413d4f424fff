"""Logging setup for entry points: JSON lines in containers, readable text on a terminal."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_STD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
#: Libraries that log every rebalance step at INFO; their warnings still show.
_NOISY = ("aiokafka", "faust", "mode", "kafka", "asyncio", "httpx", "httpcore")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.service:
            data["service"] = self.service
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self, service: str | None = None) -> None:
        prefix = f"{service:<8} " if service else ""
        super().__init__(f"%(asctime)s {prefix}%(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")


def configure_logging(
    *, level: str = "INFO", fmt: str = "auto", service: str | None = None
) -> None:
    """Configure the root logger once, in an entry point (never at import)."""
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
