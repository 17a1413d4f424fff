"""Test-wide settings: never read the developer's .env or embedded stack by accident."""

from __future__ import annotations

import os

os.environ.setdefault("NEWSFLOW_LOG_FORMAT", "text")
os.environ.setdefault("NEWSFLOW_METRICS_PORT_BASE", "0")
