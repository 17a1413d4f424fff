"""The Prometheus endpoint listens on loopback unless a deployment asks for more."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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


@pytest.mark.parametrize("addr", ["", " 127.0.0.1", "127.0.0.1:9300", "999.1.1.1", "a b", "-x"])
def test_an_address_no_socket_can_listen_on_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch, addr: str
) -> None:
    # it used to pass, and every worker then logged "metrics port N unavailable" and ran
    # without metrics
    monkeypatch.setenv("NEWSFLOW_METRICS_BIND", addr)
    with pytest.raises(ValidationError, match="IP address or host name"):
        Settings(_env_file=None)


@pytest.mark.parametrize("addr", ["::1", "0.0.0.0", "localhost", "metrics.internal"])
def test_ip_addresses_and_host_names_are_accepted(
    monkeypatch: pytest.MonkeyPatch, addr: str
) -> None:
    monkeypatch.setenv("NEWSFLOW_METRICS_BIND", addr)
    assert Settings(_env_file=None).metrics_bind == addr
