"""Where a receiver url may point: the destination policy and the self-loop check (contract C3).

- `check_destination(url, policy)`: with `policy.block_private_destinations` on (the
  `--block-private-destinations` option, off by default so that loopback receivers work for local work),
  a url whose host is, or resolves to, any loopback, link-local (169.254.0.0/16 with the cloud metadata
  address, fe80::/10), private (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7), unspecified,
  multicast or reserved address is refused. Every address the name resolves to is checked, and IPv4
  addresses inside IPv6 (::ffff:10.0.0.1, 64:ff9b::a00:1, 6to4, Teredo) are checked as IPv4.
- `check_self_loop(url, listen_addresses)`: always on, a url that points at this relay's own ingress
  (a path holding /webhooks/v1/process/ on a host and port this server listens on, or on the public
  url's host and port) is refused, whatever the spelling: case, a trailing dot, `localhost` or
  127.0.0.1 or 127.1 or 2130706433 or 0x7f000001, [::1], [::ffff:127.0.0.1], percent-encoding or dot
  segments in the path.

Both return None when the url is allowed, or a reason that shows the url masked (auth_digest.mask_url)
and the address it resolved to. Registration calls both before anything is written; the delivery
worker calls both again at delivery time, after DNS resolution, so a name that later resolves to a
refused address is caught there too.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any, Iterable, Sequence
from urllib.parse import unquote, urlsplit

from ductape_local.auth_digest import mask_url
from ductape_local.config import INGRESS_PREFIX

POLICY_OPTION = "--block-private-destinations"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What inet_aton accepts and the resolver (so the HTTP client) connects to: 127.1, 2130706433, 0x7f000001, 0177.0.0.1
_NUMERIC_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)
_WILDCARDS = ("", "0.0.0.0", "::")


def blocks_private(policy: Any) -> bool:
    """The policy as given: a ServerConfig (or anything with block_private_destinations), or a bool."""
    if isinstance(policy, bool):
        return policy
    return bool(getattr(policy, "block_private_destinations", False))


def normalised_host(host: str) -> str:
    """Lowercase, no trailing dot, no IPv6 brackets: the spelling-independent name of a host."""
    return host.strip().strip("[]").rstrip(".").lower()


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as an IP literal stands for, in any form a resolver accepts."""
    host = normalised_host(host)
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _NUMERIC_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def resolve(host: str, port: int | None) -> list[IPAddress]:
    """Every address `host` stands for; `localhost` and `*.localhost` are loopback without asking DNS."""
    name = normalised_host(host)
    literal = literal_address(name)
    if literal is not None:
        return [literal]
    if name == "localhost" or name.endswith(".localhost"):
        return [ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1")]
    try:
        infos = socket.getaddrinfo(name, port or 0, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError):
        return []
    addresses = []
    for info in infos:
        try:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        except ValueError:
            continue
        if address not in addresses:
            addresses.append(address)
    return addresses


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_private_destination(address: IPAddress) -> bool:
    inner = embedded_ipv4(address)
    if inner is not None and is_private_destination(inner):
        return True
    return (address.is_loopback or address.is_link_local or address.is_private or address.is_unspecified
            or address.is_multicast or address.is_reserved
            or (isinstance(address, ipaddress.IPv4Address) and address in _SHARED_ADDRESS_SPACE))


def _parts(url: str) -> tuple[str, int] | None:
    """(host, port) of an http(s) url, or None when it has none."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.scheme.lower() not in ("http", "https"):
        return None
    return host, port or (443 if parts.scheme.lower() == "https" else 80)


def check_destination(url: str, policy: Any) -> str | None:
    """None when `url` may receive deliveries under `policy`, else why not (url masked)."""
    if not blocks_private(policy):
        return None
    parts = _parts(url)
    if parts is None:
        return f"{mask_url(url)} has no host that can be checked"
    host, port = parts
    addresses = resolve(host, port)
    for address in addresses:
        if is_private_destination(address):
            return (f"{mask_url(url)} resolves to {address}, a loopback, link-local, private or reserved address, "
                    f"refused by {POLICY_OPTION}")
    return None


def _ingress_path(url: str) -> bool:
    """Whether the url's path reaches the ingress route, however it is encoded."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return False
    for _ in range(5):  # %2570 -> %70 -> p: decode until stable
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    path = re.sub(r"[/\\]+", "/", path.lower())
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment != ".":
            segments.append(segment)
    return INGRESS_PREFIX in "/".join(segments) + "/"


def _local_addresses() -> set[IPAddress]:
    """The addresses of this machine that a wildcard listener answers on."""
    found: set[IPAddress] = set()
    try:
        for name in {socket.gethostname(), socket.getfqdn()}:
            found.update(resolve(name, None))
    except OSError:
        pass
    return found


def _same_host(address: IPAddress, listen: Sequence[IPAddress], wildcard: bool) -> bool:
    candidates = {address}
    inner = embedded_ipv4(address)
    if inner is not None:
        candidates.add(inner)
    for candidate in candidates:
        if wildcard and (candidate.is_loopback or candidate.is_unspecified or candidate in _local_addresses()):
            return True
        if candidate in listen:
            return True
        # A loopback listener is the relay for every loopback spelling (localhost is 127.0.0.1 and ::1),
        # and an unspecified destination (0.0.0.0) connects to the local host.
        if any(a.is_loopback for a in listen) and (candidate.is_loopback or candidate.is_unspecified):
            return True
    return False


def check_self_loop(url: str, listen_addresses: Iterable[tuple[str, int]]) -> str | None:
    """None unless `url` points at this relay's own ingress on one of `listen_addresses` ((host, port):
    the addresses it listens on and the public url's host and port)."""
    parts = _parts(url)
    if parts is None or not _ingress_path(url):
        return None
    host, port = parts
    name = normalised_host(host)
    addresses = resolve(host, port)
    for listen_host, listen_port in listen_addresses:
        if int(listen_port) != port:
            continue
        listen_name = normalised_host(listen_host)
        wildcard = listen_name in _WILDCARDS
        if not wildcard and literal_address(listen_name) is None and listen_name == name:
            return f"{mask_url(url)} is a link of this relay ({listen_name}:{port}): it would deliver to itself"
        listen = [] if wildcard else resolve(listen_name, listen_port)
        for address in addresses:
            if _same_host(address, listen, wildcard):
                return (f"{mask_url(url)} resolves to {address}, a link of this relay "
                        f"({listen_name or '*'}:{port}): it would deliver to itself")
    return None


def destination_refusal(url: str, config: Any) -> str | None:
    """Both checks against a ServerConfig (its listen_addresses and its policy): None when allowed."""
    return check_self_loop(url, config.listen_addresses) or check_destination(url, config)
