"""Browser safety and client addresses at the gateway (contract §2, §6.2, §7).

- ``SecurityHeaders``: every answer tells browsers not to sniff types nor frame the API.
- ``OriginGuard``: a browser request from another origin must not change state with a manager's
  cookie. Guarded routes (``Route.guarded``) refuse it with 403 right after the route match.
- ``ClientAddresses``: the address abuse limits count by — the TCP peer, or, when the peer is a
  trusted proxy, the nearest ``X-Forwarded-For`` hop that is not one.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import falcon

from tracker.errors import Forbidden

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}
CROSS_ORIGIN_MESSAGE = "Cross-origin request refused"
SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})  # Sec-Fetch-Site values that are not another site
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


class SecurityHeaders:
    """Falcon middleware: the headers on every answer, errors and OPTIONS included."""

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded) -> None:
        for name, value in SECURITY_HEADERS.items():
            # A page that sets a fuller policy of its own (/docs, whose policy forbids framing too)
            # keeps it; every other answer gets these.
            if resp.get_header(name) is None:
                resp.set_header(name, value)


def parse_origin(text: str) -> Origin | None:
    """``scheme://host[:port]`` as (scheme, host, port), lower-cased, default port filled in;
    None for anything else (``null``, a path, credentials, a bad port)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return scheme, host, port or _DEFAULT_PORTS[scheme]


class OriginGuard:
    """Refuses a request that says it comes from elsewhere: ``Sec-Fetch-Site`` present and not
    ``same-origin``/``none``, or ``Origin`` present and neither the request's own origin (its
    scheme and Host) nor one of TT_PUBLIC_ORIGINS. A request with neither header passes."""

    def __init__(self, public_origins: tuple[str, ...]) -> None:
        self.public: set[Origin] = set()
        for text in public_origins:
            origin = parse_origin(text)
            if origin is None:
                raise ValueError(f"TT_PUBLIC_ORIGINS: {text!r} is not an origin (scheme://host[:port])")
            self.public.add(origin)

    def check(self, req: falcon.Request) -> None:
        site = req.get_header("Sec-Fetch-Site")
        if site is not None and site.strip().lower() not in SAME_ORIGIN_FETCH:
            raise Forbidden(CROSS_ORIGIN_MESSAGE)
        origin = req.get_header("Origin")
        if origin is not None:
            claimed = parse_origin(origin)
            if claimed is None or (claimed not in self.public and claimed != self._own(req)):
                raise Forbidden(CROSS_ORIGIN_MESSAGE)

    @staticmethod
    def _own(req: falcon.Request) -> Origin | None:
        host = req.get_header("Host") or req.netloc
        return parse_origin(f"{req.scheme}://{host}")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a peer or a forwarded hop (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``)."""
    text = text.strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        try:
            host = urlsplit("//" + text).hostname
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


class ClientAddresses:
    """The client address of a request, as abuse limits count it (contract §6.2)."""

    MAX_HOPS = 32  # a longer X-Forwarded-For is walked no further than this

    def __init__(self, trusted_proxies: tuple[str, ...]) -> None:
        try:
            self.trusted: list[Network] = [ipaddress.ip_network(t, strict=False) for t in trusted_proxies]
        except ValueError as exc:
            raise ValueError(f"TT_TRUSTED_PROXIES: {exc}") from None

    def _is_trusted(self, hop: str) -> bool:
        address = _address(hop)
        return address is not None and any(address in net for net in self.trusted)

    def of(self, req: falcon.Request) -> str:
        """The TCP peer, or the nearest untrusted X-Forwarded-For hop behind trusted proxies.

        Hops are walked from the right: each one was appended by the (trusted) proxy to its
        right, so the first untrusted one is the client; entries further left are the client's
        own say and never believed. If every hop is trusted, the leftmost one is the client.
        """
        current = req.remote_addr or ""
        if self.trusted and self._is_trusted(current):
            hops = [h for h in (req.get_header("X-Forwarded-For") or "").split(",") if h.strip()][-self.MAX_HOPS:]
            while hops and self._is_trusted(current):
                current = hops.pop()
        return self.key(current)

    @staticmethod
    def key(hop: str) -> str:
        """One counter per IPv4 address and per IPv6 /64 (the smallest network one subscriber
        gets, so an IPv6 client cannot step around a limit by changing addresses)."""
        address = _address(hop)
        if address is None:
            return hop.strip()[:100]
        if isinstance(address, ipaddress.IPv6Address):
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        return str(address)
