"""Parse the ``--since`` values operators type: ISO dates and times, or "2h ago" shorthands."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

#: "90s", "15m", "2h", "7d", "2w" (optionally followed by " ago")
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*(?:ago)?\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """An aware UTC datetime from ``2026-11-20``, ``2026-11-20T09:00``, ``...+03:00``, ``2h``.

    Naive dates and times are taken as UTC. Raises ``ValueError`` with the accepted forms.
    """
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text)
    if match:
        try:
            return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])
        except OverflowError:  # '99999999d': before year 1, was a traceback
            raise ValueError(f"{text!r} reaches back before year 1; use a smaller age") from None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read {text!r} as a time; use an ISO date or time (2026-11-20, "
            "2026-11-20T09:00, 2026-11-20T09:00+03:00) or an age like 30m, 2h, 7d"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
