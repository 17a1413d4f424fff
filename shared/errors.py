"""The error tree every stage maps its failures into, once, at its boundary.

``TransientError``: worth retrying with backoff (connect errors, timeouts, 5xx, 429, DB down).
``PermanentError``: retrying cannot help; the record goes to ``news.dlq.v1`` with ``kind``.
"""

from __future__ import annotations


class NewsflowError(Exception):
    """Base class. ``kind`` is a short machine-readable reason used in metrics and the DLQ."""

    kind: str = "error"

    def __init__(self, detail: str, *, kind: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if kind is not None:
            self.kind = kind


class TransientError(NewsflowError):
    kind = "transient"

    def __init__(
        self, detail: str, *, kind: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(detail, kind=kind)
        self.retry_after = retry_after


class PermanentError(NewsflowError):
    kind = "permanent"


class ConfigError(NewsflowError):
    """A setting or environment problem the operator must fix; the message says how."""

    kind = "config"


class StackError(ConfigError):
    """The embedded stack could not start or stop; the message says what to do."""

    kind = "stack"
