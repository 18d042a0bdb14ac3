"""Where a subscription may send: the operator's endpoint policy, against server-side request forgery.

A Subscription makes Puente send requests to a URL its author chose. Left open, that author could
aim them at what only the server can reach (its own admin ports, the database, a cloud metadata
service at 169.254.169.254, the hospital's LAN). So by default an endpoint must be http(s) and its
host must be, and resolve only to, public addresses: not loopback, private, link-local, shared,
multicast, reserved or unspecified.

`PUENTE_SUBSCRIPTION_ENDPOINTS` lists what the operator allows beyond that (comma-separated):
an origin (`https://clinic.lan:8443`: that scheme, host and port), a host (`clinic.lan`, or
`*.clinic.lan` for its subdomains), or an address or network (`10.20.0.0/16`: a host that resolves
only into listed networks). `PUENTE_SUBSCRIPTION_PUBLIC_ENDPOINTS=false` allows only what is listed.

The policy is checked twice: when the Subscription is written (a 422 naming the rule), and at each
delivery on the address the name resolves to then, which is the address the request goes to (the
URL is pinned to it, with the Host header and TLS server name of the original): a name that
resolved to a public address at registration and to an internal one later (DNS rebinding) is
refused, and the refusal recorded as a failed attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_PORTS = {"http": 80, "https": 443}
RESOLVE_SECONDS = 5.0


class EndpointRefused(Exception):
    """The endpoint is against the policy; the message names the rule."""


@dataclass(frozen=True)
class Pinned:
    """Where to send: the URL to connect to, and the host name the request must still carry."""

    url: str
    host: str | None  # the original name (Host header, TLS server name) when the URL was pinned


@dataclass(frozen=True)
class EndpointPolicy:
    origins: frozenset[tuple[str, str, int]] = frozenset()
    hosts: frozenset[str] = frozenset()
    domains: tuple[str, ...] = ()  # "*.x" entries, as ".x"
    networks: tuple[Network, ...] = ()
    public: bool = True

    @classmethod
    def parse(cls, listed: str, *, public: bool = True) -> EndpointPolicy:
        origins: set[tuple[str, str, int]] = set()
        hosts: set[str] = set()
        domains: list[str] = []
        networks: list[Network] = []
        for entry in (e.strip() for e in listed.split(",")):
            if not entry:
                continue
            if "://" in entry:
                parts = urlsplit(entry)
                if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
                    raise ValueError(f"PUENTE_SUBSCRIPTION_ENDPOINTS: '{entry}' is not an http(s) origin")
                origins.add(_origin(parts))
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                domains.append(entry[1:].lower())
            else:
                hosts.add(entry.lower())
        return cls(frozenset(origins), frozenset(hosts), tuple(domains), tuple(networks), public)

    def _listed(self, parts: SplitResult) -> bool:
        host = (parts.hostname or "").lower()
        return (_origin(parts) in self.origins or host in self.hosts
                or any(host.endswith(d) for d in self.domains))

    def _address_problem(self, address: Address) -> str | None:
        if any(address in n for n in self.networks):
            return None
        kind = _internal(address)
        if kind is not None:
            return f"is {kind} ({address})"
        if not self.public:
            return f"is not in PUENTE_SUBSCRIPTION_ENDPOINTS ({address})"
        return None

    def _syntax(self, url: str) -> tuple[SplitResult, Address | None]:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise EndpointRefused("A rest-hook endpoint is an absolute http(s) URL")
        try:
            parts.port  # noqa: B018  (a port out of range raises here)
        except ValueError as exc:
            raise EndpointRefused("The endpoint's port is not a number from 0 to 65535") from exc
        return parts, _literal(parts.hostname)

    async def check(self, url: str) -> None:
        """When a Subscription is written: refuse an endpoint the policy forbids (EndpointRefused).

        A name that does not resolve yet is let through (the receiver may not be in DNS yet): each
        delivery checks again on what it resolves to then."""
        parts, literal = self._syntax(url)
        if self._listed(parts):
            return
        addresses = [literal] if literal is not None else await _resolve(parts.hostname or "", parts.port)
        if not addresses and not self.public and literal is None:
            raise EndpointRefused(f"The endpoint's host {parts.hostname} is not in PUENTE_SUBSCRIPTION_ENDPOINTS")
        self._refuse_internal(parts, addresses)

    async def pin(self, url: str) -> Pinned:
        """At delivery: the URL to send to, bound to an address the policy allows (EndpointRefused)."""
        parts, literal = self._syntax(url)
        if self._listed(parts):
            return Pinned(url, None)
        if literal is not None:
            self._refuse_internal(parts, [literal])
            return Pinned(url, None)
        addresses = await _resolve(parts.hostname or "", parts.port)
        if not addresses:
            raise EndpointRefused(f"The endpoint's host {parts.hostname} does not resolve")
        self._refuse_internal(parts, addresses)
        address = addresses[0]
        shown = f"[{address}]" if address.version == 6 else str(address)
        netloc = f"{shown}:{parts.port}" if parts.port is not None else shown
        return Pinned(parts._replace(netloc=netloc).geturl(), parts.netloc.rpartition("@")[2])

    def _refuse_internal(self, parts: SplitResult, addresses: list[Address]) -> None:
        for address in addresses:
            problem = self._address_problem(address)
            if problem is not None:
                raise EndpointRefused(
                    f"The endpoint's host {parts.hostname} {problem}: subscriptions may only send to public "
                    "addresses and to those listed in PUENTE_SUBSCRIPTION_ENDPOINTS")


def _origin(parts: SplitResult) -> tuple[str, str, int]:
    port = parts.port if parts.port is not None else DEFAULT_PORTS.get(parts.scheme, 0)
    return parts.scheme, (parts.hostname or "").lower(), port


def _literal(host: str) -> Address | None:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host.split("%", 1)[0])
    return None


def _internal(address: Address) -> str | None:
    """What kind of address a subscription may not reach by default (None: a public one)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _internal(address.ipv4_mapped)
    for kind, test in (("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
                       ("link-local", address.is_link_local), ("multicast", address.is_multicast),
                       ("private", address.is_private), ("reserved", address.is_reserved)):
        if test:
            return kind
    return None if address.is_global else "not a public address"


async def _resolve(host: str, port: int | None) -> list[Address]:
    """Every address `host` resolves to (none if it does not, or not in time)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM), RESOLVE_SECONDS)
    except (OSError, TimeoutError, UnicodeError):
        return []
    out: list[Address] = []
    for info in infos:
        address = _literal(str(info[4][0]))
        if address is not None and address not in out:
            out.append(address)
    return out


async def pinned(request: httpx.Request, endpoints: EndpointPolicy) -> httpx.Request:
    """`request` sent to the address its host resolves to now, if the policy allows that address
    (EndpointRefused otherwise): what is checked is what is connected to, so a name that changes
    its answer between the check and the connection (DNS rebinding) cannot slip through."""
    pin = await endpoints.pin(str(request.url))
    if pin.host is None:
        return request
    headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "host"]
    return httpx.Request(request.method, pin.url, headers=[("Host", pin.host), *headers], content=request.content,
                         extensions={**request.extensions, "sni_hostname": request.url.host})
