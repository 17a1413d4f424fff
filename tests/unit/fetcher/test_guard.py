"""SSRF guard: the IP is checked at connect time, for every hop, with the guard ON."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web

from services.fetcher.service import Fetcher
from shared.errors import PermanentError
from shared.guard import GuardedBackend, guarded_transport, is_blocked_ip
from tests.unit.fetcher.conftest import LoopbackServer, link, make_settings

ARTICLE = "<html><body>ok</body></html>"


@pytest.mark.parametrize(
    ("ip", "blocked"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # cloud metadata
        ("100.64.0.1", True),  # CGNAT
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("255.255.255.255", True),
        ("::1", True),
        ("::", True),
        ("fe80::1", True),
        ("fc00::1", True),
        ("ff02::1", True),
        ("::ffff:127.0.0.1", True),  # IPv4-mapped loopback
        ("::ffff:10.0.0.1", True),
        ("2002:7f00:1::", True),  # 6to4 wrapping 127.0.0.1
        ("64:ff9b::a00:1", True),  # NAT64 to 10.0.0.1
        ("8.8.8.8", False),
        ("93.184.216.34", False),
        ("2606:4700:4700::1111", False),
        ("::ffff:8.8.8.8", False),
    ],
)
def test_is_blocked_ip(ip: str, blocked: bool) -> None:
    assert is_blocked_ip(ip) is blocked


async def test_private_target_refused_with_guard_on(server: LoopbackServer, make_fetcher) -> None:
    server.static("/a", ARTICLE)
    fetcher = await make_fetcher(allow_private_networks=False)
    with pytest.raises(PermanentError) as err:
        await fetcher.fetch(link(server.url("/a")))
    assert err.value.kind == "ssrf_blocked"
    assert server.hits == []  # no byte reached the server


async def test_hostname_resolving_to_private_address_refused(
    server: LoopbackServer, make_fetcher
) -> None:
    server.static("/a", ARTICLE)
    fetcher = await make_fetcher(allow_private_networks=False)
    with pytest.raises(PermanentError) as err:
        await fetcher.fetch(link(server.url("/a").replace("127.0.0.1", "localhost")))
    assert err.value.kind == "ssrf_blocked"
    assert "localhost" in err.value.detail
    assert server.hits == []


class Recorder:
    """A network backend that records the address it was asked to connect to."""

    def __init__(self) -> None:
        self.connected: list[str] = []

    async def connect_tcp(self, host: str, port: int, **kwargs: object) -> object:
        self.connected.append(host)
        return object()


async def test_dns_answer_is_checked_at_connect_time() -> None:
    # A rebinding resolver: harmless on the first lookup, private on the second. The check
    # happens on the address actually connected to, so the second connection is refused.
    answers = iter([["93.184.216.34"], ["10.0.0.7"]])
    recorder = Recorder()
    connected = recorder.connected

    async def resolver(host: str, port: int) -> list[str]:
        return next(answers)

    backend = GuardedBackend(resolver=resolver, inner=recorder)  # type: ignore[arg-type]
    await backend.connect_tcp("news.example", 80)
    with pytest.raises(Exception, match="blocked address"):
        await backend.connect_tcp("news.example", 80)
    assert connected == ["93.184.216.34"]  # connected to the vetted IP, not the name


async def test_every_redirect_hop_is_rechecked(server: LoopbackServer, make_fetcher) -> None:
    # Treat only 127.0.0.2 as private: the first hop (127.0.0.1) passes, the redirect to
    # 127.0.0.2 must be refused by the same connect-time check.
    server.route("/start", lambda r: _redirect("http://127.0.0.2:1/internal"))
    transport = guarded_transport(
        allow_private=False,
        limits=httpx.Limits(max_connections=4),
        blocked=lambda ip: ip == "127.0.0.2",
    )
    fetcher = Fetcher(
        make_settings(allow_private_networks=False),
        session_factory=None,  # type: ignore[arg-type]  # page fetches never use the DB
        transport=transport,
    )
    await fetcher.start()
    try:
        with pytest.raises(PermanentError) as err:
            await fetcher.fetch(link(server.url("/start")))
    finally:
        await fetcher.stop()
    assert err.value.kind == "ssrf_blocked"
    assert len(server.hits_for("/start")) == 1


async def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


async def test_non_http_schemes_are_refused(make_fetcher) -> None:
    fetcher = await make_fetcher(allow_private_networks=False)
    for url in ("file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1:6379/_"):
        with pytest.raises(PermanentError) as err:
            await fetcher.fetch(link(url.replace("file:///", "file://h/")))
        assert err.value.kind == "ssrf_blocked"


@pytest.mark.parametrize(
    "host",
    ["localhost", "127.1", "2130706433", "0x7f000001", "0.0.0.0", "[::ffff:127.0.0.1]", "[::1]"],
)
async def test_obfuscated_loopback_spellings_are_refused(
    host: str, server: LoopbackServer, make_fetcher
) -> None:
    # Whatever the spelling, the check runs on the address the resolver returns.
    server.static("/a", ARTICLE)
    fetcher = await make_fetcher(allow_private_networks=False)
    with pytest.raises(PermanentError) as err:
        await fetcher.fetch(link(f"http://{host}:{server.port}/a"))
    assert err.value.kind == "ssrf_blocked", err.value.detail
    assert server.hits == []


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "169.254.170.2"]
)
async def test_metadata_endpoints_stay_refused_with_private_networks_allowed(address: str) -> None:
    recorder = Recorder()
    connected = recorder.connected

    async def resolver(host: str, port: int) -> list[str]:
        return [address] if host == "metadata.internal" else ["10.0.0.7"]

    backend = GuardedBackend(resolver=resolver, inner=recorder, allow_private=True)  # type: ignore[arg-type]
    await backend.connect_tcp("intranet.example", 80)  # private is allowed by the flag
    with pytest.raises(Exception, match="metadata endpoints are refused"):
        await backend.connect_tcp("metadata.internal", 80)
    assert connected == ["10.0.0.7"]


@pytest.mark.parametrize(
    ("address", "suggests_setting"),
    [("169.254.169.254", False), ("fd00:ec2::254", False), ("10.0.0.7", True)],
)
async def test_refusal_suggests_the_setting_only_where_it_helps(
    address: str, suggests_setting: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return [address]

    backend = GuardedBackend(resolver=resolver, inner=Recorder(), allow_private=False)  # type: ignore[arg-type]
    with caplog.at_level("INFO"), pytest.raises(Exception) as info:
        await backend.connect_tcp("target.example", 80)
    assert ("NEWSFLOW_ALLOW_PRIVATE_NETWORKS" in str(info.value)) is suggests_setting
    if not suggests_setting:
        assert "metadata endpoints are refused whatever the settings" in str(info.value)
    # the caller reports the refusal; the guard itself must not print a second line
    assert not [r for r in caplog.records if r.name.endswith("guard") and r.levelno >= 30]
