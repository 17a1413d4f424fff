"""SSRF guard: vet the IP a connection actually goes to, at connect time.

Checking the host name before a request is not enough: DNS can answer differently a moment
later (rebinding), and a redirect can point anywhere. So the check lives in the network
backend httpcore uses for every new connection: resolve, drop blocked addresses, connect to a
vetted IP. TLS still verifies against the original host name (httpcore passes it to
``start_tls``). Redirect hops open new connections and therefore pass through here again.

In the kernel because every outbound URL goes through it: the fetcher's feeds and pages and
the alerter's webhooks (one SSRF policy; a stage imports no other stage).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import typing
from collections.abc import Awaitable, Callable, Iterable

import httpcore
import httpx

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``(host, port) -> [ip, ...]``; replaceable so benchmarks can map many names to loopback.
Resolver = Callable[[str, int], Awaitable[list[str]]]

#: Networks never reachable from the fetcher unless private networks are allowed. The
#: ``ipaddress`` flags cover most of this; the explicit list documents intent and catches
#: ranges some Python versions classify differently (CGNAT, NAT64, 6to4, benchmarking).
BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata endpoints
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",
        "::1/128",
        "64:ff9b::/96",  # NAT64 can reach IPv4 private space
        "64:ff9b:1::/48",
        "100::/64",
        "2001:db8::/32",
        "2002::/16",  # 6to4 embeds an arbitrary IPv4 address
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)


#: Cloud instance-metadata endpoints (AWS/GCP/Azure/OpenStack, AWS ECS, AWS IPv6, Alibaba):
#: they hand out credentials, so they stay refused even with private networks allowed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(ip)
    for ip in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


def is_metadata_ip(ip: str | IPAddress) -> bool:
    """True for a cloud metadata endpoint, also in its IPv4-mapped IPv6 spelling."""
    try:
        addr = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr in METADATA_ADDRESSES


class BlockedAddressError(Exception):
    """The target resolves only to addresses the guard refuses. Not an httpx error on
    purpose: httpx would re-wrap it as a generic ConnectError and a retry loop would
    treat it as transient."""

    def __init__(
        self, host: str, addresses: Iterable[str], *, private_allowed: bool = False
    ) -> None:
        self.host = host
        self.addresses = list(addresses)
        # Suggest the setting only where it helps: no setting unlocks a metadata endpoint.
        metadata_only = bool(self.addresses) and all(is_metadata_ip(a) for a in self.addresses)
        hint = (
            "cloud metadata endpoints are refused whatever the settings"
            if private_allowed or metadata_only
            else "set NEWSFLOW_ALLOW_PRIVATE_NETWORKS=true to allow private targets"
        )
        super().__init__(
            f"refusing to connect to {host!r}: resolves to blocked address(es) "
            f"{', '.join(self.addresses) or '(none)'} ({hint})"
        )


def is_blocked_ip(ip: str | IPAddress) -> bool:
    """True if ``ip`` is loopback/private/link-local/CGNAT/multicast/reserved/unspecified."""
    addr = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:  # ::ffff:127.0.0.1 reaches 127.0.0.1
            return is_blocked_ip(addr.ipv4_mapped)
        if addr.sixtofour is not None:
            return True
        if addr.teredo is not None:
            return True
    if (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_unspecified
        or addr.is_reserved
        or not addr.is_global
    ):
        return True
    return any(addr in net for net in BLOCKED_NETWORKS if net.version == addr.version)


async def system_resolve(host: str, port: int) -> list[str]:
    """Resolve with the system resolver (in the loop's executor), all families, deduplicated."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]).split("%", 1)[0], None)
    return list(seen)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that connects only to vetted IP addresses."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolver: Resolver | None = None,
        blocked: Callable[[str], bool] = is_blocked_ip,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._resolve = resolver or system_resolve
        # Allowing private networks narrows what is refused to the metadata endpoints.
        self._refused = is_metadata_ip if allow_private else blocked
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(self._resolve(host, port), timeout)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"DNS lookup of {host!r} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"DNS lookup of {host!r} failed: {exc}") from exc
        allowed = [a for a in addresses if not self._refused(a)]
        if not allowed:
            # debug, not warning: the caller reports the refusal (feed status, dead letter,
            # CLI error line); a warning here printed the same refusal twice.
            logger.debug("ssrf guard blocked host=%s addresses=%s", host, addresses)
            raise BlockedAddressError(host, addresses, private_allowed=self._allow_private)
        last_exc: Exception | None = None
        for ip in allowed:
            try:
                return await self._inner.connect_tcp(
                    ip,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_exc = exc
        assert last_exc is not None
        raise last_exc

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddressError(path, [])

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(
    *,
    allow_private: bool,
    limits: httpx.Limits,
    http2: bool = True,
    resolver: Resolver | None = None,
    blocked: Callable[[str], bool] = is_blocked_ip,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.AsyncHTTPTransport:
    """An ``httpx.AsyncHTTPTransport`` whose pool opens connections through the guard.

    ``trust_env=False``: an environment proxy would connect on our behalf and bypass the
    connect-time check.
    """
    # Loading the CA bundle costs ~30 ms CPU; share one context across per-origin pools.
    transport = httpx.AsyncHTTPTransport(
        verify=ssl_context or httpx.create_ssl_context(trust_env=False),
        http2=http2,
        limits=limits,
        trust_env=False,
    )
    # httpx has no public hook for the network backend; the pool reads this attribute on
    # every new connection. tests/unit/fetcher/test_guard.py fails loudly if that changes.
    pool = transport._pool
    if not hasattr(pool, "_network_backend"):  # pragma: no cover - httpcore API change
        raise RuntimeError("httpcore pool has no _network_backend; the SSRF guard cannot attach")
    pool._network_backend = GuardedBackend(
        allow_private=allow_private, resolver=resolver, blocked=blocked
    )
    return transport
