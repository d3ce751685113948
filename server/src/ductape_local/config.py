"""How one ductape-local process was asked to run: every option's default, and its bounds.

The defaults live here and only here: cli.py, the delivery worker and the tests read them from this
module. `number_option` makes the argparse type of each numeric option, so that a value out of its
bounds (0, -1, nan, inf, 1e309, a word) is refused at start naming the option and the value.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

# The path of every registration's link, before its uuid: the ingress answers it, links are built on it.
INGRESS_PREFIX = "/webhooks/v1/process/"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4311
DEFAULT_DB = "ductape-local.db"
DEFAULT_PROVIDER_TIMEOUT = 5.0
DEFAULT_MAX_BODY = 1024 * 1024              # largest provider event, bytes
DEFAULT_RETRY_SCHEDULE = (1.0, 5.0, 30.0, 120.0, 600.0)
DEFAULT_DELIVERY_TIMEOUT = 10.0
DEFAULT_DELIVERY_WORKERS = 16               # delivery threads; one destination holds at most a quarter
DEFAULT_BACKPRESSURE_LAG = 2.5              # seconds a receiver's due deliveries may wait before its events are held; 0: never
DEFAULT_BACKPRESSURE_HOLD = 2.0             # longest an event's answer is held (then it is accepted anyway)
DEFAULT_MAX_REQUEST_BODY = 1024 * 1024      # largest control-plane request, bytes
DEFAULT_BODY_TIMEOUT = 10.0                 # seconds for each read of a request body
DEFAULT_HEADER_TIMEOUT = 10.0               # seconds for a request's headers
DEFAULT_KEEP_ALIVE = 5.0                    # seconds an idle keep-alive connection stays open
DEFAULT_MAX_CONNECTIONS = 1000              # concurrent connections and requests; more get 503
DEFAULT_BACKLOG = 2048
DEFAULT_SESSION_TTL = 900.0                 # seconds a compat-mode session token lives
COMPAT_MODES = ("ductape",)                 # --compat: answer as the hosted Ductape does (compat.py)

# (lowest, highest) accepted for each numeric option; None = no bound on that side.
BOUNDS: dict[str, tuple[float, float]] = {
    "port": (1, 65535),
    "provider_timeout": (0.001, 3600),
    "max_body": (1, 1024 ** 3),
    "delivery_timeout": (0.001, 3600),
    "delivery_workers": (1, 1024),
    "backpressure_lag": (0, 3600),
    "backpressure_hold": (0.001, 60),
    "max_request_body": (1024, 1024 ** 3),
    "body_timeout": (0.001, 3600),
    "header_timeout": (0.001, 3600),
    "keep_alive": (0.001, 3600),
    "max_connections": (1, 1_000_000),
    "backlog": (1, 65535),
    "session_ttl": (1, 86400),
}


INTEGER_OPTIONS = frozenset({"port", "max_body", "delivery_workers", "max_request_body", "max_connections",
                             "backlog"})


def check_number(name: str, value: object) -> float | int:
    """`value` (a number or its text) as option `name` takes it; ValueError naming the option and value."""
    low, high = BOUNDS[name]
    integer = name in INTEGER_OPTIONS
    problem = (f"--{name.replace('_', '-')} must be {'a whole' if integer else 'a finite'} number "
               f"from {low:g} to {high:g} (got {str(value)!r})")
    if isinstance(value, bool):
        raise ValueError(problem)
    try:
        number: float | int = int(str(value)) if integer else float(str(value))
    except ValueError:
        raise ValueError(problem) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(problem)
    return number


def number_option(name: str) -> Callable[[str], float | int]:
    """The argparse type of the numeric option `name`, whose usage error then names option and value."""

    def parse(text: str) -> float | int:
        try:
            return check_number(name, text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


@dataclass(frozen=True)
class ServerConfig:
    db_path: Path
    public_url: str
    seed_path: Path | None = None
    test_mode: bool = False
    provider_timeout: float = DEFAULT_PROVIDER_TIMEOUT
    max_body: int = DEFAULT_MAX_BODY
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT
    # delivery worker threads; one receiver (scheme, host, port) holds at most a quarter of them
    delivery_workers: int = DEFAULT_DELIVERY_WORKERS
    # back-pressure (backpressure.py): events for a receiver whose due deliveries wait longer than the lag
    # are held before their commit, each at most the hold, then accepted anyway
    backpressure_lag: float = DEFAULT_BACKPRESSURE_LAG
    backpressure_hold: float = DEFAULT_BACKPRESSURE_HOLD
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    block_private_destinations: bool = False
    max_request_body: int = DEFAULT_MAX_REQUEST_BODY
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    keep_alive: float = DEFAULT_KEEP_ALIVE
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    backlog: int = DEFAULT_BACKLOG
    # "ductape": only what the hosted Ductape is known to answer (compat.py); None: every route, our shapes
    compat: str | None = None
    # base URL of the wrapped links when they arrive on another host than the API (webhooks.ductape.app)
    ingress_url: str | None = None
    session_ttl: float = DEFAULT_SESSION_TTL

    def __post_init__(self) -> None:
        # Also when built in code rather than from the command line: one rule for every caller.
        for name in BOUNDS:
            check_number(name, getattr(self, name))
        if self.compat is not None and self.compat not in COMPAT_MODES:
            raise ValueError(f"--compat must be one of {', '.join(COMPAT_MODES)} (got {self.compat!r})")
        if self.ingress_url is not None:
            check_base_url("ingress_url", self.ingress_url)
        for delay in self.retry_schedule:
            if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not math.isfinite(delay) or delay < 0:
                raise ValueError(f"--retry-schedule: {delay!r} must be a finite number >= 0")

    @property
    def link_base(self) -> str:
        """The base URL of every wrapped link: the ingress url when given, else the public url."""
        return (self.ingress_url or self.public_url).rstrip("/")

    @property
    def ingress_listener(self) -> tuple[str, int] | None:
        """(host, port) of the ingress url when this machine must listen there too: a loopback or the
        bind address, on another port than the API's. None when the ingress url is elsewhere (a public
        host in front of this server) or is the API's own address."""
        if not self.ingress_url:
            return None
        parts = urlsplit(self.ingress_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname or ""
        if host not in ("127.0.0.1", "localhost", "::1", self.host) or port == self.port:
            return None
        return host, port

    @property
    def listen_addresses(self) -> tuple[tuple[str, int], ...]:
        """(host, port) pairs on which this server's links arrive: where it listens, the public url and
        the ingress url."""
        addresses = [(self.host, self.port)]
        for base in (self.public_url, self.ingress_url):
            try:
                public = urlsplit(base or "")
                if public.hostname:
                    addresses.append((public.hostname, public.port or (443 if public.scheme == "https" else 80)))
            except ValueError:
                pass
        return tuple(addresses)


def check_base_url(name: str, value: str) -> str:
    """An absolute http(s) URL with a host and no query or fragment; ValueError naming option and value."""
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query and not parts.fragment
    except ValueError:
        ok = False
    if not ok or any(c.isspace() for c in value):
        raise ValueError(f"--{name.replace('_', '-')} must be an absolute http or https URL without query or "
                         f"fragment (got {value!r})")
    return value.rstrip("/")


def base_url_option(name: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        try:
            return check_base_url(name, text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def default_public_url(host: str, port: int) -> str:
    # A wildcard bind address is not something a provider could call back on.
    reachable_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in reachable_host:
        reachable_host = f"[{reachable_host}]"
    return f"http://{reachable_host}:{port}"
