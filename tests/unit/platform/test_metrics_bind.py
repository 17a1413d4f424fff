"""The Prometheus endpoint listens on loopback unless a deployment asks for more."""

from __future__ import annotations

import pytest

from shared import stack
from shared.metrics import serve_metrics
from shared.settings import Settings


def test_default_bind_is_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSFLOW_METRICS_BIND", raising=False)
    assert Settings(_env_file=None).metrics_bind == "127.0.0.1"
    monkeypatch.setenv("NEWSFLOW_METRICS_BIND", "0.0.0.0")
    assert Settings(_env_file=None).metrics_bind == "0.0.0.0"


@pytest.mark.parametrize("addr", ["127.0.0.1", "0.0.0.0"])
def test_serve_metrics_binds_the_given_address(addr: str) -> None:
    port = stack.free_port()
    server = serve_metrics(port, addr)
    try:
        assert server is not None
        assert server.socket.getsockname()[:2] == (addr, port)
    finally:
        server.shutdown()
        server.server_close()


def test_default_call_binds_loopback_only() -> None:
    port = stack.free_port()
    server = serve_metrics(port)
    try:
        assert server.socket.getsockname()[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()
